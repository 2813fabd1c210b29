"""Direct convolution: the reference algorithm the fast ones are tested against.

One kernel serves conv1d, conv2d and conv3d: everything is seen as 3-D
(N, C, D, H, W); a 2-D convolution has D = 1, a 1-D one D = H = 1.

Work split: one task per output row ``output[n, co:co + 4, od, oh, :]`` of a
block of up to 4 output channels of one group (so each input value loaded
feeds 4 multiply-adds), tasks run by parallel.pxd's ``parallel_for``.
A task sums, in a fixed order, over the group's input channels, then kd, kh,
kw; for each tap it adds ``weight * input_row`` to the block's output rows.
The innermost loop runs over contiguous output columns with the weights as
scalars, so it vectorises; the columns a tap may touch without reading
padding are computed once per call, so padding costs no branch in that loop.
Every output element is summed by one thread in one order: the bits do not
depend on the thread count.
"""
import numpy as np

from cython cimport floating

from pyconv._kernels.parallel cimport parallel_for

cdef enum:
    BLOCK = 4    # output channels computed together by one task (_add_scaled_row_4)


cdef struct Geometry:
    Py_ssize_t in_channels_per_group
    Py_ssize_t in_depth, in_height, in_width
    Py_ssize_t kernel_depth, kernel_height, kernel_width
    Py_ssize_t out_width
    Py_ssize_t out_channel_size               # out_depth * out_height * out_width
    # per spatial dimension (depth, height, width)
    Py_ssize_t stride_d, stride_h, stride_w
    Py_ssize_t pad_d, pad_h, pad_w            # zeros before (front / top / left)
    Py_ssize_t dilation_d, dilation_h, dilation_w


cdef inline void _add_scaled_row(floating* out, const floating* x, floating w,
                                 Py_ssize_t count, Py_ssize_t step) noexcept nogil:
    """out[i] += w * x[i * step] for i < count (a separate unit-step loop so it vectorises)."""
    cdef Py_ssize_t i
    if step == 1:
        for i in range(count):
            out[i] += w * x[i]
    else:
        for i in range(count):
            out[i] += w * x[i * step]


cdef inline void _add_scaled_row_4(floating* out, Py_ssize_t out_stride, const floating* x,
                                   const floating* w, Py_ssize_t w_stride,
                                   Py_ssize_t count, Py_ssize_t step) noexcept nogil:
    """_add_scaled_row for 4 output rows (out + b * out_stride) and weights (w[b * w_stride]) at once."""
    cdef floating* out0 = out
    cdef floating* out1 = out + out_stride
    cdef floating* out2 = out + 2 * out_stride
    cdef floating* out3 = out + 3 * out_stride
    cdef floating w0 = w[0], w1 = w[w_stride], w2 = w[2 * w_stride], w3 = w[3 * w_stride]
    cdef floating xi
    cdef Py_ssize_t i
    if step == 1:
        for i in range(count):
            xi = x[i]
            out0[i] += w0 * xi
            out1[i] += w1 * xi
            out2[i] += w2 * xi
            out3[i] += w3 * xi
    else:
        for i in range(count):
            xi = x[i * step]
            out0[i] += w0 * xi
            out1[i] += w1 * xi
            out2[i] += w2 * xi
            out3[i] += w3 * xi


