"""Adaptive average and max pooling kernels for 1d/2d/3d.

The input is viewed as planes ``(P, D, H, W)`` (1d and 2d pools use D = H = 1
or D = 1) and the output as ``(P, OD, OH, OW)``.  Output ``i`` along an axis
of input length ``L`` and output length ``O`` pools the input range
``[floor(i * L / O), ceil((i + 1) * L / O))``.  One output row
``(p, od, oh)`` is computed by one thread, each output element from its
window in torch's order (depth, height, width), so results match torch's CPU
kernels bit for bit and do not depend on the thread count.

The Python layer validates the arguments and allocates the outputs.
"""
from cython cimport floating
from cython.parallel cimport prange

from pyconv._kernels.parallel cimport parallel_for
from libc.math cimport INFINITY
from libc.stdint cimport int64_t


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


def adaptive_avg_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, int num_threads):
    """Adaptive average pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW) allocated by the caller.

    D, H, W >= 1 (checked by the caller); OD, OH, OW may be 0.
    """
    cdef Py_ssize_t planes = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OD = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t rows_per_plane = OD * OH, r, p, od, oh
    if planes == 0 or OD == 0 or OH == 0 or OW == 0:
        return
    for r in prange(planes * rows_per_plane, nogil=True, schedule='static', num_threads=num_threads):
        p = r // rows_per_plane
        od = (r % rows_per_plane) // OH
        oh = r % OH
        _adaptive_avg_row(&x[p, 0, 0, 0], &out[p, od, oh, 0], od, oh, D, H, W, OD, OH, OW)


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
    cdef Py_ssize_t planes = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OD = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t rows_per_plane = OD * OH, r, p, od, oh
    cdef bint with_indices = indices is not None
    if planes == 0 or OD == 0 or OH == 0 or OW == 0:
        return
    for r in prange(planes * rows_per_plane, nogil=True, schedule='static', num_threads=num_threads):
        p = r // rows_per_plane
        od = (r % rows_per_plane) // OH
        oh = r % OH
        _adaptive_max_row(&x[p, 0, 0, 0], &out[p, od, oh, 0],
                          &indices[p, od, oh, 0] if with_indices else NULL,
                          od, oh, D, H, W, OD, OH, OW)
