"""conv1d, conv2d, conv3d: the torch.nn.functional convolutions for numpy arrays.

Each call validates its arguments, computes the output shape, allocates the
output and runs the direct kernel (``pyconv._kernels.conv_direct``), which
sees every convolution as 3-D: 1-D and 2-D inputs get leading spatial
dimensions of size 1.
"""
import numpy as np

from .._kernels.conv_direct import conv3d_direct
from .._threads import kernel_threads
from ._checks import as_float_array, as_int, as_tuple, check_choice, check_ndim, check_same_dtype
from .shapes import conv_output_shape

__all__ = ["conv1d", "conv2d", "conv3d"]

_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}
_KERNEL_NAMES = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of input (N, C, L) or (C, L) with weight (out_channels, C // groups, kL).

    As torch.nn.functional.conv1d: padding is an int, a 1-tuple, 'valid' or 'same'.
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of input (N, C, H, W) or (C, H, W) with weight (out_channels, C // groups, kH, kW).

    As torch.nn.functional.conv2d: stride, padding and dilation are ints or 2-tuples;
    padding may also be 'valid' or 'same' (stride 1 only; an odd total puts the extra
    zero on the bottom / right).
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of input (N, C, D, H, W) or (C, D, H, W) with weight (out_channels, C // groups, kD, kH, kW).

    As torch.nn.functional.conv3d: stride, padding and dilation are ints or 3-tuples;
    padding may also be 'valid' or 'same'.
    """
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _conv(op, dims, input, weight, bias, stride, padding, dilation, groups):
    """Validate, compute the output shape, allocate, run the direct kernel."""
    input, weight, bias, unbatched = _check_arrays(op, dims, input, weight, bias)
    stride = as_tuple(stride, dims, "stride", op, minimum=1)
    dilation = as_tuple(dilation, dims, "dilation", op, minimum=1)
    groups = as_int(groups, "groups", op)
    _check_channels(op, input, weight, bias, groups)
    pad_before, pad_after = _padding(op, dims, padding, stride, dilation, weight.shape[2:])
    out_spatial = _output_spatial(op, input.shape[2:], weight.shape[2:], stride, pad_before, pad_after, dilation)

    output = np.empty((input.shape[0], weight.shape[0]) + out_spatial, dtype=input.dtype)
    if output.size:
        _conv_direct(input, weight, bias, output, stride, pad_before, pad_after, dilation, groups)
    return output[0] if unbatched else output


def _conv_direct(input, weight, bias, output, stride, pad_before, pad_after, dilation, groups):
    """Fill ``output`` with the direct kernel; the arguments are validated, the arrays batched."""
    dims = input.ndim - 2
    if any(pad_before + pad_after) and not np.isfinite(weight).all():
        # The kernel skips padding; torch multiplies its zeros too, and 0 * inf or 0 * nan is nan.
        input = np.pad(input, [(0, 0), (0, 0)] + list(zip(pad_before, pad_after)))
        pad_before = (0,) * dims
    lead = 3 - dims  # leading size-1 spatial dimensions that make the problem 3-D
    conv3d_direct(
        input.reshape(input.shape[:2] + (1,) * lead + input.shape[2:]),
        weight.reshape(weight.shape[:2] + (1,) * lead + weight.shape[2:]),
        np.empty(0, dtype=input.dtype) if bias is None else bias,
        output.reshape(output.shape[:2] + (1,) * lead + output.shape[2:]),
        (1,) * lead + stride, (0,) * lead + pad_before, (1,) * lead + dilation,
        groups, num_threads=kernel_threads(output.size * weight[0].size))  # multiply-adds


def _check_arrays(op, dims, input, weight, bias):
    """The arrays as C-contiguous floats of one dtype, input batched; and whether it was unbatched."""
    input = as_float_array(input, "input", op)
    weight = as_float_array(weight, "weight", op)
    if bias is not None:
        bias = as_float_array(bias, "bias", op)
    check_same_dtype(op, "input", input, weight=weight, bias=bias)
    spatial = _SPATIAL_NAMES[dims]
    check_ndim(input, "input", op, (dims + 1, dims + 2), f"(C, {spatial}) or (N, C, {spatial})")
    check_ndim(weight, "weight", op, (dims + 2,), f"(out_channels, in_channels / groups, {_KERNEL_NAMES[dims]})")
    if 0 in weight.shape:
        raise ValueError(f"{op}: expected weight to have no zero-size dimension, got shape {weight.shape}")
    if 0 in input.shape[-dims:]:
        raise ValueError(f"{op}: expected input to have non-zero spatial sizes ({spatial}), got shape {input.shape}")
    unbatched = input.ndim == dims + 1
    if unbatched:
        input = input[np.newaxis]
    return input, weight, bias, unbatched


def _check_channels(op, input, weight, bias, groups):
    """groups >= 1 divides out_channels, input channels = weight.shape[1] * groups, bias has out_channels values."""
    out_channels = weight.shape[0]
    if groups < 1:
        raise ValueError(f"{op}: expected groups to be >= 1, got {groups}")
    if out_channels % groups:
        raise ValueError(
            f"{op}: expected out_channels (weight.shape[0] = {out_channels}) to be divisible by groups ({groups})")
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: expected input with {weight.shape[1] * groups} channels (weight.shape[1] * groups), "
            f"got {input.shape[1]}")
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(
            f"{op}: expected bias to be 1D with {out_channels} elements (weight.shape[0]), got shape {bias.shape}")


def _padding(op, dims, padding, stride, dilation, kernel_size):
    """Zeros added before and after each spatial dimension, as two tuples.

    'same' adds dilation * (kernel - 1) in total, the extra one of an odd total
    after (torch's rule); it needs stride 1.
    """
    if isinstance(padding, str):
        check_choice(padding, "padding", op, ("valid", "same"))
        if padding == "valid":
            return (0,) * dims, (0,) * dims
        if any(s != 1 for s in stride):
            raise ValueError(
                f"{op}: padding='same' is not supported for strided convolutions, expected stride 1, "
                f"got stride {stride if dims > 1 else stride[0]}")
        total = tuple(d * (k - 1) for d, k in zip(dilation, kernel_size))
        before = tuple(t // 2 for t in total)
        return before, tuple(t - b for t, b in zip(total, before))
    padding = as_tuple(padding, dims, "padding", op, minimum=0)
    return padding, padding


def _output_spatial(op, input_size, kernel_size, stride, pad_before, pad_after, dilation):
    """Output spatial sizes; ValueError if the dilated kernel does not fit the padded input."""
    padded = tuple(i + b + a for i, b, a in zip(input_size, pad_before, pad_after))
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel_size))
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(
            f"{op}: expected the kernel (dilated size {span}) to fit the padded input (size {padded}), "
            f"with kernel_size {tuple(kernel_size)}, dilation {dilation}, input size {tuple(input_size)}")
    # The formula pads symmetrically by pad_before; padding after that exceeds it (odd 'same') counts as input.
    widened = tuple(i + a - b for i, b, a in zip(input_size, pad_before, pad_after))
    return conv_output_shape(widened, kernel_size, stride, pad_before, dilation)
