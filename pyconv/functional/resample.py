"""``interpolate``, as torch computes it.

It reproduces torch's CPU coordinate arithmetic: source indices and weights
per output position are computed here, per axis, in the same precision and
order of operations as ``aten/src/ATen/native/UpSample.h`` and
``cpu/UpSampleKernel.cpp`` (float for float32 inputs, double for float64,
with the fused multiply-add torch's kernels compile to), so nearest modes pick
the same pixels and the other modes agree to rounding.  The kernels in
``pyconv._kernels.resample`` then apply the tables.
"""
import math

import numpy as np

from .._kernels import resample as _kernels
from .._threads import kernel_threads
from ._checks import as_float_array, as_int, check_choice, check_number

__all__ = ["interpolate"]


_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area", "lanczos")
# Modes tied to one input rank (other modes take 3D, 4D and 5D inputs).
_MODE_NDIM = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5, "lanczos": 4}
_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear", "lanczos")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of an (N, C, W), (N, C, H, W) or (N, C, D, H, W) array, as torch.

    Exactly one of ``size`` (int or one int per spatial dim) and
    ``scale_factor`` (number or one per dim) is given.  With a scale factor
    and ``recompute_scale_factor`` not True, the output size is
    ``floor(in * scale)`` and the coordinates use ``1 / scale``; otherwise
    they use ``in / out``.  ``antialias=True`` applies to 'bilinear',
    'bicubic' and 'lanczos' (which requires it).
    """
    op = "interpolate"
    x = as_float_array(input, "input", op)
    check_choice(mode, "mode", op, _MODES)
    if mode in _INTERPOLATING:
        align_corners = False if align_corners is None else _as_bool(align_corners, "align_corners", op)
    elif align_corners is not None:
        raise ValueError(
            f"{op}: align_corners can only be set with the interpolating modes linear, bilinear, bicubic, "
            f"trilinear; got align_corners={align_corners!r} with mode {mode!r}"
        )
    if x.ndim not in (3, 4, 5) or _MODE_NDIM.get(mode, x.ndim) != x.ndim:
        wanted = f"{_MODE_NDIM[mode]}D" if mode in _MODE_NDIM else "3D, 4D or 5D"
        raise ValueError(
            f"{op}: mode {mode!r} expects a {wanted} input (N, C, spatial...), got {x.ndim}D with shape {x.shape}"
        )
    recompute = recompute_scale_factor is not None and _as_bool(recompute_scale_factor, "recompute_scale_factor", op)
    antialias = _as_bool(antialias, "antialias", op)
    if antialias and mode not in ("bilinear", "bicubic", "lanczos"):
        raise ValueError(
            f"{op}: antialias=True is supported with modes 'bilinear', 'bicubic' and 'lanczos', got {mode!r}"
        )
    if mode == "lanczos":
        if align_corners:
            raise ValueError(f"{op}: mode 'lanczos' does not support align_corners=True")
        if not antialias:
            raise ValueError(f"{op}: mode 'lanczos' requires antialias=True")

    spatial = x.shape[2:]
    out_sizes, scales = _output_sizes(spatial, size, scale_factor, recompute, op)
    if mode == "area":
        if any(s < 0 for s in out_sizes):
            raise ValueError(f"{op}: expected output sizes >= 0, got {tuple(out_sizes)}")
        if 0 in spatial:
            raise ValueError(f"{op}: expected non-empty spatial dims for mode 'area', got input shape {x.shape}")
    else:
        if 0 in spatial or any(s <= 0 for s in out_sizes):
            raise ValueError(
                f"{op}: input and output sizes should be > 0, got input spatial size {tuple(spatial)} "
                f"and output size {tuple(out_sizes)}"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{op}: expected input with at least 1 channel for mode {mode!r}, got shape {x.shape}")

    out_shape = x.shape[:2] + tuple(out_sizes)
    if x.size == 0 or 0 in out_sizes:
        return np.empty(out_shape, dtype=x.dtype)
    if mode in ("nearest", "nearest-exact"):
        return _nearest(x, out_shape, scales, mode == "nearest-exact")
    if mode == "area":
        tables = [_area_table(i, o, x.dtype) if i != o else None for i, o in zip(spatial, out_sizes)]
    elif antialias:
        tables = [
            _antialias_table(i, o, align_corners, s, x.dtype, mode) if i != o else None
            for i, o, s in zip(spatial, out_sizes, scales)
        ]
    elif mode == "bicubic":
        tables = [_cubic_table(i, o, align_corners, s, x.dtype) for i, o, s in zip(spatial, out_sizes, scales)]
    else:
        tables = [_linear_table(i, o, align_corners, s, x.dtype) for i, o, s in zip(spatial, out_sizes, scales)]
    return _separable(x, out_shape, tables)


def _as_bool(value, name, op):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: expected {name} to be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _output_sizes(spatial, size, scale_factor, recompute, op):
    """Output sizes and the scale factors the kernels use (None: derive from the sizes)."""
    dims = len(spatial)
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be given, got both")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be given")
    if size is not None:
        if recompute:
            raise ValueError(f"{op}: recompute_scale_factor=True is not meaningful with an explicit size")
        sizes = _per_dim(size, dims, "size", spatial, op)
        return [as_int(s, "size", op) for s in sizes], [None] * dims
    factors = [check_number(s, "scale_factor", op) for s in _per_dim(scale_factor, dims, "scale_factor", spatial, op)]
    out_sizes = []
    for length, factor in zip(spatial, factors):
        target = length * factor
        if not math.isfinite(target):
            raise ValueError(f"{op}: scale_factor {factor} gives a non-finite output size for input size {length}")
        out_sizes.append(int(target))
    return out_sizes, [None] * dims if recompute else factors


def _per_dim(value, dims, name, spatial, op):
    if isinstance(value, (tuple, list, np.ndarray)):
        values = list(value)
        if len(values) != dims:
            raise ValueError(
                f"{op}: expected {name} with one value per spatial dim ({dims} for input spatial size "
                f"{tuple(spatial)}), got {tuple(values)!r}"
            )
        return values
    return [value] * dims


# Per-axis tables.  An axis resized from L to O positions is described by (index, weight, count, windows):
# output j is sum(weight[j, t] * x[index[j, t]] for t < count[j]); with windows=True the indices of an
# output are consecutive (index[j, t] = index[j, 0] + t), which the last-axis kernel exploits.


def _compute_type(dtype):
    """The type torch does the coordinate arithmetic in: its opmath type, the input's own for float32/float64."""
    return np.dtype(dtype).type


