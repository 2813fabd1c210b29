"""Adaptive average and max pooling kernels for 1d/2d/3d.

The input is viewed as planes ``(P, D, H, W)`` (1d and 2d pools use D = H = 1
or D = 1) and the output as ``(P, OD, OH, OW)``.  Output ``i`` along an axis
of input length ``L`` and output length ``O`` pools the input range
``[floor(i * L / O), ceil((i + 1) * L / O))``.  One output row
``(p, od, oh)`` is one task of parallel.pxd's parallel_for, each output
element computed from its window in torch's order (depth, height, width), so
results match torch's CPU kernels bit for bit and do not depend on the thread
count.

The Python layer validates the arguments and allocates the outputs.
"""
from cython cimport floating
from libc.math cimport INFINITY
from libc.stdint cimport int64_t

from pyconv._kernels.parallel cimport parallel_for


cdef inline Py_ssize_t _start(Py_ssize_t i, Py_ssize_t length, Py_ssize_t out) noexcept nogil:
    return (i * length) // out


cdef inline Py_ssize_t _end(Py_ssize_t i, Py_ssize_t length, Py_ssize_t out) noexcept nogil:
    return ((i + 1) * length + out - 1) // out


cdef void _adaptive_avg_row(const floating* plane, floating* out, Py_ssize_t od, Py_ssize_t oh,
                            Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    """Averages of one output row: sum in order, then ``sum / kd / kh / kw`` as torch divides."""
    cdef Py_ssize_t d0 = _start(od, D, OD), d1 = _end(od, D, OD)
    cdef Py_ssize_t h0 = _start(oh, H, OH), h1 = _end(oh, H, OH)
    cdef Py_ssize_t ow, w0, w1, d, h, w
    cdef const floating* row
    cdef floating total
    for ow in range(OW):
        w0 = _start(ow, W, OW)
        w1 = _end(ow, W, OW)
        total = 0
        for d in range(d0, d1):
            for h in range(h0, h1):
                row = plane + (d * H + h) * W
                for w in range(w0, w1):
                    total = total + row[w]
        out[ow] = total / <floating>(d1 - d0) / <floating>(h1 - h0) / <floating>(w1 - w0)


cdef void _adaptive_max_row(const floating* plane, floating* out, int64_t* indices,
                            Py_ssize_t od, Py_ssize_t oh, Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    """Maxima of one output row; an element replaces the running maximum if greater or NaN (torch's rule)."""
    cdef Py_ssize_t d0 = _start(od, D, OD), d1 = _end(od, D, OD)
    cdef Py_ssize_t h0 = _start(oh, H, OH), h1 = _end(oh, H, OH)
    cdef Py_ssize_t ow, w0, w1, d, h, w, best_index
    cdef const floating* row
    cdef floating best, v
    for ow in range(OW):
        w0 = _start(ow, W, OW)
        w1 = _end(ow, W, OW)
        best = -INFINITY
        best_index = (d0 * H + h0) * W + w0
        for d in range(d0, d1):
            for h in range(h0, h1):
                row = plane + (d * H + h) * W
                for w in range(w0, w1):
                    v = row[w]
                    if v > best or v != v:
                        best = v
                        best_index = (d * H + h) * W + w
        out[ow] = best
        if indices != NULL:
            indices[ow] = best_index


cdef struct RowJob:
    # One adaptive_avg_pool or adaptive_max_pool call, for parallel_for: task = output row (p, od, oh).
    bint double_precision
    const void* x
    void* out
    int64_t* indices                # adaptive_max_pool: NULL for none
    Py_ssize_t D, H, W, OD, OH, OW


cdef void _avg_row_task(void* context, Py_ssize_t r, int thread) noexcept nogil:
    cdef const RowJob* job = <const RowJob*>context
    cdef Py_ssize_t rows_per_plane = job.OD * job.OH
    cdef Py_ssize_t p = r // rows_per_plane
    cdef Py_ssize_t od = (r % rows_per_plane) // job.OH
    cdef Py_ssize_t oh = r % job.OH
    cdef Py_ssize_t plane = p * job.D * job.H * job.W
    if job.double_precision:
        _adaptive_avg_row(<const double*>job.x + plane, <double*>job.out + r * job.OW, od, oh,
                          job.D, job.H, job.W, job.OD, job.OH, job.OW)
    else:
        _adaptive_avg_row(<const float*>job.x + plane, <float*>job.out + r * job.OW, od, oh,
                          job.D, job.H, job.W, job.OD, job.OH, job.OW)


cdef void _max_row_task(void* context, Py_ssize_t r, int thread) noexcept nogil:
    cdef const RowJob* job = <const RowJob*>context
    cdef Py_ssize_t rows_per_plane = job.OD * job.OH
    cdef Py_ssize_t p = r // rows_per_plane
    cdef Py_ssize_t od = (r % rows_per_plane) // job.OH
    cdef Py_ssize_t oh = r % job.OH
    cdef Py_ssize_t plane = p * job.D * job.H * job.W
    cdef int64_t* indices = job.indices + r * job.OW if job.indices != NULL else NULL
    if job.double_precision:
        _adaptive_max_row(<const double*>job.x + plane, <double*>job.out + r * job.OW, indices, od, oh,
                          job.D, job.H, job.W, job.OD, job.OH, job.OW)
    else:
        _adaptive_max_row(<const float*>job.x + plane, <float*>job.out + r * job.OW, indices, od, oh,
                          job.D, job.H, job.W, job.OD, job.OH, job.OW)


cdef void _init_row_job(RowJob* job, const void* x, void* out, Py_ssize_t[8] x_shape,
                        Py_ssize_t[8] out_shape) noexcept:
    job.x = x
    job.out = out
    job.indices = NULL
    job.D, job.H, job.W = x_shape[1], x_shape[2], x_shape[3]
    job.OD, job.OH, job.OW = out_shape[1], out_shape[2], out_shape[3]


def adaptive_avg_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, int num_threads):
    """Adaptive average pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW) allocated by the caller.

    D, H, W >= 1 (checked by the caller); OD, OH, OW may be 0.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef RowJob job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_row_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape)
    job.double_precision = floating is double
    with nogil:
        parallel_for(_avg_row_task, &job, rows, num_threads)


cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Sum of x[0:n] in a fixed order: chunks of 512 elements summed by two
       vector accumulators (then single vectors), their lanes added pairwise,
       then the chunk's last elements one by one; the chunk sums added in
       double (so a long plane keeps double accuracy, a 7x7 one costs a few
       vector adds).  GNU C vectors, width from the target macros. */
    #if defined(__AVX__)
    #define PYCONV_SUM_VBYTES 32
    #else
    #define PYCONV_SUM_VBYTES 16
    #endif
    #if defined(__GNUC__)
    #define PYCONV_PLANE_SUM(NAME, T)                                                \\
    static double NAME(const T *x, ptrdiff_t n)                                      \\
    {                                                                                \\
        typedef T vec __attribute__((vector_size(PYCONV_SUM_VBYTES)));               \\
        enum { VL = PYCONV_SUM_VBYTES / sizeof(T) };                                 \\
        double total = 0;                                                            \\
        ptrdiff_t i = 0;                                                             \\
        while (i < n) {                                                              \\
            ptrdiff_t end = n - i > 512 ? i + 512 : n;                               \\
            vec a0 = {0}, a1 = {0}, v;                                               \\
            for (; i + 2 * VL <= end; i += 2 * VL) {                                 \\
                memcpy(&v, x + i, sizeof v);                                         \\
                a0 += v;                                                             \\
                memcpy(&v, x + i + VL, sizeof v);                                    \\
                a1 += v;                                                             \\
            }                                                                        \\
            for (; i + VL <= end; i += VL) {                                         \\
                memcpy(&v, x + i, sizeof v);                                         \\
                a0 += v;                                                             \\
            }                                                                        \\
            a0 += a1;                                                                \\
            for (int width = VL / 2; width > 0; width /= 2)                          \\
                for (int j = 0; j < width; j++) a0[j] += a0[j + width];              \\
            T chunk = a0[0];                                                         \\
            for (; i < end; i++) chunk += x[i];                                      \\
            total += chunk;                                                          \\
        }                                                                            \\
        return total;                                                                \\
    }
    #else
    #define PYCONV_PLANE_SUM(NAME, T)                                                \\
    static double NAME(const T *x, ptrdiff_t n)                                      \\
    {                                                                                \\
        double s = 0;                                                                \\
        for (ptrdiff_t i = 0; i < n; i++) s += x[i];                                 \\
        return s;                                                                    \\
    }
    #endif
    PYCONV_PLANE_SUM(pyconv_plane_sum_f32, float)
    PYCONV_PLANE_SUM(pyconv_plane_sum_f64, double)
    """
    double pyconv_plane_sum_f32(const float* x, Py_ssize_t n) noexcept nogil
    double pyconv_plane_sum_f64(const double* x, Py_ssize_t n) noexcept nogil


cdef inline double _plane_sum(const floating* plane, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return pyconv_plane_sum_f32(plane, n)
    else:
        return pyconv_plane_sum_f64(plane, n)


cdef enum:
    GLOBAL_TASK_ELEMENTS = 8192   # elements summed per task of global_avg_pool (claiming one costs ~0.1 us)


cdef struct GlobalJob:
    bint double_precision
    const void* x
    void* out
    Py_ssize_t planes, n, planes_per_task


cdef void _global_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef GlobalJob* job = <GlobalJob*>context
    cdef Py_ssize_t p, stop = min(job.planes, (task + 1) * job.planes_per_task)
    for p in range(task * job.planes_per_task, stop):
        if job.double_precision:
            (<double*>job.out)[p] = _plane_sum(<const double*>job.x + p * job.n, job.n) / job.n
        else:
            (<float*>job.out)[p] = <float>(_plane_sum(<const float*>job.x + p * job.n, job.n) / job.n)


def global_avg_pool(const floating[:, ::1] x, floating[::1] out, int num_threads):
    """Mean of each plane: ``x`` (P, n) with n >= 1, ``out`` (P,) allocated by the caller.

    Adaptive average pooling to size 1 (torch computes it as a mean): the
    plane's sum in a fixed vectorised order (chunks of 512 in the element
    type, chunk sums in double), divided by n.  Tasks are runs of planes of
    about GLOBAL_TASK_ELEMENTS elements (parallel.pxd's parallel_for).
    """
    cdef GlobalJob job
    cdef Py_ssize_t tasks
    if x.shape[0] == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0]
    job.out = &out[0]
    job.planes = x.shape[0]
    job.n = x.shape[1]
    job.planes_per_task = max(1, GLOBAL_TASK_ELEMENTS // job.n)
    tasks = (job.planes + job.planes_per_task - 1) // job.planes_per_task
    with nogil:
        parallel_for(_global_task, &job, tasks, num_threads)


def adaptive_max_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                      int64_t[:, :, :, ::1] indices, int num_threads):
    """Adaptive max pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW) allocated by the caller.

    ``indices`` (int64, shape of ``out``, or None) receives each maximum's
    flat index in its input plane.  D, H, W >= 1 (checked by the caller).
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef RowJob job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_row_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape)
    job.double_precision = floating is double
    if indices is not None:
        job.indices = &indices[0, 0, 0, 0]
    with nogil:
        parallel_for(_max_row_task, &job, rows, num_threads)
