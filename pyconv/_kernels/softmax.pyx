"""Softmax and log-softmax along one axis, numerically stable (the maximum is subtracted first)."""
from cython cimport floating
from libc.math cimport log

from .activation cimport math_exp
from .parallel cimport parallel_for

# Inner positions per task when the softmax axis is not the last one: fixed,
# so the split never depends on the thread count.
cdef enum:
    BLOCK = 128


cdef void _softmax_row(const floating* x, floating* out, Py_ssize_t length, bint log_output) noexcept nogil:
    # One contiguous row: max, then sum of exp(x - max) accumulated in double.
    cdef Py_ssize_t i
    cdef floating maximum = x[0]
    cdef floating shifted
    cdef double total = 0.0
    cdef floating scale, log_total
    for i in range(1, length):
        if x[i] > maximum:
            maximum = x[i]
    if log_output:
        for i in range(length):
            total += math_exp(x[i] - maximum)
        log_total = <floating>log(total)
        for i in range(length):
            out[i] = x[i] - maximum - log_total
    else:
        for i in range(length):
            shifted = math_exp(x[i] - maximum)
            out[i] = shifted
            total += shifted
        scale = <floating>(1.0 / total)
        for i in range(length):
            out[i] = out[i] * scale


cdef void _softmax_columns(const floating* x, floating* out, Py_ssize_t length, Py_ssize_t stride,
                           Py_ssize_t count, bint log_output) noexcept nogil:
    # ``count`` (<= BLOCK) softmaxes side by side: element k of column j at x[k * stride + j].
    cdef floating maximum[BLOCK]
    cdef double total[BLOCK]
    cdef floating shifted
    cdef Py_ssize_t j, k
    cdef const floating* row
    cdef floating* out_row
    for j in range(count):
        maximum[j] = x[j]
        total[j] = 0.0
    for k in range(1, length):
        row = x + k * stride
        for j in range(count):
            if row[j] > maximum[j]:
                maximum[j] = row[j]
    if log_output:
        for k in range(length):
            row = x + k * stride
            for j in range(count):
                total[j] += math_exp(row[j] - maximum[j])
        for j in range(count):
            total[j] = log(total[j])
        for k in range(length):
            row = x + k * stride
            out_row = out + k * stride
            for j in range(count):
                out_row[j] = row[j] - maximum[j] - <floating>total[j]
    else:
        for k in range(length):
            row = x + k * stride
            out_row = out + k * stride
            for j in range(count):
                shifted = math_exp(row[j] - maximum[j])
                out_row[j] = shifted
                total[j] += shifted
        for j in range(count):
            total[j] = 1.0 / total[j]
        for k in range(length):
            out_row = out + k * stride
            for j in range(count):
                out_row[j] = out_row[j] * <floating>total[j]


cdef struct Job:
    # One softmax call, for parallel_for: x and out (outer, length, inner).
    bint double_precision
    const void* x
    void* out
    Py_ssize_t length, inner, blocks_per_outer
    bint log_output


cdef void _row_task(void* context, Py_ssize_t o, int thread) noexcept nogil:
    # inner == 1: the row of outer index o.
    cdef const Job* job = <const Job*>context
    cdef Py_ssize_t start = o * job.length
    if job.double_precision:
        _softmax_row(<const double*>job.x + start, <double*>job.out + start, job.length, job.log_output)
    else:
        _softmax_row(<const float*>job.x + start, <float*>job.out + start, job.length, job.log_output)


cdef void _columns_task(void* context, Py_ssize_t item, int thread) noexcept nogil:
    # inner > 1: block item % blocks_per_outer (up to BLOCK inner positions) of outer index item // blocks_per_outer.
    cdef const Job* job = <const Job*>context
    cdef Py_ssize_t o = item // job.blocks_per_outer
    cdef Py_ssize_t start = (item - o * job.blocks_per_outer) * BLOCK
    cdef Py_ssize_t offset = o * job.length * job.inner + start
    cdef Py_ssize_t count = min(<Py_ssize_t>BLOCK, job.inner - start)
    if job.double_precision:
        _softmax_columns(<const double*>job.x + offset, <double*>job.out + offset, job.length, job.inner,
                         count, job.log_output)
    else:
        _softmax_columns(<const float*>job.x + offset, <float*>job.out + offset, job.length, job.inner,
                         count, job.log_output)


def softmax(const floating[:, :, ::1] x, floating[:, :, ::1] out, bint log_output, int num_threads):
    """Softmax (or log-softmax if log_output) of x along axis 1.

    x and out: (outer, length, inner) C-contiguous, length >= 1, allocated by the caller.
    Tasks (parallel.pxd's parallel_for): one row per outer index when inner == 1,
    else blocks of up to BLOCK inner positions per outer index.
    """
    cdef Py_ssize_t outer = x.shape[0], length = x.shape[1], inner = x.shape[2]
    cdef Job job
    if outer == 0 or length == 0 or inner == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0]
    job.out = &out[0, 0, 0]
    job.length = length
    job.inner = inner
    job.blocks_per_outer = (inner + BLOCK - 1) // BLOCK
    job.log_output = log_output
    with nogil:
        if inner == 1:
            parallel_for(_row_task, &job, outer, num_threads)
        else:
            parallel_for(_columns_task, &job, outer * job.blocks_per_outer, num_threads)
