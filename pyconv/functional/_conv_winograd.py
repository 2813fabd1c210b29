"""Winograd algorithms for 2-D 3x3 convolutions with stride 1 (``Winograd``: any dilation, and
larger kernels as sums of 3x3 ones), and with one-row tiles for 1 x 3 kernels and 1-D kernels of 3.

``WinogradF4`` computes F(4x4, 3x3) (6x6 transform, points 0, +-1, +-2, inf),
``WinogradF2`` F(2x2, 3x3) (4x4 transform, points 0, +-1, inf), ``Winograd``
picks one of them per input shape (``choose_tile``).  The weights are transformed
(U = G w G^T, in float64, rounded once to the dtype) and packed for the GEMM
in ``__init__``; ``run`` calls ``_kernels.winograd.winograd_conv2d``.

Accuracy: max|y - ref| / max|ref| against a float64 direct reference,
unit-normal inputs and weights (bench/suite.py arrays; bench/winograd.py --accuracy):

    case               F(2,3)    F(4,3)    direct   | float64 F(2,3), F(4,3)
    conv3x3_64_56      3.0e-7    6.4e-6    8.3e-7   | 1.7e-15, 9.9e-15
    conv3x3_128_28     4.3e-7    8.9e-6    1.5e-6   | 2.1e-15, 1.8e-14
    conv3x3_256_14     6.3e-7    1.7e-5    2.6e-6   | 3.8e-15, 2.1e-14
    conv3x3_512_7      5.4e-7    9.3e-6    2.8e-6   | 3.9e-15, 2.2e-14
    conv3x3_64_56_n8   3.5e-7    7.1e-6    1.4e-6   | 1.9e-15, 1.1e-14

so float32 results stay within 2e-5 * max|y| of the exact ones; tests compare
them with torch and the direct kernel within atol = 1e-4 * max|y| (the
issue's bound, 5x the worst measured error) and rtol 1e-4; float64 with the
default policy.

Speed (bench/winograd.py, this 2-vCPU Zen 4 shared with other jobs; ms, torch/pyconv):
1 thread, medians: 64@56^2 0.99 (2.1x), 128@28^2 0.90 (3.8x), 256@14^2 0.88 (3.1x),
512@7^2 1.55 with F(2,3) (1.6x; F(4,3) 2.44, 1.0x), 64@56^2 N=8 7.7 (2.2x): 230-260
GFLOP/s effective, 2.3-2.6x numpy's 1-thread fp32 GEMM peak (149 at 512@7^2).
2 threads, best samples: 0.55 (2.0x), 0.66 (3.9x), 0.52-0.64 (1.8-2.2x), 0.87-0.92
(1.4-1.5x), 5.7 (3.2x).

NaN / Inf: a transform spreads one non-finite value over its whole tile,
where the direct sum (and torch) has it only at the outputs it reaches.  The
kernel detects non-finite input tiles and ``run`` then recomputes the call
with the direct algorithm; non-finite weights select the direct algorithm
for every call.  Finite data can overflow too where the direct sum does not
(large weights: |U| times the input transform's gain, 100 for F(4,3), times
C, times the output transform's gain, 361): the kernel also checks every
output of the output transform (before the epilogue) and reports a NaN or
Inf there, and ``run`` recomputes that call with the direct algorithm as
well.  No extra pass: the check is a few additions inside the output
transform.
"""
from dataclasses import replace

import numpy as np

from .._kernels import gemm as _gemm, layout
from .._kernels.winograd import pack_weights, winograd_conv2d
from ._conv_plan import DirectConv, Epilogue, _apply_epilogue

__all__ = ["Winograd", "WinogradF2", "WinogradF4"]

# Kernel transforms G (alpha x 3) of F(m x m, 3 x 3), m = alpha - 2.
_KERNEL_TRANSFORM = {
    4: np.array([[1 / 4, 0, 0],
                 [-1 / 6, -1 / 6, -1 / 6],
                 [-1 / 6, 1 / 6, -1 / 6],
                 [1 / 24, 1 / 12, 1 / 6],
                 [1 / 24, -1 / 12, 1 / 6],
                 [0, 0, 1]]),
    2: np.array([[1, 0, 0],
                 [1 / 2, 1 / 2, 1 / 2],
                 [1 / 2, -1 / 2, 1 / 2],
                 [0, 0, 1]]),
}

_BLOCK_SIZES = _gemm.block_sizes()

