"""Transposed convolution by GEMM + col2im, blocked so that every output block
is finished (col2im, epilogue) while it is in cache.

One kernel serves 1d, 2d and 3d: the Python layer views every array as 5-D
(N, C, D, H, W), with D = H = 1 for 1d and D = 1 for 2d.

Input position ``i`` and kernel tap ``k`` contribute to output position
``o = i * stride - padding + k * dilation`` in each spatial dimension.  For
one kernel row (kd, kh) and a block of output channels, a GEMM gives every
(output channel, kw) product at once, with the input rows read in place as B
(no im2col, no zero-stuffed input):

    col[(kd, kh)][(co, kw), (ih, iw)] = sum_ci  W[ci, co, kd, kh, kw] * x[ci, id, ih, iw]

A = the weights of one (group, kd, kh, output channel block), packed once
with gemm_pack_a (pack_weights).

Work unit ("task"): (n, group, output channel block, od, band of output rows).
A task runs the GEMM of each (kd, kh) over exactly the input rows that land
in its band (no input row is multiplied twice for the same kernel row), then
builds each output row once, by gathering ("col2im"): output column
``ow = m * sw + phase`` receives the taps kw with (kw * dw - pw) = phase
(mod sw), each a contiguous run of a ``col`` row, so the sums are formed
per phase in a small contiguous buffer and interleaved into the output row
in one pass (sw = 1: summed in the output row itself).  The fused epilogue
then finishes the row while it is in L1.  Long rows are cut into column tiles
(a GEMM per tile over the input columns that reach it, the few shared edge
columns computed twice).

Tasks never share an output element, each element is written once, summed
in the fixed order (kd, kh, kw), each product summed over ci in the GEMM's
fixed order: the result does not depend on the thread count.  Output
elements that no tap reaches get 0 before the epilogue (bias only).

Blocking (output channels per block, output rows per band, output columns
per tile) is chosen by the Python layer from the problem and the input
shape, never from the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_is_identity, epilogue_row
from pyconv._kernels.gemm cimport gemm_pack_a, gemm_packed_a_size, gemm_prepacked, gemm_workspace_size

cdef enum:
    ALIGN = 64    # bytes: alignment of each scratch area


ctypedef struct Geometry:
    Py_ssize_t in_channels, in_d, in_h, in_w
    Py_ssize_t out_channels, out_d, out_h, out_w
    Py_ssize_t kernel_d, kernel_h, kernel_w
    Py_ssize_t stride_d, stride_h, stride_w
    Py_ssize_t pad_d, pad_h, pad_w
    Py_ssize_t dil_d, dil_h, dil_w
    Py_ssize_t groups, in_per_group, out_per_group
    Py_ssize_t co_block, co_blocks     # output channels per weight block, blocks per group
    Py_ssize_t block_size, slab_size   # packed elements: one full block; all blocks of one (g, kd, kh)
    Py_ssize_t band, bands             # output rows per task, tasks per (n, group, block, od)
    Py_ssize_t tile                    # output columns per column tile (out_w: whole rows)
    Py_ssize_t max_columns             # largest GEMM n
    Py_ssize_t slot_size               # elements of the products of one (kd, kh)
    Py_ssize_t phase_size              # elements of one phase buffer


cdef inline Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """floor(a / b) for b > 0 (C division truncates towards zero)."""
    if a >= 0:
        return a / b
    return -((-a + b - 1) / b)


cdef inline Py_ssize_t ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0."""
    return -floor_div(-a, b)


cdef inline Py_ssize_t round_up(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) / b * b


# ---- weights ---------------------------------------------------------------
def packed_weights_size(Py_ssize_t groups, Py_ssize_t in_per_group, Py_ssize_t out_per_group,
                        Py_ssize_t kernel_d, Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t co_block):
    """(total elements, elements per full block, elements per (group, kd, kh) slab) of the packed weights."""
    cdef Py_ssize_t blocks = ceil_div(out_per_group, co_block)
    cdef Py_ssize_t last = out_per_group - (blocks - 1) * co_block
    cdef Py_ssize_t block = gemm_packed_a_size(co_block * kernel_w, in_per_group)
    cdef Py_ssize_t slab = (blocks - 1) * block + gemm_packed_a_size(last * kernel_w, in_per_group)
    return groups * kernel_d * kernel_h * slab, block, slab


