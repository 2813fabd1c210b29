"""The torch tensor functions CNN forwards call, for numpy arrays, with torch's signatures.

A ported forward changes ``torch.cat(xs, 1)`` to ``pyconv.cat(xs, 1)``. Results
are numpy arrays; where torch returns a view (reshape, permute, transpose,
chunk, split, flatten) so does numpy where it can. Result dtypes follow
torch's promotion (e.g. int64 array + float32 array -> float32; a Python
float with a float32 array stays float32).
"""
import math
import numbers
import operator

import numpy as np

from . import functional as F

__all__ = ["cat", "concat", "stack", "flatten", "reshape", "permute", "transpose", "chunk", "split", "add", "mul",
           "sigmoid", "tanh", "relu", "mean", "amax", "clamp", "clip"]

_DEFAULT_FLOAT = np.dtype(np.float32)  # torch's default dtype


# --- helpers -------------------------------------------------------------------------------

def _array(x, name, op):
    """``x`` as a numpy array (not copied when it already is one)."""
    if isinstance(x, np.ndarray):
        return x
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{op}: expected {name} to be a numpy array, got {type(x).__name__}")
    return np.asarray(x)


def _int(value, name, op):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{op}: expected {name} to be an int, got {type(value).__name__} {value!r}")
    return operator.index(value)


def _dim(dim, ndim, op, name="dim"):
    """``dim`` wrapped into [0, ndim) as torch does (a 0-d array accepts -1 and 0)."""
    dim = _int(dim, name, op)
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{op}: {name} out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size


def _dims(dim, ndim, op):
    """A reduction's dims (None, an int, or a sequence; empty means all) as a sorted tuple."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        wrapped = [_dim(d, ndim, op) for d in dim]
        for d in wrapped:
            if wrapped.count(d) > 1:
                raise ValueError(f"{op}: dim {d} appears multiple times in the list of dims")
        return tuple(sorted(wrapped)) if wrapped else tuple(range(ndim))
    return (_dim(dim, ndim, op),) if ndim else ()


def _category(dtype):
    return 0 if dtype.kind == "b" else 1 if dtype.kind in "iu" else 2


def _result_dtype(*operands):
    """torch's type promotion: arrays with dims outrank 0-d arrays, which outrank Python scalars,
    unless a lower tier has a higher category (bool < integer < floating)."""
    tiers = ([], [], [])  # dimensioned arrays, 0-d arrays, Python scalars
    for value in operands:
        if value is None:
            continue
        if isinstance(value, (np.ndarray, np.generic)):
            tiers[0 if np.ndim(value) else 1].append(np.asarray(value).dtype)
        elif isinstance(value, bool):
            tiers[2].append(np.dtype(np.bool_))
        elif isinstance(value, numbers.Integral):
            tiers[2].append(np.dtype(np.int64))
        elif isinstance(value, numbers.Real):
            tiers[2].append(_DEFAULT_FLOAT)
        else:
            raise TypeError(f"expected numpy arrays or numbers, got {type(value).__name__}")
    result = None
    for tier in tiers:
        if not tier:
            continue
        best = max(_category(d) for d in tier)
        if result is None or best > _category(result):
            result = np.result_type(*[d for d in tier if _category(d) == best])
    return result


def _as_float(x, op):
    """Integer and bool arrays become float32, as torch's float-only ops promote them."""
    x = _array(x, "input", op)
    return x.astype(_DEFAULT_FLOAT) if x.dtype.kind in "biu" else x


# --- joining and splitting ---------------------------------------------------------------------

def _sequence(tensors, op):
    if isinstance(tensors, np.ndarray) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of arrays, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of arrays")
    return [_array(t, "tensors", op) for t in tensors]


def cat(tensors, dim=0):
    """Join arrays along existing dim ``dim``; the other sizes must match (as torch.cat)."""
    op = "cat"
    arrays = _sequence(tensors, op)
    first = arrays[0]
    if first.ndim == 0:
        raise ValueError(f"{op}: zero-dimensional array (at position 0) cannot be concatenated")
    dim = _dim(dim, first.ndim, op)
    for index, array in enumerate(arrays[1:], 1):
        if array.ndim != first.ndim:
            raise ValueError(f"{op}: expected all arrays to have {first.ndim} dims, got {array.ndim} dims for "
                             f"array number {index} in the list")
        for d in range(first.ndim):
            if d != dim and array.shape[d] != first.shape[d]:
                raise ValueError(f"{op}: sizes of arrays must match except in dimension {dim}. Expected size "
                                 f"{first.shape[d]} but got size {array.shape[d]} for array number {index} in the "
                                 f"list (shapes {first.shape} and {array.shape})")
    dtype = _result_dtype(*arrays)
    return np.concatenate([a.astype(dtype, copy=False) for a in arrays], axis=dim)


