"""prepack_conv: a convolution whose weights are transformed and packed once.

Repeated calls pay the weight transform (Winograd) or packing (GEMM) only on
the first call that uses an algorithm; ``pyconv.nn`` layers and the graph
executor hold these objects.  A prepacked convolution can also fuse what
follows it into the kernel's epilogue: a folded batch norm (``scale`` and
``shift``, see ``fold_batch_norm``), a residual added per call, and an
activation:

    y = activation((conv(x, weight) + bias) * scale + shift + residual)
"""
import numpy as np

from .. import _aligned as aligned
from ._checks import as_float_array, check_ndim, check_same_dtype
from ._conv_plan import Epilogue, run_algorithm, select_algorithm
from .activation import activation_kernel
from .conv import check_conv_input, conv_problem
from .conv_transpose import check_conv_transpose_input, conv_transpose_problem

__all__ = ["prepack_conv", "PrepackedConv", "fold_batch_norm"]

_MAX_REMEMBERED_SHAPES = 64  # algorithm choices remembered per PrepackedConv


def fold_batch_norm(running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """(scale, shift) with batch_norm(x) == x * scale + shift per channel, in float64.

    scale = weight / sqrt(running_var + eps); shift = bias - running_mean * scale
    (weight 1 and bias 0 when None), as torch's inference batch norm.
    """
    op = "fold_batch_norm"
    mean = as_float_array(running_mean, "running_mean", op).astype(np.float64)
    var = as_float_array(running_var, "running_var", op).astype(np.float64)
    check_ndim(mean, "running_mean", op, (1,), "(C,)")
    if var.shape != mean.shape:
        raise ValueError(f"{op}: expected running_var of shape {mean.shape} (running_mean), got {var.shape}")
    gamma = np.ones_like(mean) if weight is None else as_float_array(weight, "weight", op).astype(np.float64)
    beta = np.zeros_like(mean) if bias is None else as_float_array(bias, "bias", op).astype(np.float64)
    for name, array in (("weight", gamma), ("bias", beta)):
        if array.shape != mean.shape:
            raise ValueError(f"{op}: expected {name} of shape {mean.shape} (running_mean), got {array.shape}")
    scale = gamma / np.sqrt(var + float(eps))
    return scale, beta - mean * scale


def prepack_conv(weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, transposed=False,
                 output_padding=0, algorithm="auto", scale=None, shift=None, activation=None, activation_args=None):
    """A PrepackedConv computing conv{1,2,3}d (or conv_transpose{1,2,3}d if ``transposed``) with these weights.

    The spatial dimensions come from weight.ndim.  ``algorithm`` is as in the
    functional calls ('auto' chooses per input shape).  ``scale``/``shift``
    (per output channel, e.g. from fold_batch_norm) and ``activation`` (a name
    of pyconv.functional's activations, e.g. 'relu', 'relu6', 'leaky_relu',
    'hardswish', 'silu', 'sigmoid', 'gelu', with torch's keyword arguments in
    ``activation_args``) are fused into the kernels' epilogue.
    """
    return PrepackedConv(weight, bias, stride, padding, dilation, groups, transposed, output_padding, algorithm,
                         scale, shift, activation, activation_args)


class PrepackedConv:
    """A convolution with fixed weights and arguments; call it on inputs: ``conv(input, residual=None)``."""

    def __init__(self, weight, bias, stride, padding, dilation, groups, transposed, output_padding, algorithm,
                 scale, shift, activation, activation_args):
        weight = as_float_array(weight, "weight", "prepack_conv")
        if weight.ndim not in (3, 4, 5):
            raise ValueError(
                f"prepack_conv: expected weight to be 3D, 4D or 5D (out_channels, in_channels / groups, *kernel_size), "
                f"got {weight.ndim}D with shape {weight.shape}")
        dims = weight.ndim - 2
        self.op = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
        if bias is not None:
            bias = as_float_array(bias, "bias", self.op)
        check_same_dtype(self.op, "weight", weight, bias=bias)
        if transposed:
            self.problem = conv_transpose_problem(self.op, dims, weight, bias, stride, padding, output_padding,
                                                  groups, dilation)
        else:
            self.problem = conv_problem(self.op, dims, weight, bias, stride, padding, dilation, groups)
        self.weight = weight
        self._weight_finite = bool(np.isfinite(weight).all())
        self.epilogue = _epilogue(self.op, self.problem, bias, scale, shift, activation, activation_args or {})
        if algorithm != "auto":  # a bad or unfit name fails here, not on the first call
            select_algorithm(self.op, self.problem, algorithm, None, self._weight_finite)
        self.algorithm = algorithm
        self._implementations = {}  # algorithm class -> its object holding the packed weights
        self._choices = {}          # input shape -> algorithm class

    def __call__(self, input, residual=None, out=None):
        """The convolution of ``input`` (batched or not) with the fused epilogue; ``residual`` has the output's shape.

        ``out``: an optional C-contiguous array of the output's shape and dtype to write into (returned);
        it must not overlap ``input`` or ``residual``.
        """
        op = self.op
        input = as_float_array(input, "input", op)
        check_same_dtype(op, "weight", self.weight, input=input)
        if self.problem.transposed:
            input, unbatched = check_conv_transpose_input(op, self.problem, input)
        else:
            input, unbatched = check_conv_input(op, self.problem, input)
        shape = (input.shape[0], self.problem.out_channels) + self.problem.output_spatial(input.shape[2:])
        output = aligned.empty(shape, input.dtype) if out is None else _check_out(op, out, shape, input, unbatched)
        if residual is not None:
            residual = as_float_array(residual, "residual", op)
            check_same_dtype(op, "input", input, residual=residual)
            expected = output.shape[1:] if unbatched else output.shape
            if residual.shape != expected:
                raise ValueError(f"{op}: expected residual of the output's shape {expected}, got {residual.shape}")
            if out is not None and np.may_share_memory(out, residual):
                raise ValueError(f"{op}: expected out not to overlap residual")
        if output.size:
            cls = self._algorithm_class(input.shape)
            implementation = self._implementations.get(cls)
            if implementation is None:
                implementation = self._implementations[cls] = cls(self.problem, self.weight)
            run_algorithm(implementation, input, output, self.epilogue, residual)
        if out is not None:
            return out
        return output[0] if unbatched else output

    def algorithm_for(self, input_shape):
        """The name of the algorithm a call on input of ``input_shape`` (batched) runs."""
        return self._algorithm_class(tuple(input_shape)).name

    def _algorithm_class(self, input_shape):
        cls = self._choices.get(input_shape)
        if cls is None:
            cls = select_algorithm(self.op, self.problem, self.algorithm, input_shape, self._weight_finite)
            if len(self._choices) >= _MAX_REMEMBERED_SHAPES:  # inputs of ever new sizes: keep the newest
                self._choices.pop(next(iter(self._choices)))
            self._choices[input_shape] = cls
        return cls

    def __repr__(self):
        p = self.problem
        return (f"PrepackedConv({self.op}, {p.in_channels} -> {p.out_channels}, kernel_size={p.kernel_size}, "
                f"stride={p.stride}, groups={p.groups}, algorithm={self.algorithm!r})")


def _check_out(op, out, shape, input, unbatched):
    """``out`` viewed with the batched output ``shape``; ValueError/TypeError unless it fits."""
    expected = shape[1:] if unbatched else shape
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: expected out to be a numpy array, got {type(out).__name__}")
    if out.dtype != input.dtype:
        raise TypeError(f"{op}: expected out to have the dtype of input ({input.dtype}), got {out.dtype}")
    if out.shape != expected or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{op}: expected out to be a writable C-contiguous array of shape {expected}, "
                         f"got shape {out.shape}")
    if np.may_share_memory(out, input):
        raise ValueError(f"{op}: expected out not to overlap input")
    return out.reshape(shape)


