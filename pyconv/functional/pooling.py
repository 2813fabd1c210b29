"""Pooling ops of ``torch.nn.functional`` for numpy arrays.

Max, average and power-average pooling, max unpooling and adaptive pooling
in 1d, 2d and 3d, batched ``(N, C, *spatial)`` or unbatched
``(C, *spatial)``, float32 or float64.  Each op checks its arguments as torch
does, views the input as ``(planes, D, H, W)`` and calls a kernel from
``pyconv._kernels.pooling`` or ``pyconv._kernels.adaptive_pooling``.
"""
import functools
import math

import numpy as np

from .. import _aligned as aligned
from .._kernels import adaptive_pooling as _adaptive_kernels
from .._kernels import pooling as _kernels
from .._threads import kernel_threads
from ._checks import as_float_array, as_int, as_tuple, check_ndim, check_number
from .shapes import lift_to_3d, pool_output_shape

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
]

_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


# ---------------------------------------------------------------- helpers

def _as_bool(value, name, op):
    """``value`` as a Python bool; TypeError for anything but bool / numpy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: expected {name} to be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_input(input, n, op, empty_channels_ok=False):
    """The input as a C-contiguous float array of n + 1 (unbatched) or n + 2 dims.

    Channel and spatial sizes must be non-zero (the channel size may be zero
    when ``empty_channels_ok``); the batch size may be zero.
    """
    x = as_float_array(input, "input", op)
    names = _SPATIAL_NAMES[n]
    check_ndim(x, "input", op, (n + 1, n + 2), f"(C, {names}) or (N, C, {names})")
    checked = x.shape[-n:] if empty_channels_ok else x.shape[-n - 1:]
    if 0 in checked:
        what = f"spatial sizes ({names})" if empty_channels_ok else f"channel and spatial sizes (C, {names})"
        raise ValueError(f"{op}: expected input with non-zero {what}, got shape {x.shape}")
    return x


def _planes(x, n):
    """``x`` (..., *spatial) viewed as (P, D, H, W), missing leading spatial axes as size 1."""
    spatial = x.shape[-n:]
    planes = math.prod(x.shape[:-n])
    return x.reshape((planes,) + (1,) * (3 - n) + spatial)


def _planes_out(out, planes, spatial, dtype):
    """A pool's output seen as (P, D, H, W) as _planes sees its input: ``out`` (a C-contiguous array of
    ``planes`` * prod(spatial) elements of ``dtype``, filled in place) or a new array."""
    shape = (planes,) + lift_to_3d(spatial, 1)
    if out is None:
        return aligned.empty(shape, dtype)
    if out.dtype != dtype or out.size != math.prod(shape) or not out.flags.c_contiguous:
        raise ValueError(f"expected out of {math.prod(shape)} C-contiguous {np.dtype(dtype)} elements, got "
                         f"{out.shape} {out.dtype}")
    return out.reshape(shape)


def _is_default_stride(stride):
    return stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)


def _plain(value):
    """``value`` if it is an int or a tuple of ints (exact types, so equal keys mean equal
    arguments: 2.0 and True are not 2), else None."""
    if type(value) is int or value is None:
        return value
    if type(value) is tuple and all(type(v) is int for v in value):
        return value
    return None


def _window_args(op, n, kernel_size, stride, padding, dilation=1):
    """kernel_size, stride (None or () = kernel_size), padding and dilation as checked n-tuples.

    Layers call a pool with the same plain-int arguments again and again: those
    are checked once and remembered (checking costs as much as pooling a small
    input); anything else is checked every time.
    """
    arguments = (kernel_size, stride, padding, dilation)
    if all(_plain(a) is not None or a is None for a in arguments):
        return _checked_window_args(op, n, *arguments)
    return _check_window_args(op, n, *arguments)


@functools.lru_cache(maxsize=512)
def _checked_window_args(op, n, kernel_size, stride, padding, dilation):
    return _check_window_args(op, n, kernel_size, stride, padding, dilation)


def _check_window_args(op, n, kernel_size, stride, padding, dilation):
    kernel = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    strides = kernel if _is_default_stride(stride) else as_tuple(stride, n, "stride", op, minimum=1)
    pads = as_tuple(padding, n, "padding", op, minimum=0)
    dilations = as_tuple(dilation, n, "dilation", op, minimum=1)
    # torch's condition uses the undilated kernel, for max and average pools alike.
    half = tuple(k // 2 for k in kernel)
    if any(p > h for p, h in zip(pads, half)):
        raise ValueError(
            f"{op}: expected padding to be at most half of kernel_size ({half if n > 1 else half[0]}), "
            f"got {pads if n > 1 else pads[0]}"
        )
    return kernel, strides, pads, dilations


def _pool_output(op, x, n, kernel, strides, pads, dilations, ceil_mode):
    """The pooled spatial size; ValueError when some dimension would be <= 0."""
    spatial = x.shape[-n:]
    out = _pool_output_shape(spatial, kernel, strides, pads, dilations, ceil_mode)
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{op}: input spatial size {spatial} is too small for kernel_size {kernel} "
            f"(stride {strides}, padding {pads}, dilation {dilations}): computed output size {out}"
        )
    return out


_pool_output_shape = functools.lru_cache(maxsize=512)(pool_output_shape)  # all arguments checked tuples of ints


# ---------------------------------------------------------------- max pool

def _max_pool(op, n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out=None,
              indices=None):
    """max_pool{n}d; ``out`` / ``indices``: C-contiguous arrays of the output's shape and dtype to fill instead
    of new ones (the graph executor's arena)."""
    x = _check_input(input, n, op)
    kernel, strides, pads, dilations = _window_args(op, n, kernel_size, stride, padding, dilation)
    ceil_mode = _as_bool(ceil_mode, "ceil_mode", op)
    return_indices = _as_bool(return_indices, "return_indices", op)
    out_spatial = _pool_output(op, x, n, kernel, strides, pads, dilations, ceil_mode)
    planes = _planes(x, n)
    out = _planes_out(out, planes.shape[0], out_spatial, x.dtype)
    indices = _planes_out(indices, planes.shape[0], out_spatial, np.int64) if return_indices else None
    _kernels.max_pool(planes, out, indices, lift_to_3d(kernel, 1), lift_to_3d(strides, 1),
                      lift_to_3d(pads, 0), lift_to_3d(dilations, 1), kernel_threads(out.size * math.prod(kernel)))
    shape = x.shape[:-n] + out_spatial
    if return_indices:
        return out.reshape(shape), indices.reshape(shape)
    return out.reshape(shape)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1D max pooling over (N, C, L) or (C, L); with ``return_indices`` also the int64 argmax positions."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2D max pooling over (N, C, H, W) or (C, H, W); indices are flat per (H, W) plane, as in torch."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3D max pooling over (N, C, D, H, W) or (C, D, H, W); indices are flat per (D, H, W) volume."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------- average pool

def _avg_pool(op, n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out=None):
    """avg_pool{n}d; ``out`` as in _max_pool."""
    x = _check_input(input, n, op)
    kernel, strides, pads, _ = _window_args(op, n, kernel_size, stride, padding)
    ceil_mode = _as_bool(ceil_mode, "ceil_mode", op)
    count_include_pad = _as_bool(count_include_pad, "count_include_pad", op)
    if divisor_override is None:
        divisor = 0
    else:
        divisor = as_int(divisor_override, "divisor_override", op)
        if divisor == 0:
            raise ValueError(f"{op}: expected divisor_override to be a non-zero int or None, got 0")
    if n == 3 and any(size < k for size, k in zip(x.shape[-3:], kernel)):
        # torch's avg_pool3d refuses these even when padding would make room.
        raise ValueError(
            f"{op}: expected input spatial size {x.shape[-3:]} to be at least kernel_size {kernel} "
            "in every dimension (padding not counted)"
        )
    out_spatial = _pool_output(op, x, n, kernel, strides, pads, (1,) * n, ceil_mode)
    planes = _planes(x, n)
    out = _planes_out(out, planes.shape[0], out_spatial, x.dtype)
    _kernels.avg_pool(planes, out, lift_to_3d(kernel, 1), lift_to_3d(strides, 1), lift_to_3d(pads, 0),
                      count_include_pad, divisor, kernel_threads(out.size * math.prod(kernel)))
    return out.reshape(x.shape[:-n] + out_spatial)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1D average pooling over (N, C, L) or (C, L)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2D average pooling over (N, C, H, W) or (C, H, W), with torch's divisor rules."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3D average pooling over (N, C, D, H, W) or (C, D, H, W), with torch's divisor rules."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---------------------------------------------------------------- power-average pool

_MAX_POOLS = {1: max_pool1d, 2: max_pool2d, 3: max_pool3d}
_AVG_POOLS = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}


