"""torch's checkpoint pickle, read without torch and without running any of the file.

A ``torch.save`` file holds a pickle whose tensors point, through persistent
ids, at raw storages kept beside it.  It is read in two phases:

1. ``read_pickle`` scans the pickle's opcodes (``pickletools.genops``): every
   length the pickle claims is checked against the bytes really there, memo
   indices are bounded, and every global it names is checked against the
   allowlist -- all before one object is built.  Then it unpickles with a
   ``find_class`` that resolves only allowlisted names, to pyconv's own
   objects: tensors and storages become inert descriptors (``TensorRef``,
   ``StorageRef``), validated as they are built; no tensor byte is read.
   An unresolvable name is refused by ``find_class`` as well.  Every object
   handed to the pickle refuses ``BUILD`` (``__setstate__``), so a pickle
   cannot alter it after it was validated.
2. ``materialize`` reads each storage once (through a callback that checks
   its size and checksum) and replaces the descriptors by numpy arrays.

Arrays: each storage is copied once from the file into a private, writable
buffer; a tensor is a view of its storage's buffer with torch's storage
offset, shape and strides (bounds checked before the view is made).  Tensors
that shared a storage in torch share memory here too, as after
``torch.load``; a transposed or sliced tensor stays a strided view.  A tensor
whose strides overlap (an expanded tensor, stride 0) is a read-only view.
bfloat16 has no numpy dtype: it is widened to float32 (exactly: bfloat16 is
the upper half of a float32).  Bool storages are normalised to 0/1.
"""
import _compat_pickle
import io
import math
import mmap
import pickle
import pickletools
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._threads import get_num_threads
from .errors import CheckpointError, UnsafeCheckpointError

__all__ = ["TorchDType", "StorageRef", "TensorRef", "StorageTable", "read_pickle", "materialize"]

_MAX_INDEX = 2**63 - 1          # torch's sizes, strides and offsets are int64
_MAX_NDIM = 64                  # numpy's (and torch's) dimension limit
# Below this many bytes, storages are read on one thread (a thread pool costs ~0.2 ms).
_PARALLEL_MIN_BYTES = 4 * 2**20
_STORAGE_KEY = re.compile(r"[0-9A-Za-z_]+\Z")
# Python's int hash is the value modulo 2**61 - 1: distinct ints share a hash
# only if one is at least that large.  Many such ints as dict keys make dict
# building quadratic (a 1 MB pickle would take minutes); a checkpoint has few.
_HUGE_INT = 2**61 - 1
_MAX_HUGE_INTS = 1000


class _Inert:
    """Base of every pyconv object a pickle can reach: its state cannot be set."""

    __slots__ = ()

    def __setstate__(self, state):
        raise CheckpointError(f"the pickle tries to set attributes on {self!r} (BUILD)")


class TorchDType(_Inert):
    """A torch dtype: the layout of its elements in the file and the numpy dtype returned."""

    __slots__ = ("name", "stored", "result")

    def __init__(self, name, stored, result):
        self.name = name                      # torch's name, e.g. "bfloat16"
        self.stored = np.dtype(stored)        # one element as written, little-endian
        self.result = np.dtype(result)        # dtype of the returned arrays

    def __repr__(self):
        return f"torch.{self.name}"

    def to_numpy(self, stored):
        """Convert an array of stored elements (``self.stored``, any byte order) to a new array."""
        if self.name == "bfloat16":
            widened = stored.astype(np.uint32)
            widened <<= 16
            return widened.view(np.float32)
        if self.name == "bool":
            return stored != 0
        return stored.astype(self.result, copy=False)


_DTYPES = {d.name: d for d in (
    TorchDType("float64", "<f8", np.float64),
    TorchDType("float32", "<f4", np.float32),
    TorchDType("float16", "<f2", np.float16),
    TorchDType("bfloat16", "<u2", np.float32),
    TorchDType("complex64", "<c8", np.complex64),
    TorchDType("complex128", "<c16", np.complex128),
    TorchDType("int64", "<i8", np.int64),
    TorchDType("int32", "<i4", np.int32),
    TorchDType("int16", "<i2", np.int16),
    TorchDType("int8", "i1", np.int8),
    TorchDType("uint64", "<u8", np.uint64),
    TorchDType("uint32", "<u4", np.uint32),
    TorchDType("uint16", "<u2", np.uint16),
    TorchDType("uint8", "u1", np.uint8),
    TorchDType("bool", "u1", np.bool_),
)}

