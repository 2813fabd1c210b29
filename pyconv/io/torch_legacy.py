"""torch's legacy checkpoint format (``torch.save(..., _use_new_zipfile_serialization=False)``).

Five pickles in a row -- torch's magic number, the protocol version 1001, a
dict of system information, the object, the sorted list of storage keys --
then, for each key in that order, the storage: its element count as a
little-endian int64 followed by its raw little-endian bytes (torch writes
little-endian whatever the machine; torch/serialization.py ``_legacy_save``
and ``_legacy_load``).  There are no checksums: sizes are checked against
the file.
"""
import numpy as np

from .errors import CheckpointError
from .torch_pickle import StorageTable, materialize, read_pickle

__all__ = ["load_torch_legacy", "MAGIC_NUMBER"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def load_torch_legacy(buffer):
    """The object a legacy ``torch.save`` file (mapped as ``buffer``) holds, with numpy arrays."""
    try:
        magic, pos = read_pickle(buffer, 0, "the leading pickle")
    except CheckpointError as error:
        raise CheckpointError(f"not a torch.save file: it starts like a pickle, but {error}") from None
    if magic != MAGIC_NUMBER:
        raise CheckpointError("a Python pickle, not a torch.save file (no torch magic number): "
                              "pyconv does not load arbitrary pickles")
    protocol, pos = read_pickle(buffer, pos, "the protocol version pickle")
    if protocol != PROTOCOL_VERSION:
        raise CheckpointError(f"legacy torch protocol version {protocol!r}, expected {PROTOCOL_VERSION}")
    sys_info, pos = read_pickle(buffer, pos, "the system information pickle")
    if type(sys_info) is not dict:
        raise CheckpointError(f"the system information pickle holds {type(sys_info).__name__}, expected dict")
    storages = StorageTable()
    obj, pos = read_pickle(buffer, pos, "the checkpoint pickle", storages.persistent_load)
    keys, pos = read_pickle(buffer, pos, "the storage key list")
    if type(keys) is not list or not all(type(key) is str for key in keys):
        raise CheckpointError("the storage key list is not a list of strings")

    offsets = {}
    for key in keys:
        storage = storages.storages.get(key)
        if storage is None or key in offsets:
            raise CheckpointError(f"the storage key list names {key!r}, which the pickle does not "
                                  f"reference (or names it twice)")
        if pos + 8 > len(buffer):
            raise CheckpointError(f"the file ends before {storage!r} (truncated)")
        numel = int.from_bytes(buffer[pos:pos + 8], "little", signed=True)
        if numel != storage.numel:
            raise CheckpointError(f"{storage!r} is stored with {numel} elements")
        offsets[key] = pos + 8
        pos += 8 + storage.nbytes
        if pos > len(buffer):
            raise CheckpointError(f"the file ends inside {storage!r} (truncated): "
                                  f"{pos - len(buffer)} bytes missing")
    missing = [key for key in storages.storages if key not in offsets]
    if missing:
        raise CheckpointError(f"the pickle references storages {missing} that the file does not hold")

    def read_storage(storage):
        data = np.empty(storage.nbytes, np.uint8)
        source = np.frombuffer(buffer, np.uint8, storage.nbytes, offsets[storage.key])
        data[:] = source
        del source                      # release the map's buffer before it may be closed
        return data

    return materialize(obj, storages, read_storage)
