"""Transposed convolution by GEMM + col2im, blocked so that every output block
is finished (col2im, epilogue) while it is in cache.

One kernel serves 1d, 2d and 3d: the Python layer views every array as 5-D
(N, C, D, H, W), with D = H = 1 for 1d and D = 1 for 2d.

Input position ``i`` and kernel tap ``k`` contribute to output position
``o = i * stride - padding + k * dilation`` in each spatial dimension.  For
one kernel row (kd, kh) and a block of output channels, a GEMM gives every
(output channel, kw) product at once, with the input rows read in place as B
(no im2col, no zero-stuffed input):

    col[(co, kw), (ih, iw)] = sum_ci  W[ci, co, kd, kh, kw] * x[ci, id, ih, iw]

A = the weights of one (group, kd, kh, output channel block), packed once
with gemm_pack_a (pack_weights).  col2im then adds row (co, kw) of ``col``
into output row ``oh = ih * sh - ph + kh * dh`` at columns
``iw * sw - pw + kw * dw``.

Work unit ("task"): (n, group, output channel block, od, band of output rows).
A task zeroes its output block, runs the GEMM of each (kd, kh) over exactly
the input rows that land in its band (no input row is multiplied twice for
the same kernel row), col2im-adds the products into the block, then applies
the fused epilogue to each block row while it is in cache.  Tasks never share
an output element, and each element is summed in the fixed order
(kd, kh, width tile, kw), the GEMM summing over ci in its own fixed order,
so the result does not depend on the thread count.  Output rows that no tap
reaches stay zero before the epilogue (bias-only output).

Blocking (output channels per block, output rows per band, input columns per
GEMM when a GEMM reads a single input row) is chosen by the Python layer from
the problem and the input shape, never from the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_is_identity, epilogue_row
from pyconv._kernels.gemm cimport gemm_pack_a, gemm_packed_a_size, gemm_prepacked, gemm_workspace_size

cdef enum:
    ALIGN = 64    # bytes: alignment of each thread's scratch


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
    Py_ssize_t width_tile              # input columns per GEMM when it reads a single input row
    Py_ssize_t max_columns             # largest GEMM n


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
cdef void col2im_rows(const floating* col, Py_ssize_t ldcol, Py_ssize_t cb, Py_ssize_t rows,
                      Py_ssize_t ih0, Py_ssize_t w0, Py_ssize_t width, Py_ssize_t kh,
                      floating* out, Py_ssize_t channel_stride, const Geometry* g) noexcept nogil:
    """Adds col[(c, kw), r * width + j] (c < cb, r < rows, j < width), the products of input
    row ih0 + r, column w0 + j, into output[c] (out points to the block's first channel at
    (od, 0, 0); channel_stride between channels) at row (ih0 + r) * sh - ph + kh * dh,
    column (w0 + j) * sw - pw + kw * dw, where that column exists."""
    cdef Py_ssize_t sw = g.stride_w, ow = g.out_w
    cdef Py_ssize_t c, kw, r, j, offset, j0, j1, count
    cdef const floating* src
    cdef floating* dst
    for c in range(cb):
        for kw in range(g.kernel_w):
            offset = kw * g.dil_w - g.pad_w
            j0 = max(w0, ceil_div(-offset, sw))
            j1 = min(w0 + width, floor_div(ow - 1 - offset, sw) + 1)
            if j0 >= j1:
                continue
            count = j1 - j0
            for r in range(rows):
                src = col + (c * g.kernel_w + kw) * ldcol + r * width + (j0 - w0)
                dst = (out + c * channel_stride + ((ih0 + r) * g.stride_h - g.pad_h + kh * g.dil_h) * ow
                       + j0 * sw + offset)
                if sw == 1:
                    for j in range(count):
                        dst[j] += src[j]
                elif sw == 2:
                    for j in range(count):
                        dst[2 * j] += src[j]
                else:
                    for j in range(count):
                        dst[j * sw] += src[j]


cdef void run_task(Py_ssize_t task, const floating* x, const floating* packed, floating* out,
                   const Geometry* g, const Epilogue* ep, floating* col, void* workspace) noexcept nogil:
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
    cdef Py_ssize_t channel_stride = g.out_d * out_plane
    cdef Py_ssize_t in_plane = g.in_h * g.in_w
    cdef Py_ssize_t in_channel_stride = g.in_d * in_plane
    cdef floating* out_block = out + ((n * g.out_channels + co0) * g.out_d + od) * out_plane
    cdef const floating* x_group = x + (n * g.in_channels + grp * g.in_per_group) * in_channel_stride
    cdef const floating* a
    cdef const floating* b
    cdef Py_ssize_t c, kd, kh, t, id, base, ih0, ih1, rows, w0, width, columns

    for c in range(cb):
        memset(out_block + c * channel_stride + oh0 * g.out_w, 0, (oh1 - oh0) * g.out_w * sizeof(floating))
    for kd in range(g.kernel_d):
        t = od + g.pad_d - kd * g.dil_d
        if t < 0 or t % g.stride_d != 0 or t / g.stride_d >= g.in_d:
            continue
        id = t / g.stride_d
        for kh in range(g.kernel_h):
            # the input rows ih with ih * sh - ph + kh * dh in [oh0, oh1)
            base = kh * g.dil_h - g.pad_h
            ih0 = max(0, ceil_div(oh0 - base, g.stride_h))
            ih1 = min(g.in_h, ceil_div(oh1 - base, g.stride_h))
            if ih0 >= ih1:
                continue
            rows = ih1 - ih0
            a = packed + ((grp * g.kernel_d + kd) * g.kernel_h + kh) * g.slab_size + block * g.block_size
            b = x_group + id * in_plane + ih0 * g.in_w
            if rows > 1:
                # whole input rows: one GEMM over rows * in_w contiguous columns
                columns = rows * g.in_w
                gemm_prepacked(m, columns, k, a, b, in_channel_stride, col, columns, False, workspace)
                col2im_rows(col, columns, cb, rows, ih0, 0, g.in_w, kh, out_block, channel_stride, g)
            else:
                w0 = 0
                while w0 < g.in_w:
                    width = min(g.width_tile, g.in_w - w0)
                    gemm_prepacked(m, width, k, a, b + w0, in_channel_stride, col, width, False, workspace)
                    col2im_rows(col, width, cb, 1, ih0, w0, width, kh, out_block, channel_stride, g)
                    w0 += width
    if not epilogue_is_identity(ep):
        for c in range(cb):
            epilogue_row(ep, out, ((n * g.out_channels + co0 + c) * g.out_d + od) * out_plane + oh0 * g.out_w,
                         (oh1 - oh0) * g.out_w, co0 + c)


def conv_transpose_gemm_forward(const floating[:, :, :, :, ::1] input, const floating[::1] packed,
                                floating[:, :, :, :, ::1] output, kernel_size, stride, padding, dilation,
                                Py_ssize_t groups, Py_ssize_t co_block, Py_ssize_t band, Py_ssize_t width_tile,
                                const floating[::1] scale, const floating[::1] shift,
                                const floating[::1] residual, int activation, double p0, double p1, double p2,
                                int num_threads):
    """Transposed convolution of 5-D arrays by GEMM + col2im, written into ``output``.

    input (N, C_in, D, H, W); packed: the weights (C_in, C_out / groups, kD, kH, kW) packed by
    pack_weights with the same groups and co_block; output (N, C_out, OD, OH, OW) allocated by
    the caller with OD = (D - 1) * sD - 2 pD + dD (kD - 1) + output_padding + 1 (likewise OH,
    OW).  kernel_size, stride, padding, dilation: 3-tuples (d, h, w).  band: output rows per
    task (>= 1); width_tile: input columns per GEMM when a GEMM reads one input row (>= 1).
    Then the epilogue (scale, shift: (C_out,) or empty; residual: output.size elements in the
    output's layout, or empty; activation and its parameters, see epilogue.pxd).  All
    C-contiguous, one dtype, arguments validated by the caller.  Every output element is written.
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
    g.width_tile = width_tile
    # a GEMM reads at most ceil(band / sh) input rows (whole), or one row in width tiles
    cdef Py_ssize_t max_rows = ceil_div(band, g.stride_h)
    g.max_columns = max_rows * g.in_w if max_rows > 1 else min(g.in_w, width_tile)

    cdef Py_ssize_t batch = output.shape[0]
    cdef Py_ssize_t tasks = batch * groups * g.co_blocks * g.out_d * g.bands
    if tasks == 0 or g.out_w == 0:
        return
    cdef Epilogue ep = epilogue_init(&scale[0] if scale.shape[0] else NULL,
                                     &shift[0] if shift.shape[0] else NULL,
                                     &residual[0] if residual.shape[0] else NULL,
                                     activation, p0, p1, p2)
    cdef Py_ssize_t m_max = co_block * g.kernel_w
    cdef Py_ssize_t col_bytes = round_up(m_max * g.max_columns * sizeof(floating), ALIGN)
    cdef Py_ssize_t per_thread = col_bytes + round_up(gemm_workspace_size(m_max, g.max_columns, g.in_per_group),
                                                      ALIGN)
    num_threads = <int>max(1, min(<Py_ssize_t>num_threads, tasks))
    cdef char* scratch = <char*>malloc(per_thread * num_threads + ALIGN)
    if scratch == NULL:
        raise MemoryError()
    cdef char* aligned = <char*>(round_up(<size_t>scratch, ALIGN))
    cdef const floating* x = &input[0, 0, 0, 0, 0]
    cdef const floating* w = &packed[0]
    cdef floating* out = &output[0, 0, 0, 0, 0]
    cdef char* mine
    cdef Py_ssize_t task
    for task in prange(tasks, nogil=True, schedule='static', num_threads=num_threads):
        mine = aligned + threadid() * per_thread
        run_task(task, x, w, out, &g, &ep, <floating*>mine, mine + col_bytes)
    free(scratch)
