"""The ``.pyconv`` model file: one safetensors file holding the graph's constants (weights) as tensors and,
in its metadata, the graph as JSON, a format version and a CRC-32 of both.

Loading memory-maps the file (copy-on-write: weights are read when used and never written back),
lets the safetensors package validate the header and offsets, checks the format version and checksum,
then builds and checks the Graph (op names, attribute types, references, shapes).  A truncated,
corrupted or hostile file raises ``ModelFileError`` naming the file and the problem.
"""
import json
import os
import zlib

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from ..io.errors import CheckpointError
from .ir import DTYPES, Graph, GraphError

__all__ = ["ModelFileError", "save_graph", "load_graph", "FORMAT_VERSION"]

FORMAT = "pyconv"
FORMAT_VERSION = 1
_FORMAT_KEY, _VERSION_KEY, _GRAPH_KEY, _CHECKSUM_KEY = ("pyconv.format", "pyconv.format_version", "pyconv.graph",
                                                        "pyconv.checksum")
_SAFETENSORS_DTYPES = {"F32": DTYPES["float32"], "I64": DTYPES["int64"]}


class ModelFileError(CheckpointError):
    """A ``.pyconv`` file cannot be loaded: not one, truncated, corrupted, from a newer pyconv, or invalid."""


def _checksum(text, constants):
    crc = zlib.crc32(text.encode())
    for name in sorted(constants):
        array = constants[name]
        crc = zlib.crc32(f"{name}:{array.dtype.str}:{array.shape}".encode(), crc)
        crc = zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"), crc)
    return f"{crc:08x}"


def save_graph(graph, path):
    """Write ``graph`` (checked first) to ``path`` as a .pyconv file; the file is replaced atomically."""
    graph.check()
    path = os.fspath(path)
    text = json.dumps(graph.to_json(), separators=(",", ":"), allow_nan=False)
    tensors = {name: np.ascontiguousarray(array) for name, array in graph.constants.items()}
    metadata = {_FORMAT_KEY: FORMAT, _VERSION_KEY: str(FORMAT_VERSION), _GRAPH_KEY: text,
                _CHECKSUM_KEY: _checksum(text, tensors)}
    data = safetensors.numpy.save(tensors, metadata=metadata)
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _reject_constant(name):
    raise ValueError(f"the graph holds {name}, which JSON and pyconv do not allow")


def load_graph(path):
    """The checked Graph of the .pyconv file at ``path``, its constants memory-mapped."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"load: expected path to be a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(path)
    size = os.path.getsize(path)

    def fail(message):
        return ModelFileError(f"{path}: {message}")

    if size < 16:
        raise fail(f"{size} bytes is too short for a .pyconv file (truncated?)")
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            layout = {key: (file.get_slice(key).get_dtype(), tuple(file.get_slice(key).get_shape()))
                      for key in file.offset_keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise fail(f"not a valid .pyconv file (a safetensors file is expected): {error}") from None
    if metadata.get(_FORMAT_KEY) != FORMAT or _GRAPH_KEY not in metadata:
        raise fail("a safetensors file without a pyconv graph: not a .pyconv file")
    version = metadata.get(_VERSION_KEY, "")
    if not version.isdigit() or int(version) < 1:
        raise fail(f"unreadable format version {version[:20]!r}")
    if int(version) > FORMAT_VERSION:
        raise fail(f"format version {int(version)} was written by a newer pyconv; this one reads version "
                   f"{FORMAT_VERSION}: upgrade pyconv")
    constants = _map_tensors(path, layout, fail)
    text = metadata[_GRAPH_KEY]
    if metadata.get(_CHECKSUM_KEY) != _checksum(text, constants):
        raise fail("checksum mismatch: the file is corrupted")
    try:
        graph = Graph.from_json(json.loads(text, parse_constant=_reject_constant), constants)
        graph.check()
    except RecursionError:
        raise fail("the graph is nested too deeply") from None
    except (GraphError, ValueError) as error:
        raise fail(f"invalid graph: {error}") from None
    return graph


def _map_tensors(path, layout, fail):
    """Name -> array on a copy-on-write memory map of the file, at the offsets safetensors validated."""
    with open(path, "rb") as file:
        header_length = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(header_length))
    mapped = np.memmap(path, dtype=np.uint8, mode="c")
    constants = {}
    for name, (dtype_name, shape) in layout.items():
        dtype = _SAFETENSORS_DTYPES.get(dtype_name)
        if dtype is None:
            raise fail(f"tensor {name!r} has dtype {dtype_name}; .pyconv files hold F32 and I64 tensors")
        offset = 8 + header_length + header[name]["data_offsets"][0]
        array = np.ndarray(shape, dtype, buffer=mapped, offset=offset)
        constants[name] = array if array.flags.aligned else array.copy()
    return constants
