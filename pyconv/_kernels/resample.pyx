"""Resampling kernels behind ``interpolate``.

The Python layer computes, once per call and per resized axis, torch's source
coordinates as a table: for output position ``j`` of an axis, taps
``index[j, t]`` with weights ``weight[j, t]`` for ``t < count[j]``, so that

    out[..., j, ...] = sum(weight[j, t] * x[..., index[j, t], ...] for t < count[j])

accumulated in ``t`` order (first product assigned, then added, as torch
does).  Linear and cubic modes use every one of their 2 or 4 taps (border
indices repeated, as torch clamps them); antialiased and area modes use a
window of consecutive indices ``index[j, 0] + t`` of per-output length.

* ``nearest`` gathers planes ``(P, D, H, W)`` into ``(P, OD, OH, OW)`` in one
  pass from one source index per output position and axis.
* ``resample_last_axis_taps`` / ``resample_last_axis_windows`` resample the
  last axis of a ``(R, L)`` view, ``resample_middle_axis`` the middle axis of
  an ``(A, L, B)`` view (vectorised over ``B``).  Resized axes are processed
  one after the other, last axis first: the order in which torch's CPU
  kernels combine the axes.

One output row is computed by one thread (one task of parallel.pxd's
parallel_for), so results do not depend on the thread count.  The Python layer validates the arguments, computes the tables
(every index in range, ``1 <= count[j] <= T``, windows inside the axis) and
allocates the outputs.
"""
from cython cimport floating
from libc.stdint cimport int64_t

from pyconv._kernels.parallel cimport parallel_for


cdef struct Job:
    # One call of a kernel below, for parallel_for.
    bint double_precision
    const void* x
    void* out
    const int64_t* index        # nearest: index_w; others: index (O, T)
    const int64_t* index_d      # nearest
    const int64_t* index_h      # nearest
    const void* weight          # (O, T)
    const int64_t* count        # (O,)
    Py_ssize_t D, H, W          # nearest: x.shape[1:]; resample_last_axis_*: W = L
    Py_ssize_t OD, OH, OW       # nearest: out.shape[1:]; resample_last_axis_*: OW = O
    Py_ssize_t taps             # T
    Py_ssize_t length, out_length, inner    # resample_middle_axis: L, O, B


cdef void _nearest_row(const floating* x, floating* out, Py_ssize_t row, const Job* job) noexcept nogil:
    # Output row (p, od, oh) of nearest.
    cdef Py_ssize_t oh = row % job.OH
    cdef Py_ssize_t od = (row // job.OH) % job.OD
    cdef Py_ssize_t p = row // (job.OH * job.OD), k
    cdef const floating* source = x + ((p * job.D + job.index_d[od]) * job.H + job.index_h[oh]) * job.W
    cdef floating* target = out + row * job.OW
    cdef const int64_t* index_w = job.index
    for k in range(job.OW):
        target[k] = source[index_w[k]]


cdef void _nearest_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _nearest_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _nearest_row(<const float*>job.x, <float*>job.out, row, job)


def nearest(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
            const int64_t[::1] index_d, const int64_t[::1] index_h, const int64_t[::1] index_w,
            int num_threads):
    """``out[p, i, j, k] = x[p, index_d[i], index_h[j], index_w[k]]``.

    ``x``: (P, D, H, W); ``out``: (P, OD, OH, OW), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef Job job
    if rows == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0, 0]
    job.out = &out[0, 0, 0, 0]
    job.index_d = &index_d[0]
    job.index_h = &index_h[0]
    job.index = &index_w[0]
    job.D, job.H, job.W = x.shape[1], x.shape[2], x.shape[3]
    job.OD, job.OH, job.OW = out.shape[1], out.shape[2], out.shape[3]
    with nogil:
        parallel_for(_nearest_task, &job, rows, num_threads)


cdef void _taps_row(const floating* source, floating* target, const int64_t* index,
                    const floating* weight, Py_ssize_t taps, Py_ssize_t width) noexcept nogil:
    """One row along the last axis, every output using all ``taps`` taps (unrolled for 2 and 4)."""
    cdef Py_ssize_t j, t
    cdef const int64_t* i
    cdef const floating* w
    cdef floating total
    if taps == 2:
        for j in range(width):
            i = index + 2 * j
            w = weight + 2 * j
            target[j] = source[i[0]] * w[0] + source[i[1]] * w[1]
    elif taps == 4:
        for j in range(width):
            i = index + 4 * j
            w = weight + 4 * j
            target[j] = source[i[0]] * w[0] + source[i[1]] * w[1] + source[i[2]] * w[2] + source[i[3]] * w[3]
    else:
        for j in range(width):
            total = source[index[j * taps]] * weight[j * taps]
            for t in range(1, taps):
                total = total + source[index[j * taps + t]] * weight[j * taps + t]
            target[j] = total


cdef void _taps_task(void* context, Py_ssize_t r, int thread) noexcept nogil:
    # Row r of resample_last_axis_taps.
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _taps_row(<const double*>job.x + r * job.W, <double*>job.out + r * job.OW, job.index,
                  <const double*>job.weight, job.taps, job.OW)
    else:
        _taps_row(<const float*>job.x + r * job.W, <float*>job.out + r * job.OW, job.index,
                  <const float*>job.weight, job.taps, job.OW)


cdef void _init_last_axis_job(Job* job, const void* x, void* out, const int64_t* index, const void* weight,
                              const int64_t* count, Py_ssize_t[8] x_shape, Py_ssize_t[8] out_shape,
                              Py_ssize_t taps) noexcept:
    job.x = x
    job.out = out
    job.index = index
    job.weight = weight
    job.count = count
    job.W = x_shape[1]
    job.OW = out_shape[1]
    job.taps = taps


def resample_last_axis_taps(const floating[:, ::1] x, floating[:, ::1] out,
                            const int64_t[:, ::1] index, const floating[:, ::1] weight, int num_threads):
    """Resample the last axis of ``x`` (R, L) into ``out`` (R, O) with all T taps of ``index``, ``weight`` (O, T).

    ``out`` is allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0], width = out.shape[1]
    cdef Job job
    if rows == 0 or width == 0:
        return
    _init_last_axis_job(&job, &x[0, 0], &out[0, 0], &index[0, 0], &weight[0, 0], NULL, x.shape, out.shape,
                        index.shape[1])
    job.double_precision = floating is double
    with nogil:
        parallel_for(_taps_task, &job, rows, num_threads)


