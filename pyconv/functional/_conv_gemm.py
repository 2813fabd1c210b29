"""GEMM convolution (algorithm "gemm"): packed weights times input patches, built block by block.

See ``pyconv._kernels.conv_gemm`` for the kernel.  The weights are packed
once here (per group, in blocks of output channels); each call picks the
column block (output positions per task) from the input size so that a
task's patch block fits in L2 and there are enough tasks for the threads.
"""
from math import prod

import numpy as np

from .._kernels.conv_gemm import conv_gemm, pack_weight, packed_weight_size
from .._kernels.gemm import block_sizes
from ._conv_plan import _as_3d, _lift

_BLOCKING = block_sizes()


class GemmConv:
    """im2col + packed GEMM for every (non-transposed) convolution; pointwise ones read the input in place."""
    name = "gemm"

    # Bytes of one task's patch block (K x columns): it and the GEMM's packed copy of it stay in L2.
    PATCH_BYTES = 384 * 1024
    # Tasks per thread wanted before column blocks are made smaller than the L2 budget allows.
    TASKS_PER_THREAD = 4

    @staticmethod
    def unsupported(problem):
        return "it computes convolutions, not transposed ones" if problem.transposed else None

    def __init__(self, problem, weight):
        self.problem = problem
        groups = problem.groups
        out_per_group = problem.out_channels // groups
        self.patch_rows = prod(weight.shape[1:])
        # Output channels per packed block: one block per group up to the GEMM's row blocking,
        # so that layers with few output positions can still be split across threads.
        self.block = min(out_per_group, _BLOCKING["MC"])
        self.packed = np.empty(packed_weight_size(groups, out_per_group, self.patch_rows, self.block), problem.dtype)
        pack_weight(weight.reshape(problem.out_channels, self.patch_rows), groups, self.block, self.packed)

    def columns(self, batch, positions, num_threads):
        """Output positions per task for ``batch`` images of ``positions`` output positions."""
        p = self.problem
        nr = _BLOCKING["NR_float32" if p.dtype == np.float32 else "NR_float64"]
        columns = max(nr, self.PATCH_BYTES // (self.patch_rows * p.dtype.itemsize) // nr * nr)
        per_image = batch * p.groups * -(-p.out_channels // p.groups // self.block)
        wanted = self.TASKS_PER_THREAD * num_threads
        if num_threads > 1 and per_image * -(-positions // columns) < wanted:
            columns = max(nr, -(-positions * per_image // wanted) // nr * nr)
        return min(columns, positions)

    def run(self, input, output, epilogue, residual, num_threads):
        p = self.problem
        dims = p.dims
        positions = prod(output.shape[2:])
        conv_gemm(
            _as_3d(input, dims), self.packed, _as_3d(output, dims), _lift(p.kernel_size, dims, 1),
            _lift(p.stride, dims, 1), _lift(p.pad_before, dims, 0), _lift(p.dilation, dims, 1), p.groups,
            self.block, self.columns(input.shape[0], positions, num_threads), *epilogue.kernel_args(residual),
            num_threads=num_threads)