def _lp_pool(op, n, input, norm_type, kernel_size, stride, ceil_mode):
    p = check_number(norm_type, "norm_type", op)
    if p == 0:
        raise ValueError(f"{op}: expected norm_type to be non-zero, got {norm_type!r}")
    x = as_float_array(input, "input", op)
    names = _SPATIAL_NAMES[n]
    check_ndim(x, "input", op, (n + 1, n + 2), f"(C, {names}) or (N, C, {names})")
    kernel = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    if p == math.inf:
        return _MAX_POOLS[n](np.abs(x), kernel, stride, 0, 1, ceil_mode)
    if p == -math.inf:
        return -_MAX_POOLS[n](-np.abs(x), kernel, stride, 0, 1, ceil_mode)
    dtype = x.dtype.type
    with np.errstate(all="ignore"):
        out = _AVG_POOLS[n](np.power(x, dtype(p)), kernel, stride, 0, ceil_mode)
        # torch: (sign(out) * relu(|out|)) * prod(kernel_size), then ** (1 / p); the first
        # factor is out itself except that -0 becomes +0 (which matters for p < 0).
        out[out == 0] = 0
        out *= dtype(math.prod(kernel))
        return np.power(out, dtype(1.0 / p))


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """1D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``; p = inf is max of |x|."""
    return _lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``; p = inf is max of |x|."""
    return _lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """3D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``; p = inf is max of |x|."""
    return _lp_pool("lp_pool3d", 3, input, norm_type, kernel_size, stride, ceil_mode)


# ---------------------------------------------------------------- max unpool

def _unpool_output_size(op, n, spatial, kernel, strides, pads, output_size):
    """torch's output size: (L - 1) * s + k - 2p, or output_size within (default - s, default + s)."""
    default = tuple((size - 1) * s + k - 2 * p for size, k, s, p in zip(spatial, kernel, strides, pads))
    if output_size is None:
        size = default
    else:
        if not isinstance(output_size, (list, tuple, np.ndarray)):
            raise TypeError(
                f"{op}: expected output_size to be a sequence of {n} or {n + 2} ints, "
                f"got {type(output_size).__name__} {output_size!r}"
            )
        given = tuple(as_int(v, "output_size", op) for v in output_size)
        if len(given) == n + 2:
            given = given[2:]
        if len(given) != n:
            raise ValueError(f"{op}: expected output_size to have {n} or {n + 2} elements, got {tuple(output_size)}")
        for d in range(n):
            low, high = default[d] - strides[d], default[d] + strides[d]
            if not low < given[d] < high:
                raise ValueError(
                    f"{op}: expected output_size[{d}] to be strictly between {low} and {high} "
                    f"(default {default[d]} +- stride), got output_size {given}"
                )
        size = given
    if any(s < 0 for s in size):
        raise ValueError(
            f"{op}: output size {size} has a negative dimension (kernel_size {kernel}, stride {strides}, "
            f"padding {pads}, output_size {output_size})"
        )
    return size


