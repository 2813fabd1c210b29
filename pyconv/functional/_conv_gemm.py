"""GEMM convolution (algorithm "gemm"): packed weights times input columns, never a column matrix.

Convolutions run the implicit GEMM of ``pyconv._kernels.conv_gemm``: a
zero-padded copy of the input ("xp") in which every kernel tap reads
consecutive outputs from consecutive values, read by a register-tiled
micro-kernel through per-tap offsets.  Pointwise convolutions (1x1x1, no
padding) at stride 1 need no copy: the micro-kernel reads the input in place,
or, for small images, the packed GEMM core (PointwiseGemm) multiplies it in
place; strided ones on small images gather their positions for that GEMM.  The weights
are packed once here; the copy's layout is computed once per input size
(``layout``) and each call picks the work split so there are enough tasks for
the threads.  bench/conv_gemm.py measures it.
"""
from math import prod

import numpy as np

from .._kernels.conv_gemm import (conv_implicit, conv_pointwise, pack_implicit, pack_pointwise,
                                  pointwise_packed_size, tile_shapes)
from .._kernels.gemm import block_sizes
from ._conv_plan import shape_as_3d
from .shapes import lift_to_3d

_GEMM_BLOCKING = block_sizes()
_TILES = tile_shapes()


class GemmConv:
    """GEMM for every (non-transposed) convolution: implicit GEMM, on the input in place for pointwise ones."""
    name = "gemm"

    # Implicit: a task's tiles cover about this many bytes of virtual column matrix (K x outputs).
    BLOCK_BYTES = 384 * 1024
    # Implicit: the input copy's layout: one plane per stride phase ("phase": rows
    # wq = ceil(extent / stride) wide, wider than the output rows, the columns between output rows
    # computed and thrown away or skipped), one plane per kernel column ("column": rows exactly
    # one output row wide, nothing thrown away, kernel width times the copying), or "auto": the
    # cheaper by a cost model, micro-kernel cycles (vectors x taps x tile rows) plus FILL_CYCLES
    # per copied value (measured ~1 on Zen 4: the copy is memory-bound) ...
    LAYOUT = "auto"
    FILL_CYCLES = 1.0
    # ... plus SCRATCH_CYCLES per value of the tiles the "phase" layout computes into scratch and copies
    # out (tiles across a row end or ending in a partial vector; measured ~0.5 on Zen 4: SqueezeNet's
    # 3->64 3x3 s2 @224, 1 thread, phase 0.56 ms against column 0.50: about as many vectors, two
    # thirds of the copying, a third of its tiles through scratch).
    SCRATCH_CYCLES = 0.5
    # Implicit, "phase" layout: tiles end at output row ends ("rows"), run on over the
    # thrown-away columns ("linear"), or "auto": rows where that computes fewer vectors and output
    # rows are at least one full tile wide (narrower tiles measured slower per vector).
    TILING = "auto"
    # Implicit: tasks per thread wanted before the work is cut finer than one tile block.
    TASKS_PER_THREAD = 4
    # Pointwise: the implicit micro-kernel (on the input in place at stride 1) from this many output
    # positions per image on, the packed GEMM core below (bench/conv_gemm.py: the micro-kernel
    # measured 3-23 % faster at 28^2 and 56^2, the GEMM 6-31 % faster at 14^2 and 7^2, where
    # a few columns cost the micro-kernel a whole vector).
    POINTWISE_IMPLICIT_FROM = 512

    @staticmethod
    def unsupported(problem):
        return "it computes convolutions, not transposed ones" if problem.transposed else None

    def __init__(self, problem, weight):
        self.problem = p = problem
        self.patch_rows = prod(weight.shape[1:])
        weight = weight.reshape(p.out_channels, self.patch_rows)
        self.in_place = p.pointwise and all(s == 1 for s in p.stride)
        out_per_group = p.out_channels // p.groups
        # The tile height that pads the fewest rows (ties: the wide tile).
        self.mr = min((_TILES["wide"][0], _TILES["narrow"][0]), key=lambda mr: -(-out_per_group // mr) * mr)
        self.nr = _TILES["wide" if self.mr == _TILES["wide"][0] else "narrow"][1 if p.dtype == np.float32 else 2]
        self.panels = -(-out_per_group // self.mr)
        self.packed = np.empty(p.groups * self.panels * self.mr * self.patch_rows, p.dtype)
        pack_implicit(weight, p.groups, self.mr, self.packed)
        # Pointwise: small images take the packed GEMM (bind; with a stride, on a strided gather), its
        # weights packed on first use (pointwise_gemm): large images never need them.
        self._pointwise_weight = weight if p.pointwise else None
        self._pointwise_gemm = None
        self._layouts = {}

    @property
    def pointwise_gemm(self):
        """The PointwiseGemm of a pointwise convolution's weights (made on first use)."""
        if self._pointwise_gemm is None:
            self._pointwise_gemm = PointwiseGemm(self._pointwise_weight, self.problem.groups)
        return self._pointwise_gemm

    def layout(self, out_spatial):
        """Implicit: the copy xp and tap offsets for outputs of spatial size ``out_spatial`` (cached).

        A dict: offsets (K,), row_phases, column_shifts, ext_d, hq, row_pitch,
        channel_stride, row_tiles (see conv_implicit), outputs (q per depth
        slice) and view: the (D, H, W) the kernel sees the output as.
        """
        layout = self._layouts.get(out_spatial)
        if layout is not None:
            return layout
        p = self.problem
        if len(self._layouts) >= 16:
            self._layouts.clear()
        if self.in_place:
            # The input itself, seen as (N, C, 1, 1, P): channel c of a tile at c * P.
            positions = prod(out_spatial)
            zero = np.zeros(1, np.intp)
            layout = self._layouts[out_spatial] = dict(
                offsets=np.arange(p.in_channels // p.groups, dtype=np.intp) * positions, row_phases=zero,
                column_shifts=zero, ext_d=1, hq=1, row_pitch=positions, channel_stride=positions, row_tiles=False,
                outputs=positions, view=(1, 1, positions))
            return layout
        (kd, kh, kw), (sd, sh, sw) = lift_to_3d(p.kernel_size, 1), lift_to_3d(p.stride, 1)
        (dd, dh, dw), (od, oh, ow) = lift_to_3d(p.dilation, 1), lift_to_3d(out_spatial, 1)
        ext_d = (od - 1) * sd + (kd - 1) * dd + 1
        hq = -(-((oh - 1) * sh + (kh - 1) * dh + 1) // sh)
        wq = -(-((ow - 1) * sw + (kw - 1) * dw + 1) // sw)
        taps_h, taps_w = np.arange(kh) * dh, np.arange(kw) * dw
        row_phases = np.unique(taps_h % sh)
        # Vectors the micro-kernel computes per depth slice and channel panel: tiles running on
        # over the wq - ow thrown-away columns of each row, or ending at each row's end (a last
        # partial vector per row), against one copy per kernel column with rows exactly ow wide.
        vl = _TILES["vector_bytes"] // p.dtype.itemsize
        linear = -(-((oh - 1) * wq + ow) // vl)
        rows = oh * -(-ow // vl)
        if self.TILING == "auto":  # row tiles only where every row still fills wide tiles
            row_tiles = rows < linear and ow >= self.nr
        else:
            row_tiles = self.TILING == "rows"
        layout = self.LAYOUT
        if layout == "auto":
            per_vector = self.patch_rows * self.panels * self.mr * p.groups * od  # FMAs of a vector, all slices
            copied_rows = p.in_channels * ext_d * len(row_phases) * hq          # per copy
            phase_copies = len(np.unique(taps_w % sw))
            # tiles through scratch (then copied out): one per row end inside a tile (at most every tile),
            # or per partial vector ending a row
            if row_tiles:
                scratch_tiles = oh * od if ow % vl else 0
            else:
                scratch_tiles = min(oh, -(-((oh - 1) * wq + ow) // self.nr)) * od if wq > ow else 0
            phase = ((rows if row_tiles else linear) * per_vector
                     + self.FILL_CYCLES * copied_rows * phase_copies * wq
                     + self.SCRATCH_CYCLES * scratch_tiles * self.panels * p.groups * self.mr * self.nr)
            column = -(-oh * ow // vl) * per_vector + self.FILL_CYCLES * copied_rows * kw * ow
            layout = "phase" if kw == 1 or phase <= column else "column"
        if layout == "phase":
            # One copy per column phase; tap kw starts kw * dw // sw columns in.
            column_shifts = np.unique(taps_w % sw)
            copy_of_tap, column_of_tap, row_pitch = np.searchsorted(column_shifts, taps_w % sw), taps_w // sw, wq
        else:
            column_shifts = taps_w
            copy_of_tap, column_of_tap, row_pitch, row_tiles = np.arange(kw), np.zeros(kw, np.intp), ow, False
        plane = hq * row_pitch
        slice_size = len(row_phases) * len(column_shifts) * plane
        channel_stride = -(-ext_d * slice_size // 16) * 16
        if channel_stride * p.dtype.itemsize % 4096 == 0:
            channel_stride += 16  # channels of one tile would share L1 cache sets
        c, d, h, w = np.meshgrid(np.arange(p.in_channels // p.groups), np.arange(kd), np.arange(kh), np.arange(kw),
                                 indexing="ij")
        offsets = (c * channel_stride + d * dd * slice_size
                   + (np.searchsorted(row_phases, h * dh % sh) * len(column_shifts) + copy_of_tap[w]) * plane
                   + h * dh // sh * row_pitch + column_of_tap[w])
        layout = dict(offsets=offsets.astype(np.intp).ravel(), row_phases=row_phases.astype(np.intp),
                      column_shifts=column_shifts.astype(np.intp), ext_d=ext_d, hq=hq, row_pitch=row_pitch,
                      channel_stride=channel_stride, row_tiles=bool(row_tiles), outputs=(oh - 1) * row_pitch + ow,
                      view=(od, oh, ow))
        self._layouts[out_spatial] = layout
        return layout

    def split(self, batch, out_spatial, num_threads):
        """Implicit: (tiles per task, channel chunks per tile block) for this output size and thread count."""
        p = self.problem
        layout = self.layout(out_spatial)
        tiles = -(-layout["outputs"] // self.nr)
        slices = batch * p.groups * layout["view"][0]
        per_block = max(1, min(tiles, self.BLOCK_BYTES // (self.patch_rows * p.dtype.itemsize * self.nr)))
        wanted = self.TASKS_PER_THREAD * num_threads if num_threads > 1 else 1
        if slices * -(-tiles // per_block) < wanted:
            per_block = max(1, tiles * slices // wanted)
        tasks = slices * -(-tiles // per_block)
        return per_block, 1 if tasks >= wanted else min(self.panels, -(-wanted // tasks))

    def run(self, input, output, epilogue, residual, num_threads):
        self.bind(input.shape, output.shape, epilogue)(input, output, residual, num_threads)

    def bind(self, input_shape, output_shape, epilogue):
        """run for fixed shapes and epilogue: everything but the arrays worked out once (see _conv_plan)."""
        p = self.problem
        batch, positions = input_shape[0], prod(output_shape[2:])
        scale, shift, activation, (p0, p1, p2) = epilogue.scale, epilogue.shift, epilogue.activation, epilogue.params
        splits = {}   # implicit, per thread count: (tiles per block, chunks)
        if p.pointwise and positions < self.POINTWISE_IMPLICIT_FROM:
            in_view, out_view = (batch, p.in_channels, positions), (batch, p.out_channels, positions)
            gemm = self.pointwise_gemm
            # a strided 1x1: the input positions it reads, gathered (a numpy copy: a few hundred
            # kilobytes at these sizes, against a GEMM over all the channels)
            gather = None if self.in_place else (slice(None), slice(None)) + tuple(slice(None, None, s)
                                                                                 for s in p.stride)

            def pointwise(input, output, residual, num_threads):
                if gather is not None:
                    input = np.ascontiguousarray(input[gather])
                gemm.run(input.reshape(in_view), output.reshape(out_view),
                         (scale, shift, residual, activation, p0, p1, p2), num_threads)
            return pointwise
        out_spatial = tuple(output_shape[2:])
        layout = self.layout(out_spatial)
        if self.in_place:
            in_view, out_view = tuple(input_shape[:2]) + layout["view"], tuple(output_shape[:2]) + layout["view"]
        else:
            in_view, out_view = shape_as_3d(input_shape), shape_as_3d(output_shape)
        fixed = (lift_to_3d(p.stride, 1), lift_to_3d(p.pad_before, 0), layout["offsets"], layout["row_phases"],
                 layout["column_shifts"], layout["ext_d"], layout["hq"], layout["row_pitch"],
                 layout["channel_stride"], layout["row_tiles"], self.in_place, p.groups, self.mr)
        packed = self.packed

        def implicit(input, output, residual, num_threads):
            split = splits.get(num_threads)
            if split is None:
                split = splits[num_threads] = self.split(batch, out_spatial, num_threads)
            conv_implicit(input.reshape(in_view), packed, output.reshape(out_view), *fixed, *split,
                          scale, shift, residual, activation, p0, p1, p2, num_threads)
        return implicit


class PointwiseGemm:
    """A 1x1 convolution as the packed GEMM core on the input in place: output (N, M, P) = weight (M, C)
    @ input (N, C, P) per image and group, with the fused epilogue.  Each group's weights are packed
    whole once; each call cuts the work into tasks of output channels x positions (``split``)."""

    # Bytes of the input block (in_channels x columns) one GEMM call packs; it stays in L2.
    COLUMN_BYTES = 384 * 1024
    # Tasks per thread that need no finer cut.
    TASKS_PER_THREAD = 4
    # The cost of one more task (a GEMM call and its epilogue set-up), cycles, and of 0, 1, 2, ...
    # columns past the last whole vector, in vectors (1 thread, 1024 x 512 @ 512 x c: 1 column
    # 0.044 ms, 2-4 columns 0.11 ms, from 5 columns on a padded vector 0.15 ms; AVX-512 builds now run
    # 5-8 columns in their own kernels, which cost less than that vector: still counted as one).
    TASK_CYCLES = 3000
    LEFTOVER_VECTORS = (0, 0.3, 0.8, 0.8, 0.8, 1)

    def __init__(self, weight, groups):
        """weight: (M, C // groups), C-contiguous, float32 or float64."""
        self.groups, self.k, self.itemsize = groups, weight.shape[1], weight.dtype.itemsize
        self.out_per_group = weight.shape[0] // groups
        self.packed = np.empty(pointwise_packed_size(groups, self.out_per_group, self.k), weight.dtype)
        pack_pointwise(weight, groups, self.packed)
        self._splits = {}

    def run(self, input, output, epilogue_args, num_threads):
        """output (N, M, P) = epilogue(weight @ input (N, C, P)); epilogue_args as Epilogue.kernel_args."""
        if output.size == 0:
            return
        conv_pointwise(input, self.packed, output, self.groups, *self.split(input.shape[0], input.shape[2],
                                                                           num_threads),
                       *epilogue_args, num_threads)

    def split(self, batch, positions, num_threads):
        """(output channels, output positions) per task for ``batch`` images of ``positions``
        (cached: the search costs more than a small layer).

        A task of r row panels (MR output channels each) by v vectors of
        positions costs about (r + 1) * v * K + TASK_CYCLES cycles: its
        micro-kernel tiles, the packing of its input columns and the call.  A
        last part-vector counts as LEFTOVER_VECTORS[columns] of a vector (the
        GEMM's column kernels, or a whole vector from PAD_COLUMNS_FROM columns).
        Of the splits whose column blocks hold at most COLUMN_BYTES of input,
        the one whose tasks, handed in order to whichever thread is free
        first, finish soonest (ties: fewer tasks).  At batch 1 on two threads
        this cuts 960 -> 160 channels at 7x7 into two 80-channel tasks, where
        128-row blocks cut it 128 + 32, and 576 -> 96 at 14x14 into 112 + 84
        positions, where whole 48-column tiles cut it 144 + 52.
        """
        key = batch, positions, num_threads
        split = self._splits.get(key)
        if split is None:
            if len(self._splits) >= 64:
                self._splits.clear()
            split = self._splits[key] = self._search_split(batch, positions, num_threads)
        return split

    def _search_split(self, batch, positions, num_threads):
        mr = _GEMM_BLOCKING["MR"]
        lanes = _GEMM_BLOCKING["vector_bytes"] // self.itemsize
        out_per_group = self.out_per_group
        panels, vectors = -(-out_per_group // mr), -(-positions // lanes)

        def vector_cost(first_vector, count):   # vectors first_vector .. + count - 1 of the positions
            columns = min(positions, (first_vector + count) * lanes) - first_vector * lanes
            return columns // lanes + self.LEFTOVER_VECTORS[min(columns % lanes, len(self.LEFTOVER_VECTORS) - 1)]
        widest = max(1, self.COLUMN_BYTES // (self.k * self.itemsize * lanes))  # vectors
        fewest = -(-vectors // widest)
        images = batch * self.groups
        if images >= self.TASKS_PER_THREAD * num_threads or num_threads == 1:   # enough tasks already
            return out_per_group, min(positions, -(-vectors // fewest) * lanes)
        best = None
        row_sizes = sorted({-(-panels // blocks) for blocks in range(1, min(panels, 8) + 1)})
        column_sizes = sorted({-(-vectors // blocks) for blocks in range(fewest, min(vectors, fewest + 8) + 1)})
        for task_panels in row_sizes:
            for task_vectors in column_sizes:
                costs = [(min(task_panels, panels - r) + 1) * vector_cost(c, task_vectors) * self.k
                         + self.TASK_CYCLES for c in range(0, vectors, task_vectors)
                         for r in range(0, panels, task_panels)] * images
                free = [0] * num_threads
                for cost in costs:
                    free[free.index(min(free))] += cost
                key = (max(free), len(costs))
                if best is None or key < best[0]:
                    best = key, task_panels, task_vectors
        _, task_panels, task_vectors = best
        return min(out_per_group, task_panels * mr), min(positions, task_vectors * lanes)
