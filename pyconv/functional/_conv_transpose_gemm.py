"""GemmConvTranspose: transposed convolution by GEMM + col2im (``algorithm='gemm'``).

The kernel (``_kernels.conv_transpose_gemm``) multiplies packed weights with
the input rows read in place (no im2col, no zero-stuffed input) and scatters
the products into the output block by block, applying the fused epilogue while
each block is in cache.  It serves every transposed convolution torch allows
(any stride, padding, output_padding, dilation, groups; 1d, 2d, 3d).

Blocking, chosen from the problem and the input shape only (never the thread
count, so results do not depend on it):

- output channels per weight block: the GEMM's m is co_block * kW, kept near
  ``GEMM_ROWS`` (weights packed once per block in ``__init__``);
- output rows per task (band): the GEMM's n (input rows x width) near
  ``GEMM_COLUMNS``, but small enough for ``MIN_TASKS`` tasks per image;
- input columns per GEMM when one GEMM reads a single long input row.
"""
from math import ceil

import numpy as np

from .._kernels.conv_transpose_gemm import conv_transpose_gemm_forward, pack_weights, packed_weights_size
from ._conv_plan import _as_3d, _lift

GEMM_ROWS = 128       # target m = output channels per block x kW
GEMM_COLUMNS = 256    # target n = input rows x input width per GEMM
MIN_TASKS = 8         # per image, when the output is large enough to split


class GemmConvTranspose:
    """GEMM + col2im transposed convolution; the weights are packed once per output channel block."""
    name = "gemm"

    @staticmethod
    def unsupported(problem):
        return None if problem.transposed else "it computes transposed convolutions only"

    def __init__(self, problem, weight):
        self.problem = problem
        weight = np.ascontiguousarray(_as_3d(weight, problem.dims), dtype=problem.dtype)
        groups = problem.groups
        in_per_group = weight.shape[0] // groups
        out_per_group = weight.shape[1]
        kernel_w = weight.shape[4]
        self.kernel_size = weight.shape[2:]
        self.co_block = _channel_block(out_per_group, kernel_w)
        size = packed_weights_size(groups, in_per_group, out_per_group, *self.kernel_size, self.co_block)[0]
        self.packed = np.empty(size, dtype=problem.dtype)
        pack_weights(weight, groups, self.co_block, self.packed)

    def run(self, input, output, epilogue, residual, num_threads):
        p = self.problem
        dims = p.dims
        input5 = _as_3d(input, dims)
        output5 = _as_3d(output, dims)
        band, width_tile = self.blocking(input5.shape, output5.shape)
        conv_transpose_gemm_forward(
            input5, self.packed, output5, self.kernel_size, _lift(p.stride, dims, 1), _lift(p.pad_before, dims, 0),
            _lift(p.dilation, dims, 1), p.groups, self.co_block, band, width_tile,
            *epilogue.kernel_args(residual), num_threads=num_threads)

    def blocking(self, input_shape, output_shape):
        """(output rows per task, input columns per single-row GEMM) for 5-D input/output shapes."""
        stride_h = _lift(self.problem.stride, self.problem.dims, 1)[1]
        in_w = input_shape[4]
        out_d, out_h = output_shape[2:4]
        rows = max(1, round(GEMM_COLUMNS / in_w))
        band = min(out_h, rows * stride_h)
        channel_blocks = self.problem.groups * -(-(output_shape[1] // self.problem.groups) // self.co_block)
        while band > 1 and channel_blocks * out_d * -(-out_h // band) < MIN_TASKS:
            band = max(1, band // 2)
        tiles = max(1, round(in_w / GEMM_COLUMNS))
        return band, -(-in_w // tiles)


def _channel_block(out_per_group, kernel_w):
    """Output channels per weight block: m = block x kernel_w near GEMM_ROWS, blocks of equal size."""
    block = max(1, min(out_per_group, GEMM_ROWS // kernel_w))
    blocks = ceil(out_per_group / block)
    return ceil(out_per_group / blocks)
