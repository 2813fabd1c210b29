"""GEMM convolution: every convolution as products of packed weights and input columns.

Every convolution is seen as 3-D (N, C, D, H, W), as in the direct kernel.
For image n and group g, with K = Cg * KD * KH * KW (Cg input channels per
group) and P output positions:

    output[n, g] (Mg x P) = weight[g] (Mg x K) @ columns[n, g] (K x P)

Two kernels compute it without ever building the K x P column matrix:

conv_pointwise (1x1x1, no padding): the column matrix is the input itself
    (at stride 1; a strided 1x1 gathers its positions first, in the Python
    layer), read in place by the packed GEMM core (gemm.pxd, weights packed
    once with gemm_pack_a); tasks are (n, group, column block, row block).

conv_implicit (everything else): implicit GEMM.  The input is first copied
    into a zero-padded buffer "xp" laid out so that every kernel tap reads
    consecutive outputs of a depth slice from consecutive values: per channel
    and depth slice, planes of hq rows of row_pitch values, one plane per
    (row phase, column shift); plane (i, j) row r column s holds the padded
    input at height r * sh + row_phases[i], width s * sw + column_shifts[j].
    Numbering the outputs of a depth slice q = oh * row_pitch + ow, tap k
    meets output q at xp[base + q + offsets[k]].  Two layouts (the caller
    picks, GemmConv.layout): one plane per stride phase (row_pitch =
    ceil(extent / sw) > OW: the columns ow >= OW between output rows are
    thrown away, or skipped by tiles that end at row ends), or one plane per
    kernel column (row_pitch = OW: q is the output position itself, nothing
    thrown away, kernel width times the memory).  A register-tiled
    micro-kernel accumulates an MR (output channels) x NR (consecutive q)
    tile over all K taps with unaligned vector loads straight from xp and
    the packed weights broadcast, then stores it once.  The padding zeros are
    real zeros in xp, so 0 * inf gives nan exactly where torch's does.  The
    copy costs one to KW passes over the input (im2col would write K / Cg
    times as much and a GEMM would then copy it again to pack it).

Work split: the tasks run through parallel.pxd's parallel_for (the project's
one thread pool: threads claim contiguous runs of tasks); each output
element is computed by one micro-kernel (or GEMM) call summing its K
products in a fixed order, so the bits do not depend on the thread count.
The fused epilogue (epilogue.pxd): conv_implicit's micro-kernel applies it
in registers to the tiles it stores in place, and to whole panels' tiles
through scratch when no residual is read (see implicit_tasks); conv_pointwise
and the other tiles copied out of scratch run epilogue_row over each output
row piece right after it is stored, while it is in cache.
"""
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from pyconv._kernels.activation cimport ACT_HARDTANH, ACT_IDENTITY, ACT_RELU, activation_row
from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_is_identity, epilogue_row
from pyconv._kernels.gemm cimport (gemm_pack_a, gemm_packed_a_size, gemm_prepacked_rows,
                                   gemm_workspace_size)
from pyconv._kernels.parallel cimport parallel_for

from pyconv._kernels.gemm import block_sizes