def _max_unpool(op, n, input, indices, kernel_size, stride, padding, output_size):
    x = _check_input(input, n, op)
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected indices to be an integer array, got dtype {indices.dtype}")
    if indices.shape != x.shape:
        raise ValueError(f"{op}: expected indices of the input's shape {x.shape}, got {indices.shape}")
    kernel = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    strides = kernel if stride is None else as_tuple(stride, n, "stride", op, minimum=1)
    pads = as_tuple(padding, n, "padding", op, minimum=0)
    out_spatial = _unpool_output_size(op, n, x.shape[-n:], kernel, strides, pads, output_size)
    planes = math.prod(x.shape[:-n])
    plane_in = math.prod(x.shape[-n:])
    plane_out = math.prod(out_spatial)
    targets = np.ascontiguousarray(indices, dtype=np.int64).reshape(planes, plane_in)
    out = aligned.empty((planes, plane_out), x.dtype)
    outside = _kernels.max_unpool(x.reshape(planes, plane_in), targets, out, kernel_threads(x.size + out.size))
    if outside:
        first = targets[(targets < 0) | (targets >= plane_out)][0]
        raise ValueError(
            f"{op}: expected indices in [0, {plane_out}) (output plane {'x'.join(map(str, out_spatial))}), "
            f"got {first} ({outside} indices out of range)"
        )
    return out.reshape(x.shape[:-n] + out_spatial)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d: ``input`` scattered to ``indices`` of zeroed (N, C, L_out) planes."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d: ``input`` scattered to ``indices`` of zeroed (N, C, H_out, W_out) planes."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d: ``input`` scattered to ``indices`` of zeroed output volumes."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------- adaptive pools

