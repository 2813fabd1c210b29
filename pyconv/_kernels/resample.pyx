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

One output row is computed by one thread, so results do not depend on the
thread count.  The Python layer validates the arguments, computes the tables
(every index in range, ``1 <= count[j] <= T``, windows inside the axis) and
allocates the outputs.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t


def nearest(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
            const int64_t[::1] index_d, const int64_t[::1] index_h, const int64_t[::1] index_w,
            int num_threads):
    """``out[p, i, j, k] = x[p, index_d[i], index_h[j], index_w[k]]``.

    ``x``: (P, D, H, W); ``out``: (P, OD, OH, OW), allocated by the caller.
    """
    cdef Py_ssize_t planes = out.shape[0], OD = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t row, p, od, oh, k
    cdef const floating* source
    cdef floating* target
    with nogil:
        for row in prange(planes * OD * OH, schedule="static", num_threads=num_threads):
            oh = row % OH
            od = (row // OH) % OD
            p = row // (OH * OD)
            source = &x[p, index_d[od], index_h[oh], 0]
            target = &out[p, od, oh, 0]
            for k in range(OW):
                target[k] = source[index_w[k]]


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


def resample_last_axis_taps(const floating[:, ::1] x, floating[:, ::1] out,
                            const int64_t[:, ::1] index, const floating[:, ::1] weight, int num_threads):
    """Resample the last axis of ``x`` (R, L) into ``out`` (R, O) with all T taps of ``index``, ``weight`` (O, T).

    ``out`` is allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0], width = out.shape[1], taps = index.shape[1]
    cdef Py_ssize_t r
    if rows == 0 or width == 0:
        return
    with nogil:
        for r in prange(rows, schedule="static", num_threads=num_threads):
            _taps_row(&x[r, 0], &out[r, 0], &index[0, 0], &weight[0, 0], taps, width)


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


def resample_last_axis_windows(const floating[:, ::1] x, floating[:, ::1] out,
                               const int64_t[:, ::1] index, const floating[:, ::1] weight,
                               const int64_t[::1] count, int num_threads):
    """Resample the last axis of ``x`` (R, L) into ``out`` (R, O) over windows of consecutive inputs.

    Output ``j`` is ``sum(weight[j, t] * x[r, index[j, 0] + t] for t < count[j])``;
    ``index``, ``weight``: (O, T) (only ``index[:, 0]`` is read); ``count``: (O,).
    ``out`` is allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0], width = out.shape[1], taps = index.shape[1]
    cdef Py_ssize_t r
    if rows == 0 or width == 0:
        return
    with nogil:
        for r in prange(rows, schedule="static", num_threads=num_threads):
            _windows_row(&x[r, 0], &out[r, 0], &index[0, 0], &weight[0, 0], &count[0], taps, width)


def resample_middle_axis(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                         const int64_t[:, ::1] index, const floating[:, ::1] weight,
                         const int64_t[::1] count, int num_threads):
    """Resample the middle axis of ``x`` (A, L, B) into ``out`` (A, O, B), allocated by the caller.

    ``out[a, j, :] = sum(weight[j, t] * x[a, index[j, t], :] for t < count[j])``;
    ``index``, ``weight``: (O, T); ``count``: (O,).
    """
    cdef Py_ssize_t outer = out.shape[0], length = out.shape[1], inner = out.shape[2]
    cdef Py_ssize_t row, a, j, t, b
    cdef const floating* source
    cdef floating* target
    cdef floating w
    if outer == 0 or length == 0 or inner == 0:
        return
    with nogil:
        for row in prange(outer * length, schedule="static", num_threads=num_threads):
            a = row // length
            j = row - a * length
            target = &out[a, j, 0]
            source = &x[a, index[j, 0], 0]
            w = weight[j, 0]
            for b in range(inner):
                target[b] = source[b] * w
            for t in range(1, count[j]):
                source = &x[a, index[j, t], 0]
                w = weight[j, t]
                for b in range(inner):
                    target[b] = target[b] + source[b] * w
