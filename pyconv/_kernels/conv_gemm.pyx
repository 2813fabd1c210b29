"""GEMM convolution: convolutions as products of packed weights and input patches.

Every convolution is seen as 3-D (N, C, D, H, W), as in the direct kernel.
For image n and group g, with P = OD * OH * OW output positions and
K = Cg * KD * KH * KW (Cg input channels per group):

    output[n, g] (Mg x P) = weight[g] (Mg x K) @ patches[n, g] (K x P)

Row (c, kd, kh, kw) of the patch matrix holds, for each output position, the
input value that kernel tap meets there (zero in the padding), the layout of
the weight's flattened rows.  The patches are never built for a whole image:
a task builds the K x cols block of one block of output columns in a
per-thread buffer sized for L2 (im2col), then multiplies it with the weights,
packed once by pack_weight (gemm_pack_a / gemm_prepacked of gemm.pxd).  A
pointwise convolution (1x1x1, stride 1, no padding) needs no patches: its
patch matrix is the input itself, read in place.  Padding zeros are real
zeros in the patches, so 0 * inf gives nan exactly where torch's does.

Work split: tasks (n, group, column block, output-channel block), dealt to
the threads in contiguous ranges that depend only on the task and thread
counts; a thread reuses its patch block across consecutive channel blocks.
Each output element is computed by one GEMM call in a fixed order, so the
bits do not depend on the thread count.  The fused epilogue (epilogue.pxd)
finishes each output row piece right after its GEMM, while it is in cache.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_is_identity, epilogue_row
from pyconv._kernels.gemm cimport gemm_pack_a, gemm_packed_a_size, gemm_prepacked, gemm_workspace_size

cdef enum:
    ALIGN = 64


cdef struct Geometry:
    Py_ssize_t channels                        # input channels per group
    Py_ssize_t in_d, in_h, in_w
    Py_ssize_t k_d, k_h, k_w
    Py_ssize_t out_d, out_h, out_w
    Py_ssize_t stride_d, stride_h, stride_w
    Py_ssize_t pad_d, pad_h, pad_w             # zeros before (front / top / left)
    Py_ssize_t dil_d, dil_h, dil_w


cdef struct Plan:
    # What every task needs; pointers are void so one struct serves both dtypes.
    Geometry g
    const void* input                          # (N, C, D, H, W)
    const void* packed                         # pack_weight's layout
    void* output                               # (N, M, OD, OH, OW)
    const Py_ssize_t* col_start                # per kw: first output column reading inside the input
    const Py_ssize_t* col_stop                 # per kw: one past the last
    Py_ssize_t groups, out_per_group, out_channels
    Py_ssize_t patch_rows                      # K
    Py_ssize_t positions                       # P
    Py_ssize_t block                           # output channels per packed block
    Py_ssize_t blocks                          # packed blocks per group
    Py_ssize_t packed_block_size               # elements per packed block
    Py_ssize_t columns                         # output columns per task
    Py_ssize_t column_blocks
    Py_ssize_t tasks
    bint in_place                              # pointwise: patches = input
    Py_ssize_t scratch_bytes                   # per thread: patch block + GEMM workspace
    Py_ssize_t patch_bytes


cdef inline Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t multiple) noexcept nogil:
    return (x + multiple - 1) // multiple * multiple


cdef void build_patches(const floating* x_group, floating* patch, Py_ssize_t col0, Py_ssize_t cols,
                        const Plan* plan) noexcept nogil:
    """patch[r, 0:cols] = row r of the patch matrix for output columns col0 .. col0 + cols - 1.

    x_group: input[n, group's first channel].  Rows run over (c, kd, kh, kw);
    each is filled output row segment by output row segment: zeros where the
    tap reads padding, else a (strided) copy of a piece of one input row.
    """
    cdef const Geometry* g = &plan.g
    cdef Py_ssize_t channel_size = g.in_d * g.in_h * g.in_w
    cdef Py_ssize_t c, kd, kh, kw, od, oh, ow, id_, ih, seg, remaining, lo, hi, i, step = g.stride_w
    cdef Py_ssize_t od0 = col0 // (g.out_h * g.out_w), oh0 = col0 // g.out_w % g.out_h, ow0 = col0 % g.out_w
    cdef floating* dst = patch
    cdef const floating* src
    for c in range(g.channels):
        for kd in range(g.k_d):
            for kh in range(g.k_h):
                for kw in range(g.k_w):
                    od = od0
                    oh = oh0
                    ow = ow0
                    remaining = cols
                    while remaining > 0:
                        seg = min(g.out_w - ow, remaining)
                        id_ = od * g.stride_d + kd * g.dil_d - g.pad_d
                        ih = oh * g.stride_h + kh * g.dil_h - g.pad_h
                        if id_ < 0 or id_ >= g.in_d or ih < 0 or ih >= g.in_h:
                            memset(dst, 0, seg * sizeof(floating))
                        else:
                            # dst[j] is output column ow + j; it reads the input where
                            # col_start[kw] <= ow + j < col_stop[kw].
                            lo = min(max(plan.col_start[kw] - ow, 0), seg)
                            hi = max(min(plan.col_stop[kw] - ow, seg), lo)
                            for i in range(lo):
                                dst[i] = 0
                            src = (x_group + c * channel_size + (id_ * g.in_h + ih) * g.in_w
                                   + ow * step + kw * g.dil_w - g.pad_w)
                            if step == 1:
                                for i in range(lo, hi):
                                    dst[i] = src[i]
                            else:
                                for i in range(lo, hi):
                                    dst[i] = src[i * step]
                            for i in range(hi, seg):
                                dst[i] = 0
                        dst += seg
                        remaining -= seg
                        ow = 0
                        oh += 1
                        if oh == g.out_h:
                            oh = 0
                            od += 1


cdef void run_tasks(const Plan* plan, const Epilogue* ep, Py_ssize_t first, Py_ssize_t last,
                    char* scratch, const floating* tag) noexcept nogil:
    """Tasks first .. last - 1 (one thread).  Task order: n, group, column block, channel block."""
    cdef const Geometry* g = &plan.g
    cdef const floating* x = <const floating*>plan.input
    cdef const floating* packed = <const floating*>plan.packed
    cdef floating* y = <floating*>plan.output
    cdef floating* patch = <floating*>scratch
    cdef void* workspace = scratch + plan.patch_bytes
    cdef bint finish = not epilogue_is_identity(ep)
    cdef Py_ssize_t channel_size = g.in_d * g.in_h * g.in_w
    cdef Py_ssize_t task, rest, block, column_block, group, n, col0, cols, co, rows, r, offset
    cdef Py_ssize_t built = -1                 # (n, group, column block) whose patches are in `patch`
    cdef const floating* x_group
    cdef const floating* b
    cdef Py_ssize_t ldb
    for task in range(first, last):
        block = task % plan.blocks
        rest = task // plan.blocks
        column_block = rest % plan.column_blocks
        rest = rest // plan.column_blocks
        group = rest % plan.groups
        n = rest // plan.groups
        col0 = column_block * plan.columns
        cols = min(plan.columns, plan.positions - col0)
        x_group = x + (n * plan.groups + group) * g.channels * channel_size
        if plan.in_place:
            b = x_group + col0
            ldb = plan.positions
        else:
            if built != rest * plan.column_blocks + column_block:
                build_patches(x_group, patch, col0, cols, plan)
                built = rest * plan.column_blocks + column_block
            b = patch
            ldb = cols
        co = group * plan.out_per_group + block * plan.block
        rows = min(plan.block, plan.out_per_group - block * plan.block)
        offset = (n * plan.out_channels + co) * plan.positions + col0
        gemm_prepacked(rows, cols, plan.patch_rows,
                       packed + (group * plan.blocks + block) * plan.packed_block_size,
                       b, ldb, y + offset, plan.positions, False, workspace)
        if finish:
            for r in range(rows):
                epilogue_row(ep, y, offset + r * plan.positions, cols, co + r)


def packed_weight_size(Py_ssize_t groups, Py_ssize_t out_per_group, Py_ssize_t patch_rows, Py_ssize_t block):
    """Elements pack_weight writes: groups * ceil(out_per_group / block) packed (block x patch_rows) blocks."""
    return groups * ((out_per_group + block - 1) // block) * gemm_packed_a_size(block, patch_rows)


def pack_weight(const floating[:, ::1] weight, Py_ssize_t groups, Py_ssize_t block, floating[::1] packed):
    """Pack weight (M, K) = (out_channels, in_channels/groups * kernel volume) for conv_gemm.

    Each group's rows are cut into blocks of ``block`` output channels (the
    last may be shorter); each block is packed by gemm_pack_a at offset
    (group * blocks + b) * gemm_packed_a_size(block, K).  ``packed`` has
    packed_weight_size(groups, M // groups, K, block) elements (allocated by
    the caller).  Not checked: groups divides M, block >= 1.
    """
    cdef Py_ssize_t out_per_group = weight.shape[0] // groups, k = weight.shape[1]
    cdef Py_ssize_t blocks = (out_per_group + block - 1) // block
    cdef Py_ssize_t size = gemm_packed_a_size(block, k), group, b, co
    with nogil:
        for group in range(groups):
            for b in range(blocks):
                co = group * out_per_group + b * block
                gemm_pack_a(min(block, out_per_group - b * block), k, &weight[co, 0], k,
                            &packed[(group * blocks + b) * size])


def conv_gemm(const floating[:, :, :, :, ::1] input, const floating[::1] packed,
              floating[:, :, :, :, ::1] output, kernel_size, stride, padding, dilation,
              Py_ssize_t groups, Py_ssize_t block, Py_ssize_t columns,
              const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
              int activation, double p0, double p1, double p2, int num_threads):
    """output = epilogue(conv3d(input, weight)) with weight packed by pack_weight(..., block).

    input (N, C, D, H, W), output (N, M, OD, OH, OW): C-contiguous, one dtype;
    output allocated by the caller with torch's sizes.  kernel_size, stride,
    padding (zeros before; zeros after only lengthen the output, which the
    output sizes include), dilation: 3 ints each, (D, H, W) order.  block:
    the one given to pack_weight; columns: output positions per task (the
    patch block is K x columns).  Epilogue arguments as in epilogue.pxd
    (empty arrays = absent).  Nothing is checked here.
    """
    cdef Plan plan
    cdef Geometry* g = &plan.g
    g.channels = input.shape[1] // groups
    g.in_d, g.in_h, g.in_w = input.shape[2], input.shape[3], input.shape[4]
    g.k_d, g.k_h, g.k_w = kernel_size
    g.out_d, g.out_h, g.out_w = output.shape[2], output.shape[3], output.shape[4]
    g.stride_d, g.stride_h, g.stride_w = stride
    g.pad_d, g.pad_h, g.pad_w = padding
    g.dil_d, g.dil_h, g.dil_w = dilation
    plan.groups = groups
    plan.out_channels = output.shape[1]
    plan.out_per_group = plan.out_channels // groups
    plan.patch_rows = g.channels * g.k_d * g.k_h * g.k_w
    plan.positions = g.out_d * g.out_h * g.out_w
    plan.block = block
    plan.blocks = (plan.out_per_group + block - 1) // block
    plan.packed_block_size = gemm_packed_a_size(block, plan.patch_rows)
    plan.columns = min(columns, plan.positions)
    plan.column_blocks = (plan.positions + plan.columns - 1) // plan.columns
    plan.tasks = input.shape[0] * groups * plan.column_blocks * plan.blocks
    plan.in_place = (g.k_d == 1 and g.k_h == 1 and g.k_w == 1 and g.stride_d == 1 and g.stride_h == 1
                     and g.stride_w == 1 and g.pad_d == 0 and g.pad_h == 0 and g.pad_w == 0)
    if plan.tasks == 0:
        return
    plan.patch_bytes = 0 if plan.in_place else round_up(plan.patch_rows * plan.columns * sizeof(floating), ALIGN)
    plan.scratch_bytes = plan.patch_bytes + round_up(
        gemm_workspace_size(min(block, plan.out_per_group), plan.columns, plan.patch_rows), ALIGN)

    # Output columns tap kw reads inside the input: 0 <= ow * stride_w + kw * dil_w - pad_w < in_w.
    cdef Py_ssize_t* col_range = <Py_ssize_t*>malloc(2 * g.k_w * sizeof(Py_ssize_t))
    if col_range == NULL:
        raise MemoryError()
    cdef Py_ssize_t kw, lowest, highest
    for kw in range(g.k_w):
        lowest = g.pad_w - kw * g.dil_w
        highest = g.in_w - 1 + g.pad_w - kw * g.dil_w
        col_range[kw] = 0 if lowest <= 0 else (lowest + g.stride_w - 1) // g.stride_w
        col_range[g.k_w + kw] = 0 if highest < 0 else min(g.out_w, highest // g.stride_w + 1)
    plan.col_start = col_range
    plan.col_stop = col_range + g.k_w
    plan.input = &input[0, 0, 0, 0, 0]
    plan.packed = &packed[0]
    plan.output = &output[0, 0, 0, 0, 0]

    cdef Epilogue ep = epilogue_init(
        &scale[0] if scale.shape[0] > 0 else NULL,
        &shift[0] if shift.shape[0] > 0 else NULL,
        &residual[0] if residual.shape[0] > 0 else NULL,
        activation, p0, p1, p2)
    cdef Py_ssize_t threads = max(1, min(<Py_ssize_t>num_threads, plan.tasks)), t
    cdef char* scratch = <char*>malloc(plan.scratch_bytes * threads + ALIGN)
    if scratch == NULL:
        free(col_range)
        raise MemoryError()
    cdef char* aligned = <char*>round_up(<Py_ssize_t>scratch, ALIGN)
    with nogil:
        # One iteration per thread, each over a fixed contiguous range of tasks.
        for t in prange(threads, schedule="static", chunksize=1, num_threads=threads):
            run_tasks(&plan, &ep, t * plan.tasks // threads, (t + 1) * plan.tasks // threads,
                      aligned + t * plan.scratch_bytes, <const floating*>NULL)
    free(scratch)
    free(col_range)
