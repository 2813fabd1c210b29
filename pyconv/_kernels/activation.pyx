"""Pointwise activation kernels (the scalar functions live in activation.pxd)."""
from cython.parallel cimport prange

from cython cimport floating

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


def pointwise(const floating[::1] x, floating[::1] out, int kind, double p0, double p1, double p2,
              int num_threads):
    """out[i] = activation ``kind`` (a value of KINDS, parameters p0..p2 as in activation.pxd) of x[i].

    x and out: 1-D C-contiguous, same length and dtype, allocated by the caller;
    out may be x itself (in place).  Work is split into fixed chunks of CHUNK elements.
    """
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t num_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t chunk, start
    if n == 0:
        return
    if num_chunks == 1:
        with nogil:
            activation_row(&x[0], &out[0], n, kind, p0, p1, p2)
        return
    for chunk in prange(num_chunks, nogil=True, schedule="static", num_threads=num_threads):
        start = chunk * CHUNK
        activation_row(&x[start], &out[start], min(<Py_ssize_t>CHUNK, n - start), kind, p0, p1, p2)


def prelu_channels(const floating[:, :, ::1] x, const floating[::1] weight, floating[:, :, ::1] out,
                   int num_threads):
    """out[n, c, i] = x[n, c, i] if x > 0 else weight[c] * x[n, c, i].

    x and out: (N, C, inner) C-contiguous, allocated by the caller; weight: (C,).
    One work item per (n, c) plane.
    """
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t plane, n, c
    if batch == 0 or channels == 0 or inner == 0:
        return
    for plane in prange(batch * channels, nogil=True, schedule="static", num_threads=num_threads):
        n = plane // channels
        c = plane - n * channels
        activation_row(&x[n, c, 0], &out[n, c, 0], inner, ACT_LEAKY_RELU, weight[c], 0.0, 0.0)
