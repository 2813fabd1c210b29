"""``.safetensors`` files, through the safetensors package's numpy API.

The package validates the file (header, offsets, sizes) when it is opened.
numpy has no bfloat16: a BF16 tensor is read as raw bytes at the offsets the
validated header gives and widened to float32 (exactly), as for torch files.
Tensors are returned in the order of their data in the file, except for
files written by ``save_safetensors``, which records the order it was given
(safetensors itself sorts tensors by dtype and name).
"""
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from .errors import CheckpointError

__all__ = ["is_safetensors", "load_safetensors", "save_safetensors"]

_KEY_ORDER = "pyconv.key_order"
# safetensors dtype names that safetensors.numpy reads, and numpy dtypes it writes.
_NUMPY_READABLE = {"F64", "F32", "F16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "C64"}
_WRITABLE = {np.dtype(t) for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
                                   np.int8, np.uint64, np.uint32, np.uint16, np.uint8, np.bool_,
                                   np.complex64)}


def is_safetensors(head, size):
    """True if ``head`` (the file's first bytes) starts a safetensors header: a length, then '{'."""
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return 2 <= header_length <= size - 8 and head[8:9] == b"{"


def _read_header(path):
    """(offset of the data, the parsed header, file size) of a safetensors file."""
    with open(path, "rb") as file:
        header_length = int.from_bytes(file.read(8), "little")
        return 8 + header_length, json.loads(file.read(header_length)), os.fstat(file.fileno()).st_size


def _bfloat16_as_float32(path, key, data_offset, header, size):
    """Tensor ``key`` (BF16) of a safetensors file the package has validated, widened to float32."""
    shape, (begin, end) = header[key]["shape"], header[key]["data_offsets"]
    count = math.prod(shape)
    if not 0 <= begin <= end == begin + 2 * count <= size - data_offset:
        raise CheckpointError(f"tensor {key!r}: offsets {begin}..{end} do not hold shape {shape} of BF16")
    bits = np.fromfile(path, dtype="<u2", count=count, offset=data_offset + begin)
    widened = bits.astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32).reshape(shape)


def _saved_key_order(metadata, keys):
    """The key order ``save_safetensors`` recorded, if it is one of ``keys``."""
    try:
        order = json.loads(metadata.get(_KEY_ORDER, "null"))
    except ValueError:
        return None
    if type(order) is list and all(type(key) is str for key in order) and sorted(order) == sorted(keys):
        return order
    return None


def load_safetensors(path):
    """The tensors of a safetensors file, as an OrderedDict of numpy arrays."""
    tensors = OrderedDict()
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            header = None
            for key in file.offset_keys():
                dtype = file.get_slice(key).get_dtype()
                if dtype in _NUMPY_READABLE:
                    tensors[key] = file.get_tensor(key)
                elif dtype == "BF16":
                    header = header or _read_header(path)
                    tensors[key] = _bfloat16_as_float32(path, key, *header)
                else:
                    raise CheckpointError(f"tensor {key!r} has dtype {dtype}, which numpy cannot represent")
    except SafetensorError as error:
        raise CheckpointError(f"invalid safetensors file: {error}") from None
    order = _saved_key_order(metadata, list(tensors))
    return OrderedDict((key, tensors[key]) for key in order) if order else tensors


def save_safetensors(state_dict, path):
    """Write ``state_dict`` (a mapping of names to numpy arrays) as a safetensors file."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save_state_dict: expected a mapping of names to numpy arrays, "
                        f"got {type(state_dict).__name__}")
    tensors = {}
    for key, value in state_dict.items():
        if type(key) is not str:
            raise TypeError(f"save_state_dict: key {key!r} is {type(key).__name__}, expected str")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"save_state_dict: value of {key!r} is {type(value).__name__}, "
                            f"expected a numpy array")
        if value.dtype.newbyteorder("=") not in _WRITABLE:
            raise TypeError(f"save_state_dict: value of {key!r} has dtype {value.dtype}, which "
                            f"safetensors cannot store from numpy")
        tensors[key] = np.require(value, requirements="C")
    safetensors.numpy.save_file(tensors, path, metadata={_KEY_ORDER: json.dumps(list(tensors))})
