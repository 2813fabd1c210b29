"""Convolution algorithms: what a convolution is (ConvProblem), how its output is
finished (Epilogue), and the algorithms that compute it.

Every algorithm is a class with the same three parts:

``name``
    The string users pass as ``algorithm=``.
``unsupported(problem)`` (static)
    None when the algorithm can compute ``problem``, else the reason it cannot,
    as a phrase ("needs a 3x3 kernel, got 5x5").
``__init__(problem, weight)``
    Packs/transforms the (validated, C-contiguous, problem.dtype) weight once;
    the object is then reused for any number of calls (prepacked weights).
``run(input, output, epilogue, residual, num_threads)``
    Fills the preallocated C-contiguous ``output`` (N, C_out, *out_spatial)
    from the C-contiguous ``input`` (N, C_in, *spatial) with
    ``activation(conv * scale + shift + residual)`` (see Epilogue); residual is
    a flat array of output.size elements in the output's layout, or an empty
    array.  Arguments are validated before; N >= 1 and every size > 0.
``bind(input_shape, output_shape, epilogue)`` (optional)
    ``run`` for those shapes and that epilogue, as a function of
    ``(input, output, residual, num_threads)`` with the rest worked out once
    (``bind_algorithm``; the graph executor calls it per plan).

The algorithm classes live one per module next to this one and are imported
when first used (ALGORITHMS).  ``choose`` is the rule behind
``algorithm='auto'``; bench/ALGORITHMS.md has the measurements it comes from.
"""
import importlib
from dataclasses import dataclass
from math import prod

import numpy as np

from .._kernels.activation import KINDS as _ACTIVATION_KINDS
from .._kernels.conv_direct import conv3d_direct
from .._kernels.conv_transpose import conv_transpose_forward
from .._kernels.epilogue import apply_epilogue
from .._threads import kernel_threads
from .shapes import lift_to_3d

# Algorithm name -> (module in pyconv.functional, class), per kind of convolution.
ALGORITHMS = {
    "conv": {
        "direct": ("._conv_plan", "DirectConv"),
        "winograd": ("._conv_winograd", "Winograd"),
        "winograd_f2": ("._conv_winograd", "WinogradF2"),
        "winograd_f4": ("._conv_winograd", "WinogradF4"),
        "gemm": ("._conv_gemm", "GemmConv"),
        "depthwise": ("._conv_depthwise", "DepthwiseConv"),
    },
    "conv_transpose": {
        "direct": ("._conv_plan", "DirectConvTranspose"),
        "gemm": ("._conv_transpose_gemm", "GemmConvTranspose"),
    },
}


@dataclass(frozen=True)
class ConvProblem:
    """A convolution's weights and arguments, independent of the input size.

    For a transposed convolution in_channels is weight.shape[0] and
    out_channels weight.shape[1] * groups; for a plain one out_channels is
    weight.shape[0] and in_channels weight.shape[1] * groups.  Tuples have one
    entry per spatial dimension.
    """
    transposed: bool
    in_channels: int
    out_channels: int
    groups: int
    kernel_size: tuple
    stride: tuple
    pad_before: tuple
    pad_after: tuple        # differs from pad_before only for padding='same' with an odd total
    dilation: tuple
    output_padding: tuple   # transposed only; zeros for a plain convolution
    dtype: np.dtype

    @property
    def dims(self):
        return len(self.kernel_size)

    @property
    def depthwise(self):
        """Each output channel reads exactly one input channel (groups == in_channels)."""
        return self.groups == self.in_channels

    @property
    def pointwise(self):
        """1x1(x1) kernel without padding."""
        return all(k == 1 for k in self.kernel_size) and not any(self.pad_before + self.pad_after)

    @property
    def op(self):
        return "conv_transpose" if self.transposed else "conv"

    def output_spatial(self, spatial):
        """Output spatial sizes for input spatial sizes ``spatial`` (assumed valid)."""
        if self.transposed:
            return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, s, p, d, k, op in zip(
                spatial, self.stride, self.pad_before, self.dilation, self.kernel_size, self.output_padding))
        return tuple((i + b + a - d * (k - 1) - 1) // s + 1 for i, b, a, d, k, s in zip(
            spatial, self.pad_before, self.pad_after, self.dilation, self.kernel_size, self.stride))