# torch's legacy typed-storage classes (torch/storage.py, _dtype_to_storage_type_map).
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class StorageType(_Inert):
    """``torch.FloatStorage`` & co.: the dtype of a storage named in a persistent id."""

    __slots__ = ("qualname", "dtype")

    def __init__(self, qualname, dtype):
        self.qualname = qualname
        self.dtype = dtype

    def __repr__(self):
        return self.qualname


class TensorType(_Inert):
    """``torch.Tensor`` / ``torch.nn.Parameter`` as the type argument of ``_rebuild_from_type_v2``."""

    __slots__ = ("qualname",)

    def __init__(self, qualname):
        self.qualname = qualname

    def __repr__(self):
        return self.qualname


class StorageRef(_Inert):
    """A storage of the file: ``numel`` elements of ``dtype`` under record ``key``."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key, dtype, numel):
        self.key = key
        self.dtype = dtype
        self.numel = numel

    @property
    def nbytes(self):
        return self.numel * self.dtype.stored.itemsize

    def __repr__(self):
        return f"storage {self.key!r} ({self.numel} x {self.dtype.name})"


class TensorRef(_Inert):
    """A tensor as torch rebuilds it: a strided view of a storage, validated against it."""

    __slots__ = ("storage", "dtype", "offset", "shape", "stride", "negate", "conjugate")

    def __init__(self, storage, dtype, offset, shape, stride, negate, conjugate):
        self.storage = storage
        self.dtype = dtype
        self.offset = offset
        self.shape = shape
        self.stride = stride
        self.negate = negate
        self.conjugate = conjugate

    def __repr__(self):
        return (f"tensor of shape {self.shape}, stride {self.stride}, offset {self.offset}, "
                f"{self.dtype.name}, in {self.storage!r}")

    def elements_needed(self):
        """Number of storage elements (of ``dtype``) the view reaches, 0 if it is empty."""
        if 0 in self.shape:
            return 0
        return self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1

    def overlaps(self):
        """True if two elements of the view share memory (e.g. an expanded tensor)."""
        reach = 0       # farthest element reached by the dimensions of smaller stride
        for s, n in sorted((s, n) for n, s in zip(self.shape, self.stride) if n > 1):
            if s <= reach:
                return True
            reach += (n - 1) * s
        return False


def _index(value, what):
    if type(value) is not int or not 0 <= value <= _MAX_INDEX:
        raise CheckpointError(f"tensor {what} must be an integer in [0, 2**63), got {value!r}")
    return value


def _indices(value, what):
    if type(value) is not tuple:
        raise CheckpointError(f"tensor {what} must be a tuple of integers, got {value!r}")
    if len(value) > _MAX_NDIM:
        raise CheckpointError(f"tensor {what} has {len(value)} dimensions, at most {_MAX_NDIM} are supported")
    return tuple(_index(v, what) for v in value)


def _tensor_ref(storage, offset, shape, stride, dtype, metadata):
    if not isinstance(storage, StorageRef):
        raise CheckpointError(f"a tensor is rebuilt from {storage!r}, expected a storage")
    if dtype is None:
        dtype = storage.dtype
    elif not isinstance(dtype, TorchDType):
        raise CheckpointError(f"a tensor's dtype is {dtype!r}, expected a torch dtype")
    shape = _indices(shape, "size")
    stride = _indices(stride, "stride")
    if len(shape) != len(stride):
        raise CheckpointError(f"tensor size {shape} and stride {stride} differ in length")
    if metadata is None:
        metadata = {}
    if type(metadata) not in (dict, OrderedDict) or not set(metadata) <= {"neg", "conj"}:
        raise CheckpointError(f"unsupported tensor metadata {metadata!r} (only 'neg' and 'conj' are known)")
    negate, conjugate = bool(metadata.get("neg", False)), bool(metadata.get("conj", False))
    if negate and dtype.name == "bool":
        raise CheckpointError("a bool tensor carries the negation bit")
    if math.prod(n for n in shape if n) * dtype.result.itemsize > _MAX_INDEX:
        raise CheckpointError(f"tensor size {shape} is too large for any array")
    tensor = TensorRef(storage, dtype, _index(offset, "storage offset"), shape, stride, negate, conjugate)
    needed = tensor.elements_needed() * dtype.stored.itemsize
    if needed > storage.nbytes:
        raise CheckpointError(f"{tensor!r} needs {needed} bytes, but the storage holds {storage.nbytes}")
    return tensor


# torch/_utils.py's rebuild functions, with their signatures; requires_grad and
# backward hooks (an empty OrderedDict in every torch.save file) are ignored.
def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor_ref(storage, storage_offset, size, stride, None, None)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    return _tensor_ref(storage, storage_offset, size, stride, None, metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    return _tensor_ref(storage, storage_offset, size, stride, dtype, metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"a Parameter is rebuilt from {data!r}, expected a tensor")
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


_TENSOR_REBUILDS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3,
                    _rebuild_parameter, _rebuild_parameter_with_state)


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch/_tensor.py: a tensor with Python attributes (dropped here)."""
    if not (isinstance(func, _Global) and func.function in _TENSOR_REBUILDS):
        raise CheckpointError(f"_rebuild_from_type_v2 called with {func!r}, expected a tensor rebuild function")
    if not isinstance(new_type, TensorType) or type(args) is not tuple:
        raise CheckpointError(f"_rebuild_from_type_v2 called with type {new_type!r}")
    return func(*args)


