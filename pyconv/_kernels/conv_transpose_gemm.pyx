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
(mod sw), each a contiguous run of a ``col`` row, so the sums are formed per
phase in a small contiguous buffer (16 output channels at a time, channels
innermost) and interleaved into the output rows in one pass (sw = 1: summed
in the output rows themselves; a phase made of one products row is
interleaved straight from it).  The fused epilogue then finishes each row
while it is in L1.  Long rows are cut into column tiles (a GEMM per tile
over the input columns that reach it, the few shared edge columns computed
twice).

Direct mode (at most a few input channels per group, e.g. depthwise, where
the GEMM's k would be tiny; the Python layer decides): no GEMM and no
products; the gather multiplies the input rows by the weights itself, 16
output channels at a time, and a task's output channels may span groups (the
row index is shared by all of them).

Tasks never share an output element, each element is written once, summed
in the fixed order (kd, kh, kw), each product summed over ci in the GEMM's
fixed order: the result does not depend on the thread count.  Output
elements that no tap reaches get 0 before the epilogue (bias only).

Blocking (output channels per block, output rows per band, output columns
per tile) is chosen by the Python layer from the problem and the input
shape, never from the thread count.
"""
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_is_identity, epilogue_row
from pyconv._kernels.gemm cimport gemm_pack_a, gemm_packed_a_size, gemm_prepacked, gemm_workspace_size
from pyconv._kernels.index_math cimport ceil_div, floor_div
from pyconv._kernels.parallel cimport parallel_for

cdef extern from *:
    """
    /* The gather's short row loops, with restrict so that the compiler emits plain vector
       loops without a run-time overlap check per call (the rows never overlap). */
    #if defined(_MSC_VER)
    #define PYCONV_CTG_RESTRICT __restrict
    #else
    #define PYCONV_CTG_RESTRICT restrict
    #endif
    #define PYCONV_CTG_ROW_LOOPS(T, SUFFIX)                                                    \
    static inline void pyconv_ctg_copy_##SUFFIX(T *PYCONV_CTG_RESTRICT dst,                    \
                                                const T *PYCONV_CTG_RESTRICT src, ptrdiff_t n) \
    { for (ptrdiff_t i = 0; i < n; i++) dst[i] = src[i]; }                                     \
    static inline void pyconv_ctg_add_##SUFFIX(T *PYCONV_CTG_RESTRICT dst,                     \
                                               const T *PYCONV_CTG_RESTRICT src, ptrdiff_t n)  \
    { for (ptrdiff_t i = 0; i < n; i++) dst[i] += src[i]; }                                    \
    static inline void pyconv_ctg_scale_##SUFFIX(T *PYCONV_CTG_RESTRICT dst, T a,              \
                                                 const T *PYCONV_CTG_RESTRICT src, ptrdiff_t n)\
    { for (ptrdiff_t i = 0; i < n; i++) dst[i] = a * src[i]; }                                 \
    static inline void pyconv_ctg_axpy_##SUFFIX(T *PYCONV_CTG_RESTRICT dst, T a,               \
                                                const T *PYCONV_CTG_RESTRICT src, ptrdiff_t n) \
    { for (ptrdiff_t i = 0; i < n; i++) dst[i] += a * src[i]; }                                \
    static inline void pyconv_ctg_interleave_##SUFFIX(T *PYCONV_CTG_RESTRICT dst,              \
                                                      const T *PYCONV_CTG_RESTRICT even,       \
                                                      const T *PYCONV_CTG_RESTRICT odd,        \
                                                      ptrdiff_t n)                             \
    { for (ptrdiff_t i = 0; i < n; i++) { dst[2 * i] = even[i]; dst[2 * i + 1] = odd[i]; } }
    PYCONV_CTG_ROW_LOOPS(float, f32)
    PYCONV_CTG_ROW_LOOPS(double, f64)
    """
    void copy_f32 "pyconv_ctg_copy_f32"(float* dst, const float* src, Py_ssize_t n) noexcept nogil
    void copy_f64 "pyconv_ctg_copy_f64"(double* dst, const double* src, Py_ssize_t n) noexcept nogil
    void add_f32 "pyconv_ctg_add_f32"(float* dst, const float* src, Py_ssize_t n) noexcept nogil
    void add_f64 "pyconv_ctg_add_f64"(double* dst, const double* src, Py_ssize_t n) noexcept nogil
    void scale_f32 "pyconv_ctg_scale_f32"(float* dst, float a, const float* src, Py_ssize_t n) noexcept nogil
    void scale_f64 "pyconv_ctg_scale_f64"(double* dst, double a, const double* src, Py_ssize_t n) noexcept nogil
    void axpy_f32 "pyconv_ctg_axpy_f32"(float* dst, float a, const float* src, Py_ssize_t n) noexcept nogil
    void axpy_f64 "pyconv_ctg_axpy_f64"(double* dst, double a, const double* src, Py_ssize_t n) noexcept nogil
    void interleave_f32 "pyconv_ctg_interleave_f32"(float* dst, const float* even, const float* odd,
                                                    Py_ssize_t n) noexcept nogil
    void interleave_f64 "pyconv_ctg_interleave_f64"(double* dst, const double* even, const double* odd,
                                                    Py_ssize_t n) noexcept nogil


cdef inline void copy_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n] (not overlapping)."""
    if floating is float:
        copy_f32(dst, src, n)
    else:
        copy_f64(dst, src, n)