def pack_weights(const floating[:, :, :, :, ::1] weight, Py_ssize_t groups, Py_ssize_t co_block,
                 floating[::1] packed):
    """Pack weight (C_in, C_out / groups, kD, kH, kW) into ``packed`` (allocated by the caller,
    packed_weights_size(...)[0] elements): for each (group, kd, kh, output channel block), in
    that order, gemm_pack_a of the matrix A[(co, kw), ci] = weight[group * C_in / groups + ci,
    co, kd, kh, kw] over the block's output channels co.  No checks."""
    cdef Py_ssize_t in_per_group = weight.shape[0] // groups, out_per_group = weight.shape[1]
    cdef Py_ssize_t kd_size = weight.shape[2], kh_size = weight.shape[3], kw_size = weight.shape[4]
    cdef Py_ssize_t blocks = ceil_div(out_per_group, co_block)
    cdef Py_ssize_t block_size = packed_weights_size(groups, in_per_group, out_per_group, kd_size, kh_size,
                                                     kw_size, co_block)[1]
    cdef Py_ssize_t slab_size = packed_weights_size(groups, in_per_group, out_per_group, kd_size, kh_size,
                                                    kw_size, co_block)[2]
    cdef floating* a = <floating*>malloc(co_block * kw_size * in_per_group * sizeof(floating))
    if a == NULL:
        raise MemoryError()
    cdef Py_ssize_t grp, kd, kh, kw, block, co, co0, cb, ci
    with nogil:
        for grp in range(groups):
            for kd in range(kd_size):
                for kh in range(kh_size):
                    for block in range(blocks):
                        co0 = block * co_block
                        cb = min(co_block, out_per_group - co0)
                        for co in range(cb):
                            for kw in range(kw_size):
                                for ci in range(in_per_group):
                                    a[(co * kw_size + kw) * in_per_group + ci] = \
                                        weight[grp * in_per_group + ci, co0 + co, kd, kh, kw]
                        gemm_pack_a(cb * kw_size, in_per_group, a, in_per_group,
                                    &packed[((grp * kd_size + kd) * kh_size + kh) * slab_size + block * block_size])
    free(a)


# ---- forward ---------------------------------------------------------------
ctypedef struct Index:
    # One thread's index arrays for the current task and column tile.
    Py_ssize_t* slot_first      # per (kd, kh) slot: first input row of its GEMM
    Py_ssize_t* slot_rows       #   and its number of input rows (0: no GEMM)
    Py_ssize_t* phase_length    # per output column phase: outputs in the tile
    Py_ssize_t* phase_start     # per phase: its first entry (entries sorted by phase), sw + 1 values
    Py_ssize_t* entry_kw        # per entry (a kw reaching the tile): kw,
    Py_ssize_t* entry_src       #   offset in the products row of its first used column,
    Py_ssize_t* entry_q0        #   first and end phase output it reaches
    Py_ssize_t* entry_q1
    Py_ssize_t* tap_count       # per output row of the band: (kd, kh) slots reaching it,
    Py_ssize_t* tap_offset      #   per such slot: offset of its products row in col
    Py_ssize_t* tap_ldc         #   and the leading dimension of its products


