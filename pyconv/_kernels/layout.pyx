"""Layout kernels: pixel shuffles move pixels between channels and space.

``pixel_shuffle`` / ``pixel_unshuffle`` (sub-pixel rearrangement) write one
output row per step, so one thread owns each output row.  The Python layer
validates the arguments and allocates the outputs.
"""
from cython cimport floating
from cython.parallel cimport prange


def pixel_shuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, c, h * r + i, w * r + j] = x[n, (c * r + i) * r + j, h, w]`` with r = ``factor``.

    ``x``: (N, C * r * r, H, W); ``out``: (N, C, H * r, W * r), allocated by the caller.
    """
    cdef Py_ssize_t batch = out.shape[0], channels = out.shape[1], OH = out.shape[2], W = x.shape[3]
    cdef Py_ssize_t row, n, c, oh, h, i, j, w
    cdef const floating* source
    cdef floating* target
    with nogil:
        for row in prange(batch * channels * OH, schedule="static", num_threads=num_threads):
            oh = row % OH
            c = (row // OH) % channels
            n = row // (OH * channels)
            h = oh // factor
            i = oh - h * factor
            target = &out[n, c, oh, 0]
            for j in range(factor):
                source = &x[n, (c * factor + i) * factor + j, h, 0]
                for w in range(W):
                    target[w * factor + j] = source[w]


def pixel_unshuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, (c * r + i) * r + j, h, w] = x[n, c, h * r + i, w * r + j]`` with r = ``factor``.

    ``x``: (N, C, H * r, W * r); ``out``: (N, C * r * r, H, W), allocated by the caller.
    """
    cdef Py_ssize_t batch = out.shape[0], channels = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t row, n, oc, oh, c, i, j, w
    cdef const floating* source
    cdef floating* target
    with nogil:
        for row in prange(batch * channels * OH, schedule="static", num_threads=num_threads):
            oh = row % OH
            oc = (row // OH) % channels
            n = row // (OH * channels)
            c = oc // (factor * factor)
            i = (oc // factor) % factor
            j = oc % factor
            source = &x[n, c, oh * factor + i, j]
            target = &out[n, oc, oh, 0]
            for w in range(OW):
                target[w] = source[w * factor]