cdef void _output_rows(const floating* x_group, const floating* w_block, floating* y_block,
                       Py_ssize_t block, Py_ssize_t od, Py_ssize_t oh, const Geometry* g,
                       const Py_ssize_t* col_start, const Py_ssize_t* col_stop) noexcept nogil:
    """Overwrite output row (od, oh) of ``block`` (1 to 4) consecutive output channels with their sums.

    x_group: input[n, group's first channel]; w_block: weight[co]; y_block: output[n, co, od, oh].
    Tap kw reads inside the input for output columns col_start[kw] <= ow < col_stop[kw].
    """
    cdef Py_ssize_t x_channel_size = g.in_depth * g.in_height * g.in_width
    cdef Py_ssize_t w_channel_size = g.kernel_depth * g.kernel_height * g.kernel_width
    cdef Py_ssize_t w_out_size = g.in_channels_per_group * w_channel_size
    cdef Py_ssize_t y_stride = g.out_channel_size
    cdef Py_ssize_t c, kd, kh, kw, id_, ih, ow, b, start, count
    cdef const floating* x_row
    cdef const floating* x_tap
    cdef const floating* w_row

    for b in range(block):
        for ow in range(g.out_width):
            y_block[b * y_stride + ow] = 0
    for c in range(g.in_channels_per_group):
        for kd in range(g.kernel_depth):
            id_ = od * g.stride_d + kd * g.dilation_d - g.pad_d
            if id_ < 0 or id_ >= g.in_depth:
                continue
            for kh in range(g.kernel_height):
                ih = oh * g.stride_h + kh * g.dilation_h - g.pad_h
                if ih < 0 or ih >= g.in_height:
                    continue
                x_row = x_group + c * x_channel_size + (id_ * g.in_height + ih) * g.in_width
                w_row = w_block + c * w_channel_size + (kd * g.kernel_height + kh) * g.kernel_width
                for kw in range(g.kernel_width):
                    start = col_start[kw]
                    count = col_stop[kw] - start
                    if count <= 0:
                        continue
                    x_tap = x_row + start * g.stride_w + kw * g.dilation_w - g.pad_w
                    if block == BLOCK:
                        _add_scaled_row_4(y_block + start, y_stride, x_tap, w_row + kw, w_out_size,
                                          count, g.stride_w)
                    else:
                        for b in range(block):
                            _add_scaled_row(y_block + b * y_stride + start, x_tap,
                                            w_row[b * w_out_size + kw], count, g.stride_w)


cdef struct Job:
    # One conv3d_direct call, for parallel_for (sizes as in conv3d_direct).
    const Geometry* g
    bint double_precision
    const void* x
    const void* w
    const void* bias                # NULL: no bias
    void* y
    const Py_ssize_t* col_start
    const Py_ssize_t* col_stop
    Py_ssize_t groups, out_channels, out_depth, out_height, out_per_group, blocks_per_group
    Py_ssize_t x_group_size, w_out_size


cdef void _run_task(const floating* x, const floating* w, const floating* bias, floating* y,
                    Py_ssize_t task, const Job* job) noexcept nogil:
    # Task (n, group, channel block, od, oh): output rows of up to BLOCK channels, then their bias.
    cdef const Geometry* g = job.g
    cdef Py_ssize_t oh = task % job.out_height
    cdef Py_ssize_t rest = task // job.out_height
    cdef Py_ssize_t od = rest % job.out_depth
    cdef Py_ssize_t co, group, n, block, b, ow
    cdef floating* y_block
    rest = rest // job.out_depth
    co = (rest % job.blocks_per_group) * BLOCK          # within the group
    rest = rest // job.blocks_per_group
    group = rest % job.groups
    n = rest // job.groups
    block = min(BLOCK, job.out_per_group - co)
    co = co + group * job.out_per_group
    y_block = y + (n * job.out_channels + co) * g.out_channel_size + (od * job.out_height + oh) * g.out_width
    _output_rows(x + (n * job.groups + group) * job.x_group_size, w + co * job.w_out_size, y_block,
                 block, od, oh, g, job.col_start, job.col_stop)
    if bias != NULL:
        for b in range(block):
            for ow in range(g.out_width):
                y_block[b * g.out_channel_size + ow] = y_block[b * g.out_channel_size + ow] + bias[co + b]


cdef void _task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _run_task(<const double*>job.x, <const double*>job.w, <const double*>job.bias, <double*>job.y, task, job)
    else:
        _run_task(<const float*>job.x, <const float*>job.w, <const float*>job.bias, <float*>job.y, task, job)


