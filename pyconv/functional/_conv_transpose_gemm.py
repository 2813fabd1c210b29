"""GemmConvTranspose: transposed convolution by GEMM + col2im (``algorithm='gemm'``).

The kernel (``_kernels.conv_transpose_gemm``) multiplies packed weights with
the input rows read in place (no im2col, no zero-stuffed input) and gathers
the products into the output block by block, applying the fused epilogue while
each block is in cache.  With at most ``DIRECT_MAX_IN_CHANNELS`` input
channels per group (depthwise) the GEMM's k would be tiny: the same gather
then multiplies the input rows by the weights itself ("direct mode").  It
serves every transposed convolution torch allows (any stride, padding,
output_padding, dilation, groups; 1d, 2d, 3d).  bench/CONV_TRANSPOSE.md has
the measurements behind the design and the constants below.

Blocking, chosen from the problem and the input shape only (never the thread
count, so results do not depend on it):

- output channels per weight block: the GEMM's m is co_block * kW, kept near
  ``GEMM_ROWS`` (weights packed once per block in ``__init__``);
- output rows per task (band): the GEMM's n (input rows x width) near
  ``GEMM_COLUMNS`` (less if a task's products would exceed ``PRODUCTS_BYTES``),
  but small enough for ``MIN_TASKS`` tasks;
- output columns per tile, when input rows are much longer than that n.
"""
from math import ceil, prod

import numpy as np

from .._kernels.conv_transpose_gemm import conv_transpose_gemm_forward, pack_weights, packed_weights_size
from ._conv_gemm import PointwiseGemm
from ._conv_plan import view_as_3d
from .shapes import lift_to_3d

GEMM_ROWS = 128                 # target m = output channels per block x kW
GEMM_COLUMNS = 256              # target n = input rows x input width per GEMM
MIN_COLUMNS = 32
PRODUCTS_BYTES = 384 * 1024     # GEMM results one task holds (all its (kd, kh)), per thread
MIN_TASKS = 8                   # when the output is large enough to split
DIRECT_MAX_IN_CHANNELS = 2      # up to this many input channels per group: no GEMM (direct mode)
DIRECT_CHANNELS = 32            # output channels per task in direct mode


