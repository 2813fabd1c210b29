"""GEMM core: row-major C[m, n] (=|+=) A[m, k] @ B[k, n], one thread per call.

Winograd, 1x1 and im2col convolution call the cdef API declared in gemm.pxd
from inside their own parallel_for tasks (parallel.pxd).  The def functions below are thin
wrappers for tests and bench/gemm.py.

The kernel is an own packed micro-kernel in the BLIS style: B is packed into
NR-column panels (KC x NC blocks), A into MR-row panels (MC x KC blocks, or
once for all calls with gemm_pack_a), and an MR x NR register tile is
accumulated by a micro-kernel written with GNU C vector extensions.  BLAS
(scipy's OpenBLAS through scipy.linalg.cython_blas) is kept only as the
measured alternative for tests and the benchmark: it is loaded on request
(load_blas), never by the conv kernels; bench/GEMM.md records why.
"""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from cython cimport floating, view

from pyconv._kernels.parallel cimport parallel_for

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    /* Register blocking.  The vector width comes from the compiler's target
       macros (set by -march=...), never from an assumed instruction set.
       The accumulator tile is MR rows x NV vectors: 8 x 3 in the 32
       registers of AVX-512 (channel counts are multiples of 8, so no padded
       rows), 6 x 2 in the 16 of AVX/AVX2, SSE or NEON. */
    #if defined(__AVX512F__)
    #define PYCONV_GEMM_VBYTES 64
    #define PYCONV_GEMM_MR 8
    #define PYCONV_GEMM_NV 3
    #elif defined(__AVX__)
    #define PYCONV_GEMM_VBYTES 32
    #define PYCONV_GEMM_MR 6
    #define PYCONV_GEMM_NV 2
    #else
    #define PYCONV_GEMM_VBYTES 16
    #define PYCONV_GEMM_MR 6
    #define PYCONV_GEMM_NV 2
    #endif
    #define PYCONV_GEMM_VL_F32 (PYCONV_GEMM_VBYTES / 4)
    #define PYCONV_GEMM_VL_F64 (PYCONV_GEMM_VBYTES / 8)
    #define PYCONV_GEMM_TILE (PYCONV_GEMM_MR * PYCONV_GEMM_NV * PYCONV_GEMM_VL_F32)
    #define PYCONV_GEMM_ALIGN 64
    /* Cache blocking (elements): a KC x NR panel of packed B stays in L1
       while the MR-row panels of an MC x KC block of packed A stream from
       L2; a KC x NC block of packed B sits in L2/L3. */
    #define PYCONV_GEMM_KC 256
    #define PYCONV_GEMM_MC (16 * PYCONV_GEMM_MR)
    #define PYCONV_GEMM_NC 4032

    #if defined(_MSC_VER)
    #define PYCONV_RESTRICT __restrict
    #else
    #define PYCONV_RESTRICT restrict
    #endif

    /* Micro-kernel NAME: c[0:MR, 0:NV*VL] (=|+=) sum_p ap[p*MR + i] * bp[p*NV*VL + j].
       ap: an MR-row panel of A packed p-major; bp: an (NV*VL)-column panel
       of B packed p-major; c: row-major with leading dimension ldc, any
       alignment.  Full panels use NV = PYCONV_GEMM_NV; a last partial panel
       the fewest vectors that cover it. */
    #if defined(__GNUC__)
    #define PYCONV_GEMM_UKERNEL(NAME, T, NV)                                        \\
    static void NAME(ptrdiff_t kc, const T *PYCONV_RESTRICT ap,                     \\
                     const T *PYCONV_RESTRICT bp, T *PYCONV_RESTRICT c,             \\
                     ptrdiff_t ldc, int overwrite)                                  \\
    {                                                                               \\
        typedef T vec __attribute__((vector_size(PYCONV_GEMM_VBYTES)));             \\
        enum { VL = PYCONV_GEMM_VBYTES / sizeof(T), MR = PYCONV_GEMM_MR };          \\
        vec acc[MR][NV];                                                            \\
        _Pragma("GCC unroll 16")                                                    \\
        for (int i = 0; i < MR; i++)                                                \\
            _Pragma("GCC unroll 4")                                                 \\
            for (int v = 0; v < NV; v++) acc[i][v] = (vec){0};                      \\
        for (ptrdiff_t p = 0; p < kc; p++) {                                        \\
            vec b[NV];                                                              \\
            _Pragma("GCC unroll 4")                                                 \\
            for (int v = 0; v < NV; v++) memcpy(&b[v], bp + v * VL, sizeof b[v]);   \\
            _Pragma("GCC unroll 16")                                                \\
            for (int i = 0; i < MR; i++) {                                          \\
                T a = ap[i];                                                        \\
                _Pragma("GCC unroll 4")                                             \\
                for (int v = 0; v < NV; v++) acc[i][v] += a * b[v];                 \\
            }                                                                       \\
            ap += MR;                                                               \\
            bp += NV * VL;                                                          \\
        }                                                                           \\
        _Pragma("GCC unroll 16")                                                    \\
        for (int i = 0; i < MR; i++) {                                              \\
            _Pragma("GCC unroll 4")                                                 \\
            for (int v = 0; v < NV; v++) {                                          \\
                T *out = c + i * ldc + v * VL;                                      \\
                vec sum = acc[i][v];                                                \\
                if (!overwrite) {                                                   \\
                    vec old;                                                        \\
                    memcpy(&old, out, sizeof old);                                  \\
                    sum += old;                                                     \\
                }                                                                   \\
                memcpy(out, &sum, sizeof sum);                                      \\
            }                                                                       \\
        }                                                                           \\
    }
    #else
    /* Portable fallback (no GNU vector extensions): plain loops over a local
       tile that the compiler may vectorise. */
    #define PYCONV_GEMM_UKERNEL(NAME, T, NV)                                        \\
    static void NAME(ptrdiff_t kc, const T *PYCONV_RESTRICT ap,                     \\
                     const T *PYCONV_RESTRICT bp, T *PYCONV_RESTRICT c,             \\
                     ptrdiff_t ldc, int overwrite)                                  \\
    {                                                                               \\
        enum { NR = NV * PYCONV_GEMM_VBYTES / sizeof(T), MR = PYCONV_GEMM_MR };     \\
        T acc[PYCONV_GEMM_MR][NV * PYCONV_GEMM_VBYTES / sizeof(T)];                 \\
        for (int i = 0; i < MR; i++) for (int j = 0; j < NR; j++) acc[i][j] = 0;    \\
        for (ptrdiff_t p = 0; p < kc; p++) {                                        \\
            for (int i = 0; i < MR; i++) {                                          \\
                T a = ap[i];                                                        \\
                for (int j = 0; j < NR; j++) acc[i][j] += a * bp[j];                \\
            }                                                                       \\
            ap += MR;                                                               \\
            bp += NR;                                                               \\
        }                                                                           \\
        for (int i = 0; i < MR; i++)                                                \\
            for (int j = 0; j < NR; j++)                                            \\
                c[i * ldc + j] = overwrite ? acc[i][j] : c[i * ldc + j] + acc[i][j]; \\
    }
    #endif

    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f32_1, float, 1)
    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f32_2, float, 2)
    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f64_1, double, 1)
    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f64_2, double, 2)
    #if PYCONV_GEMM_NV >= 3
    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f32_3, float, 3)
    PYCONV_GEMM_UKERNEL(pyconv_gemm_ukernel_f64_3, double, 3)
    #endif

    /* Column kernels: the last 1-8 columns of B (1-4 where the 5-8 column kernels are not built; fewer
       than PAD_COLUMNS_FROM) against the A panels of
       an mc-row block (consecutive MR-row panels, kc * MR elements apart):
       c[0:rows, 0:cols] (=|+=) sum_p A[i, p] * bp[p*width + j], width = cols
       rounded up to 4 (zero-padded).  Every output is one FMA chain over p
       in order, as in the micro-kernel, so a column gets the same bits
       whichever kernel computes it.

       One column (a matrix-vector product: a 1x1 convolution over one
       position, e.g. an exported linear layer at batch 1, or a Winograd task's
       last tile) runs with the rows in the vector instead:
       PYCONV_GEMM_VBYTES vectors of VL / MR whole panels, four vectors at a
       time, so four FMA chains are in flight (1000 x 1280 as a 1x1 conv, 1
       thread: 0.32 -> 0.16 ms).  Same vector type and
       `acc += scalar * vector` form as the micro-kernel, so the compiler
       contracts both into FMAs or neither (GCC 12's znver3 tuning splits
       256-bit FMA chains, not 512-bit ones).  GNU C, VL a multiple of MR. */
    #if defined(__GNUC__) && PYCONV_GEMM_VBYTES / 4 % PYCONV_GEMM_MR == 0 \
        && PYCONV_GEMM_VBYTES / 8 % PYCONV_GEMM_MR == 0
    #define PYCONV_GEMM_GEMV(NAME, T, NVEC)                                         \
    static inline void NAME(ptrdiff_t kc, ptrdiff_t rows, const T *PYCONV_RESTRICT ap, \
                            const T *PYCONV_RESTRICT bp, ptrdiff_t width,           \
                            T *PYCONV_RESTRICT c, ptrdiff_t ldc, int overwrite)     \
    {                                                                               \
        typedef T vec __attribute__((vector_size(PYCONV_GEMM_VBYTES)));             \
        enum { MR = PYCONV_GEMM_MR, VL = PYCONV_GEMM_VBYTES / sizeof(T),            \
               PANELS = NVEC * VL / MR };                                           \
        ptrdiff_t panels = (rows + MR - 1) / MR;                                    \
        vec acc[NVEC], a[NVEC];                                                     \
        _Pragma("GCC unroll 4")                                                     \
        for (int v = 0; v < NVEC; v++) acc[v] = a[v] = (vec){0};                    \
        for (ptrdiff_t p = 0; p < kc; p++) {                                        \
            _Pragma("GCC unroll 8")                                                 \
            for (int q = 0; q < PANELS; q++)                                        \
                if (q < panels)                                                     \
                    memcpy((T *)&a[q * MR / VL] + q * MR % VL, ap + q * kc * MR + p * MR, \
                           MR * sizeof(T));                                         \
            T b = bp[p * width];                                                    \
            _Pragma("GCC unroll 4")                                                 \
            for (int v = 0; v < NVEC; v++) acc[v] += b * a[v];                      \
        }                                                                           \
        for (ptrdiff_t i = 0; i < rows && i < NVEC * VL; i++) {                     \
            T sum = acc[i / VL][i % VL];                                            \
            c[i * ldc] = overwrite ? sum : c[i * ldc] + sum;                        \
        }                                                                           \
    }
    PYCONV_GEMM_GEMV(pyconv_gemm_gemv4_f32, float, 4)
    PYCONV_GEMM_GEMV(pyconv_gemm_gemv1_f32, float, 1)
    PYCONV_GEMM_GEMV(pyconv_gemm_gemv4_f64, double, 4)
    PYCONV_GEMM_GEMV(pyconv_gemm_gemv1_f64, double, 1)
    /* Five to eight columns (a batch of up to 8 through a linear layer): a panel's MR rows in one
       vector, NP whole panels at a time, all eight columns of B (zero-padded to 8), so a 9216 -> 4096
       linear layer at batch 8 reads its weights at memory speed (2 threads: 6.7 -> 5.8 ms) where a
       zero-padded vector of columns through the micro-kernel left half of every FMA idle.  Not
       inlined: inlined into the column kernel it made the one-column GEMV above 2x slower. */
    #define PYCONV_GEMM_GEMV8(NAME, T, NP)                                          \
    static __attribute__((noinline)) void NAME(ptrdiff_t kc, ptrdiff_t rows, ptrdiff_t cols, \
                            const T *PYCONV_RESTRICT ap, const T *PYCONV_RESTRICT bp, \
                            T *PYCONV_RESTRICT c, ptrdiff_t ldc, int overwrite)     \
    {                                                                               \
        typedef T pvec __attribute__((vector_size(PYCONV_GEMM_MR * sizeof(T))));    \
        enum { MR = PYCONV_GEMM_MR };                                               \
        pvec acc[8][NP], a[NP];                                                     \
        _Pragma("GCC unroll 8")                                                     \
        for (int j = 0; j < 8; j++)                                                 \
            for (int q = 0; q < NP; q++) acc[j][q] = (pvec){0};                     \
        for (ptrdiff_t p = 0; p < kc; p++) {                                        \
            for (int q = 0; q < NP; q++)                                            \
                memcpy(&a[q], ap + q * kc * MR + p * MR, sizeof(pvec));             \
            _Pragma("GCC unroll 8")                                                 \
            for (int j = 0; j < 8; j++) {                                           \
                T b = bp[p * 8 + j];                                                \
                for (int q = 0; q < NP; q++) acc[j][q] += b * a[q];                 \
            }                                                                       \
        }                                                                           \
        for (int j = 0; j < cols; j++)                                              \
            for (ptrdiff_t i = 0; i < rows && i < NP * MR; i++) {                   \
                T sum = acc[j][i / MR][i % MR];                                     \
                c[i * ldc + j] = overwrite ? sum : c[i * ldc + j] + sum;            \
            }                                                                       \
    }
    PYCONV_GEMM_GEMV8(pyconv_gemm_gemv8x3_f32, float, 3)
    PYCONV_GEMM_GEMV8(pyconv_gemm_gemv8x1_f32, float, 1)
    PYCONV_GEMM_GEMV8(pyconv_gemm_gemv8x3_f64, double, 3)
    PYCONV_GEMM_GEMV8(pyconv_gemm_gemv8x1_f64, double, 1)
    #define PYCONV_GEMM_EIGHT_COLUMNS(T, SUFFIX)                                    \
        if (cols > 4) {                                                             \
            ptrdiff_t i0 = 0;                                                       \
            for (; i0 + 3 * MR <= rows; i0 += 3 * MR)                               \
                pyconv_gemm_gemv8x3_##SUFFIX(kc, 3 * MR, cols, ap + i0 * kc, bp,    \
                                             c + i0 * ldc, ldc, overwrite);         \
            for (; i0 < rows; i0 += MR)                                             \
                pyconv_gemm_gemv8x1_##SUFFIX(kc, rows - i0, cols, ap + i0 * kc, bp, \
                                             c + i0 * ldc, ldc, overwrite);         \
            return;                                                                 \
        }
    /* Leftover columns from this many on go zero-padded to a whole vector through the micro-kernel. */
    #define PYCONV_GEMM_PAD_COLUMNS_FROM 9
    #define PYCONV_GEMM_ONE_COLUMN(T, SUFFIX)                                       \
        if (cols == 1) {                                                            \
            enum { VL = PYCONV_GEMM_VBYTES / sizeof(T) };                           \
            ptrdiff_t i0 = 0;                                                       \
            for (; i0 + 4 * VL <= rows; i0 += 4 * VL)                               \
                pyconv_gemm_gemv4_##SUFFIX(kc, 4 * VL, ap + i0 * kc, bp, width,     \
                                           c + i0 * ldc, ldc, overwrite);           \
            for (; i0 < rows; i0 += VL)                                             \
                pyconv_gemm_gemv1_##SUFFIX(kc, rows - i0, ap + i0 * kc, bp, width,  \
                                           c + i0 * ldc, ldc, overwrite);           \
            return;                                                                 \
        }
    #else
    #define PYCONV_GEMM_ONE_COLUMN(T, SUFFIX)
    #define PYCONV_GEMM_EIGHT_COLUMNS(T, SUFFIX)
    #define PYCONV_GEMM_PAD_COLUMNS_FROM 5
    #endif


    /* Any cols: four columns at a time, vectorised along the MR rows of a
       panel, so a few leftover columns cost a few FMAs instead of a whole
       vector tile. */
    #define PYCONV_GEMM_COLUMNS(NAME, T, SUFFIX)                                    \
    static void NAME(ptrdiff_t kc, ptrdiff_t rows, ptrdiff_t cols,                  \
                     const T *PYCONV_RESTRICT ap, const T *PYCONV_RESTRICT bp,      \
                     T *PYCONV_RESTRICT c, ptrdiff_t ldc, int overwrite)            \
    {                                                                               \
        enum { MR = PYCONV_GEMM_MR };                                               \
        ptrdiff_t width = (cols + 3) / 4 * 4;                                       \
        PYCONV_GEMM_ONE_COLUMN(T, SUFFIX)                                           \
        PYCONV_GEMM_EIGHT_COLUMNS(T, SUFFIX)                                        \
        for (ptrdiff_t i0 = 0; i0 < rows; i0 += MR, ap += kc * MR, c += MR * ldc)   \
        for (ptrdiff_t j0 = 0; j0 < cols; j0 += 4) {                                \
            T acc[4][PYCONV_GEMM_MR];                                               \
            for (int jj = 0; jj < 4; jj++)                                          \
                for (int i = 0; i < MR; i++) acc[jj][i] = 0;                        \
            for (ptrdiff_t p = 0; p < kc; p++) {                                    \
                const T *a = ap + p * MR, *b = bp + p * width + j0;                 \
                _Pragma("GCC unroll 4")                                             \
                for (int jj = 0; jj < 4; jj++)                                      \
                    for (int i = 0; i < MR; i++) acc[jj][i] += a[i] * b[jj];        \
            }                                                                       \
            for (int jj = 0; jj < 4 && j0 + jj < cols; jj++)                        \
                for (ptrdiff_t i = 0; i < MR && i0 + i < rows; i++) {               \
                    T *out = c + i * ldc + j0 + jj;                                 \
                    *out = overwrite ? acc[jj][i] : *out + acc[jj][i];              \
                }                                                                   \
        }                                                                           \
    }
    PYCONV_GEMM_COLUMNS(pyconv_gemm_columns_f32, float, f32)
    PYCONV_GEMM_COLUMNS(pyconv_gemm_columns_f64, double, f64)

    /* The micro-kernel for a panel of nv vectors (1 <= nv <= PYCONV_GEMM_NV). */
    static inline void pyconv_gemm_ukernel_f32(int nv, ptrdiff_t kc, const float *ap,
                                               const float *bp, float *c, ptrdiff_t ldc,
                                               int overwrite)
    {
        #if PYCONV_GEMM_NV >= 3
        if (nv == 3) { pyconv_gemm_ukernel_f32_3(kc, ap, bp, c, ldc, overwrite); return; }
        #endif
        if (nv == 2) pyconv_gemm_ukernel_f32_2(kc, ap, bp, c, ldc, overwrite);
        else pyconv_gemm_ukernel_f32_1(kc, ap, bp, c, ldc, overwrite);
    }

    static inline void pyconv_gemm_ukernel_f64(int nv, ptrdiff_t kc, const double *ap,
                                               const double *bp, double *c, ptrdiff_t ldc,
                                               int overwrite)
    {
        #if PYCONV_GEMM_NV >= 3
        if (nv == 3) { pyconv_gemm_ukernel_f64_3(kc, ap, bp, c, ldc, overwrite); return; }
        #endif
        if (nv == 2) pyconv_gemm_ukernel_f64_2(kc, ap, bp, c, ldc, overwrite);
        else pyconv_gemm_ukernel_f64_1(kc, ap, bp, c, ldc, overwrite);
    }
    """
    enum:
        GEMM_MR "PYCONV_GEMM_MR"
        GEMM_NV "PYCONV_GEMM_NV"
        GEMM_VL_F32 "PYCONV_GEMM_VL_F32"
        GEMM_VL_F64 "PYCONV_GEMM_VL_F64"
        GEMM_TILE "PYCONV_GEMM_TILE"
        GEMM_ALIGN "PYCONV_GEMM_ALIGN"
        GEMM_KC "PYCONV_GEMM_KC"
        GEMM_MC "PYCONV_GEMM_MC"
        GEMM_NC "PYCONV_GEMM_NC"
    void ukernel_f32 "pyconv_gemm_ukernel_f32"(int nv, Py_ssize_t kc, const float* ap, const float* bp,
                                               float* c, Py_ssize_t ldc, int overwrite) noexcept nogil
    void ukernel_f64 "pyconv_gemm_ukernel_f64"(int nv, Py_ssize_t kc, const double* ap, const double* bp,
                                               double* c, Py_ssize_t ldc, int overwrite) noexcept nogil
    void columns_f32 "pyconv_gemm_columns_f32"(Py_ssize_t kc, Py_ssize_t rows, Py_ssize_t cols,
                                               const float* ap, const float* bp, float* c,
                                               Py_ssize_t ldc, int overwrite) noexcept nogil
    void columns_f64 "pyconv_gemm_columns_f64"(Py_ssize_t kc, Py_ssize_t rows, Py_ssize_t cols,
                                               const double* ap, const double* bp, double* c,
                                               Py_ssize_t ldc, int overwrite) noexcept nogil


cdef inline Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t multiple) noexcept nogil:
    return (x + multiple - 1) // multiple * multiple


cdef inline Py_ssize_t vector_length(const floating* tag) noexcept nogil:
    if floating is float:
        return GEMM_VL_F32
    else:
        return GEMM_VL_F64


cdef inline void ukernel(int nv, Py_ssize_t kc, const floating* ap, const floating* bp, floating* c,
                         Py_ssize_t ldc, bint overwrite) noexcept nogil:
    if floating is float:
        ukernel_f32(nv, kc, ap, bp, c, ldc, overwrite)
    else:
        ukernel_f64(nv, kc, ap, bp, c, ldc, overwrite)


cdef inline void columns(Py_ssize_t kc, Py_ssize_t rows, Py_ssize_t cols, const floating* ap,
                         const floating* bp, floating* c, Py_ssize_t ldc, bint overwrite) noexcept nogil:
    if floating is float:
        columns_f32(kc, rows, cols, ap, bp, c, ldc, overwrite)
    else:
        columns_f64(kc, rows, cols, ap, bp, c, ldc, overwrite)


cdef extern from *:
    # The last < VL columns of B: from this many on, zero-padded to a whole vector for the
    # micro-kernel (its tile written back column by column); fewer go through the column kernels
    # (5 where the rows-in-vector kernels for 5-8 columns are not built: 1 thread, 1024 x 512 times
    # 512 x (48 + c), c = 4 columns cost 0.13 ms in the 4-column kernel, 8 columns 0.23 ms, a whole
    # vector 0.15 ms).
    enum:
        PAD_COLUMNS_FROM "PYCONV_GEMM_PAD_COLUMNS_FROM"


cdef inline Py_ssize_t packed_b_size(Py_ssize_t n, Py_ssize_t k, Py_ssize_t nr) noexcept nogil:
    # Full panels, a panel of whole vectors, a last panel padded to 4 or to a whole vector: at
    # most n + NR + VL columns.
    return min(k, <Py_ssize_t>GEMM_KC) * (round_up(min(n, <Py_ssize_t>GEMM_NC), nr) + GEMM_VL_F32)


cdef Py_ssize_t gemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t packed_a = min(k, <Py_ssize_t>GEMM_KC) * min(round_up(m, GEMM_MR), <Py_ssize_t>GEMM_MC)
    cdef Py_ssize_t f32 = 4 * (packed_b_size(n, k, GEMM_NV * GEMM_VL_F32) + packed_a)
    cdef Py_ssize_t f64 = 8 * (packed_b_size(n, k, GEMM_NV * GEMM_VL_F64) + packed_a)
    return max(f32, f64) + 2 * GEMM_ALIGN


cdef Py_ssize_t gemm_packed_a_size(Py_ssize_t m, Py_ssize_t k) noexcept nogil:
    return round_up(m, GEMM_MR) * k


cdef inline void* align_up(void* p) noexcept nogil:
    return <void*>((<size_t>p + GEMM_ALIGN - 1) // GEMM_ALIGN * GEMM_ALIGN)


cdef void pack_a_block(Py_ssize_t mc, Py_ssize_t kc, const floating* a, Py_ssize_t lda,
                       floating* packed) noexcept nogil:
    # a[0:mc, 0:kc] -> MR-row panels of kc * MR elements, each p-major
    # (packed[p * MR + i]), the last one zero-padded to MR rows.
    cdef Py_ssize_t panel, i0, i, p, rows
    cdef const floating* row
    for panel in range((mc + GEMM_MR - 1) // GEMM_MR):
        i0 = panel * GEMM_MR
        rows = min(<Py_ssize_t>GEMM_MR, mc - i0)
        for i in range(rows):
            row = a + (i0 + i) * lda
            for p in range(kc):
                packed[p * GEMM_MR + i] = row[p]
        for i in range(rows, GEMM_MR):
            for p in range(kc):
                packed[p * GEMM_MR + i] = 0
        packed += kc * GEMM_MR


cdef void gemm_pack_a(Py_ssize_t m, Py_ssize_t k, const floating* a, Py_ssize_t lda,
                      floating* packed_a) noexcept nogil:
    # For each KC block of k, at offset pc * round_up(m, MR): pack_a_block of all m rows.
    cdef Py_ssize_t mp = round_up(m, GEMM_MR), pc_block, pc
    for pc_block in range((k + GEMM_KC - 1) // GEMM_KC):
        pc = pc_block * GEMM_KC
        pack_a_block(m, min(<Py_ssize_t>GEMM_KC, k - pc), a + pc, lda, packed_a + pc * mp)


cdef inline void copy_full_panel_row(floating* dst, const floating* src) noexcept nogil:
    # NV * VL elements: a constant trip count, so the compiler emits plain vector moves.
    cdef Py_ssize_t j
    if floating is float:
        for j in range(GEMM_NV * GEMM_VL_F32):
            dst[j] = src[j]
    else:
        for j in range(GEMM_NV * GEMM_VL_F64):
            dst[j] = src[j]


cdef void pack_b_panel(Py_ssize_t kc, Py_ssize_t cols, Py_ssize_t width, const floating* b,
                       Py_ssize_t ldb, floating* packed) noexcept nogil:
    # b[0:kc, 0:cols] -> packed[p * width + j], zero-padded to width columns.
    cdef Py_ssize_t p, j
    for p in range(kc):
        for j in range(cols):
            packed[p * width + j] = b[p * ldb + j]
        for j in range(cols, width):
            packed[p * width + j] = 0


cdef void pack_b_block(Py_ssize_t kc, Py_ssize_t nc, const floating* b, Py_ssize_t ldb,
                       floating* packed) noexcept nogil:
    # b[0:kc, 0:nc] -> panels of NR = NV * VL columns, each p-major (packed[p * NR + j]),
    # then the rest: a panel of whole vectors, then a panel of the last < VL columns
    # padded to a whole vector (from PAD_COLUMNS_FROM columns) or to a multiple of 4 (see
    # macro_kernel).
    cdef Py_ssize_t vl = vector_length(packed), nr = GEMM_NV * vl
    cdef Py_ssize_t full = nc // nr, rest = nc - full * nr, vectors = rest // vl * vl, panel, p
    for panel in range(full):
        for p in range(kc):
            copy_full_panel_row(packed + p * nr, b + p * ldb + panel * nr)
        packed += kc * nr
    b += full * nr
    if vectors:
        pack_b_panel(kc, vectors, vectors, b, ldb, packed)
        packed += kc * vectors
        b += vectors
    if rest - vectors >= PAD_COLUMNS_FROM:
        pack_b_panel(kc, rest - vectors, vl, b, ldb, packed)
    elif rest > vectors:
        pack_b_panel(kc, rest - vectors, round_up(rest - vectors, 4), b, ldb, packed)


cdef void partial_tile(int nv, Py_ssize_t kc, const floating* ap, const floating* bp, floating* c,
                       Py_ssize_t ldc, Py_ssize_t rows, Py_ssize_t cols, bint overwrite) noexcept nogil:
    # A tile with fewer than MR rows or fewer than nv * VL columns: compute the whole tile into a
    # local buffer, write its rows x cols corner.
    cdef floating tile[GEMM_TILE]
    cdef Py_ssize_t width = nv * vector_length(tile), i, j
    ukernel(nv, kc, ap, bp, tile, width, True)
    for i in range(rows):
        if overwrite:
            for j in range(cols):
                c[i * ldc + j] = tile[i * width + j]
        else:
            for j in range(cols):
                c[i * ldc + j] += tile[i * width + j]


cdef void macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc, const floating* packed_a,
                       const floating* packed_b, floating* c, Py_ssize_t ldc,
                       bint overwrite) noexcept nogil:
    # c[0:mc, 0:nc] (=|+=) packed A block (mc x kc) @ packed B block (kc x nc), panel by
    # panel as pack_b_block laid them out: NV-vector panels, one panel of fewer whole
    # vectors, then the last < VL columns: a zero-padded vector through the micro-kernel
    # (PAD_COLUMNS_FROM columns or more) or the column kernels.  Every output is the same FMA
    # chain over p in any of them.
    cdef Py_ssize_t vl = vector_length(c), nr = GEMM_NV * vl
    cdef Py_ssize_t jr = 0, ir_panel, ir, cols, rows
    cdef int nv
    while jr < nc:
        cols = min(nr, nc - jr)
        nv = <int>(cols // vl)
        if nv == 0 and cols < PAD_COLUMNS_FROM:
            columns(kc, mc, cols, packed_a, packed_b + jr * kc, c + jr, ldc, overwrite)
            return
        if nv == 0:
            nv = 1      # the padded last vector
        else:
            cols = nv * vl
        for ir_panel in range((mc + GEMM_MR - 1) // GEMM_MR):
            ir = ir_panel * GEMM_MR
            rows = min(<Py_ssize_t>GEMM_MR, mc - ir)
            if rows == GEMM_MR and cols == nv * vl:
                ukernel(nv, kc, packed_a + ir * kc, packed_b + jr * kc, c + ir * ldc + jr, ldc, overwrite)
            else:
                partial_tile(nv, kc, packed_a + ir * kc, packed_b + jr * kc, c + ir * ldc + jr, ldc,
                             rows, cols, overwrite)
        jr += cols


cdef void packed_driver(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t lda,
                        const floating* packed_a, Py_ssize_t packed_rows, Py_ssize_t row0,
                        const floating* b, Py_ssize_t ldb, floating* c,
                        Py_ssize_t ldc, bint accumulate, void* workspace) noexcept nogil:
    # The loops around the micro-kernel.  A comes packed (packed_a, laid out by
    # gemm_pack_a for round_up(packed_rows, MR) rows, of which rows row0 .. row0 + m - 1 are
    # multiplied, row0 a multiple of MR) or is packed here block by block (packed_a == NULL).
    cdef Py_ssize_t nr = GEMM_NV * vector_length(c), mp = round_up(packed_rows, GEMM_MR)
    cdef Py_ssize_t jc_block, pc_block, ic_block, jc, pc, ic, nc, kc, mc, i
    cdef floating* packed_b = <floating*>align_up(workspace)
    cdef floating* a_block = <floating*>align_up(packed_b + packed_b_size(n, k, nr))
    cdef bint overwrite
    if m <= 0 or n <= 0:
        return
    if k <= 0:
        if not accumulate:
            for i in range(m):
                memset(c + i * ldc, 0, n * sizeof(floating))
        return
    for jc_block in range((n + GEMM_NC - 1) // GEMM_NC):
        jc = jc_block * GEMM_NC
        nc = min(<Py_ssize_t>GEMM_NC, n - jc)
        for pc_block in range((k + GEMM_KC - 1) // GEMM_KC):
            pc = pc_block * GEMM_KC
            kc = min(<Py_ssize_t>GEMM_KC, k - pc)
            overwrite = pc == 0 and not accumulate
            pack_b_block(kc, nc, b + pc * ldb + jc, ldb, packed_b)
            for ic_block in range((m + GEMM_MC - 1) // GEMM_MC):
                ic = ic_block * GEMM_MC
                mc = min(<Py_ssize_t>GEMM_MC, m - ic)
                if packed_a == NULL:
                    pack_a_block(mc, kc, a + ic * lda + pc, lda, a_block)
                    macro_kernel(mc, nc, kc, a_block, packed_b, c + ic * ldc + jc, ldc, overwrite)
                else:
                    macro_kernel(mc, nc, kc, packed_a + pc * mp + (row0 + ic) * kc, packed_b,
                                 c + ic * ldc + jc, ldc, overwrite)


cdef void gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t lda,
               const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc, bint accumulate,
               void* workspace) noexcept nogil:
    packed_driver(m, n, k, a, lda, NULL, 0, 0, b, ldb, c, ldc, accumulate, workspace)


cdef void gemm_prepacked(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* packed_a,
                         const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                         bint accumulate, void* workspace) noexcept nogil:
    packed_driver(m, n, k, NULL, 0, packed_a, m, 0, b, ldb, c, ldc, accumulate, workspace)


cdef void gemm_prepacked_rows(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* packed_a,
                              Py_ssize_t packed_rows, Py_ssize_t row0, const floating* b, Py_ssize_t ldb,
                              floating* c, Py_ssize_t ldc, bint accumulate, void* workspace) noexcept nogil:
    packed_driver(m, n, k, NULL, 0, packed_a, packed_rows, row0, b, ldb, c, ldc, accumulate, workspace)


# ---- BLAS, the measured alternative (tests and bench only) -----------------
ctypedef void (*sgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                           float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                           int* ldc) noexcept nogil
ctypedef void (*dgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                           double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                           int* ldc) noexcept nogil
cdef sgemm_ptr blas_sgemm = NULL
cdef dgemm_ptr blas_dgemm = NULL


def load_blas():
    """Load sgemm/dgemm from scipy.linalg.cython_blas; False when scipy is not installed.

    Only implementation="blas" of the def wrappers uses them.
    """
    global blas_sgemm, blas_dgemm
    if blas_sgemm == NULL:
        try:
            from scipy.linalg import cython_blas
        except ImportError:
            return False
        capsules = cython_blas.__pyx_capi__
        blas_sgemm = <sgemm_ptr>PyCapsule_GetPointer(capsules["sgemm"], PyCapsule_GetName(capsules["sgemm"]))
        blas_dgemm = <dgemm_ptr>PyCapsule_GetPointer(capsules["dgemm"], PyCapsule_GetName(capsules["dgemm"]))
    return True


cdef void gemm_blas(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t lda,
                    const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                    bint accumulate) noexcept nogil:
    # As gemm, through BLAS (load_blas() first).  Row-major C = A @ B is
    # column-major C^T = B^T @ A^T: the operands swap.
    cdef char no_trans = b"N"
    cdef floating one = 1
    cdef floating beta = 1 if accumulate else 0
    cdef int m_ = <int>m, n_ = <int>n, k_ = <int>k, lda_ = <int>lda, ldb_ = <int>ldb, ldc_ = <int>ldc
    cdef Py_ssize_t i
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # BLAS rejects lda < 1 when k == 0
        if not accumulate:
            for i in range(m):
                memset(c + i * ldc, 0, n * sizeof(floating))
        return
    if floating is float:
        blas_sgemm(&no_trans, &no_trans, &n_, &m_, &k_, &one, <float*>b, &ldb_, <float*>a, &lda_,
                   &beta, c, &ldc_)
    else:
        blas_dgemm(&no_trans, &no_trans, &n_, &m_, &k_, &one, <double*>b, &ldb_, <double*>a, &lda_,
                   &beta, c, &ldc_)


# ---- def wrappers (tests, bench) ------------------------------------------
cdef inline Py_ssize_t leading_dimension(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t stride,
                                         Py_ssize_t itemsize) noexcept nogil:
    # A single row may carry any stride: its leading dimension is then its width.
    if rows <= 1:
        return max(cols, 1)
    return stride // itemsize


cdef bint use_blas(implementation) except -1:
    if implementation == "packed":
        return False
    if implementation == "blas":
        if not load_blas():
            raise ImportError("implementation='blas' needs scipy")
        return True
    raise ValueError(f"implementation must be 'packed' or 'blas', got {implementation!r}")


def block_sizes():
    """The build's blocking: dict of MR, NR (float32, float64), KC, MC, NC and the vector bytes."""
    return {"MR": GEMM_MR, "NR_float32": GEMM_NV * GEMM_VL_F32, "NR_float64": GEMM_NV * GEMM_VL_F64,
            "KC": GEMM_KC, "MC": GEMM_MC, "NC": GEMM_NC, "vector_bytes": 4 * GEMM_VL_F32}


def workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k):
    """Bytes of scratch one gemm call on (m, n, k) needs (either dtype)."""
    return gemm_workspace_size(m, n, k)


def packed_a_size(Py_ssize_t m, Py_ssize_t k):
    """Elements of the packed copy of an (m, k) A that pack_a writes."""
    return gemm_packed_a_size(m, k)


def pack_a(const floating[:, ::view.contiguous] a, floating[::1] packed_a):
    """Pack a (m, k) for the *_prepacked functions into packed_a (packed_a_size(m, k)
    elements, same dtype, allocated by the caller).  No checks."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1]
    if m == 0 or k == 0:
        return
    with nogil:
        gemm_pack_a(m, k, &a[0, 0], leading_dimension(m, k, a.strides[0], sizeof(floating)),
                    &packed_a[0])


def matmul(const floating[:, ::view.contiguous] a, const floating[:, ::view.contiguous] b,
           floating[:, ::view.contiguous] c, bint accumulate=False, implementation="packed"):
    """c (=|+=) a @ b, one thread; implementation "packed" (gemm) or "blas".

    a (m, k), b (k, n), c (m, n): same dtype, rows contiguous, any row stride
    (sub-blocks of larger arrays); c allocated by the caller and not
    overlapping a or b.  No checks.
    """
    cdef bint blas = use_blas(implementation)
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef Py_ssize_t lda = leading_dimension(m, k, a.strides[0], sizeof(floating))
    cdef Py_ssize_t ldb = leading_dimension(k, n, b.strides[0], sizeof(floating))
    cdef Py_ssize_t ldc = leading_dimension(m, n, c.strides[0], sizeof(floating))
    cdef void* workspace = malloc(gemm_workspace_size(m, n, k))
    if workspace == NULL:
        raise MemoryError()
    if m and n:
        with nogil:
            if blas:
                gemm_blas(m, n, k, &a[0, 0] if k else NULL, lda, &b[0, 0] if k else NULL, ldb,
                          &c[0, 0], ldc, accumulate)
            else:
                gemm(m, n, k, &a[0, 0] if k else NULL, lda, &b[0, 0] if k else NULL, ldb,
                     &c[0, 0], ldc, accumulate, workspace)
    free(workspace)


def matmul_prepacked(const floating[::1] packed_a, const floating[:, ::view.contiguous] b,
                     floating[:, ::view.contiguous] c, bint accumulate=False):
    """c (=|+=) A @ b, one thread, A (m, k) packed by pack_a; as matmul otherwise."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = b.shape[0]
    cdef Py_ssize_t ldb = leading_dimension(k, n, b.strides[0], sizeof(floating))
    cdef Py_ssize_t ldc = leading_dimension(m, n, c.strides[0], sizeof(floating))
    cdef void* workspace = malloc(gemm_workspace_size(m, n, k))
    if workspace == NULL:
        raise MemoryError()
    if m and n:
        with nogil:
            gemm_prepacked(m, n, k, &packed_a[0] if k else NULL, &b[0, 0] if k else NULL, ldb,
                           &c[0, 0], ldc, accumulate, workspace)
    free(workspace)