cdef const floating* phase_sums(const floating* col, const Index* index, Py_ssize_t c, Py_ssize_t row,
                                Py_ssize_t phase, floating* sums, bint may_alias,
                                const Geometry* g) noexcept nogil:
    """The sums of output channel c (of the block), output row ``row`` (of the band), column phase
    ``phase``: a pointer to index.phase_length[phase] values, written to ``sums`` or, if
    ``may_alias`` and a single products row covers the phase, pointing into col."""
    cdef Py_ssize_t slots = g.kernel_d * g.kernel_h
    cdef Py_ssize_t length = index.phase_length[phase]
    cdef Py_ssize_t e0 = index.phase_start[phase], e1 = index.phase_start[phase + 1]
    cdef Py_ssize_t taps = index.tap_count[row]
    cdef const Py_ssize_t* tap_offset = index.tap_offset + row * slots
    cdef const Py_ssize_t* tap_ldc = index.tap_ldc + row * slots
    cdef Py_ssize_t i, e, q, q0, count, ldc
    cdef const floating* row_base
    cdef const floating* src
    cdef bint started = False
    if (may_alias and taps == 1 and e1 - e0 == 1 and index.entry_q0[e0] == 0
            and index.entry_q1[e0] == length):
        return col + tap_offset[0] + (c * g.kernel_w + index.entry_kw[e0]) * tap_ldc[0] + index.entry_src[e0]
    for i in range(taps):
        ldc = tap_ldc[i]
        row_base = col + tap_offset[i] + c * g.kernel_w * ldc
        for e in range(e0, e1):
            src = row_base + index.entry_kw[e] * ldc + index.entry_src[e]
            q0 = index.entry_q0[e]
            count = index.entry_q1[e] - q0
            if not started:
                started = True
                if count == length:
                    for q in range(length):
                        sums[q] = src[q]
                    continue
                memset(sums, 0, length * sizeof(floating))
            for q in range(count):
                sums[q0 + q] += src[q]
    if not started:
        memset(sums, 0, length * sizeof(floating))
    return sums


cdef void gather_row(const floating* col, const Index* index, Py_ssize_t c, Py_ssize_t row,
                     floating* out_row, floating* phases, const Geometry* g) noexcept nogil:
    """Writes one output row segment out_row[0:tile width] (channel c of the block, row ``row`` of
    the band) from the products in col: per column phase the sums, then one interleaved store."""
    cdef Py_ssize_t sw = g.stride_w
    cdef Py_ssize_t phase, q, length, length0, length1
    cdef const floating* sums
    cdef const floating* sums0
    cdef const floating* sums1
    if sw == 1:
        phase_sums(col, index, c, row, 0, out_row, False, g)
    elif sw == 2:
        length0 = index.phase_length[0]
        length1 = index.phase_length[1]
        sums0 = phase_sums(col, index, c, row, 0, phases, True, g)
        if length1 <= 0:
            out_row[0] = sums0[0]
            return
        sums1 = phase_sums(col, index, c, row, 1, phases + g.phase_size, True, g)
        for q in range(length1):
            out_row[2 * q] = sums0[q]
            out_row[2 * q + 1] = sums1[q]
        if length0 > length1:
            out_row[2 * length1] = sums0[length1]
    else:
        for phase in range(sw):
            length = index.phase_length[phase]
            if length <= 0:
                continue
            sums = phase_sums(col, index, c, row, phase, phases, True, g)
            for q in range(length):
                out_row[q * sw + phase] = sums[q]


