"""Max, average and max-unpooling kernels for 1d/2d/3d pooling.

Every pool works on planes: the input is viewed as ``(P, D, H, W)`` with one
plane per (batch, channel) pair (1d and 2d pools use D = H = 1 or D = 1), the
output as ``(P, OD, OH, OW)``.  One output row ``(p, od, oh)`` is computed by
one thread: the row is initialised, then every valid kernel tap
``(kd, kh, kw)`` is folded into it, in that lexicographic order, by a
contiguous loop over the output width.  Each output element therefore sees
its window's elements in the same order as torch's CPU kernel (depth, then
height, then width), which makes results bit-identical to torch and
independent of the thread count.

The Python layer (``pyconv.functional.pooling``) validates the arguments,
computes the output size and allocates the outputs; these kernels only
compute and never read or write outside the arrays they are given.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memset


cdef struct Axis:
    # One spatial axis of a pooling window.
    Py_ssize_t length    # input size along the axis
    Py_ssize_t out       # output size along the axis
    Py_ssize_t kernel
    Py_ssize_t stride
    Py_ssize_t pad
    Py_ssize_t dilation


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for a >= 0, b > 0."""
    return (a + b - 1) // b


cdef inline Py_ssize_t _first_tap(Py_ssize_t start, Py_ssize_t dilation) noexcept nogil:
    """The first tap t with start + t * dilation >= 0."""
    return 0 if start >= 0 else _ceil_div(-start, dilation)


cdef inline Py_ssize_t _end_tap(Py_ssize_t start, Axis a) noexcept nogil:
    """One past the last tap t < kernel with start + t * dilation < length."""
    cdef Py_ssize_t room = a.length - start
    if room <= 0:
        return 0
    return min(a.kernel, _ceil_div(room, a.dilation))


cdef inline Py_ssize_t _first_output(Py_ssize_t offset, Axis a) noexcept nogil:
    """The first output o with o * stride + offset >= 0."""
    return 0 if offset >= 0 else _ceil_div(-offset, a.stride)


cdef inline Py_ssize_t _end_output(Py_ssize_t offset, Axis a) noexcept nogil:
    """One past the last output o < out with o * stride + offset < length."""
    cdef Py_ssize_t room = a.length - offset
    if room <= 0:
        return 0
    return min(a.out, _ceil_div(room, a.stride))


cdef inline Py_ssize_t _first_valid(Py_ssize_t start, Py_ssize_t dilation) noexcept nogil:
    """torch's ``while (i0 < 0) i0 += dilation``: the start of the window moved into the input."""
    return start + _first_tap(start, dilation) * dilation


cdef void _max_pool_row(const floating* plane, floating* out, int64_t* indices,
                        Py_ssize_t od, Py_ssize_t oh, Axis ad, Axis ah, Axis aw) noexcept nogil:
    """Max over the windows of one output row; ``indices`` (or NULL) receives flat plane indices.

    Like torch: the running maximum starts at -inf with the index of the
    window's first element, and an element replaces it if it is greater or NaN.
    """
    cdef Py_ssize_t d_start = od * ad.stride - ad.pad
    cdef Py_ssize_t h_start = oh * ah.stride - ah.pad
    cdef Py_ssize_t td, th, tw, ow, lo, hi, offset, row_start, base
    cdef Py_ssize_t sw = aw.stride
    cdef const floating* row
    cdef floating v, m
    for ow in range(aw.out):
        out[ow] = -INFINITY
    if indices != NULL:
        base = (_first_valid(d_start, ad.dilation) * ah.length + _first_valid(h_start, ah.dilation)) * aw.length
        for ow in range(aw.out):
            indices[ow] = base + _first_valid(ow * sw - aw.pad, aw.dilation)
    for td in range(_first_tap(d_start, ad.dilation), _end_tap(d_start, ad)):
        for th in range(_first_tap(h_start, ah.dilation), _end_tap(h_start, ah)):
            row_start = ((d_start + td * ad.dilation) * ah.length + h_start + th * ah.dilation) * aw.length
            row = plane + row_start
            for tw in range(aw.kernel):
                offset = tw * aw.dilation - aw.pad
                lo = _first_output(offset, aw)
                hi = _end_output(offset, aw)
                if indices != NULL:
                    for ow in range(lo, hi):
                        v = row[ow * sw + offset]
                        if v > out[ow] or v != v:
                            out[ow] = v
                            indices[ow] = row_start + ow * sw + offset
                elif sw == 1:
                    for ow in range(lo, hi):
                        v = row[ow + offset]
                        m = out[ow]
                        out[ow] = v if (v > m or v != v) else m
                elif sw == 2:
                    for ow in range(lo, hi):
                        v = row[2 * ow + offset]
                        m = out[ow]
                        out[ow] = v if (v > m or v != v) else m
                else:
                    for ow in range(lo, hi):
                        v = row[ow * sw + offset]
                        m = out[ow]
                        out[ow] = v if (v > m or v != v) else m


