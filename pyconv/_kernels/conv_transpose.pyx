"""Direct transposed convolution (the gradient of conv with respect to its input).

One kernel serves 1d, 2d and 3d: the Python layer views every array as 5-D
(N, C, D, H, W), with D = H = 1 for 1d and D = 1 for 2d.

Formulation ("row gather, column scatter", no zero-stuffed input): input
position ``i`` and kernel tap ``k`` contribute to output position
``o = i * stride - padding + k * dilation`` in each spatial dimension.  Each
output row ``output[n, co, od, oh, :]`` is owned by one thread, which

* gathers the (kd, kh) taps whose input depth/row ``id, ih`` land on
  ``od, oh`` (``od + pad_d - kd * dil_d`` divisible by ``stride_d``, in range),
* and for every width tap ``kw`` adds ``w * input[n, ci, id, ih, :]`` into the
  output row at stride ``stride_w`` over the input columns whose output column
  is inside the row (the range is computed once, outside the inner loop).

An output element is summed in the fixed order (kd, kh, kw, ci) by one thread,
so the result does not depend on the thread count.  The bias is added last.
"""
from cython cimport floating

from pyconv._kernels.index_math cimport ceil_div, floor_div
from pyconv._kernels.parallel cimport parallel_for


ctypedef struct Geometry:
    Py_ssize_t in_channels, in_d, in_h, in_w
    Py_ssize_t out_channels, out_d, out_h, out_w
    Py_ssize_t kernel_d, kernel_h, kernel_w
    Py_ssize_t stride_d, stride_h, stride_w
    Py_ssize_t pad_d, pad_h, pad_w
    Py_ssize_t dil_d, dil_h, dil_w
    Py_ssize_t in_per_group, out_per_group


cdef inline Py_ssize_t source_index(Py_ssize_t o, Py_ssize_t k, Py_ssize_t stride, Py_ssize_t pad,
                                    Py_ssize_t dil, Py_ssize_t size) noexcept nogil:
    """The input index i with o = i * stride - pad + k * dil, or -1 if there is none in [0, size)."""
    cdef Py_ssize_t t = o + pad - k * dil
    if t < 0 or t % stride != 0 or t / stride >= size:
        return -1
    return t / stride


cdef void output_row(const floating* x, const floating* w, const floating* bias, bint has_bias,
                     floating* out, Py_ssize_t n, Py_ssize_t co, Py_ssize_t od, Py_ssize_t oh,
                     const Geometry* g) noexcept nogil:
    """Computes out[0:out_w] = output[n, co, od, oh, :] (see the module docstring)."""
    cdef Py_ssize_t group = co / g.out_per_group
    cdef Py_ssize_t co_in_group = co - group * g.out_per_group
    cdef Py_ssize_t taps = g.kernel_d * g.kernel_h * g.kernel_w
    cdef Py_ssize_t sw = g.stride_w
    cdef Py_ssize_t ci, kd, kh, kw, id, ih, iw, iw_start, iw_stop, column_offset, columns, j
    cdef const floating* x_start
    cdef const floating* w_tap
    cdef floating* out_start
    cdef floating tap

    for iw in range(g.out_w):
        out[iw] = 0
    for kd in range(g.kernel_d):
        id = source_index(od, kd, g.stride_d, g.pad_d, g.dil_d, g.in_d)
        if id < 0:
            continue
        for kh in range(g.kernel_h):
            ih = source_index(oh, kh, g.stride_h, g.pad_h, g.dil_h, g.in_h)
            if ih < 0:
                continue
            for kw in range(g.kernel_w):
                # input column iw lands on output column iw * sw + column_offset
                column_offset = kw * g.dil_w - g.pad_w
                iw_start = max(0, ceil_div(-column_offset, sw))
                iw_stop = min(g.in_w, floor_div(g.out_w - 1 - column_offset, sw) + 1)
                if iw_start >= iw_stop:
                    continue
                columns = iw_stop - iw_start
                out_start = out + iw_start * sw + column_offset
                w_tap = w + co_in_group * taps + (kd * g.kernel_h + kh) * g.kernel_w + kw
                for ci in range(group * g.in_per_group, (group + 1) * g.in_per_group):
                    tap = w_tap[ci * g.out_per_group * taps]
                    x_start = x + (((n * g.in_channels + ci) * g.in_d + id) * g.in_h + ih) * g.in_w + iw_start
                    if sw == 1:
                        for j in range(columns):
                            out_start[j] += tap * x_start[j]
                    else:
                        for j in range(columns):
                            out_start[j * sw] += tap * x_start[j]
    if has_bias:
        for iw in range(g.out_w):
            out[iw] += bias[co]