def _scale_value(in_size, out_size, scale, ct):
    """compute_scales_value: 1 / scale_factor (in double, then rounded) when given, else in / out."""
    if scale is not None and scale > 0:
        return ct(1.0 / scale)
    return ct(in_size) / ct(out_size)


def _area_pixel_scale(in_size, out_size, align_corners, scale, ct):
    """area_pixel_compute_scale."""
    if align_corners:
        return ct(in_size - 1) / ct(out_size - 1) if out_size > 1 else ct(0)
    return _scale_value(in_size, out_size, scale, ct)


def _source_index(scale, out_size, align_corners, ct):
    """area_pixel_compute_source_index before clamping: ``scale * (j + 0.5) - 0.5`` or ``scale * j``.

    torch's kernels compile ``scale * (j + 0.5) - 0.5`` to one fused
    multiply-add; for float the double product and difference below are
    exact, so rounding once to float reproduces it.  For double the result
    may differ from the fused one in the last bit: continuous for the
    weights, and nearest-exact rounds it to float before taking the index.
    """
    j = np.arange(out_size)
    if align_corners:
        return scale * j.astype(ct)
    exact = np.float64(scale) * (j + 0.5) - 0.5
    return exact.astype(ct)


def _linear_table(in_size, out_size, align_corners, scale, dtype):
    """Two taps per output, as compute_source_index_and_lambda (identity when the size is unchanged)."""
    ct = _compute_type(dtype)
    if in_size == out_size:
        j = np.arange(out_size)
        index = np.stack([j, j], axis=1)
        weight = np.zeros((out_size, 2), dtype=dtype)
        weight[:, 0] = 1
        return index, weight, np.full(out_size, 2, dtype=np.int64), False
    s = _area_pixel_scale(in_size, out_size, align_corners, scale, ct)
    real = np.maximum(_source_index(s, out_size, align_corners, ct), ct(0))
    index0 = np.minimum(real.astype(np.int64), in_size - 1)
    index1 = index0 + (index0 < in_size - 1)
    lambda1 = np.clip(real - index0.astype(ct), ct(0), ct(1))
    lambda0 = ct(1) - lambda1
    index = np.stack([index0, index1], axis=1)
    weight = np.stack([lambda0, lambda1], axis=1).astype(dtype)
    return index, weight, np.full(out_size, 2, dtype=np.int64), False


