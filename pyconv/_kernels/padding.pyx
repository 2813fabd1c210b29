"""Padding kernel: every mode of ``pad`` as one row-wise gather.

The input is viewed as planes ``(P, D, H, W)`` and the output as
``(P, OD, OH, OW)``; the padded axes are the last three (D = OD = 1 and/or
H = OH = 1 when fewer are padded).  Per output axis the Python layer computes
a source index for every output position, or -1 where the output takes the
fill value (constant mode).  Along the last axis the output columns
``[copy_start, copy_stop)`` read consecutive source columns from
``copy_source`` on, so the bulk of every row is one ``memcpy``; the few
columns outside that range go through the index map.

One output row ``(p, od, oh)`` is written by one thread (tasks of
parallel.pxd's parallel_for are blocks of rows), so the result does not
depend on the thread count.  The Python layer validates the arguments,
computes the index maps (all in range) and allocates the output.
"""
from cython cimport floating
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from pyconv._kernels.parallel cimport parallel_for


cdef void _pad_row(const floating* source, floating* out, const int64_t* index_w,
                   Py_ssize_t width, Py_ssize_t copy_start, Py_ssize_t copy_stop,
                   Py_ssize_t copy_source, floating value) noexcept nogil:
    """One output row from one source row (``source`` is NULL for a row of fill values)."""
    cdef Py_ssize_t k, i
    if source == NULL:
        for k in range(width):
            out[k] = value
        return
    for k in range(copy_start):
        i = index_w[k]
        out[k] = source[i] if i >= 0 else value
    if copy_stop > copy_start:
        memcpy(out + copy_start, source + copy_source, (copy_stop - copy_start) * sizeof(floating))
    for k in range(copy_stop, width):
        i = index_w[k]
        out[k] = source[i] if i >= 0 else value


cdef struct Job:
    # One pad_planes call, for parallel_for (names as in pad_planes).
    bint double_precision
    const void* x
    void* out
    const int64_t* index_d
    const int64_t* index_h
    const int64_t* index_w
    Py_ssize_t D, H, W, OD, OH, OW
    Py_ssize_t copy_start, copy_stop, copy_source
    Py_ssize_t block_rows, blocks_per_group
    double value


cdef void _pad_block(const floating* x, floating* out, Py_ssize_t block, const Job* job) noexcept nogil:
    """Rows oh .. oh + block_rows - 1 (clipped to OH) of one output plane slice (p, od)."""
    cdef Py_ssize_t group = block // job.blocks_per_group
    cdef Py_ssize_t oh = (block - group * job.blocks_per_group) * job.block_rows
    cdef Py_ssize_t oh_stop = min(oh + job.block_rows, job.OH)
    cdef Py_ssize_t p = group // job.OD
    cdef int64_t d = job.index_d[group - p * job.OD], h
    cdef const floating* source
    cdef floating fill = <floating>job.value
    while oh < oh_stop:
        h = job.index_h[oh]
        if d < 0 or h < 0:
            source = NULL
        else:
            source = x + ((p * job.D + d) * job.H + h) * job.W
        _pad_row(source, out + (group * job.OH + oh) * job.OW, job.index_w, job.OW,
                 job.copy_start, job.copy_stop, job.copy_source, fill)
        oh = oh + 1


cdef void _pad_task(void* context, Py_ssize_t block, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _pad_block(<const double*>job.x, <double*>job.out, block, job)
    else:
        _pad_block(<const float*>job.x, <float*>job.out, block, job)


def pad_planes(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
               const int64_t[::1] index_d, const int64_t[::1] index_h, const int64_t[::1] index_w,
               Py_ssize_t copy_start, Py_ssize_t copy_stop, Py_ssize_t copy_source,
               double value, int num_threads):
    """Pad planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW), allocated by the caller.

    ``out[p, i, j, k] = x[p, index_d[i], index_h[j], index_w[k]]``, or ``value``
    where any of the three indices is -1.  Indices are -1 or in range;
    ``index_w[copy_start + t] == copy_source + t`` for ``copy_start <= k <
    copy_stop``.  D, H, W >= 1 wherever a row is read.
    """
    cdef Py_ssize_t planes = out.shape[0], OD = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t row_groups = planes * OD
    # Rows are handed out in blocks of whole rows of one plane: few index divisions per row,
    # yet enough blocks (>= 8 per thread where possible) to balance the threads.
    cdef Job job
    job.block_rows = max(1, min(OH, row_groups * OH // (8 * max(num_threads, 1))))
    job.blocks_per_group = (OH + job.block_rows - 1) // job.block_rows
    if row_groups * OH == 0 or OW == 0:
        return
    job.double_precision = floating is double
    # x may be empty when every output takes the fill value (no row is then read)
    job.x = &x[0, 0, 0, 0] if x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3] else NULL
    job.out = &out[0, 0, 0, 0]
    job.index_d = &index_d[0]
    job.index_h = &index_h[0]
    job.index_w = &index_w[0]
    job.D, job.H, job.W = x.shape[1], x.shape[2], x.shape[3]
    job.OD, job.OH, job.OW = OD, OH, OW
    job.copy_start, job.copy_stop, job.copy_source = copy_start, copy_stop, copy_source
    job.value = value
    with nogil:
        parallel_for(_pad_task, &job, row_groups * job.blocks_per_group, num_threads)
