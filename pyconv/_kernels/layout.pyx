"""Layout kernels: pixel shuffles move pixels between channels and space.

``pixel_shuffle`` / ``pixel_unshuffle`` (sub-pixel rearrangement) move them
between channels and space; ``polyphase_split`` / ``polyphase_merge`` between
the batch and space (a dilated convolution as a batch of undilated ones).
Each writes one output row per task of parallel.pxd's parallel_for, so one
thread owns each output row.  ``concatenate`` copies runs of bytes in tasks of
at most CONCAT_CHUNK bytes.  The callers validate the arguments and allocate
the outputs.
"""
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from pyconv._kernels.parallel cimport parallel_for


cdef struct Job:
    # One pixel_shuffle or pixel_unshuffle call, for parallel_for (shapes as in the def).
    bint double_precision
    const void* x
    void* out
    Py_ssize_t factor
    Py_ssize_t channels, OH          # out.shape[1], out.shape[2]
    Py_ssize_t H, W                  # x.shape[2], x.shape[3]
    Py_ssize_t OW                    # out.shape[3]


cdef void _shuffle_row(const floating* x, floating* out, Py_ssize_t row, const Job* job) noexcept nogil:
    # Output row (n, c, oh) of pixel_shuffle; x is (N, C * r * r, H, W).
    cdef Py_ssize_t factor = job.factor, W = job.W, OH = job.OH
    cdef Py_ssize_t oh = row % OH
    cdef Py_ssize_t nc = row // OH              # n * channels + c
    cdef Py_ssize_t h = oh // factor
    cdef Py_ssize_t i = oh - h * factor, j, w
    cdef const floating* source
    cdef floating* target = out + row * job.OW
    for j in range(factor):
        source = x + (((nc * factor + i) * factor + j) * job.H + h) * W
        for w in range(W):
            target[w * factor + j] = source[w]


