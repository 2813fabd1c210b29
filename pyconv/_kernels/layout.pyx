"""Layout kernels: pixel shuffles move pixels between channels and space.

``pixel_shuffle`` / ``pixel_unshuffle`` (sub-pixel rearrangement) move them
between channels and space; ``polyphase_split`` / ``polyphase_merge`` between
the batch and space (a dilated convolution as a batch of undilated ones).
Each writes one output row per task of parallel.pxd's parallel_for, so one
thread owns each output row.  The callers validate the arguments and
allocate the outputs.
"""
from cython cimport floating

from pyconv._kernels.parallel cimport parallel_for


cdef struct Job:
    # One pixel_shuffle or pixel_unshuffle call, for parallel_for (shapes as in the def).
    bint double_precision
    const void* x
    void* out
    Py_ssize_t factor
    Py_ssize_t channels, OH          # out.shape[1], out.shape[2]
    Py_ssize_t H, W                  # x.shape[2], x.shape[3]
    Py_ssize_t OW                    # out.shape[3]


cdef void _shuffle_row(const floating* x, floating* out, Py_ssize_t row, const Job* job) noexcept nogil:
    # Output row (n, c, oh) of pixel_shuffle; x is (N, C * r * r, H, W).
    cdef Py_ssize_t factor = job.factor, W = job.W, OH = job.OH
    cdef Py_ssize_t oh = row % OH
    cdef Py_ssize_t nc = row // OH              # n * channels + c
    cdef Py_ssize_t h = oh // factor
    cdef Py_ssize_t i = oh - h * factor, j, w
    cdef const floating* source
    cdef floating* target = out + row * job.OW
    for j in range(factor):
        source = x + (((nc * factor + i) * factor + j) * job.H + h) * W
        for w in range(W):
            target[w * factor + j] = source[w]


cdef void _shuffle_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _shuffle_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _shuffle_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _unshuffle_row(const floating* x, floating* out, Py_ssize_t row, const Job* job) noexcept nogil:
    # Output row (n, oc, oh) of pixel_unshuffle; x is (N, C, H * r, W * r).
    cdef Py_ssize_t factor = job.factor, OW = job.OW, OH = job.OH
    cdef Py_ssize_t oh = row % OH
    cdef Py_ssize_t noc = row // OH             # n * channels + oc
    cdef Py_ssize_t oc = noc % job.channels
    cdef Py_ssize_t n = noc // job.channels
    cdef Py_ssize_t c = oc // (factor * factor)
    cdef Py_ssize_t i = (oc // factor) % factor
    cdef Py_ssize_t j = oc % factor, w
    cdef const floating* source = x + ((n * (job.channels // (factor * factor)) + c) * job.H
                                       + oh * factor + i) * job.W + j
    cdef floating* target = out + row * OW
    for w in range(OW):
        target[w] = source[w * factor]


cdef void _unshuffle_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _unshuffle_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _unshuffle_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _init_job(Job* job, const void* x, void* out, Py_ssize_t* x_shape, Py_ssize_t* out_shape,
                    Py_ssize_t factor) noexcept:
    job.x = x
    job.out = out
    job.factor = factor
    job.channels, job.OH, job.OW = out_shape[1], out_shape[2], out_shape[3]
    job.H, job.W = x_shape[2], x_shape[3]


def pixel_shuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, c, h * r + i, w * r + j] = x[n, (c * r + i) * r + j, h, w]`` with r = ``factor``.

    ``x``: (N, C * r * r, H, W); ``out``: (N, C, H * r, W * r), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef Job job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape, factor)
    job.double_precision = floating is double
    with nogil:
        parallel_for(_shuffle_task, &job, rows, num_threads)


def pixel_unshuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, (c * r + i) * r + j, h, w] = x[n, c, h * r + i, w * r + j]`` with r = ``factor``.

    ``x``: (N, C, H * r, W * r); ``out``: (N, C * r * r, H, W), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef Job job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape, factor)
    job.double_precision = floating is double
    with nogil:
        parallel_for(_unshuffle_task, &job, rows, num_threads)