def _adaptive_output_size(op, n, output_size, spatial):
    """output_size as an n-tuple of ints >= 0; for 2d/3d a None entry keeps that input size."""
    if isinstance(output_size, (list, tuple, np.ndarray)):
        items = list(output_size)
        if len(items) != n:
            raise ValueError(f"{op}: expected output_size to be an int or {n} ints, got {tuple(output_size)!r}")
        if n > 1:
            items = [size if item is None else item for item, size in zip(items, spatial)]
        sizes = tuple(as_int(item, "output_size", op) for item in items)
    else:
        sizes = (as_int(output_size, "output_size", op),) * n
    if any(s < 0 for s in sizes):
        raise ValueError(f"{op}: expected output_size >= 0, got {sizes if n > 1 else sizes[0]}")
    return sizes


def _adaptive_avg_pool(op, n, input, output_size, out=None):
    """adaptive_avg_pool{n}d; ``out`` as in _max_pool."""
    x = _check_input(input, n, op, empty_channels_ok=True)
    out_spatial = _adaptive_output_size(op, n, output_size, x.shape[-n:])
    planes = _planes(x, n)
    shape = x.shape[:-n] + out_spatial
    out = _planes_out(out, planes.shape[0], out_spatial, x.dtype)
    if all(s == 1 for s in out_spatial):
        _adaptive_kernels.global_avg_pool(planes.reshape(planes.shape[0], math.prod(x.shape[-n:])),
                                          out.reshape(-1), kernel_threads(x.size))
    else:
        _adaptive_kernels.adaptive_avg_pool(planes, out, kernel_threads(x.size + out.size))
    return out.reshape(shape)


def _adaptive_max_pool(op, n, input, output_size, return_indices):
    x = _check_input(input, n, op)
    out_spatial = _adaptive_output_size(op, n, output_size, x.shape[-n:])
    return_indices = _as_bool(return_indices, "return_indices", op)
    planes = _planes(x, n)
    out = aligned.empty((planes.shape[0],) + lift_to_3d(out_spatial, 1), x.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _adaptive_kernels.adaptive_max_pool(planes, out, indices, kernel_threads(x.size + out.size))
    shape = x.shape[:-n] + out_spatial
    if return_indices:
        return out.reshape(shape), indices.reshape(shape)
    return out.reshape(shape)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling of (N, C, L) or (C, L) to length ``output_size``."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (None keeps a size)."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling of (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (None keeps a size)."""
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, L) or (C, L); with ``return_indices`` also the argmax positions."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, H, W) or (C, H, W); None in ``output_size`` keeps that size."""
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, D, H, W) or (C, D, H, W); None in ``output_size`` keeps that size."""
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)