cdef inline void add_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += src[:n] (not overlapping)."""
    if floating is float:
        add_f32(dst, src, n)
    else:
        add_f64(dst, src, n)


cdef inline void scale_row(floating* dst, floating a, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = a * src[:n] (not overlapping)."""
    if floating is float:
        scale_f32(dst, a, src, n)
    else:
        scale_f64(dst, a, src, n)


cdef inline void axpy_row(floating* dst, floating a, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += a * src[:n] (not overlapping)."""
    if floating is float:
        axpy_f32(dst, a, src, n)
    else:
        axpy_f64(dst, a, src, n)


cdef inline void interleave_rows(floating* dst, const floating* even, const floating* odd,
                                 Py_ssize_t n) noexcept nogil:
    """dst[2 i] = even[i], dst[2 i + 1] = odd[i] for i < n (not overlapping)."""
    if floating is float:
        interleave_f32(dst, even, odd, n)
    else:
        interleave_f64(dst, even, odd, n)

cdef enum:
    ALIGN = 64    # bytes: alignment of each scratch area
    CI_BLOCK = 8     # input channels per block of the weight transposition
    CHUNK = 16       # output channels gathered together (see phase_sums)


ctypedef struct Geometry:
    Py_ssize_t in_channels, in_d, in_h, in_w
    Py_ssize_t out_channels, out_d, out_h, out_w
    Py_ssize_t kernel_d, kernel_h, kernel_w
    Py_ssize_t stride_d, stride_h, stride_w
    Py_ssize_t pad_d, pad_h, pad_w
    Py_ssize_t dil_d, dil_h, dil_w
    Py_ssize_t groups, in_per_group, out_per_group, taps
    bint direct                        # no GEMM: the gather multiplies the input (few input channels)
    Py_ssize_t task_groups             # groups, or 1 in direct mode (a task may span groups)
    Py_ssize_t task_channels           # output channels per group, or all in direct mode
    Py_ssize_t co_block, co_blocks     # output channels per task, blocks per task_channels
    Py_ssize_t block_size, slab_size   # packed elements: one full block; all blocks of one (g, kd, kh)
    Py_ssize_t band, bands             # output rows per task, tasks per (n, group, block, od)
    Py_ssize_t tile                    # output columns per column tile (out_w: whole rows)
    Py_ssize_t max_columns             # largest GEMM n
    Py_ssize_t slot_size               # elements of the products of one (kd, kh)
    Py_ssize_t phase_size              # elements of one phase buffer


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
    cdef Py_ssize_t taps = kd_size * kh_size * kw_size
    cdef Py_ssize_t slab = out_per_group * kw_size * in_per_group   # one (kd, kh) of one group
    # the weights of one group as A matrices: a[kd, kh][(co, kw), ci]
    cdef floating* a = <floating*>malloc(kd_size * kh_size * slab * sizeof(floating))
    if a == NULL:
        raise MemoryError()
    cdef const floating* w
    cdef Py_ssize_t grp, kd, kh, kw, block, co, co0, cb, ci, ci_block, ci0, ci1
    with nogil:
        for grp in range(groups):
            # Transposed in blocks of CI_BLOCK input channels, so that each cache line of the
            # weights is read once and each line of ``a`` written in one piece.
            for ci_block in range(ceil_div(in_per_group, CI_BLOCK)):
                ci0 = ci_block * CI_BLOCK
                ci1 = min(in_per_group, ci0 + CI_BLOCK)
                for co in range(out_per_group):
                    for kd in range(kd_size):
                        for kh in range(kh_size):
                            for kw in range(kw_size):
                                w = &weight[grp * in_per_group, co, kd, kh, kw]
                                for ci in range(ci0, ci1):
                                    a[(kd * kh_size + kh) * slab + (co * kw_size + kw) * in_per_group + ci] = \
                                        w[ci * out_per_group * taps]
            for kd in range(kd_size):
                for kh in range(kh_size):
                    for block in range(blocks):
                        co0 = block * co_block
                        cb = min(co_block, out_per_group - co0)
                        gemm_pack_a(cb * kw_size, in_per_group,
                                    a + (kd * kh_size + kh) * slab + co0 * kw_size * in_per_group, in_per_group,
                                    &packed[((grp * kd_size + kd) * kh_size + kh) * slab_size + block * block_size])
    free(a)


# ---- forward ---------------------------------------------------------------
ctypedef struct Index:
    # One thread's index arrays for the current task, column tile and output row.
    Py_ssize_t* slot_first      # per (kd, kh) slot: first input row of its GEMM
    Py_ssize_t* slot_rows       #   and its number of input rows (0: no GEMM)
    Py_ssize_t* slot_base       #   offset of its products in col (direct: of its first row in the input)
    Py_ssize_t phases           # output column phases present in the tile: min(sw, tile width)
    Py_ssize_t* phase_length    # per phase: its outputs in the tile
    Py_ssize_t* phase_start     # contributions of phase p to the current row:
                                #   [phase_start[p], phase_start[p + 1])
    Py_ssize_t* offset          # per contribution, a products row of one (slot, kw): offset in col of
                                #   its value for phase output 0 of channel 0 of the block (direct:
                                #   the input row's offset, from the group's first input channel)
    Py_ssize_t* channel_stride  #   offset between the rows of consecutive channels (direct: input channels)
    Py_ssize_t* tap             #   its kernel tap (kd * kH + kh) * kW + kw
    Py_ssize_t* first           #   the phase outputs it reaches: [first, end)
    Py_ssize_t* end


cdef inline bint phase_sums(const floating* col, const Index* index, Py_ssize_t c0, Py_ssize_t channels,
                            Py_ssize_t phase, floating* sums, Py_ssize_t sums_stride, bint may_alias) noexcept nogil:
    """The index.phase_length[phase] sums of column phase ``phase`` of the current row, for the
    output channels c0 + i (i < channels) of the block, into sums + i * sums_stride.  If
    ``may_alias`` and one products row covers the phase, writes nothing and returns True: the
    sums are then that row of col (see products_row).

    The loops run over the channels innermost (independent rows, in flight together).  Each
    contribution is added over exactly the outputs it reaches, [first, end) (no value next to
    its products row is read: that may be another thread's scratch or never written), in
    (kd, kh, kw) order; the first one is copied, the outputs it does not reach start at 0."""
    cdef Py_ssize_t e0 = index.phase_start[phase], e1 = index.phase_start[phase + 1]
    cdef Py_ssize_t length = index.phase_length[phase]
    cdef Py_ssize_t e, i, q0, q1, stride
    cdef const floating* src
    cdef floating* dst
    if e0 == e1:
        for i in range(channels):
            memset(sums + i * sums_stride, 0, length * sizeof(floating))
        return False
    if may_alias and e1 - e0 == 1 and index.first[e0] == 0 and index.end[e0] == length:
        return True
    q0 = index.first[e0]
    q1 = index.end[e0]
    src = col + index.offset[e0] + c0 * index.channel_stride[e0]
    stride = index.channel_stride[e0]
    for i in range(channels):
        dst = sums + i * sums_stride
        if q0 > 0:
            memset(dst, 0, q0 * sizeof(floating))
        copy_row(dst + q0, src + i * stride + q0, q1 - q0)
        if q1 < length:
            memset(dst + q1, 0, (length - q1) * sizeof(floating))
    for e in range(e0 + 1, e1):
        src = col + index.offset[e] + c0 * index.channel_stride[e]
        stride = index.channel_stride[e]
        q0 = index.first[e]
        q1 = index.end[e]
        for i in range(channels):
            add_row(sums + i * sums_stride + q0, src + i * stride + q0, q1 - q0)
    return False


cdef inline const floating* products_row(const floating* col, const Index* index, Py_ssize_t c,
                                         Py_ssize_t phase) noexcept nogil:
    """The products row that alone makes up the sums of ``phase`` for channel c (see phase_sums)."""
    cdef Py_ssize_t e = index.phase_start[phase]
    return col + index.offset[e] + c * index.channel_stride[e]


cdef inline void gather_rows(const floating* col, const Index* index, Py_ssize_t c0, Py_ssize_t channels,
                             floating* out_row, Py_ssize_t out_stride, floating* phases,
                             const Geometry* g) noexcept nogil:
    """Writes the output row segments out_row + i * out_stride [0:tile width] (channels c0 + i of
    the block, i < channels <= CHUNK, the current row) from the products in col: per column phase
    the sums, then one interleaved store per channel."""
    cdef Py_ssize_t sw = g.stride_w, size = g.phase_size
    cdef Py_ssize_t phase, i, q, length, length0, length1
    cdef bint alias, alias0, alias1
    cdef const floating* sums
    cdef const floating* sums0
    cdef const floating* sums1
    cdef floating* dst
    if sw == 1:
        phase_sums(col, index, c0, channels, 0, out_row, out_stride, False)
    elif sw == 2 and index.phases == 2:
        length0 = index.phase_length[0]
        length1 = index.phase_length[1]
        alias0 = phase_sums(col, index, c0, channels, 0, phases, size, True)
        alias1 = phase_sums(col, index, c0, channels, 1, phases + CHUNK * size, size, True)
        for i in range(channels):
            sums0 = products_row(col, index, c0 + i, 0) if alias0 else phases + i * size
            sums1 = products_row(col, index, c0 + i, 1) if alias1 else phases + (CHUNK + i) * size
            dst = out_row + i * out_stride
            interleave_rows(dst, sums0, sums1, length1)
            if length0 > length1:
                dst[2 * length1] = sums0[length1]
    else:
        for phase in range(index.phases):
            length = index.phase_length[phase]
            alias = phase_sums(col, index, c0, channels, phase, phases, size, True)
            for i in range(channels):
                sums = products_row(col, index, c0 + i, phase) if alias else phases + i * size
                dst = out_row + i * out_stride
                for q in range(length):
                    dst[q * sw + phase] = sums[q]


cdef inline void direct_phase_sums(const floating* x_image, const floating* weights, const Index* index,
                                   Py_ssize_t co, Py_ssize_t channels, Py_ssize_t phase, floating* sums,
                                   Py_ssize_t sums_stride, const Geometry* g) noexcept nogil:
    """Direct mode's phase_sums: the sums of output channels co + i (i < channels, absolute
    indices), into sums + i * sums_stride, from their groups' input rows (x_image: the image's
    first channel) times their weights (C_out, taps, C_in / groups), summed in the order
    (contribution, ci); channels innermost."""
    cdef Py_ssize_t e0 = index.phase_start[phase], e1 = index.phase_start[phase + 1]
    cdef Py_ssize_t length = index.phase_length[phase]
    cdef Py_ssize_t k = g.in_per_group, per_weights = g.taps * g.in_per_group
    cdef Py_ssize_t group_stride = g.in_per_group * g.in_d * g.in_h * g.in_w
    cdef Py_ssize_t e, ci, i, q0, count
    cdef const floating* src
    cdef const floating* tap_weights
    if e0 == e1:
        for i in range(channels):
            memset(sums + i * sums_stride, 0, length * sizeof(floating))
        return
    for e in range(e0, e1):
        q0 = index.first[e]
        count = index.end[e] - q0
        for ci in range(k):
            tap_weights = weights + co * per_weights + index.tap[e] * k + ci
            src = x_image + index.offset[e] + ci * index.channel_stride[e] + q0
            if e == e0 and ci == 0:
                if count == length:
                    for i in range(channels):
                        scale_row(sums + i * sums_stride, tap_weights[i * per_weights],
                                  src + (co + i) / g.out_per_group * group_stride, length)
                    continue
                for i in range(channels):
                    memset(sums + i * sums_stride, 0, length * sizeof(floating))
            for i in range(channels):
                axpy_row(sums + i * sums_stride + q0, tap_weights[i * per_weights],
                         src + (co + i) / g.out_per_group * group_stride, count)


cdef inline void gather_rows_direct(const floating* x_image, const floating* weights, const Index* index,
                                    Py_ssize_t co, Py_ssize_t channels, floating* out_row,
                                    Py_ssize_t out_stride, floating* phases, const Geometry* g) noexcept nogil:
    """Direct mode's gather_rows: output channels co + i (absolute, i < channels <= CHUNK)."""
    cdef Py_ssize_t sw = g.stride_w, size = g.phase_size
    cdef Py_ssize_t phase, i, q, length, length0, length1
    cdef const floating* sums
    cdef floating* dst
    if sw == 1:
        direct_phase_sums(x_image, weights, index, co, channels, 0, out_row, out_stride, g)
    elif sw == 2 and index.phases == 2:
        length0 = index.phase_length[0]
        length1 = index.phase_length[1]
        direct_phase_sums(x_image, weights, index, co, channels, 0, phases, size, g)
        direct_phase_sums(x_image, weights, index, co, channels, 1, phases + CHUNK * size, size, g)
        for i in range(channels):
            dst = out_row + i * out_stride
            interleave_rows(dst, phases + i * size, phases + (CHUNK + i) * size, length1)
            if length0 > length1:
                dst[2 * length1] = phases[i * size + length1]
    else:
        for phase in range(index.phases):
            length = index.phase_length[phase]
            direct_phase_sums(x_image, weights, index, co, channels, phase, phases, size, g)
            for i in range(channels):
                sums = phases + i * size
                dst = out_row + i * out_stride
                for q in range(length):
                    dst[q * sw + phase] = sums[q]


