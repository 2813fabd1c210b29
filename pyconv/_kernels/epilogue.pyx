"""The fused epilogue (epilogue.pxd) as a separate pass, for algorithms whose
kernels do not fuse it (the direct kernel) and for testing fused == unfused."""
from cython cimport floating

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_row
from pyconv._kernels.parallel cimport parallel_for


cdef struct Job:
    const Epilogue* ep
    bint double_precision
    void* output
    Py_ssize_t channels, inner


cdef void _plane_task(void* context, Py_ssize_t plane, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        epilogue_row(job.ep, <double*>job.output, plane * job.inner, job.inner, plane % job.channels)
    else:
        epilogue_row(job.ep, <float*>job.output, plane * job.inner, job.inner, plane % job.channels)


def apply_epilogue(floating[:, :, ::1] output, const floating[::1] scale, const floating[::1] shift,
                   const floating[::1] residual, int activation, double p0, double p1, double p2,
                   int num_threads):
    """output[n, c, :] = activation(output[n, c, :] * scale[c] + shift[c] + residual[n, c, :]), in place.

    output: (N, C, inner) C-contiguous.  scale, shift: (C,) or empty (absent);
    residual: output.size elements in the output's layout, or empty (absent).
    One work item per (n, c) plane.
    """
    cdef Py_ssize_t batch = output.shape[0], channels = output.shape[1], inner = output.shape[2]
    cdef Job job
    cdef Epilogue ep = epilogue_init(
        &scale[0] if scale.shape[0] > 0 else NULL,
        &shift[0] if shift.shape[0] > 0 else NULL,
        &residual[0] if residual.shape[0] > 0 else NULL,
        activation, p0, p1, p2)
    if batch * channels * inner == 0:
        return
    job.ep = &ep
    job.double_precision = floating is double
    job.output = &output[0, 0, 0]
    job.channels = channels
    job.inner = inner
    with nogil:
        parallel_for(_plane_task, &job, batch * channels, num_threads)
