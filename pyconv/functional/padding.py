"""``pad``: torch's constant, reflect, replicate and circular padding for numpy arrays."""
import math

import numpy as np

from .._kernels import padding as _kernels
from .._threads import kernel_threads
from ._checks import as_float_array, as_int, check_choice, check_number

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")
# Non-constant modes pad the last 1, 2 or 3 dims of a batched or unbatched input.
_MODE_NDIMS = {1: (2, 3), 2: (3, 4), 3: (4, 5)}


def pad(input, pad, mode="constant", value=None):
    """Pad ``input`` by ``pad = (left, right, top, bottom, front, back)``, from the last dim backwards.

    As ``torch.nn.functional.pad``: 'constant' pads any number of dims with
    ``value`` (default 0) and crops where a pad is negative; 'reflect',
    'replicate' and 'circular' pad the last 1, 2 or 3 dims of a batched or
    unbatched input (2D/3D, 3D/4D, 4D/5D) and also accept negative pads.
    """
    op = "pad"
    x = as_float_array(input, "input", op)
    widths = _check_pad(pad, x.ndim, op)
    check_choice(mode, "mode", op, _MODES)
    if mode == "constant":
        fill = 0.0 if value is None else _fill_value(value, x.dtype, op)
        return _pad_constant(x, widths, fill, op)
    if value is not None and check_number(value, "value", op) != 0:
        raise ValueError(f"{op}: mode {mode!r} takes no fill value; expected value=None, got {value!r}")
    return _pad_indexed(x, widths, mode, op)