cdef inline void _window_extent(Py_ssize_t o, Axis a, Py_ssize_t* pool_size, Py_ssize_t* count) noexcept nogil:
    """torch's average-pool window: clipped to input + padding (pool_size), then to the input (count)."""
    cdef Py_ssize_t start = o * a.stride - a.pad
    cdef Py_ssize_t end = min(start + a.kernel, a.length + a.pad)
    pool_size[0] = end - start
    count[0] = min(end, a.length) - max(start, 0)


cdef void _avg_pool_row(const floating* plane, floating* out, Py_ssize_t od, Py_ssize_t oh,
                        Axis ad, Axis ah, Axis aw, bint count_include_pad,
                        Py_ssize_t divisor_override) noexcept nogil:
    """Average over the windows of one output row (dilation 1; divisor_override 0 means none).

    Like torch: the sum starts at 0 and adds the window's elements in order;
    it is divided by divisor_override, else by the window size clipped to
    input + padding (count_include_pad) or to the input.
    """
    cdef Py_ssize_t d_start = od * ad.stride - ad.pad
    cdef Py_ssize_t h_start = oh * ah.stride - ah.pad
    cdef Py_ssize_t td, th, tw, ow, lo, hi, offset, divisor
    cdef Py_ssize_t d_pool, d_count, h_pool, h_count, w_pool, w_count
    cdef Py_ssize_t sw = aw.stride
    cdef const floating* row
    for ow in range(aw.out):
        out[ow] = 0
    for td in range(_first_tap(d_start, 1), _end_tap(d_start, ad)):
        for th in range(_first_tap(h_start, 1), _end_tap(h_start, ah)):
            row = plane + ((d_start + td) * ah.length + h_start + th) * aw.length
            for tw in range(aw.kernel):
                offset = tw - aw.pad
                lo = _first_output(offset, aw)
                hi = _end_output(offset, aw)
                if sw == 1:
                    for ow in range(lo, hi):
                        out[ow] += row[ow + offset]
                elif sw == 2:
                    for ow in range(lo, hi):
                        out[ow] += row[2 * ow + offset]
                else:
                    for ow in range(lo, hi):
                        out[ow] += row[ow * sw + offset]
    _window_extent(od, ad, &d_pool, &d_count)
    _window_extent(oh, ah, &h_pool, &h_count)
    for ow in range(aw.out):
        _window_extent(ow, aw, &w_pool, &w_count)
        if d_count <= 0 or h_count <= 0 or w_count <= 0:
            out[ow] = 0
            continue
        if divisor_override != 0:
            divisor = divisor_override
        elif count_include_pad:
            divisor = d_pool * h_pool * w_pool
        else:
            divisor = d_count * h_count * w_count
        out[ow] = out[ow] / <floating>divisor


cdef Axis _axis(Py_ssize_t length, Py_ssize_t out, Py_ssize_t kernel, Py_ssize_t stride,
                Py_ssize_t pad, Py_ssize_t dilation):
    cdef Axis a
    a.length = length
    a.out = out
    a.kernel = kernel
    a.stride = stride
    a.pad = pad
    a.dilation = dilation
    return a


