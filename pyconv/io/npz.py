"""``.npz`` files (``numpy.savez``), read with numpy's own ``.npy`` header parser.

Not through ``numpy.load``: it allocates the array a header claims before
reading its data, so a tiny file claiming shape (10**12,) would exhaust
memory.  Here each member is read once (CRC-32 checked, see
``zip_members``), its header parsed by ``numpy.lib.format``, and the shape
checked against the bytes really there before the array is viewed from the
member's buffer.  Object arrays are refused, as ``allow_pickle=False`` does;
so is anything but bool, integer, float and complex data.
"""
import io
from collections import OrderedDict

from numpy.lib import format as npy_format

from .errors import CheckpointError

__all__ = ["is_npz", "load_npz"]

_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def is_npz(members):
    """True if every member of the archive is a ``.npy`` file."""
    return bool(members.names) and all(name.endswith(".npy") for name in members.names)


def _read_npy(members, name):
    data = members.read(name)
    header = io.BytesIO(data[:65536 + 16].tobytes())    # headers are at most 64 KiB (numpy's limit)
    try:
        version = npy_format.read_magic(header)
        if version not in _HEADER_READERS:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran_order, dtype = _HEADER_READERS[version](header)
    except ValueError as error:
        raise CheckpointError(f"npz member {name!r} has an invalid .npy header: {error}") from None
    if dtype.kind not in "biufc" or dtype.hasobject:
        raise CheckpointError(f"npz member {name!r} has dtype {dtype}; a state dict holds numeric arrays")
    count = 1
    for n in shape:
        count *= n
    start = header.tell()
    available = data.size - start
    if count * dtype.itemsize != available:
        raise CheckpointError(f"npz member {name!r} claims shape {shape} of {dtype} "
                              f"({count * dtype.itemsize} bytes) but holds {available} bytes of data")
    array = data[start:].view(dtype)
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def load_npz(members):
    """The arrays of an ``.npz`` archive, by name, in archive order."""
    return OrderedDict((name[:-len(".npy")], _read_npy(members, name)) for name in members.names)
