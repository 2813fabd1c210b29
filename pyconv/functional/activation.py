"""Activations, softmax and dropout: ``torch.nn.functional``'s, for numpy arrays.

Pointwise activations take any shape (0-D included) and run the kernels of
``pyconv._kernels.activation`` over the flattened array.  ``inplace=True``
writes into ``input`` itself, which must then be a writable, contiguous,
native float32/float64 ndarray, and returns it, as torch does.
"""
import math
import warnings

import numpy as np

from .._kernels import activation as _activation
from .._kernels import softmax as _softmax_kernel
from .._threads import kernel_threads
from ._checks import FLOAT_DTYPES, as_float_array, as_int, check_choice, check_number, check_same_dtype

__all__ = [
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "hardtanh",
    "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "mish", "gelu", "softplus",
    "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d", "dropout3d",
]

_KINDS = _activation.KINDS
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check_writable(input, op):
    """TypeError/ValueError unless ``input`` is a writable native float32/float64 ndarray."""
    if not isinstance(input, np.ndarray):
        raise TypeError(f"{op}: inplace=True needs input to be a numpy array, got {type(input).__name__}")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: inplace=True needs input to be a native float32 or float64 array, got dtype {input.dtype}")
    if not input.flags.writeable:
        raise ValueError(f"{op}: inplace=True needs a writable input array, got a read-only one")


def _inplace_buffer(input, op):
    """A flat view of ``input`` for a kernel to write into, or an error saying why there is none."""
    _check_writable(input, op)
    if not (input.flags.c_contiguous or input.flags.f_contiguous):
        raise ValueError(
            f"{op}: inplace=True needs a contiguous input array, got one with shape {input.shape} and strides "
            f"{input.strides}; pass inplace=False or np.ascontiguousarray(input)"
        )
    return input.reshape(-1, order="A")


_PARAMETERS = {  # torch's keyword arguments and defaults, for activations that have any
    "hardtanh": {"min_val": -1.0, "max_val": 1.0},
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
    "celu": {"alpha": 1.0},
    "gelu": {"approximate": "none"},
    "softplus": {"beta": 1.0, "threshold": 20.0},
}
KERNEL_ACTIVATIONS = ("identity", "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "sigmoid",
                      "tanh", "hardswish", "hardsigmoid", "silu", "mish", "gelu", "softplus")


def activation_kernel(name, op, **args):
    """(kernel kind code, (p0, p1, p2)) computing activation ``name`` with torch's keyword ``args``.

    The parameters are validated (errors name ``op``); conv epilogues use the same codes.
    """
    check_choice(name, "activation", op, KERNEL_ACTIVATIONS)
    defaults = _PARAMETERS.get(name, {})
    for key in args:
        if key not in defaults:
            accepted = ", ".join(defaults) or "no arguments"
            raise TypeError(f"{op}: activation {name!r} takes {accepted}, got an argument {key!r}")
    args = {**defaults, **args}
    for key, value in args.items():
        if key != "approximate":
            args[key] = check_number(value, key, op)
    p = (0.0, 0.0, 0.0)
    if name == "relu6":
        name, p = "hardtanh", (0.0, 6.0, 0.0)
    elif name == "hardtanh":
        if args["min_val"] > args["max_val"]:
            raise ValueError(f"{op}: expected min_val <= max_val, got min_val={args['min_val']}, "
                             f"max_val={args['max_val']}")
        p = (args["min_val"], args["max_val"], 0.0)
    elif name == "leaky_relu":
        p = (args["negative_slope"], 0.0, 0.0)
    elif name == "elu":
        p = (args["alpha"], 1.0, 1.0)
    elif name == "selu":
        name, p = "elu", (SELU_ALPHA * SELU_SCALE, SELU_SCALE, 1.0)
    elif name == "celu":
        if args["alpha"] == 0:
            raise ValueError(f"{op}: expected alpha != 0, got 0")
        name, p = "elu", (args["alpha"], 1.0, 1.0 / args["alpha"])
    elif name == "gelu":
        check_choice(args["approximate"], "approximate", op, ("none", "tanh"))
        name = "gelu" if args["approximate"] == "none" else "gelu_tanh"
    elif name == "softplus":
        p = (args["beta"], args["threshold"], 0.0)
    return _KINDS[name], p


def _pointwise(op, input, inplace, **args):
    """Apply activation ``op`` with torch's keyword ``args`` element-wise."""
    kind, (p0, p1, p2) = activation_kernel(op, op, **args)
    return _apply_kind(op, input, inplace, kind, p0, p1, p2)


