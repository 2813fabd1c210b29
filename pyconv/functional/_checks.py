"""Argument checks shared by the functional ops.

Every message names the op and the argument and shows what was expected and
what was given, e.g. ``conv2d: expected stride to be >= 1, got (0, 1)``.
"""
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name, op):
    """``x`` as a C-contiguous native-endian float32/float64 ndarray.

    Non-contiguous or byte-swapped arrays are copied; anything that is not a
    real floating array of 32 or 64 bits (ints, bools, complex, float16,
    objects) raises TypeError.
    """
    if not isinstance(x, np.ndarray):
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError(f"{op}: expected {name} to be a numpy array, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except Exception as error:
            raise TypeError(f"{op}: expected {name} to be a numpy array, got {type(x).__name__}") from error
    dtype = x.dtype
    if dtype.kind == "f" and dtype.itemsize in (4, 8) and not dtype.isnative:
        dtype = dtype.newbyteorder("=")
        x = x.astype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: expected {name} to be a float32 or float64 array, got dtype {x.dtype}")
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)  # keeps 0-D arrays 0-D


def check_same_dtype(op, first_name, first, **others):
    """TypeError unless every array in ``others`` (None allowed) has ``first``'s dtype."""
    for name, array in others.items():
        if array is not None and array.dtype != first.dtype:
            raise TypeError(
                f"{op}: expected {name} to have the dtype of {first_name} ({first.dtype}), got {array.dtype}"
            )


def check_ndim(x, name, op, allowed, meaning):
    """ValueError unless ``x.ndim`` is in ``allowed``; ``meaning`` describes the layout, e.g. '(N, C, H, W)'."""
    if x.ndim not in allowed:
        wanted = " or ".join(f"{n}D" for n in allowed)
        raise ValueError(f"{op}: expected {name} to be {wanted} {meaning}, got {x.ndim}D with shape {x.shape}")


def as_int(value, name, op):
    """``value`` as a Python int; TypeError for bools, floats and other non-integers."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{op}: expected {name} to be an int, got {type(value).__name__} {value!r}")
    return operator.index(value)


def as_tuple(value, n, name, op, minimum=None):
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints, each >= ``minimum`` if given."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) == 1 and n > 1:
            items = items * n
        if len(items) != n:
            raise ValueError(f"{op}: expected {name} to be an int or a tuple of {n} ints, got {tuple(value)!r}")
        result = tuple(as_int(item, name, op) for item in items)
    else:
        result = (as_int(value, name, op),) * n
    if minimum is not None and any(item < minimum for item in result):
        raise ValueError(f"{op}: expected {name} to be >= {minimum}, got {result if n > 1 else result[0]}")
    return result


def check_choice(value, name, op, choices):
    """ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{op}: expected {name} to be one of {listed}, got {value!r}")
    return value


def check_number(value, name, op):
    """``value`` as a Python float; TypeError if it is not a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{op}: expected {name} to be a number, got {type(value).__name__} {value!r}")
    return float(value)