cdef void _shuffle_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _shuffle_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _shuffle_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _unshuffle_row(const floating* x, floating* out, Py_ssize_t row, const Job* job) noexcept nogil:
    # Output row (n, oc, oh) of pixel_unshuffle; x is (N, C, H * r, W * r).
    cdef Py_ssize_t factor = job.factor, OW = job.OW, OH = job.OH
    cdef Py_ssize_t oh = row % OH
    cdef Py_ssize_t noc = row // OH             # n * channels + oc
    cdef Py_ssize_t oc = noc % job.channels
    cdef Py_ssize_t n = noc // job.channels
    cdef Py_ssize_t c = oc // (factor * factor)
    cdef Py_ssize_t i = (oc // factor) % factor
    cdef Py_ssize_t j = oc % factor, w
    cdef const floating* source = x + ((n * (job.channels // (factor * factor)) + c) * job.H
                                       + oh * factor + i) * job.W + j
    cdef floating* target = out + row * OW
    for w in range(OW):
        target[w] = source[w * factor]


cdef void _unshuffle_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        _unshuffle_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _unshuffle_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _init_job(Job* job, const void* x, void* out, Py_ssize_t* x_shape, Py_ssize_t* out_shape,
                    Py_ssize_t factor) noexcept:
    job.x = x
    job.out = out
    job.factor = factor
    job.channels, job.OH, job.OW = out_shape[1], out_shape[2], out_shape[3]
    job.H, job.W = x_shape[2], x_shape[3]


def pixel_shuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, c, h * r + i, w * r + j] = x[n, (c * r + i) * r + j, h, w]`` with r = ``factor``.

    ``x``: (N, C * r * r, H, W); ``out``: (N, C, H * r, W * r), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef Job job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape, factor)
    job.double_precision = floating is double
    with nogil:
        parallel_for(_shuffle_task, &job, rows, num_threads)


def pixel_unshuffle(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t factor, int num_threads):
    """``out[n, (c * r + i) * r + j, h, w] = x[n, c, h * r + i, w * r + j]`` with r = ``factor``.

    ``x``: (N, C, H * r, W * r); ``out``: (N, C * r * r, H, W), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef Job job
    if rows == 0 or out.shape[3] == 0:
        return
    _init_job(&job, &x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape, out.shape, factor)
    job.double_precision = floating is double
    with nogil:
        parallel_for(_unshuffle_task, &job, rows, num_threads)


cdef struct PolyphaseJob:
    # One polyphase_split or polyphase_merge call, for parallel_for.
    bint double_precision
    const void* x
    void* out
    Py_ssize_t dh, dw                # the phase factors (dilation)
    Py_ssize_t pad_h, pad_w          # polyphase_split: the zero padding before the input
    Py_ssize_t N, C, H, W            # the spatial image: (N, C, H, W)
    Py_ssize_t PH, PW                # each phase: (PH, PW)


cdef void _split_row(const floating* x, floating* out, Py_ssize_t row, const PolyphaseJob* job) noexcept nogil:
    # Output row ((i * dw + j) * N + n, c, ph) of polyphase_split.
    cdef Py_ssize_t PW = job.PW, W = job.W, dw = job.dw
    cdef Py_ssize_t ph = row % job.PH
    cdef Py_ssize_t rest = row // job.PH
    cdef Py_ssize_t nc = rest % (job.N * job.C)
    cdef Py_ssize_t phase = rest // (job.N * job.C)
    cdef Py_ssize_t i = phase // dw, j = phase % dw
    cdef Py_ssize_t h = ph * job.dh + i - job.pad_h, w, pw
    cdef floating* target = out + row * PW
    cdef const floating* source
    if h < 0 or h >= job.H:
        for pw in range(PW):
            target[pw] = 0
        return
    source = x + (nc * job.H + h) * W
    for pw in range(PW):
        w = pw * dw + j - job.pad_w
        target[pw] = source[w] if 0 <= w < W else 0


cdef void _split_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const PolyphaseJob* job = <const PolyphaseJob*>context
    if job.double_precision:
        _split_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _split_row(<const float*>job.x, <float*>job.out, row, job)


cdef void _merge_row(const floating* x, floating* out, Py_ssize_t row, const PolyphaseJob* job) noexcept nogil:
    # Output row (n, c, h) of polyphase_merge.
    cdef Py_ssize_t W = job.W, dw = job.dw, NC = job.N * job.C
    cdef Py_ssize_t h = row % job.H
    cdef Py_ssize_t nc = row // job.H
    cdef Py_ssize_t i = h % job.dh, j, pw
    cdef const floating* source
    cdef floating* target = out + row * W
    for j in range(min(dw, W)):
        source = x + (((i * dw + j) * NC + nc) * job.PH + h // job.dh) * job.PW
        for pw in range((W - j + dw - 1) // dw):
            target[pw * dw + j] = source[pw]


cdef void _merge_task(void* context, Py_ssize_t row, int thread) noexcept nogil:
    cdef const PolyphaseJob* job = <const PolyphaseJob*>context
    if job.double_precision:
        _merge_row(<const double*>job.x, <double*>job.out, row, job)
    else:
        _merge_row(<const float*>job.x, <float*>job.out, row, job)


def polyphase_split(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t pad_h, Py_ssize_t pad_w,
                    Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """``out[(i * dw + j) * N + n, c, ph, pw] = xp[n, c, ph * dh + i, pw * dw + j]``, xp = ``x`` zero-padded.

    ``x``: (N, C, H, W); xp is x with ``pad_h`` / ``pad_w`` zero rows / columns
    before it and zeros past its end.  ``out``: (dh * dw * N, C, PH, PW),
    allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef PolyphaseJob job
    if rows == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x, job.out = &x[0, 0, 0, 0] if x.size else NULL, &out[0, 0, 0, 0]
    job.dh, job.dw, job.pad_h, job.pad_w = dh, dw, pad_h, pad_w
    job.N, job.C, job.H, job.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    job.PH, job.PW = out.shape[2], out.shape[3]
    with nogil:
        parallel_for(_split_task, &job, rows, num_threads)


def polyphase_merge(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t dh, Py_ssize_t dw,
                    int num_threads):
    """``out[n, c, h, w] = x[((h % dh) * dw + w % dw) * N + n, c, h // dh, w // dw]``: polyphase_split's inverse.

    ``x``: (dh * dw * N, C, PH, PW) with PH >= ceil(H / dh), PW >= ceil(W / dw);
    ``out``: (N, C, H, W), allocated by the caller.
    """
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1] * out.shape[2]
    cdef PolyphaseJob job
    if rows == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x, job.out = &x[0, 0, 0, 0], &out[0, 0, 0, 0]
    job.dh, job.dw, job.pad_h, job.pad_w = dh, dw, 0, 0
    job.N, job.C, job.H, job.W = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
    job.PH, job.PW = x.shape[2], x.shape[3]
    with nogil:
        parallel_for(_merge_task, &job, rows, num_threads)