def _size(dims):
    return _indices(dims, "size")


def _device(kind, index=None):
    if type(kind) is not str or not (index is None or type(index) is int):
        raise CheckpointError(f"invalid torch.device{(kind, index)!r}")
    return kind if index is None else f"{kind}:{index}"


def _latin1(text, encoding):
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"refused _codecs.encode{(text, encoding)!r}: only latin-1 text is decoded")
    return text.encode("latin-1")


def _bytearray(*args):
    if args == ():
        return bytearray()
    return bytearray(_latin1(*args))


def _ordered_dict(*items):
    if len(items) > 1 or (items and type(items[0]) not in (list, tuple, dict, OrderedDict)):
        raise CheckpointError(f"invalid OrderedDict arguments {items!r}")
    return OrderedDict(*items)


class _Global(_Inert):
    """An allowlisted callable global, as the pickle sees it."""

    __slots__ = ("qualname", "function")

    def __init__(self, qualname, function):
        self.qualname = qualname
        self.function = function

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return self.qualname


def _allowlist():
    allowed = {name: _Global(name, fn) for name, fn in {
        "collections.OrderedDict": _ordered_dict,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.Size": _size,
        "torch.device": _device,
        "_codecs.encode": _latin1,
        "builtins.bytearray": _bytearray,
    }.items()}
    # Immutable builtin types whose constructors only build a value (complex
    # arrives through NEWOBJ, which needs the type itself).
    allowed.update({"builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex})
    allowed.update({f"torch.{name}": StorageType(f"torch.{name}", _DTYPES[dtype])
                    for name, dtype in _STORAGE_DTYPES.items()})
    for qualname in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
        allowed[qualname] = StorageType(qualname, _DTYPES["uint8"])
    allowed.update({f"torch.{name}": dtype for name, dtype in _DTYPES.items()})
    allowed.update({name: TensorType(name) for name in ("torch.Tensor", "torch.nn.parameter.Parameter")})
    return allowed


_ALLOWED = _allowlist()


def _qualified_name(module, name):
    """``module.name`` as Python 3 reads it (protocol 2 pickles write ``__builtin__`` etc.)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


_UNSUPPORTED_TORCH_DTYPE = re.compile(r"torch\.(\w*Storage|float8\w*|float4\w*|q\w+|bits\w+|complex32|u?int[1-7])\Z")


def _refusal(names):
    listed = ", ".join(repr(n) for n in names)
    hint = ""
    if any(n.startswith(("torch.nn.", "__main__.", "__torch__.")) for n in names):
        hint = " The file holds a pickled model object: save model.state_dict() instead."
    elif any(_UNSUPPORTED_TORCH_DTYPE.match(n) for n in names):
        hint = f" Tensors of that dtype are not supported; supported: {', '.join(_DTYPES)}."
    return UnsafeCheckpointError(
        f"refused global(s) {listed}: pyconv loads only tensors, storages, OrderedDict and plain "
        f"containers, numbers and strings; nothing of the file was run.{hint}")


# Opcodes a torch checkpoint never needs: the copyreg extension registry and
# out-of-band buffers reach outside the pickle.
_REFUSED_OPCODES = {"EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"}
_STRING_OPCODES = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
                   "STRING", "BINSTRING", "SHORT_BINSTRING"}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}


def _scan(buffer, start, what):
    """Check the pickle at ``buffer[start:]`` opcode by opcode; return the offset after its STOP."""
    stream = buffer if isinstance(buffer, mmap.mmap) else io.BytesIO(buffer)
    stream.seek(start)
    globals_named = []
    memo_strings = {}
    recent_strings = []      # strings pushed since the last other opcode (for STACK_GLOBAL)
    opcodes = 0
    huge_ints = 0
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            opcodes += 1
            name = opcode.name
            if name in _REFUSED_OPCODES:
                raise CheckpointError(f"{what} uses the pickle opcode {name}, which a checkpoint never needs")
            if name == "PROTO" and arg > pickle.HIGHEST_PROTOCOL:
                raise CheckpointError(f"{what} claims pickle protocol {arg}")
            if name == "FRAME" and arg > len(buffer) - pos:
                raise CheckpointError(f"{what} claims a frame of {arg} bytes, past the end of the data")
            if type(arg) is int and abs(arg) >= _HUGE_INT:
                huge_ints += 1
                if huge_ints > _MAX_HUGE_INTS:
                    raise CheckpointError(f"{what} holds more than {_MAX_HUGE_INTS} integers beyond 2**61 "
                                          f"(dict keys that all hash alike would make loading hang)")
            if name in _STRING_OPCODES:
                recent_strings.append(arg)
                continue
            if name in _MEMO_PUTS:
                index = len(memo_strings) if arg is None else arg
                if index > opcodes:
                    raise CheckpointError(f"{what} stores memo entry {index} after {opcodes} opcodes")
                memo_strings[index] = recent_strings[-1] if recent_strings else None
                continue
            if name in _MEMO_GETS:
                recent_strings.append(memo_strings.get(arg))
                continue
            if name in ("GLOBAL", "INST"):
                globals_named.append(_qualified_name(*arg.split(" ", 1)))
            elif name == "STACK_GLOBAL" and len(recent_strings) >= 2:
                module, qualname = recent_strings[-2:]
                if isinstance(module, str) and isinstance(qualname, str):
                    globals_named.append(_qualified_name(module, qualname))
                # otherwise the name is not known statically: find_class checks it.
            elif name == "STOP":
                end = pos + 1
            recent_strings.clear()
    except CheckpointError:
        raise
    except Exception as error:       # genops: truncated data, unknown opcode, bad lengths
        raise CheckpointError(f"{what} is not a valid pickle: {error}") from None
    refused = [n for n in dict.fromkeys(globals_named) if n not in _ALLOWED]
    if refused:
        raise _refusal(refused)
    return end


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data, persistent_load):
        super().__init__(io.BytesIO(data))
        self._persistent_load = persistent_load

    def find_class(self, module, name):
        qualname = _qualified_name(module, name)
        if qualname not in _ALLOWED:
            raise _refusal([qualname])
        return _ALLOWED[qualname]

    def persistent_load(self, saved_id):
        if self._persistent_load is None:
            raise CheckpointError(f"unexpected persistent id {saved_id!r}")
        return self._persistent_load(saved_id)


def read_pickle(buffer, start, what, persistent_load=None):
    """Read the pickle at ``buffer[start:]`` (bytes or mmap) restricted as above.

    ``persistent_load(saved_id)`` resolves persistent ids (None: none allowed).
    Returns ``(object, end offset)``; the object may hold descriptors.
    """
    end = _scan(buffer, start, what)
    try:
        return _RestrictedUnpickler(buffer[start:end], persistent_load).load(), end
    except CheckpointError as error:
        raise type(error)(f"{what}: {error}") from None
    except Exception as error:
        raise CheckpointError(f"{what} is not a valid checkpoint pickle: {type(error).__name__}: {error}") from None


class StorageTable:
    """The storages a pickle names through persistent ids, one ``StorageRef`` per key."""

    def __init__(self):
        self.storages = {}

    def persistent_load(self, saved_id):
        """torch's persistent ids: ``('storage', type, key, location, numel[, view_metadata])``."""
        if type(saved_id) is not tuple or not saved_id or saved_id[0] != "storage":
            raise CheckpointError(f"refused persistent id {saved_id!r}: only storages are loaded")
        if len(saved_id) == 6:
            if saved_id[5] is not None:
                raise CheckpointError(f"storage views (persistent id {saved_id!r}) are not supported")
            saved_id = saved_id[:5]
        if len(saved_id) != 5:
            raise CheckpointError(f"invalid storage persistent id {saved_id!r}")
        _, storage_type, key, location, numel = saved_id
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(f"storage {key!r} has type {storage_type!r}, expected a torch storage type")
        if type(key) is not str or not _STORAGE_KEY.match(key) or type(location) is not str:
            raise CheckpointError(f"invalid storage key or location in {saved_id!r}")
        numel = _index(numel, "storage size")
        storage = self.storages.setdefault(key, StorageRef(key, storage_type.dtype, numel))
        if storage.dtype is not storage_type.dtype or storage.numel != numel:
            raise CheckpointError(f"storage {key!r} is claimed as {storage!r} and as "
                                  f"{numel} x {storage_type.dtype.name}")
        return storage


class _Materializer:
    def __init__(self, raw, byteorder):
        self._raw = raw
        self._byteorder = byteorder
        self._typed = {}
        self._done = {}

    def storage_array(self, storage, dtype):
        """The storage's elements as a 1-D array of ``dtype.result``, built once per (storage, dtype)."""
        key = (storage.key, dtype.name)
        if key not in self._typed:
            raw = self._raw[storage.key]
            stored = dtype.stored.newbyteorder("<" if self._byteorder == "little" else ">")
            count = raw.size // stored.itemsize
            self._typed[key] = dtype.to_numpy(raw[:count * stored.itemsize].view(stored))
        return self._typed[key]

    def tensor(self, tensor):
        base = self.storage_array(tensor.storage, tensor.dtype)
        if tensor.elements_needed() > base.size:       # checked in phase 1; as_strided trusts it
            raise CheckpointError(f"{tensor!r} reaches past the end of its storage")
        if 0 in tensor.shape:
            array = np.empty(tensor.shape, base.dtype)
        else:
            array = as_strided(base[tensor.offset:], shape=tensor.shape,
                               strides=[s * base.itemsize for s in tensor.stride],
                               writeable=not tensor.overlaps())
        if tensor.negate:
            array = np.negative(array)
        if tensor.conjugate:
            array = np.conjugate(array)
        return array

    def convert(self, obj):
        done = self._done.get(id(obj))
        if done is not None:
            return done[1]
        kind = type(obj)
        if kind in (OrderedDict, dict):
            result = kind()
            self._done[id(obj)] = (obj, result)
            for key, value in obj.items():
                result[self.convert(key)] = self.convert(value)
            return result
        if kind is list:
            result = []
            self._done[id(obj)] = (obj, result)
            result.extend(self.convert(item) for item in obj)
            return result
        if kind in (tuple, set, frozenset):
            result = kind(self.convert(item) for item in obj)
        elif kind is TensorRef:
            result = self.tensor(obj)
        elif kind is StorageRef:
            result = self.storage_array(obj, obj.dtype)
        elif kind in (TorchDType, TensorType, StorageType):
            result = repr(obj)
        elif obj is None or kind in (bool, int, float, complex, str, bytes, bytearray):
            return obj
        else:
            raise CheckpointError(f"the pickle stores {obj!r} as a value")
        self._done[id(obj)] = (obj, result)
        return result


def _read_all(storages, read_storage):
    """Every storage's bytes by key; in parallel threads (copies and CRC-32 release the GIL)."""
    threads = min(get_num_threads(), len(storages))
    if threads <= 1 or sum(s.nbytes for s in storages) < _PARALLEL_MIN_BYTES:
        return {s.key: read_storage(s) for s in storages}
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip((s.key for s in storages), pool.map(read_storage, storages)))


def materialize(obj, storages, read_storage, byteorder="little"):
    """Replace the descriptors in ``obj`` by numpy arrays (see the module docstring).

    ``storages`` is the ``StorageTable`` the pickle was read with;
    ``read_storage(storage_ref)`` returns a storage's bytes as a fresh uint8
    array of exactly ``storage_ref.nbytes`` bytes, verified.  torch dtypes
    stored as values become strings such as ``'torch.float32'``.
    """
    raw = _read_all(list(storages.storages.values()), read_storage)
    try:
        return _Materializer(raw, byteorder).convert(obj)
    except RecursionError:
        raise CheckpointError("the pickle nests containers too deeply") from None
    except TypeError as error:          # e.g. an array used as a dict key or set element
        raise CheckpointError(f"the pickle builds an invalid container: {error}") from None