cdef void index_tile(Index* index, Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t ow0, Py_ssize_t ow1,
                     Py_ssize_t iw_lo, Py_ssize_t width, const Geometry* g) noexcept nogil:
    """Fills the phase, entry and tap arrays of ``index`` for output rows [oh0, oh1) and columns
    [ow0, ow1) (ow0 a multiple of sw), given the slots' GEMM rows and input columns
    [iw_lo, iw_lo + width)."""
    cdef Py_ssize_t sw = g.stride_w, slots = g.kernel_d * g.kernel_h
    cdef Py_ssize_t m0 = ow0 / sw
    cdef Py_ssize_t phase, kw, offset, shift, q0, q1, entries = 0, row, taps, slot, kd, kh, t, r
    for phase in range(sw):
        # outputs ow = (m0 + q) * sw + phase, q < length
        index.phase_length[phase] = ceil_div(ow1 - phase, sw) - m0
        index.phase_start[phase] = entries
        for kw in range(g.kernel_w):
            offset = kw * g.dil_w - g.pad_w
            if offset - floor_div(offset, sw) * sw != phase:
                continue
            # output (m0 + q) * sw + phase reads input column m0 + q + shift
            shift = -floor_div(offset, sw)
            q0 = max(0, iw_lo - shift - m0)
            q1 = min(index.phase_length[phase], iw_lo + width - shift - m0)
            if q0 >= q1:
                continue
            index.entry_kw[entries] = kw
            index.entry_src[entries] = m0 + q0 + shift - iw_lo
            index.entry_q0[entries] = q0
            index.entry_q1[entries] = q1
            entries += 1
    index.phase_start[sw] = entries
    for row in range(oh1 - oh0):
        taps = 0
        for kd in range(g.kernel_d):
            for kh in range(g.kernel_h):
                slot = kd * g.kernel_h + kh
                if index.slot_rows[slot] == 0:
                    continue
                t = oh0 + row + g.pad_h - kh * g.dil_h
                if t < 0 or t % g.stride_h != 0:
                    continue
                r = t / g.stride_h - index.slot_first[slot]
                if r < 0 or r >= index.slot_rows[slot]:
                    continue
                index.tap_offset[row * slots + taps] = slot * g.slot_size + r * width
                index.tap_ldc[row * slots + taps] = index.slot_rows[slot] * width
                taps += 1
        index.tap_count[row] = taps


cdef void run_task(Py_ssize_t task, const floating* x, const floating* packed, floating* out,
                   const Geometry* g, const Epilogue* ep, floating* col, floating* phases,
                   Index* index, void* workspace) noexcept nogil:
    """Computes output[n, co0:co0 + cb, od, oh0:oh1, :] of one task (see the module docstring)."""
    cdef Py_ssize_t band_index = task % g.bands
    cdef Py_ssize_t rest = task / g.bands
    cdef Py_ssize_t od = rest % g.out_d
    rest = rest / g.out_d
    cdef Py_ssize_t block = rest % g.co_blocks
    rest = rest / g.co_blocks
    cdef Py_ssize_t grp = rest % g.groups
    cdef Py_ssize_t n = rest / g.groups
    cdef Py_ssize_t co0 = grp * g.out_per_group + block * g.co_block
    cdef Py_ssize_t cb = min(g.co_block, g.out_per_group - block * g.co_block)
    cdef Py_ssize_t m = cb * g.kernel_w, k = g.in_per_group
    cdef Py_ssize_t oh0 = band_index * g.band
    cdef Py_ssize_t oh1 = min(oh0 + g.band, g.out_h)
    cdef Py_ssize_t out_plane = g.out_h * g.out_w
    cdef Py_ssize_t in_plane = g.in_h * g.in_w
    cdef Py_ssize_t in_channel_stride = g.in_d * in_plane
    cdef const floating* x_group = x + (n * g.in_channels + grp * g.in_per_group) * in_channel_stride
    cdef Py_ssize_t slot, c, kd, kh, t, id, base, ih0, ih1, rows, tile, ow0, ow1, iw_lo, iw_hi, width
    cdef Py_ssize_t row, offset
    cdef bint whole_rows = g.tile >= g.out_w
    cdef bint finish = not epilogue_is_identity(ep)

    for tile in range(ceil_div(g.out_w, g.tile)):
        ow0 = tile * g.tile
        ow1 = min(ow0 + g.tile, g.out_w)
        if whole_rows:
            iw_lo = 0
            iw_hi = g.in_w
        else:  # the input columns that reach output columns [ow0, ow1)
            iw_lo = max(0, ceil_div(ow0 + g.pad_w - (g.kernel_w - 1) * g.dil_w, g.stride_w))
            iw_hi = min(g.in_w, ceil_div(ow1 + g.pad_w, g.stride_w))
        width = max(0, iw_hi - iw_lo)
        for kd in range(g.kernel_d):
            t = od + g.pad_d - kd * g.dil_d
            id = t / g.stride_d if t >= 0 and t % g.stride_d == 0 else g.in_d
            for kh in range(g.kernel_h):
                slot = kd * g.kernel_h + kh
                index.slot_rows[slot] = 0
                if id >= g.in_d or width == 0:
                    continue
                # the input rows ih with ih * sh - ph + kh * dh in [oh0, oh1)
                base = kh * g.dil_h - g.pad_h
                ih0 = max(0, ceil_div(oh0 - base, g.stride_h))
                ih1 = min(g.in_h, ceil_div(oh1 - base, g.stride_h))
                if ih0 >= ih1:
                    continue
                rows = ih1 - ih0
                index.slot_first[slot] = ih0
                index.slot_rows[slot] = rows
                # whole rows are contiguous in the input; a column tile has one input row (band <= sh)
                gemm_prepacked(m, rows * width, k,
                               packed + ((grp * g.kernel_d + kd) * g.kernel_h + kh) * g.slab_size
                               + block * g.block_size,
                               x_group + id * in_plane + ih0 * g.in_w + iw_lo, in_channel_stride,
                               col + slot * g.slot_size, rows * width, False, workspace)
        index_tile(index, oh0, oh1, ow0, ow1, iw_lo, width, g)
        for c in range(cb):
            for row in range(oh1 - oh0):
                offset = ((n * g.out_channels + co0 + c) * g.out_d + od) * out_plane + (oh0 + row) * g.out_w + ow0
                gather_row(col, index, c, row, out + offset, phases, g)
                if finish:
                    epilogue_row(ep, out, offset, ow1 - ow0, co0 + c)


