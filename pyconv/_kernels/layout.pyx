"""Layout kernels: pixel shuffles move pixels between channels and space.

``pixel_shuffle`` / ``pixel_unshuffle`` (sub-pixel rearrangement) write one
output row per task of parallel.pxd's parallel_for, so one thread owns each
output row.  The Python layer validates the arguments and allocates the
outputs.
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
