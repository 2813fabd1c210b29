"""Depthwise convolution (groups == in_channels, channel multiplier m >= 1), 1-D and 2-D.

Output channel c * m + j reads input channel c only, through its own
KH x KW filter.  A task is a band of output rows of one input plane (n, c)
for its m output channels.  The band kernel (GNU C vector extensions, width
from the compiler's target macros) computes an output row from the KH input
rows it reads, a row of zeros standing for one outside the input (so a
non-finite weight meets the padding as in torch: inf * 0 is NaN there too):

* the interior columns, whose taps all lie inside the row, as whole vectors,
  two at a time, the last one moved back to end at the interior's end
  (overlapping vectors recompute some outputs with the same operations,
  hence the same bits).  Stride 1 loads each tap unaligned; stride 2 takes
  the even elements of two loads with a shuffle, two adjacent taps sharing
  their loads as the even and odd elements; other strides gather.  Each
  kernel row's taps are summed into their own partial sum (independent FMA
  chains), the partial sums added in kernel-row order;
* the few edge columns, whose taps reach into the padding, one at a time in
  the same order with zeros for the padding;
* or, when the edge columns would cost more than copying the band's input
  rows (narrow rows, wide windows: 5x5 on 28 columns), the rows are first
  copied into zero-padded ones in which every column is interior.

Dedicated kernels for 3x3 and 5x5 with stride 1 and 2 (horizontal dilation
1; any vertical stride and dilation) keep the filter in registers; a generic
one serves every other kernel size, stride and dilation.

Aligned rows (3x3 and 5x5, padding K / 2 along the row, stride 1 or 2 along
the row, no dilation; chosen for 3x3 input rows at least ALIGNED_MIN_WIDTH
wide, the rule measured): each input row a band reads is copied once into a
ring of zero-padded rows of whole vectors, and every output column, the
edges included, is computed from whole aligned vectors of it: a tap is a
vector with its lanes moved (valignd with AVX-512) or, at stride 2, the even
or odd elements of two.  Loads across two cache lines, which the interior kernels
make for every tap at stride 1, cost about twice one inside a line on Zen 4.

A second path keeps channels in the vector (ncnn's pack8 kernels, ONNX
Runtime's NCHWc): a task takes one vector's worth of channels of an image
and a band of output rows; the input rows it reads are transposed into a
small ring of zero-padded pixel rows (in cache), output rows are computed
pixel by pixel (4 pixels at a time, pairs of rows sharing their input
loads, every pixel summed in kernel-row then kernel-column order from 0),
and transposed back into the output planes, where the epilogue finishes
them.  No row edges and no lanes lost on short rows: it serves 5x5 (on
28-column rows 1.25x faster than the row path); on 3x3 the two measured
level and the row path, which converts nothing, is kept.  Every output
element is computed by one thread in a fixed order: the bits do not depend
on the thread count.  The fused epilogue (epilogue.pxd) finishes each band
of output rows (at most OUTPUT_BUDGET bytes) right after it is computed,
while it is in L1.  Tasks are (n, c) planes, split into bands of output rows
when a plane's output exceeds the budget or there are fewer than 4 planes
per thread; they run through parallel.pxd's parallel_for (the caller never
waits for a worker that has not started).
"""
from cython cimport floating
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free