@dataclass(frozen=True)
class Epilogue:
    """What a kernel does to its output before storing it for good:
    ``y = activation(conv * scale[c] + shift[c] + residual)``.

    scale and shift are (C_out,) arrays of the output dtype or empty (absent:
    1 and 0).  A conv bias alone is ``shift``; batch norm folds in as
    ``scale = gamma / sqrt(var + eps)``, ``shift = beta + (bias - mean) * scale``.
    activation is a code of ``pyconv._kernels.activation.KINDS`` and params
    its three parameters (see activation.pxd).
    """
    scale: np.ndarray
    shift: np.ndarray
    activation: int = _ACTIVATION_KINDS["identity"]
    params: tuple = (0.0, 0.0, 0.0)

    @classmethod
    def bias_only(cls, bias, dtype):
        empty = np.empty(0, dtype=dtype)
        return cls(empty, empty if bias is None else np.ascontiguousarray(bias, dtype=dtype))

    @property
    def is_identity(self):
        return not self.scale.size and not self.shift.size and self.activation == _ACTIVATION_KINDS["identity"]

    def kernel_args(self, residual):
        """The epilogue arguments every fast kernel takes, in order:
        scale, shift, residual (flat), activation, p0, p1, p2."""
        return (self.scale, self.shift, residual, self.activation) + tuple(self.params)


def algorithm_class(kind, name):
    """The class of algorithm ``name`` for kind 'conv' or 'conv_transpose'."""
    module, cls = ALGORITHMS[kind][name]
    return getattr(importlib.import_module(module, __package__), cls)


def select_algorithm(op, problem, algorithm, input_shape, weight_finite):
    """The algorithm class to compute ``problem`` on input of ``input_shape``.

    ``algorithm='auto'`` applies ``choose``; a name must be one of ALGORITHMS
    for the problem's kind and able to compute it, else ValueError naming op.
    """
    names = ALGORITHMS[problem.op]
    if not isinstance(algorithm, str) or algorithm != "auto" and algorithm not in names:
        listed = ", ".join(repr(n) for n in ("auto",) + tuple(names))
        raise ValueError(f"{op}: expected algorithm to be one of {listed}, got {algorithm!r}")
    if algorithm == "auto":
        return algorithm_class(problem.op, choose(problem, input_shape, weight_finite))
    cls = algorithm_class(problem.op, algorithm)
    reason = cls.unsupported(problem)
    if reason is not None:
        raise ValueError(f"{op}: algorithm={algorithm!r} cannot compute this convolution: {reason}")
    return cls


