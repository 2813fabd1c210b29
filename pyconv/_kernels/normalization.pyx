"""Normalisation kernels: batch norm (inference, per-channel affine), group norm and layer norm.

Group and layer norm accumulate each row's mean and biased variance in double,
in two passes (mean, then the sum of squared deviations), so float32 results
are as accurate as float32 can hold.  One row is one task of parallel.pxd's
parallel_for.
"""
from cython cimport floating
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

from pyconv._kernels.activation cimport ACT_IDENTITY, activation_row
from pyconv._kernels.parallel cimport parallel_for


cdef struct Job:
    # One channel_affine, group_norm or layer_norm call, for parallel_for.
    bint double_precision
    const void* x                   # group_norm, layer_norm: the input
    const void* scale               # channel_affine: scale; group/layer norm: weight
    const void* shift               # channel_affine: shift; group/layer norm: bias
    void* out
    Py_ssize_t channels, inner      # channel_affine, group_norm: (N, channels, inner)
    const char** sources            # channel_affine: per channel, its plane of image 0
    Py_ssize_t* source_steps        # and the bytes from one image's plane to the next's
    Py_ssize_t num_groups           # group_norm
    Py_ssize_t length               # layer_norm: row length
    double eps
    int activation                  # channel_affine: ACT_* of activation.pxd, with p0, p1, p2
    double p0, p1, p2