from pyconv._kernels.activation cimport ACT_HARDTANH, ACT_IDENTITY, ACT_RELU, activation_row
from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_row
from pyconv._kernels.parallel cimport parallel_for

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Vector width from the compiler's target macros (-march=...): 32 bytes
       with AVX, AVX-512 included (measured faster on the suite's 28-112
       wide rows on Zen 4, where 64-byte vectors waste more of a row's tail
       and run at half rate; bench/DEPTHWISE_POOLING.md). */
    #if defined(__AVX__)
    #define PYCONV_DW_VBYTES 32
    #else
    #define PYCONV_DW_VBYTES 16
    #endif

    #if defined(_MSC_VER)
    #define PYCONV_DW_RESTRICT __restrict
    #else
    #define PYCONV_DW_RESTRICT restrict
    #endif

    #if !defined(__GNUC__)
    #error "pyconv's depthwise kernels need GNU C vector extensions (gcc or clang)"
    #endif

    /* What a band kernel needs to know about the convolution: the output
       columns [interior_lo, interior_hi) whose taps all lie inside the row
       are computed as whole vectors (at least one vector wide, else empty),
       the others one at a time (zeros for the padding).  A row narrower than
       a vector (out_w < VL: only on zero-padded buffer rows wide enough for a
       whole vector) is one vector at 0, stored in part. */
    typedef struct {
        ptrdiff_t in_h, in_w, out_w;
        ptrdiff_t kernel_h, kernel_w;
        ptrdiff_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
        ptrdiff_t interior_lo, interior_hi;
        const void *zeros;                   /* in_w zeros of the element type */
    } pyconv_dw_geometry;

    #if defined(__clang__)
    #define PYCONV_DW_HAVE_SHUFFLE 0
    #define PYCONV_DW_SHUFFLE(a, b, m) pyconv_dw_no_shuffle
    #else
    #define PYCONV_DW_HAVE_SHUFFLE 1
    #define PYCONV_DW_SHUFFLE(a, b, m) __builtin_shuffle(a, b, m)
    #endif

    /* v = row[c:c+VL]: the plain load of the interior. */
    #define PYCONV_DW_PLAIN(v, row, c) memcpy(&v, (row) + (c), sizeof v);
    /* Any stride: row[c], row[c + s], ... gathered (zeros outside the row). */
    #define PYCONV_DW_GATHER(v, row, c)                                              \\
        for (int j_ = 0; j_ < VL; j_++) {                                            \\
            ptrdiff_t c_ = (c) + j_ * stride;                                        \\
            v[j_] = c_ >= 0 && c_ < g->in_w ? (row)[c_] : 0;                         \\
        }

    /* Masks: pick_even / pick_odd take the even / odd elements of two vectors,
       pick_short the even elements of a vector and of one starting one
       element early (so stride 2 never reads past the last element it
       needs). */
    #define PYCONV_DW_MASKS()                                                        \\
        ivec pick_even, pick_odd, pick_short;                                        \\
        for (int j = 0; j < VL; j++) {                                               \\
            pick_even[j] = 2 * j;                                                    \\
            pick_odd[j] = 2 * j + 1;                                                 \\
            pick_short[j] = j < VL / 2 ? 2 * j : 2 * j + 1;                          \\
        }                                                                            \\
        (void)pick_even; (void)pick_odd; (void)pick_short;

    /* The taps of the vector of output columns at..at+VL-1 into acc, loaded by
       LOAD(v, row, column); a tap's column for output column at is
       at * S - pad_w + kw * dilation.  Each kernel row kh sums its taps in
       kw order into its own partial sum part[kh % PARTS] (PARTS independent
       chains hide the FMA latency on narrow rows, where a vector's taps
       would otherwise form one long dependent chain); the partial sums are
       added pairwise ((0 + 1) + (2 + 3)) + 4 into acc. */
    #define PYCONV_DW_TAPS(LOAD, rows, at, acc, KH, KW, DW, W, S)                    \\
        {                                                                            \\
            vec part[PARTS];                                                         \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int p_ = 0; p_ < PARTS; p_++) part[p_] = (vec){0};                  \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int kh = 0; kh < (KH); kh++) {                                      \\
                PYCONV_DW_ROW_TAPS_S##S(LOAD, rows[kh], at, part[kh % PARTS], kh, KW, DW, W) \\
            }                                                                        \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int step_ = 1; step_ < PARTS; step_ *= 2)                           \\
                _Pragma("GCC unroll 8")                                              \\
                for (int p_ = 0; p_ + step_ < PARTS; p_ += 2 * step_)                \\
                    part[p_] += part[p_ + step_];                                    \\
            acc += part[0];                                                          \\
        }
    #define PYCONV_DW_ROW_TAPS_S1(LOAD, row, at, sum, kh, KW, DW, W)                 \\
        _Pragma("GCC unroll 8")                                                      \\
        for (int kw = 0; kw < (KW); kw++) {                                          \\
            vec v;                                                                   \\
            LOAD(v, row, (at) - g->pad_w + kw * (DW))                                \\
            sum += W(kh, kw) * v;                                                    \\
        }
    /* stride 2, dilation 1: taps kw, kw + 1 are the even and odd elements of
       the two vectors at their column; a last odd-numbered tap takes the even
       elements of two loads one element apart (never past the last element
       it needs). */
    #define PYCONV_DW_ROW_TAPS_S2(LOAD, row, at, sum, kh, KW, DW, W)                 \\
        {                                                                            \\
            const ptrdiff_t c = 2 * (at) - g->pad_w;                                 \\
            int kw = 0;                                                              \\
            if ((DW) == 1) {                                                         \\
                _Pragma("GCC unroll 8")                                              \\
                for (; kw + 1 < (KW); kw += 2) {                                     \\
                    vec lo, hi, v, u;                                                \\
                    LOAD(lo, row, c + kw)                                            \\
                    LOAD(hi, row, c + kw + VL)                                       \\
                    v = PYCONV_DW_SHUFFLE(lo, hi, pick_even);                        \\
                    u = PYCONV_DW_SHUFFLE(lo, hi, pick_odd);                         \\
                    sum += W(kh, kw) * v;                                            \\
                    sum += W(kh, kw + 1) * u;                                        \\
                }                                                                    \\
            }                                                                        \\
            _Pragma("GCC unroll 8")                                                  \\
            for (; kw < (KW); kw++) {                                                \\
                vec lo, hi, v;                                                       \\
                LOAD(lo, row, c + kw * (DW))                                         \\
                LOAD(hi, row, c + kw * (DW) + VL - 1)                                \\
                v = PYCONV_DW_SHUFFLE(lo, hi, pick_short);                           \\
                sum += W(kh, kw) * v;                                                \\
            }                                                                        \\
        }
    #define PYCONV_DW_ROW_TAPS_SN(LOAD, row, at, sum, kh, KW, DW, W)                 \\
        for (ptrdiff_t kw = 0; kw < (KW); kw++) {                                    \\
            vec v;                                                                   \\
            PYCONV_DW_GATHER(v, row, (at) * stride - g->pad_w + kw * (DW))           \\
            sum += W(kh, kw) * v;                                                    \\
        }

    /* The band's rows: interior vectors with plain loads, edge vectors with
       padded ones; S is 1, 2 or N (any stride, gathered). */
    #define PYCONV_DW_BAND(S, KH, KW, DW, W)                                      \\
        for (ptrdiff_t oh = oh_first; oh < oh_stop; oh++) {                          \\
            elem *o = out + (oh - oh_start) * g->out_w;                              \\
            const elem *rows[KH];                                                    \\
            for (ptrdiff_t kh = 0; kh < (KH); kh++) {                                \\
                ptrdiff_t ih = oh * g->stride_h - g->pad_h + kh * g->dilation_h;      \\
                rows[kh] = ih >= 0 && ih < g->in_h ? plane + ih * g->in_w : zeros;   \\
            }                                                                        \\
            const ptrdiff_t lo = g->interior_lo, hi = g->interior_hi;                \\
            ptrdiff_t ow = lo;                                                       \\
            for (; ow + 2 * VL <= hi; ow += 2 * VL) {                                \\
                vec a0 = {0}, a1 = {0};                                              \\
                PYCONV_DW_TAPS(PYCONV_DW_PLAIN, rows, ow, a0, KH, KW, DW, W, S)                   \\
                PYCONV_DW_TAPS(PYCONV_DW_PLAIN, rows, ow + VL, a1, KH, KW, DW, W, S)              \\
                memcpy(o + ow, &a0, sizeof a0);                                      \\
                memcpy(o + ow + VL, &a1, sizeof a1);                                 \\
            }                                                                        \\
            while (ow < hi) {                                                        \\
                ptrdiff_t at = ow + VL <= hi ? ow : hi - VL;                         \\
                vec a0 = {0};                                                        \\
                PYCONV_DW_TAPS(PYCONV_DW_PLAIN, rows, at, a0, KH, KW, DW, W, S)                   \\
                memcpy(o + at, &a0, sizeof a0);                                      \\
                ow = at + VL;                                                        \\
            }                                                                        \\
            if (g->out_w < VL) {  /* rows are wide enough for a whole vector */      \\
                vec a0 = {0};                                                        \\
                PYCONV_DW_TAPS(PYCONV_DW_PLAIN, rows, 0, a0, KH, KW, DW, W, S)       \\
                memcpy(o, &a0, g->out_w * sizeof(elem));                             \\
                continue;                                                            \\
            }                                                                        \\
            PYCONV_DW_EDGES(0, lo, KH, KW, DW, W)                                    \\
            PYCONV_DW_EDGES(hi, g->out_w, KH, KW, DW, W)                             \\
        }

    /* Stride 1 and dilation 1 along the height: output rows oh and oh + 1
       read K + 1 input rows between them, so a pair of rows loads each input
       vector once (kept in a register) for both.  Each row gets the same
       partial sums (kernel row kh into part[kh % 2]) as PYCONV_DW_TAPS with
       PARTS 2: a row's bits do not depend on whether it was paired.  Advances
       oh_first past the rows it computed. */
    #define PYCONV_DW_ROW_PAIRS(K, W)                                                \\
        if (g->stride_h == 1 && g->dilation_h == 1 && g->out_w >= VL)                \\
            for (; oh_first + 1 < oh_stop; oh_first += 2) {                          \\
                const ptrdiff_t oh = oh_first;                                       \\
                elem *o0 = out + (oh - oh_start) * g->out_w, *o1 = o0 + g->out_w;    \\
                const elem *both[K + 1];                                             \\
                _Pragma("GCC unroll 8")                                              \\
                for (int i = 0; i <= K; i++) {                                       \\
                    ptrdiff_t ih = oh - g->pad_h + i;                                \\
                    both[i] = ih >= 0 && ih < g->in_h ? plane + ih * g->in_w : zeros; \\
                }                                                                    \\
                const ptrdiff_t lo = g->interior_lo, hi = g->interior_hi;            \\
                for (ptrdiff_t ow = lo; ow < hi; ow += VL) {                         \\
                    const ptrdiff_t at = ow + VL <= hi ? ow : hi - VL;               \\
                    vec a[2] = {{0}, {0}}, b[2] = {{0}, {0}}, ra = {0}, rb = {0};     \\
                    _Pragma("GCC unroll 8")                                          \\
                    for (int i = 0; i <= K; i++)                                     \\
                        _Pragma("GCC unroll 8")                                      \\
                        for (int kw = 0; kw < K; kw++) {                             \\
                            vec v;                                                   \\
                            memcpy(&v, both[i] + at - g->pad_w + kw, sizeof v);      \\
                            __asm__("" : "+v"(v));  /* one load, used by both rows */ \\
                            if (i < K) a[i % 2] += W(i, kw) * v;                     \\
                            if (i > 0) b[(i - 1) % 2] += W(i - 1, kw) * v;           \\
                        }                                                            \\
                    ra += a[0] + a[1];                                               \\
                    rb += b[0] + b[1];                                               \\
                    memcpy(o0 + at, &ra, sizeof ra);                                 \\
                    memcpy(o1 + at, &rb, sizeof rb);                                 \\
                    ow = at;                                                         \\
                }                                                                    \\
                {                                                                    \\
                    const elem *const *rows = both;                                  \\
                    elem *o = o0;                                                    \\
                    PYCONV_DW_EDGES(0, lo, K, K, 1, W)                               \\
                    PYCONV_DW_EDGES(hi, g->out_w, K, K, 1, W)                        \\
                }                                                                    \\
                {                                                                    \\
                    const elem *const *rows = both + 1;                              \\
                    elem *o = o1;                                                    \\
                    PYCONV_DW_EDGES(0, lo, K, K, 1, W)                               \\
                    PYCONV_DW_EDGES(hi, g->out_w, K, K, 1, W)                        \\
                }                                                                    \\
            }

    /* Output columns [c0, c1) one at a time, taps outside the row as zeros,
       in the vectors' order (partial sums by kernel row). */
    #define PYCONV_DW_EDGES(c0, c1, KH, KW, DW, W)                                   \\
        for (ptrdiff_t ow = (c0); ow < (c1); ow++) {                                 \\
            elem part[PARTS], acc = 0;                                               \\
            for (int p_ = 0; p_ < PARTS; p_++) part[p_] = 0;                         \\
            for (ptrdiff_t kh = 0; kh < (KH); kh++)                                  \\
                for (ptrdiff_t kw = 0; kw < (KW); kw++) {                            \\
                    ptrdiff_t col = ow * g->stride_w - g->pad_w + kw * (DW);         \\
                    elem v = col >= 0 && col < g->in_w ? rows[kh][col] : 0;          \\
                    part[kh % PARTS] += w[kh * (KW) + kw] * v;                       \\
                }                                                                    \\
            for (int step_ = 1; step_ < PARTS; step_ *= 2)                           \\
                for (int p_ = 0; p_ + step_ < PARTS; p_ += 2 * step_)                \\
                    part[p_] += part[p_ + step_];                                    \\
            o[ow] = acc + part[0];                                                   \\
        }

    #define PYCONV_DW_PROLOGUE(T, I)                                                 \\
        typedef T elem;                                                              \\
        typedef T vec __attribute__((vector_size(PYCONV_DW_VBYTES)));                \\
        typedef I ivec __attribute__((vector_size(PYCONV_DW_VBYTES)));               \\
        enum { VL = PYCONV_DW_VBYTES / sizeof(T) };                                  \\
        const T *zeros = (const T *)g->zeros;                                        \\
        PYCONV_DW_MASKS()

    /* K x K taps, stride S along the row (1 or 2), dilation 1 along the row:
       the filter stays in registers. */
    #define PYCONV_DW_SPECIAL(NAME, T, I, K, S, P)                                   \\
    static void NAME(const pyconv_dw_geometry *g, T *PYCONV_DW_RESTRICT out,         \\
                     ptrdiff_t oh_start, ptrdiff_t oh_stop,                          \\
                     const T *PYCONV_DW_RESTRICT plane, const T *PYCONV_DW_RESTRICT w) \\
    {                                                                                \\
        PYCONV_DW_PROLOGUE(T, I)                                                     \\
        vec wv[K * K];                                                               \\
        _Pragma("GCC unroll 32")                                                     \\
        for (int i = 0; i < K * K; i++) wv[i] = (vec){0} + w[i];                     \\
        enum { PARTS = P };                                                          \\
        ptrdiff_t oh_first = oh_start;                                               \\
        if (S == 1) PYCONV_DW_ROW_PAIRS(K, PYCONV_DW_WV##K)                          \\
        PYCONV_DW_BAND(S, K, K, 1, PYCONV_DW_WV##K)                                  \\
    }
    #define PYCONV_DW_WV3(kh, kw) wv[(kh) * 3 + (kw)]
    #define PYCONV_DW_WV5(kh, kw) wv[(kh) * 5 + (kw)]
    #define PYCONV_DW_WN(kh, kw) w[(kh) * kernel_w + (kw)]

    /* Any KH x KW, stride and dilation (stride 1 and 2 loaded as above,
       others gathered). */
    #define PYCONV_DW_GENERIC(NAME, T, I)                                            \\
    static void NAME(const pyconv_dw_geometry *g, T *PYCONV_DW_RESTRICT out,         \\
                     ptrdiff_t oh_start, ptrdiff_t oh_stop,                          \\
                     const T *PYCONV_DW_RESTRICT plane, const T *PYCONV_DW_RESTRICT w) \\
    {                                                                                \\
        PYCONV_DW_PROLOGUE(T, I)                                                     \\
        const ptrdiff_t kernel_h = g->kernel_h, kernel_w = g->kernel_w;              \\
        const ptrdiff_t stride = g->stride_w, dilation = g->dilation_w;              \\
        enum { PARTS = 2 };                                                          \\
        ptrdiff_t oh_first = oh_start;                                               \\
        if (stride == 1) {                                                           \\
            PYCONV_DW_BAND(1, kernel_h, kernel_w, dilation, PYCONV_DW_WN)            \\
        } else if (stride == 2 && PYCONV_DW_HAVE_SHUFFLE) {                          \\
            PYCONV_DW_BAND(2, kernel_h, kernel_w, dilation, PYCONV_DW_WN)            \\
        } else {                                                                     \\
            PYCONV_DW_BAND(N, kernel_h, kernel_w, dilation, PYCONV_DW_WN)            \\
        }                                                                            \\
    }

    /* Buffer rows i < count (width apart) := input rows first + i of plane
       (in_h x in_w) placed at column pad_w, as much of them as the row holds;
       rows outside the input are zeros.  The buffer's other columns are
       zeros from its allocation and never written. */
    #define PYCONV_DW_FILL(NAME, T)                                                  \\
    static void NAME(T *buffer, ptrdiff_t width, ptrdiff_t count, const T *plane,    \\
                     ptrdiff_t in_h, ptrdiff_t in_w, ptrdiff_t first, ptrdiff_t pad_w) \\
    {                                                                                \\
        typedef T vec __attribute__((vector_size(PYCONV_DW_VBYTES)));                \\
        enum { VL = PYCONV_DW_VBYTES / sizeof(T) };                                  \\
        ptrdiff_t n = width - pad_w < in_w ? width - pad_w : in_w;                   \\
        for (ptrdiff_t i = 0; i < count; i++) {                                      \\
            T *dst = buffer + i * width + pad_w;                                     \\
            ptrdiff_t ih = first + i;                                                \\
            if (ih < 0 || ih >= in_h) {                                              \\
                for (ptrdiff_t j = 0; j < n; j++) dst[j] = 0;                        \\
                continue;                                                            \\
            }                                                                        \\
            const T *src = plane + ih * in_w;                                        \\
            vec v;                                                                   \\
            if (n < VL) {                                                            \\
                for (ptrdiff_t j = 0; j < n; j++) dst[j] = src[j];                   \\
                continue;                                                            \\
            }                                                                        \\
            for (ptrdiff_t j = 0; j + VL < n; j += VL) {                             \\
                memcpy(&v, src + j, sizeof v);                                       \\
                memcpy(dst + j, &v, sizeof v);                                       \\
            }                                                                        \\
            memcpy(&v, src + n - VL, sizeof v);                                      \\
            memcpy(dst + n - VL, &v, sizeof v);                                      \\
        }                                                                            \\
    }
    PYCONV_DW_FILL(pyconv_dw_fill_f32, float)
    PYCONV_DW_FILL(pyconv_dw_fill_f64, double)

    /* Partial sums per vector (PYCONV_DW_TAPS): 2 with stride 1 (PYCONV_DW_ROW_PAIRS), else one
       per kernel row. */
    #define PARTS_31 2
    #define PARTS_32 3
    #define PARTS_51 2
    #define PARTS_52 5
    #define PYCONV_DW_KERNELS(SUFFIX, T, I)                                          \\
    PYCONV_DW_SPECIAL(pyconv_dw_3x3s1_##SUFFIX, T, I, 3, 1, PARTS_31)                \\
    PYCONV_DW_SPECIAL(pyconv_dw_3x3s2_##SUFFIX, T, I, 3, 2, PARTS_32)                \\
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s1_##SUFFIX, T, I, 5, 1, PARTS_51)                \\
    PYCONV_DW_SPECIAL(pyconv_dw_5x5s2_##SUFFIX, T, I, 5, 2, PARTS_52)                \\
    PYCONV_DW_GENERIC(pyconv_dw_generic_##SUFFIX, T, I)                              \\
    typedef void (*pyconv_dw_band_##SUFFIX)(const pyconv_dw_geometry *, T *, ptrdiff_t, ptrdiff_t, \\
                                            const T *, const T *);                   \\
    /* The band kernel for a kernel size, stride and dilation along the row. */     \\
    static void *pyconv_dw_choose_##SUFFIX(ptrdiff_t kernel_h, ptrdiff_t kernel_w,   \\
                                          ptrdiff_t stride_w, ptrdiff_t dilation_w)  \\
    {                                                                                \\
        if (kernel_h == kernel_w && dilation_w == 1 && PYCONV_DW_HAVE_SHUFFLE) {     \\
            if (kernel_w == 3 && stride_w == 1) return (void *)pyconv_dw_3x3s1_##SUFFIX; \\
            if (kernel_w == 3 && stride_w == 2) return (void *)pyconv_dw_3x3s2_##SUFFIX; \\
            if (kernel_w == 5 && stride_w == 1) return (void *)pyconv_dw_5x5s1_##SUFFIX; \\
            if (kernel_w == 5 && stride_w == 2) return (void *)pyconv_dw_5x5s2_##SUFFIX; \\
        }                                                                            \\
        return (void *)pyconv_dw_generic_##SUFFIX;                                   \\
    }                                                                                \\
    static void pyconv_dw_band_call_##SUFFIX(void *kernel, const pyconv_dw_geometry *g, T *out, \\
                                             ptrdiff_t oh_start, ptrdiff_t oh_stop,  \\
                                             const T *plane, const T *w)             \\
    {                                                                                \\
        ((pyconv_dw_band_##SUFFIX)kernel)(g, out, oh_start, oh_stop, plane, w);      \\
    }
    PYCONV_DW_KERNELS(f32, float, int)
    PYCONV_DW_KERNELS(f64, double, long long)

    /* ---- Aligned rows (K x K, K = 3 or 5, stride 1 or 2 along the row, no
       dilation, padding K / 2 along the row): every output column by whole
       vectors, no edge columns.  Each input row a band needs is copied once
       into a ring of K rows of whole vectors (the band's output rows share
       its input rows): a zero vector, the row (its last vector zero filled),
       zero vectors up to ring_vectors; rows in the padding read a row of
       zeros.  Then every tap is a whole-vector load from the ring (aligned)
       or two of them shuffled: stride 1, tap kw of output vector j (column
       ow + kw - pad) is input vector j with its lanes moved by kw - pad, the
       lanes moved in from vector j - 1 or j + 1; stride 2, the even and odd
       elements of input vectors 2j, 2j + 1 are the taps at 2 ow and 2 ow + 1,
       those at 2 ow - 2, 2 ow - 1 and 2 ow + 2 the even or odd ones moved a
       lane, with a lane of vector 2j - 1 or 2j + 2.  Each kernel row sums its
       taps in kw order into its own partial sum, the partial sums added
       pairwise in kernel-row order; the last vector of an output row is
       stored in part (a masked store with AVX-512).  Vector width: 64 bytes
       with AVX-512 (its lane moves are one valignd), else 32 with AVX, else
       16; at least 4 lanes (not double with SSE only). */
    #if defined(__AVX512F__)
    #define PYCONV_DWA_VBYTES 64
    #elif defined(__AVX__)
    #define PYCONV_DWA_VBYTES 32
    #else
    #define PYCONV_DWA_VBYTES 16
    #endif
    /* v := the n < VL elements at p, zeros after them (never reads past p[n - 1]); store the first n. */
    #if defined(__AVX512F__) && PYCONV_DWA_VBYTES == 64
    #include <immintrin.h>
    #define PYCONV_DWA_LOAD_PART_f32(v, p, n) v = (vec)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p);
    #define PYCONV_DWA_LOAD_PART_f64(v, p, n) v = (vec)_mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p);
    #define PYCONV_DWA_STORE_PART_f32(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), (__m512)(v));
    #define PYCONV_DWA_STORE_PART_f64(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), (__m512d)(v));
    #else
    #define PYCONV_DWA_LOAD_PART_f32(v, p, n) v = (vec){0}; memcpy(&v, p, (size_t)(n) * sizeof(elem));
    #define PYCONV_DWA_LOAD_PART_f64(v, p, n) PYCONV_DWA_LOAD_PART_f32(v, p, n)
    #define PYCONV_DWA_STORE_PART_f32(p, v, n) memcpy(p, &(v), (size_t)(n) * sizeof(elem));
    #define PYCONV_DWA_STORE_PART_f64(p, v, n) PYCONV_DWA_STORE_PART_f32(p, v, n)
    #endif

    /* Lane moves of two vectors a, b (the lanes of a then b): ON(a, b, k) is a's
       last k lanes then b's first VL - k, BACK(a, b, k) a's lanes from k on then
       b's first k.  One valignd / valignq with AVX-512 (a two-source permute
       measured 1.3x slower on Zen 4), else a shuffle. */
    #if defined(__AVX512F__) && PYCONV_DWA_VBYTES == 64
    #define PYCONV_DWA_ALIGN_f32(b, a, k) ((vec)_mm512_alignr_epi32((__m512i)(b), (__m512i)(a), k))
    #define PYCONV_DWA_ALIGN_f64(b, a, k) ((vec)_mm512_alignr_epi64((__m512i)(b), (__m512i)(a), k))
    #define PYCONV_DWA_ON(SUFFIX, a, b, k) PYCONV_DWA_ALIGN_##SUFFIX(b, a, VL - (k))
    #define PYCONV_DWA_BACK(SUFFIX, a, b, k) PYCONV_DWA_ALIGN_##SUFFIX(b, a, k)
    #else
    #define PYCONV_DWA_ON(SUFFIX, a, b, k) __builtin_shuffle(a, b, on[k])
    #define PYCONV_DWA_BACK(SUFFIX, a, b, k) __builtin_shuffle(a, b, back[k])
    #endif

    #define PYCONV_DWA_KERNEL(NAME, T, I, SUFFIX, K, S)                              \
    static void NAME(const pyconv_dw_geometry *g, T *PYCONV_DW_RESTRICT out,         \
                     ptrdiff_t oh_start, ptrdiff_t oh_stop, const T *PYCONV_DW_RESTRICT plane, \
                     const T *PYCONV_DW_RESTRICT w, T *PYCONV_DW_RESTRICT ring,      \
                     ptrdiff_t ring_vectors)                                         \
    {                                                                                \
        typedef T elem;                                                              \
        typedef T vec __attribute__((vector_size(PYCONV_DWA_VBYTES)));               \
        typedef I ivec __attribute__((vector_size(PYCONV_DWA_VBYTES)));              \
        enum { VL = PYCONV_DWA_VBYTES / sizeof(T), P = K / 2 };                      \
        const ptrdiff_t in_w = g->in_w, out_w = g->out_w, full = in_w / VL, part = in_w % VL; \
        const ptrdiff_t row_values = ring_vectors * VL;                              \
        const T *zero_row = ring + K * row_values;                                   \
        ivec on[3], back[3], pick_even, pick_odd;                                    \
        for (int j = 0; j < VL; j++) {                                               \
            for (int k = 0; k < 3; k++) {                                            \
                on[k][j] = VL - k + j;                                               \
                back[k][j] = j + k;                                                  \
            }                                                                        \
            pick_even[j] = 2 * j;                                                    \
            pick_odd[j] = 2 * j + 1;                                                 \
        }                                                                            \
        (void)on; (void)back; (void)pick_even; (void)pick_odd;                       \
        vec wv[K * K];                                                               \
        _Pragma("GCC unroll 32")                                                     \
        for (int i = 0; i < K * K; i++) wv[i] = w[i] - (vec){0};                     \
        ptrdiff_t next_h = oh_start * g->stride_h - g->pad_h;  /* rows below: in the ring */ \
        for (ptrdiff_t oh = oh_start; oh < oh_stop; oh++) {                          \
            const T *rows[K];                                                        \
            for (int kh = 0; kh < K; kh++) {                                         \
                const ptrdiff_t ih = oh * g->stride_h - g->pad_h + kh;               \
                if (ih < 0 || ih >= g->in_h) {                                       \
                    rows[kh] = zero_row;                                             \
                    continue;                                                        \
                }                                                                    \
                T *slot = ring + ih % K * row_values;                                \
                if (ih >= next_h) {   /* copied once per band */                     \
                    const T *src = plane + ih * in_w;                                \
                    vec v;                                                           \
                    for (ptrdiff_t m = 0; m < full; m++) {                           \
                        memcpy(&v, src + m * VL, sizeof v);                          \
                        memcpy(slot + (m + 1) * VL, &v, sizeof v);                   \
                    }                                                                \
                    if (part) {                                                      \
                        PYCONV_DWA_LOAD_PART_##SUFFIX(v, src + full * VL, part)      \
                        memcpy(slot + (full + 1) * VL, &v, sizeof v);                \
                    }                                                                \
                    next_h = ih + 1;                                                 \
                }                                                                    \
                rows[kh] = slot;                                                     \
            }                                                                        \
            T *o = out + (oh - oh_start) * out_w;                                    \
            /* per kernel row, carried from vector to vector: ring vectors m0, m0 + 1 \
               (input vectors m0 - 1, m0; m0 = S j) */                              \
            vec before[K], first[K];                                                 \
            _Pragma("GCC unroll 8")                                                  \
            for (int kh = 0; kh < K; kh++) {                                         \
                memcpy(&before[kh], rows[kh], sizeof before[kh]);                    \
                memcpy(&first[kh], rows[kh] + VL, sizeof first[kh]);                 \
            }                                                                        \
            for (ptrdiff_t ow = 0; ow < out_w; ow += VL) {                           \
                const ptrdiff_t m0 = S * (ow / VL);                                  \
                vec part_sum[K];                                                     \
                _Pragma("GCC unroll 8")                                              \
                for (int kh = 0; kh < K; kh++) {                                     \
                    vec after, last = {0}, even = first[kh], odd = first[kh], tap;   \
                    memcpy(&after, rows[kh] + (m0 + 2) * VL, sizeof after);          \
                    if (S == 2) {   /* input vectors m0 + 1 (after), m0 + 2 (last) */ \
                        memcpy(&last, rows[kh] + (m0 + 3) * VL, sizeof last);        \
                        even = __builtin_shuffle(first[kh], after, pick_even);       \
                        odd = __builtin_shuffle(first[kh], after, pick_odd);         \
                    }                                                                \
                    vec sum = {0};                                                   \
                    _Pragma("GCC unroll 8")                                          \
                    for (int kw = 0; kw < K; kw++) {                                 \
                        const int d = kw - P;   /* the tap's column: S ow + d */     \
                        if (S == 1)                                                  \
                            tap = d == -2 ? PYCONV_DWA_ON(SUFFIX, before[kh], first[kh], 2) \
                                : d == -1 ? PYCONV_DWA_ON(SUFFIX, before[kh], first[kh], 1) \
                                : d == 0 ? first[kh]                                 \
                                : d == 1 ? PYCONV_DWA_BACK(SUFFIX, first[kh], after, 1) \
                                : PYCONV_DWA_BACK(SUFFIX, first[kh], after, 2);      \
                        else   /* lane VL - 2 of before moved to the last lane for d = -2 */ \
                            tap = d == -2 ? PYCONV_DWA_ON(SUFFIX, PYCONV_DWA_ON(SUFFIX, before[kh], \
                                                          before[kh], 1), even, 1)   \
                                : d == -1 ? PYCONV_DWA_ON(SUFFIX, before[kh], odd, 1) \
                                : d == 0 ? even                                      \
                                : d == 1 ? odd                                       \
                                : PYCONV_DWA_BACK(SUFFIX, even, last, 1);            \
                        sum += wv[kh * K + kw] * tap;                                \
                    }                                                                \
                    part_sum[kh] = sum;                                              \
                    before[kh] = S == 1 ? first[kh] : after;                         \
                    first[kh] = S == 1 ? after : last;                               \
                }                                                                    \
                vec result = K == 3 ? (part_sum[0] + part_sum[1]) + part_sum[2]      \
                    : ((part_sum[0] + part_sum[1]) + (part_sum[2] + part_sum[3])) + part_sum[K - 1]; \
                if (ow + VL <= out_w)                                                \
                    memcpy(o + ow, &result, sizeof result);                          \
                else {                                                               \
                    PYCONV_DWA_STORE_PART_##SUFFIX(o + ow, result, out_w - ow)       \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }
    #define PYCONV_DWA_KERNELS(SUFFIX, T, I)                                         \
    PYCONV_DWA_KERNEL(pyconv_dwa_3x3s1_##SUFFIX, T, I, SUFFIX, 3, 1)                 \
    PYCONV_DWA_KERNEL(pyconv_dwa_3x3s2_##SUFFIX, T, I, SUFFIX, 3, 2)                 \
    PYCONV_DWA_KERNEL(pyconv_dwa_5x5s1_##SUFFIX, T, I, SUFFIX, 5, 1)                 \
    PYCONV_DWA_KERNEL(pyconv_dwa_5x5s2_##SUFFIX, T, I, SUFFIX, 5, 2)                 \
    typedef void (*pyconv_dwa_band_##SUFFIX)(const pyconv_dw_geometry *, T *, ptrdiff_t, ptrdiff_t, \
                                             const T *, const T *, T *, ptrdiff_t);  \
    /* The aligned-rows band kernel for a convolution, or NULL where it does not serve. */ \
    static void *pyconv_dwa_choose_##SUFFIX(ptrdiff_t kernel_h, ptrdiff_t kernel_w, ptrdiff_t stride_w, \
                                           ptrdiff_t dilation_h, ptrdiff_t dilation_w, ptrdiff_t pad_w) \
    {                                                                                \
        if (kernel_h != kernel_w || dilation_h != 1 || dilation_w != 1 || pad_w != kernel_w / 2 \
                || PYCONV_DWA_VBYTES / sizeof(T) < 4)                                \
            return NULL;                                                             \
        if (kernel_w == 3 && stride_w == 1) return (void *)pyconv_dwa_3x3s1_##SUFFIX; \
        if (kernel_w == 3 && stride_w == 2) return (void *)pyconv_dwa_3x3s2_##SUFFIX; \
        if (kernel_w == 5 && stride_w == 1) return (void *)pyconv_dwa_5x5s1_##SUFFIX; \
        if (kernel_w == 5 && stride_w == 2) return (void *)pyconv_dwa_5x5s2_##SUFFIX; \
        return NULL;                                                                 \
    }                                                                                \
    static void pyconv_dwa_band_call_##SUFFIX(void *kernel, const pyconv_dw_geometry *g, T *out, \
                                              ptrdiff_t oh_start, ptrdiff_t oh_stop, const T *plane, \
                                              const T *w, T *ring, ptrdiff_t ring_vectors) \
    {                                                                                \
        ((pyconv_dwa_band_##SUFFIX)kernel)(g, out, oh_start, oh_stop, plane, w, ring, ring_vectors); \
    }
    #if PYCONV_DW_HAVE_SHUFFLE
    PYCONV_DWA_KERNELS(f32, float, int)
    PYCONV_DWA_KERNELS(f64, double, long long)
    #else
    static void *pyconv_dwa_choose_f32(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t s, ptrdiff_t dh, ptrdiff_t dw,
                                       ptrdiff_t p) { return NULL; }
    static void *pyconv_dwa_choose_f64(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t s, ptrdiff_t dh, ptrdiff_t dw,
                                       ptrdiff_t p) { return NULL; }
    static void pyconv_dwa_band_call_f32(void *k, const pyconv_dw_geometry *g, float *o, ptrdiff_t a, ptrdiff_t b,
                                         const float *p, const float *w, float *r, ptrdiff_t n) {}
    static void pyconv_dwa_band_call_f64(void *k, const pyconv_dw_geometry *g, double *o, ptrdiff_t a,
                                         ptrdiff_t b, const double *p, const double *w, double *r, ptrdiff_t n) {}
    #endif

    /* ---- The channel-blocked path (channels in the vector, as ncnn's pack8
       depthwise kernels and ONNX Runtime's NCHWc ones): a task takes CL
       channels (one vector) of one image and a band of output rows.  Each
       input row it needs is transposed into a ring of K zero-padded rows of
       CL-channel pixels (the padding columns stay zero), each output row is
       computed pixel by pixel (no row edges, no lanes wasted on short rows)
       into one row of pixels (the epilogue finished in registers), which is
       transposed back into the CL output rows.  32 bytes with AVX and AVX-512
       (with 64 the 16x16 transposes cost more than they save:
       bench/DEPTHWISE_POOLING.md). */
    #if defined(__AVX512F__)
    #define PYCONV_DWC_VBYTES 32
    #elif defined(__AVX__)
    #define PYCONV_DWC_VBYTES 32
    #else
    #define PYCONV_DWC_VBYTES 16
    #endif

    /* Output pixels computed at a time (B of the row kernels). */
    #define PYCONV_DWC_PIXELS 4

    #define PYCONV_DWC_TYPES(T, I)                                                   \\
        typedef T cvec __attribute__((vector_size(PYCONV_DWC_VBYTES)));              \\
        typedef I civec __attribute__((vector_size(PYCONV_DWC_VBYTES)));             \\
        enum { CL = PYCONV_DWC_VBYTES / sizeof(T) };

    /* The epilogue finished in the row kernels' registers, before a pixel is
       stored: kind PYCONV_DWC_NONE, or acc * scale + shift (fused multiply-add,
       as epilogue_row's loops compile) then nothing, ReLU or a clamp to
       [low, high] (hardtanh with bounds that are not NaN) with act_relu's and
       act_hardtanh's comparisons, so epilogue_row's bits.  epi: scale[CL],
       shift[CL], low, high. */
    enum { PYCONV_DWC_NONE, PYCONV_DWC_AFFINE, PYCONV_DWC_RELU, PYCONV_DWC_CLAMP };
    /* Declares the epilogue's vectors (once per row call: not rebuilt per pixel). */
    #define PYCONV_DWC_EPILOGUE_VECTORS(epi)                                         \\
        cvec scale_, shift_, low_, high_;                                            \\
        memcpy(&scale_, epi, sizeof scale_);                                         \\
        memcpy(&shift_, epi + CL, sizeof shift_);                                    \\
        for (int l_ = 0; l_ < CL; l_++) {                                            \\
            low_[l_] = epi[2 * CL];                                                  \\
            high_[l_] = epi[2 * CL + 1];                                             \\
        }
    #define PYCONV_DWC_FINISH(acc, kind)                                             \\
        if (kind != PYCONV_DWC_NONE) {                                               \\
            civec m_;                                                                \\
            acc = acc * scale_ + shift_;                                             \\
            if (kind == PYCONV_DWC_RELU) {                                           \\
                m_ = acc < (cvec){0};                                                \\
                acc = (cvec)((civec)acc & ~m_);                                      \\
            } else if (kind == PYCONV_DWC_CLAMP) {                                   \\
                m_ = acc < low_;                                                     \\
                acc = (cvec)(((civec)low_ & m_) | ((civec)acc & ~m_));               \\
                m_ = acc > high_;                                                    \\
                acc = (cvec)(((civec)high_ & m_) | ((civec)acc & ~m_));              \\
            }                                                                        \\
        }

    /* r[0..CL) := their transpose: log2(CL) rounds of interleaving r[i] with
       r[i + CL/2] (even-numbered results the low halves, odd the high). */
    #define PYCONV_DWC_TRANSPOSE(r)                                                  \\
        {                                                                            \\
            civec lo_, hi_;                                                          \\
            for (int j_ = 0; j_ < CL; j_++) {                                        \\
                lo_[j_] = j_ % 2 ? CL + j_ / 2 : j_ / 2;                             \\
                hi_[j_] = lo_[j_] + CL / 2;                                          \\
            }                                                                        \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int s_ = 1; s_ < CL; s_ *= 2) {                                     \\
                cvec t_[CL];                                                         \\
                _Pragma("GCC unroll 16")                                             \\
                for (int i_ = 0; i_ < CL / 2; i_++) {                                \\
                    t_[2 * i_] = PYCONV_DW_SHUFFLE(r[i_], r[i_ + CL / 2], lo_);      \\
                    t_[2 * i_ + 1] = PYCONV_DW_SHUFFLE(r[i_], r[i_ + CL / 2], hi_);  \\
                }                                                                    \\
                _Pragma("GCC unroll 16")                                             \\
                for (int i_ = 0; i_ < CL; i_++) r[i_] = t_[i_];                      \\
            }                                                                        \\
        }

    #define PYCONV_DWC_LAYOUT(SUFFIX, T, I)                                          \\
    /* dst[j * CL + l] := src[l * plane + j] for j < n, lane l < CL reading      \\
       channel min(l, nc - 1) (lanes past the block's channels are computed     \\
       and never stored). */                                                     \\
    static void pyconv_dwc_pack_##SUFFIX(T *PYCONV_DW_RESTRICT dst, const T *src,    \\
                                         ptrdiff_t plane, ptrdiff_t nc, ptrdiff_t n) \\
    {                                                                                \\
        PYCONV_DWC_TYPES(T, I)                                                       \\
        const T *s[CL];                                                              \\
        for (int l = 0; l < CL; l++) s[l] = src + (l < nc ? l : nc - 1) * plane;     \\
        if (n < CL) {                                                                \\
            for (ptrdiff_t j = 0; j < n; j++)                                        \\
                for (int l = 0; l < CL; l++) dst[j * CL + l] = s[l][j];              \\
            return;                                                                  \\
        }                                                                            \\
        for (ptrdiff_t j = 0; j < n; j += CL) {                                      \\
            const ptrdiff_t at = j + CL <= n ? j : n - CL;                           \\
            cvec r[CL];                                                              \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int l = 0; l < CL; l++) memcpy(&r[l], s[l] + at, sizeof(cvec));     \\
            PYCONV_DWC_TRANSPOSE(r)                                                  \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int t = 0; t < CL; t++) memcpy(dst + (at + t) * CL, &r[t], sizeof(cvec)); \\
            j = at;                                                                  \\
        }                                                                            \\
    }                                                                                \\
    /* dst[l * plane + j] := src[j * CL + l] for j < n, l < nc. */                  \\
    static void pyconv_dwc_unpack_##SUFFIX(T *dst, ptrdiff_t plane, ptrdiff_t nc,    \\
                                           const T *PYCONV_DW_RESTRICT src, ptrdiff_t n) \\
    {                                                                                \\
        PYCONV_DWC_TYPES(T, I)                                                       \\
        if (n < CL) {                                                                \\
            for (int l = 0; l < nc; l++)                                             \\
                for (ptrdiff_t j = 0; j < n; j++) dst[l * plane + j] = src[j * CL + l]; \\
            return;                                                                  \\
        }                                                                            \\
        for (ptrdiff_t j = 0; j < n; j += CL) {                                      \\
            const ptrdiff_t at = j + CL <= n ? j : n - CL;                           \\
            cvec r[CL];                                                              \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int t = 0; t < CL; t++) memcpy(&r[t], src + (at + t) * CL, sizeof(cvec)); \\
            PYCONV_DWC_TRANSPOSE(r)                                                  \\
            if (nc == CL) {                                                          \\
                _Pragma("GCC unroll 16")                                             \\
                for (int l = 0; l < CL; l++) memcpy(dst + l * plane + at, &r[l], sizeof(cvec)); \\
            } else {                                                                 \\
                for (int l = 0; l < nc; l++) memcpy(dst + l * plane + at, &r[l], sizeof(cvec)); \\
            }                                                                        \\
            j = at;                                                                  \\
        }                                                                            \\
    }

    /* One output row of CL-channel pixels: orow[ow] = sum over kh, then kw, of
       rows[kh][ow * S + kw] * w[kh * K + kw], from 0, in that order for every
       pixel.  B pixels at a time (the last block moved back to end at out_w:
       recomputed pixels get the same bits), each input pixel of a kernel row
       loaded once for the B pixels it reaches. */
    #define PYCONV_DWC_ROW(NAME, T, I, K, S, B)                                      \\
    static void NAME(T *PYCONV_DW_RESTRICT orow, const T *const *rows,               \\
                     const T *PYCONV_DW_RESTRICT w, ptrdiff_t out_w,                 \\
                     int kind, const T *PYCONV_DW_RESTRICT epi)                      \\
    {                                                                                \\
        PYCONV_DWC_TYPES(T, I)                                                       \\
        PYCONV_DWC_EPILOGUE_VECTORS(epi)                                             \\
        if (out_w < B) {                                                             \\
            for (ptrdiff_t ow = 0; ow < out_w; ow++) {                               \\
                cvec acc = {0};                                                      \\
                for (int kh = 0; kh < K; kh++)                                       \\
                    for (int kw = 0; kw < K; kw++) {                                 \\
                        cvec v, wk;                                                  \\
                        memcpy(&v, rows[kh] + (ow * S + kw) * CL, sizeof v);         \\
                        memcpy(&wk, w + (kh * K + kw) * CL, sizeof wk);              \\
                        acc += v * wk;                                               \\
                    }                                                                \\
                PYCONV_DWC_FINISH(acc, kind)                                    \\
                memcpy(orow + ow * CL, &acc, sizeof acc);                            \\
            }                                                                        \\
            return;                                                                  \\
        }                                                                            \\
        for (ptrdiff_t ow = 0; ow < out_w; ow += B) {                                \\
            const ptrdiff_t at = ow + B <= out_w ? ow : out_w - B;                   \\
            cvec acc[B];                                                             \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int b = 0; b < B; b++) acc[b] = (cvec){0};                          \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int kh = 0; kh < K; kh++) {                                         \\
                const T *row = rows[kh] + at * S * CL;                               \\
                cvec wk[K];                                                          \\
                _Pragma("GCC unroll 8")                                              \\
                for (int kw = 0; kw < K; kw++) memcpy(&wk[kw], w + (kh * K + kw) * CL, sizeof(cvec)); \\
                _Pragma("GCC unroll 32")                                             \\
                for (int i = 0; i < (B - 1) * S + K; i++) {                          \\
                    cvec v;                                                          \\
                    memcpy(&v, row + i * CL, sizeof v);                              \\
                    _Pragma("GCC unroll 16")                                         \\
                    for (int b = 0; b < B; b++) {                                    \\
                        const int kw = i - b * S;                                    \\
                        if (kw >= 0 && kw < K) acc[b] += v * wk[kw];                 \\
                    }                                                                \\
                }                                                                    \\
            }                                                                        \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int b = 0; b < B; b++) {                                            \\
                PYCONV_DWC_FINISH(acc[b], kind)                                 \\
                memcpy(orow + (at + b) * CL, &acc[b], sizeof(cvec));                 \\
            }                                                                        \\
            ow = at;                                                                 \\
        }                                                                            \\
    }

    /* Two output rows (orow, orow + out_w pixels) at vertical stride S from
       the K + S input rows they read, rows[0..K+S): each input pixel loaded
       once for both.  Every pixel gets PYCONV_DWC_ROW's sums in its order. */
    #define PYCONV_DWC_ROW_PAIR(NAME, T, I, K, S, B)                                 \\
    static void NAME(T *PYCONV_DW_RESTRICT orow, const T *const *rows,               \\
                     const T *PYCONV_DW_RESTRICT w, ptrdiff_t out_w,                 \\
                     int kind, const T *PYCONV_DW_RESTRICT epi)                      \\
    {                                                                                \\
        PYCONV_DWC_TYPES(T, I)                                                       \\
        PYCONV_DWC_EPILOGUE_VECTORS(epi)                                             \\
        for (ptrdiff_t ow = 0; ow < out_w; ow += B) {                                \\
            const ptrdiff_t at = ow + B <= out_w ? ow : out_w - B;                   \\
            cvec acc0[B], acc1[B];                                                   \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int b = 0; b < B; b++) acc0[b] = acc1[b] = (cvec){0};               \\
            _Pragma("GCC unroll 8")                                                  \\
            for (int i = 0; i < K + S; i++) {                                        \\
                const T *row = rows[i] + at * S * CL;                                \\
                cvec w0[K], w1[K];                                                   \\
                _Pragma("GCC unroll 8")                                              \\
                for (int kw = 0; kw < K; kw++) {                                     \\
                    if (i < K) memcpy(&w0[kw], w + (i * K + kw) * CL, sizeof(cvec)); \\
                    if (i >= S) memcpy(&w1[kw], w + ((i - S) * K + kw) * CL, sizeof(cvec)); \\
                }                                                                    \\
                _Pragma("GCC unroll 32")                                             \\
                for (int j = 0; j < (B - 1) * S + K; j++) {                          \\
                    cvec v;                                                          \\
                    memcpy(&v, row + j * CL, sizeof v);                              \\
                    _Pragma("GCC unroll 16")                                         \\
                    for (int b = 0; b < B; b++) {                                    \\
                        const int kw = j - b * S;                                    \\
                        if (kw >= 0 && kw < K) {                                     \\
                            if (i < K) acc0[b] += v * w0[kw];                        \\
                            if (i >= S) acc1[b] += v * w1[kw];                       \\
                        }                                                            \\
                    }                                                                \\
                }                                                                    \\
            }                                                                        \\
            _Pragma("GCC unroll 16")                                                 \\
            for (int b = 0; b < B; b++) {                                            \\
                PYCONV_DWC_FINISH(acc0[b], kind)                                \\
                PYCONV_DWC_FINISH(acc1[b], kind)                                \\
                memcpy(orow + (at + b) * CL, &acc0[b], sizeof(cvec));                \\
                memcpy(orow + (out_w + at + b) * CL, &acc1[b], sizeof(cvec));        \\
            }                                                                        \\
            ow = at;                                                                 \\
        }                                                                            \\
    }

    #define PYCONV_DWC_KERNELS(SUFFIX, T, I)                                         \\
    PYCONV_DWC_LAYOUT(SUFFIX, T, I)                                                  \\
    PYCONV_DWC_ROW(pyconv_dwc_3x3s1_##SUFFIX, T, I, 3, 1, PYCONV_DWC_PIXELS)                         \\
    PYCONV_DWC_ROW(pyconv_dwc_3x3s2_##SUFFIX, T, I, 3, 2, PYCONV_DWC_PIXELS)                         \\
    PYCONV_DWC_ROW(pyconv_dwc_5x5s1_##SUFFIX, T, I, 5, 1, PYCONV_DWC_PIXELS)                         \\
    PYCONV_DWC_ROW(pyconv_dwc_5x5s2_##SUFFIX, T, I, 5, 2, PYCONV_DWC_PIXELS)                         \\
    PYCONV_DWC_ROW_PAIR(pyconv_dwc_pair_3x3s1_##SUFFIX, T, I, 3, 1, PYCONV_DWC_PIXELS)               \\
    PYCONV_DWC_ROW_PAIR(pyconv_dwc_pair_3x3s2_##SUFFIX, T, I, 3, 2, PYCONV_DWC_PIXELS)               \\
    PYCONV_DWC_ROW_PAIR(pyconv_dwc_pair_5x5s1_##SUFFIX, T, I, 5, 1, PYCONV_DWC_PIXELS)               \\
    PYCONV_DWC_ROW_PAIR(pyconv_dwc_pair_5x5s2_##SUFFIX, T, I, 5, 2, PYCONV_DWC_PIXELS)               \\
    typedef void (*pyconv_dwc_row_##SUFFIX)(T *, const T *const *, const T *, ptrdiff_t, int, const T *); \\
    /* The row kernel for a square K x K filter and stride S along the row, or  \\
       NULL (K, S not served by the channel-blocked path). */                    \\
    static void *pyconv_dwc_choose_##SUFFIX(ptrdiff_t k, ptrdiff_t s, int pair)                \\
    {                                                                                \\
        if (!PYCONV_DW_HAVE_SHUFFLE) return NULL;                                    \\
        if (k == 3 && s == 1) return pair ? (void *)pyconv_dwc_pair_3x3s1_##SUFFIX : (void *)pyconv_dwc_3x3s1_##SUFFIX;              \\
        if (k == 3 && s == 2) return pair ? (void *)pyconv_dwc_pair_3x3s2_##SUFFIX : (void *)pyconv_dwc_3x3s2_##SUFFIX;              \\
        if (k == 5 && s == 1) return pair ? (void *)pyconv_dwc_pair_5x5s1_##SUFFIX : (void *)pyconv_dwc_5x5s1_##SUFFIX;              \\
        if (k == 5 && s == 2) return pair ? (void *)pyconv_dwc_pair_5x5s2_##SUFFIX : (void *)pyconv_dwc_5x5s2_##SUFFIX;              \\
        return NULL;                                                                 \\
    }                                                                                \\
    static void pyconv_dwc_row_call_##SUFFIX(void *kernel, T *orow, const T *const *rows, \\
                                             const T *w, ptrdiff_t out_w, int kind,  \\
                                             const T *epi)                           \\
    {                                                                                \\
        ((pyconv_dwc_row_##SUFFIX)kernel)(orow, rows, w, out_w, kind, epi);          \\
    }
    PYCONV_DWC_KERNELS(f32, float, int)
    PYCONV_DWC_KERNELS(f64, double, long long)
    """
    ctypedef struct DwGeometry "pyconv_dw_geometry":
        Py_ssize_t in_h, in_w, out_w
        Py_ssize_t kernel_h, kernel_w
        Py_ssize_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w
        Py_ssize_t interior_lo, interior_hi
        const void* zeros
    enum:
        DW_VBYTES "PYCONV_DW_VBYTES"
    void* pyconv_dw_choose_f32(Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride_w,
                               Py_ssize_t dilation_w) noexcept nogil
    void* pyconv_dw_choose_f64(Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride_w,
                               Py_ssize_t dilation_w) noexcept nogil
    void* pyconv_dwa_choose_f32(Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride_w,
                                Py_ssize_t dilation_h, Py_ssize_t dilation_w, Py_ssize_t pad_w) noexcept nogil
    void* pyconv_dwa_choose_f64(Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride_w,
                                Py_ssize_t dilation_h, Py_ssize_t dilation_w, Py_ssize_t pad_w) noexcept nogil
    void pyconv_dwa_band_call_f32(void* kernel, const DwGeometry* g, float* out, Py_ssize_t oh_start,
                                  Py_ssize_t oh_stop, const float* plane, const float* w, float* ring,
                                  Py_ssize_t ring_vectors) noexcept nogil
    void pyconv_dwa_band_call_f64(void* kernel, const DwGeometry* g, double* out, Py_ssize_t oh_start,
                                  Py_ssize_t oh_stop, const double* plane, const double* w, double* ring,
                                  Py_ssize_t ring_vectors) noexcept nogil
    enum:
        DWA_VBYTES "PYCONV_DWA_VBYTES"
    void pyconv_dw_fill_f32(float* buffer, Py_ssize_t width, Py_ssize_t count, const float* plane,
                            Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t first, Py_ssize_t pad_w) noexcept nogil
    void pyconv_dw_fill_f64(double* buffer, Py_ssize_t width, Py_ssize_t count, const double* plane,
                            Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t first, Py_ssize_t pad_w) noexcept nogil
    void pyconv_dw_band_call_f32(void* kernel, const DwGeometry* g, float* out, Py_ssize_t oh_start,
                                 Py_ssize_t oh_stop, const float* plane, const float* w) noexcept nogil
    void pyconv_dw_band_call_f64(void* kernel, const DwGeometry* g, double* out, Py_ssize_t oh_start,
                                 Py_ssize_t oh_stop, const double* plane, const double* w) noexcept nogil
    enum:
        DWC_VBYTES "PYCONV_DWC_VBYTES"
        DWC_PIXELS "PYCONV_DWC_PIXELS"
    void* pyconv_dwc_choose_f32(Py_ssize_t k, Py_ssize_t s, int pair) noexcept nogil
    void* pyconv_dwc_choose_f64(Py_ssize_t k, Py_ssize_t s, int pair) noexcept nogil
    void pyconv_dwc_pack_f32(float* dst, const float* src, Py_ssize_t plane, Py_ssize_t nc, Py_ssize_t n) noexcept nogil
    void pyconv_dwc_pack_f64(double* dst, const double* src, Py_ssize_t plane, Py_ssize_t nc, Py_ssize_t n) noexcept nogil
    void pyconv_dwc_unpack_f32(float* dst, Py_ssize_t plane, Py_ssize_t nc, const float* src, Py_ssize_t n) noexcept nogil
    void pyconv_dwc_unpack_f64(double* dst, Py_ssize_t plane, Py_ssize_t nc, const double* src, Py_ssize_t n) noexcept nogil
    void pyconv_dwc_row_call_f32(void* kernel, float* orow, const float* const* rows, const float* w,
                                 Py_ssize_t out_w, int kind, const float* epi) noexcept nogil
    void pyconv_dwc_row_call_f64(void* kernel, double* orow, const double* const* rows, const double* w,
                                 Py_ssize_t out_w, int kind, const double* epi) noexcept nogil
    enum:
        DWC_NONE "PYCONV_DWC_NONE"
        DWC_AFFINE "PYCONV_DWC_AFFINE"
        DWC_RELU "PYCONV_DWC_RELU"
        DWC_CLAMP "PYCONV_DWC_CLAMP"
        DWC_EPI_SIZE "(2 * PYCONV_DWC_VBYTES / 4 + 2)"


cpdef enum:
    # depthwise_conv2d's layout argument: choose, the row path, the channel-blocked path where it serves
    LAYOUT_AUTO = 0
    LAYOUT_ROWS = 1
    LAYOUT_BLOCKED = 2
    LAYOUT_ALIGNED = 3


cdef enum:
    # Bytes of one band of output rows: computed, then finished by the epilogue while in L1.
    OUTPUT_BUDGET = 16384


cdef struct Job:
    bint double_precision
    const void* x
    const void* weight
    void* out
    DwGeometry geometry               # of the input
    void* kernel                      # the band kernel (pyconv_dw_choose_*)
    Py_ssize_t channels, multiplier, out_h, bands
    const Epilogue* ep
    # buffered: each band's input rows are first copied into zero-padded rows (buffer_geometry)
    bint buffered
    # aligned: the kernel is an aligned-rows one (pyconv_dwa_choose_*), its ring of kernel_h + 1 rows of
    # ring_vectors vectors in the thread's buffer
    bint aligned
    Py_ssize_t ring_vectors
    DwGeometry buffer_geometry
    char* buffers                     # threads x buffer_bytes, zeroed
    Py_ssize_t buffer_bytes


cdef void _task(const Job* job, const floating* x, const floating* weight, floating* out,
                Py_ssize_t task, floating* buffer) noexcept nogil:
    """Band task % bands of input plane task // bands: its output rows of the plane's m output channels."""
    cdef const DwGeometry* g = &job.geometry
    cdef const DwGeometry* source = g
    cdef Py_ssize_t plane = task // job.bands, band = task % job.bands
    cdef Py_ssize_t n = plane // job.channels, c = plane % job.channels
    cdef Py_ssize_t oh_start = band * job.out_h // job.bands, oh_stop = (band + 1) * job.out_h // job.bands
    cdef Py_ssize_t first = oh_start, stop = oh_stop
    cdef Py_ssize_t out_channels = job.channels * job.multiplier, taps = g.kernel_h * g.kernel_w
    cdef const floating* rows = x + plane * g.in_h * g.in_w
    cdef Py_ssize_t j, oc, offset, oh
    if job.buffered:
        source = &job.buffer_geometry
        if floating is float:
            pyconv_dw_fill_f32(buffer, source.in_w, (oh_stop - oh_start - 1) * g.stride_h + (g.kernel_h - 1)
                               * g.dilation_h + 1, rows, g.in_h, g.in_w, oh_start * g.stride_h - g.pad_h, g.pad_w)
        else:
            pyconv_dw_fill_f64(buffer, source.in_w, (oh_stop - oh_start - 1) * g.stride_h + (g.kernel_h - 1)
                               * g.dilation_h + 1, rows, g.in_h, g.in_w, oh_start * g.stride_h - g.pad_h, g.pad_w)
        rows = buffer
        first = 0
        stop = oh_stop - oh_start
    for j in range(job.multiplier):
        oc = c * job.multiplier + j
        offset = ((n * out_channels + oc) * job.out_h + oh_start) * g.out_w
        if job.aligned:
            if floating is float:
                pyconv_dwa_band_call_f32(job.kernel, g, out + offset, oh_start, oh_stop, rows, weight + oc * taps,
                                         buffer, job.ring_vectors)
            else:
                pyconv_dwa_band_call_f64(job.kernel, g, out + offset, oh_start, oh_stop, rows, weight + oc * taps,
                                         buffer, job.ring_vectors)
        elif floating is float:
            pyconv_dw_band_call_f32(job.kernel, source, out + offset, first, stop, rows, weight + oc * taps)
        else:
            pyconv_dw_band_call_f64(job.kernel, source, out + offset, first, stop, rows, weight + oc * taps)
        for oh in range(oh_stop - oh_start):
            epilogue_row(job.ep, out, offset + oh * g.out_w, g.out_w, oc)


cdef void _run_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef void* buffer = job.buffers + thread * job.buffer_bytes
    if job.double_precision:
        _task(job, <const double*>job.x, <const double*>job.weight, <double*>job.out, task, <double*>buffer)
    else:
        _task(job, <const float*>job.x, <const float*>job.weight, <float*>job.out, task, <float*>buffer)


cdef struct BlockedJob:
    # The channel-blocked path: tasks are (image, block of CL channels, band of output rows).
    bint double_precision
    const void* x
    void* out
    const void* weight                # (blocks, K * K, CL) filters, lanes past the channels zero
    void* kernel                      # the row kernel (pyconv_dwc_choose_*)
    void* pair_kernel                 # the kernel of two rows at once, or NULL
    Py_ssize_t ring_rows              # input rows held: K, or K + stride for pairs
    Py_ssize_t channels, in_h, in_w, out_h, out_w
    Py_ssize_t k, stride_h, pad_h, pad_w
    Py_ssize_t lanes, blocks, bands
    Py_ssize_t ring_w                 # pixels of a ring row: (out_w - 1) * stride_w + K
    Py_ssize_t columns                # input columns placed in a ring row (at pad_w)
    const void* zeros                 # a ring row of zeros
    char* scratch                     # threads x scratch_bytes: the ring (ring_rows rows), then two output rows
    Py_ssize_t scratch_bytes
    const Epilogue* ep
    # Without a residual the epilogue runs on the channel-blocked values: `finish` (DWC_*) in the row
    # kernels' registers, then activation_row on the row of pixels if `activation_after`; with one it
    # runs on the output rows after the unpack (epilogue_row).
    int finish
    bint activation_after
    double default_shift              # the shift of lanes without one: epilogue_row's (0 or -0.0)


cdef void _blocked_task(const BlockedJob* job, const floating* x, floating* out, Py_ssize_t task,
                        floating* ring) noexcept nogil:
    """Band task % bands of channel block (task // bands) % blocks of image task // (bands * blocks)."""
    cdef Py_ssize_t band = task % job.bands, block = (task // job.bands) % job.blocks
    cdef Py_ssize_t n = task // (job.bands * job.blocks), lanes = job.lanes, k = job.k, sh = job.stride_h
    cdef Py_ssize_t c0 = block * lanes, nc = min(lanes, job.channels - c0)
    cdef Py_ssize_t oh_start = band * job.out_h // job.bands, oh_stop = (band + 1) * job.out_h // job.bands
    cdef Py_ssize_t in_plane = job.in_h * job.in_w, out_plane = job.out_h * job.out_w, row = job.ring_w * lanes
    cdef const floating* planes = x + (n * job.channels + c0) * in_plane
    cdef floating* out_planes = out + (n * job.channels + c0) * out_plane
    cdef const floating* weight = <const floating*>job.weight + block * k * k * lanes
    cdef floating* orow = ring + job.ring_rows * row
    cdef const floating* rows[8]
    cdef floating epi[DWC_EPI_SIZE]                   # scale, shift of the block's lanes; low, high
    cdef const floating* scale = <const floating*>job.ep.scale
    cdef const floating* shift = <const floating*>job.ep.shift
    cdef Py_ssize_t oh, ih, lo, filled, i, count, l, r, offset
    cdef bint pair
    for l in range(lanes):
        epi[l] = scale[c0 + l] if scale != NULL and l < nc else 1
        epi[lanes + l] = shift[c0 + l] if shift != NULL and l < nc else <floating>job.default_shift
    epi[2 * lanes] = <floating>job.ep.p0
    epi[2 * lanes + 1] = <floating>job.ep.p1
    filled = oh_start * sh - job.pad_h
    oh = oh_start
    while oh < oh_stop:
        pair = job.pair_kernel != NULL and oh + 1 < oh_stop
        count = k + sh if pair else k      # the input rows of this output row or pair of rows
        lo = oh * sh - job.pad_h
        for ih in range(max(filled, lo), lo + count):
            if 0 <= ih < job.in_h and job.columns > 0:
                if floating is float:
                    pyconv_dwc_pack_f32(ring + (ih + job.pad_h) % job.ring_rows * row + job.pad_w * lanes,
                                        planes + ih * job.in_w, in_plane, nc, job.columns)
                else:
                    pyconv_dwc_pack_f64(ring + (ih + job.pad_h) % job.ring_rows * row + job.pad_w * lanes,
                                        planes + ih * job.in_w, in_plane, nc, job.columns)
        filled = max(filled, lo + count)
        for i in range(count):
            ih = lo + i
            rows[i] = ring + (ih + job.pad_h) % job.ring_rows * row if 0 <= ih < job.in_h else <const floating*>job.zeros
        if floating is float:
            pyconv_dwc_row_call_f32(job.pair_kernel if pair else job.kernel, orow, rows, weight, job.out_w,
                                    job.finish, epi)
        else:
            pyconv_dwc_row_call_f64(job.pair_kernel if pair else job.kernel, orow, rows, weight, job.out_w,
                                    job.finish, epi)
        if job.activation_after:
            activation_row(orow, orow, (2 if pair else 1) * job.out_w * lanes, job.ep.activation, job.ep.p0,
                           job.ep.p1, job.ep.p2)
        for r in range(2 if pair else 1):
            if floating is float:
                pyconv_dwc_unpack_f32(out_planes + (oh + r) * job.out_w, out_plane, nc, orow + r * job.out_w * lanes,
                                      job.out_w)
            else:
                pyconv_dwc_unpack_f64(out_planes + (oh + r) * job.out_w, out_plane, nc, orow + r * job.out_w * lanes,
                                      job.out_w)
            if job.ep.residual != NULL:   # laid out like the output: after the unpack
                for l in range(nc):
                    offset = ((n * job.channels + c0 + l) * job.out_h + oh + r) * job.out_w
                    epilogue_row(job.ep, out, offset, job.out_w, c0 + l)
        oh += 2 if pair else 1


cdef void _run_blocked_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const BlockedJob* job = <const BlockedJob*>context
    cdef void* ring = job.scratch + thread * job.scratch_bytes
    if job.double_precision:
        _blocked_task(job, <const double*>job.x, <double*>job.out, task, <double*>ring)
    else:
        _blocked_task(job, <const float*>job.x, <float*>job.out, task, <float*>ring)


def blocked_weight_size(Py_ssize_t channels, Py_ssize_t taps, Py_ssize_t itemsize):
    """Elements of pack_blocked_weight's layout for (channels, taps) filters of ``itemsize`` bytes."""
    cdef Py_ssize_t lanes = DWC_VBYTES // itemsize
    return (channels + lanes - 1) // lanes * taps * lanes


def pack_blocked_weight(const floating[:, ::1] weight, floating[::1] packed):
    """The channel-blocked path's filters: (blocks, taps, lanes), lane l of block b channel b * lanes + l,
    lanes past the channels zero.  weight: (C, taps); packed: blocked_weight_size(C, taps, itemsize)
    elements (allocated by the caller); depthwise_conv2d takes it as ``blocked_weight``."""
    cdef Py_ssize_t lanes = DWC_VBYTES // sizeof(floating), channels = weight.shape[0], taps = weight.shape[1]
    cdef Py_ssize_t block, t, l, c
    with nogil:
        for block in range((channels + lanes - 1) // lanes):
            for t in range(taps):
                for l in range(lanes):
                    c = block * lanes + l
                    packed[(block * taps + t) * lanes + l] = weight[c, t] if c < channels else 0


cdef int _blocked(const floating[:, :, :, ::1] x, const floating[:, ::1] weight, const floating[::1] blocked_weight,
                  floating[:, :, :, ::1] out, const DwGeometry* g, void* kernel, const Epilogue* ep,
                  int num_threads) except -1:
    """The channel-blocked path (multiplier 1, K x K filter, dilation 1; kernel from pyconv_dwc_choose_*);
    blocked_weight: pack_blocked_weight's layout of weight, or empty (packed here)."""
    cdef BlockedJob job
    cdef Py_ssize_t lanes = DWC_VBYTES // sizeof(floating), k = g.kernel_h, taps = g.kernel_h * g.kernel_w
    cdef Py_ssize_t images = x.shape[0], tasks, threads, weight_bytes, zeros_bytes
    cdef char* memory
    cdef floating* packed
    job.channels = x.shape[1]
    job.in_h = g.in_h
    job.in_w = g.in_w
    job.out_h = out.shape[2]
    job.out_w = g.out_w
    job.k = k
    job.stride_h = g.stride_h
    job.pad_h = g.pad_h
    job.pad_w = g.pad_w
    job.lanes = lanes
    job.blocks = (job.channels + lanes - 1) // lanes
    job.bands = 1
    if images * job.blocks < 4 * num_threads:
        job.bands = min(job.out_h, (4 * num_threads + images * job.blocks - 1) // (images * job.blocks))
    tasks = images * job.blocks * job.bands
    threads = max(1, min(num_threads, tasks))
    job.ring_w = (job.out_w - 1) * g.stride_w + k
    job.columns = max(0, min(g.in_w, job.ring_w - g.pad_w))
    weight_bytes = 0 if blocked_weight.shape[0] else (job.blocks * taps * lanes * sizeof(floating) + 63) // 64 * 64
    zeros_bytes = (job.ring_w * lanes * sizeof(floating) + 63) // 64 * 64
    # pairs of output rows share their input rows (vertical stride = horizontal stride: the kernels'
    # compile-time stride), for rows at least a block of pixels wide
    job.pair_kernel = NULL
    if g.stride_h == g.stride_w and job.out_w >= DWC_PIXELS:
        if floating is float:
            job.pair_kernel = pyconv_dwc_choose_f32(k, g.stride_w, 1)
        else:
            job.pair_kernel = pyconv_dwc_choose_f64(k, g.stride_w, 1)
    job.ring_rows = k + g.stride_h if job.pair_kernel != NULL else k
    job.scratch_bytes = ((job.ring_rows * job.ring_w + 2 * job.out_w) * lanes * sizeof(floating) + 63) // 64 * 64
    memory = <char*>calloc(64 + weight_bytes + zeros_bytes + threads * job.scratch_bytes, 1)
    if memory == NULL:
        raise MemoryError("depthwise_conv2d: cannot allocate the channel-blocked rows")
    packed = <floating*>(memory + (-<uintptr_t>memory) % 64)
    if blocked_weight.shape[0]:
        job.weight = &blocked_weight[0]
    else:
        pack_blocked_weight(weight, <floating[:job.blocks * taps * lanes]>packed)
        job.weight = packed
    job.zeros = <char*>packed + weight_bytes
    job.scratch = <char*>packed + weight_bytes + zeros_bytes
    job.kernel = kernel
    job.ep = ep
    # epilogue_row's arithmetic: scale 1 and shift -0.0 where absent before ReLU / hardtanh (its one
    # pass), shift 0 after a scale otherwise; a clamp in registers only with bounds that are not NaN
    job.finish = DWC_NONE
    job.activation_after = False
    job.default_shift = -0.0 if ep.activation == ACT_RELU or ep.activation == ACT_HARDTANH else 0.0
    if ep.residual == NULL:
        if ep.scale != NULL or ep.shift != NULL:
            job.finish = DWC_AFFINE
        if ep.activation == ACT_RELU:
            job.finish = DWC_RELU
        elif ep.activation == ACT_HARDTANH and ep.p0 == ep.p0 and ep.p1 == ep.p1:
            job.finish = DWC_CLAMP
        elif ep.activation != ACT_IDENTITY:
            job.activation_after = True
    job.double_precision = floating is double
    job.x = &x[0, 0, 0, 0]
    job.out = &out[0, 0, 0, 0]
    try:
        with nogil:
            parallel_for(_run_blocked_task, &job, tasks, threads)
    finally:
        free(memory)
    return 0


# 3x3 output rows up to this wide take the channel-blocked path.  Measured 1 thread, ms rows /
# blocked, with MobileNet's epilogue (scale, shift, ReLU6; blocked: in the row kernels' registers):
# 960@7^2 s1 0.128 / 0.052, 384@14^2 s1 0.092 / 0.043, 576@14^2 s2 0.083 / 0.038, 192@28^2 s1
# 0.108 / 0.077, 144@56^2 s1 0.202 / 0.203, s2 0.120 / 0.093, 96@112^2 s2 0.234 / 0.232, but
# 32@112^2 s1 0.146 / 0.177 (wide rows: few edges, and the transposes cost more).
BLOCKED_3X3_MAX_WIDTH = 56
# 3x3 input rows at least this wide take the aligned-rows kernels where they serve (padding 1, no
# dilation), before the channel-blocked path (5x5 keeps the blocked path: measured on 28-wide rows
# only).  Measured (kernel alone, no epilogue, ms at 1 / 2 threads, row path / aligned / blocked): 144@56^2 3x3 s1 0.172 / 0.168 / 0.169,
# 0.089 / 0.086 / 0.098; 96@112^2 s2 0.217 / 0.168 / 0.212, 0.110 / 0.087 / 0.117; 144@56^2 s2
# 0.104 / 0.082 / 0.088, 0.063 / 0.055 / 0.073; 32@112^2 s1 0.131 / 0.113 / 0.146, 0.082 / 0.070 /
# 0.112; narrower rows stay blocked (192@28^2 s1 0.087 / 0.082 / 0.066, 960@7^2 0.102 / 0.083 /
# 0.044, 240@28^2 5x5 0.184 / 0.184 / 0.144).
ALIGNED_MIN_WIDTH = 56


def depthwise_conv2d(const floating[:, :, :, ::1] x, const floating[:, ::1] weight, floating[:, :, :, ::1] out,
                     tuple kernel_size, tuple stride, tuple padding, tuple dilation, int layout,
                     const floating[::1] blocked_weight,
                     const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
                     int activation, double p0, double p1, double p2, int num_threads):
    """Depthwise convolution with the fused epilogue: ``out = act(conv(x, weight) * scale + shift + residual)``.

    x: (N, C, H, W); weight: (C * m, KH * KW), output channel c * m + j
    filtering input channel c; out: (N, C * m, OH, OW), allocated by the
    caller with OH, OW the convolution's output size for ``kernel_size``,
    ``stride``, ``padding`` (top, left: the padding after is implied by OH,
    OW) and ``dilation``, each an (h, w) pair checked by the caller.  The
    epilogue arguments are those of epilogue.pxd (empty arrays: absent).
    A 1-D convolution is the case H = KH = 1.  ``layout``: LAYOUT_AUTO (the
    measured rule), LAYOUT_ROWS (the row path), LAYOUT_BLOCKED (the
    channel-blocked path where it serves: multiplier 1, 3x3 or 5x5, stride
    1 or 2 along the row, no dilation; else the row path) or LAYOUT_ALIGNED
    (the aligned-rows kernels where they serve: 3x3 or 5x5, padding K / 2
    along the row, stride 1 or 2 along the row, no dilation, vectors of at
    least 4 lanes; else the row path).  Each gives the
    same bits for any thread count (the paths sum in different orders).
    ``blocked_weight``: the weights in pack_blocked_weight's layout (packed
    once by the caller), or empty (the channel-blocked path packs them).
    """
    cdef Job job
    cdef DwGeometry* g = &job.geometry
    cdef DwGeometry* b = &job.buffer_geometry
    cdef Py_ssize_t planes, tasks, threads, band_rows, ow, col, out_w, edge_columns, in_rows, zeros_bytes
    cdef Py_ssize_t vector_length = DW_VBYTES // sizeof(floating)
    cdef Epilogue ep = epilogue_init(&scale[0] if scale.shape[0] else NULL, &shift[0] if shift.shape[0] else NULL,
                                     &residual[0] if residual.shape[0] else NULL, activation, p0, p1, p2)
    cdef char* memory
    cdef void* blocked_kernel
    cdef void* aligned_kernel
    cdef Py_ssize_t aligned_lanes
    cdef Py_ssize_t lanes
    g.in_h = x.shape[2]
    g.in_w = x.shape[3]
    g.out_w = out_w = out.shape[3]
    g.kernel_h = kernel_size[0]
    g.kernel_w = kernel_size[1]
    g.stride_h = stride[0]
    g.stride_w = stride[1]
    g.pad_h = padding[0]
    g.pad_w = padding[1]
    g.dilation_h = dilation[0]
    g.dilation_w = dilation[1]
    job.channels = x.shape[1]
    job.multiplier = out.shape[1] // job.channels
    job.out_h = out.shape[2]
    planes = x.shape[0] * job.channels
    if planes == 0 or job.out_h == 0 or out_w == 0:
        return
    if floating is float:
        blocked_kernel = pyconv_dwc_choose_f32(g.kernel_w, g.stride_w, 0)
        aligned_kernel = pyconv_dwa_choose_f32(g.kernel_h, g.kernel_w, g.stride_w, g.dilation_h, g.dilation_w,
                                               g.pad_w)
    else:
        blocked_kernel = pyconv_dwc_choose_f64(g.kernel_w, g.stride_w, 0)
        aligned_kernel = pyconv_dwa_choose_f64(g.kernel_h, g.kernel_w, g.stride_w, g.dilation_h, g.dilation_w,
                                               g.pad_w)
    if layout == LAYOUT_ROWS or layout == LAYOUT_BLOCKED or (layout == LAYOUT_AUTO and (
            g.kernel_w != 3 or g.in_w < ALIGNED_MIN_WIDTH)):
        aligned_kernel = NULL
    if (blocked_kernel != NULL and job.multiplier == 1 and g.kernel_h == g.kernel_w and g.dilation_h == 1
            and g.dilation_w == 1 and aligned_kernel == NULL):
        # channel-blocked for 5x5, and for 3x3 with output rows of at most BLOCKED_3X3_MAX_WIDTH, unless
        # it wastes more of its vectors on the last channel block than the row path wastes on row
        # tails; wider 3x3 measured level with the row path, which converts nothing
        # (bench/DEPTHWISE_POOLING.md)
        lanes = DWC_VBYTES // sizeof(floating)
        if layout == LAYOUT_BLOCKED or (layout == LAYOUT_AUTO and (
                g.kernel_w == 5 or out_w <= BLOCKED_3X3_MAX_WIDTH) and job.channels * (
                (out_w + vector_length - 1) // vector_length * vector_length)
                >= out_w * ((job.channels + lanes - 1) // lanes * lanes)):
            if blocked_weight.shape[0] and blocked_weight.shape[0] != blocked_weight_size(
                    job.channels, g.kernel_h * g.kernel_w, sizeof(floating)):
                raise ValueError("depthwise_conv2d: blocked_weight is not pack_blocked_weight's layout of weight")
            _blocked(x, weight, blocked_weight, out, g, blocked_kernel, &ep, num_threads)
            return
    # The interior: ow * sw - pw >= 0 and ow * sw - pw + (KW - 1) * dw < W.
    g.interior_lo = out_w
    g.interior_hi = out_w
    for ow in range(out_w):
        col = ow * g.stride_w - g.pad_w
        if col >= 0 and col + (g.kernel_w - 1) * g.dilation_w < g.in_w:
            g.interior_hi = ow + 1
            if g.interior_lo == out_w:
                g.interior_lo = ow
    if g.interior_hi - g.interior_lo < vector_length:
        g.interior_lo = out_w
        g.interior_hi = out_w
    # Straight from the input, computing the edge columns one at a time, unless those cost more
    # than copying the rows into zero-padded ones whose columns are all interior (measured:
    # bench/DEPTHWISE_POOLING.md): 5x5 on 28 columns is buffered, 3x3 on 56 and 112 is not;
    # rows narrower than a vector always are (into rows wide enough for a whole vector).
    edge_columns = out_w - (g.interior_hi - g.interior_lo)
    job.buffered = out_w < vector_length or 2 * edge_columns * g.kernel_w > g.in_w * g.stride_h
    job.aligned = aligned_kernel != NULL
    if job.aligned:
        job.buffered = False
    # Bands of output rows: at most OUTPUT_BUDGET bytes each, and at least 4 tasks per thread.
    band_rows = max(1, OUTPUT_BUDGET // (out_w * <Py_ssize_t>sizeof(floating)))
    job.bands = (job.out_h + band_rows - 1) // band_rows
    if planes * job.bands < 4 * num_threads:
        job.bands = min(job.out_h, (4 * num_threads + planes - 1) // planes)
    tasks = planes * job.bands
    threads = max(1, min(num_threads, tasks))
    b[0] = g[0]
    b.in_w = (max(out_w, vector_length) - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1
    b.in_h = ((job.out_h + job.bands - 1) // job.bands - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1
    b.pad_h = 0
    b.pad_w = 0
    b.interior_lo = 0 if out_w >= vector_length else out_w
    b.interior_hi = out_w
    job.buffer_bytes = (b.in_h * b.in_w * sizeof(floating) + 63) // 64 * 64 if job.buffered else 0
    if job.aligned:
        # the ring: a zero vector, the row's vectors, zero vectors past the last one a tap reads
        aligned_lanes = DWA_VBYTES // sizeof(floating)
        job.ring_vectors = max((g.in_w + aligned_lanes - 1) // aligned_lanes,
                               g.stride_w * ((out_w + aligned_lanes - 1) // aligned_lanes)) + 2
        job.buffer_bytes = ((g.kernel_h + 1) * job.ring_vectors * DWA_VBYTES + 63) // 64 * 64
    zeros_bytes = (max(g.in_w, b.in_w) * sizeof(floating) + 63) // 64 * 64
    memory = <char*>calloc(64 + zeros_bytes + threads * job.buffer_bytes, 1)
    if memory == NULL:
        raise MemoryError("depthwise_conv2d: cannot allocate the row buffers")
    g.zeros = memory + (-<uintptr_t>memory) % 64       # every buffer on a cache line
    b.zeros = g.zeros
    job.buffers = <char*>g.zeros + zeros_bytes
    job.double_precision = floating is double
    job.x = &x[0, 0, 0, 0]
    job.weight = &weight[0, 0]
    job.out = &out[0, 0, 0, 0]
    job.ep = &ep
    if job.aligned:
        job.kernel = aligned_kernel
    elif floating is float:
        job.kernel = pyconv_dw_choose_f32(g.kernel_h, g.kernel_w, g.stride_w, g.dilation_w)
    else:
        job.kernel = pyconv_dw_choose_f64(g.kernel_h, g.kernel_w, g.stride_w, g.dilation_w)
    try:
        with nogil:
            parallel_for(_run_task, &job, tasks, threads)
    finally:
        free(memory)