def _check_pad(pad, ndim, op):
    """``pad`` as a list of (before, after) per padded dim, innermost dim first."""
    if not isinstance(pad, (tuple, list, np.ndarray)):
        raise TypeError(f"{op}: expected pad to be a tuple of ints, got {type(pad).__name__} {pad!r}")
    values = [as_int(v, "pad", op) for v in pad]
    if len(values) % 2:
        raise ValueError(f"{op}: expected pad to have an even length (before, after per dim), got {tuple(values)}")
    if len(values) // 2 > ndim:
        raise ValueError(
            f"{op}: pad {tuple(values)} pads {len(values) // 2} dims but input has only {ndim} dims"
        )
    return [(values[2 * i], values[2 * i + 1]) for i in range(len(values) // 2)]


def _fill_value(value, dtype, op):
    fill = check_number(value, "value", op)
    if math.isfinite(fill) and abs(fill) > float(np.finfo(dtype).max):
        raise ValueError(f"{op}: value {value!r} does not fit in {dtype}")
    return fill


def _kept(size, before, after):
    """Length of a dim after cropping by its negative pads (torch crops first, then pads)."""
    return size - max(-before, 0) - max(-after, 0)


def _pad_constant(x, widths, fill, op):
    padded = len(widths)
    if padded == 0:
        return x.copy()
    lead = x.shape[: x.ndim - padded]
    axes = list(zip(reversed(widths), x.shape[len(lead):]))
    for dim, ((before, after), size) in enumerate(axes, start=len(lead)):
        if _kept(size, before, after) < 0:
            raise ValueError(
                f"{op}: pad ({before}, {after}) crops more than the {size} elements of dim {dim}; "
                f"input shape {x.shape}"
            )
    out_shape = lead + tuple(size + before + after for (before, after), size in axes)
    if padded > 3:
        # Padding the batch or channel dim as well: rare, done by numpy slicing.
        out = np.full(out_shape, fill, dtype=x.dtype)
        source = tuple(slice(max(-before, 0), max(-before, 0) + _kept(size, before, after))
                       for (before, after), size in axes)
        target = tuple(slice(max(before, 0), max(before, 0) + _kept(size, before, after))
                       for (before, after), size in axes)
        out[(Ellipsis, *target)] = x[(Ellipsis, *source)]
        return out
    maps = [_constant_map(size, before, after) for (before, after), size in axes]
    return _run(x, lead, out_shape, maps, widths[0], fill)


def _pad_indexed(x, widths, mode, op):
    padded = len(widths)
    if x.ndim not in _MODE_NDIMS.get(padded, ()):
        supported = "; ".join(
            f"pad of length {2 * n} needs a {a}D or {b}D input" for n, (a, b) in _MODE_NDIMS.items()
        )
        raise ValueError(
            f"{op}: mode {mode!r} pads the last 1, 2 or 3 dims ({supported}); "
            f"got pad of length {2 * padded} and a {x.ndim}D input of shape {x.shape}"
        )
    batched = x.ndim == padded + 2
    lead = x.shape[: x.ndim - padded]
    if mode != "circular" and 0 in x.shape[1 if batched else 0:]:
        raise ValueError(f"{op}: mode {mode!r} needs non-empty dims (except the batch dim), got input shape {x.shape}")
    maps, out_sizes = [], []
    for dim, ((before, after), size) in enumerate(zip(reversed(widths), x.shape[len(lead):]), start=len(lead)):
        out_size = size + before + after
        if mode == "reflect" and (before >= size or after >= size):
            raise ValueError(
                f"{op}: reflect pads must be smaller than the padded dim; got pad ({before}, {after}) "
                f"for dim {dim} of size {size}"
            )
        if mode == "circular":
            if before > size or after > size or max(before, after, 0) > max(_kept(size, before, after), 0):
                raise ValueError(
                    f"{op}: circular padding wraps around at most once: each positive pad must be <= the size "
                    f"of the dim after cropping by the negative pads; got pad ({before}, {after}) for dim {dim} "
                    f"of size {size}"
                )
        if out_size < 0:
            raise ValueError(
                f"{op}: pad ({before}, {after}) crops dim {dim} of size {size} to a negative size {out_size}; "
                f"input shape {x.shape}"
            )
        out_sizes.append(out_size)
        maps.append(_INDEX_MAPS[mode](size, before, after))
    if mode != "circular" and max(out_sizes) < 1:
        raise ValueError(
            f"{op}: pad {tuple(v for w in widths for v in w)} leaves no element in the padded dims of input shape "
            f"{x.shape} (output sizes {tuple(out_sizes)}); mode {mode!r} needs at least one of them >= 1"
        )
    return _run(x, lead, lead + tuple(out_sizes), maps, widths[0], 0.0)


def _constant_map(size, before, after):
    """Source index per output position along one axis, -1 for fill values."""
    source = np.arange(size + before + after, dtype=np.int64) - before
    source[(source < 0) | (source >= size)] = -1
    return source


def _reflect_map(size, before, after):
    source = np.abs(np.arange(size + before + after, dtype=np.int64) - before)
    return (size - 1) - np.abs((size - 1) - source)


def _replicate_map(size, before, after):
    return np.clip(np.arange(size + before + after, dtype=np.int64) - before, 0, size - 1)


def _circular_map(size, before, after):
    """torch crops by the negative pads first, then wraps the cropped range around."""
    kept = _kept(size, before, after)
    if kept == 0:  # everything cropped, no positive pad: an empty output
        return np.zeros(0, dtype=np.int64)
    return max(-before, 0) + (np.arange(size + before + after, dtype=np.int64) - max(before, 0)) % kept


_INDEX_MAPS = {"reflect": _reflect_map, "replicate": _replicate_map, "circular": _circular_map}


def _run(x, lead, out_shape, maps, last_pad, fill):
    """Pad ``x`` whose last ``len(maps)`` (<= 3) dims are padded by the index ``maps``.

    In every mode the output columns from ``max(before, 0)`` on copy the
    ``_kept`` source columns from ``max(-before, 0)`` on (as far as the output
    reaches): the kernel copies that run of each row in one piece.
    """
    out = np.empty(out_shape, dtype=x.dtype)
    if out.size == 0:
        return out
    if x.size == 0:
        out.fill(fill)
        return out
    padded = len(maps)
    maps = [np.zeros(1, dtype=np.int64)] * (3 - padded) + list(maps)
    sizes = [1] * (3 - padded) + list(x.shape[x.ndim - padded:])
    planes = math.prod(lead)
    before, after = last_pad
    width = len(maps[2])
    copy_start = min(max(before, 0), width)
    copy_stop = min(copy_start + max(_kept(sizes[2], before, after), 0), width)
    _kernels.pad_planes(
        x.reshape(planes, *sizes),
        out.reshape(planes, *(len(m) for m in maps)),
        maps[0], maps[1], maps[2],
        copy_start, copy_stop, max(-before, 0),
        fill, kernel_threads(out.size),
    )
    return out