def conv3d_direct(const floating[:, :, :, :, ::1] input,
                  const floating[:, :, :, :, ::1] weight,
                  const floating[::1] bias,
                  floating[:, :, :, :, ::1] output,
                  stride, padding, dilation, Py_ssize_t groups, int num_threads):
    """output = conv3d(input, weight, bias), computed directly; fills ``output`` in place.

    input (N, C, D, H, W), weight (K, C // groups, KD, KH, KW), output (N, K, OD, OH, OW):
    C-contiguous, one dtype (float32 or float64); ``output`` is allocated by the caller
    with the sizes torch's formula gives.  bias: K values, or 0 values for no bias.
    stride, padding (zeros before each dimension; zeros after only lengthen the output,
    which the caller's output sizes include), dilation: 3 ints each, (D, H, W) order.
    Nothing is checked here: the caller validates (groups divides C and K, every size
    >= 1, output sizes from the formula, strides and dilations >= 1, padding >= 0).
    """
    cdef Geometry g
    g.in_channels_per_group = weight.shape[1]
    g.in_depth, g.in_height, g.in_width = input.shape[2], input.shape[3], input.shape[4]
    g.kernel_depth, g.kernel_height, g.kernel_width = weight.shape[2], weight.shape[3], weight.shape[4]
    g.out_width = output.shape[4]
    g.out_channel_size = output.shape[2] * output.shape[3] * output.shape[4]
    g.stride_d, g.stride_h, g.stride_w = stride
    g.pad_d, g.pad_h, g.pad_w = padding
    g.dilation_d, g.dilation_h, g.dilation_w = dilation

    cdef Py_ssize_t batch = input.shape[0]
    cdef Py_ssize_t out_channels = output.shape[1], out_depth = output.shape[2], out_height = output.shape[3]
    cdef Py_ssize_t out_per_group = out_channels // groups
    cdef Py_ssize_t blocks_per_group = (out_per_group + BLOCK - 1) // BLOCK
    cdef Py_ssize_t tasks = batch * groups * blocks_per_group * out_depth * out_height
    if tasks == 0 or g.out_width == 0 or weight.shape[0] == 0:
        return

    # Output columns tap kw reads inside the input: 0 <= ow * stride_w + kw * dilation_w - pad_w < in_width.
    col_start_array = np.empty(g.kernel_width, dtype=np.intp)
    col_stop_array = np.empty(g.kernel_width, dtype=np.intp)
    cdef Py_ssize_t[::1] col_start = col_start_array
    cdef Py_ssize_t[::1] col_stop = col_stop_array
    cdef Py_ssize_t kw, lowest, highest
    for kw in range(g.kernel_width):
        lowest = g.pad_w - kw * g.dilation_w                       # ow * stride_w >= lowest
        highest = g.in_width - 1 + g.pad_w - kw * g.dilation_w     # ow * stride_w <= highest
        col_start[kw] = 0 if lowest <= 0 else (lowest + g.stride_w - 1) // g.stride_w
        col_stop[kw] = 0 if highest < 0 else min(g.out_width, highest // g.stride_w + 1)

    cdef Job job
    job.g = &g
    job.double_precision = floating is double
    job.x = &input[0, 0, 0, 0, 0]
    job.w = &weight[0, 0, 0, 0, 0]
    job.bias = &bias[0] if bias.shape[0] != 0 else NULL
    job.y = &output[0, 0, 0, 0, 0]
    job.col_start = &col_start[0]
    job.col_stop = &col_stop[0]
    job.groups = groups
    job.out_channels, job.out_depth, job.out_height = out_channels, out_depth, out_height
    job.out_per_group = out_per_group
    job.blocks_per_group = blocks_per_group
    job.x_group_size = g.in_channels_per_group * g.in_depth * g.in_height * g.in_width
    job.w_out_size = weight.shape[1] * weight.shape[2] * weight.shape[3] * weight.shape[4]
    with nogil:
        parallel_for(_task, &job, tasks, num_threads)