_GEMM_MR = block_sizes()["MR"]   # the row panels gemm_prepacked_rows starts a run of rows on

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Register tiles of the implicit-GEMM micro-kernel: MR output channels x
       NV vectors of consecutive outputs.  The vector width comes from the
       compiler's target macros (-march=...), never from an assumed
       instruction set.  "wide" serves most layers; "narrow" (4 channels)
       serves groups of few output channels without padding the tile. */
    #if defined(__AVX512F__)
    #define PYCONV_CG_VBYTES 64
    #define PYCONV_CG_WIDE_MR 8
    #define PYCONV_CG_WIDE_NV 3
    #define PYCONV_CG_NARROW_NV 4
    #elif defined(__AVX__)
    #define PYCONV_CG_VBYTES 32
    #define PYCONV_CG_WIDE_MR 6
    #define PYCONV_CG_WIDE_NV 2
    #define PYCONV_CG_NARROW_NV 3
    #else
    #define PYCONV_CG_VBYTES 16
    #define PYCONV_CG_WIDE_MR 6
    #define PYCONV_CG_WIDE_NV 2
    #define PYCONV_CG_NARROW_NV 3
    #endif
    #define PYCONV_CG_NARROW_MR 4
    #define PYCONV_CG_AHEAD 16      /* taps between a prefetch and its use (measured 8-32 alike) */

    #if defined(_MSC_VER)
    #define PYCONV_CG_RESTRICT __restrict
    #else
    #define PYCONV_CG_RESTRICT restrict
    #endif

    /* The epilogue a micro-kernel applies to its accumulators before storing
       them (kind PYCONV_CG_NONE: none): acc * scale[i] + shift[i] (scale NULL:
       1, shift NULL: shift0; both NULL: skipped), + residual[i * ldc + j]
       (residual NULL: none), then ReLU (kind PYCONV_CG_RELU) or a clamp to
       [low, high] (PYCONV_CG_CLAMP, bounds not NaN), or nothing more
       (PYCONV_CG_AFFINE).  The operations and their order are epilogue_row's,
       so the bits are the same as finishing the stored rows with it.  Set up
       once per row panel: the kernel reads the residual at residual + roff
       (roff: the index of the tile's first output in the output). */
    enum { PYCONV_CG_NONE, PYCONV_CG_AFFINE, PYCONV_CG_RELU, PYCONV_CG_CLAMP };
    #define PYCONV_CG_FINISH_TYPE(T, SUFFIX)                                         \\
    typedef struct {                                                                \\
        int kind;                                                                   \\
        const T *scale, *shift, *residual;                                          \\
        T shift0, low, high;                                                        \\
    } pyconv_cg_finish_##SUFFIX;
    PYCONV_CG_FINISH_TYPE(float, f32)
    PYCONV_CG_FINISH_TYPE(double, f64)

    /* NAME: c[i * ldc + j] = finish(sum_p a[p * MR + i] * x[off[p] + j]) for
       i < MR, j < NV * VL: a is one MR-row panel of packed weights (p-major), x
       the first input value of the tile, off the k tap offsets, fin the
       epilogue (its scale and shift at the tile's first row, its residual at
       residual + roff). */
    #if defined(__GNUC__)
    #define PYCONV_CG_UKERNEL(NAME, T, SUFFIX, MR, NV)                              \\
    static void NAME(ptrdiff_t k, const T *PYCONV_CG_RESTRICT a,                     \\
                     const T *PYCONV_CG_RESTRICT x,                                  \\
                     const ptrdiff_t *PYCONV_CG_RESTRICT off,                        \\
                     T *PYCONV_CG_RESTRICT c, ptrdiff_t ldc,                         \\
                     const pyconv_cg_finish_##SUFFIX *fin, ptrdiff_t roff)           \\
    {                                                                               \\
        typedef T vec __attribute__((vector_size(PYCONV_CG_VBYTES)));               \\
        enum { VL = PYCONV_CG_VBYTES / sizeof(T) };                                 \\
        vec acc[MR][NV];                                                            \\
        _Pragma("GCC unroll 16")                                                    \\
        for (int i = 0; i < MR; i++)                                                \\
            _Pragma("GCC unroll 8")                                                 \\
            for (int v = 0; v < NV; v++) acc[i][v] = (vec){0};                      \\
        if (fin->residual) /* read after the sums: fetched while they run */        \\
            _Pragma("GCC unroll 16")                                                \\
            for (int i = 0; i < MR; i++)                                            \\
                _Pragma("GCC unroll 8")                                             \\
                for (int v = 0; v < NV; v++)                                        \\
                    __builtin_prefetch(fin->residual + roff + i * ldc + v * VL);    \\
        for (ptrdiff_t p = 0; p < k; p++) {                                         \\
            const T *b = x + off[p];                                                \\
            /* The taps' columns are scattered over the copy: fetch ahead. */       \\
            const T *ahead = x + off[p + PYCONV_CG_AHEAD < k ? p + PYCONV_CG_AHEAD : p]; \\
            vec bv[NV];                                                             \\
            _Pragma("GCC unroll 8")                                                 \\
            for (int v = 0; v < NV; v++) __builtin_prefetch(ahead + v * VL);        \\
            __builtin_prefetch(ahead + NV * VL - 1);                                \\
            _Pragma("GCC unroll 8")                                                 \\
            for (int v = 0; v < NV; v++) memcpy(&bv[v], b + v * VL, sizeof bv[v]);  \\
            _Pragma("GCC unroll 16")                                                \\
            for (int i = 0; i < MR; i++) {                                          \\
                T ai = a[i];                                                        \\
                _Pragma("GCC unroll 8")                                             \\
                for (int v = 0; v < NV; v++) acc[i][v] += ai * bv[v];               \\
            }                                                                       \\
            a += MR;                                                                \\
        }                                                                           \\
        if (fin->kind != PYCONV_CG_NONE) {                                          \\
            typedef __typeof__((vec){0} < (vec){0}) ivec;                           \\
            const int affine = fin->scale != NULL || fin->shift != NULL;            \\
            /* broadcasts as x - (+0.0): exact for every x, -0.0 included (0 + x is not) */ \\
            const vec low = fin->low - (vec){0}, high = fin->high - (vec){0};       \\
            _Pragma("GCC unroll 16")                                                \\
            for (int i = 0; i < MR; i++) {                                          \\
                const vec s = (fin->scale ? fin->scale[i] : (T)1) - (vec){0};       \\
                const vec b = (fin->shift ? fin->shift[i] : fin->shift0) - (vec){0}; \\
                _Pragma("GCC unroll 8")                                             \\
                for (int v = 0; v < NV; v++) {                                      \\
                    vec t = acc[i][v], r;                                           \\
                    ivec m;                                                         \\
                    if (affine) t = t * s + b;                                      \\
                    if (fin->residual) {                                            \\
                        memcpy(&r, fin->residual + roff + i * ldc + v * VL, sizeof r); \\
                        t = t + r;                                                  \\
                    }                                                               \\
                    if (fin->kind == PYCONV_CG_RELU) {                              \\
                        m = t < (vec){0};                                           \\
                        t = (vec)((ivec)t & ~m);                                    \\
                    } else if (fin->kind == PYCONV_CG_CLAMP) {                      \\
                        m = t < low;                                                \\
                        t = (vec)(((ivec)low & m) | ((ivec)t & ~m));                \\
                        m = t > high;                                               \\
                        t = (vec)(((ivec)high & m) | ((ivec)t & ~m));               \\
                    }                                                               \\
                    acc[i][v] = t;                                                  \\
                }                                                                   \\
            }                                                                       \\
        }                                                                           \\
        _Pragma("GCC unroll 16")                                                    \\
        for (int i = 0; i < MR; i++)                                                \\
            _Pragma("GCC unroll 8")                                                 \\
            for (int v = 0; v < NV; v++)                                            \\
                memcpy(c + i * ldc + v * VL, &acc[i][v], sizeof acc[i][v]);         \\
    }
    #else
    #define PYCONV_CG_UKERNEL(NAME, T, SUFFIX, MR, NV)                              \\
    static void NAME(ptrdiff_t k, const T *PYCONV_CG_RESTRICT a,                     \\
                     const T *PYCONV_CG_RESTRICT x,                                  \\
                     const ptrdiff_t *PYCONV_CG_RESTRICT off,                        \\
                     T *PYCONV_CG_RESTRICT c, ptrdiff_t ldc,                         \\
                     const pyconv_cg_finish_##SUFFIX *fin, ptrdiff_t roff)           \\
    {                                                                               \\
        enum { NR = NV * PYCONV_CG_VBYTES / sizeof(T) };                            \\
        T acc[MR][NV * PYCONV_CG_VBYTES / sizeof(T)];                               \\
        for (int i = 0; i < MR; i++) for (int j = 0; j < NR; j++) acc[i][j] = 0;    \\
        for (ptrdiff_t p = 0; p < k; p++) {                                         \\
            const T *b = x + off[p];                                                \\
            for (int i = 0; i < MR; i++)                                            \\
                for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];              \\
            a += MR;                                                                \\
        }                                                                           \\
        for (int i = 0; i < MR; i++)                                                \\
            for (int j = 0; j < NR; j++) {                                          \\
                T t = acc[i][j];                                                    \\
                if (fin->kind != PYCONV_CG_NONE) {                                  \\
                    if (fin->scale != NULL || fin->shift != NULL)                   \\
                        t = t * (fin->scale ? fin->scale[i] : (T)1)                 \\
                            + (fin->shift ? fin->shift[i] : fin->shift0);           \\
                    if (fin->residual) t = t + fin->residual[roff + i * ldc + j];   \\
                    if (fin->kind == PYCONV_CG_RELU) t = t < 0 ? (T)0 : t;          \\
                    else if (fin->kind == PYCONV_CG_CLAMP) {                        \\
                        t = t < fin->low ? fin->low : t;                            \\
                        t = t > fin->high ? fin->high : t;                          \\
                    }                                                               \\
                }                                                                   \\
                c[i * ldc + j] = t;                                                 \\
            }                                                                       \\
    }
    #endif

    /* One kernel per tile height and vector count: a block's last tile uses the
       fewest vectors that cover it. */
    #define PYCONV_CG_KERNELS(T, SUFFIX)                                            \\
    PYCONV_CG_UKERNEL(pyconv_cg_w1_##SUFFIX, T, SUFFIX, PYCONV_CG_WIDE_MR, 1)               \\
    PYCONV_CG_UKERNEL(pyconv_cg_w2_##SUFFIX, T, SUFFIX, PYCONV_CG_WIDE_MR, 2)               \\
    PYCONV_CG_UKERNEL(pyconv_cg_w3_##SUFFIX, T, SUFFIX, PYCONV_CG_WIDE_MR, 3)               \\
    PYCONV_CG_UKERNEL(pyconv_cg_n1_##SUFFIX, T, SUFFIX, PYCONV_CG_NARROW_MR, 1)             \\
    PYCONV_CG_UKERNEL(pyconv_cg_n2_##SUFFIX, T, SUFFIX, PYCONV_CG_NARROW_MR, 2)             \\
    PYCONV_CG_UKERNEL(pyconv_cg_n3_##SUFFIX, T, SUFFIX, PYCONV_CG_NARROW_MR, 3)             \\
    PYCONV_CG_UKERNEL(pyconv_cg_n4_##SUFFIX, T, SUFFIX, PYCONV_CG_NARROW_MR, 4)             \\
    /* c (tile of mr rows and nv vectors) = fin(packed panel a times the columns at x). */ \\
    static void pyconv_cg_tile_##SUFFIX(int mr, int nv, ptrdiff_t k, const T *a,    \\
                                        const T *x, const ptrdiff_t *off, T *c,     \\
                                        ptrdiff_t ldc, const pyconv_cg_finish_##SUFFIX *fin, ptrdiff_t roff) \\
    {                                                                               \\
        if (mr == PYCONV_CG_WIDE_MR) {                                              \\
            if (nv >= 3 && PYCONV_CG_WIDE_NV >= 3) pyconv_cg_w3_##SUFFIX(k, a, x, off, c, ldc, fin, roff); \\
            else if (nv >= 2) pyconv_cg_w2_##SUFFIX(k, a, x, off, c, ldc, fin, roff);     \\
            else pyconv_cg_w1_##SUFFIX(k, a, x, off, c, ldc, fin, roff);                  \\
        } else {                                                                    \\
            if (nv >= 4 && PYCONV_CG_NARROW_NV >= 4) pyconv_cg_n4_##SUFFIX(k, a, x, off, c, ldc, fin, roff); \\
            else if (nv >= 3) pyconv_cg_n3_##SUFFIX(k, a, x, off, c, ldc, fin, roff);     \\
            else if (nv >= 2) pyconv_cg_n2_##SUFFIX(k, a, x, off, c, ldc, fin, roff);     \\
            else pyconv_cg_n1_##SUFFIX(k, a, x, off, c, ldc, fin, roff);                  \\
        }                                                                           \\
    }
    PYCONV_CG_KERNELS(float, f32)
    PYCONV_CG_KERNELS(double, f64)

    /* The even elements of the 2 * VL elements in vectors a, b (a deinterleave). */
    #if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
    #define PYCONV_CG_HAVE_EVEN 1
    /* ..._LAST: the same when b starts one element early (b[0] == a[VL - 1]), so that
       the pair ends on the last even element. */
    #if PYCONV_CG_VBYTES == 64
    #define PYCONV_CG_EVEN_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
    #define PYCONV_CG_EVEN_f64(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
    #define PYCONV_CG_EVEN_LAST_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31)
    #define PYCONV_CG_EVEN_LAST_f64(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 9, 11, 13, 15)
    #elif PYCONV_CG_VBYTES == 32
    #define PYCONV_CG_EVEN_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
    #define PYCONV_CG_EVEN_f64(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
    #define PYCONV_CG_EVEN_LAST_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 9, 11, 13, 15)
    #define PYCONV_CG_EVEN_LAST_f64(a, b) __builtin_shufflevector(a, b, 0, 2, 5, 7)
    #else
    #define PYCONV_CG_EVEN_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
    #define PYCONV_CG_EVEN_f64(a, b) __builtin_shufflevector(a, b, 0, 2)
    #define PYCONV_CG_EVEN_LAST_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 5, 7)
    #define PYCONV_CG_EVEN_LAST_f64(a, b) __builtin_shufflevector(a, b, 0, 3)
    #endif
    #else
    #define PYCONV_CG_HAVE_EVEN 0
    #endif

    /* One row of the input copy: dst[s] = src[s * stride] for lo <= s < hi, zeros for the
       other s < n.  The rows are short (tens of values), so the copy runs in whole vectors
       (stride 1: the last one overlapping; stride 2: deinterleaved pairs) instead of loops
       with scalar tails.  Reads only src[lo * stride] .. src[(hi - 1) * stride]. */
    #if defined(__GNUC__)
    #define PYCONV_CG_ROW(T, SUFFIX)                                                \\
    static void pyconv_cg_row_##SUFFIX(T *PYCONV_CG_RESTRICT dst,                   \\
                                       const T *PYCONV_CG_RESTRICT src, ptrdiff_t n,\\
                                       ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t stride)\\
    {                                                                               \\
        typedef T vec __attribute__((vector_size(PYCONV_CG_VBYTES)));               \\
        enum { VL = PYCONV_CG_VBYTES / sizeof(T) };                                 \\
        ptrdiff_t s = 0;                                                            \\
        for (; s < lo; s++) dst[s] = 0;                                             \\
        if (stride == 1 && hi - lo >= VL) {                                         \\
            vec v;                                                                  \\
            for (; s + VL <= hi; s += VL) {                                         \\
                memcpy(&v, src + s, sizeof v);                                      \\
                memcpy(dst + s, &v, sizeof v);                                      \\
            }                                                                       \\
            memcpy(&v, src + hi - VL, sizeof v);                                    \\
            memcpy(dst + hi - VL, &v, sizeof v);                                    \\
            s = hi;                                                                 \\
        }                                                                           \\
        if (PYCONV_CG_HAVE_EVEN && stride == 2 && hi - lo >= VL) {                  \\
            vec a, b, even;                                                         \\
            /* s + VL < hi: reads up to src[2 * s + 2 * VL - 1] < src[2 * (hi - 1)] */ \\
            for (; s + VL < hi; s += VL) {                                          \\
                memcpy(&a, src + 2 * s, sizeof a);                                  \\
                memcpy(&b, src + 2 * s + VL, sizeof b);                             \\
                even = PYCONV_CG_EVEN_##SUFFIX(a, b);                               \\
                memcpy(dst + s, &even, sizeof even);                                \\
            }                                                                       \\
            /* The last VL values (overlapping), ending exactly on src[2 * (hi - 1)]. */ \\
            s = hi - VL;                                                            \\
            memcpy(&a, src + 2 * s, sizeof a);                                      \\
            memcpy(&b, src + 2 * s + VL - 1, sizeof b);                             \\
            even = PYCONV_CG_EVEN_LAST_##SUFFIX(a, b);                              \\
            memcpy(dst + s, &even, sizeof even);                                    \\
            s = hi;                                                                 \\
        }                                                                           \\
        for (; s < hi; s++) dst[s] = src[s * stride];                               \\
        for (; s < n; s++) dst[s] = 0;                                              \\
    }
    #else
    #define PYCONV_CG_ROW(T, SUFFIX)                                                \\
    static void pyconv_cg_row_##SUFFIX(T *dst, const T *src, ptrdiff_t n,           \\
                                       ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t stride)\\
    {                                                                               \\
        ptrdiff_t s;                                                                \\
        for (s = 0; s < lo; s++) dst[s] = 0;                                        \\
        for (; s < hi; s++) dst[s] = src[s * stride];                               \\
        for (; s < n; s++) dst[s] = 0;                                              \\
    }
    #endif
    PYCONV_CG_ROW(float, f32)
    PYCONV_CG_ROW(double, f64)
    """
    enum:
        VBYTES "PYCONV_CG_VBYTES"
        WIDE_MR "PYCONV_CG_WIDE_MR"
        WIDE_NV "PYCONV_CG_WIDE_NV"
        NARROW_MR "PYCONV_CG_NARROW_MR"
        NARROW_NV "PYCONV_CG_NARROW_NV"
        FINISH_NONE "PYCONV_CG_NONE"
        FINISH_AFFINE "PYCONV_CG_AFFINE"
        FINISH_RELU "PYCONV_CG_RELU"
        FINISH_CLAMP "PYCONV_CG_CLAMP"
    ctypedef struct finish_f32 "pyconv_cg_finish_f32":
        int kind
        const float* scale
        const float* shift
        const float* residual
        float shift0, low, high
    ctypedef struct finish_f64 "pyconv_cg_finish_f64":
        int kind
        const double* scale
        const double* shift
        const double* residual
        double shift0, low, high
    void tile_f32 "pyconv_cg_tile_f32"(int mr, int nv, Py_ssize_t k, const float* a, const float* x,
                                       const Py_ssize_t* off, float* c, Py_ssize_t ldc,
                                       const finish_f32* fin, Py_ssize_t roff) noexcept nogil
    void row_f32 "pyconv_cg_row_f32"(float* dst, const float* src, Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi,
                                     Py_ssize_t stride) noexcept nogil
    void row_f64 "pyconv_cg_row_f64"(double* dst, const double* src, Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi,
                                     Py_ssize_t stride) noexcept nogil
    void tile_f64 "pyconv_cg_tile_f64"(int mr, int nv, Py_ssize_t k, const double* a, const double* x,
                                       const Py_ssize_t* off, double* c, Py_ssize_t ldc,
                                       const finish_f64* fin, Py_ssize_t roff) noexcept nogil

cdef enum:
    ALIGN = 64


def tile_shapes():
    """The build's micro-kernel tiles: {"wide"|"narrow": (MR, NR for float32, NR for float64)}
    and "vector_bytes": the bytes of one vector."""
    return {"wide": (WIDE_MR, WIDE_NV * VBYTES // 4, WIDE_NV * VBYTES // 8),
            "narrow": (NARROW_MR, NARROW_NV * VBYTES // 4, NARROW_NV * VBYTES // 8),
            "vector_bytes": VBYTES}


cdef inline Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t multiple) noexcept nogil:
    return (x + multiple - 1) // multiple * multiple


cdef inline Epilogue make_epilogue(const floating[::1] scale, const floating[::1] shift,
                                   const floating[::1] residual, int activation,
                                   double p0, double p1, double p2):
    return epilogue_init(&scale[0] if scale.shape[0] > 0 else NULL,
                         &shift[0] if shift.shape[0] > 0 else NULL,
                         &residual[0] if residual.shape[0] > 0 else NULL,
                         activation, p0, p1, p2)


cdef inline char* aligned_scratch(char* block) noexcept nogil:
    return <char*>round_up(<Py_ssize_t>block, ALIGN)


# ---- pointwise: the packed GEMM on the input in place ----------------------

cdef struct Pointwise:
    const void* input           # (N, C, P)
    const void* packed          # pack_pointwise's layout
    void* output                # (N, M, P)
    Py_ssize_t groups, in_per_group, out_per_group, out_channels, positions
    Py_ssize_t rows, row_blocks, packed_group_size
    Py_ssize_t columns, column_blocks, tasks
    Py_ssize_t workspace_bytes


cdef void pointwise_tasks(const Pointwise* pw, const Epilogue* ep, Py_ssize_t first, Py_ssize_t last,
                          void* workspace, const floating* tag) noexcept nogil:
    """Tasks first .. last - 1 (one thread).  Task order: n, group, column block, row block."""
    cdef const floating* x = <const floating*>pw.input
    cdef const floating* packed = <const floating*>pw.packed
    cdef floating* y = <floating*>pw.output
    cdef bint finish = not epilogue_is_identity(ep)
    cdef Py_ssize_t task, rest, block, group, n, col0, cols, row0, co, rows, r, offset
    for task in range(first, last):
        block = task % pw.row_blocks
        rest = task // pw.row_blocks
        col0 = rest % pw.column_blocks * pw.columns
        rest = rest // pw.column_blocks
        group = rest % pw.groups
        n = rest // pw.groups
        cols = min(pw.columns, pw.positions - col0)
        row0 = block * pw.rows
        co = group * pw.out_per_group + row0
        rows = min(pw.rows, pw.out_per_group - row0)
        offset = (n * pw.out_channels + co) * pw.positions + col0
        gemm_prepacked_rows(rows, cols, pw.in_per_group, packed + group * pw.packed_group_size, pw.out_per_group,
                            row0, x + (n * pw.groups + group) * pw.in_per_group * pw.positions + col0,
                            pw.positions, y + offset, pw.positions, False, workspace)
        if finish:
            for r in range(rows):
                epilogue_row(ep, y, offset + r * pw.positions, cols, co + r)


cdef struct Job:
    # One conv_pointwise or conv_implicit call, for parallel_for's task functions.
    const void* problem            # the Pointwise or Implicit
    const Epilogue* ep
    bint double_precision
    char* scratch                  # per thread: scratch_bytes bytes from scratch + thread * scratch_bytes
    Py_ssize_t scratch_bytes
    Py_ssize_t tile_values         # implicit: the thread's tile, then its gathered columns


cdef void _pointwise_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef const Pointwise* pw = <const Pointwise*>job.problem
    cdef char* workspace = job.scratch + thread * job.scratch_bytes
    if job.double_precision:
        pointwise_tasks(pw, job.ep, task, task + 1, workspace, <const double*>NULL)
    else:
        pointwise_tasks(pw, job.ep, task, task + 1, workspace, <const float*>NULL)


def pack_pointwise(const floating[:, ::1] weight, Py_ssize_t groups, floating[::1] packed):
    """Pack weight (M, C // groups) of a pointwise convolution for conv_pointwise.

    Each group's M // groups rows are packed whole by gemm_pack_a at offset
    group * gemm_packed_a_size(M // groups, K); conv_pointwise multiplies any
    run of them that starts at a multiple of MR.  ``packed`` has
    pointwise_packed_size(groups, M // groups, K) elements (allocated by the
    caller).  Not checked: groups divides M.
    """
    cdef Py_ssize_t out_per_group = weight.shape[0] // groups, k = weight.shape[1]
    cdef Py_ssize_t size = gemm_packed_a_size(out_per_group, k), group
    with nogil:
        for group in range(groups):
            gemm_pack_a(out_per_group, k, &weight[group * out_per_group, 0], k, &packed[group * size])


def pointwise_packed_size(Py_ssize_t groups, Py_ssize_t out_per_group, Py_ssize_t in_per_group):
    """Elements pack_pointwise writes."""
    return groups * gemm_packed_a_size(out_per_group, in_per_group)


def conv_pointwise(const floating[:, :, ::1] input, const floating[::1] packed, floating[:, :, ::1] output,
                   Py_ssize_t groups, Py_ssize_t rows, Py_ssize_t columns,
                   const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
                   int activation, double p0, double p1, double p2, int num_threads):
    """output = epilogue(1x1 convolution of input), weights packed by pack_pointwise.

    input (N, C, P), output (N, M, P): C-contiguous, one dtype, output
    allocated by the caller.  A task computes ``rows`` output channels (a
    multiple of MR, or all of a group's) by ``columns`` output positions of
    one image and group; the split never changes the bits.  Epilogue
    arguments as in epilogue.pxd (empty arrays = absent).  Only the split is
    checked.
    """
    cdef Pointwise pw
    if output.size == 0:
        return
    if rows < 1 or columns < 1 or (rows % _GEMM_MR and rows < output.shape[1] // groups):
        raise ValueError(f"conv_pointwise: rows per task must be a multiple of {_GEMM_MR} or all of a group's, "
                         f"columns at least 1; got rows={rows}, columns={columns}")
    pw.input = &input[0, 0, 0]
    pw.packed = &packed[0]
    pw.output = &output[0, 0, 0]
    pw.groups = groups
    pw.in_per_group = input.shape[1] // groups
    pw.out_channels = output.shape[1]
    pw.out_per_group = pw.out_channels // groups
    pw.positions = output.shape[2]
    pw.rows = min(rows, pw.out_per_group)
    pw.row_blocks = (pw.out_per_group + pw.rows - 1) // pw.rows
    pw.packed_group_size = gemm_packed_a_size(pw.out_per_group, pw.in_per_group)
    pw.columns = min(columns, pw.positions)
    pw.column_blocks = (pw.positions + pw.columns - 1) // pw.columns
    pw.tasks = input.shape[0] * groups * pw.column_blocks * pw.row_blocks
    pw.workspace_bytes = round_up(gemm_workspace_size(pw.rows, pw.columns, pw.in_per_group), ALIGN)
    cdef Epilogue ep = make_epilogue(scale, shift, residual, activation, p0, p1, p2)
    cdef Py_ssize_t threads = max(1, min(<Py_ssize_t>num_threads, pw.tasks))
    cdef char* block_memory = <char*>malloc(pw.workspace_bytes * threads + ALIGN)
    if block_memory == NULL:
        raise MemoryError()
    cdef Job job
    job.ep = &ep
    job.double_precision = floating is double
    job.problem = &pw
    job.scratch = aligned_scratch(block_memory)
    job.scratch_bytes = pw.workspace_bytes
    with nogil:
        parallel_for(_pointwise_task, &job, pw.tasks, <int>threads)
    free(block_memory)


# ---- implicit GEMM ----------------------------------------------------------

cdef struct Implicit:
    # Input and the copy xp: per image and channel `channel_stride` values, ext_d
    # depth slices of `slice_size` = len(row_phases) * len(column_shifts) planes of
    # hq rows x row_pitch values.  Plane (i, j) row r column s holds the padded
    # input at height r * stride_h + row_phases[i], width s * stride_w + column_shifts[j].
    Py_ssize_t in_channels, in_d, in_h, in_w
    Py_ssize_t stride_h, stride_w, pad_d, pad_h, pad_w
    Py_ssize_t ext_d, hq, row_pitch, slice_size, channel_stride
    const Py_ssize_t* row_phases
    Py_ssize_t n_row_phases
    const Py_ssize_t* column_shifts
    Py_ssize_t n_column_shifts
    const Py_ssize_t* copy_lo                  # per column shift: columns s in [lo, hi) read
    const Py_ssize_t* copy_hi                  # the input (row_pitch-wide rows; the rest is padding)
    # Work: output q = oh * row_pitch + ow of depth slice od reads xp at
    # x_image + od * stride_d * slice_size + q + offsets[k], k over the K taps.
    Py_ssize_t stride_d
    Py_ssize_t out_d, out_h, out_w
    Py_ssize_t groups, in_per_group, out_per_group, out_channels
    Py_ssize_t mr, nr                          # micro-kernel tile
    Py_ssize_t panels                          # ceil(out_per_group / mr)
    Py_ssize_t chunks, panels_per_chunk        # a tile block's channel panels split into chunks
    Py_ssize_t patch_rows                      # K
    Py_ssize_t outputs                         # q per depth slice: (out_h - 1) * row_pitch + out_w
    bint row_tiles                             # tiles end at output row ends (no thrown-away columns)
    Py_ssize_t tiles                           # ceil(outputs / nr)
    Py_ssize_t tiles_per_block, blocks
    Py_ssize_t tasks
    const void* input
    const void* xp                             # the copy, or the input itself (in_place)
    bint in_place                              # xp is the input: no slack after its end
    Py_ssize_t xp_size                         # values readable from xp
    Py_ssize_t max_offset                      # of offsets
    const void* packed                         # pack_implicit's layout
    const Py_ssize_t* offsets
    const Py_ssize_t* gathered_offsets         # k * nr: the columns of a tile gathered (in_place)
    void* output


cdef void fill_xp(const Implicit* im, Py_ssize_t row_block, const floating* tag) noexcept nogil:
    """Fill the xp planes of one (image and channel, depth slice, row phase) with padded input values."""
    cdef const floating* x = <const floating*>im.input
    cdef floating* xp = <floating*>im.xp              # written only here, before any task reads it
    cdef Py_ssize_t phase_index = row_block % im.n_row_phases, rest = row_block // im.n_row_phases
    cdef Py_ssize_t slice_ = rest % im.ext_d, channel = rest // im.ext_d      # channel counts over images too
    cdef Py_ssize_t ph = im.row_phases[phase_index], id_ = slice_ - im.pad_d
    cdef Py_ssize_t plane = im.hq * im.row_pitch, j, r, ih
    cdef bint inside
    cdef floating* planes = xp + channel * im.channel_stride + slice_ * im.slice_size \
        + phase_index * im.n_column_shifts * plane
    cdef floating* dst
    cdef const floating* src
    for r in range(im.hq):
        ih = r * im.stride_h + ph - im.pad_h
        for j in range(im.n_column_shifts):         # every copy of this input row while it is in L1
            dst = planes + j * plane + r * im.row_pitch
            inside = 0 <= id_ < im.in_d and 0 <= ih < im.in_h
            src = x + ((channel * im.in_d + id_) * im.in_h + ih) * im.in_w + im.column_shifts[j] - im.pad_w
            if floating is float:
                row_f32(dst, src, im.row_pitch, im.copy_lo[j] if inside else 0, im.copy_hi[j] if inside else 0,
                        im.stride_w)
            else:
                row_f64(dst, src, im.row_pitch, im.copy_lo[j] if inside else 0, im.copy_hi[j] if inside else 0,
                        im.stride_w)


cdef int finish_kind(const Epilogue* ep) noexcept nogil:
    """The part of the epilogue the micro-kernel applies in registers (PYCONV_CG_*); an AFFINE
    finish leaves the activation (not identity) to activation_row on the stored tile."""
    if epilogue_is_identity(ep):
        return FINISH_NONE
    if ep.activation == ACT_RELU:
        return FINISH_RELU
    if ep.activation == ACT_HARDTANH and ep.p0 == ep.p0 and ep.p1 == ep.p1:
        return FINISH_CLAMP
    return FINISH_AFFINE


cdef union Finish:
    finish_f32 f32
    finish_f64 f64


cdef void set_finish(Finish* fin, const Epilogue* ep, int kind, Py_ssize_t channel,
                     const floating* tag) noexcept nogil:
    """fin := ``kind`` of ``ep`` for the micro-kernel's rows from output channel ``channel`` on."""
    # -0.0: epilogue_row's one-pass ReLU / hardtanh form; 0: its separate passes
    cdef bint one_pass = ep.activation == ACT_RELU or ep.activation == ACT_HARDTANH
    if floating is float:
        fin.f32.kind = kind
        fin.f32.scale = <const float*>ep.scale + channel if ep.scale != NULL else NULL
        fin.f32.shift = <const float*>ep.shift + channel if ep.shift != NULL else NULL
        fin.f32.residual = <const float*>ep.residual if kind != FINISH_NONE else NULL
        fin.f32.shift0 = -0.0 if one_pass else 0.0
        fin.f32.low, fin.f32.high = <float>ep.p0, <float>ep.p1
    else:
        fin.f64.kind = kind
        fin.f64.scale = <const double*>ep.scale + channel if ep.scale != NULL else NULL
        fin.f64.shift = <const double*>ep.shift + channel if ep.shift != NULL else NULL
        fin.f64.residual = <const double*>ep.residual if kind != FINISH_NONE else NULL
        fin.f64.shift0 = -0.0 if one_pass else 0.0
        fin.f64.low, fin.f64.high = ep.p0, ep.p1


cdef inline void micro_kernel(const Implicit* im, Py_ssize_t columns, const floating* a, const floating* x,
                              const Py_ssize_t* offsets, floating* c, Py_ssize_t ldc, const Finish* fin,
                              Py_ssize_t residual_offset) noexcept nogil:
    """c = tile of im.mr rows and the fewest vectors covering ``columns`` (<= im.nr) outputs, finished
    in registers by ``fin`` (set_finish), its residual read from ``residual_offset`` (the index of the
    tile's first output in the output) on, with ldc as c is."""
    cdef Py_ssize_t vl = VBYTES // sizeof(floating)
    cdef int nv = <int>((columns + vl - 1) // vl)
    if floating is float:
        tile_f32(<int>im.mr, nv, im.patch_rows, a, x, offsets, c, ldc, &fin.f32, residual_offset)
    else:
        tile_f64(<int>im.mr, nv, im.patch_rows, a, x, offsets, c, ldc, &fin.f64, residual_offset)


cdef void gather_columns(const Implicit* im, const floating* x_tile, Py_ssize_t columns, Py_ssize_t width,
                         floating* gathered) noexcept nogil:
    """gathered[k * nr + j] = x_tile[offsets[k] + j] for j < columns, zero up to width."""
    cdef Py_ssize_t k, j
    cdef const floating* src
    cdef floating* dst
    for k in range(im.patch_rows):
        src = x_tile + im.offsets[k]
        dst = gathered + k * im.nr
        for j in range(columns):
            dst[j] = src[j]
        for j in range(columns, width):
            dst[j] = 0


cdef void implicit_tasks(const Implicit* im, const Epilogue* ep, Py_ssize_t first, Py_ssize_t last,
                         floating* tile, floating* gathered) noexcept nogil:
    """Tasks first .. last - 1 (one thread).  Task order: n, group, depth slice, tile block, channel chunk.

    A task runs its channel panels one after the other over its block of
    tiles (nr outputs, or fewer at the block's end or, with row_tiles, at an
    output row's end).  A tile whose outputs are consecutive in the output is
    stored there; any other (thrown-away columns, partial vector, short
    panel) goes through ``tile`` (this thread's mr x nr scratch).  Reading
    the input in place, a tile whose vectors would run past the input's end
    reads its columns from ``gathered`` (K x nr, zero-padded) instead.  The
    epilogue: a tile stored in place is finished by the micro-kernel in
    registers (an activation other than ReLU or hardtanh with bounds that are
    not NaN then runs over its rows while they are in L1), and so is a whole
    panel's tile through scratch when no residual is read; any other tile's
    outputs with epilogue_row after the copy.
    """
    cdef const floating* xp = <const floating*>im.xp
    cdef const floating* packed = <const floating*>im.packed
    cdef floating* y = <floating*>im.output
    cdef int kind = finish_kind(ep)
    cdef bint activation_after_store = kind == FINISH_AFFINE and ep.activation != ACT_IDENTITY
    cdef bint finished
    cdef Finish fin, no_finish
    set_finish(&no_finish, ep, FINISH_NONE, 0, <const floating*>NULL)
    cdef bint dense = im.row_pitch == im.out_w       # q is the output position: no thrown-away columns
    cdef Py_ssize_t out_slice = im.out_h * im.out_w, out_plane = im.out_d * out_slice
    cdef Py_ssize_t panel_size = im.mr * im.patch_rows, vl = VBYTES // sizeof(floating)
    cdef Py_ssize_t task, rest, chunk, block, od, group, n, q0, q1, qa, qb
    cdef Py_ssize_t panel, panel_end, rows, r, co, out_row, row_start, seg0, seg1, ow0
    cdef const floating* x_slice
    cdef const floating* x_tile
    cdef const Py_ssize_t* offsets
    cdef const floating* a
    cdef floating* y_panel
    cdef floating* dst
    cdef const floating* src
    for task in range(first, last):
        chunk = task % im.chunks
        rest = task // im.chunks
        block = rest % im.blocks
        rest = rest // im.blocks
        od = rest % im.out_d
        rest = rest // im.out_d
        group = rest % im.groups
        n = rest // im.groups
        qa = block * im.tiles_per_block * im.nr
        qb = min(qa + im.tiles_per_block * im.nr, im.outputs)
        x_slice = (xp + (n * im.in_channels + group * im.in_per_group) * im.channel_stride
                   + od * im.stride_d * im.slice_size)
        panel_end = min(im.panels, (chunk + 1) * im.panels_per_chunk)
        for panel in range(chunk * im.panels_per_chunk, panel_end):
            rows = min(im.mr, im.out_per_group - panel * im.mr)
            co = group * im.out_per_group + panel * im.mr
            a = packed + (group * im.panels + panel) * panel_size
            y_panel = y + (n * im.out_channels + co) * out_plane + od * out_slice
            set_finish(&fin, ep, kind, co, <const floating*>NULL)
            q1 = qa
            while q1 < qb:
                q0 = q1
                out_row = q0 // im.row_pitch
                ow0 = q0 - out_row * im.row_pitch
                if ow0 >= im.out_w:                  # thrown-away columns (row tiles skip them)
                    q1 = (out_row + 1) * im.row_pitch
                    continue
                q1 = min(q0 + im.nr, qb)
                if im.row_tiles:
                    q1 = min(q1, out_row * im.row_pitch + im.out_w)
                x_tile = x_slice + q0
                offsets = im.offsets
                if im.in_place and (x_tile - xp) + im.max_offset + round_up(q1 - q0, vl) > im.xp_size:
                    gather_columns(im, x_tile, q1 - q0, round_up(q1 - q0, vl), gathered)
                    x_tile = gathered
                    offsets = im.gathered_offsets
                if rows == im.mr and (q1 - q0) % vl == 0 and (dense or ow0 + q1 - q0 <= im.out_w):
                    # The tile's outputs are consecutive in the output: store it in place, finished.
                    dst = y_panel + out_row * im.out_w + ow0
                    micro_kernel(im, q1 - q0, a, x_tile, offsets, dst, out_plane, &fin, dst - y)
                    if activation_after_store:
                        for r in range(rows):
                            activation_row(dst + r * out_plane, dst + r * out_plane, q1 - q0, ep.activation,
                                           ep.p0, ep.p1, ep.p2)
                    continue
                # Through scratch: finished there too when the panel is whole and no residual is
                # read (the residual comes before the activation, from the output's positions).
                finished = rows == im.mr and ep.residual == NULL
                micro_kernel(im, q1 - q0, a, x_tile, offsets, tile, im.nr, &fin if finished else &no_finish, 0)
                # Copy the tile's outputs, output row by output row, skipping thrown-away columns.
                seg0 = q0
                while seg0 < q1:
                    out_row = seg0 // im.row_pitch
                    row_start = out_row * im.row_pitch
                    seg1 = min(q1, row_start + im.out_w)
                    for r in range(rows):
                        dst = y_panel + r * out_plane + out_row * im.out_w + (seg0 - row_start)
                        src = tile + r * im.nr + (seg0 - q0)
                        memcpy(dst, src, (seg1 - seg0) * sizeof(floating))
                        if not finished and kind != FINISH_NONE:
                            epilogue_row(ep, y, dst - y, seg1 - seg0, co + r)
                        elif finished and activation_after_store:
                            activation_row(dst, dst, seg1 - seg0, ep.activation, ep.p0, ep.p1, ep.p2)
                    seg0 = row_start + im.row_pitch


cdef void _fill_task(void* context, Py_ssize_t row_block, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    if job.double_precision:
        fill_xp(<const Implicit*>job.problem, row_block, <const double*>NULL)
    else:
        fill_xp(<const Implicit*>job.problem, row_block, <const float*>NULL)


cdef void _implicit_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef char* scratch = job.scratch + thread * job.scratch_bytes
    if job.double_precision:
        implicit_tasks(<const Implicit*>job.problem, job.ep, task, task + 1, <double*>scratch,
                       <double*>scratch + job.tile_values)
    else:
        implicit_tasks(<const Implicit*>job.problem, job.ep, task, task + 1, <float*>scratch,
                       <float*>scratch + job.tile_values)


def pack_implicit(const floating[:, ::1] weight, Py_ssize_t groups, Py_ssize_t mr, floating[::1] packed):
    """Pack weight (M, K) = (out_channels, in_channels / groups * kernel volume) for conv_implicit.

    Each group's rows are cut into panels of mr rows, the last zero-padded;
    panel b of group g holds its K columns p-major (packed[p * mr + i]) at
    offset (g * panels + b) * mr * K, panels = ceil(M / groups / mr).
    ``packed`` has groups * panels * mr * K elements (allocated by the caller).
    """
    cdef Py_ssize_t out_per_group = weight.shape[0] // groups, k = weight.shape[1]
    cdef Py_ssize_t panels = (out_per_group + mr - 1) // mr, group, b, i, p, row
    cdef floating* dst
    with nogil:
        for group in range(groups):
            for b in range(panels):
                dst = &packed[(group * panels + b) * mr * k]
                for i in range(mr):
                    row = b * mr + i
                    if row < out_per_group:
                        for p in range(k):
                            dst[p * mr + i] = weight[group * out_per_group + row, p]
                    else:
                        for p in range(k):
                            dst[p * mr + i] = 0


def conv_implicit(const floating[:, :, :, :, ::1] input, const floating[::1] packed,
                  floating[:, :, :, :, ::1] output, stride, padding,
                  const Py_ssize_t[::1] offsets, const Py_ssize_t[::1] row_phases,
                  const Py_ssize_t[::1] column_shifts, Py_ssize_t ext_d, Py_ssize_t hq, Py_ssize_t row_pitch,
                  Py_ssize_t channel_stride, bint row_tiles, bint in_place, Py_ssize_t groups, Py_ssize_t mr,
                  Py_ssize_t tiles_per_block, Py_ssize_t chunks,
                  const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
                  int activation, double p0, double p1, double p2, int num_threads):
    """output = epilogue(conv3d(input, weight)) by implicit GEMM, weights packed by pack_implicit(..., mr).

    input (N, C, D, H, W), output (N, M, OD, OH, OW): C-contiguous, one dtype;
    output allocated by the caller with torch's sizes.  stride, padding (zeros
    before): 3 ints each, (D, H, W) order.  The layout of the copy xp (see
    Implicit) and the K tap offsets in it come from the caller
    (GemmConv.layout): every offset of an output that is kept must land in
    the input's copy.  row_tiles: tiles end at output row ends (else they
    run on over the thrown-away columns).  in_place: the input itself is
    xp, no copy (its layout must then be the input's, e.g. a pointwise
    convolution with stride 1 seen as (N, C, 1, 1, P)).  mr: a tile height
    of tile_shapes(); tiles_per_block: tiles of one task; chunks: how many
    tasks share one block's channel panels.  Epilogue arguments as in
    epilogue.pxd (empty arrays = absent).  Nothing is checked here.
    """
    cdef Implicit im
    im.in_channels = input.shape[1]
    im.in_d, im.in_h, im.in_w = input.shape[2], input.shape[3], input.shape[4]
    im.stride_d, im.stride_h, im.stride_w = stride
    im.pad_d, im.pad_h, im.pad_w = padding
    im.out_d, im.out_h, im.out_w = output.shape[2], output.shape[3], output.shape[4]
    im.ext_d, im.hq, im.row_pitch, im.channel_stride = ext_d, hq, row_pitch, channel_stride
    im.row_tiles = row_tiles
    im.n_row_phases, im.n_column_shifts = row_phases.shape[0], column_shifts.shape[0]
    im.slice_size = im.n_row_phases * im.n_column_shifts * hq * row_pitch
    im.groups = groups
    im.in_per_group = im.in_channels // groups
    im.out_channels = output.shape[1]
    im.out_per_group = im.out_channels // groups
    im.mr = mr
    im.nr = (WIDE_NV if mr == WIDE_MR else NARROW_NV) * VBYTES // sizeof(floating)
    im.panels = (im.out_per_group + mr - 1) // mr
    im.chunks = max(1, min(chunks, im.panels))
    im.panels_per_chunk = (im.panels + im.chunks - 1) // im.chunks
    im.chunks = (im.panels + im.panels_per_chunk - 1) // im.panels_per_chunk
    im.patch_rows = offsets.shape[0]
    im.outputs = (im.out_h - 1) * row_pitch + im.out_w
    im.tiles = (im.outputs + im.nr - 1) // im.nr
    im.tiles_per_block = max(1, min(tiles_per_block, im.tiles))
    im.blocks = (im.tiles + im.tiles_per_block - 1) // im.tiles_per_block
    cdef Py_ssize_t batch = input.shape[0]
    im.tasks = batch * groups * im.out_d * im.blocks * im.chunks
    if im.tasks == 0:
        return
    cdef Py_ssize_t k, c
    im.max_offset = 0
    for k in range(im.patch_rows):
        im.max_offset = max(im.max_offset, offsets[k])
    im.in_place = in_place
    # A copy has nr values of slack: the last tile of the last channel reads up to nr - 1 past its end.
    im.xp_size = batch * im.in_channels * channel_stride + (0 if in_place else im.nr)
    cdef Py_ssize_t tile_size = im.mr * im.nr, gathered_size = im.patch_rows * im.nr if in_place else 0
    cdef Py_ssize_t threads = max(1, min(<Py_ssize_t>num_threads, im.tasks))
    cdef char* xp_memory = NULL if in_place else <char*>malloc(im.xp_size * sizeof(floating) + ALIGN)
    # Per thread: one tile (see implicit_tasks), and the gathered columns of a tile (in place).
    cdef floating* scratch = <floating*>malloc((tile_size + gathered_size) * threads * sizeof(floating))
    cdef Py_ssize_t* gathered_offsets = <Py_ssize_t*>malloc(im.patch_rows * sizeof(Py_ssize_t))
    cdef Py_ssize_t* copy_range = <Py_ssize_t*>malloc(2 * im.n_column_shifts * sizeof(Py_ssize_t))
    cdef Py_ssize_t j, first, last, lo, hi
    if ((xp_memory == NULL and not in_place) or scratch == NULL or gathered_offsets == NULL
            or copy_range == NULL):
        free(xp_memory)
        free(scratch)
        free(gathered_offsets)
        free(copy_range)
        raise MemoryError()
    for k in range(im.patch_rows):
        gathered_offsets[k] = k * im.nr
    # Column s of copy j reads input column s * stride_w + shift - pad_w: inside for lo <= s < hi.
    for j in range(im.n_column_shifts):
        first = im.pad_w - column_shifts[j]
        last = im.in_w - 1 + im.pad_w - column_shifts[j]
        lo = 0 if first <= 0 else (first + im.stride_w - 1) // im.stride_w
        hi = last // im.stride_w + 1 if last >= 0 else 0
        copy_range[j] = min(lo, row_pitch)
        copy_range[im.n_column_shifts + j] = max(min(hi, row_pitch), copy_range[j])
    im.copy_lo = copy_range
    im.copy_hi = copy_range + im.n_column_shifts
    im.input = &input[0, 0, 0, 0, 0]
    im.xp = im.input if in_place else aligned_scratch(xp_memory)
    im.packed = &packed[0]
    im.offsets = &offsets[0]
    im.gathered_offsets = gathered_offsets
    im.row_phases = &row_phases[0]
    im.column_shifts = &column_shifts[0]
    im.output = &output[0, 0, 0, 0, 0]
    cdef floating* xp = <floating*>im.xp
    cdef Py_ssize_t used = im.ext_d * im.slice_size
    if not in_place:
        for c in range(batch * im.in_channels):          # channel padding and the tail: zeros, never garbage
            memset(xp + c * channel_stride + used, 0, (channel_stride - used) * sizeof(floating))
        memset(xp + batch * im.in_channels * channel_stride, 0, im.nr * sizeof(floating))

    cdef Epilogue ep = make_epilogue(scale, shift, residual, activation, p0, p1, p2)
    cdef Job job
    job.problem = &im
    job.ep = &ep
    job.double_precision = floating is double
    job.scratch = <char*>scratch
    job.scratch_bytes = (tile_size + gathered_size) * sizeof(floating)
    job.tile_values = tile_size
    with nogil:
        if not in_place:
            parallel_for(_fill_task, &job, batch * im.in_channels * im.ext_d * im.n_row_phases, <int>threads)
        parallel_for(_implicit_task, &job, im.tasks, <int>threads)
    free(xp_memory)
    free(scratch)
    free(gathered_offsets)
    free(copy_range)