cdef struct BatchJob:
    # One batched_matmul(_prepacked) call, for parallel_for: task i computes c[i].
    bint double_precision, blas, prepacked, accumulate
    Py_ssize_t m, n, k, lda, ldb, ldc
    const char* a                   # a[0] (prepacked: packed_a[0]); a + i * a_stride is item i
    const char* b
    char* c
    Py_ssize_t a_stride, b_stride, c_stride     # bytes between items
    char* workspace                 # one workspace_size-byte piece per thread
    Py_ssize_t workspace_size


cdef void _batch_item(const floating* a, const floating* b, floating* c, const BatchJob* job,
                      void* workspace) noexcept nogil:
    if job.blas:
        gemm_blas(job.m, job.n, job.k, a, job.lda, b, job.ldb, c, job.ldc, job.accumulate)
    elif job.prepacked:
        gemm_prepacked(job.m, job.n, job.k, a, b, job.ldb, c, job.ldc, job.accumulate, workspace)
    else:
        gemm(job.m, job.n, job.k, a, job.lda, b, job.ldb, c, job.ldc, job.accumulate, workspace)


cdef void _batch_task(void* context, Py_ssize_t i, int thread) noexcept nogil:
    cdef const BatchJob* job = <const BatchJob*>context
    cdef const char* a = job.a + i * job.a_stride if job.k else NULL
    cdef const char* b = job.b + i * job.b_stride if job.k else NULL
    cdef char* c = job.c + i * job.c_stride
    cdef void* workspace = job.workspace + thread * job.workspace_size
    if job.double_precision:
        _batch_item(<const double*>a, <const double*>b, <double*>c, job, workspace)
    else:
        _batch_item(<const float*>a, <const float*>b, <float*>c, job, workspace)


