"""Shape ops: ``flatten``, ``pixel_shuffle``, ``pixel_unshuffle`` and
``channel_shuffle``, as torch computes them (pure data movement; the pixel
shuffles use the kernels of ``pyconv._kernels.layout``)."""
import math

import numpy as np

from .._kernels import layout as _kernels
from .._threads import kernel_threads
from ._checks import as_float_array, as_int

__all__ = ["flatten", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle"]


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` (negative dims count from the end) into one, as ``torch.flatten``.

    A view of ``input`` where numpy can make one; a 0-d input becomes shape (1,).
    """
    op = "flatten"
    x = np.asarray(input)
    ndim = max(x.ndim, 1)
    start = _dim(start_dim, ndim, "start_dim", op)
    end = _dim(end_dim, ndim, "end_dim", op)
    if start > end:
        raise ValueError(f"{op}: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) for a {x.ndim}D input")
    shape = x.shape if x.ndim else (1,)
    return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


def _dim(dim, ndim, name, op):
    value = as_int(dim, name, op)
    if not -ndim <= value < ndim:
        raise ValueError(f"{op}: expected {name} in [{-ndim}, {ndim - 1}], got {value}")
    return value % ndim


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r) with r = ``upscale_factor``, as torch."""
    op = "pixel_shuffle"
    x = as_float_array(input, "input", op)
    r = as_int(upscale_factor, "upscale_factor", op)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected input with at least 3 dims (*, C, H, W), got {x.ndim}D with shape {x.shape}")
    if r < 1:
        raise ValueError(f"{op}: expected upscale_factor >= 1, got {r}")
    *lead, channels, height, width = x.shape
    if channels % (r * r):
        raise ValueError(
            f"{op}: expected input channels (dim -3) divisible by upscale_factor**2 = {r * r}, got {channels}"
        )
    out = np.empty((*lead, channels // (r * r), height * r, width * r), dtype=x.dtype)
    batch = math.prod(lead)
    _kernels.pixel_shuffle(x.reshape(batch, channels, height, width),
                           out.reshape(batch, channels // (r * r), height * r, width * r), r,
                           kernel_threads(out.size))
    return out


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W) with r = ``downscale_factor``, as torch."""
    op = "pixel_unshuffle"
    x = as_float_array(input, "input", op)
    r = as_int(downscale_factor, "downscale_factor", op)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected input with at least 3 dims (*, C, H, W), got {x.ndim}D with shape {x.shape}")
    if r < 1:
        raise ValueError(f"{op}: expected downscale_factor >= 1, got {r}")
    *lead, channels, height, width = x.shape
    for name, size in (("height (dim -2)", height), ("width (dim -1)", width)):
        if size % r:
            raise ValueError(f"{op}: expected input {name} divisible by downscale_factor {r}, got {size}")
    out = np.empty((*lead, channels * r * r, height // r, width // r), dtype=x.dtype)
    batch = math.prod(lead)
    _kernels.pixel_unshuffle(x.reshape(batch, channels, height, width),
                             out.reshape(batch, channels * r * r, height // r, width // r), r,
                             kernel_threads(out.size))
    return out


def channel_shuffle(input, groups):
    """(N, C, *) -> channels regrouped as (N, C / g, g, *) flattened back to C, as torch."""
    op = "channel_shuffle"
    x = as_float_array(input, "input", op)
    g = as_int(groups, "groups", op)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected input with at least 3 dims (N, C, *), got {x.ndim}D with shape {x.shape}")
    if g < 1:
        raise ValueError(f"{op}: expected groups >= 1, got {g}")
    batch, channels = x.shape[:2]
    if channels % g:
        raise ValueError(f"{op}: expected input channels (dim 1) divisible by groups {g}, got {channels}")
    y = x.reshape(batch, g, channels // g, math.prod(x.shape[2:])).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(y).reshape(x.shape)