cdef struct PolyphaseJob:
    # One polyphase_split or polyphase_merge call, for parallel_for.
    bint double_precision
    const void* x
    void* out
    Py_ssize_t dh, dw                # the phase factors (dilation)
    Py_ssize_t pad_h, pad_w          # polyphase_split: the zero padding before the input
    Py_ssize_t N, C, H, W            # the spatial image: (N, C, H, W)
    Py_ssize_t PH, PW                # each phase: (PH, PW)


cdef void _split_row(const floating* x, floating* out, Py_ssize_t row, const PolyphaseJob* job) noexcept nogil:
    # Output row ((i * dw + j) * N + n, c, ph) of polyphase_split.
    cdef Py_ssize_t PW = job.PW, W = job.W, dw = job.dw
    cdef Py_ssize_t ph = row % job.PH
    cdef Py_ssize_t rest = row // job.PH
    cdef Py_ssize_t nc = rest % (job.N * job.C)
    cdef Py_ssize_t phase = rest // (job.N * job.C)
    cdef Py_ssize_t i = phase // dw, j = phase % dw
    cdef Py_ssize_t h = ph * job.dh + i - job.pad_h, w, pw
    cdef floating* target = out + row * PW
    cdef const floating* source
    if h < 0 or h >= job.H:
        for pw in range(PW):
            target[pw] = 0
        return
    source = x + (nc * job.H + h) * W
    for pw in range(PW):
        w = pw * dw + j - job.pad_w
        target[pw] = source[w] if 0 <= w < W else 0


cdef void _split_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const PolyphaseJob* job = <const PolyphaseJob*>context
    if job.double_precision:
        _split_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _split_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _merge_row(const floating* x, floating* out, Py_ssize_t row, const PolyphaseJob* job) noexcept nogil:
    # Output row (n, c, h) of polyphase_merge.
    cdef Py_ssize_t W = job.W, dw = job.dw, NC = job.N * job.C
    cdef Py_ssize_t h = row % job.H
    cdef Py_ssize_t nc = row // job.H
    cdef Py_ssize_t i = h % job.dh, j, pw
    cdef const floating* source
    cdef floating* target = out + row * W
    for j in range(min(dw, W)):
        source = x + (((i * dw + j) * NC + nc) * job.PH + h // job.dh) * job.PW
        for pw in range((W - j + dw - 1) // dw):
            target[pw * dw + j] = source[pw]


cdef void _merge_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const PolyphaseJob* job = <const PolyphaseJob*>context
    if job.double_precision:
        _merge_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _merge_row(<const float*>job.x, <float*>job.out, row, job)


def polyphase_split(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t pad_h, Py_ssize_t pad_w,
                    Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """``out[(i * dw + j) * N + n, c, ph, pw] = xp[n, c, ph * dh + i, pw * dw + j]``, xp = ``x`` zero-padded.

    ``x``: (N, C, H, W); xp is x with ``pad_h`` / ``pad_w`` zero rows / columns
    before it and zeros past its end.  ``out``: (dh * dw * N, C, PH, PW),
    allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef PolyphaseJob job
    if rows == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x, job.out = &x[0, 0, 0, 0] if x.size else NULL, &out[0, 0, 0, 0]
    job.dh, job.dw, job.pad_h, job.pad_w = dh, dw, pad_h, pad_w
    job.N, job.C, job.H, job.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    job.PH, job.PW = out.shape[2], out.shape[3]
    with nogil:
        parallel_for(_split_task, &job, rows, num_threads)


def polyphase_merge(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t dh, Py_ssize_t dw,
                    int num_threads):
    """``out[n, c, h, w] = x[((h % dh) * dw + w % dw) * N + n, c, h // dh, w // dw]``: polyphase_split's inverse.

    ``x``: (dh * dw * N, C, PH, PW) with PH >= ceil(H / dh), PW >= ceil(W / dw);
    ``out``: (N, C, H, W), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef PolyphaseJob job
    if rows == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x, job.out = &x[0, 0, 0, 0], &out[0, 0, 0, 0]
    job.dh, job.dw, job.pad_h, job.pad_w = dh, dw, 0, 0
    job.N, job.C, job.H, job.W = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
    job.PH, job.PW = x.shape[2], x.shape[3]
    with nogil:
        parallel_for(_merge_task, &job, rows, num_threads)