cdef void index_phases(Index* index, Py_ssize_t ow0, Py_ssize_t ow1, const Geometry* g) noexcept nogil:
    """The column phases of output columns [ow0, ow1), ow0 a multiple of sw: phase p holds the
    outputs ow = (ow0 / sw + q) * sw + p, q < phase_length[p]."""
    cdef Py_ssize_t phase
    index.phases = min(g.stride_w, ow1 - ow0)
    for phase in range(index.phases):
        index.phase_length[phase] = ceil_div(ow1 - ow0 - phase, g.stride_w)


cdef void index_row(Index* index, Py_ssize_t oh, Py_ssize_t ow0, Py_ssize_t iw_lo, Py_ssize_t width,
                    const Geometry* g) noexcept nogil:
    """The contributions to output row oh, columns of the current tile (index_phases), given the
    slots' GEMM rows and input columns [iw_lo, iw_lo + width); per phase in (kd, kh, kw) order."""
    cdef Py_ssize_t sw = g.stride_w, m0 = ow0 / g.stride_w
    cdef Py_ssize_t phase, kw, offset, shift, q0, q1, count = 0, slot, kd, kh, t, r, ldc, length
    for phase in range(index.phases):
        index.phase_start[phase] = count
        length = index.phase_length[phase]
        for kd in range(g.kernel_d):
            for kh in range(g.kernel_h):
                slot = kd * g.kernel_h + kh
                if index.slot_rows[slot] == 0:
                    continue
                t = oh + g.pad_h - kh * g.dil_h
                if t < 0 or t % g.stride_h != 0:
                    continue
                r = t / g.stride_h - index.slot_first[slot]
                if r < 0 or r >= index.slot_rows[slot]:
                    continue
                ldc = index.slot_rows[slot] * width
                for kw in range(g.kernel_w):
                    offset = kw * g.dil_w - g.pad_w
                    if offset - floor_div(offset, sw) * sw != phase:
                        continue
                    # phase output q (column (m0 + q) * sw + phase) reads input column m0 + q + shift
                    shift = -floor_div(offset, sw)
                    q0 = max(0, iw_lo - shift - m0)
                    q1 = min(length, iw_lo + width - shift - m0)
                    if q0 >= q1:
                        continue
                    index.first[count] = q0
                    index.end[count] = q1
                    index.tap[count] = slot * g.kernel_w + kw
                    if g.direct:
                        index.offset[count] = index.slot_base[slot] + r * g.in_w + m0 + shift
                        index.channel_stride[count] = g.in_d * g.in_h * g.in_w
                    else:
                        index.offset[count] = (index.slot_base[slot] + kw * ldc + r * width
                                               + (m0 + shift - iw_lo))
                        index.channel_stride[count] = g.kernel_w * ldc
                    count += 1
    index.phase_start[index.phases] = count


