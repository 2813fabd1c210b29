"""conv1d, conv2d, conv3d: the torch.nn.functional convolutions for numpy arrays.

Each call validates its arguments into a ConvProblem (``_conv_plan``), computes
the output shape, allocates the output and runs the algorithm named by the
keyword-only ``algorithm=`` ('auto': chosen by ``_conv_plan.choose``; 'direct':
the reference kernel; 'winograd', 'gemm', 'depthwise', ...).
"""
import numpy as np

from .. import _aligned as aligned
from ._checks import as_float_array, as_int, as_tuple, check_choice, check_ndim, check_same_dtype
from ._conv_plan import ConvProblem, Epilogue, run_algorithm, select_algorithm

__all__ = ["conv1d", "conv2d", "conv3d"]

_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}
_KERNEL_NAMES = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """1-D convolution of input (N, C, L) or (C, L) with weight (out_channels, C // groups, kL).

    As torch.nn.functional.conv1d: padding is an int, a 1-tuple, 'valid' or 'same'.
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups, algorithm)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """2-D convolution of input (N, C, H, W) or (C, H, W) with weight (out_channels, C // groups, kH, kW).

    As torch.nn.functional.conv2d: stride, padding and dilation are ints or 2-tuples;
    padding may also be 'valid' or 'same' (stride 1 only; an odd total puts the extra
    zero on the bottom / right).
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, algorithm)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """3-D convolution of input (N, C, D, H, W) or (C, D, H, W) with weight (out_channels, C // groups, kD, kH, kW).

    As torch.nn.functional.conv3d: stride, padding and dilation are ints or 3-tuples;
    padding may also be 'valid' or 'same'.
    """
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups, algorithm)


def _conv(op, dims, input, weight, bias, stride, padding, dilation, groups, algorithm):
    """Validate, compute the output shape, allocate, run the chosen algorithm."""
    input, weight, bias = as_float_arrays(op, input, weight, bias)
    problem = conv_problem(op, dims, weight, bias, stride, padding, dilation, groups)
    input, unbatched = check_conv_input(op, problem, input)
    output = aligned.empty((input.shape[0], problem.out_channels) + problem.output_spatial(input.shape[2:]),
                           input.dtype)
    algorithm_class = select_algorithm(op, problem, algorithm, input.shape, algorithm != "auto" or _finite(weight))
    if output.size:
        run_algorithm(algorithm_class(problem, weight), input, output, Epilogue.bias_only(bias, input.dtype))
    return output[0] if unbatched else output


def _finite(weight):
    """Whether every weight is finite (auto runs the direct kernel otherwise)."""
    return bool(np.isfinite(weight).all())


def as_float_arrays(op, input, weight, bias):
    """input, weight and bias (None allowed) as C-contiguous float arrays of one dtype."""
    input = as_float_array(input, "input", op)
    weight = as_float_array(weight, "weight", op)
    if bias is not None:
        bias = as_float_array(bias, "bias", op)
    check_same_dtype(op, "input", input, weight=weight, bias=bias)
    return input, weight, bias


def conv_problem(op, dims, weight, bias, stride, padding, dilation, groups):
    """The validated ConvProblem of conv{dims}d with this weight, bias and these arguments."""
    check_ndim(weight, "weight", op, (dims + 2,), f"(out_channels, in_channels / groups, {_KERNEL_NAMES[dims]})")
    if 0 in weight.shape:
        raise ValueError(f"{op}: expected weight to have no zero-size dimension, got shape {weight.shape}")
    stride = as_tuple(stride, dims, "stride", op, minimum=1)
    dilation = as_tuple(dilation, dims, "dilation", op, minimum=1)
    groups = as_int(groups, "groups", op)
    _check_channels(op, weight, bias, groups)
    pad_before, pad_after = _padding(op, dims, padding, stride, dilation, weight.shape[2:])
    return ConvProblem(
        transposed=False, in_channels=weight.shape[1] * groups, out_channels=weight.shape[0], groups=groups,
        kernel_size=weight.shape[2:], stride=stride, pad_before=pad_before, pad_after=pad_after,
        dilation=dilation, output_padding=(0,) * dims, dtype=weight.dtype)


def check_conv_input(op, problem, input):
    """input (float, problem's dtype) batched, and whether it was unbatched; ValueError if it does not fit."""
    dims = problem.dims
    spatial = _SPATIAL_NAMES[dims]
    check_ndim(input, "input", op, (dims + 1, dims + 2), f"(C, {spatial}) or (N, C, {spatial})")
    if 0 in input.shape[-dims:]:
        raise ValueError(f"{op}: expected input to have non-zero spatial sizes ({spatial}), got shape {input.shape}")
    unbatched = input.ndim == dims + 1
    if unbatched:
        input = input[np.newaxis]
    if input.shape[1] != problem.in_channels:
        raise ValueError(
            f"{op}: expected input with {problem.in_channels} channels (weight.shape[1] * groups), "
            f"got {input.shape[1]}")
    _check_kernel_fits(op, input.shape[2:], problem)
    return input, unbatched


def _check_channels(op, weight, bias, groups):
    """groups >= 1 divides out_channels, bias has out_channels values."""
    out_channels = weight.shape[0]
    if groups < 1:
        raise ValueError(f"{op}: expected groups to be >= 1, got {groups}")
    if out_channels % groups:
        raise ValueError(
            f"{op}: expected out_channels (weight.shape[0] = {out_channels}) to be divisible by groups ({groups})")
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


def _check_kernel_fits(op, input_size, problem):
    """ValueError unless the dilated kernel fits the padded input."""
    padded = tuple(i + b + a for i, b, a in zip(input_size, problem.pad_before, problem.pad_after))
    span = tuple(d * (k - 1) + 1 for d, k in zip(problem.dilation, problem.kernel_size))
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(
            f"{op}: expected the kernel (dilated size {span}) to fit the padded input (size {padded}), "
            f"with kernel_size {tuple(problem.kernel_size)}, dilation {problem.dilation}, "
            f"input size {tuple(input_size)}")