cdef void _windows_row(const floating* source, floating* target, const int64_t* index,
                       const floating* weight, const int64_t* count, Py_ssize_t taps,
                       Py_ssize_t width) noexcept nogil:
    """One row along the last axis: output ``j`` reads ``count[j]`` consecutive inputs from ``index[j, 0]``."""
    cdef Py_ssize_t j, t
    cdef const floating* s
    cdef const floating* w
    cdef floating total
    for j in range(width):
        s = source + index[j * taps]
        w = weight + j * taps
        total = s[0] * w[0]
        for t in range(1, count[j]):
            total = total + s[t] * w[t]
        target[j] = total


cdef void _windows_task(void* context, Py_ssize_t r, int thread) noexcept nogil:
    # Row r of resample_last_axis_windows.
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _windows_row(<const double*>job.x + r * job.W, <double*>job.out + r * job.OW, job.index,
                     <const double*>job.weight, job.count, job.taps, job.OW)
    else:
        _windows_row(<const float*>job.x + r * job.W, <float*>job.out + r * job.OW, job.index,
                     <const float*>job.weight, job.count, job.taps, job.OW)


def resample_last_axis_windows(const floating[:, ::1] x, floating[:, ::1] out,
                               const int64_t[:, ::1] index, const floating[:, ::1] weight,
                               const int64_t[::1] count, int num_threads):
    """Resample the last axis of ``x`` (R, L) into ``out`` (R, O) over windows of consecutive inputs.

    Output ``j`` is ``sum(weight[j, t] * x[r, index[j, 0] + t] for t < count[j])``;
    ``index``, ``weight``: (O, T) (only ``index[:, 0]`` is read); ``count``: (O,).
    ``out`` is allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0], width = out.shape[1]
    cdef Job job
    if rows == 0 or width == 0:
        return
    _init_last_axis_job(&job, &x[0, 0], &out[0, 0], &index[0, 0], &weight[0, 0], &count[0], x.shape, out.shape,
                        index.shape[1])
    job.double_precision = floating is double
    with nogil:
        parallel_for(_windows_task, &job, rows, num_threads)


cdef void _middle_row(const floating* x, floating* out, const floating* weight, Py_ssize_t row,
                      const Job* job) noexcept nogil:
    # Output row (a, j) of resample_middle_axis.
    cdef Py_ssize_t length = job.out_length, inner = job.inner, taps = job.taps
    cdef Py_ssize_t a = row // length
    cdef Py_ssize_t j = row - a * length, t, b
    cdef const floating* plane = x + a * job.length * inner
    cdef const floating* source = plane + job.index[j * taps] * inner
    cdef floating* target = out + row * inner
    cdef floating w = weight[j * taps]
    for b in range(inner):
        target[b] = source[b] * w
    for t in range(1, job.count[j]):
        source = plane + job.index[j * taps + t] * inner
        w = weight[j * taps + t]
        for b in range(inner):
            target[b] = target[b] + source[b] * w


cdef void _middle_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _middle_row(<const double*>job.x, <double*>job.out, <const double*>job.weight, row, job)
    else:
        _middle_row(<const float*>job.x, <float*>job.out, <const float*>job.weight, row, job)


def resample_middle_axis(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                         const int64_t[:, ::1] index, const floating[:, ::1] weight,
                         const int64_t[::1] count, int num_threads):
    """Resample the middle axis of ``x`` (A, L, B) into ``out`` (A, O, B), allocated by the caller.

    ``out[a, j, :] = sum(weight[j, t] * x[a, index[j, t], :] for t < count[j])``;
    ``index``, ``weight``: (O, T); ``count``: (O,).
    """
    cdef Py_ssize_t outer = out.shape[0], length = out.shape[1], inner = out.shape[2]
    cdef Job job
    if outer == 0 or length == 0 or inner == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0]
    job.out = &out[0, 0, 0]
    job.index = &index[0, 0]
    job.weight = &weight[0, 0]
    job.count = &count[0]
    job.taps = index.shape[1]
    job.length = x.shape[1]
    job.out_length = length
    job.inner = inner
    with nogil:
        parallel_for(_middle_task, &job, outer * length, num_threads)
