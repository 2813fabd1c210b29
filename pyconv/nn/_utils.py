"""Helpers shared by the pyconv.nn layers: torch's argument expanders and the factory arguments."""
import collections.abc
from itertools import repeat

import numpy as np

from ..functional._checks import FLOAT_DTYPES


def _ntuple(n):
    """torch.nn.modules.utils._ntuple: an iterable becomes a tuple as is, anything else n copies."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))
    return parse


_single = _ntuple(1)
_pair = _ntuple(2)
_triple = _ntuple(3)
_quadruple = _ntuple(4)


def _reverse_repeat_tuple(t, n):
    """(a, b) -> (b, b, a, a) for n = 2: per-dimension padding in F.pad's last-dim-first order."""
    return tuple(x for x in reversed(t) for _ in range(n))


def factory_dtype(layer, device, dtype):
    """The numpy dtype for ``layer``'s parameters from torch's factory arguments (device, dtype).

    ``dtype=None`` is float32 (torch's default); float32 and float64 are accepted.
    ``device`` may be None or 'cpu': pyconv computes on the CPU.
    """
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{layer}: pyconv runs on the CPU; expected device=None or 'cpu', got {device!r}")
    if dtype is None:
        return np.dtype(np.float32)
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected dtype None, numpy.float32 or numpy.float64, got {dtype!r}")
    return resolved


def positive_int(value, name, layer, minimum=1):
    """``value`` as an int >= ``minimum``; TypeError for non-integers, ValueError below the minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: expected {name} to be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{layer}: expected {name} to be >= {minimum}, got {value}")
    return int(value)


def int_tuple(value, n, name, layer, minimum):
    """``value`` (an int or n ints) as an n-tuple of ints >= ``minimum``, for layer constructors."""
    items = _ntuple(n)(value)
    if len(items) != n:
        raise ValueError(f"{layer}: expected {name} to be an int or a tuple of {n} ints, got {value!r}")
    return tuple(positive_int(item, name, layer, minimum) for item in items)