def max_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, int64_t[:, :, :, ::1] indices,
             tuple kernel_size, tuple stride, tuple padding, tuple dilation, int num_threads):
    """Max pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW), both allocated by the caller.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are (d, h, w)
    triples; the caller checks them (kernel, stride, dilation >= 1, padding
    >= 0) and computes OD, OH, OW.  ``indices`` (same shape as ``out``, int64)
    receives each maximum's flat index in its input plane, as torch returns
    it; pass None to skip them.
    """
    cdef Py_ssize_t planes = x.shape[0], rows_per_plane = out.shape[1] * out.shape[2]
    cdef Py_ssize_t r, p, od, oh
    cdef bint with_indices = indices is not None
    cdef Axis ad = _axis(x.shape[1], out.shape[1], kernel_size[0], stride[0], padding[0], dilation[0])
    cdef Axis ah = _axis(x.shape[2], out.shape[2], kernel_size[1], stride[1], padding[1], dilation[1])
    cdef Axis aw = _axis(x.shape[3], out.shape[3], kernel_size[2], stride[2], padding[2], dilation[2])
    if planes == 0 or out.shape[1] == 0 or out.shape[2] == 0 or out.shape[3] == 0:
        return
    for r in prange(planes * rows_per_plane, nogil=True, schedule='static', num_threads=num_threads):
        p = r // rows_per_plane
        od = (r % rows_per_plane) // out.shape[2]
        oh = r % out.shape[2]
        _max_pool_row(&x[p, 0, 0, 0], &out[p, od, oh, 0],
                      &indices[p, od, oh, 0] if with_indices else NULL,
                      od, oh, ad, ah, aw)


def avg_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, tuple kernel_size, tuple stride,
             tuple padding, bint count_include_pad, Py_ssize_t divisor_override, int num_threads):
    """Average pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW), both allocated by the caller.

    ``kernel_size``, ``stride`` and ``padding`` are (d, h, w) triples checked
    by the caller; ``divisor_override`` 0 means torch's divisor rule.
    """
    cdef Py_ssize_t planes = x.shape[0], rows_per_plane = out.shape[1] * out.shape[2]
    cdef Py_ssize_t r, p, od, oh
    cdef Axis ad = _axis(x.shape[1], out.shape[1], kernel_size[0], stride[0], padding[0], 1)
    cdef Axis ah = _axis(x.shape[2], out.shape[2], kernel_size[1], stride[1], padding[1], 1)
    cdef Axis aw = _axis(x.shape[3], out.shape[3], kernel_size[2], stride[2], padding[2], 1)
    if planes == 0 or out.shape[1] == 0 or out.shape[2] == 0 or out.shape[3] == 0:
        return
    for r in prange(planes * rows_per_plane, nogil=True, schedule='static', num_threads=num_threads):
        p = r // rows_per_plane
        od = (r % rows_per_plane) // out.shape[2]
        oh = r % out.shape[2]
        _avg_pool_row(&x[p, 0, 0, 0], &out[p, od, oh, 0], od, oh, ad, ah, aw,
                      count_include_pad, divisor_override)


cdef Py_ssize_t _unpool_plane(const floating* x, const int64_t* indices, floating* out,
                              Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """Zero one output plane, scatter x into it; returns how many indices fell outside it."""
    cdef Py_ssize_t i, bad = 0
    cdef int64_t target
    memset(out, 0, n_out * sizeof(floating))
    for i in range(n_in):
        target = indices[i]
        if 0 <= target < n_out:
            out[target] = x[i]
        else:
            bad += 1
    return bad


def max_unpool(const floating[:, ::1] x, const int64_t[:, ::1] indices, floating[:, ::1] out, int num_threads):
    """Scatter planes ``x`` (P, n_in) into ``out`` (P, n_out) at ``indices`` (P, n_in, int64); zeros elsewhere.

    The caller allocates ``out``.  Within a plane later elements win when two
    indices coincide (as in torch).  Indices outside [0, n_out) are skipped
    and counted; returns that count (the caller raises when it is not 0).
    """
    cdef Py_ssize_t planes = x.shape[0], n_in = x.shape[1], n_out = out.shape[1]
    cdef Py_ssize_t p, bad = 0
    for p in prange(planes, nogil=True, schedule='static', num_threads=num_threads):
        bad += _unpool_plane(&x[p, 0], &indices[p, 0], &out[p, 0], n_in, n_out)
    return bad