def _apply_kind(op, input, inplace, kind, p0=0.0, p1=0.0, p2=0.0):
    """Apply kernel activation code ``kind`` (parameters as in activation.pxd) element-wise."""
    if inplace:
        flat = _inplace_buffer(input, op)
        _activation.pointwise(flat, flat, kind, p0, p1, p2, kernel_threads(flat.size))
        return input
    x = as_float_array(input, "input", op)
    out = np.empty_like(x)
    _activation.pointwise(x.reshape(-1), out.reshape(-1), kind, p0, p1, p2, kernel_threads(x.size))
    return out


def relu(input, inplace=False):
    """max(0, x); NaN stays NaN."""
    return _pointwise("relu", input, inplace)


def relu6(input, inplace=False):
    """min(max(0, x), 6)."""
    return _pointwise("relu6", input, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val]."""
    return _pointwise("hardtanh", input, inplace, min_val=min_val, max_val=max_val)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x."""
    return _pointwise("leaky_relu", input, inplace, negative_slope=negative_slope)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU in evaluation mode: leaky_relu with slope (lower + upper) / 2.

    training=True (a random slope per element) is refused: pyconv is inference-only.
    """
    lower = check_number(lower, "lower", "rrelu")
    upper = check_number(upper, "upper", "rrelu")
    if lower > upper:
        raise ValueError(f"rrelu: expected lower <= upper, got lower={lower}, upper={upper}")
    if training:
        raise ValueError(
            "rrelu: training=True draws a random slope per element; pyconv is inference-only, "
            "pass training=False (slope (lower + upper) / 2)"
        )
    return _apply_kind("rrelu", input, inplace, _KINDS["leaky_relu"], (lower + upper) / 2)


def prelu(input, weight):
    """x if x > 0 else weight * x; weight has 1 element or one per channel (dim 1 of input)."""
    x = as_float_array(input, "input", "prelu")
    w = as_float_array(weight, "weight", "prelu")
    check_same_dtype("prelu", "input", x, weight=w)
    if w.ndim > 1:
        raise ValueError(f"prelu: expected weight to be a scalar or 1-D array, got {w.ndim}D with shape {w.shape}")
    if w.size == 1:
        return _apply_kind("prelu", x, False, _KINDS["leaky_relu"], float(w.reshape(-1)[0]))
    if x.ndim == 0:
        raise ValueError(f"prelu: a 0-D input needs a weight with 1 element, got {w.size}")
    channels = x.shape[1] if x.ndim > 1 else 1
    if w.size != channels:
        raise ValueError(
            f"prelu: expected weight with 1 or {channels} elements (the channels, input.shape[1]), got {w.size}"
        )
    out = np.empty_like(x)
    planes = (x.shape[0], channels, math.prod(x.shape[2:]))
    _activation.prelu_channels(x.reshape(planes), w.reshape(-1), out.reshape(planes), kernel_threads(x.size))
    return out


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _pointwise("elu", input, inplace, alpha=alpha)


def selu(input, inplace=False):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)) with torch's alpha and scale."""
    return _pointwise("selu", input, inplace)


def celu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x / alpha) - 1); alpha must not be 0."""
    return _pointwise("celu", input, inplace, alpha=alpha)


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return _pointwise("sigmoid", input, False)


def tanh(input):
    """tanh(x)."""
    return _pointwise("tanh", input, False)


def hardswish(input, inplace=False):
    """x * min(max(x + 3, 0), 6) / 6."""
    return _pointwise("hardswish", input, inplace)


def hardsigmoid(input, inplace=False):
    """min(max(x + 3, 0), 6) / 6."""
    return _pointwise("hardsigmoid", input, inplace)


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return _pointwise("silu", input, inplace)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return _pointwise("mish", input, inplace)


def gelu(input, approximate="none"):
    """x * Phi(x) (approximate='none', with erf) or its tanh approximation (approximate='tanh')."""
    return _pointwise("gelu", input, False, approximate=approximate)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, or x where beta * x > threshold."""
    return _pointwise("softplus", input, False, beta=beta, threshold=threshold)


# --- softmax -------------------------------------------------------------------------------

def _softmax_input(input, dtype, op):
    """``input`` as a contiguous float array, cast to ``dtype`` first when one is given (as torch)."""
    if dtype is None:
        return as_float_array(input, "input", op)
    try:
        target = np.dtype(dtype)
    except TypeError:
        target = None  # (not in FLOAT_DTYPES would be False for None: np.dtype("float64") == None)
    if target is None or target not in FLOAT_DTYPES:
        raise TypeError(f"{op}: expected dtype to be None, numpy.float32 or numpy.float64, got {dtype!r}")
    raw = input if isinstance(input, np.ndarray) else np.asarray(input)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{op}: expected input to be a real numeric array, got dtype {raw.dtype}")
    return np.ascontiguousarray(raw, dtype=target).reshape(raw.shape)


