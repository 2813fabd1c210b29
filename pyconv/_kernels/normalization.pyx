"""Normalisation kernels: batch norm (inference, per-channel affine), group norm and layer norm.

Group and layer norm accumulate each row's mean and biased variance in double,
in two passes (mean, then the sum of squared deviations), so float32 results
are as accurate as float32 can hold.  One row is one work item.
"""
from cython.parallel cimport prange

from cython cimport floating
from libc.math cimport sqrt


def channel_affine(const floating[:, :, ::1] x, const floating[::1] scale, const floating[::1] shift,
                   floating[:, :, ::1] out, int num_threads):
    """out[n, c, i] = x[n, c, i] * scale[c] + shift[c] (batch norm with running statistics folded in).

    x and out: (N, C, inner) C-contiguous, allocated by the caller; scale, shift: (C,).
    One work item per (n, c) plane.
    """
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t plane, n, c, i
    cdef floating channel_scale, channel_shift
    if batch == 0 or channels == 0 or inner == 0:
        return
    for plane in prange(batch * channels, nogil=True, schedule="static", num_threads=num_threads):
        n = plane // channels
        c = plane - n * channels
        channel_scale = scale[c]
        channel_shift = shift[c]
        for i in range(inner):
            out[n, c, i] = x[n, c, i] * channel_scale + channel_shift


# Sums use LANES independent partial sums (element i goes to partial i % LANES, the partials
# are added in a fixed order), which lets the compiler vectorise the loop without reassociating
# anything: the result is the same on every run and thread count.
cdef enum:
    LANES = 8


cdef double _row_mean(const floating* row, Py_ssize_t length) noexcept nogil:
    cdef Py_ssize_t i, block, lane, full = length - length % LANES
    cdef double partial[LANES]
    cdef double total = 0.0
    for lane in range(LANES):
        partial[lane] = 0.0
    for block in range(full // LANES):
        i = block * LANES
        for lane in range(LANES):
            partial[lane] += row[i + lane]
    for i in range(full, length):
        total += row[i]
    for lane in range(LANES):
        total += partial[lane]
    return total / length


cdef double _row_rstd(const floating* row, Py_ssize_t length, double mean, double eps) noexcept nogil:
    # 1 / sqrt(biased variance + eps), the variance from squared deviations about ``mean``.
    cdef Py_ssize_t i, block, lane, full = length - length % LANES
    cdef double partial[LANES]
    cdef double squares = 0.0, deviation
    for lane in range(LANES):
        partial[lane] = 0.0
    for block in range(full // LANES):
        i = block * LANES
        for lane in range(LANES):
            deviation = row[i + lane] - mean
            partial[lane] += deviation * deviation
    for i in range(full, length):
        deviation = row[i] - mean
        squares += deviation * deviation
    for lane in range(LANES):
        squares += partial[lane]
    return 1.0 / sqrt(squares / length + eps)


def group_norm(const floating[:, :, ::1] x, Py_ssize_t num_groups, const floating[::1] weight,
               const floating[::1] bias, double eps, floating[:, :, ::1] out, int num_threads):
    """Group norm of x: (N, C, inner) C-contiguous, C divisible by num_groups, C * inner >= 1.

    weight, bias: (C,) (the caller passes ones/zeros when torch's are None); out like x,
    allocated by the caller.  Work item: one (n, group) row of (C / num_groups) * inner elements.
    """
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t group_channels = channels // num_groups
    cdef Py_ssize_t row, n, g, c, i
    cdef double mean, rstd, channel_scale, channel_shift
    if batch == 0 or channels == 0 or inner == 0:
        return
    for row in prange(batch * num_groups, nogil=True, schedule="static", num_threads=num_threads):
        n = row // num_groups
        g = row - n * num_groups
        mean = _row_mean(&x[n, g * group_channels, 0], group_channels * inner)
        rstd = _row_rstd(&x[n, g * group_channels, 0], group_channels * inner, mean, eps)
        for c in range(g * group_channels, (g + 1) * group_channels):
            channel_scale = rstd * weight[c]
            channel_shift = bias[c] - mean * channel_scale
            for i in range(inner):
                out[n, c, i] = <floating>(x[n, c, i] * channel_scale + channel_shift)


def layer_norm(const floating[:, ::1] x, const floating[::1] weight, const floating[::1] bias, double eps,
               floating[:, ::1] out, int num_threads):
    """Layer norm of each row of x: (rows, length) C-contiguous, length >= 1.

    out[r, j] = (x[r, j] - mean_r) * rstd_r * weight[j] + bias[j]; weight, bias: (length,)
    (ones/zeros when torch's are None); out like x, allocated by the caller.  One row per work item.
    """
    cdef Py_ssize_t rows = x.shape[0], length = x.shape[1]
    cdef Py_ssize_t r, j
    cdef double mean, rstd
    if rows == 0 or length == 0:
        return
    for r in prange(rows, nogil=True, schedule="static", num_threads=num_threads):
        mean = _row_mean(&x[r, 0], length)
        rstd = _row_rstd(&x[r, 0], length, mean, eps)
        for j in range(length):
            out[r, j] = <floating>((x[r, j] - mean) * rstd * weight[j] + bias[j])