cdef int _run_batch(BatchJob* job, Py_ssize_t batch, int num_threads) except -1:
    # Runs the tasks of job with one workspace per thread (at most batch threads).
    num_threads = <int>max(1, min(<Py_ssize_t>num_threads, batch))
    job.workspace_size = round_up(gemm_workspace_size(job.m, job.n, job.k), GEMM_ALIGN)
    job.workspace = <char*>malloc(job.workspace_size * num_threads)
    if job.workspace == NULL:
        raise MemoryError()
    with nogil:
        parallel_for(_batch_task, job, batch, num_threads)
    free(job.workspace)
    return 0


def batched_matmul(const floating[:, :, ::view.contiguous] a, const floating[:, :, ::view.contiguous] b,
                   floating[:, :, ::view.contiguous] c, bint accumulate, int num_threads,
                   implementation="packed"):
    """c[i] (=|+=) a[i] @ b[i] for every i: one gemm call per i, each a task of
    parallel.pxd's parallel_for, as the conv kernels call it.

    a (batch, m, k), b (batch, k, n), c (batch, m, n): same dtype, rows
    contiguous, any other strides; c allocated by the caller.  One workspace
    per thread, allocated once.  implementation as in matmul.  No checks.
    """
    cdef BatchJob job
    cdef Py_ssize_t batch = c.shape[0], m = c.shape[1], n = c.shape[2], k = a.shape[2]
    job.blas = use_blas(implementation)
    if batch == 0 or m == 0 or n == 0:
        return
    job.double_precision = floating is double
    job.prepacked = False
    job.accumulate = accumulate
    job.m, job.n, job.k = m, n, k
    job.lda = leading_dimension(m, k, a.strides[1], sizeof(floating))
    job.ldb = leading_dimension(k, n, b.strides[1], sizeof(floating))
    job.ldc = leading_dimension(m, n, c.strides[1], sizeof(floating))
    job.a = <const char*>&a[0, 0, 0] if k else NULL
    job.b = <const char*>&b[0, 0, 0] if k else NULL
    job.c = <char*>&c[0, 0, 0]
    job.a_stride, job.b_stride, job.c_stride = a.strides[0], b.strides[0], c.strides[0]
    _run_batch(&job, batch, num_threads)


