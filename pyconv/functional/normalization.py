"""Normalisation as in ``torch.nn.functional``: batch_norm (inference), group_norm, layer_norm."""
import math

import numpy as np

from .._kernels import normalization as _kernels
from ._checks import as_int, check_number, check_same_dtype
from .._threads import kernel_threads
from ._checks import as_float_array

__all__ = ["batch_norm", "group_norm", "layer_norm"]


def _per_channel(array, name, op, x, channels):
    """``array`` (None allowed) as a float array of ``channels`` elements in ``x``'s dtype, or an error."""
    if array is None:
        return None
    array = as_float_array(array, name, op)
    check_same_dtype(op, "input", x, **{name: array})
    if array.ndim != 1 or array.shape[0] != channels:
        raise ValueError(f"{op}: expected {name} of shape ({channels},) (one per channel of input), got shape {array.shape}")
    return array


def batch_norm_affine(running_mean, running_var, weight, bias, eps, dtype):
    """(scale, shift) of inference batch norm, x * scale + shift, computed as torch does on the CPU in
    ``dtype``: scale = weight / sqrt(var + eps), shift = bias - mean * scale.  Arrays as checked by
    batch_norm (weight, bias may be None); the results are C-contiguous arrays of ``dtype``."""
    dtype = np.dtype(dtype).type
    mean, var = np.asarray(running_mean, dtype), np.asarray(running_var, dtype)
    with np.errstate(all="ignore"):  # negative variances give NaN, zero ones Inf, silently as in torch
        scale = dtype(1) / np.sqrt(var + dtype(eps))
        if weight is not None:
            scale = scale * np.asarray(weight, dtype)
        shift = (dtype(0) if bias is None else np.asarray(bias, dtype)) - mean * scale
    return np.ascontiguousarray(scale, dtype), np.ascontiguousarray(shift, dtype)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """(x - running_mean) / sqrt(running_var + eps) * weight + bias over channel dim 1 of (N, C, *).

    Computed as torch does on the CPU: scale = weight / sqrt(var + eps) and
    shift = bias - mean * scale in the input's dtype, then x * scale + shift.
    Inference only: training=True (batch statistics, running-stat updates) is refused.
    """
    if training:
        raise ValueError(
            "batch_norm: training=True normalises with batch statistics and updates the running ones; "
            "pyconv is inference-only, pass training=False"
        )
    check_number(momentum, "momentum", "batch_norm")
    eps = check_number(eps, "eps", "batch_norm")
    if eps < 0:
        raise ValueError(f"batch_norm: expected eps >= 0, got {eps}")
    x = as_float_array(input, "input", "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input to be at least 2D (N, C, *), got {x.ndim}D with shape {x.shape}")
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed in inference mode, got None")
    channels = x.shape[1]
    mean = _per_channel(running_mean, "running_mean", "batch_norm", x, channels)
    var = _per_channel(running_var, "running_var", "batch_norm", x, channels)
    weight = _per_channel(weight, "weight", "batch_norm", x, channels)
    bias = _per_channel(bias, "bias", "batch_norm", x, channels)
    scale, shift = batch_norm_affine(mean, var, weight, bias, eps, x.dtype)
    out = np.empty_like(x)
    planes = (x.shape[0], channels, math.prod(x.shape[2:]))
    _kernels.channel_affine(x.reshape(planes), scale, shift, out.reshape(planes), kernel_threads(x.size))
    return out


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of ``num_groups`` channel groups of (N, C, *) by its mean and biased variance,
    then weight * x + bias per channel."""
    x = as_float_array(input, "input", "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input to be at least 2D (N, C, *), got {x.ndim}D with shape {x.shape}")
    num_groups = as_int(num_groups, "num_groups", "group_norm")
    eps = check_number(eps, "eps", "group_norm")
    channels = x.shape[1]
    if num_groups <= 0:
        raise ValueError(f"group_norm: expected num_groups >= 1, got {num_groups}")
    if channels % num_groups:
        raise ValueError(
            f"group_norm: expected the channels of input (input.shape[1] = {channels}) to be divisible by "
            f"num_groups, got num_groups={num_groups}"
        )
    inner = math.prod(x.shape[2:])
    if x.shape[0] * channels // num_groups * inner == 1:  # torch's _verify_batch_size
        raise ValueError(
            f"group_norm: expected more than 1 value per channel, got input shape {x.shape} with num_groups={num_groups}"
        )
    weight = _per_channel(weight, "weight", "group_norm", x, channels)
    bias = _per_channel(bias, "bias", "group_norm", x, channels)
    weight = np.ones(channels, x.dtype) if weight is None else weight
    bias = np.zeros(channels, x.dtype) if bias is None else bias
    out = np.empty_like(x)
    planes = (x.shape[0], channels, inner)
    _kernels.group_norm(x.reshape(planes), num_groups, weight, bias, eps, out.reshape(planes), kernel_threads(x.size))
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last len(normalized_shape) dims by their mean and biased variance,
    then weight * x + bias elementwise (weight, bias of shape normalized_shape)."""
    x = as_float_array(input, "input", "layer_norm")
    if isinstance(normalized_shape, (list, tuple, np.ndarray)):
        normalized_shape = tuple(as_int(n, "normalized_shape", "layer_norm") for n in normalized_shape)
    else:
        normalized_shape = (as_int(normalized_shape, "normalized_shape", "layer_norm"),)
    eps = check_number(eps, "eps", "layer_norm")
    if not normalized_shape:
        raise ValueError("layer_norm: expected normalized_shape with at least one element, got ()")
    count = len(normalized_shape)
    if x.ndim < count or x.shape[x.ndim - count:] != normalized_shape:
        raise ValueError(
            f"layer_norm: expected input of shape (*, {', '.join(map(str, normalized_shape))}) to match "
            f"normalized_shape={normalized_shape}, got input shape {x.shape}"
        )
    length = math.prod(normalized_shape)
    affine = {}
    for name, array, default in (("weight", weight, np.ones), ("bias", bias, np.zeros)):
        if array is None:
            affine[name] = default(length, x.dtype)
            continue
        array = as_float_array(array, name, "layer_norm")
        check_same_dtype("layer_norm", "input", x, **{name: array})
        if array.shape != normalized_shape:
            raise ValueError(
                f"layer_norm: expected {name} of shape normalized_shape={normalized_shape}, got shape {array.shape}"
            )
        affine[name] = array.reshape(-1)
    out = np.empty_like(x)
    rows = (math.prod(x.shape[:x.ndim - count]), length)
    _kernels.layer_norm(x.reshape(rows), affine["weight"], affine["bias"], eps, out.reshape(rows), kernel_threads(x.size))
    return out