cdef enum:
    CONCAT_CHUNK = 32768     # bytes per task: small enough to balance two threads on one row


cdef struct ConcatJob:
    # One concatenate call: per piece its first byte, its bytes per outer row, the byte of an output
    # row it starts at, and the chunks before it in a row (prefix[k] .. prefix[k + 1] - 1 are its chunks).
    const unsigned char** pieces
    Py_ssize_t* piece_bytes
    Py_ssize_t* out_offsets
    Py_ssize_t* prefix
    Py_ssize_t count, row_chunks, row_bytes
    unsigned char* out


cdef void _concat_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const ConcatJob* job = <const ConcatJob*>context
    cdef Py_ssize_t row = task // job.row_chunks, chunk = task % job.row_chunks
    cdef Py_ssize_t lo = 0, hi = job.count - 1, mid, start, size
    while lo < hi:                     # the piece k with prefix[k] <= chunk < prefix[k + 1]
        mid = (lo + hi + 1) // 2
        if job.prefix[mid] <= chunk:
            lo = mid
        else:
            hi = mid - 1
    start = (chunk - job.prefix[lo]) * CONCAT_CHUNK
    size = min(<Py_ssize_t>CONCAT_CHUNK, job.piece_bytes[lo] - start)
    memcpy(job.out + row * job.row_bytes + job.out_offsets[lo] + start,
           job.pieces[lo] + row * job.piece_bytes[lo] + start, size)


def concatenate(list pieces, unsigned char[:, ::1] out, int num_threads):
    """out[r] = the bytes of pieces[0][r], pieces[1][r], ... one after the other, for every row r.

    pieces: (R, B_k) C-contiguous byte views (arrays of one dtype concatenated along dim d, seen as
    rows of the dims before d), their B_k summing to out's row length (checked); out (R, sum B_k),
    not overlapping any piece.
    """
    cdef Py_ssize_t rows = out.shape[0], count = len(pieces), k = 0, column = 0
    cdef const unsigned char[:, ::1] piece
    for piece in pieces:
        if piece.shape[0] != rows:
            raise ValueError(f"concatenate: expected pieces of {rows} rows, got {piece.shape[0]}")
        column += piece.shape[1]
    if column != out.shape[1]:
        raise ValueError(f"concatenate: the pieces' {column} bytes per row do not fill out's {out.shape[1]}")
    if rows == 0 or column == 0:
        return
    cdef ConcatJob job
    job.pieces = <const unsigned char**>malloc(count * sizeof(const unsigned char*))
    job.piece_bytes = <Py_ssize_t*>malloc(3 * (count + 1) * sizeof(Py_ssize_t))
    try:
        if job.pieces == NULL or job.piece_bytes == NULL:
            raise MemoryError()
        job.out_offsets = job.piece_bytes + count + 1
        job.prefix = job.out_offsets + count + 1
        job.prefix[0] = column = 0
        for piece in pieces:
            job.pieces[k] = &piece[0, 0] if piece.shape[1] else NULL
            job.piece_bytes[k] = piece.shape[1]
            job.out_offsets[k] = column
            job.prefix[k + 1] = job.prefix[k] + (piece.shape[1] + CONCAT_CHUNK - 1) // CONCAT_CHUNK
            column += piece.shape[1]
            k += 1
        job.count = count
        job.row_chunks = job.prefix[count]
        job.row_bytes = column
        job.out = &out[0, 0]
        with nogil:
            parallel_for(_concat_task, &job, rows * job.row_chunks, num_threads)
    finally:
        free(job.pieces)
        free(job.piece_bytes)