def _cubic_convolution1(x, a):
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic_convolution2(x, a):
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def _cubic_table(in_size, out_size, align_corners, scale, dtype):
    """Four taps per output with A = -0.75 and border indices clamped, as HelperInterpCubic."""
    ct = _compute_type(dtype)
    a = ct(-0.75)
    s = _area_pixel_scale(in_size, out_size, align_corners, scale, ct)
    real = _source_index(s, out_size, align_corners, ct)
    # guard_index_and_lambda: floorf (float even for double), then t clamped to [0, 1].
    start = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    t = np.clip(real - start.astype(ct), ct(0), ct(1))
    one = ct(1)
    weight = np.stack([
        _cubic_convolution2(t + one, a),
        _cubic_convolution1(t, a),
        _cubic_convolution1(one - t, a),
        _cubic_convolution2((one - t) + one, a),
    ], axis=1).astype(dtype)
    index = np.clip(start[:, None] + np.arange(-1, 3), 0, in_size - 1)
    return index, weight, np.full(out_size, 4, dtype=np.int64), False


def _triangle_filter(x):
    x = np.abs(x)
    return np.where(x < 1, x.dtype.type(1) - x, x.dtype.type(0))


def _keys_cubic_filter(x):
    """Keys' cubic with a = -0.5 (torch's antialiased bicubic, as Pillow)."""
    a = x.dtype.type(-0.5)
    x = np.abs(x)
    return np.where(x < 1, _cubic_convolution1(x, a), np.where(x < 2, _cubic_convolution2(x, a), x.dtype.type(0)))