# Most tiles per task.  Measured at 1 thread, F(4,3) 64->64 @56^2 (196 tiles): 16-196 tiles per
# task within 10 % of each other when the count is a multiple of the vector width (28 tiles: 2x
# slower, the GEMM's leftover-column path); 128 keeps the GEMM's n large and gives two tasks there.
_MAX_TILE_BLOCK = 128
# Bytes of V and M (transformed input, GEMM output) per thread: fewer tiles per task for many
# channels, so the per-call scratch stays small.  F(4,3) 512->512 @28^2 and 256->256 @56^2 ran
# at 250-330 GFLOP/s (1 thread) for every block of 16-98 tiles.
_SCRATCH_BUDGET = 4 * 2**20
# Fewest tiles of a block cut for the threads (blocking), and the unit it is cut in: the 16 tiles the
# blocking already rounds to.
_SPLIT_TILES = 16


def blocking(points, tiles, groups, in_channels, out_channels, itemsize, num_threads):
    """(tile_block, k_block): tiles and output channels per task (see winograd.pyx).

    points: of the transform ((m + 2)^2, or m + 2 for one-row tiles); tiles:
    of all images; channels: per group.  Tile blocks of at most
    _MAX_TILE_BLOCK tiles, or when V and M would exceed _SCRATCH_BUDGET of
    whole vectors (multiples of 16 tiles) that fit; cut into an even number
    of tasks when there are several and few, so two threads share them
    evenly (64 tiles of 256 -> 256 channels ran as 48 + 16 at 2 threads:
    0.74 ms per image against 0.56 for one image).  With fewer tasks than
    threads and a layer with fewer output than input channels, the tile
    blocks are cut into blocks of whole multiples of _SPLIT_TILES when that
    gives each (the last included) at least that many tiles; otherwise, or
    with still too few tasks, the output channels are split, in multiples of
    the GEMM's MR.  Neither changes a sum: each output's GEMM column and
    channel sums are the same in any block, so results do not depend on
    num_threads.  Splitting output channels makes every task transform all
    of its tiles' input; splitting tiles makes every task read all the
    weights.  Measured at 2 threads, F(4,3), ms, channel split -> tile split:
    DenseNet's 128->32 @28^2 0.28 -> 0.23 (49 tiles, 32 + 17), @14^2 batch 8
    0.73 -> 0.47, @7^2 batch 8 0.27 -> 0.17; 512->128 @7^2 batch 8 1.77 ->
    1.18; 256->128 @14^2 batch 4 1.31 -> 1.05.  With as many output as input
    channels it was mixed, so they keep the channel split: 256->256 @14^2
    batch 2 1.37 -> 1.07, 512->512 @7^2 batch 8 (38 MB of transformed
    weights, then read whole by each thread) 4.0-5.7 -> 4.0-8.0, 128->128
    @14^2 batch 8 and 64->64 @28^2 batch 2 level, 128->128 @28^2 (32 + 17
    tiles) 0.60 -> 0.63.
    """
    fitting = _SCRATCH_BUDGET // (points * (in_channels + out_channels) * itemsize)
    largest, multiple = _MAX_TILE_BLOCK, 1
    if fitting < min(tiles, _MAX_TILE_BLOCK):
        largest, multiple = max(16, fitting // 16 * 16), 16
    blocks = -(-tiles // largest)
    if blocks > 1 and (groups * blocks) % 2 and groups * blocks < 16:
        blocks += 1
    tile_block = -(-tiles // blocks)
    tile_block = -(-tile_block // multiple) * multiple
    tasks = groups * -(-tiles // tile_block)
    if tasks < num_threads and tile_block >= 2 * _SPLIT_TILES and out_channels < in_channels:
        parts = min(-(-num_threads // tasks), tile_block // _SPLIT_TILES)
        split = -(-tile_block // (parts * _SPLIT_TILES)) * _SPLIT_TILES
        if tiles % split == 0 or tiles % split >= _SPLIT_TILES:   # no nearly empty last block
            tile_block = split
            tasks = groups * -(-tiles // tile_block)
    k_block = out_channels
    mr = _BLOCK_SIZES["MR"]
    if tasks < num_threads and out_channels >= 2 * mr:
        splits = min(-(-num_threads // tasks), out_channels // mr)
        k_block = -(-out_channels // splits)
        k_block = -(-k_block // mr) * mr
    return tile_block, k_block


# Largest kernel side ``Winograd`` decomposes into 3x3 parts (a 9x9 kernel: 9 parts, 9 copies of the input).
MAX_KERNEL = 9


def as_rows_problem(problem):
    """A 1-D problem as the 2-D one over inputs (N, C, 1, L) with a 1 x k kernel; others unchanged."""
    if problem.dims != 1:
        return problem
    return replace(problem, kernel_size=(1,) + problem.kernel_size, stride=(1,) + problem.stride,
                   pad_before=(0,) + problem.pad_before, pad_after=(0,) + problem.pad_after,
                   dilation=(1,) + problem.dilation, output_padding=(0,) + problem.output_padding)


def one_row(problem):
    """Whether Winograd runs ``problem`` (after as_rows_problem) with one-row tiles: a 1 x 3 kernel."""
    return problem.kernel_size == (1, 3)


def _unsupported(problem, largest_kernel=3):
    if problem.transposed:
        return "it computes convolutions, not transposed ones"
    dims = problem.dims
    if dims not in (1, 2):
        return f"it computes 1-D and 2-D convolutions, got a {dims}-D one"
    kernel = "x".join(map(str, problem.kernel_size))
    problem = as_rows_problem(problem)
    if one_row(problem):
        return None if problem.stride == (1, 1) and problem.dilation == (1, 1) else (
            f"needs stride 1 and dilation 1, got {problem.stride[2 - dims:]} and {problem.dilation[2 - dims:]}")
    if dims == 1 or problem.kernel_size[0] == 1:
        larger = "" if largest_kernel == 3 else f" to {largest_kernel}x{largest_kernel}"
        return f"needs a 3 (1-D), 1x3 or 3x3{larger} kernel, got {kernel}"
    if largest_kernel == 3 and problem.kernel_size != (3, 3):
        return f"needs a 3x3 kernel, got {kernel}"
    if not all(3 <= k <= largest_kernel for k in problem.kernel_size):
        return f"needs a kernel of 3x3 to {largest_kernel}x{largest_kernel}, got {kernel}"
    if problem.stride != (1, 1):
        return f"needs stride 1, got {problem.stride}"
    if problem.dilation != (1, 1):
        return f"needs dilation 1, got {problem.dilation}"
    return None


def transform_weights(weight, m, groups):
    """U of F(m x m, 3 x 3) for weight (groups * K, C, 3, 3): shape (groups * (m+2)^2, K, C), weight's dtype;
    of F(1 x m, 1 x 3) for weight (groups * K, C, 1, 3): shape (groups * (m+2), K, C).

    U[g * P + e] = (G w G^T)[e], or (G w)[e] for one row, over the K output channels of group g (P points);
    computed in float64.
    """
    kernel_transform = _KERNEL_TRANSFORM[m]
    out_channels, in_channels = weight.shape[:2]
    if weight.shape[2] == 1:
        u = weight[:, :, 0].astype(np.float64) @ kernel_transform.T                 # (K, C, alpha)
    else:
        u = kernel_transform @ weight.astype(np.float64) @ kernel_transform.T       # (K, C, alpha, alpha)
    points = u[0, 0].size
    u = u.reshape(groups, out_channels // groups, in_channels, points).transpose(0, 3, 1, 2)
    with np.errstate(over="ignore"):  # an overflow to inf is detected by the caller
        return np.ascontiguousarray(u.reshape(groups * points, out_channels // groups, in_channels),
                                    dtype=weight.dtype)


class _WinogradTile:
    """F(m x m, 3 x 3), or F(1 x m, 1 x 3) for a 1 x 3 (or 1-D 3) kernel, for a fixed m (class attribute
    ``tile``)."""
    tile = None

    @staticmethod
    def unsupported(problem):
        return _unsupported(problem)

    def __init__(self, problem, weight):
        self.problem = problem
        self.direct = DirectConv(problem, weight)
        self.rows_problem = as_rows_problem(problem)
        weight = weight.reshape((weight.shape[0], weight.shape[1]) + self.rows_problem.kernel_size)
        # Non-finite weights (or transformed weights overflowing float32: F(2,3)'s G scales by up to 2.25)
        # would spread NaN/Inf over whole tiles: the direct algorithm computes every call then.
        self.finite_weights = bool(np.isfinite(weight).all())
        if self.finite_weights:
            u = transform_weights(weight, self.tile, problem.groups)
            self.finite_weights = bool(np.isfinite(u).all())
            self.packed = np.empty((u.shape[0], _gemm.packed_a_size(u.shape[1], u.shape[2])), weight.dtype)
            pack_weights(u, self.packed)

    def run(self, input, output, epilogue, residual, num_threads):
        self.bind(input.shape, output.shape, epilogue)(input, output, residual, num_threads)

    def bind(self, input_shape, output_shape, epilogue):
        """run for fixed shapes and epilogue (see _conv_plan)."""
        p, m, direct = self.rows_problem, self.tile, self.direct
        if not self.finite_weights:
            def direct_only(input, output, residual, num_threads):
                direct.run(input, output, epilogue, residual, num_threads)
            return direct_only
        rows = one_row(p)
        input_4d, output_4d = (tuple(input_shape[:-1]) + (1, input_shape[-1]),
                               tuple(output_shape[:-1]) + (1, output_shape[-1])) if self.problem.dims == 1 else (
                                   input_shape, output_shape)
        tiles = input_shape[0] * (output_4d[2] if rows else -(-output_4d[2] // m)) * -(-output_4d[3] // m)
        points = m + 2 if rows else (m + 2) ** 2
        packed, fixed = self.packed, (m, rows, p.groups, p.pad_before[0], p.pad_before[1])
        blocks = {}   # per thread count
        scale, shift, activation, (p0, p1, p2) = epilogue.scale, epilogue.shift, epilogue.activation, epilogue.params

        def call(input, output, residual, num_threads):
            block = blocks.get(num_threads)
            if block is None:
                block = blocks[num_threads] = blocking(points, tiles, p.groups, p.in_channels // p.groups,
                                                       p.out_channels // p.groups, p.dtype.itemsize, num_threads)
            if not winograd_conv2d(input.reshape(input_4d), packed, output.reshape(output_4d), *fixed, *block,
                                   scale, shift, residual, activation, p0, p1, p2, num_threads):
                direct.run(input, output, epilogue, residual, num_threads)
        return call


class WinogradF4(_WinogradTile):
    """Winograd F(4x4, 3x3) (F(1x4, 1x3) for a 1 x 3 kernel)."""
    name = "winograd_f4"
    tile = 4


class WinogradF2(_WinogradTile):
    """Winograd F(2x2, 3x3) (F(1x2, 1x3) for a 1 x 3 kernel)."""
    name = "winograd_f2"
    tile = 2


def choose_tile(batch, out_height, out_width, rows=False):
    """The output tile m (4 or 2) Winograd uses for ``batch`` images of out_height x out_width outputs
    (``rows``: one-row tiles, 1 x m).  It counts the tiles of the whole batch, so an image can get the
    other tile (other rounding, within the 1e-4 bound) at another batch size; 'winograd_f4' and
    'winograd_f2' fix the tile, and with it the bits of each image at any batch size.

    F(4,3) needs 2.25 multiplies per output where F(2,3) needs 4, but on few
    tiles its GEMMs get few columns (n = tiles per task) and it reads 2.25x
    more transformed weights per call.  Measured (bench/winograd.py --rule,
    1 thread, F(2,3) time / F(4,3) time, channels 32-512):
      N=1: 7x7 (4 F(4,3) tiles) 0.60-0.86; 10x10 (9) 0.53-1.03; 14x14 (16) 1.09-1.28;
           28x28 1.21-1.59; 56x56 1.30-1.70
      N=2: 7x7 (8) 0.33-0.85; 10x10 (18) 0.72-1.24 (4 of 5 below 1); 14x14 (32) 0.98-3.3
      N=8: 7x7 (32) 1.24-2.93; 10x10 (72) 0.97-2.17; 14x14 and up 0.97-1.71
    Hence F(4,3) from 32 tiles in all, or from 16 when its multiplies are at
    most 0.75 of F(2,3)'s (no partial tiles to speak of: 14x14 but not 10x10).
    """
    if rows:
        return 4 if batch * out_height * -(-out_width // 4) >= ONE_ROW_F4_FROM else 2
    tiles4 = batch * -(-out_height // 4) * -(-out_width // 4)
    tiles2 = batch * -(-out_height // 2) * -(-out_width // 2)
    if tiles4 >= 32 or tiles4 >= 16 and 36 * tiles4 <= 0.75 * 16 * tiles2:
        return 4
    return 2


# One-row tiles: F(1x4, 1x3) from this many tiles in all, F(1x2, 1x3) below (bench/ALGORITHMS.md).
ONE_ROW_F4_FROM = 16


def stack_kernel_parts(weight):
    """A kh x kw kernel (3 <= kh, kw) as the sum of P = ceil(kh / 3) * ceil(kw / 3) 3x3 ones.

    Zero-padded to 3 ceil(kh / 3) x 3 ceil(kw / 3), part (i, j) is the 3x3
    block at rows 3i.., columns 3j..: the kh x kw convolution of x is the sum
    over the parts of their 3x3 convolutions of x shifted by (3i, 3j).  So it
    is one 3x3 convolution with P times the input channels, part-major in
    each group (stack_input_parts): (groups * K, groups' P * C, 3, 3).
    """
    out_channels, in_per_group, kh, kw = weight.shape
    parts_h, parts_w = -(-kh // 3), -(-kw // 3)
    padded = np.zeros((out_channels, in_per_group, 3 * parts_h, 3 * parts_w), weight.dtype)
    padded[:, :, :kh, :kw] = weight
    parts = padded.reshape(out_channels, in_per_group, parts_h, 3, parts_w, 3).transpose(0, 2, 4, 1, 3, 5)
    return np.ascontiguousarray(parts).reshape(out_channels, parts_h * parts_w * in_per_group, 3, 3)


def stack_input_parts(input, kernel_size, groups, pad_before, out_shape):
    """The input of stack_kernel_parts' 3x3 convolution: (N, groups * P * C, OH + 2, OW + 2), no padding.

    Channel (g, (i, j), c) holds input channel g * C + c zero-padded by
    pad_before and shifted by (3i, 3j).
    """
    n, channels, height, width = input.shape
    parts_h, parts_w = -(-kernel_size[0] // 3), -(-kernel_size[1] // 3)
    out_h, out_w = out_shape
    # Rows (columns) 0 .. OH + 3 parts_h - 2 of the padded input: zeros past its end too.
    padded = np.zeros((n, channels, out_h + 3 * parts_h - 1, out_w + 3 * parts_w - 1), input.dtype)
    rows, cols = min(height, padded.shape[2] - pad_before[0]), min(width, padded.shape[3] - pad_before[1])
    padded[:, :, pad_before[0]:pad_before[0] + rows, pad_before[1]:pad_before[1] + cols] = input[:, :, :rows, :cols]
    stacked = np.empty((n, groups, parts_h, parts_w, channels // groups, out_h + 2, out_w + 2), input.dtype)
    grouped = padded.reshape(n, groups, channels // groups, padded.shape[2], padded.shape[3])
    for i in range(parts_h):
        for j in range(parts_w):
            stacked[:, :, i, j] = grouped[:, :, :, 3 * i:3 * i + out_h + 2, 3 * j:3 * j + out_w + 2]
    return stacked.reshape(n, -1, out_h + 2, out_w + 2)


class Winograd:
    """Winograd F(4x4, 3x3) or F(2x2, 3x3), chosen per input shape by ``choose_tile``; for 1 x 3 and 1-D
    kernels of 3 F(1x4, 1x3) or F(1x2, 1x3) (one-row tiles: 1.5 multiplies per output where the direct sum
    needs 3).

    Dilated convolutions run as dilation[0] x dilation[1] undilated ones on the
    polyphase parts of the padded input (``_run_dilated``).  Kernels larger
    than 3x3 (up to MAX_KERNEL) run as one 3x3 convolution over their 3x3
    parts (stack_kernel_parts): a 5x5 kernel needs 4 x 2.25 = 9 multiplies
    per output with F(4,3) where the direct sum needs 25.  Each tile size
    transforms and packs the weights on its first use.
    """
    name = "winograd"

    @staticmethod
    def unsupported(problem):
        return _unsupported(replace(problem, dilation=(1,) * problem.dims), MAX_KERNEL)

    def __init__(self, problem, weight):
        # A 1-D problem runs as the 2-D one over (N, C, 1, L) (rows_problem); the tile algorithms take it as is.
        self.problem = problem
        self.rows_problem = as_rows_problem(problem)
        self.rows = one_row(self.rows_problem)
        self.weight = weight
        self.decomposed = self.rows_problem.kernel_size != (3, 3) and not self.rows
        self.dilated = self.rows_problem.dilation != (1, 1)
        # What the tile algorithms compute: each polyphase part is a conv without padding, and the
        # stacked parts of a larger kernel one 3x3 conv without padding.
        self.tile_problem = problem
        if self.dilated or self.decomposed:
            self.tile_problem = replace(self.rows_problem, pad_before=(0, 0), pad_after=(0, 0), dilation=(1, 1))
            self.weight = weight.reshape(weight.shape[:2] + self.rows_problem.kernel_size)
        if self.decomposed:
            # A non-finite input would meet the parts' zero padding taps (0 * inf) where the kernel has
            # no taps: such calls run the direct algorithm on the kernel itself.
            self.direct = DirectConv(problem, weight)
            self.weight = stack_kernel_parts(weight)
            self.tile_problem = replace(self.tile_problem, kernel_size=(3, 3), in_channels=self.weight.shape[1]
                                        * problem.groups)
        self.implementations = {}

    def run(self, input, output, epilogue, residual, num_threads):
        if self.decomposed and not np.isfinite(input.sum()):   # NaN or Inf in it (or a huge sum)
            self.direct.run(input, output, epilogue, residual, num_threads)
        elif self.dilated:
            if self.problem.dims == 1:
                input, output = input[:, :, None], output[:, :, None]
            self._run_dilated(input, output, epilogue, residual, num_threads)
        else:
            self._run_undilated(input, output, epilogue, residual, num_threads, self.problem.pad_before)

    def bind(self, input_shape, output_shape, epilogue):
        """run for fixed shapes and epilogue (see _conv_plan): the tile algorithm's own bind for a plain
        3x3 (or 1x3, or 1-D 3) convolution; dilated and larger kernels copy their input on every call anyway."""
        if self.decomposed or self.dilated:
            if not self.dilated:
                self._tile_implementation(output_shape)   # transforms and packs the weights now

            def call(input, output, residual, num_threads):
                self.run(input, output, epilogue, residual, num_threads)
            return call
        return self._tile_implementation(output_shape).bind(input_shape, output_shape, epilogue)

    def _tile_implementation(self, output_shape):
        spatial = (1,) * (4 - len(output_shape)) + tuple(output_shape[2:])
        m = choose_tile(output_shape[0], *spatial, rows=self.rows)
        implementation = self.implementations.get(m)
        if implementation is None:
            implementation = self.implementations[m] = (WinogradF4 if m == 4 else WinogradF2)(self.tile_problem,
                                                                                               self.weight)
        return implementation

    def _run_undilated(self, input, output, epilogue, residual, num_threads, pad_before):
        if self.decomposed:
            input = stack_input_parts(input, self.problem.kernel_size, self.problem.groups, pad_before,
                                      output.shape[2:])
        self._run_tiles(input, output, epilogue, residual, num_threads)

    def _run_tiles(self, input, output, epilogue, residual, num_threads):
        self._tile_implementation(output.shape).run(input, output, epilogue, residual, num_threads)

    def _run_dilated(self, input, output, epilogue, residual, num_threads):
        """Output rows (cols) a, a + d, a + 2d, ... of a dilation-d conv are the plain conv of the padded
        input's rows (cols) a, a + d, ...: the d_h x d_w phases run as one batch of undilated convs."""
        p = self.rows_problem
        dh, dw = p.dilation
        n, c = input.shape[:2]
        phase_h = -(-(input.shape[2] + p.pad_before[0] + p.pad_after[0]) // dh)  # rows per phase, rounded up
        phase_w = -(-(input.shape[3] + p.pad_before[1] + p.pad_after[1]) // dw)
        phases = np.empty((dh * dw * n, c, phase_h, phase_w), input.dtype)
        layout.polyphase_split(input, phases, p.pad_before[0], p.pad_before[1], dh, dw, num_threads)
        out_h, out_w = phase_h - p.kernel_size[0] + 1, phase_w - p.kernel_size[1] + 1   # per phase
        phase_out = np.empty((dh * dw * n, p.out_channels, out_h, out_w), output.dtype)
        # Scale, shift and activation act per channel, so they run fused on the phases; a residual
        # is laid out like the output, so it (and then the activation) runs after the merge.
        fused = epilogue if not residual.size else Epilogue(epilogue.scale, epilogue.shift)
        self._run_undilated(phases, phase_out, fused, residual[:0], num_threads, (0, 0))
        layout.polyphase_merge(phase_out, output, dh, dw, num_threads)
        if residual.size:
            _apply_epilogue(output, Epilogue(epilogue.scale[:0], epilogue.shift[:0], epilogue.activation,
                                             epilogue.params), residual, num_threads)
