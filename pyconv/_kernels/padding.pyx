"""Padding kernel: every mode of ``pad`` as one row-wise gather.

The input is viewed as planes ``(P, D, H, W)`` and the output as
``(P, OD, OH, OW)``; the padded axes are the last three (D = OD = 1 and/or
H = OH = 1 when fewer are padded).  Per output axis the Python layer computes
a source index for every output position, or -1 where the output takes the
fill value (constant mode).  Along the last axis the output columns
``[copy_start, copy_stop)`` read consecutive source columns from
``copy_source`` on, so the bulk of every row is one ``memcpy``; the few
columns outside that range go through the index map.

One output row ``(p, od, oh)`` is written by one thread, so the result does
not depend on the thread count.  The Python layer validates the arguments,
computes the index maps (all in range) and allocates the output.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy


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
    cdef Py_ssize_t block_rows = max(1, min(OH, row_groups * OH // (8 * max(num_threads, 1))))
    cdef Py_ssize_t blocks_per_group = (OH + block_rows - 1) // block_rows
    cdef Py_ssize_t block, group, p, od, oh, oh_stop
    cdef int64_t d, h
    cdef const floating* source
    cdef floating fill = <floating>value
    if row_groups * OH == 0 or OW == 0:
        return
    with nogil:
        for block in prange(row_groups * blocks_per_group, schedule="static", num_threads=num_threads):
            group = block // blocks_per_group
            oh = (block - group * blocks_per_group) * block_rows
            oh_stop = min(oh + block_rows, OH)
            p = group // OD
            od = group - p * OD
            d = index_d[od]
            while oh < oh_stop:
                h = index_h[oh]
                if d < 0 or h < 0:
                    source = NULL
                else:
                    source = &x[p, d, h, 0]
                _pad_row(source, &out[p, od, oh, 0], &index_w[0], OW, copy_start, copy_stop, copy_source, fill)
                oh = oh + 1
