"""torch's zip checkpoint format (``torch.save``, torch >= 1.6).

An archive ``<name>/`` (the folder name varies: it is the file's stem when
torch wrote it) holding ``data.pkl`` (the pickle), ``data/<key>`` (one raw
storage per key, uncompressed, 64-byte aligned), ``byteorder`` ('little' or
'big'; absent in old files, which are little-endian), ``version`` (the
archive format version, 1 to 10 in torch's caffe2/serialize/versions.h)
and a few records pyconv does not need.  torch reads it in
torch/serialization.py ``_load``.
"""
from .errors import CheckpointError
from .torch_pickle import StorageTable, materialize, read_pickle

__all__ = ["load_torch_zip", "is_torch_zip"]

_VERSIONS = range(1, 11)


def is_torch_zip(members):
    """True if the archive has a ``<name>/data.pkl`` record."""
    return any(_is_data_pkl(name) for name in members.names)


def _is_data_pkl(name):
    return name.count("/") == 1 and name.endswith("/data.pkl")


def _version(members, prefix):
    for name in (prefix + "version", prefix + ".data/version"):
        if name in members.infos:
            text = members.read_bytes(name).strip()
            if not text.isdigit() or int(text) not in _VERSIONS:
                raise CheckpointError(f"record {name!r} holds {text[:20]!r}, expected a format version "
                                      f"in {_VERSIONS.start}..{_VERSIONS.stop - 1}")
            return int(text)
    raise CheckpointError(f"the archive has no {prefix}version record: not a torch.save file")


def _byteorder(members, prefix):
    name = prefix + "byteorder"
    if name not in members.infos:
        return "little"
    text = members.read_bytes(name)
    if text not in (b"little", b"big"):
        raise CheckpointError(f"record {name!r} holds {text[:20]!r}, expected 'little' or 'big'")
    return text.decode()


def load_torch_zip(members):
    """The object a ``torch.save`` zip archive holds, with numpy arrays for tensors."""
    pickles = [name for name in members.names if _is_data_pkl(name)]
    if len(pickles) != 1:
        found = "no" if not pickles else f"{len(pickles)}"
        raise CheckpointError(f"zip archive with {found} '<archive>/data.pkl' records: not a torch.save file")
    prefix = pickles[0][:-len("data.pkl")]
    if prefix + "constants.pkl" in members.infos:
        raise CheckpointError("a TorchScript archive (torch.jit.save), not a torch.save file: "
                              "save the model's state_dict() with torch.save instead")
    _version(members, prefix)
    byteorder = _byteorder(members, prefix)
    storages = StorageTable()
    obj, _ = read_pickle(members.read_bytes(prefix + "data.pkl"), 0, f"{prefix}data.pkl",
                         storages.persistent_load)

    def read_storage(storage):
        name = f"{prefix}data/{storage.key}"
        if name not in members.infos:
            raise CheckpointError(f"the pickle references {storage!r}, but the archive has no record {name!r}")
        if members.size(name) != storage.nbytes:
            raise CheckpointError(f"record {name!r} holds {members.size(name)} bytes, but the pickle "
                                  f"claims {storage!r} = {storage.nbytes} bytes")
        return members.read(name)

    return materialize(obj, storages, read_storage, byteorder)