ctypedef struct Job:
    # One conv_transpose_gemm call, for parallel_for.  Per thread t: from scratch + t * per_thread,
    # col_bytes of products, phase_bytes of phase buffers, index_bytes of indexes[t], the GEMM workspace.
    const Geometry* g
    const Epilogue* ep
    bint double_precision
    const void* input
    const void* packed
    void* output
    char* scratch
    Py_ssize_t per_thread, col_bytes, phase_bytes, index_bytes
    Index* indexes


cdef void _run_job_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef char* mine = job.scratch + thread * job.per_thread
    cdef void* workspace = mine + job.col_bytes + job.phase_bytes + job.index_bytes
    if job.double_precision:
        run_task(task, <const double*>job.input, <const double*>job.packed, <double*>job.output, job.g, job.ep,
                 <double*>mine, <double*>(mine + job.col_bytes), &job.indexes[thread], workspace)
    else:
        run_task(task, <const float*>job.input, <const float*>job.packed, <float*>job.output, job.g, job.ep,
                 <float*>mine, <float*>(mine + job.col_bytes), &job.indexes[thread], workspace)


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
    cdef Py_ssize_t grp = rest % g.task_groups
    cdef Py_ssize_t n = rest / g.task_groups
    cdef Py_ssize_t co0 = grp * g.task_channels + block * g.co_block
    cdef Py_ssize_t cb = min(g.co_block, g.task_channels - block * g.co_block)
    cdef Py_ssize_t m = cb * g.kernel_w, k = g.in_per_group
    cdef Py_ssize_t oh0 = band_index * g.band
    cdef Py_ssize_t oh1 = min(oh0 + g.band, g.out_h)
    cdef Py_ssize_t out_plane = g.out_h * g.out_w
    cdef Py_ssize_t in_plane = g.in_h * g.in_w
    cdef Py_ssize_t in_channel_stride = g.in_d * in_plane
    cdef const floating* x_group = x + (n * g.in_channels + grp * g.in_per_group) * in_channel_stride
    cdef const floating* x_image = x + n * g.in_channels * in_channel_stride
    cdef Py_ssize_t slot, c, kd, kh, t, id, base, ih0, ih1, rows, tile, ow0, ow1, iw_lo, iw_hi, width
    cdef Py_ssize_t row, first, chunk
    cdef Py_ssize_t channel_stride = g.out_d * out_plane
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
                if g.direct:
                    index.slot_base[slot] = id * in_plane + ih0 * g.in_w
                    continue
                index.slot_base[slot] = slot * g.slot_size
                # whole rows are contiguous in the input; a column tile has one input row (band <= sh)
                gemm_prepacked(m, rows * width, k,
                               packed + ((grp * g.kernel_d + kd) * g.kernel_h + kh) * g.slab_size
                               + block * g.block_size,
                               x_group + id * in_plane + ih0 * g.in_w + iw_lo, in_channel_stride,
                               col + slot * g.slot_size, rows * width, False, workspace)
        index_phases(index, ow0, ow1, g)
        for row in range(oh0, oh1):
            index_row(index, row, ow0, iw_lo, width, g)
            first = ((n * g.out_channels + co0) * g.out_d + od) * out_plane + row * g.out_w + ow0
            for chunk in range(ceil_div(cb, CHUNK)):
                c = chunk * CHUNK
                if g.direct:
                    gather_rows_direct(x_image, packed, index, co0 + c, min(<Py_ssize_t>CHUNK, cb - c),
                                       out + first + c * channel_stride, channel_stride, phases, g)
                else:
                    gather_rows(col, index, c, min(<Py_ssize_t>CHUNK, cb - c), out + first + c * channel_stride,
                                channel_stride, phases, g)
            for c in range(cb):
                if finish:
                    epilogue_row(ep, out, first + c * channel_stride, ow1 - ow0, co0 + c)