def _sinc(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        px = x * x.dtype.type(np.pi)
        return np.where(x == 0, x.dtype.type(1), np.sin(px) / px)


def _lanczos3_filter(x):
    x = np.abs(x)
    return np.where(x < 3, (_sinc(x).astype(np.float64) * _sinc(x.astype(np.float64) / 3.0)).astype(x.dtype), 0)


# mode: (taps of the filter at scale 1, filter)
_ANTIALIAS_FILTERS = {"bilinear": (2, _triangle_filter), "bicubic": (4, _keys_cubic_filter),
                      "lanczos": (6, _lanczos3_filter)}


def _antialias_table(in_size, out_size, align_corners, scale, dtype, mode):
    """Variable-width windows as _compute_indices_min_size_weights_aa (Pillow's resampling), in dtype precision."""
    ct = _compute_type(dtype)
    interp_size, filter_fn = _ANTIALIAS_FILTERS[mode]
    s = _area_pixel_scale(in_size, out_size, align_corners, scale, ct)
    support = ct(interp_size * 0.5 * np.float64(s)) if s >= 1 else ct(interp_size * 0.5)
    taps = int(math.ceil(support)) * 2 + 1
    invscale = np.float64(ct(1.0 / np.float64(s))) if s >= 1 else 1.0
    center = (np.float64(s) * (np.arange(out_size) + 0.5)).astype(ct)
    start = np.maximum(((center - support).astype(np.float64) + 0.5).astype(np.int64), 0)
    stop = np.minimum(((center + support).astype(np.float64) + 0.5).astype(np.int64), in_size)
    count = np.clip(stop - start, 0, taps)
    t = np.arange(taps)
    position = (((start[:, None] + t).astype(ct) - center[:, None]).astype(np.float64) + 0.5) * invscale
    weight = np.where(t < count[:, None], filter_fn(position.astype(ct)), ct(0)).astype(ct)
    total = np.zeros(out_size, dtype=ct)
    for k in range(taps):  # accumulated in order, in dtype precision, as torch
        total += weight[:, k]
    nonzero = total != 0
    weight[nonzero] /= total[nonzero, None]
    # torch always reads the first tap, even of an empty window (with weight 0).
    start = np.minimum(start, in_size - 1)
    index = np.minimum(start[:, None] + t, in_size - 1)
    return index, weight.astype(dtype), np.maximum(count, 1), True


def _area_table(in_size, out_size, dtype):
    """Adaptive average pooling windows [floor(j * L / O), ceil((j + 1) * L / O)) with equal weights."""
    j = np.arange(out_size)
    start = (j * in_size) // out_size
    stop = ((j + 1) * in_size + out_size - 1) // out_size
    count = stop - start
    taps = int(count.max())
    t = np.arange(taps)
    index = np.minimum(start[:, None] + t, in_size - 1)
    weight = np.where(t < count[:, None], 1.0 / count[:, None], 0.0).astype(dtype)
    return index, weight, count, True


def _separable(x, out_shape, tables):
    """Apply one table per spatial axis (None: axis unchanged), last axis first, as torch combines them."""
    current = x
    batch, channels = x.shape[:2]
    dims = len(tables)
    for axis in reversed(range(dims)):
        table = tables[axis]
        if table is None:
            continue
        index, weight, count, windows = table
        shape = list(current.shape)
        shape[2 + axis] = out_shape[2 + axis]
        result = np.empty(shape, dtype=x.dtype)
        threads = kernel_threads(result.size)
        length, out_length = current.shape[2 + axis], shape[2 + axis]
        outer = batch * channels * math.prod(shape[2:2 + axis])
        inner = math.prod(shape[3 + axis:])
        index = np.ascontiguousarray(index, dtype=np.int64)
        count = np.ascontiguousarray(count, dtype=np.int64)
        if inner > 1:
            _kernels.resample_middle_axis(current.reshape(outer, length, inner),
                                          result.reshape(outer, out_length, inner), index, weight, count, threads)
        elif windows:
            _kernels.resample_last_axis_windows(current.reshape(outer, length), result.reshape(outer, out_length),
                                                index, weight, count, threads)
        else:
            _kernels.resample_last_axis_taps(current.reshape(outer, length), result.reshape(outer, out_length),
                                             index, weight, threads)
        current = result
    return current if current is not x else x.copy()


def _nearest(x, out_shape, scales, exact):
    """Gather with torch's nearest indices; which of torch's two index routines applies depends on the shape."""
    spatial = x.shape[2:]
    out_spatial = out_shape[2:]
    dims = len(spatial)
    # torch's 2d kernel switches to its channels-last routine (float scale, exact 1x and 2x) when the
    # output height + width is at most 128.  (It also does for channels-last contiguous inputs with more
    # than 3 channels: for a C-contiguous array, inputs whose spatial sizes are all 1, where every
    # routine picks index 0.)
    small = dims == 2 and out_spatial[0] + out_spatial[1] <= 128
    routine = _nearest_index_channels_last if small else _nearest_index_generic
    indices = [routine(i, o, s, x.dtype, exact) for i, o, s in zip(spatial, out_spatial, scales)]
    indices = [np.zeros(1, dtype=np.int64)] * (3 - dims) + indices
    planes = x.shape[0] * x.shape[1]
    out = np.empty(out_shape, dtype=x.dtype)
    view = (planes,) + (1,) * (3 - dims)
    _kernels.nearest(x.reshape(view + spatial), out.reshape(view + out_spatial), *indices,
                     kernel_threads(out.size))
    return out


def _nearest_index_generic(in_size, out_size, scale, dtype, exact):
    """HelperInterpNearest / HelperInterpNearestExact: index math in the accumulate type, floorf."""
    ct = _compute_type(dtype)
    s = _scale_value(in_size, out_size, scale, ct)
    if exact:
        real = np.maximum(_source_index(s, out_size, False, ct), ct(0))
        index = np.floor((real.astype(np.float64) + 0.5).astype(np.float32))
    else:
        index = np.floor((s * np.arange(out_size).astype(ct)).astype(np.float32))
    return np.minimum(index.astype(np.int64), in_size - 1)


def _nearest_index_channels_last(in_size, out_size, scale, dtype, exact):
    """nearest_idx / nearest_exact_idx: float scale whatever the dtype; 'nearest' copies 1x and halves 2x exactly."""
    j = np.arange(out_size)
    if not exact and out_size == in_size:
        return j
    if not exact and out_size == 2 * in_size:
        return j >> 1
    s = _scale_value(in_size, out_size, scale, np.float32)
    if exact:
        index = np.floor(((j + 0.5) * np.float64(s)).astype(np.float32))
    else:
        index = np.floor(j.astype(np.float32) * s)
    return np.minimum(index.astype(np.int64), in_size - 1)