def _softmax(op, input, dim, stacklevel, dtype, log_output):
    x = _softmax_input(input, dtype, op)
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an argument.",
            stacklevel=stacklevel,
        )
        dim = 0 if x.ndim in (0, 1, 3) else 1
    dim = as_int(dim, "dim", op)
    shape = x.shape or (1,)
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"{op}: expected dim in [{-len(shape)}, {len(shape) - 1}] for a {x.ndim}-D input, got {dim}")
    dim %= len(shape)
    out = np.empty_like(x)
    rows = (math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:]))
    _softmax_kernel.softmax(x.reshape(rows), out.reshape(rows), log_output, kernel_threads(x.size))
    return out


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (computed as exp(x - max) / sum(exp(x - max)))."""
    return _softmax("softmax", input, dim, _stacklevel, dtype, log_output=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - max - log(sum(exp(x - max))) along ``dim``."""
    return _softmax("log_softmax", input, dim, _stacklevel, dtype, log_output=True)


# --- dropout -------------------------------------------------------------------------------
# Random numbers come from numpy's global generator (seed it with np.random.seed).

def _check_probability(p, op):
    p = check_number(p, "p", op)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: expected dropout probability p to be between 0 and 1, got {p}")
    return p


def _dropout(op, input, p, training, inplace, noise_shape=None, too_few_dims=False):
    """Inverted dropout with noise of ``noise_shape`` (default: one draw per element), broadcast
    over the input; ``too_few_dims``: the input cannot hold channels (an error if dropout applies)."""
    if inplace:
        _check_writable(input, op)  # numpy's ufuncs write through any strides
        x = input
    else:
        x = as_float_array(input, "input", op)
    if not training or p == 0.0 or x.size == 0:
        if inplace:
            return input
        return x.copy() if np.may_share_memory(x, input) else x
    if too_few_dims:
        raise ValueError(f"{op}: channel-wise dropout needs input with at least 2 dimensions, got {x.ndim}D")
    if noise_shape is None:
        noise_shape = x.shape
    if p == 1.0:
        noise = np.zeros(noise_shape, x.dtype)  # torch multiplies by zero: NaN and Inf become NaN
    else:
        keep = np.random.random_sample(noise_shape) < 1.0 - p
        noise = keep.astype(x.dtype) / x.dtype.type(1.0 - p)
    with np.errstate(invalid="ignore"):  # NaN * 0 and Inf * 0: NaN, silently, as in torch
        if inplace:
            np.multiply(input, noise, out=input)
            return input
        return np.multiply(x, noise)


def _channel_noise_shape(shape, batched):
    """Noise shape for channel-wise dropout: one draw per (sample, channel) or per channel if unbatched."""
    if batched:
        return shape[:2] + (1,) * (len(shape) - 2)
    return shape[:1] + (1,) * (len(shape) - 1)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the others by 1 / (1 - p) (training=True);
    identity (a copy, or ``input`` itself if inplace) when training=False or p=0."""
    p = _check_probability(p, "dropout")
    return _dropout("dropout", input, p, training, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout for (N, C, L) or unbatched (C, L) input."""
    p = _check_probability(p, "dropout1d")
    ndim = np.ndim(input)
    if ndim not in (2, 3):
        raise ValueError(f"dropout1d: expected input to be 2D (C, L) or 3D (N, C, L), got {ndim}D")
    return _dropout("dropout1d", input, p, training, inplace, _channel_noise_shape(np.shape(input), ndim == 3))


def _warn_unusual_ndim(op, ndim, expected, spatial):
    if ndim not in expected:
        warnings.warn(
            f"{op}: Received a {ndim}-D input to {op}, which is deprecated and will result in an error in a "
            f"future release. To retain the behavior and silence this warning, please use dropout instead. "
            f"Note that {op} exists to provide channel-wise dropout on inputs with {spatial} spatial dimensions, "
            f"a channel dimension, and an optional batch dimension (i.e. {expected[0]}D or {expected[1]}D inputs).",
            stacklevel=3,
        )


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout for (N, C, H, W) input; like torch, a 3-D input is taken as (N, C, L)."""
    p = _check_probability(p, "dropout2d")
    ndim = np.ndim(input)
    _warn_unusual_ndim("dropout2d", ndim, (3, 4), 2)
    if ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    shape = np.shape(input)
    return _dropout("dropout2d", input, p, training, inplace, _channel_noise_shape(shape, True), ndim < 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout for (N, C, D, H, W) or unbatched (C, D, H, W) input."""
    p = _check_probability(p, "dropout3d")
    ndim = np.ndim(input)
    _warn_unusual_ndim("dropout3d", ndim, (4, 5), 3)
    # Like torch, anything but 5-D is taken as unbatched: a 0-D input then has no channel axis.
    noise_shape = _channel_noise_shape(np.shape(input), ndim == 5)
    return _dropout("dropout3d", input, p, training, inplace, noise_shape, ndim == 0)