def conv_transpose_gemm_forward(const floating[:, :, :, :, ::1] input, const floating[::1] packed,
                                floating[:, :, :, :, ::1] output, kernel_size, stride, padding, dilation,
                                Py_ssize_t groups, bint direct, Py_ssize_t co_block, Py_ssize_t band,
                                Py_ssize_t tile, const floating[::1] scale, const floating[::1] shift,
                                const floating[::1] residual, int activation, double p0, double p1, double p2,
                                int num_threads):
    """Transposed convolution of 5-D arrays by GEMM + col2im, written into ``output``.

    input (N, C_in, D, H, W); packed: the weights (C_in, C_out / groups, kD, kH, kW) packed by
    pack_weights with the same groups and co_block, or, if ``direct`` (no GEMM: for few input
    channels per group), laid out as (C_out, kD, kH, kW, C_in / groups), and then co_block counts
    output channels of any group; output (N, C_out, OD, OH, OW) allocated by
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
    g.taps = g.kernel_d * g.kernel_h * g.kernel_w
    g.direct = direct
    g.task_groups = 1 if direct else groups
    g.task_channels = g.out_channels if direct else g.out_per_group
    g.co_block = co_block
    g.co_blocks = ceil_div(g.task_channels, co_block)
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
    cdef Py_ssize_t tasks = batch * g.task_groups * g.co_blocks * g.out_d * g.bands
    if tasks == 0 or g.out_w == 0:
        return
    cdef Epilogue ep = epilogue_init(&scale[0] if scale.shape[0] else NULL,
                                     &shift[0] if shift.shape[0] else NULL,
                                     &residual[0] if residual.shape[0] else NULL,
                                     activation, p0, p1, p2)
    cdef Py_ssize_t slots = g.kernel_d * g.kernel_h
    cdef Py_ssize_t m_max = co_block * g.kernel_w
    g.slot_size = round_up(m_max * g.max_columns, ALIGN)
    # per thread: the products of every slot, the phase buffers, the index arrays, the GEMM workspace
    cdef Py_ssize_t col_bytes = 0 if direct else slots * g.slot_size * sizeof(floating)
    cdef Py_ssize_t phase_bytes = min(g.stride_w, 2) * CHUNK * g.phase_size * sizeof(floating)
    cdef Py_ssize_t phases = min(g.stride_w, g.tile)
    cdef Py_ssize_t contributions = slots * g.kernel_w
    cdef Py_ssize_t index_count = 3 * slots + 2 * phases + 1 + 5 * contributions
    cdef Py_ssize_t index_bytes = round_up(index_count * sizeof(Py_ssize_t), ALIGN)
    cdef Py_ssize_t per_thread = (col_bytes + phase_bytes + index_bytes
                                  + (0 if direct else
                                     round_up(gemm_workspace_size(m_max, g.max_columns, g.in_per_group), ALIGN)))
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
        indexes[i].slot_base = p + 2 * slots
        indexes[i].phase_length = p + 3 * slots
        indexes[i].phase_start = indexes[i].phase_length + phases
        indexes[i].offset = indexes[i].phase_start + phases + 1
        indexes[i].channel_stride = indexes[i].offset + contributions
        indexes[i].first = indexes[i].channel_stride + contributions
        indexes[i].end = indexes[i].first + contributions
        indexes[i].tap = indexes[i].end + contributions
    cdef Job job
    job.g = &g
    job.ep = &ep
    job.double_precision = floating is double
    job.input = &input[0, 0, 0, 0, 0]
    job.packed = &packed[0]
    job.output = &output[0, 0, 0, 0, 0]
    job.scratch = aligned
    job.per_thread = per_thread
    job.col_bytes = col_bytes
    job.phase_bytes = phase_bytes
    job.index_bytes = index_bytes
    job.indexes = indexes
    with nogil:
        parallel_for(_run_job_task, &job, tasks, num_threads)
    free(indexes)
    free(scratch)