class GemmConvTranspose:
    """GEMM + col2im transposed convolution; the weights are packed once per output channel block."""
    name = "gemm"

    @staticmethod
    def unsupported(problem):
        return None if problem.transposed else "it computes transposed convolutions only"

    def __init__(self, problem, weight):
        self.problem = problem
        weight = np.ascontiguousarray(view_as_3d(weight), dtype=problem.dtype)
        groups = problem.groups
        in_per_group = weight.shape[0] // groups
        out_per_group = weight.shape[1]
        kernel_w = weight.shape[4]
        self.kernel_size = weight.shape[2:]
        self.direct = in_per_group <= DIRECT_MAX_IN_CHANNELS
        # direct mode: output channels of any group per task
        self.co_block = min(problem.out_channels, DIRECT_CHANNELS) if self.direct else _channel_block(
            out_per_group, kernel_w)
        if self.direct:  # (C_out, kD, kH, kW, C_in / groups)
            self.packed = np.ascontiguousarray(
                weight.reshape(groups, in_per_group, out_per_group, -1).transpose(0, 2, 3, 1)).reshape(-1)
        else:
            size = packed_weights_size(groups, in_per_group, out_per_group, *self.kernel_size, self.co_block)[0]
            self.packed = np.empty(size, dtype=problem.dtype)
            pack_weights(weight, groups, self.co_block, self.packed)
        # One input position per image (DCGAN's first layer: a 1 x 1 latent to 512 x 4 x 4): every
        # output is a tap of the kernel window, so the layer is one pointwise GEMM with the batch
        # as its positions, (C_out x taps, C_in) @ (C_in, N), where col2im per image would be N
        # matrix-vector products each reading all the weights.  Its packed weights are made on
        # first use.
        self._weight = None if self.direct or any(d != 1 for d in problem.dilation) or any(
            problem.output_padding) else weight
        self._single_position = None
        self._tap_epilogue = None   # (epilogue, its scale and shift repeated per kernel tap)

    def run(self, input, output, epilogue, residual, num_threads):
        p = self.problem
        input5 = view_as_3d(input)
        output5 = view_as_3d(output)
        if self._weight is not None and input5.shape[2:] == (1, 1, 1) and not residual.size:
            self._run_single_position(input5, output5, epilogue, num_threads)
            return
        band, tile = self.blocking(input5.shape, output5.shape)
        conv_transpose_gemm_forward(
            input5, self.packed, output5, self.kernel_size, lift_to_3d(p.stride, 1), lift_to_3d(p.pad_before, 0),
            lift_to_3d(p.dilation, 1), p.groups, self.direct, self.co_block, band, tile,
            *epilogue.kernel_args(residual), num_threads=num_threads)

    def _run_single_position(self, input5, output5, epilogue, num_threads):
        """run for inputs of one position per image, without a residual: the pointwise GEMM."""
        p, taps, batch = self.problem, prod(self.kernel_size), input5.shape[0]
        gemm = self._single_position
        if gemm is None:   # weights (C_in, C_out / groups, *kernel) -> rows (c_out, tap) of each group
            in_per_group = self._weight.shape[0] // p.groups
            rows = self._weight.reshape(p.groups, in_per_group, -1).transpose(0, 2, 1).reshape(-1, in_per_group)
            gemm = self._single_position = PointwiseGemm(np.ascontiguousarray(rows), p.groups)
        x = np.ascontiguousarray(input5.reshape(batch, -1).T).reshape(1, -1, batch)
        products = np.empty((1, p.out_channels * taps, batch), p.dtype)
        if self._tap_epilogue is None or self._tap_epilogue[0] is not epilogue:
            self._tap_epilogue = (epilogue,) + tuple(np.repeat(a, taps) if a.size else a
                                                     for a in (epilogue.scale, epilogue.shift))
        _, scale, shift = self._tap_epilogue
        gemm.run(x, products, (scale, shift, np.empty(0, p.dtype), epilogue.activation, *epilogue.params),
                 num_threads)
        # tap k of the window lands on output position k - padding
        window = products.reshape((p.out_channels,) + tuple(self.kernel_size) + (batch,))
        crop = tuple(slice(b, b + o) for b, o in zip(lift_to_3d(p.pad_before, 0), output5.shape[2:]))
        output5[...] = np.moveaxis(window[(slice(None),) + crop], -1, 0)

    def blocking(self, input_shape, output_shape):
        """(output rows per task, output columns per tile) for 5-D input/output shapes."""
        p = self.problem
        kernel_d, kernel_h, kernel_w = self.kernel_size
        stride_h, stride_w = lift_to_3d(p.stride, 1)[1:]
        in_w = input_shape[4]
        out_d, out_h, out_w = output_shape[2:]
        # the products of every (kd, kh) of a task stay within PRODUCTS_BYTES
        products_per_column = kernel_d * kernel_h * self.co_block * kernel_w * np.dtype(p.dtype).itemsize
        columns = max(MIN_COLUMNS, min(GEMM_COLUMNS, PRODUCTS_BYTES // products_per_column))
        tiles = round(in_w / columns)
        if tiles >= 2:  # long rows: one input row per GEMM, output columns in tiles
            return min(out_h, stride_h), -(-out_w // tiles)
        band = min(out_h, max(1, columns // in_w) * stride_h)
        if self.direct:
            channel_blocks = -(-p.out_channels // self.co_block)
        else:
            channel_blocks = p.groups * -(-(p.out_channels // p.groups) // self.co_block)
        while band > 1 and output_shape[0] * channel_blocks * out_d * -(-out_h // band) < MIN_TASKS:
            band = max(1, band // 2)
        return band, out_w


def _channel_block(out_per_group, kernel_w):
    """Output channels per weight block: m = block x kernel_w near GEMM_ROWS, blocks of equal size."""
    block = max(1, min(out_per_group, GEMM_ROWS // kernel_w))
    blocks = ceil(out_per_group / block)
    return ceil(out_per_group / blocks)
