"""Depthwise convolution (groups == in_channels, channel multiplier m >= 1), 1-D and 2-D.

Output channel c * m + j reads input channel c only, through its own
KH x KW filter.  One task is a band of output rows of one input plane
(n, c): for each output row it fetches the KH padded input rows it needs
from a per-thread row cache (row_cache.pxd: padding written once, stride-s
rows split into s phases so every tap is a unit-stride run), then computes
the row of each of the m output channels with a row kernel and finishes it
with the fused epilogue while it is in cache.

Row kernels (GNU C vector extensions, vector width from the compiler's
target macros): dedicated ones for 3x3 and 5x5 with stride 1 and 2
(horizontal dilation 1; any vertical stride and dilation) keep the filter in registers and compute two vectors per step;
a generic one serves every other kernel size, stride and dilation.  Each
computes whole vectors; a row whose width is not a multiple of the vector
length ends with a vector overlapping the previous one (recomputing some
outputs with the same operations, hence the same bits), a row narrower
than one vector is computed as a vector and stored partially.

Every output element is the sum over (kh, kw) in that order of
weight * input, padding included as zeros (so a non-finite weight meets
the padding as torch's kernels do), computed by one thread: the bits do not
depend on the thread count.  Tasks are (n, c) planes, split into bands of
output rows when there are fewer than 4 planes per thread.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_row
from pyconv._kernels.window_rows cimport (WindowRows, window_rows_fill, window_rows_init, window_rows_phase_len,
                                          window_rows_row_len)

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Vector width from the compiler's target macros (-march=...). */
    #if defined(__AVX512F__)
    #define PYCONV_DW_VBYTES 32
    #elif defined(__AVX__)
    #define PYCONV_DW_VBYTES 32
    #else
    #define PYCONV_DW_VBYTES 16
    #endif
    #define PYCONV_DW_VL_MAX (PYCONV_DW_VBYTES / 4)

    #if defined(_MSC_VER)
    #define PYCONV_DW_RESTRICT __restrict
    #else
    #define PYCONV_DW_RESTRICT restrict
    #endif

    /* Band kernels: output rows r < rows, each n elements, out_step apart:
         out[r * out_step + ow] = sum over kh, kw (in that order) of
                                  w[kh * KW + kw] * in[r * in_step + kh * tap_step + offset(kw) + ow]
       where offset(kw) = (kw * d) % s * L + (kw * d) / s addresses tap kw in a
       phase-split buffered row (window_rows.pxd).
       A row is computed two vectors at a time while they fit, then one at a
       time, the last vector moved back to end at n (overlapping vectors
       recompute some outputs with the same operations, hence the same bits);
       a row narrower than a vector is one vector at 0, stored in part. */
    #if defined(__GNUC__)
    #define PYCONV_DW_STORE(T, VL, o, at, v)                                         \\
        if (n >= VL) memcpy((o) + (at), &(v), sizeof(v));                            \\
        else memcpy((o), &(v), n * sizeof(T));
    #define PYCONV_DW_ROW_LOOP(VL, PAIR, ONE)                                        \\
        {                                                                            \\
            ptrdiff_t ow = 0;                                                        \\
            for (; ow + 2 * VL <= n; ow += 2 * VL) { PAIR }                          \\
            while (ow < n) {                                                         \\
                ptrdiff_t at = ow + VL <= n ? ow : (n >= VL ? n - VL : 0);           \\
                ONE                                                                  \\
                ow = at + VL;                                                        \\
            }                                                                        \\
        }
    /* K x K taps, stride S along the row, dilation 1 along the row.  When
       consecutive output rows are one input row apart (in_step == tap_step),
       rows go in pairs that load each shared input vector once. */
    #define PYCONV_DW_SPECIAL(NAME, T, K, S)                                         \\
    static void NAME(T *PYCONV_DW_RESTRICT out, ptrdiff_t rows, ptrdiff_t n,         \\
                     ptrdiff_t out_step, const T *PYCONV_DW_RESTRICT in,             \\
                     ptrdiff_t in_step, ptrdiff_t tap_step, ptrdiff_t L,             \\
                     const T *PYCONV_DW_RESTRICT w)                                  \\
    {                                                                                \\
        typedef T vec __attribute__((vector_size(PYCONV_DW_VBYTES)));                \\
        enum { VL = PYCONV_DW_VBYTES / sizeof(T) };                                  \\
        vec wv[K * K];                                                               \\
        _Pragma("GCC unroll 32")                                                     \\
        for (int i = 0; i < K * K; i++) wv[i] = (vec){0} + w[i];                     \\
        ptrdiff_t r = 0;                                                             \\
        if (in_step == tap_step) {                                                   \\
            for (; r + 2 <= rows; r += 2) {                                          \\
                T *o = out + r * out_step, *o1 = o + out_step;                       \\
                const T *p[K + 1][S];                                                \\
                _Pragma("GCC unroll 8")                                              \\
                for (int i = 0; i <= K; i++)                                         \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int ph = 0; ph < S; ph++)                                   \\
                        p[i][ph] = in + (r + i) * tap_step + ph * L;                 \\
                PYCONV_DW_ROW_LOOP(VL,                                               \\
                    vec a0 = {0}; vec a1 = {0}; vec b0 = {0}; vec b1 = {0};          \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int i = 0; i <= K; i++)                                     \\
                        _Pragma("GCC unroll 8")                                      \\
                        for (int kw = 0; kw < K; kw++) {                             \\
                            const T *q = p[i][kw % S] + kw / S + ow;                 \\
                            vec x0; vec x1;                                          \\
                            memcpy(&x0, q, sizeof x0);                               \\
                            memcpy(&x1, q + VL, sizeof x1);                          \\
                            if (i < K) {                                             \\
                                a0 += wv[i * K + kw] * x0;                           \\
                                a1 += wv[i * K + kw] * x1;                           \\
                            }                                                        \\
                            if (i > 0) {                                             \\
                                b0 += wv[(i - 1) * K + kw] * x0;                     \\
                                b1 += wv[(i - 1) * K + kw] * x1;                     \\
                            }                                                        \\
                        }                                                            \\
                    memcpy(o + ow, &a0, sizeof a0);                                  \\
                    memcpy(o + ow + VL, &a1, sizeof a1);                             \\
                    memcpy(o1 + ow, &b0, sizeof b0);                                 \\
                    memcpy(o1 + ow + VL, &b1, sizeof b1);                            \\
                ,                                                                    \\
                    vec a0 = {0}; vec b0 = {0};                                      \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int i = 0; i <= K; i++)                                     \\
                        _Pragma("GCC unroll 8")                                      \\
                        for (int kw = 0; kw < K; kw++) {                             \\
                            vec x0;                                                  \\
                            memcpy(&x0, p[i][kw % S] + kw / S + at, sizeof x0);      \\
                            if (i < K) a0 += wv[i * K + kw] * x0;                    \\
                            if (i > 0) b0 += wv[(i - 1) * K + kw] * x0;              \\
                        }                                                            \\
                    PYCONV_DW_STORE(T, VL, o, at, a0)                                \\
                    PYCONV_DW_STORE(T, VL, o1, at, b0)                               \\
                )                                                                    \\
            }                                                                        \\
        }                                                                            \\
        for (; r < rows; r++) {                                                      \\
            T *o = out + r * out_step;                                               \\
            const T *p[K][S];                                                        \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int kh = 0; kh < K; kh++)                                           \\
                _Pragma("GCC unroll 8")                                              \\
                for (int ph = 0; ph < S; ph++)                                       \\
                    p[kh][ph] = in + r * in_step + kh * tap_step + ph * L;           \\
            PYCONV_DW_ROW_LOOP(VL,                                                   \\
                vec a0 = {0}; vec a1 = {0};                                          \\
                _Pragma("GCC unroll 8")                                              \\
                for (int kh = 0; kh < K; kh++)                                       \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int kw = 0; kw < K; kw++) {                                 \\
                        const T *q = p[kh][kw % S] + kw / S + ow;                    \\
                        vec x0; vec x1;                                              \\
                        memcpy(&x0, q, sizeof x0);                                   \\
                        memcpy(&x1, q + VL, sizeof x1);                              \\
                        a0 += wv[kh * K + kw] * x0;                                  \\
                        a1 += wv[kh * K + kw] * x1;                                  \\
                    }                                                                \\
                memcpy(o + ow, &a0, sizeof a0);                                      \\
                memcpy(o + ow + VL, &a1, sizeof a1);                                 \\
            ,                                                                        \\
                vec a0 = {0};                                                        \\
                _Pragma("GCC unroll 8")                                              \\
                for (int kh = 0; kh < K; kh++)                                       \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int kw = 0; kw < K; kw++) {                                 \\
                        vec x0;                                                      \\
                        memcpy(&x0, p[kh][kw % S] + kw / S + at, sizeof x0);         \\
                        a0 += wv[kh * K + kw] * x0;                                  \\
                    }                                                                \\
                PYCONV_DW_STORE(T, VL, o, at, a0)                                    \\
            )                                                                        \\
        }                                                                            \\
    }
    /* Any KH x KW, stride and dilation: tap (kh, kw) of a row starts at
       kh * tap_step + offsets[kw].  One row at a time. */
    #define PYCONV_DW_GENERIC(NAME, T)                                               \\
    static void NAME(T *PYCONV_DW_RESTRICT out, ptrdiff_t rows, ptrdiff_t n,         \\
                     ptrdiff_t out_step, const T *PYCONV_DW_RESTRICT in,             \\
                     ptrdiff_t in_step, ptrdiff_t tap_step, ptrdiff_t kh_count,      \\
                     const ptrdiff_t *offsets, ptrdiff_t kw_count,                   \\
                     const T *PYCONV_DW_RESTRICT w)                                  \\
    {                                                                                \\
        typedef T vec __attribute__((vector_size(PYCONV_DW_VBYTES)));                \\
        enum { VL = PYCONV_DW_VBYTES / sizeof(T) };                                  \\
        for (ptrdiff_t r = 0; r < rows; r++) {                                       \\
            T *o = out + r * out_step;                                               \\
            const T *base = in + r * in_step;                                        \\
            PYCONV_DW_ROW_LOOP(VL,                                                   \\
                vec a0 = {0}; vec a1 = {0};                                          \\
                for (ptrdiff_t kh = 0; kh < kh_count; kh++)                          \\
                    for (ptrdiff_t kw = 0; kw < kw_count; kw++) {                    \\
                        const T *q = base + kh * tap_step + offsets[kw] + ow;        \\
                        T wk = w[kh * kw_count + kw];                                \\
                        vec x0; vec x1;                                              \\
                        memcpy(&x0, q, sizeof x0);                                   \\
                        memcpy(&x1, q + VL, sizeof x1);                              \\
                        a0 += wk * x0;                                               \\
                        a1 += wk * x1;                                               \\
                    }                                                                \\
                memcpy(o + ow, &a0, sizeof a0);                                      \\
                memcpy(o + ow + VL, &a1, sizeof a1);                                 \\
            ,                                                                        \\
                vec a0 = {0};                                                        \\
                for (ptrdiff_t kh = 0; kh < kh_count; kh++)                          \\
                    for (ptrdiff_t kw = 0; kw < kw_count; kw++) {                    \\
                        vec x0;                                                      \\
                        memcpy(&x0, base + kh * tap_step + offsets[kw] + at,         \\
                               sizeof x0);                                           \\
                        a0 += w[kh * kw_count + kw] * x0;                            \\
                    }                                                                \\
                PYCONV_DW_STORE(T, VL, o, at, a0)                                    \\
            )                                                                        \\
        }                                                                            \\
    }
    #else
    #error "pyconv's depthwise kernels need GNU C vector extensions (gcc or clang)"
    #endif

    PYCONV_DW_SPECIAL(pyconv_dw_3x3s1_f32, float, 3, 1)
    PYCONV_DW_SPECIAL(pyconv_dw_3x3s2_f32, float, 3, 2)
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s1_f32, float, 5, 1)
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s2_f32, float, 5, 2)
    PYCONV_DW_GENERIC(pyconv_dw_generic_f32, float)
    PYCONV_DW_SPECIAL(pyconv_dw_3x3s1_f64, double, 3, 1)
    PYCONV_DW_SPECIAL(pyconv_dw_3x3s2_f64, double, 3, 2)
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s1_f64, double, 5, 1)
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s2_f64, double, 5, 2)
    PYCONV_DW_GENERIC(pyconv_dw_generic_f64, double)
    """
    enum:
        DW_VL_MAX "PYCONV_DW_VL_MAX"   # the most elements in one vector (float32)
    void pyconv_dw_3x3s1_f32(float* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const float* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const float* w) noexcept nogil
    void pyconv_dw_3x3s2_f32(float* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const float* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const float* w) noexcept nogil
    void pyconv_dw_5x5s1_f32(float* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const float* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const float* w) noexcept nogil
    void pyconv_dw_5x5s2_f32(float* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const float* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const float* w) noexcept nogil
    void pyconv_dw_generic_f32(float* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const float* inp,
                               Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t kh_count,
                               const Py_ssize_t* offsets, Py_ssize_t kw_count, const float* w) noexcept nogil
    void pyconv_dw_3x3s1_f64(double* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const double* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const double* w) noexcept nogil
    void pyconv_dw_3x3s2_f64(double* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const double* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const double* w) noexcept nogil
    void pyconv_dw_5x5s1_f64(double* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const double* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const double* w) noexcept nogil
    void pyconv_dw_5x5s2_f64(double* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const double* inp,
                           Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t L, const double* w) noexcept nogil
    void pyconv_dw_generic_f64(double* out, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t out_step, const double* inp,
                               Py_ssize_t in_step, Py_ssize_t tap_step, Py_ssize_t kh_count,
                               const Py_ssize_t* offsets, Py_ssize_t kw_count, const double* w) noexcept nogil


