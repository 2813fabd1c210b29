"""Transposed convolutions: conv_transpose1d/2d/3d, as torch.nn.functional computes them.

The arguments are validated here, the arrays viewed as 5-D (N, C, D, H, W)
and handed to the direct kernel in ``pyconv._kernels.conv_transpose``, which
never builds a zero-stuffed input.
"""
import numpy as np

from .._kernels.conv_transpose import conv_transpose_forward
from .._threads import get_num_threads
from ._checks import as_float_array, as_int, as_tuple, check_ndim, check_same_dtype
from .shapes import conv_transpose_output_shape

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _conv_transpose(op, dims, input, weight, bias, stride, padding, output_padding, groups, dilation):
    """Validates the arguments of conv_transpose{dims}d and runs the kernel."""
    input = as_float_array(input, "input", op)
    weight = as_float_array(weight, "weight", op)
    if bias is not None:
        bias = as_float_array(bias, "bias", op)
    check_same_dtype(op, "input", input, weight=weight, bias=bias)

    layout = _LAYOUTS[dims]
    check_ndim(input, "input", op, (dims + 1, dims + 2), f"{layout} or unbatched {layout.replace('N, ', '')}")
    check_ndim(weight, "weight", op, (dims + 2,), "(C_in, C_out / groups, *kernel_size)")
    groups = as_int(groups, "groups", op)
    if groups <= 0:
        raise ValueError(f"{op}: expected groups to be >= 1, got {groups}")
    stride = as_tuple(stride, dims, "stride", op, minimum=1)
    padding = as_tuple(padding, dims, "padding", op, minimum=0)
    output_padding = as_tuple(output_padding, dims, "output_padding", op, minimum=0)
    dilation = as_tuple(dilation, dims, "dilation", op, minimum=1)

    if weight.size == 0:
        raise ValueError(f"{op}: expected a non-empty weight, got weight of shape {weight.shape}")
    in_channels, out_per_group = weight.shape[:2]
    kernel_size = weight.shape[2:]
    if in_channels % groups != 0:
        raise ValueError(
            f"{op}: expected weight.shape[0] ({in_channels}) to be divisible by groups ({groups})")
    unbatched = input.ndim == dims + 1
    if unbatched:
        input = input[np.newaxis]
    if input.shape[1] != in_channels:
        raise ValueError(
            f"{op}: expected input with {in_channels} channels (weight.shape[0]), got {input.shape[1]}")
    spatial = input.shape[2:]
    if 0 in spatial:
        raise ValueError(f"{op}: expected input with non-empty spatial dimensions, got shape {input.shape}")
    for op_pad, s, d in zip(output_padding, stride, dilation):
        if op_pad >= max(s, d):
            raise ValueError(
                f"{op}: expected output_padding to be smaller than stride or dilation in each dimension, "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}")
    out_channels = out_per_group * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(
            f"{op}: expected bias of shape ({out_channels},) (weight.shape[1] * groups), got {bias.shape}")
    out_spatial = conv_transpose_output_shape(spatial, kernel_size, stride, padding, output_padding, dilation)
    if any(size <= 0 for size in out_spatial):
        raise ValueError(
            f"{op}: output size {out_spatial} is too small (input size {spatial}, kernel_size {kernel_size}, "
            f"stride {stride}, padding {padding}, output_padding {output_padding}, dilation {dilation})")

    lift = (1,) * (3 - dims)
    output = np.empty((input.shape[0], out_channels) + out_spatial, dtype=input.dtype)
    conv_transpose_forward(
        input.reshape(input.shape[:2] + lift + spatial),
        weight.reshape(weight.shape[:2] + lift + kernel_size),
        bias if bias is not None else np.empty(0, dtype=input.dtype),
        output.reshape(output.shape[:2] + lift + out_spatial),
        lift + stride, (0,) * (3 - dims) + padding, lift + dilation,
        groups, get_num_threads())
    return output[0] if unbatched else output


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1D transposed convolution of input (N, C_in, L) or (C_in, L) with weight (C_in, C_out / groups, k)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2D transposed convolution of input (N, C_in, H, W) or (C_in, H, W) with weight (C_in, C_out / groups, kH, kW)."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3D transposed convolution of input (N, C_in, D, H, W) or (C_in, D, H, W) with weight
    (C_in, C_out / groups, kD, kH, kW)."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)