def conv_transpose_gemm_forward(const floating[:, :, :, :, ::1] input, const floating[::1] packed,
                                floating[:, :, :, :, ::1] output, kernel_size, stride, padding, dilation,
                                Py_ssize_t groups, Py_ssize_t co_block, Py_ssize_t band, Py_ssize_t tile,
                                const floating[::1] scale, const floating[::1] shift,
                                const floating[::1] residual, int activation, double p0, double p1, double p2,
                                int num_threads):
    """Transposed convolution of 5-D arrays by GEMM + col2im, written into ``output``.

    input (N, C_in, D, H, W); packed: the weights (C_in, C_out / groups, kD, kH, kW) packed by
    pack_weights with the same groups and co_block; output (N, C_out, OD, OH, OW) allocated by
    the caller with OD = (D - 1) * sD - 2 pD + dD (kD - 1) + output_padding + 1 (likewise OH,
    OW).  kernel_size, stride, padding, dilation: 3-tuples (d, h, w).  band: output rows per
    task (>= 1); tile: output columns per column tile (>= 1; used only when band <= sH, and
    then rounded up to a multiple of sW).  Then the epilogue (scale, shift: (C_out,) or empty;
    residual: output.size elements in the output's layout, or empty; activation and its
    parameters, see epilogue.pxd).  All C-contiguous, one dtype, arguments validated by the
    caller.  Every output element is written once.
    """
    cdef Geometry g
    g.in_channels, g.in_d, g.in_h, g.in_w = input.shape[1], input.shape[2], input.shape[3], input.shape[4]
    g.out_channels, g.out_d, g.out_h, g.out_w = output.shape[1], output.shape[2], output.shape[3], output.shape[4]
    g.kernel_d, g.kernel_h, g.kernel_w = kernel_size
    g.stride_d, g.stride_h, g.stride_w = stride
    g.pad_d, g.pad_h, g.pad_w = padding
    g.dil_d, g.dil_h, g.dil_w = dilation
    g.groups = groups
    g.in_per_group = g.in_channels // groups
    g.out_per_group = g.out_channels // groups
    g.co_block = co_block
    g.co_blocks = ceil_div(g.out_per_group, co_block)
    sizes = packed_weights_size(groups, g.in_per_group, g.out_per_group, g.kernel_d, g.kernel_h, g.kernel_w,
                                co_block)
    g.block_size = sizes[1]
    g.slab_size = sizes[2]
    g.band = band
    g.bands = ceil_div(g.out_h, band)
    g.tile = round_up(tile, g.stride_w) if band <= g.stride_h else g.out_w
    if g.tile >= g.out_w:
        g.tile = g.out_w
        g.max_columns = ceil_div(band, g.stride_h) * g.in_w   # whole input rows
    else:  # one input row, the columns that reach one tile
        g.max_columns = min(g.in_w, ceil_div(g.tile + (g.kernel_w - 1) * g.dil_w, g.stride_w) + 1)
    g.phase_size = round_up(ceil_div(g.tile, g.stride_w), ALIGN)

    cdef Py_ssize_t batch = output.shape[0]
    cdef Py_ssize_t tasks = batch * groups * g.co_blocks * g.out_d * g.bands
    if tasks == 0 or g.out_w == 0:
        return
    cdef Epilogue ep = epilogue_init(&scale[0] if scale.shape[0] else NULL,
                                     &shift[0] if shift.shape[0] else NULL,
                                     &residual[0] if residual.shape[0] else NULL,
                                     activation, p0, p1, p2)
    cdef Py_ssize_t slots = g.kernel_d * g.kernel_h
    cdef Py_ssize_t m_max = co_block * g.kernel_w
    cdef Py_ssize_t band_rows = min(band, g.out_h)
    g.slot_size = round_up(m_max * g.max_columns, ALIGN)
    # per thread: the products of every slot, the phase buffers, the index arrays, the GEMM workspace
    cdef Py_ssize_t col_bytes = slots * g.slot_size * sizeof(floating)
    cdef Py_ssize_t phase_bytes = g.stride_w * g.phase_size * sizeof(floating)
    cdef Py_ssize_t index_count = (2 * slots + 2 * g.stride_w + 1 + 4 * g.kernel_w + band_rows
                                   + 2 * band_rows * slots)
    cdef Py_ssize_t index_bytes = round_up(index_count * sizeof(Py_ssize_t), ALIGN)
    cdef Py_ssize_t per_thread = (col_bytes + phase_bytes + index_bytes
                                  + round_up(gemm_workspace_size(m_max, g.max_columns, g.in_per_group), ALIGN))
    num_threads = <int>max(1, min(<Py_ssize_t>num_threads, tasks))
    cdef char* scratch = <char*>malloc(per_thread * num_threads + ALIGN)
    if scratch == NULL:
        raise MemoryError()
    cdef char* aligned = <char*>(round_up(<size_t>scratch, ALIGN))
    cdef Index* indexes = <Index*>malloc(num_threads * sizeof(Index))
    if indexes == NULL:
        free(scratch)
        raise MemoryError()
    cdef Py_ssize_t i
    cdef Py_ssize_t* p
    for i in range(num_threads):
        p = <Py_ssize_t*>(aligned + i * per_thread + col_bytes + phase_bytes)
        indexes[i].slot_first = p
        indexes[i].slot_rows = p + slots
        indexes[i].phase_length = p + 2 * slots
        indexes[i].phase_start = p + 2 * slots + g.stride_w
        indexes[i].entry_kw = p + 2 * slots + 2 * g.stride_w + 1
        indexes[i].entry_src = indexes[i].entry_kw + g.kernel_w
        indexes[i].entry_q0 = indexes[i].entry_src + g.kernel_w
        indexes[i].entry_q1 = indexes[i].entry_q0 + g.kernel_w
        indexes[i].tap_count = indexes[i].entry_q1 + g.kernel_w
        indexes[i].tap_offset = indexes[i].tap_count + band_rows
        indexes[i].tap_ldc = indexes[i].tap_offset + band_rows * slots
    cdef const floating* x = &input[0, 0, 0, 0, 0]
    cdef const floating* w = &packed[0]
    cdef floating* out = &output[0, 0, 0, 0, 0]
    cdef char* mine
    cdef Py_ssize_t task
    for task in prange(tasks, nogil=True, schedule='static', num_threads=num_threads):
        mine = aligned + threadid() * per_thread
        run_task(task, x, w, out, &g, &ep, <floating*>mine, <floating*>(mine + col_bytes),
                 &indexes[threadid()], mine + col_bytes + phase_bytes + index_bytes)
    free(indexes)
    free(scratch)