cdef struct Job:
    # One conv_transpose_forward call, for parallel_for: task = output row (n, co, od, oh).
    const Geometry* g
    bint double_precision
    const void* x
    const void* w
    const void* bias                # NULL: no bias
    void* out


cdef void _row_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef const Geometry* g = job.g
    cdef Py_ssize_t oh = row % g.out_h
    cdef Py_ssize_t od = (row / g.out_h) % g.out_d
    cdef Py_ssize_t rest = row / g.out_h / g.out_d
    cdef Py_ssize_t co = rest % g.out_channels
    cdef Py_ssize_t n = rest / g.out_channels
    if job.double_precision:
        output_row(<const double*>job.x, <const double*>job.w, <const double*>job.bias, job.bias != NULL,
                   <double*>job.out + row * g.out_w, n, co, od, oh, g)
    else:
        output_row(<const float*>job.x, <const float*>job.w, <const float*>job.bias, job.bias != NULL,
                   <float*>job.out + row * g.out_w, n, co, od, oh, g)


def conv_transpose_forward(const floating[:, :, :, :, ::1] input,
                           const floating[:, :, :, :, ::1] weight,
                           const floating[::1] bias,
                           floating[:, :, :, :, ::1] output,
                           stride, padding, dilation, Py_ssize_t groups, int num_threads):
    """Transposed convolution of 5-D arrays, written into ``output``.

    input (N, C_in, D, H, W), weight (C_in, C_out / groups, kD, kH, kW),
    bias (C_out,) or empty for no bias, output (N, C_out, OD, OH, OW) allocated
    by the caller with OD = (D - 1) * sD - 2 pD + dD (kD - 1) + output_padding + 1
    (likewise OH, OW).  stride, padding, dilation: 3-tuples (d, h, w).  All
    C-contiguous, one dtype, arguments validated by the caller.  One
    parallel_for task per output row (n, co, od, oh); every output element is
    written.
    """
    cdef Geometry g
    g.in_channels, g.in_d, g.in_h, g.in_w = input.shape[1], input.shape[2], input.shape[3], input.shape[4]
    g.out_channels, g.out_d, g.out_h, g.out_w = output.shape[1], output.shape[2], output.shape[3], output.shape[4]
    g.kernel_d, g.kernel_h, g.kernel_w = weight.shape[2], weight.shape[3], weight.shape[4]
    g.stride_d, g.stride_h, g.stride_w = stride
    g.pad_d, g.pad_h, g.pad_w = padding
    g.dil_d, g.dil_h, g.dil_w = dilation
    g.in_per_group = g.in_channels / groups
    g.out_per_group = weight.shape[1]
    cdef Py_ssize_t batch = output.shape[0]
    cdef Py_ssize_t rows = batch * g.out_channels * g.out_d * g.out_h
    if rows == 0 or g.out_w == 0:
        return
    cdef Job job
    job.g = &g
    job.double_precision = floating is double
    job.x = &input[0, 0, 0, 0, 0]
    job.w = &weight[0, 0, 0, 0, 0]
    job.bias = &bias[0] if bias.shape[0] > 0 else NULL
    job.out = &output[0, 0, 0, 0, 0]
    with nogil:
        parallel_for(_row_task, &job, rows, num_threads)