concat = cat


def stack(tensors, dim=0):
    """Join equal-shaped arrays along a new dim ``dim`` (as torch.stack)."""
    op = "stack"
    arrays = _sequence(tensors, op)
    for index, array in enumerate(arrays[1:], 1):
        if array.shape != arrays[0].shape:
            raise ValueError(f"{op}: expects each array to be equal size, but got {list(arrays[0].shape)} at entry 0 "
                             f"and {list(array.shape)} at entry {index}")
    dim = _dim(dim, arrays[0].ndim + 1, op)
    dtype = _result_dtype(*arrays)
    return np.stack([a.astype(dtype, copy=False) for a in arrays], axis=dim)


def chunk(input, chunks, dim=0):
    """Split into at most ``chunks`` views of ceil(size / chunks) along ``dim`` (as torch.chunk;
    fewer chunks come back when the size does not allow more)."""
    op = "chunk"
    x = _array(input, "input", op)
    if x.ndim == 0:
        raise ValueError(f"{op}: expects at least a 1-dimensional array")
    chunks = _int(chunks, "chunks", op)
    if chunks <= 0:
        raise ValueError(f"{op}: expects `chunks` to be greater than 0, got: {chunks}")
    dim = _dim(dim, x.ndim, op)
    size = x.shape[dim]
    if size == 0:
        return split(x, [0] * chunks, dim)
    return split(x, -(-size // chunks), dim)


def split(tensor, split_size_or_sections, dim=0):
    """Views of ``split_size`` along ``dim`` (the last one smaller), or of the given section sizes,
    which must add up to the size (as torch.split)."""
    op = "split"
    x = _array(tensor, "tensor", op)
    if x.ndim == 0:
        raise ValueError(f"{op}: expects at least a 1-dimensional array")
    dim = _dim(dim, x.ndim, op)
    size = x.shape[dim]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = [_int(s, "split_size_or_sections", op) for s in split_size_or_sections]
        if any(s < 0 for s in sections):
            raise ValueError(f"{op}: split_with_sizes expects split_sizes to be non-negative, got {sections}")
        if sum(sections) != size:
            raise ValueError(f"{op}: split_with_sizes expects split_sizes to sum exactly to {size} (input size at "
                             f"dimension {dim}), but got split_sizes={sections}")
    else:
        split_size = _int(split_size_or_sections, "split_size_or_sections", op)
        if split_size < 0:
            raise ValueError(f"{op}: expects split_size be non-negative, but got split_size={split_size}")
        if split_size == 0 and size != 0:
            raise ValueError(f"{op}: split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        count = max(-(-size // split_size), 1) if split_size else 1
        sections = [split_size] * (count - 1) + [size - split_size * (count - 1)]
    bounds = np.cumsum([0] + sections)
    index = [slice(None)] * x.ndim
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index[dim] = slice(int(start), int(stop))
        pieces.append(x[tuple(index)])
    return tuple(pieces)


# --- views ------------------------------------------------------------------------------------

def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one (as torch.flatten; a view where possible)."""
    return F.flatten(input, start_dim, end_dim)


def reshape(input, shape):
    """``input`` with a new ``shape`` (one entry may be -1), a view where possible (as torch.reshape)."""
    op = "reshape"
    x = _array(input, "input", op)
    shape = (shape,) if isinstance(shape, (numbers.Integral, np.integer)) else tuple(shape)
    shape = tuple(_int(s, "shape", op) for s in shape)
    known = math.prod(s for s in shape if s != -1)
    inferred = shape.count(-1)
    if inferred > 1:
        raise ValueError(f"{op}: only one dimension can be inferred, got shape {list(shape)}")
    if any(s < -1 for s in shape) or (known != x.size if not inferred else (known == 0 or x.size % known)):
        raise ValueError(f"{op}: shape '{list(shape)}' is invalid for input of size {x.size}")
    return x.reshape(shape)


def permute(input, dims):
    """The dims of ``input`` reordered as ``dims`` (a view; as torch.permute)."""
    op = "permute"
    x = _array(input, "input", op)
    dims = tuple(dims)
    if len(dims) != x.ndim:
        raise ValueError(f"{op}: number of dims don't match in permute: input has {x.ndim} dims, got dims {dims}")
    wrapped = [_dim(d, x.ndim, op) for d in dims]
    if len(set(wrapped)) != len(wrapped):
        raise ValueError(f"{op}: duplicate dims are not allowed, got {dims}")
    return x.transpose(wrapped)


def transpose(input, dim0, dim1):
    """``input`` with dims ``dim0`` and ``dim1`` swapped (a view; as torch.transpose)."""
    op = "transpose"
    x = _array(input, "input", op)
    dim0 = _dim(dim0, x.ndim, op, "dim0")
    dim1 = _dim(dim1, x.ndim, op, "dim1")
    return x if x.ndim == 0 else np.swapaxes(x, dim0, dim1)


# --- arithmetic ---------------------------------------------------------------------------------

def add(input, other, *, alpha=1):
    """input + alpha * other, broadcast, with torch's result dtype (as torch.add)."""
    op = "add"
    dtype = _result_dtype(input, other)
    if isinstance(alpha, bool) or not isinstance(alpha, (numbers.Number, np.number)):
        raise TypeError(f"{op}: expected alpha to be a number, got {type(alpha).__name__}")
    if dtype.kind in "biu" and not isinstance(alpha, (numbers.Integral, np.integer)):
        raise TypeError(f"{op}: for integral inputs, argument alpha must not be a floating point number, got {alpha}")
    a = np.asarray(input, dtype=dtype)
    b = np.asarray(other, dtype=dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # Inf - Inf: NaN; overflow: Inf; silently as torch
        if alpha != 1:
            b = b * dtype.type(alpha)
        return np.asarray(np.add(a, b))


def mul(input, other):
    """input * other, broadcast, with torch's result dtype (as torch.mul)."""
    dtype = _result_dtype(input, other)
    with np.errstate(invalid="ignore", over="ignore"):  # 0 * Inf: NaN; overflow: Inf; silently as torch
        return np.asarray(np.multiply(np.asarray(input, dtype=dtype), np.asarray(other, dtype=dtype)))


def sigmoid(input):
    """1 / (1 + exp(-x)) (as torch.sigmoid; integer input gives float32)."""
    return F.sigmoid(_as_float(input, "sigmoid"))


def tanh(input):
    """tanh(x) (as torch.tanh; integer input gives float32)."""
    return F.tanh(_as_float(input, "tanh"))


def relu(input):
    """max(x, 0) (as torch.relu; integer input stays integer)."""
    x = _array(input, "input", "relu")
    if x.dtype.kind == "b":
        raise TypeError("relu: expected a numeric array, got dtype bool")
    if x.dtype.kind in "iu":
        return np.asarray(np.maximum(x, 0))
    return F.relu(x)


# --- reductions ---------------------------------------------------------------------------------

def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim`` (None or () / []: all dims) as torch.mean; floating input (or dtype=) only."""
    op = "mean"
    x = _array(input, "input", op)
    if dtype is not None:
        x = x.astype(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: could not infer output dtype. Input dtype must be floating point, got {x.dtype}; "
                        "pass dtype=numpy.float32 or cast the input")
    axes = _dims(dim, x.ndim, op)
    count = math.prod(x.shape[axis] for axis in axes)
    with np.errstate(invalid="ignore", divide="ignore"):  # the mean of nothing is NaN, silently as torch
        result = np.sum(x, axis=axes, keepdims=keepdim) / x.dtype.type(count)
    return np.asarray(result, dtype=x.dtype)


def amax(input, dim=(), keepdim=False):
    """Maximum over ``dim`` (() / []: all dims), NaN propagating, as torch.amax."""
    op = "amax"
    x = _array(input, "input", op)
    axes = _dims(dim, x.ndim, op)
    for axis in axes:
        if x.shape[axis] == 0:
            raise ValueError(f"{op}: expected reduction dim {axis} to have non-zero size, got input of shape {x.shape}")
    return np.asarray(np.amax(x, axis=axes, keepdims=keepdim))


def clamp(input, min=None, max=None):
    """Values limited to [min, max] (either may be None, or an array that broadcasts); as torch.clamp,
    min > max gives max everywhere and NaN propagates."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    x = _array(input, "input", "clamp")
    dtype = _result_dtype(x, min, max)
    result = np.asarray(x, dtype=dtype)
    if min is not None:
        result = np.maximum(result, np.asarray(min, dtype=dtype))
    if max is not None:
        result = np.minimum(result, np.asarray(max, dtype=dtype))
    return np.asarray(result)


clip = clamp
