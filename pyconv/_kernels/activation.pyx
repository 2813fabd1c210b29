"""Pointwise activation kernels (the scalar functions live in activation.pxd)."""
from cython cimport floating

from pyconv._kernels.parallel cimport parallel_for

# Elements per parallel work item: fixed, so the split never depends on the thread count.
cdef enum:
    CHUNK = 16384

KINDS = {
    "identity": ACT_IDENTITY,
    "relu": ACT_RELU,
    "hardtanh": ACT_HARDTANH,
    "leaky_relu": ACT_LEAKY_RELU,
    "elu": ACT_ELU,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "hardswish": ACT_HARDSWISH,
    "hardsigmoid": ACT_HARDSIGMOID,
    "silu": ACT_SILU,
    "mish": ACT_MISH,
    "gelu": ACT_GELU,
    "gelu_tanh": ACT_GELU_TANH,
    "softplus": ACT_SOFTPLUS,
}


cdef struct Job:
    # One pointwise or prelu_channels call, for parallel_for.
    bint double_precision
    const void* x
    void* out
    const void* weight              # prelu_channels: (channels,)
    Py_ssize_t n, channels, inner   # pointwise: n elements; prelu_channels: planes of inner
    int kind
    double p0, p1, p2


cdef void _chunk_task(void* context, Py_ssize_t chunk, int thread) noexcept nogil:
    # Elements [chunk * CHUNK, min((chunk + 1) * CHUNK, n)) of pointwise.
    cdef const Job* job = <const Job*>context
    cdef Py_ssize_t start = chunk * CHUNK, count = min(<Py_ssize_t>CHUNK, job.n - start)
    if job.double_precision:
        activation_row(<const double*>job.x + start, <double*>job.out + start, count,
                       job.kind, job.p0, job.p1, job.p2)
    else:
        activation_row(<const float*>job.x + start, <float*>job.out + start, count,
                       job.kind, job.p0, job.p1, job.p2)


cdef void _prelu_plane_task(void* context, Py_ssize_t plane, int thread) noexcept nogil:
    # Plane (n, c) of prelu_channels: leaky relu with slope weight[c].
    cdef const Job* job = <const Job*>context
    cdef Py_ssize_t c = plane % job.channels, start = plane * job.inner
    if job.double_precision:
        activation_row(<const double*>job.x + start, <double*>job.out + start, job.inner, ACT_LEAKY_RELU,
                       (<const double*>job.weight)[c], 0.0, 0.0)
    else:
        activation_row(<const float*>job.x + start, <float*>job.out + start, job.inner, ACT_LEAKY_RELU,
                       (<const float*>job.weight)[c], 0.0, 0.0)


def pointwise(const floating[::1] x, floating[::1] out, int kind, double p0, double p1, double p2,
              int num_threads):
    """out[i] = activation ``kind`` (a value of KINDS, parameters p0..p2 as in activation.pxd) of x[i].

    x and out: 1-D C-contiguous, same length and dtype, allocated by the caller;
    out may be x itself (in place).  Work is split into fixed chunks of CHUNK elements
    (parallel.pxd's parallel_for, one task per chunk).
    """
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t num_chunks = (n + CHUNK - 1) // CHUNK
    cdef Job job
    if n == 0:
        return
    if num_chunks == 1:
        with nogil:
            activation_row(&x[0], &out[0], n, kind, p0, p1, p2)
        return
    job.double_precision = floating is double
    job.x = &x[0]
    job.out = &out[0]
    job.n = n
    job.kind = kind
    job.p0, job.p1, job.p2 = p0, p1, p2
    with nogil:
        parallel_for(_chunk_task, &job, num_chunks, num_threads)


def prelu_channels(const floating[:, :, ::1] x, const floating[::1] weight, floating[:, :, ::1] out,
                   int num_threads):
    """out[n, c, i] = x[n, c, i] if x > 0 else weight[c] * x[n, c, i].

    x and out: (N, C, inner) C-contiguous, allocated by the caller; weight: (C,).
    One parallel_for task per (n, c) plane.
    """
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Job job
    if batch == 0 or channels == 0 or inner == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0]
    job.out = &out[0, 0, 0]
    job.weight = &weight[0]
    job.channels = channels
    job.inner = inner
    with nogil:
        parallel_for(_prelu_plane_task, &job, batch * channels, num_threads)
