"""Arrays that start on a 64-byte cache line.

numpy puts large arrays 16 bytes past a line (glibc hands out mmap'd blocks
after a 16-byte header), so every 64-byte vector load or store of such an
array spans two lines, and on this project's Zen 4 machine that costs about
twice as much as one inside a line (a stride-2 max pool row: 6.1 ns aligned,
8.7 ns 16 bytes off).  The outputs of the convolution and pooling functions
and the executor's arena start on a line, as torch's tensors do.
"""
import math

import numpy as np

__all__ = ["ALIGNMENT", "empty"]

ALIGNMENT = 64  # bytes: a cache line, and enough for any SIMD load


def empty(shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` whose data starts on a 64-byte line
    (a view of a slightly larger block: ``flags.owndata`` is False)."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    size = math.prod(shape) * dtype.itemsize
    block = np.empty(size + ALIGNMENT, dtype=np.uint8)
    start = -block.ctypes.data % ALIGNMENT
    return block[start:start + size].view(dtype).reshape(shape)