cdef enum RowKernel:
    GENERIC
    K3S1
    K3S2
    K5S1
    K5S2

cdef enum:
    # Bytes of buffered input rows and of one band of output rows a task
    # keeps in L1 (bench/DEPTHWISE_POOLING.md).
    INPUT_BUDGET = 32768
    OUTPUT_BUDGET = 16384


cdef struct Geometry:
    Py_ssize_t channels, multiplier, out_channels
    Py_ssize_t out_h, out_w
    Py_ssize_t kernel_h, kernel_w, stride_h, dilation_h
    Py_ssize_t bands                 # output-row bands per plane
    RowKernel kernel
    const Py_ssize_t* offsets        # (kernel_w,) tap offsets in a buffered row (generic kernel)


cdef inline void _band_kernel(const Geometry* g, floating* out, Py_ssize_t rows, const floating* inp,
                              const WindowRows* win, const floating* w) noexcept nogil:
    """``rows`` output rows of one output channel (weights w) from the buffered input rows at inp."""
    cdef Py_ssize_t n = g.out_w, in_step = g.stride_h * win.row_len, tap_step = g.dilation_h * win.row_len
    cdef Py_ssize_t L = win.phase_len
    if floating is float:
        if g.kernel == K3S1:
            pyconv_dw_3x3s1_f32(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K3S2:
            pyconv_dw_3x3s2_f32(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K5S1:
            pyconv_dw_5x5s1_f32(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K5S2:
            pyconv_dw_5x5s2_f32(out, rows, n, n, inp, in_step, tap_step, L, w)
        else:
            pyconv_dw_generic_f32(out, rows, n, n, inp, in_step, tap_step, g.kernel_h, g.offsets, g.kernel_w, w)
    else:
        if g.kernel == K3S1:
            pyconv_dw_3x3s1_f64(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K3S2:
            pyconv_dw_3x3s2_f64(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K5S1:
            pyconv_dw_5x5s1_f64(out, rows, n, n, inp, in_step, tap_step, L, w)
        elif g.kernel == K5S2:
            pyconv_dw_5x5s2_f64(out, rows, n, n, inp, in_step, tap_step, L, w)
        else:
            pyconv_dw_generic_f64(out, rows, n, n, inp, in_step, tap_step, g.kernel_h, g.offsets, g.kernel_w, w)


cdef void _task(const floating* x, const floating* weight, floating* out, Py_ssize_t task,
                const Geometry* g, const WindowRows* win, floating* buffer, const Epilogue* ep) noexcept nogil:
    """Band task % bands of input plane task // bands: its output rows of the plane's m output channels."""
    cdef Py_ssize_t plane = task // g.bands, band = task % g.bands
    cdef Py_ssize_t n = plane // g.channels, c = plane % g.channels
    cdef Py_ssize_t oh_start = band * g.out_h // g.bands, oh_stop = (band + 1) * g.out_h // g.bands
    cdef Py_ssize_t rows = oh_stop - oh_start, out_plane = g.out_h * g.out_w
    cdef Py_ssize_t j, oc, offset, oh
    window_rows_fill(win, buffer, x + plane * win.in_h * win.in_w, oh_start * g.stride_h,
                     (rows - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1, <floating>0)
    for j in range(g.multiplier):
        oc = c * g.multiplier + j
        offset = (n * g.out_channels + oc) * out_plane + oh_start * g.out_w
        _band_kernel(g, out + offset, rows, buffer, win, weight + oc * g.kernel_h * g.kernel_w)
        for oh in range(rows):
            epilogue_row(ep, out, offset + oh * g.out_w, g.out_w, oc)


def depthwise_conv2d(const floating[:, :, :, ::1] x, const floating[:, ::1] weight, floating[:, :, :, ::1] out,
                     tuple kernel_size, tuple stride, tuple padding, tuple dilation,
                     const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
                     int activation, double p0, double p1, double p2, int num_threads):
    """Depthwise convolution with the fused epilogue: ``out = act(conv(x, weight) * scale + shift + residual)``.

    x: (N, C, H, W); weight: (C * m, KH * KW), output channel c * m + j
    filtering input channel c; out: (N, C * m, OH, OW), allocated by the
    caller with OH, OW the convolution's output size for ``kernel_size``,
    ``stride``, ``padding`` (top, left: the padding after is implied by OH,
    OW) and ``dilation``, each an (h, w) pair checked by the caller.  The
    epilogue arguments are those of epilogue.pxd (empty arrays: absent).
    A 1-D convolution is the case H = KH = 1.
    """
    cdef Geometry g
    cdef WindowRows win
    cdef Py_ssize_t batch = x.shape[0], in_h = x.shape[2], in_w = x.shape[3]
    cdef Py_ssize_t pad_h = padding[0], pad_w = padding[1], stride_w = stride[1], dilation_w = dilation[1]
    cdef Py_ssize_t planes, tasks, threads, phase_len, row_bytes, band_rows, buffer_rows, buffer_len
    cdef Py_ssize_t extent, task, kw, tap
    cdef Py_ssize_t* offsets
    cdef floating* buffers
    cdef char* memory
    cdef Epilogue ep = epilogue_init(&scale[0] if scale.shape[0] else NULL, &shift[0] if shift.shape[0] else NULL,
                                     &residual[0] if residual.shape[0] else NULL, activation, p0, p1, p2)
    g.channels = x.shape[1]
    g.out_channels = out.shape[1]
    g.multiplier = g.out_channels // g.channels
    g.out_h = out.shape[2]
    g.out_w = out.shape[3]
    g.kernel_h = kernel_size[0]
    g.kernel_w = kernel_size[1]
    g.stride_h = stride[0]
    g.dilation_h = dilation[0]
    planes = batch * g.channels
    if planes == 0 or g.out_h == 0 or g.out_w == 0:
        return
    g.kernel = GENERIC
    if dilation_w == 1 and g.kernel_h == g.kernel_w:
        if g.kernel_h == 3 and stride_w == 1:
            g.kernel = K3S1
        elif g.kernel_h == 3 and stride_w == 2:
            g.kernel = K3S2
        elif g.kernel_h == 5 and stride_w == 1:
            g.kernel = K5S1
        elif g.kernel_h == 5 and stride_w == 2:
            g.kernel = K5S2
    phase_len = window_rows_phase_len(g.out_w, g.kernel_w, stride_w, dilation_w, DW_VL_MAX)
    row_bytes = window_rows_row_len(phase_len, stride_w, sizeof(floating)) * sizeof(floating)
    extent = (g.kernel_h - 1) * g.dilation_h + 1
    # Bands of output rows: as many rows as fit the L1 budgets, and at least 4 tasks per thread.
    band_rows = min(max(1, (INPUT_BUDGET // row_bytes - extent) // g.stride_h + 1),
                    max(1, OUTPUT_BUDGET // (g.out_w * sizeof(floating))))
    g.bands = (g.out_h + band_rows - 1) // band_rows
    threads = max(1, num_threads)
    if planes * g.bands < 4 * threads:
        g.bands = min(g.out_h, (4 * threads + planes - 1) // planes)
    tasks = planes * g.bands
    threads = min(threads, tasks)
    buffer_rows = ((g.out_h + g.bands - 1) // g.bands - 1) * g.stride_h + extent
    buffer_len = buffer_rows * (row_bytes // sizeof(floating))
    memory = <char*>malloc(threads * buffer_len * sizeof(floating) + g.kernel_w * sizeof(Py_ssize_t) + 64)
    if memory == NULL:
        raise MemoryError("depthwise_conv2d: cannot allocate the row buffers")
    buffers = <floating*>(memory + (-<uintptr_t>memory) % 64)
    offsets = <Py_ssize_t*>(buffers + threads * buffer_len)
    for kw in range(g.kernel_w):
        tap = kw * dilation_w
        offsets[kw] = (tap % stride_w) * phase_len + tap // stride_w
    g.offsets = offsets
    try:
        with nogil:
            for task in range(threads):
                win = window_rows_init(buffers + task * buffer_len, buffer_rows, <floating>0,
                                       in_h, in_w, pad_h, pad_w, stride_w, phase_len)
            for task in prange(tasks, schedule='static', num_threads=threads):
                _task(&x[0, 0, 0, 0], &weight[0, 0], &out[0, 0, 0, 0], task, &g, &win,
                      buffers + threadid() * buffer_len, &ep)
    finally:
        free(memory)