def batched_matmul_prepacked(const floating[:, ::1] packed_a, Py_ssize_t m,
                             const floating[:, :, ::view.contiguous] b,
                             floating[:, :, ::view.contiguous] c, bint accumulate, int num_threads):
    """c[i] (=|+=) A[i] @ b[i], A[i] (m, k) packed by pack_a into packed_a[i]; one
    gemm_prepacked call per i (a parallel_for task), as batched_matmul.  No checks."""
    cdef BatchJob job
    cdef Py_ssize_t batch = c.shape[0], n = c.shape[2], k = b.shape[1]
    if batch == 0 or m == 0 or n == 0:
        return
    job.double_precision = floating is double
    job.blas = False
    job.prepacked = True
    job.accumulate = accumulate
    job.m, job.n, job.k = m, n, k
    job.lda = 0
    job.ldb = leading_dimension(k, n, b.strides[1], sizeof(floating))
    job.ldc = leading_dimension(m, n, c.strides[1], sizeof(floating))
    job.a = <const char*>&packed_a[0, 0] if k else NULL
    job.b = <const char*>&b[0, 0, 0] if k else NULL
    job.c = <char*>&c[0, 0, 0]
    job.a_stride, job.b_stride, job.c_stride = packed_a.strides[0], b.strides[0], c.strides[0]
    _run_batch(&job, batch, num_threads)
