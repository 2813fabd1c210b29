"""Transposed convolutions: conv_transpose1d/2d/3d, as torch.nn.functional computes them.

The arguments are validated here into a ConvProblem (``_conv_plan``) and the
algorithm named by the keyword-only ``algorithm=`` computes the output
('auto', 'direct' or 'gemm'); none builds a zero-stuffed input.
"""
import numpy as np

from .. import _aligned as aligned
from ._checks import as_int, as_tuple, check_ndim
from ._conv_plan import ConvProblem, Epilogue, run_algorithm, select_algorithm
from .conv import _finite, as_float_arrays

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _conv_transpose(op, dims, input, weight, bias, stride, padding, output_padding, groups, dilation, algorithm):
    """Validates the arguments of conv_transpose{dims}d and runs the chosen algorithm."""
    input, weight, bias = as_float_arrays(op, input, weight, bias)
    problem = conv_transpose_problem(op, dims, weight, bias, stride, padding, output_padding, groups, dilation)
    input, unbatched = check_conv_transpose_input(op, problem, input)
    output = aligned.empty((input.shape[0], problem.out_channels) + problem.output_spatial(input.shape[2:]),
                           input.dtype)
    algorithm_class = select_algorithm(op, problem, algorithm, input.shape, algorithm != "auto" or _finite(weight))
    if output.size:
        run_algorithm(algorithm_class(problem, weight), input, output, Epilogue.bias_only(bias, input.dtype))
    return output[0] if unbatched else output


def conv_transpose_problem(op, dims, weight, bias, stride, padding, output_padding, groups, dilation):
    """The validated ConvProblem of conv_transpose{dims}d with this weight, bias and these arguments."""
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
    if in_channels % groups != 0:
        raise ValueError(
            f"{op}: expected weight.shape[0] ({in_channels}) to be divisible by groups ({groups})")
    for op_pad, s, d in zip(output_padding, stride, dilation):
        if op_pad >= max(s, d):
            raise ValueError(
                f"{op}: expected output_padding to be smaller than stride or dilation in each dimension, "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}")
    out_channels = out_per_group * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(
            f"{op}: expected bias of shape ({out_channels},) (weight.shape[1] * groups), got {bias.shape}")
    return ConvProblem(
        transposed=True, in_channels=in_channels, out_channels=out_channels, groups=groups,
        kernel_size=weight.shape[2:], stride=stride, pad_before=padding, pad_after=padding, dilation=dilation,
        output_padding=output_padding, dtype=weight.dtype)


def check_conv_transpose_input(op, problem, input):
    """input batched, and whether it was unbatched; ValueError if it does not fit ``problem``."""
    dims = problem.dims
    layout = _LAYOUTS[dims]
    check_ndim(input, "input", op, (dims + 1, dims + 2), f"{layout} or unbatched {layout.replace('N, ', '')}")
    unbatched = input.ndim == dims + 1
    if unbatched:
        input = input[np.newaxis]
    if input.shape[1] != problem.in_channels:
        raise ValueError(
            f"{op}: expected input with {problem.in_channels} channels (weight.shape[0]), got {input.shape[1]}")
    spatial = input.shape[2:]
    if 0 in spatial:
        raise ValueError(f"{op}: expected input with non-empty spatial dimensions, got shape {input.shape}")
    out_spatial = problem.output_spatial(spatial)
    if any(size <= 0 for size in out_spatial):
        raise ValueError(
            f"{op}: output size {out_spatial} is too small (input size {spatial}, "
            f"kernel_size {problem.kernel_size}, stride {problem.stride}, padding {problem.pad_before}, "
            f"output_padding {problem.output_padding}, dilation {problem.dilation})")
    return input, unbatched


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto"):
    """1D transposed convolution of input (N, C_in, L) or (C_in, L) with weight (C_in, C_out / groups, k)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto"):
    """2D transposed convolution of input (N, C_in, H, W) or (C_in, H, W) with weight (C_in, C_out / groups, kH, kW)."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto"):
    """3D transposed convolution of input (N, C_in, D, H, W) or (C_in, D, H, W) with weight
    (C_in, C_out / groups, kD, kH, kW)."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)