def _epilogue(op, problem, bias, scale, shift, activation, activation_args):
    """The Epilogue: (conv + bias) * scale + shift folded to conv * scale + shift', then the activation."""
    channels = problem.out_channels
    dtype = problem.dtype
    folded = {}
    for name, values in (("scale", scale), ("shift", shift)):
        if values is not None:
            values = np.asarray(values)
            if values.dtype.kind not in "fiu" or values.shape != (channels,):
                raise ValueError(f"{op}: expected {name} to be a real array of shape ({channels},) (out_channels), "
                                 f"got {values.dtype} {values.shape}")
            folded[name] = values.astype(np.float64)
    if "scale" in folded:
        new_shift = folded.get("shift", np.zeros(channels))
        if bias is not None:
            new_shift = new_shift + bias.astype(np.float64) * folded["scale"]
        scale, shift = folded["scale"].astype(dtype), new_shift.astype(dtype)
    else:
        scale = np.empty(0, dtype=dtype)
        total = None if bias is None else bias.astype(np.float64)
        if "shift" in folded:
            total = folded["shift"] if total is None else total + folded["shift"]
        shift = np.empty(0, dtype=dtype) if total is None else total.astype(dtype)
    kind, params = activation_kernel("identity" if activation is None else activation, op, **activation_args)
    return Epilogue(scale, shift, kind, params)