def choose(problem, input_shape, weight_finite):
    """The name of the algorithm 'auto' runs for ``problem`` on input of ``input_shape``.

    The rule and the measurements behind it are in bench/ALGORITHMS.md.
    """
    if not weight_finite:
        return "direct"  # pads explicitly: NaN/Inf weights meet the padding as in torch's float64 path
    if problem.transposed:
        return "gemm"
    if problem.depthwise and problem.dims < 3:
        return "depthwise"
    if problem.kernel_size in ((3,), (1, 3)) and all(s == 1 for s in problem.stride + problem.dilation):
        # One-row Winograd tiles (1-D convolutions, 1 x 3 kernels).
        return "winograd" if problem.in_channels // problem.groups >= WINOGRAD_ROW_MIN_CHANNELS else "gemm"
    if problem.dims == 2 and problem.stride == (1, 1):
        per_group = problem.in_channels // problem.groups
        if problem.kernel_size == (3, 3):
            if per_group >= (WINOGRAD_MIN_CHANNELS if problem.dilation == (1, 1) else WINOGRAD_DILATED_MIN_CHANNELS):
                return "winograd"
        elif problem.dilation == (1, 1) and all(3 <= k <= WINOGRAD_LARGE_MAX_KERNEL for k in problem.kernel_size):
            # Its 3x3 parts add input transforms (per input channel) and output transforms (per output
            # channel) to the GEMMs (per pair): it wins with both channel counts large.
            out_per_group = problem.out_channels // problem.groups
            channels = per_group * out_per_group / (per_group + out_per_group)
            outputs = input_shape[0] * prod(problem.output_spatial(input_shape[2:]))
            parts = prod(-(-k // 3) for k in problem.kernel_size)
            if any(channels >= least_channels and outputs >= least_outputs
                   for least_channels, least_outputs in WINOGRAD_LARGE_FROM[4 if parts <= 4 else 9]):
                return "winograd"
    return "gemm"


# Input channels per group from which Winograd beats the GEMM algorithm on 3x3 stride-1 convolutions.
WINOGRAD_MIN_CHANNELS = 8
# The same for 1-D kernels of 3 and 1 x 3 ones, where Winograd's one-row tiles save half the multiplies
# (F(1x4, 1x3)) rather than 3/4 (bench/ALGORITHMS.md).
WINOGRAD_ROW_MIN_CHANNELS = 32
# The same for dilated ones, which Winograd runs on the input's polyphase parts (two extra copies).
WINOGRAD_DILATED_MIN_CHANNELS = 64
# Kernels from 3x3 up to this side, other than 3x3 (stride 1, dilation 1), which Winograd runs as the
# sum of their 3x3 parts.  Per number of parts (up to 4, e.g. 5x5; up to 9, e.g. 7x7), the pairs (channels,
# batch x output positions) from which it beats the GEMM algorithm, channels being Cg Kg / (Cg + Kg)
# for Cg input and Kg output channels per group (5x5 and 7x7, 3-128 channels, 7x7 to 112x112
# outputs: bench/ALGORITHMS.md).
WINOGRAD_LARGE_MAX_KERNEL = 7
WINOGRAD_LARGE_FROM = {4: ((16, 24 * 24), (32, 14 * 14)), 9: ((16, 56 * 56), (32, 28 * 28))}


def direct_macs(problem, input_shape, output_shape):
    """Multiply-adds of the direct sum: what kernel_threads weighs."""
    p = problem
    return input_shape[0] * p.in_channels * prod(output_shape[2:]) * p.out_channels // p.groups * prod(p.kernel_size)


def run_algorithm(implementation, input, output, epilogue, residual=None):
    """Fill ``output`` with ``implementation`` (an algorithm object) on ``input``.

    residual: None or an array of the output's shape and dtype (validated by the caller).
    """
    residual = np.empty(0, dtype=output.dtype) if residual is None else residual.reshape(-1)
    implementation.run(input, output, epilogue, residual,
                       kernel_threads(direct_macs(implementation.problem, input.shape, output.shape)))


def bind_algorithm(implementation, input_shape, output_shape, epilogue):
    """``call(input, output, residual)`` running ``implementation`` as run_algorithm does, for inputs of
    ``input_shape`` only: with the algorithm's ``bind`` where it has one, the per-call work (layouts,
    blocking, argument lists) is done once here.  For the graph executor, whose shapes are fixed per plan.
    """
    macs = direct_macs(implementation.problem, input_shape, output_shape)
    if hasattr(implementation, "bind"):
        run = implementation.bind(input_shape, output_shape, epilogue)
    else:
        def run(input, output, residual, num_threads):
            implementation.run(input, output, epilogue, residual, num_threads)
    empty = np.empty(0, dtype=implementation.problem.dtype)

    def call(input, output, residual=None):
        run(input, output, empty if residual is None else residual.reshape(-1), kernel_threads(macs))
    return call


def shape_as_3d(shape):
    """(N, C, *spatial) with 1-3 spatial dimensions (or a weight's (O, I, *kernel)) as 5-D."""
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def view_as_3d(array):
    """``array`` viewed with shape_as_3d(array.shape)."""
    return array.reshape(shape_as_3d(array.shape))


class _DirectBase:
    """The direct kernels: they fuse a bias; any other epilogue runs as a second pass."""
    name = "direct"

    def __init__(self, problem, weight):
        self.problem = problem
        self.weight = view_as_3d(weight)

    def _run_kernel(self, kernel, input, output, epilogue, residual, pad_before, num_threads):
        p = self.problem
        bias_only = not epilogue.scale.size and not residual.size and epilogue.activation == 0
        kernel(view_as_3d(input), self.weight, epilogue.shift if bias_only else epilogue.scale[:0],
               view_as_3d(output), lift_to_3d(p.stride, 1), lift_to_3d(pad_before, 0), lift_to_3d(p.dilation, 1),
               p.groups, num_threads)
        if not bias_only:
            _apply_epilogue(output, epilogue, residual, num_threads)


class DirectConv(_DirectBase):
    """The direct kernel (``_kernels.conv_direct``): the reference every other algorithm is tested against."""

    @staticmethod
    def unsupported(problem):
        return "it computes convolutions, not transposed ones" if problem.transposed else None

    def __init__(self, problem, weight):
        super().__init__(problem, weight)
        self.weight_finite = bool(np.isfinite(weight).all())

    def run(self, input, output, epilogue, residual, num_threads):
        p = self.problem
        pad_before = p.pad_before
        if any(p.pad_before + p.pad_after) and not self.weight_finite:
            # The kernel skips padding; torch multiplies its zeros too, and 0 * inf or 0 * nan is nan.
            input = np.pad(input, [(0, 0), (0, 0)] + list(zip(p.pad_before, p.pad_after)))
            pad_before = (0,) * p.dims
        self._run_kernel(conv3d_direct, input, output, epilogue, residual, pad_before, num_threads)


class DirectConvTranspose(_DirectBase):
    """The direct transposed kernel (``_kernels.conv_transpose``): scatter-free, no zero-stuffed input."""

    @staticmethod
    def unsupported(problem):
        return None if problem.transposed else "it computes transposed convolutions only"

    def run(self, input, output, epilogue, residual, num_threads):
        self._run_kernel(conv_transpose_forward, input, output, epilogue, residual, self.problem.pad_before,
                         num_threads)


def _apply_epilogue(output, epilogue, residual, num_threads):
    """The epilogue as a separate in-place pass over ``output`` (N, C, *spatial)."""
    apply_epilogue(output.reshape(output.shape[0], output.shape[1], -1), *epilogue.kernel_args(residual),
                   num_threads=num_threads)
