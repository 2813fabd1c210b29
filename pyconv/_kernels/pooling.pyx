"""Max, average and max-unpooling kernels for 1d/2d/3d pooling.

Every pool works on planes: the input is viewed as ``(P, D, H, W)`` with one
plane per (batch, channel) pair (1d and 2d pools use D = H = 1 or D = 1), the
output as ``(P, OD, OH, OW)``.  Each output element folds its window's
elements in torch's order (depth, then height, then width), so results are
bit-identical to torch's CPU kernels and independent of the thread count:
max starts at -inf and takes an element if it is greater or NaN; average
sums from 0 and divides by torch's divisor.

Max (without indices) and average pooling read the input rows directly, one
output row at a time: the window's rows inside the input are listed (a row in
the padding would only add -inf or 0, which never changes a maximum or a
sum); the output columns whose taps all lie inside the row are computed as
whole vectors by a row kernel (GNU C vectors; stride 2 takes the even
elements of two loads with a shuffle; dedicated kernels for 2 and 3 taps per
row), the last vector overlapping the one before (same operations, same
bits); the few columns at the edges, whose windows reach into the padding,
one at a time over their valid taps.  The vector max is maxps (which keeps
the running maximum where torch would take a NaN) while a mask of NaN taps
is kept; a row with a NaN is folded again with the exact rule.  Average
pooling divides in the same pass.  Tasks are (plane, output depth) pairs,
split into bands of output rows when there are few of them, run through
parallel.pxd's parallel_for; 2-D planes narrower than a vector (and stride 1
max pools on rows up to FLAT_MAX_WIDTH) go a plane per task through a padded
copy of the plane (stride 1 max pooling: one kernel call over the copy seen as
one long row; stride 2 max pooling on rows up to SEPARABLE_MAX_WIDTH: along
the rows first, then across them).  Stride 2 max pooling with windows 2 or 3
wide on wider rows also folds along the rows first, each input row once into
a ring of folded rows, from loads at the even elements (aligned when the row
is), then across them.  Max pooling with indices keeps the scalar row
function that tracks each maximum's position (a task per output row), and
max_unpool scatters a plane per task, both through parallel_for too, as
every pyconv kernel does.

The Python layer (``pyconv.functional.pooling``) validates the arguments,
computes the output size and allocates the outputs; these kernels only
compute and never read or write outside the arrays they are given.
"""
from cython cimport floating
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from pyconv._kernels.parallel cimport parallel_for



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


cdef void _max_pool_row_with_indices(const floating* plane, floating* out, int64_t* indices,
                                     Py_ssize_t od, Py_ssize_t oh, Axis ad, Axis ah, Axis aw) noexcept nogil:
    """Max over the windows of one output row, and each maximum's flat index in the plane.

    Like torch: the running maximum starts at -inf with the index of the
    window's first element, and an element replaces it if it is greater or NaN.
    """
    cdef Py_ssize_t d_start = od * ad.stride - ad.pad
    cdef Py_ssize_t h_start = oh * ah.stride - ah.pad
    cdef Py_ssize_t td, th, tw, ow, lo, hi, offset, row_start, base
    cdef Py_ssize_t sw = aw.stride
    cdef const floating* row
    cdef floating v
    for ow in range(aw.out):
        out[ow] = -INFINITY
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
                for ow in range(lo, hi):
                    v = row[ow * sw + offset]
                    if v > out[ow] or v != v:
                        out[ow] = v
                        indices[ow] = row_start + ow * sw + offset


cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Vector width from the compiler's target macros (-march=...). */
    #if defined(__AVX512F__)
    #define PYCONV_POOL_VBYTES 64
    #elif defined(__AVX__)
    #define PYCONV_POOL_VBYTES 32
    #else
    #define PYCONV_POOL_VBYTES 16
    #endif

    #if defined(_MSC_VER)
    #define PYCONV_POOL_RESTRICT __restrict
    #else
    #define PYCONV_POOL_RESTRICT restrict
    #endif

    /* Vector max v > m ? v : m: maxps/maxpd where the target has them (the
       same rule: equal or NaN v keeps m), else a compare and a blend.  NaN
       is dealt with apart (PYCONV_POOL_ROW). */
    #if defined(__AVX__) || defined(__SSE2__)
    #include <immintrin.h>
    #endif
    #if defined(__AVX512F__) && PYCONV_POOL_VBYTES == 64
    #define PYCONV_POOL_VMAX_f32(v, m) ((vec)_mm512_max_ps((__m512)(v), (__m512)(m)))
    #define PYCONV_POOL_VMAX_f64(v, m) ((vec)_mm512_max_pd((__m512d)(v), (__m512d)(m)))
    #elif defined(__AVX__) && PYCONV_POOL_VBYTES == 32
    #define PYCONV_POOL_VMAX_f32(v, m) ((vec)_mm256_max_ps((__m256)(v), (__m256)(m)))
    #define PYCONV_POOL_VMAX_f64(v, m) ((vec)_mm256_max_pd((__m256d)(v), (__m256d)(m)))
    #elif defined(__SSE2__) && PYCONV_POOL_VBYTES == 16
    #define PYCONV_POOL_VMAX_f32(v, m) ((vec)_mm_max_ps((__m128)(v), (__m128)(m)))
    #define PYCONV_POOL_VMAX_f64(v, m) ((vec)_mm_max_pd((__m128d)(v), (__m128d)(m)))
    #else
    #define PYCONV_POOL_VMAX_f32(v, m) ((vec)(((ivec)(v) & ((v) > (m))) | ((ivec)(m) & ~((v) > (m)))))
    #define PYCONV_POOL_VMAX_f64(v, m) PYCONV_POOL_VMAX_f32(v, m)
    #endif

    /* dst[0:n] = src[0:n] for the short rows of small planes (7-28 values), by masked vector loads
       and stores where the target has them (nothing read or written past n), where the plane path
       made a memcpy call per row (14 for a 7x7 plane); float64 rows are copied as twice as many
       floats. */
    static inline void pyconv_pool_copy(float *dst, const float *src, ptrdiff_t n)
    {
    #if defined(__AVX512F__)
        for (; n >= 16; n -= 16, src += 16, dst += 16)
            _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
        __mmask16 m = (__mmask16)((1u << n) - 1u);
        _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
    #elif defined(__AVX2__)
        for (; n >= 8; n -= 8, src += 8, dst += 8)
            _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(dst, m, _mm256_maskload_ps(src, m));
    #else
        memcpy(dst, src, n * sizeof *dst);
    #endif
    }

    /* The exact vector fold: torch's rule lane by lane. */
    #define PYCONV_POOL_MAX_EXACT(m, v)                                              \\
        {                                                                            \\
            ivec take = (v > m) | (v != v);                                          \\
            m = (vec)(((ivec)v & take) | ((ivec)m & ~take));                         \\
        }

    /* Taps of one output vector at column at, in (row, kw) order, each
       handed to EACH(v).  Stride 1 loads q[0:VL] at the tap's column q.
       Stride 2 needs q[0], q[2], ..., q[2 VL - 2]: two adjacent taps (PAIRS,
       dilation 1) share two loads, q[0:VL] and q[VL:2 VL], whose even and
       odd elements they are; a lone tap takes the even elements of q[0:VL]
       and q[VL-1:2 VL-1], nothing past its last element. */
    #define PYCONV_POOL_TAPS(S, PAIRS, at, EACH)                                     \\
        _Pragma("GCC unroll 4")                                                      \\
        for (ptrdiff_t t = 0; t < rcount; t++) {                                     \\
            const elem *row = rows[t] + (at) * S;                                    \\
            _Pragma("GCC unroll 4")                                                  \\
            for (ptrdiff_t kw = 0; kw < k_count; kw++) {                             \\
                const elem *q = row + taps[kw];                                      \\
                vec v;                                                               \\
                if (S == 1) {                                                        \\
                    memcpy(&v, q, sizeof v);                                         \\
                    EACH(v)                                                          \\
                } else if (PAIRS && kw + 1 < k_count) {                              \\
                    vec lo, hi, w;                                                   \\
                    memcpy(&lo, q, sizeof lo);                                       \\
                    memcpy(&hi, q + VL, sizeof hi);                                  \\
                    v = PYCONV_POOL_SHUFFLE(lo, hi, pick_even);                      \\
                    w = PYCONV_POOL_SHUFFLE(lo, hi, pick_odd);                       \\
                    EACH(v)                                                          \\
                    EACH(w)                                                          \\
                    kw++;                                                            \\
                } else {                                                             \\
                    vec lo, hi;                                                      \\
                    memcpy(&lo, q, sizeof lo);                                       \\
                    memcpy(&hi, q + VL - 1, sizeof hi);                              \\
                    v = PYCONV_POOL_SHUFFLE(lo, hi, pick_short);                     \\
                    EACH(v)                                                          \\
                }                                                                    \\
            }                                                                        \\
        }
    #if defined(__GNUC__) && !defined(__clang__)
    #define PYCONV_POOL_HAVE_S2 1
    #define PYCONV_POOL_SHUFFLE(a, b, mask) __builtin_shuffle(a, b, mask)
    #else
    #define PYCONV_POOL_HAVE_S2 0
    #define PYCONV_POOL_SHUFFLE(a, b, mask) (a)
    #endif

    /* The vectorised part of one output row: out[ow] for ow in [c0, c1),
       c1 - c0 >= VL, of the window's taps: rows[t] (t < row_count) at column
       ow * S + taps[kw] (kw < KCOUNT, or tap_count when KCOUNT is 0), every
       one inside its row for these ow.  One vector at a time, the last moved
       back to end at c1 (same operations, same bits).
       MAX: maxps-style folds from -inf while a mask of the row's NaN taps is
       kept; a row with a NaN tap is folded again with torch's exact rule, so
       a NaN wins as in torch.  AVERAGE: the sum from 0, divided by
       factor * divisors[ow]. */
    #define PYCONV_POOL_ROW(NAME, T, I, SUFFIX, KCOUNT, S, PAIRS, AVERAGE)           \\
    static void NAME(T *PYCONV_POOL_RESTRICT out, ptrdiff_t c0, ptrdiff_t c1,        \\
                     const T *const *rows, ptrdiff_t row_count,                      \\
                     const ptrdiff_t *taps, ptrdiff_t tap_count,                     \\
                     T factor, const T *PYCONV_POOL_RESTRICT divisors)               \\
    {                                                                                \\
        typedef T elem;                                                              \\
        typedef T vec __attribute__((vector_size(PYCONV_POOL_VBYTES)));              \\
        typedef I ivec __attribute__((vector_size(PYCONV_POOL_VBYTES)));             \\
        enum { VL = PYCONV_POOL_VBYTES / sizeof(T) };                                \\
        ivec pick_even, pick_odd, pick_short;                                        \\
        for (int j = 0; j < VL; j++) {                                               \\
            pick_even[j] = 2 * j;                                                    \\
            pick_odd[j] = 2 * j + 1;                                                 \\
            pick_short[j] = j < VL / 2 ? 2 * j : 2 * j + 1;                          \\
        }                                                                            \\
        (void)pick_even; (void)pick_odd; (void)pick_short;                           \\
        (void)tap_count; (void)factor; (void)divisors;                               \\
        const ptrdiff_t k_count = KCOUNT > 0 ? KCOUNT : tap_count;                   \\
        ivec bad = {0};                                                              \\
        /* a square window inside the input: KCOUNT rows, unrolled */                \\
        if (KCOUNT > 0 && row_count == KCOUNT) {                                     \\
            const ptrdiff_t rcount = KCOUNT;                                         \\
            PYCONV_POOL_ROW_BODY(S, PAIRS, AVERAGE, SUFFIX)                          \\
        } else {                                                                     \\
            const ptrdiff_t rcount = row_count;                                      \\
            PYCONV_POOL_ROW_BODY(S, PAIRS, AVERAGE, SUFFIX)                          \\
        }                                                                            \\
        if (!AVERAGE && PYCONV_POOL_ANY_NAN_##SUFFIX((vec)bad)) {                    \\
            const ptrdiff_t rcount = row_count;                                      \\
            for (ptrdiff_t ow = c0; ow < c1; ow += VL) {                             \\
                ptrdiff_t at = ow + VL <= c1 ? ow : c1 - VL;                         \\
                vec m = (vec){0} - __builtin_inf();                                  \\
                PYCONV_POOL_TAPS(S, PAIRS, at, PYCONV_POOL_EXACT_INTO_M)             \\
                memcpy(out + at, &m, sizeof m);                                      \\
                ow = at;                                                             \\
            }                                                                        \\
        }                                                                            \\
    }
    #define PYCONV_POOL_ROW_BODY(S, PAIRS, AVERAGE, SUFFIX)                          \\
        for (ptrdiff_t ow = c0; ow < c1; ow += VL) {                                 \\
            ptrdiff_t at = ow + VL <= c1 ? ow : c1 - VL;                             \\
            vec m;                                                                   \\
            if (AVERAGE) {                                                           \\
                vec d;                                                               \\
                m = (vec){0};                                                        \\
                PYCONV_POOL_TAPS(S, PAIRS, at, PYCONV_POOL_ADD_TO_M)                 \\
                memcpy(&d, divisors + at, sizeof d);                                 \\
                m = m / (factor * d);                                                \\
            } else {                                                                 \\
                m = (vec){0} - __builtin_inf();                                      \\
                PYCONV_POOL_TAPS(S, PAIRS, at, PYCONV_POOL_MAX_AND_WATCH_##SUFFIX)   \\
            }                                                                        \\
            memcpy(out + at, &m, sizeof m);                                          \\
            ow = at;                                                                 \\
        }

    /* Whether a lane of the vector is NaN. */
    #if defined(__AVX512F__) && PYCONV_POOL_VBYTES == 64
    #define PYCONV_POOL_ANY_NAN_f32(v) _mm512_cmp_ps_mask((__m512)(v), (__m512)(v), _CMP_UNORD_Q)
    #define PYCONV_POOL_ANY_NAN_f64(v) _mm512_cmp_pd_mask((__m512d)(v), (__m512d)(v), _CMP_UNORD_Q)
    #elif defined(__AVX__) && PYCONV_POOL_VBYTES == 32
    #define PYCONV_POOL_ANY_NAN_f32(v) _mm256_movemask_ps(_mm256_cmp_ps((__m256)(v), (__m256)(v), _CMP_UNORD_Q))
    #define PYCONV_POOL_ANY_NAN_f64(v) _mm256_movemask_pd(_mm256_cmp_pd((__m256d)(v), (__m256d)(v), _CMP_UNORD_Q))
    #elif defined(__SSE2__) && PYCONV_POOL_VBYTES == 16
    #define PYCONV_POOL_ANY_NAN_f32(v) _mm_movemask_ps(_mm_cmpunord_ps((__m128)(v), (__m128)(v)))
    #define PYCONV_POOL_ANY_NAN_f64(v) _mm_movemask_pd(_mm_cmpunord_pd((__m128d)(v), (__m128d)(v)))
    #else
    #define PYCONV_POOL_ANY_NAN_f32(v) pyconv_pool_any_nan((const void *)&(v), sizeof(v), sizeof(v[0]))
    #define PYCONV_POOL_ANY_NAN_f64(v) PYCONV_POOL_ANY_NAN_f32(v)
    static int pyconv_pool_any_nan(const void *v, size_t bytes, size_t itemsize)
    {
        for (size_t i = 0; i < bytes; i += itemsize) {
            if (itemsize == 4) { float x; memcpy(&x, (const char *)v + i, 4); if (x != x) return 1; }
            else { double x; memcpy(&x, (const char *)v + i, 8); if (x != x) return 1; }
        }
        return 0;
    }
    #endif
    #define PYCONV_POOL_ADD_TO_M(v) m += v;
    #define PYCONV_POOL_MAX_AND_WATCH_f32(v) m = PYCONV_POOL_VMAX_f32(v, m); bad |= (v != v);
    #define PYCONV_POOL_MAX_AND_WATCH_f64(v) m = PYCONV_POOL_VMAX_f64(v, m); bad |= (v != v);
    #define PYCONV_POOL_EXACT_INTO_M(v) PYCONV_POOL_MAX_EXACT(m, v)

    /* Output columns ow in [c0, c1) one at a time, taps kw in
       [tap_lo[ow], tap_hi[ow]) only (those inside the row), any stride.
       MAX: m = v > m ? v : m (maxss, no branch) and a running sum, the
       column folded again with torch's exact rule if the sum is NaN. */
    #define PYCONV_POOL_SCALAR(NAME, T, AVERAGE)                                     \\
    static inline void NAME(T *out, ptrdiff_t c0, ptrdiff_t c1, const T *const *rows, \\
                            ptrdiff_t row_count, const ptrdiff_t *taps, ptrdiff_t stride, \\
                            const ptrdiff_t *tap_lo, const ptrdiff_t *tap_hi,        \\
                            T factor, const T *divisors)                             \\
    {                                                                                \\
        for (ptrdiff_t ow = c0; ow < c1; ow++) {                                     \\
            T m = AVERAGE ? 0 : -__builtin_inf(), sum = 0;                           \\
            for (ptrdiff_t t = 0; t < row_count; t++)                                \\
                for (ptrdiff_t kw = tap_lo[ow]; kw < tap_hi[ow]; kw++) {             \\
                    T v = rows[t][ow * stride + taps[kw]];                           \\
                    if (AVERAGE) {                                                   \\
                        m += v;                                                      \\
                    } else {                                                         \\
                        m = v > m ? v : m;                                           \\
                        sum += v;                                                    \\
                    }                                                                \\
                }                                                                    \\
            if (!AVERAGE && sum != sum) {                                            \\
                m = -__builtin_inf();                                                \\
                for (ptrdiff_t t = 0; t < row_count; t++)                            \\
                    for (ptrdiff_t kw = tap_lo[ow]; kw < tap_hi[ow]; kw++) {         \\
                        T v = rows[t][ow * stride + taps[kw]];                       \\
                        if (v > m || v != v) m = v;                                  \\
                    }                                                                \\
            }                                                                        \\
            out[ow] = AVERAGE ? m / (factor * divisors[ow]) : m;                     \\
        }                                                                            \\
    }

    typedef void (*pyconv_pool_vector_f32)(float *, ptrdiff_t, ptrdiff_t, const float *const *, ptrdiff_t,
                                            const ptrdiff_t *, ptrdiff_t, float, const float *);
    typedef void (*pyconv_pool_vector_f64)(double *, ptrdiff_t, ptrdiff_t, const double *const *, ptrdiff_t,
                                            const ptrdiff_t *, ptrdiff_t, double, const double *);

    /* The columns of a pool along the row, shared by all its output rows. */
    typedef struct {
        ptrdiff_t out_w, stride, tap_count;
        ptrdiff_t vector_lo, vector_hi;  /* columns [lo, hi) by the vector kernel (lo == hi: none) */
        const ptrdiff_t *taps;           /* (tap_count,) column of tap kw relative to ow * stride */
        const ptrdiff_t *tap_lo, *tap_hi; /* (out_w,) taps [tap_lo, tap_hi) of column ow lie in the row */
        const void *divisors;            /* average: (out_w,) column divisors of the element type */
        void *vector;                    /* the vector kernel (pyconv_pool_choose_*) */
    } pyconv_pool_columns;

    /* One output row from its window rows: the edge columns one at a time,
       the others by the vector kernel. */
    #define PYCONV_POOL_OUTPUT_ROW(SUFFIX, T)                                        \\
    static void pyconv_pool_row_##SUFFIX(const pyconv_pool_columns *c, int average, T *out, \\
                                         const T *const *rows, ptrdiff_t row_count, T factor) \\
    {                                                                                \\
        const T *divisors = (const T *)c->divisors;                                  \\
        if (average) {                                                               \\
            pyconv_avgpool_scalar_##SUFFIX(out, 0, c->vector_lo, rows, row_count, c->taps, c->stride, \\
                                           c->tap_lo, c->tap_hi, factor, divisors);  \\
            pyconv_avgpool_scalar_##SUFFIX(out, c->vector_hi, c->out_w, rows, row_count, c->taps, \\
                                           c->stride, c->tap_lo, c->tap_hi, factor, divisors); \\
        } else {                                                                     \\
            pyconv_maxpool_scalar_##SUFFIX(out, 0, c->vector_lo, rows, row_count, c->taps, c->stride, \\
                                           c->tap_lo, c->tap_hi, factor, divisors);  \\
            pyconv_maxpool_scalar_##SUFFIX(out, c->vector_hi, c->out_w, rows, row_count, c->taps, \\
                                           c->stride, c->tap_lo, c->tap_hi, factor, divisors); \\
        }                                                                            \\
        if (c->vector_hi > c->vector_lo)                                             \\
            ((pyconv_pool_vector_##SUFFIX)c->vector)(out, c->vector_lo, c->vector_hi, rows, row_count, \\
                                                     c->taps, c->tap_count, factor, divisors); \\
    }

    #define PYCONV_POOL_KERNELS(SUFFIX, T, I)                                        \\
    PYCONV_POOL_ROW(pyconv_maxpool_k2s1_##SUFFIX, T, I, SUFFIX, 2, 1, 0, 0)          \\
    PYCONV_POOL_ROW(pyconv_maxpool_k3s1_##SUFFIX, T, I, SUFFIX, 3, 1, 0, 0)          \\
    PYCONV_POOL_ROW(pyconv_maxpool_s1_##SUFFIX, T, I, SUFFIX, 0, 1, 0, 0)            \\
    PYCONV_POOL_ROW(pyconv_avgpool_k2s1_##SUFFIX, T, I, SUFFIX, 2, 1, 0, 1)          \\
    PYCONV_POOL_ROW(pyconv_avgpool_k3s1_##SUFFIX, T, I, SUFFIX, 3, 1, 0, 1)          \\
    PYCONV_POOL_ROW(pyconv_avgpool_s1_##SUFFIX, T, I, SUFFIX, 0, 1, 0, 1)            \\
    PYCONV_POOL_ROW(pyconv_maxpool_k2s2_##SUFFIX, T, I, SUFFIX, 2, 2, 1, 0)          \\
    PYCONV_POOL_ROW(pyconv_maxpool_k3s2_##SUFFIX, T, I, SUFFIX, 3, 2, 1, 0)          \\
    PYCONV_POOL_ROW(pyconv_maxpool_s2_##SUFFIX, T, I, SUFFIX, 0, 2, 0, 0)            \\
    PYCONV_POOL_ROW(pyconv_avgpool_k2s2_##SUFFIX, T, I, SUFFIX, 2, 2, 1, 1)          \\
    PYCONV_POOL_ROW(pyconv_avgpool_k3s2_##SUFFIX, T, I, SUFFIX, 3, 2, 1, 1)          \\
    PYCONV_POOL_ROW(pyconv_avgpool_s2_##SUFFIX, T, I, SUFFIX, 0, 2, 0, 1)            \\
    PYCONV_POOL_SCALAR(pyconv_maxpool_scalar_##SUFFIX, T, 0)                         \\
    PYCONV_POOL_SCALAR(pyconv_avgpool_scalar_##SUFFIX, T, 1)                         \\
    PYCONV_POOL_OUTPUT_ROW(SUFFIX, T)

    PYCONV_POOL_KERNELS(f32, float, int)
    PYCONV_POOL_KERNELS(f64, double, long long)

    /* The vector kernel of a pool, by kind, taps per row, stride and
       dilation; NULL where only the scalar kernel serves (stride > 2). */
    #define PYCONV_POOL_CHOOSE(SUFFIX)                                               \\
    static void *pyconv_pool_choose_##SUFFIX(int average, ptrdiff_t taps, ptrdiff_t stride, ptrdiff_t dilation) \\
    {                                                                                \\
        if (dilation != 1) taps = 0;                                                 \\
        if (stride == 1) {                                                           \\
            if (taps == 2) return average ? pyconv_avgpool_k2s1_##SUFFIX : pyconv_maxpool_k2s1_##SUFFIX; \\
            if (taps == 3) return average ? pyconv_avgpool_k3s1_##SUFFIX : pyconv_maxpool_k3s1_##SUFFIX; \\
            return average ? pyconv_avgpool_s1_##SUFFIX : pyconv_maxpool_s1_##SUFFIX; \\
        }                                                                            \\
        if (stride == 2 && PYCONV_POOL_HAVE_S2) {                                    \\
            if (taps == 2) return average ? pyconv_avgpool_k2s2_##SUFFIX : pyconv_maxpool_k2s2_##SUFFIX; \\
            if (taps == 3) return average ? pyconv_avgpool_k3s2_##SUFFIX : pyconv_maxpool_k3s2_##SUFFIX; \\
            return average ? pyconv_avgpool_s2_##SUFFIX : pyconv_maxpool_s2_##SUFFIX; \\
        }                                                                            \\
        return NULL;                                                                 \\
    }
    PYCONV_POOL_CHOOSE(f32)
    PYCONV_POOL_CHOOSE(f64)

    /* Stride 2 max pooling of a padded plane copy (rows of plane_w values,
       the padding -inf) with a 2 or 3 wide window: first each of the rows
       input rows folded along the row, hm[r][ow] = fold over kw of
       row r at 2 ow + kw (ow < out_v, a multiple of VL), then out[oh][ow] =
       fold over kh of hm[2 oh + kh][ow] (oh < out_h, rows out_v apart).
       Each input row's horizontal maxima are computed once for the two
       output rows that read it, with two loads and two or three shuffles
       per output vector.  The fold is maxps (v > m ? v : m): the first
       maximum in (kh, kw) order wins, as in torch; returns 1 when a NaN was
       met (the plane is then done again with torch's exact rule). */
    #define PYCONV_POOL_PLANE_S2(SUFFIX, T, I)                                       \
    static int pyconv_maxpool_plane_s2_##SUFFIX(const T *buf, ptrdiff_t plane_w,     \
                                                ptrdiff_t rows, ptrdiff_t out_v,     \
                                                int kw, int kh, ptrdiff_t out_h,     \
                                                T *PYCONV_POOL_RESTRICT hm,          \
                                                T *PYCONV_POOL_RESTRICT out)         \
    {                                                                                \
        typedef T vec __attribute__((vector_size(PYCONV_POOL_VBYTES)));              \
        typedef I ivec __attribute__((vector_size(PYCONV_POOL_VBYTES)));             \
        enum { VL = PYCONV_POOL_VBYTES / sizeof(T) };                                \
        ivec pick_even, pick_odd, bad = {0};                                         \
        for (int j = 0; j < VL; j++) {                                               \
            pick_even[j] = 2 * j;                                                    \
            pick_odd[j] = 2 * j + 1;                                                 \
        }                                                                            \
        for (ptrdiff_t r = 0; r < rows; r++) {                                       \
            const T *row = buf + r * plane_w;                                        \
            for (ptrdiff_t ow = 0; ow < out_v; ow += VL) {                           \
                vec lo, hi, m, v;                                                    \
                memcpy(&lo, row + 2 * ow, sizeof lo);                                \
                memcpy(&hi, row + 2 * ow + VL, sizeof hi);                           \
                m = PYCONV_POOL_SHUFFLE(lo, hi, pick_even);                          \
                v = PYCONV_POOL_SHUFFLE(lo, hi, pick_odd);                           \
                bad |= (m != m) | (v != v);                                          \
                m = PYCONV_POOL_VMAX_##SUFFIX(v, m);                                 \
                if (kw == 3) {                                                       \
                    memcpy(&lo, row + 2 * ow + 2, sizeof lo);                        \
                    memcpy(&hi, row + 2 * ow + 2 + VL, sizeof hi);                   \
                    v = PYCONV_POOL_SHUFFLE(lo, hi, pick_even);                      \
                    bad |= v != v;                                                   \
                    m = PYCONV_POOL_VMAX_##SUFFIX(v, m);                             \
                }                                                                    \
                memcpy(hm + r * out_v + ow, &m, sizeof m);                           \
            }                                                                        \
        }                                                                            \
        for (ptrdiff_t oh = 0; oh < out_h; oh++) {                                   \
            const T *top = hm + 2 * oh * out_v;                                      \
            for (ptrdiff_t ow = 0; ow < out_v; ow += VL) {                           \
                vec m, v;                                                            \
                memcpy(&m, top + ow, sizeof m);                                      \
                for (int t = 1; t < kh; t++) {                                       \
                    memcpy(&v, top + t * out_v + ow, sizeof v);                      \
                    m = PYCONV_POOL_VMAX_##SUFFIX(v, m);                             \
                }                                                                    \
                memcpy(out + oh * out_v + ow, &m, sizeof m);                         \
            }                                                                        \
        }                                                                            \
        for (int j = 0; j < VL; j++)                                                 \
            if (bad[j]) return 1;                                                    \
        return 0;                                                                    \
    }
    #if PYCONV_POOL_HAVE_S2
    PYCONV_POOL_PLANE_S2(f32, float, int)
    PYCONV_POOL_PLANE_S2(f64, double, long long)
    #else
    /* Without the shuffles no stride 2 pool has a vector kernel, so none runs separable: these only
       keep the Cython declarations below satisfied. */
    static int pyconv_maxpool_plane_s2_f32(const float *b, ptrdiff_t w, ptrdiff_t r, ptrdiff_t v, int kw,
                                           int kh, ptrdiff_t o, float *hm, float *out) { return 1; }
    static int pyconv_maxpool_plane_s2_f64(const double *b, ptrdiff_t w, ptrdiff_t r, ptrdiff_t v, int kw,
                                           int kh, ptrdiff_t o, double *hm, double *out) { return 1; }
    #endif

    /* A NaN watch over vectors: WATCH(bad, a, b) notes the lanes where a or
       b is NaN, WATCHED(bad) whether any was.  A mask register with
       AVX-512 (one compare per pair of vectors), else a vector of lanes. */
    #if defined(__AVX512F__) && PYCONV_POOL_VBYTES == 64
    #define PYCONV_POOL_WATCH_TYPE unsigned
    #define PYCONV_POOL_WATCH_f32(bad, a, b) bad |= _mm512_cmp_ps_mask((__m512)(a), (__m512)(b), _CMP_UNORD_Q);
    #define PYCONV_POOL_WATCH_f64(bad, a, b) bad |= _mm512_cmp_pd_mask((__m512d)(a), (__m512d)(b), _CMP_UNORD_Q);
    #define PYCONV_POOL_WATCHED(bad) ((bad) != 0)
    #else
    #define PYCONV_POOL_WATCH_TYPE ivec
    #define PYCONV_POOL_WATCH_f32(bad, a, b) bad |= ((a) != (a)) | ((b) != (b));
    #define PYCONV_POOL_WATCH_f64(bad, a, b) PYCONV_POOL_WATCH_f32(bad, a, b)
    #define PYCONV_POOL_WATCHED(bad)                                                 \
        ({ int any_ = 0; for (int j_ = 0; j_ < VL; j_++) any_ |= (bad)[j_] != 0; any_; })
    #endif

    /* Stride 2 max pooling of wide rows, windows 2 or 3 wide (padding at
       most 1) and at most 3 tall ("separable rows"): output rows [oh_start,
       oh_stop) of a plane of in_h rows of in_w values, in two steps that
       give the row kernel's bits (the first maximum in (kh, kw) order wins
       either way; a NaN wins, the last one met).  Each input row a window
       reaches is folded along the row once, into ring row h % kernel_h
       (ring_w values apart): hm[ow] = fold over the taps x[2 ow + d], d
       from taps[0] (-1 or 0) on.  Columns [0, vector_end) go a vector at a
       time from two loads at x[2 ow] (aligned when the row is: a load
       across two cache lines costs twice as much): the even and odd
       elements are the taps d = 0 and 1, d = -1 the odd ones moved a lane
       on (x[2 ow - 1] in lane 0, -inf at ow = 0: the padding), d = 2 the
       even ones moved a lane back (x[2 ow + 2 VL] in the last lane).  The
       other columns, whose taps run past the row, one at a time with the
       exact rule.  One compare per pair of loads watches for NaN; a row
       with a NaN tap is folded again with the exact rule.  Then each output
       row folds its window's rows inside the input in order (exact rule if
       one of them held a NaN). */
    #define PYCONV_POOL_ROWS_S2(SUFFIX, T, I)                                        \
    static void pyconv_maxpool_rows_s2_##SUFFIX(const pyconv_pool_columns *c, const T *plane, \
                                                ptrdiff_t in_h, ptrdiff_t in_w, ptrdiff_t pad_h, \
                                                ptrdiff_t kernel_h, ptrdiff_t oh_start, ptrdiff_t oh_stop, \
                                                T *PYCONV_POOL_RESTRICT out, T *PYCONV_POOL_RESTRICT ring, \
                                                ptrdiff_t ring_w)                    \
    {                                                                                \
        typedef T vec __attribute__((vector_size(PYCONV_POOL_VBYTES)));              \
        typedef I ivec __attribute__((vector_size(PYCONV_POOL_VBYTES)));             \
        enum { VL = PYCONV_POOL_VBYTES / sizeof(T) };                                \
        ivec pick_even, pick_odd, lane_on, lane_back;                                \
        for (int j = 0; j < VL; j++) {                                               \
            pick_even[j] = 2 * j;                                                    \
            pick_odd[j] = 2 * j + 1;                                                 \
            lane_on[j] = VL - 1 + j;                                                 \
            lane_back[j] = j + 1;                                                    \
        }                                                                            \
        const ptrdiff_t out_w = c->out_w, first = c->taps[0], last = first + c->tap_count - 1; \
        const ptrdiff_t vector_end = c->vector_hi < in_w / 2 ? c->vector_hi : in_w / 2; \
        int row_nan[3] = {0, 0, 0};                                                  \
        ptrdiff_t next_h = 2 * oh_start - pad_h;                                     \
        for (ptrdiff_t oh = oh_start; oh < oh_stop; oh++) {                          \
            const T *hm[3];                                                          \
            ptrdiff_t count = 0;                                                     \
            int exact = 0;                                                           \
            for (ptrdiff_t kh = 0; kh < kernel_h; kh++) {                            \
                const ptrdiff_t h = 2 * oh - pad_h + kh;                             \
                if (h < 0 || h >= in_h) continue;                                    \
                const ptrdiff_t slot = h % kernel_h;                                 \
                T *folded = ring + slot * ring_w;                                    \
                if (h >= next_h) {                                                   \
                    const T *row = plane + h * in_w;                                 \
                    PYCONV_POOL_WATCH_TYPE bad = {0};                                \
                    for (ptrdiff_t ow = 0; ow < vector_end; ow += VL) {              \
                        ptrdiff_t at = ow + VL <= vector_end ? ow : vector_end - VL; \
                        const T *q = row + 2 * at;                                   \
                        vec a, b, even, odd, m, v;                                   \
                        memcpy(&a, q, sizeof a);                                     \
                        memcpy(&b, q + VL, sizeof b);                                \
                        PYCONV_POOL_WATCH_##SUFFIX(bad, a, b)                        \
                        even = PYCONV_POOL_SHUFFLE(a, b, pick_even);                 \
                        odd = PYCONV_POOL_SHUFFLE(a, b, pick_odd);                   \
                        if (first < 0) {                                             \
                            v = (at > 0 ? q[-1] : (T)-__builtin_inf()) - (vec){0};   \
                            m = PYCONV_POOL_SHUFFLE(v, odd, lane_on);                \
                            m = PYCONV_POOL_VMAX_##SUFFIX(even, m);                  \
                        } else {                                                     \
                            m = even;                                                \
                        }                                                            \
                        if (last >= 1)                                               \
                            m = PYCONV_POOL_VMAX_##SUFFIX(odd, m);                   \
                        if (last == 2) {                                             \
                            v = q[2 * VL] - (vec){0};  /* (x - 0 keeps -0.0) */      \
                            v = PYCONV_POOL_SHUFFLE(even, v, lane_back);             \
                            m = PYCONV_POOL_VMAX_##SUFFIX(v, m);                     \
                        }                                                            \
                        memcpy(folded + at, &m, sizeof m);                           \
                        ow = at;                                                     \
                    }                                                                \
                    /* (the last vector's x[2 ow + 2 VL], if a tap, is no load's) */ \
                    row_nan[slot] = PYCONV_POOL_WATCHED(bad)                             \
                                    || (last == 2 && row[2 * vector_end] != row[2 * vector_end]); \
                    for (ptrdiff_t ow = row_nan[slot] ? 0 : vector_end; ow < out_w; ow++) { \
                        T m = -__builtin_inf();                                      \
                        for (ptrdiff_t kw = c->tap_lo[ow]; kw < c->tap_hi[ow]; kw++) { \
                            T v = row[2 * ow + c->taps[kw]];                         \
                            if (v > m || v != v) m = v;                              \
                        }                                                            \
                        folded[ow] = m;                                              \
                        row_nan[slot] |= m != m;                                         \
                    }                                                                \
                    next_h = h + 1;                                                  \
                }                                                                    \
                hm[count++] = folded;                                                \
                exact |= row_nan[slot];                                                  \
            }                                                                        \
            T *o = out + oh * out_w;                                                 \
            if (!exact && count > 0 && out_w >= VL) {                                \
                for (ptrdiff_t ow = 0; ow < out_w; ow += VL) {                       \
                    ptrdiff_t at = ow + VL <= out_w ? ow : out_w - VL;               \
                    vec m, v;                                                        \
                    memcpy(&m, hm[0] + at, sizeof m);                                \
                    for (ptrdiff_t t = 1; t < count; t++) {                          \
                        memcpy(&v, hm[t] + at, sizeof v);                            \
                        m = PYCONV_POOL_VMAX_##SUFFIX(v, m);                         \
                    }                                                                \
                    memcpy(o + at, &m, sizeof m);                                    \
                    ow = at;                                                         \
                }                                                                    \
            } else {                                                                 \
                for (ptrdiff_t ow = 0; ow < out_w; ow++) {                           \
                    T m = -__builtin_inf();                                          \
                    for (ptrdiff_t t = 0; t < count; t++)                            \
                        if (hm[t][ow] > m || hm[t][ow] != hm[t][ow]) m = hm[t][ow];  \
                    o[ow] = m;                                                       \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }
    #if PYCONV_POOL_HAVE_S2
    PYCONV_POOL_ROWS_S2(f32, float, int)
    PYCONV_POOL_ROWS_S2(f64, double, long long)
    #else
    /* Without the shuffles no stride 2 pool has a vector kernel, so none runs as separable rows: these
       only keep the Cython declarations below satisfied. */
    static void pyconv_maxpool_rows_s2_f32(const pyconv_pool_columns *c, const float *p, ptrdiff_t ih,
                                           ptrdiff_t iw, ptrdiff_t ph, ptrdiff_t kh, ptrdiff_t o0, ptrdiff_t o1,
                                           float *out, float *ring, ptrdiff_t rw) {}
    static void pyconv_maxpool_rows_s2_f64(const pyconv_pool_columns *c, const double *p, ptrdiff_t ih,
                                           ptrdiff_t iw, ptrdiff_t ph, ptrdiff_t kh, ptrdiff_t o0, ptrdiff_t o1,
                                           double *out, double *ring, ptrdiff_t rw) {}
    #endif
    """
    ctypedef struct Columns "pyconv_pool_columns":
        Py_ssize_t out_w, stride, tap_count
        Py_ssize_t vector_lo, vector_hi
        const Py_ssize_t* taps
        const Py_ssize_t* tap_lo
        const Py_ssize_t* tap_hi
        const void* divisors
        void* vector
    void* pyconv_pool_choose_f32(int average, Py_ssize_t taps, Py_ssize_t stride, Py_ssize_t dilation) noexcept nogil
    void* pyconv_pool_choose_f64(int average, Py_ssize_t taps, Py_ssize_t stride, Py_ssize_t dilation) noexcept nogil
    void pyconv_pool_row_f32(const Columns* c, int average, float* out, const float* const* rows,
                             Py_ssize_t row_count, float factor) noexcept nogil
    void pyconv_pool_row_f64(const Columns* c, int average, double* out, const double* const* rows,
                             Py_ssize_t row_count, double factor) noexcept nogil
    int pyconv_maxpool_plane_s2_f32(const float* buf, Py_ssize_t plane_w, Py_ssize_t rows, Py_ssize_t out_v,
                                    int kw, int kh, Py_ssize_t out_h, float* hm, float* out) noexcept nogil
    int pyconv_maxpool_plane_s2_f64(const double* buf, Py_ssize_t plane_w, Py_ssize_t rows, Py_ssize_t out_v,
                                    int kw, int kh, Py_ssize_t out_h, double* hm, double* out) noexcept nogil
    void pyconv_maxpool_rows_s2_f32(const Columns* c, const float* plane, Py_ssize_t in_h, Py_ssize_t in_w,
                                    Py_ssize_t pad_h, Py_ssize_t kernel_h, Py_ssize_t oh_start, Py_ssize_t oh_stop,
                                    float* out, float* ring, Py_ssize_t ring_w) noexcept nogil
    void pyconv_maxpool_rows_s2_f64(const Columns* c, const double* plane, Py_ssize_t in_h, Py_ssize_t in_w,
                                    Py_ssize_t pad_h, Py_ssize_t kernel_h, Py_ssize_t oh_start, Py_ssize_t oh_stop,
                                    double* out, double* ring, Py_ssize_t ring_w) noexcept nogil
    void pyconv_pool_copy(float* dst, const float* src, Py_ssize_t n) noexcept nogil
    enum:
        POOL_VBYTES "PYCONV_POOL_VBYTES"


cdef struct Window:
    bint average
    Py_ssize_t in_d, in_h, in_w, out_d, out_h
    Py_ssize_t kernel_d, kernel_h
    Py_ssize_t stride_d, stride_h
    Py_ssize_t pad_d, pad_h, dilation_d, dilation_h
    Py_ssize_t bands                    # output-row bands per (plane, output depth)
    Columns columns
    # No run of a vector's columns clear of the row edges (e.g. rows narrower than a vector): each
    # window row is copied into a row of buffer_w values padded with the pool's neutral value (-inf,
    # 0), whose outputs (at least a vector of them) the vector kernel computes (buffered_columns)
    # into a scratch row.
    bint buffered
    Columns buffered_columns
    Py_ssize_t buffer_w, pad_w
    # Buffered 2-D pools, and stride 1 max pools on rows up to FLAT_MAX_WIDTH, take a whole plane per
    # task instead ("plane", with per-thread buffers as the buffered rows): the plane is copied once
    # into a buffer of plane_h rows of plane_w values padded with the neutral value, then each
    # output row is computed from the buffer's rows or, stride 1 max pooling, all output rows in
    # one call over the buffer seen as one long row (flat_columns: output q = oh * plane_w + ow,
    # the columns ow >= out_w between output rows computed and dropped).
    bint plane, flat
    Py_ssize_t plane_h, plane_w, slack
    Columns flat_columns
    # Stride 2 max pooling, 2 or 3 wide windows ("separable"): each input row folded along the row
    # once, then the output rows folded from those (pyconv_maxpool_plane_s2_*), out_v outputs per
    # row (whole vectors); planes with a NaN are done again by the row kernel (torch's NaN rule).
    bint separable
    Py_ssize_t out_v
    # Stride 2 max pooling, windows 2 or 3 wide and at most 3 tall, on wider rows ("separable rows",
    # the row path's bands of output rows): each input row of a band folded along the row once into
    # a per-thread ring of kernel_h rows of ring_w values, then each output row folded from its
    # window's rows there (pyconv_maxpool_rows_s2_*).
    bint separable_rows
    Py_ssize_t ring_w
    # average pooling: output (od, oh, ow) is divided by depth[od] * height[oh] * width[ow]
    const double* depth_divisor
    const double* height_divisor


cdef void _task(const floating* x, floating* out, Py_ssize_t task, const Window* g,
                const floating** rows, floating* buffers) noexcept nogil:
    """The output rows of band task % bands of output depth (task // bands) % out_d of plane task // (bands * out_d).

    buffers: with g.buffered, this thread's window rows (buffer_w values each, then a scratch output
    row of buffered_columns.out_w + a vector's values), their padding already filled in."""
    cdef Py_ssize_t band, od, plane, oh_start, oh_stop
    cdef Py_ssize_t oh, kd, kh, d, h, count, t, j, w = g.columns.out_w
    cdef const floating* plane_x
    cdef floating factor = 1
    cdef floating* row_buffer
    cdef floating* out_row
    if g.plane:  # a task per plane (and no divisions: they were a tenth of a 7x7 plane's time)
        _plane_task(x + task * g.in_h * g.in_w, out + task * g.out_h * w, g, rows, buffers)
        return
    band = task % g.bands
    od = (task // g.bands) % g.out_d
    plane = task // (g.bands * g.out_d)
    oh_start = band * g.out_h // g.bands
    oh_stop = (band + 1) * g.out_h // g.bands
    plane_x = x + plane * g.in_d * g.in_h * g.in_w
    if g.separable_rows:
        if floating is float:
            pyconv_maxpool_rows_s2_f32(&g.columns, plane_x, g.in_h, g.in_w, g.pad_h, g.kernel_h, oh_start, oh_stop,
                                       out + plane * g.out_h * w, buffers, g.ring_w)
        else:
            pyconv_maxpool_rows_s2_f64(&g.columns, plane_x, g.in_h, g.in_w, g.pad_h, g.kernel_h, oh_start, oh_stop,
                                       out + plane * g.out_h * w, buffers, g.ring_w)
        return
    for oh in range(oh_start, oh_stop):
        # the window's rows inside the input, in (kd, kh) order: a row in the padding holds
        # only -inf or 0, which never changes a maximum or a sum
        count = 0
        for kd in range(g.kernel_d):
            d = od * g.stride_d - g.pad_d + kd * g.dilation_d
            if 0 <= d < g.in_d:
                for kh in range(g.kernel_h):
                    h = oh * g.stride_h - g.pad_h + kh * g.dilation_h
                    if 0 <= h < g.in_h:
                        rows[count] = plane_x + (d * g.in_h + h) * g.in_w
                        count += 1
        if g.average:
            factor = <floating>(g.depth_divisor[od] * g.height_divisor[oh])
        out_row = out + ((plane * g.out_d + od) * g.out_h + oh) * w
        if g.buffered:
            for t in range(count):
                row_buffer = buffers + t * g.buffer_w
                for j in range(g.in_w):
                    row_buffer[g.pad_w + j] = rows[t][j]
                rows[t] = row_buffer
            row_buffer = buffers + g.kernel_d * g.kernel_h * g.buffer_w
            if floating is float:
                pyconv_pool_row_f32(&g.buffered_columns, g.average, row_buffer, rows, count, factor)
            else:
                pyconv_pool_row_f64(&g.buffered_columns, g.average, row_buffer, rows, count, factor)
            for j in range(w):
                out_row[j] = row_buffer[j]
        elif floating is float:
            pyconv_pool_row_f32(&g.columns, g.average, out_row, rows, count, factor)
        else:
            pyconv_pool_row_f64(&g.columns, g.average, out_row, rows, count, factor)


cdef inline void _copy_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    pyconv_pool_copy(<float*>dst, <const float*>src, n * <Py_ssize_t>(sizeof(floating) // sizeof(float)))


cdef void _plane_task(const floating* plane_x, floating* out, const Window* g, const floating** rows,
                      floating* buffers) noexcept nogil:
    """A whole 2-D plane through its padded copy (g.plane; see Window).  Every output gets the row
    kernel's operations on the same taps as in _task's buffered rows (window rows in the vertical
    padding hold the neutral value, which changes no maximum and no sum), so the same bits."""
    cdef Py_ssize_t w = g.columns.out_w, pw = g.plane_w, oh, kh, h
    cdef floating* scratch = buffers + g.plane_h * pw + g.slack
    cdef floating factor = 1
    cdef floating* separable_out
    cdef int nan
    for h in range(g.in_h):
        _copy_row(buffers + (g.pad_h + h) * pw + g.pad_w, plane_x + h * g.in_w, g.in_w)
    if g.separable:
        separable_out = scratch + g.plane_h * g.out_v
        if floating is float:
            nan = pyconv_maxpool_plane_s2_f32(buffers, pw, (g.out_h - 1) * 2 + g.kernel_h, g.out_v,
                                              g.columns.tap_count, g.kernel_h, g.out_h, scratch, separable_out)
        else:
            nan = pyconv_maxpool_plane_s2_f64(buffers, pw, (g.out_h - 1) * 2 + g.kernel_h, g.out_v,
                                              g.columns.tap_count, g.kernel_h, g.out_h, scratch, separable_out)
        if not nan:
            for oh in range(g.out_h):
                _copy_row(out + oh * w, separable_out + oh * g.out_v, w)
            return
    if g.flat:
        for kh in range(g.kernel_h):
            rows[kh] = buffers + kh * pw
        if floating is float:
            pyconv_pool_row_f32(&g.flat_columns, 0, scratch, rows, g.kernel_h, 1)
        else:
            pyconv_pool_row_f64(&g.flat_columns, 0, scratch, rows, g.kernel_h, 1)
        for oh in range(g.out_h):
            _copy_row(out + oh * w, scratch + oh * pw, w)
        return
    for oh in range(g.out_h):
        for kh in range(g.kernel_h):
            rows[kh] = buffers + (oh * g.stride_h + kh) * pw
        if g.average:
            factor = <floating>(g.depth_divisor[0] * g.height_divisor[oh])
        if floating is float:
            pyconv_pool_row_f32(&g.buffered_columns, g.average, scratch, rows, g.kernel_h, factor)
        else:
            pyconv_pool_row_f64(&g.buffered_columns, g.average, scratch, rows, g.kernel_h, factor)
        _copy_row(out + oh * w, scratch, w)


cdef struct Job:
    bint double_precision
    const void* x
    void* out
    const Window* g
    const void** rows                 # threads x window_rows row pointers
    Py_ssize_t window_rows
    char* buffers                     # buffered or separable rows: threads x buffer_bytes (see _task), aligned
    char* buffer_memory               # what malloc returned for them
    Py_ssize_t buffer_bytes


cdef void _run_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef Job* job = <Job*>context
    cdef char* buffers = job.buffers + thread * job.buffer_bytes
    if job.double_precision:
        _task(<const double*>job.x, <double*>job.out, task, job.g,
              <const double**>job.rows + thread * job.window_rows, <double*>buffers)
    else:
        _task(<const float*>job.x, <float*>job.out, task, job.g,
              <const float**>job.rows + thread * job.window_rows, <float*>buffers)


cdef void _divisors(double* factors, Py_ssize_t length, Py_ssize_t out, Py_ssize_t kernel, Py_ssize_t stride,
                    Py_ssize_t pad, bint count_include_pad, double override) noexcept nogil:
    """torch's average-pool divisor factor of each output along one axis: the window clipped to
    input + padding (count_include_pad) or to the input, or ``override`` when not 0; 1 where the
    window holds no input element (the sum is 0 there, and so is torch's average)."""
    cdef Py_ssize_t o, start, end, count
    for o in range(out):
        start = o * stride - pad
        end = min(start + kernel, length + pad)
        count = min(end, length) - max(start, 0)
        if count <= 0:
            factors[o] = 1
        elif override != 0:
            factors[o] = override
        else:
            factors[o] = end - start if count_include_pad else count


cdef enum:
    # Stride 1 max pooling on rows up to this wide also runs a plane per task, in one kernel call
    # (1 / 2 threads, ms, row path -> plane: 256@28^2 3x3 0.26 / 0.14 -> 0.12 / 0.06, 64@56^2 0.17 /
    # 0.09 -> 0.12 / 0.064, 32@64^2 0.10 / 0.055 -> 0.09 / 0.046, 16@64^2 5x5 0.14 / 0.073 -> 0.095 /
    # 0.055); wider rows were not measured faster.
    FLAT_MAX_WIDTH = 64
    # Stride 2 max pools with 2 or 3 wide windows on rows up to this wide run separable, a plane per
    # task (1 / 2 threads, ms, row path -> separable: 192@27^2 3x3 0.10 / 0.059 -> 0.048 / 0.028,
    # 480@28^2 3x3 ceil 0.26 / 0.14 -> 0.11 / 0.062, 832@14^2 2x2 0.165 / 0.09-0.11 -> 0.085 /
    # 0.045); on 55-64 wide rows it measured level, or slower (64@64^2 2x2 0.047 -> 0.055-0.073).
    SEPARABLE_MAX_WIDTH = 32
    # Values of a plane copy at most (a few cache-resident planes per thread); taller planes keep the
    # row path and its bands of output rows.
    PLANE_MAX_VALUES = 16384


cdef int _window_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, bint average,
                      tuple kernel_size, tuple stride, tuple padding, tuple dilation,
                      bint count_include_pad, Py_ssize_t divisor_override, int num_threads) except -1:
    """Max (average False) or average pooling through the row kernels: geometry, column ranges,
    divisors, then the row-band tasks."""
    cdef Window g
    cdef Columns* c = &g.columns
    cdef Py_ssize_t planes = x.shape[0], kernel_w = kernel_size[2], pad_w = padding[2], dilation_w = dilation[2]
    cdef Py_ssize_t tasks, threads, task, kw, ow, first, last, window_rows, i
    cdef Py_ssize_t vector_length = POOL_VBYTES // sizeof(floating)
    cdef char* memory
    cdef Py_ssize_t* taps
    cdef Py_ssize_t* tap_lo
    cdef Py_ssize_t* tap_hi
    cdef Py_ssize_t* buffered_taps
    cdef double* factors
    cdef floating* width_divisor
    cdef const floating** rows
    cdef Job job
    g.average = average
    g.in_d = x.shape[1]
    g.in_h = x.shape[2]
    g.in_w = x.shape[3]
    g.out_d = out.shape[1]
    g.out_h = out.shape[2]
    g.kernel_d = kernel_size[0]
    g.kernel_h = kernel_size[1]
    g.stride_d = stride[0]
    g.stride_h = stride[1]
    g.pad_d = padding[0]
    g.pad_h = padding[1]
    g.dilation_d = dilation[0]
    g.dilation_h = dilation[1]
    c.out_w = out.shape[3]
    c.stride = stride[2]
    c.tap_count = kernel_w
    if planes == 0 or g.out_d == 0 or g.out_h == 0 or c.out_w == 0:
        return 0
    window_rows = g.kernel_d * g.kernel_h
    threads = max(1, num_threads)
    g.bands = 1
    if planes * g.out_d < 4 * threads:
        g.bands = min(g.out_h, (4 * threads + planes * g.out_d - 1) // (planes * g.out_d))
    tasks = planes * g.out_d * g.bands
    threads = min(threads, tasks)
    # one block: the threads' row lists (each on its own cache lines: written for every output
    # row, a line shared by two threads would bounce between their cores), taps, tap ranges,
    # divisors (depth, height in double; width in the element type, one vector longer for the
    # vector kernel's loads)
    window_rows = (window_rows * sizeof(void*) + 63) // 64 * 64 // sizeof(void*)
    memory = <char*>malloc(64 + threads * window_rows * sizeof(void*)
                           + (2 * kernel_w + 2 * c.out_w) * sizeof(Py_ssize_t)
                           + (g.out_d + g.out_h + c.out_w) * sizeof(double)
                           + (max(c.out_w, vector_length) + vector_length) * sizeof(floating))
    if memory == NULL:
        raise MemoryError("pooling: cannot allocate the tap tables")
    rows = <const floating**>(memory + (-<uintptr_t>memory) % 64)
    taps = <Py_ssize_t*>(rows + threads * window_rows)
    tap_lo = taps + kernel_w
    tap_hi = tap_lo + c.out_w
    buffered_taps = tap_hi + c.out_w
    factors = <double*>(buffered_taps + kernel_w)
    width_divisor = <floating*>(factors + g.out_d + g.out_h + c.out_w)
    for kw in range(kernel_w):
        taps[kw] = kw * dilation_w - pad_w
        buffered_taps[kw] = kw * dilation_w      # in a buffered row, which starts with the padding
    c.vector_lo = c.out_w
    c.vector_hi = c.out_w
    for ow in range(c.out_w):
        first = 0
        while first < kernel_w and ow * c.stride + taps[first] < 0:
            first += 1
        last = kernel_w
        while last > first and ow * c.stride + taps[last - 1] >= g.in_w:
            last -= 1
        tap_lo[ow] = first
        tap_hi[ow] = last
        if first == 0 and last == kernel_w:
            c.vector_hi = ow + 1
            if c.vector_lo == c.out_w:
                c.vector_lo = ow
    c.taps = taps
    c.tap_lo = tap_lo
    c.tap_hi = tap_hi
    if floating is float:
        c.vector = pyconv_pool_choose_f32(average, kernel_w, c.stride, dilation_w)
    else:
        c.vector = pyconv_pool_choose_f64(average, kernel_w, c.stride, dilation_w)
    if c.vector_hi - c.vector_lo < vector_length or c.vector == NULL:
        c.vector_lo = 0
        c.vector_hi = 0
    # No column for the vector kernel (rows narrower than a vector, e.g. GoogLeNet's 3x3 pools on
    # 14x14 and 7x7): buffered rows, so every output is a vector kernel's rather than a scalar one's.
    g.buffered = c.vector != NULL and c.vector_hi == 0 and dilation_w == 1
    g.pad_w = pad_w
    g.buffered_columns = c[0]
    g.buffered_columns.taps = buffered_taps
    g.buffered_columns.out_w = max(c.out_w, vector_length)
    g.buffered_columns.vector_lo = 0
    g.buffered_columns.vector_hi = g.buffered_columns.out_w
    # (two vectors more than the outputs reach: the vector kernel's loads may run past them)
    g.buffer_w = max((g.buffered_columns.out_w - 1) * c.stride + kernel_w, pad_w + g.in_w) + 2 * vector_length
    job.buffer_bytes = 0
    if g.buffered:
        job.buffer_bytes = ((g.kernel_d * g.kernel_h * g.buffer_w + g.buffered_columns.out_w + vector_length)
                            * sizeof(floating) + 63) // 64 * 64
    # A 2-D buffered pool: a plane per task, one copy per input row instead of one per window row of
    # every output row, and for stride 1 max pooling one kernel call per plane (GoogLeNet's pools,
    # ms at 1 / 2 threads: 512@14^2 3x3 s1 p1 max 0.27-0.32 / 0.15 -> 0.079 / 0.045, 832@7^2 0.20 /
    # 0.104 -> 0.053 / 0.032; 256@28^2 2x2 s2 average 0.107 / 0.061 -> 0.074 / 0.049; stride 2 max
    # pooling: SEPARABLE_MAX_WIDTH).
    g.separable = (not average and g.stride_h == 2 and c.stride == 2 and (kernel_w == 2 or kernel_w == 3)
                   and c.vector != NULL and dilation_w == 1 and g.in_w <= SEPARABLE_MAX_WIDTH)
    # (planes that fit in the per-thread buffers of PLANE_MAX_VALUES, and enough of them for the
    # threads: a plane per task gives up the bands of output rows)
    g.plane_w = max((c.out_w - 1) * c.stride + kernel_w, pad_w + g.in_w)
    g.plane_h = max((g.out_h - 1) * g.stride_h + g.kernel_h, g.pad_h + g.in_h)
    g.plane = (g.buffered or g.separable or (not average and g.stride_h == 1 and c.stride == 1
                                              and g.in_w <= FLAT_MAX_WIDTH and c.vector != NULL
                                              and dilation_w == 1)) and (
        g.kernel_d == 1 and g.in_d == 1 and g.out_d == 1 and g.dilation_h == 1
        and g.plane_h * g.plane_w <= PLANE_MAX_VALUES and planes >= 4 * max(1, num_threads))
    g.separable = g.separable and g.plane
    g.separable_rows = (not g.plane and not average and g.stride_h == 2 and c.stride == 2
                        and (kernel_w == 2 or kernel_w == 3) and g.kernel_h <= 3 and pad_w <= 1
                        and c.vector != NULL and min(c.vector_hi, g.in_w // 2) >= vector_length
                        and dilation_w == 1 and g.dilation_h == 1 and g.kernel_d == 1 and g.in_d == 1
                        and g.out_d == 1)
    if g.separable_rows:
        g.ring_w = (c.out_w + vector_length - 1) // vector_length * vector_length
        job.buffer_bytes = (g.kernel_h * g.ring_w * sizeof(floating) + 63) // 64 * 64
    if g.plane:
        g.buffered = True     # per-thread buffers, filled with the neutral value below
        g.flat = not average and g.stride_h == 1 and c.stride == 1 and g.out_h * g.plane_w >= vector_length
        g.flat_columns = g.buffered_columns
        g.flat_columns.out_w = g.out_h * g.plane_w
        g.flat_columns.vector_hi = g.flat_columns.out_w
        g.out_v = (c.out_w + vector_length - 1) // vector_length * vector_length
        g.bands = 1
        tasks = planes
        threads = min(max(1, num_threads), tasks)
        # the plane, slack for the kernels' reads past its end (up to 2 vectors, or the kernel's width
        # for the flat call), then the outputs (and for the separable pool, each row's maxima first)
        g.slack = 4 * vector_length + kernel_w
        job.buffer_bytes = ((g.plane_h * g.plane_w + g.slack
                             + max(g.flat_columns.out_w, g.buffered_columns.out_w,
                                   (g.plane_h + g.out_h) * g.out_v if g.separable else 0) + vector_length)
                            * sizeof(floating) + 63) // 64 * 64
    job.buffer_memory = <char*>malloc(threads * job.buffer_bytes + 64) if job.buffer_bytes else NULL
    if job.buffer_bytes and job.buffer_memory == NULL:
        free(memory)
        raise MemoryError("pooling: cannot allocate the row buffers")
    # each thread's buffers on cache lines of their own (written for every output row)
    job.buffers = job.buffer_memory + (-<uintptr_t>job.buffer_memory) % 64 if job.buffer_bytes else NULL
    if g.buffered:
        # the padding of every buffer row, once: the copies write only columns pad_w .. pad_w + in_w
        for i in range(threads * job.buffer_bytes // sizeof(floating)):
            (<floating*>job.buffers)[i] = 0 if average else -INFINITY
    if average:
        # divisor_override replaces the product: itself along depth, 1 along height and width
        _divisors(factors, g.in_d, g.out_d, g.kernel_d, g.stride_d, g.pad_d, count_include_pad, divisor_override)
        _divisors(factors + g.out_d, g.in_h, g.out_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad,
                  1 if divisor_override else 0)
        _divisors(factors + g.out_d + g.out_h, g.in_w, c.out_w, kernel_w, c.stride, pad_w, count_include_pad,
                  1 if divisor_override else 0)
        for ow in range(max(c.out_w, vector_length) + vector_length):
            width_divisor[ow] = <floating>factors[g.out_d + g.out_h + ow] if ow < c.out_w else 1
        g.depth_divisor = factors
        g.height_divisor = factors + g.out_d
    c.divisors = width_divisor
    g.buffered_columns.divisors = width_divisor
    g.flat_columns.divisors = width_divisor
    job.double_precision = floating is double
    job.x = &x[0, 0, 0, 0]
    job.out = &out[0, 0, 0, 0]
    job.g = &g
    job.rows = <const void**>rows
    job.window_rows = window_rows
    try:
        with nogil:
            parallel_for(_run_task, &job, tasks, threads)
    finally:
        free(memory)
        free(job.buffer_memory)
    return 0


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


cdef struct IndicesJob:
    # max pooling with indices: one task per output row (plane, od, oh)
    bint double_precision
    const void* x
    void* out
    int64_t* indices
    Axis ad, ah, aw


cdef void _run_indices_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const IndicesJob* job = <const IndicesJob*>context
    cdef Py_ssize_t oh = task % job.ah.out, od = (task // job.ah.out) % job.ad.out
    cdef Py_ssize_t plane = task // (job.ah.out * job.ad.out)
    cdef Py_ssize_t in_plane = job.ad.length * job.ah.length * job.aw.length, offset = task * job.aw.out
    if job.double_precision:
        _max_pool_row_with_indices(<const double*>job.x + plane * in_plane, <double*>job.out + offset,
                                   job.indices + offset, od, oh, job.ad, job.ah, job.aw)
    else:
        _max_pool_row_with_indices(<const float*>job.x + plane * in_plane, <float*>job.out + offset,
                                   job.indices + offset, od, oh, job.ad, job.ah, job.aw)


def max_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, int64_t[:, :, :, ::1] indices,
             tuple kernel_size, tuple stride, tuple padding, tuple dilation, int num_threads):
    """Max pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW), both allocated by the caller.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are (d, h, w)
    triples; the caller checks them (kernel, stride, dilation >= 1, padding
    >= 0) and computes OD, OH, OW.  ``indices`` (same shape as ``out``, int64)
    receives each maximum's flat index in its input plane, as torch returns
    it; pass None to skip them (the vectorised pass).
    """
    cdef IndicesJob job
    cdef Py_ssize_t tasks
    if indices is None:
        _window_pool(x, out, False, kernel_size, stride, padding, dilation, False, 0, num_threads)
        return
    job.ad = _axis(x.shape[1], out.shape[1], kernel_size[0], stride[0], padding[0], dilation[0])
    job.ah = _axis(x.shape[2], out.shape[2], kernel_size[1], stride[1], padding[1], dilation[1])
    job.aw = _axis(x.shape[3], out.shape[3], kernel_size[2], stride[2], padding[2], dilation[2])
    tasks = x.shape[0] * out.shape[1] * out.shape[2]
    if tasks == 0 or out.shape[3] == 0:
        return
    job.double_precision = floating is double
    job.x = &x[0, 0, 0, 0]
    job.out = &out[0, 0, 0, 0]
    job.indices = &indices[0, 0, 0, 0]
    with nogil:
        parallel_for(_run_indices_task, &job, tasks, max(1, min(num_threads, tasks)))


def avg_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, tuple kernel_size, tuple stride,
             tuple padding, bint count_include_pad, Py_ssize_t divisor_override, int num_threads):
    """Average pooling of planes ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW), both allocated by the caller.

    ``kernel_size``, ``stride`` and ``padding`` are (d, h, w) triples checked
    by the caller; ``divisor_override`` 0 means torch's divisor rule.  Like
    torch: the window's elements are summed from 0 in order and the sum is
    divided by divisor_override, else by the window clipped to input +
    padding (count_include_pad) or to the input; a window without input
    elements gives 0.
    """
    _window_pool(x, out, True, kernel_size, stride, padding, (1, 1, 1), count_include_pad, divisor_override,
                 num_threads)


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


cdef struct UnpoolJob:
    # max_unpool: one task per plane, its count of indices outside the plane in bad[plane]
    bint double_precision
    const void* x
    const int64_t* indices
    void* out
    Py_ssize_t n_in, n_out
    Py_ssize_t* bad


cdef void _run_unpool_task(void* context, Py_ssize_t plane, int thread) noexcept nogil:
    cdef UnpoolJob* job = <UnpoolJob*>context
    if job.double_precision:
        job.bad[plane] = _unpool_plane(<const double*>job.x + plane * job.n_in, job.indices + plane * job.n_in,
                                       <double*>job.out + plane * job.n_out, job.n_in, job.n_out)
    else:
        job.bad[plane] = _unpool_plane(<const float*>job.x + plane * job.n_in, job.indices + plane * job.n_in,
                                       <float*>job.out + plane * job.n_out, job.n_in, job.n_out)


def max_unpool(const floating[:, ::1] x, const int64_t[:, ::1] indices, floating[:, ::1] out, int num_threads):
    """Scatter planes ``x`` (P, n_in) into ``out`` (P, n_out) at ``indices`` (P, n_in, int64); zeros elsewhere.

    The caller allocates ``out``.  Within a plane later elements win when two
    indices coincide (as in torch).  Indices outside [0, n_out) are skipped
    and counted; returns that count (the caller raises when it is not 0).
    """
    cdef UnpoolJob job
    cdef Py_ssize_t planes = x.shape[0], p, bad = 0
    if planes == 0:
        return 0
    job.bad = <Py_ssize_t*>malloc(planes * sizeof(Py_ssize_t))
    if job.bad == NULL:
        raise MemoryError("max_unpool: cannot allocate the per-plane counts")
    job.double_precision = floating is double
    job.x = &x[0, 0] if x.shape[1] else NULL
    job.indices = &indices[0, 0] if x.shape[1] else NULL
    job.out = &out[0, 0] if out.shape[1] else NULL
    job.n_in = x.shape[1]
    job.n_out = out.shape[1]
    with nogil:
        parallel_for(_run_unpool_task, &job, planes, max(1, min(num_threads, planes)))
    for p in range(planes):
        bad += job.bad[p]
    free(job.bad)
    return bad