cdef void _affine_plane(const Job* job, const floating* scale, const floating* shift, floating* out,
                        Py_ssize_t plane) noexcept nogil:
    # Plane (n, c) of channel_affine: the affine, then the activation while the plane is in cache.
    cdef Py_ssize_t c = plane % job.channels, i, inner = job.inner
    cdef floating channel_scale = scale[c], channel_shift = shift[c]
    cdef const floating* x = <const floating*>(job.sources[c] + plane // job.channels * job.source_steps[c])
    out = out + plane * inner
    for i in range(inner):
        out[i] = x[i] * channel_scale + channel_shift
    if job.activation != ACT_IDENTITY:
        activation_row(out, out, inner, job.activation, job.p0, job.p1, job.p2)


cdef void _affine_task(void* context, Py_ssize_t plane, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _affine_plane(job, <const double*>job.scale, <const double*>job.shift, <double*>job.out, plane)
    else:
        _affine_plane(job, <const float*>job.scale, <const float*>job.shift, <float*>job.out, plane)


def channel_affine(const floating[:, :, ::1] x, const floating[::1] scale, const floating[::1] shift,
                   floating[:, :, ::1] out, int num_threads, int activation=ACT_IDENTITY, double p0=0,
                   double p1=0, double p2=0):
    """out[n, c, i] = act(x[n, c, i] * scale[c] + shift[c]) (batch norm with running statistics folded in,
    and the activation that follows it fused: ACT_* and its parameters as in activation.pxd).

    x and out: (N, C, inner) C-contiguous, allocated by the caller (out may be x); scale, shift: (C,).
    One task per (n, c) plane; the same bits as the affine, then activation_row.
    """
    _affine("channel_affine", [x], scale, shift, out, num_threads, activation, p0, p1, p2)


def cat_channel_affine(list inputs, const floating[::1] scale, const floating[::1] shift,
                       floating[:, :, ::1] out, int num_threads, int activation=ACT_IDENTITY, double p0=0,
                       double p1=0, double p2=0):
    """channel_affine of the concatenation of ``inputs`` along dim 1, without forming it: the same bits
    as concatenating, then channel_affine.

    inputs: (N, C_k, inner) C-contiguous arrays of out's dtype, their C_k summing to out's C (checked);
    out: (N, C, inner) C-contiguous, not overlapping any input (but it may be the only input: each
    plane is read, then written, by one task).  One task per (n, c) plane.
    """
    _affine("cat_channel_affine", inputs, scale, shift, out, num_threads, activation, p0, p1, p2)


cdef _affine(str op, list inputs, const floating[::1] scale, const floating[::1] shift, floating[:, :, ::1] out,
             int num_threads, int activation, double p0, double p1, double p2):
    # Both calls above: every (n, c) plane read from its input through a per-channel table.
    cdef Py_ssize_t batch = out.shape[0], channels = out.shape[1], inner = out.shape[2]
    cdef Py_ssize_t c = 0, k
    cdef const floating[:, :, ::1] piece
    for piece in inputs:
        if piece.shape[0] != batch or piece.shape[2] != inner:
            raise ValueError(f"{op}: expected inputs of out's shape ({batch}, C, {inner}), "
                             f"got ({piece.shape[0]}, {piece.shape[1]}, {piece.shape[2]})")
        c += piece.shape[1]
    if c != channels or scale.shape[0] != channels or shift.shape[0] != channels:
        raise ValueError(f"{op}: the inputs' channels, scale and shift must add up to out's {channels} channels")
    c = 0
    if batch == 0 or channels == 0 or inner == 0:
        return
    cdef Job job
    job.sources = <const char**>malloc(channels * sizeof(const char*))
    job.source_steps = <Py_ssize_t*>malloc(channels * sizeof(Py_ssize_t))
    try:
        if job.sources == NULL or job.source_steps == NULL:
            raise MemoryError()
        for piece in inputs:
            for k in range(piece.shape[1]):
                job.sources[c] = <const char*>&piece[0, k, 0]
                job.source_steps[c] = piece.shape[1] * inner * sizeof(floating)
                c += 1
        job.double_precision = floating is double
        job.scale = &scale[0]
        job.shift = &shift[0]
        job.out = &out[0, 0, 0]
        job.channels = channels
        job.inner = inner
        job.activation = activation
        job.p0, job.p1, job.p2 = p0, p1, p2
        with nogil:
            parallel_for(_affine_task, &job, batch * channels, num_threads)
    finally:
        free(job.sources)
        free(job.source_steps)


# Sums use LANES independent partial sums (element i goes to partial i % LANES, the partials
# are added in a fixed order), which lets the compiler vectorise the loop without reassociating
# anything: the result is the same on every run and thread count.
cdef enum:
    LANES = 8


cdef double _row_mean(const floating* row, Py_ssize_t length) noexcept nogil:
    cdef Py_ssize_t i, block, lane, full = length - length % LANES
    cdef double partial[LANES]
    cdef double total = 0.0
    for lane in range(LANES):
        partial[lane] = 0.0
    for block in range(full // LANES):
        i = block * LANES
        for lane in range(LANES):
            partial[lane] += row[i + lane]
    for i in range(full, length):
        total += row[i]
    for lane in range(LANES):
        total += partial[lane]
    return total / length


cdef double _row_rstd(const floating* row, Py_ssize_t length, double mean, double eps) noexcept nogil:
    # 1 / sqrt(biased variance + eps), the variance from squared deviations about ``mean``.
    cdef Py_ssize_t i, block, lane, full = length - length % LANES
    cdef double partial[LANES]
    cdef double squares = 0.0, deviation
    for lane in range(LANES):
        partial[lane] = 0.0
    for block in range(full // LANES):
        i = block * LANES
        for lane in range(LANES):
            deviation = row[i + lane] - mean
            partial[lane] += deviation * deviation
    for i in range(full, length):
        deviation = row[i] - mean
        squares += deviation * deviation
    for lane in range(LANES):
        squares += partial[lane]
    return 1.0 / sqrt(squares / length + eps)


cdef void _group_norm_row(const floating* x, const floating* weight, const floating* bias, floating* out,
                          Py_ssize_t row, const Job* job) noexcept nogil:
    # Row (n, group) of group_norm: channels g * group_channels .. of image n.
    cdef Py_ssize_t group_channels = job.channels // job.num_groups, inner = job.inner
    cdef Py_ssize_t g = row % job.num_groups, c, i
    cdef Py_ssize_t start = row * group_channels * inner
    cdef double mean, rstd, channel_scale, channel_shift
    x = x + start
    out = out + start
    mean = _row_mean(x, group_channels * inner)
    rstd = _row_rstd(x, group_channels * inner, mean, job.eps)
    for c in range(g * group_channels, (g + 1) * group_channels):
        channel_scale = rstd * weight[c]
        channel_shift = bias[c] - mean * channel_scale
        for i in range(inner):
            out[i] = <floating>(x[i] * channel_scale + channel_shift)
        x = x + inner
        out = out + inner


cdef void _group_norm_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _group_norm_row(<const double*>job.x, <const double*>job.scale, <const double*>job.shift,
                        <double*>job.out, row, job)
    else:
        _group_norm_row(<const float*>job.x, <const float*>job.scale, <const float*>job.shift,
                        <float*>job.out, row, job)


cdef void _layer_norm_row(const floating* x, const floating* weight, const floating* bias, floating* out,
                          Py_ssize_t length, double eps) noexcept nogil:
    # One row of layer_norm (x and out point at its start).
    cdef Py_ssize_t j
    cdef double mean = _row_mean(x, length)
    cdef double rstd = _row_rstd(x, length, mean, eps)
    for j in range(length):
        out[j] = <floating>((x[j] - mean) * rstd * weight[j] + bias[j])


cdef void _layer_norm_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef Py_ssize_t start = row * job.length
    if job.double_precision:
        _layer_norm_row(<const double*>job.x + start, <const double*>job.scale, <const double*>job.shift,
                        <double*>job.out + start, job.length, job.eps)
    else:
        _layer_norm_row(<const float*>job.x + start, <const float*>job.scale, <const float*>job.shift,
                        <float*>job.out + start, job.length, job.eps)


def group_norm(const floating[:, :, ::1] x, Py_ssize_t num_groups, const floating[::1] weight,
               const floating[::1] bias, double eps, floating[:, :, ::1] out, int num_threads):
    """Group norm of x: (N, C, inner) C-contiguous, C divisible by num_groups, C * inner >= 1.

    weight, bias: (C,) (the caller passes ones/zeros when torch's are None); out like x,
    allocated by the caller.  Task: one (n, group) row of (C / num_groups) * inner elements.
    """
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Job job
    if batch == 0 or channels == 0 or inner == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0]
    job.scale = &weight[0]
    job.shift = &bias[0]
    job.out = &out[0, 0, 0]
    job.channels = channels
    job.inner = inner
    job.num_groups = num_groups
    job.eps = eps
    with nogil:
        parallel_for(_group_norm_task, &job, batch * num_groups, num_threads)


def layer_norm(const floating[:, ::1] x, const floating[::1] weight, const floating[::1] bias, double eps,
               floating[:, ::1] out, int num_threads):
    """Layer norm of each row of x: (rows, length) C-contiguous, length >= 1.

    out[r, j] = (x[r, j] - mean_r) * rstd_r * weight[j] + bias[j]; weight, bias: (length,)
    (ones/zeros when torch's are None); out like x, allocated by the caller.  One row per task.
    """
    cdef Py_ssize_t rows = x.shape[0], length = x.shape[1]
    cdef Job job
    if rows == 0 or length == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0]
    job.scale = &weight[0]
    job.shift = &bias[0]
    job.out = &out[0, 0]
    job.length = length
    job.eps = eps
    with nogil:
        parallel_for(_layer_norm_task, &job, rows, num_threads)
