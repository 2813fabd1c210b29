"""Winograd convolution F(m x m, 3 x 3), m = 2 or 4: 2-D, 3x3 kernel, stride 1, dilation 1; and with
one-row tiles F(1 x m, 1 x 3): a 1 x 3 kernel (a 1-D convolution seen as H = 1), where every transform
below is its one-dimensional half (alpha points instead of alpha^2).

With alpha = m + 2, each m x m output tile of one channel is
    Y = A^T [ sum_c U[c] (.) (B^T d_c B) ] A,        U[k, c] = G g[k, c] G^T
(d_c: the alpha x alpha input tile of channel c), i.e. for each of the
alpha^2 transform points e a GEMM over channels:
    M[e] (K x T) = U[e] (K x C) @ V[e] (C x T).
The points are 0, +-1, +-2, inf for m = 4 (Lavin & Gray), 0, +-1, inf for m = 2.

Work split: one task per (group, block of tiles, block of output channels);
the tiles of all images are numbered in order and cut into blocks, so a block
may span images (small images still give the GEMMs many columns).  A task
  1. gathers the alpha x alpha input tiles of its block, a few channels at a
     time, into alpha^2 planes (zero-filled outside the input: any padding,
     partial tiles), and transforms them into V (alpha^2 x C x tiles,
     per-thread scratch) with one loop over (channel, tile), so the transform
     vectorises however narrow the image;
  2. runs the alpha^2 GEMMs on the prepacked U (gemm_pack_a layout, packed
     once by pack_weights) into M (alpha^2 x K-block x tiles, per thread);
  3. transforms M back, a few output channels at a time, into m^2 planes,
     scatters them into the output rows (clipped to the output) and finishes
     each output row piece with the fused epilogue while it is in cache.
The caller sizes the blocks (pyconv/functional/_conv_winograd.py, blocking).
Every output element is computed by one task in a fixed order, whatever the
thread count.

Non-finite input: a Winograd transform spreads one NaN/Inf over its whole
tile.  Step 1 sums, per tile, the magnitudes of the transform points (0, 0),
(0, a), (a, 0), (a, a) (a = alpha - 1), which together depend on every input
value of the tile.  A task whose sum is NaN, Inf or above HUGE (input so large
that the transforms might overflow where the direct sum does not) skips
steps 2-3 and the kernel reports it, so the caller recomputes that call with
the direct algorithm: NaN/Inf only where the direct sum has them, as torch.

Overflow with finite input: large weights (or inputs below HUGE) can make V,
the GEMM sums or the output transform overflow where the direct sum stays
finite (|V| <= 100 max|d| and the output gain is 361 for F(4,3), against 9
taps for the direct sum).  Such an overflow leaves an Inf or NaN in at least
one output of its tile before the epilogue (every transform point reaches an
output with a non-zero coefficient, and Inf * U or Inf - Inf is not finite),
so step 3 adds (y - y) per output y to the probe while the values are in
registers: 0 for finite y, NaN otherwise.  A task whose probe is then not
finite reports it as well, and the caller recomputes the call with the direct
algorithm (whose result is the answer whether finite or not).  The check is
made before the epilogue, which could turn -Inf into a finite value (ReLU).
"""
import numpy as np

from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_row
from pyconv._kernels.gemm cimport gemm_pack_a, gemm_prepacked_rows, gemm_workspace_size
from pyconv._kernels.parallel cimport parallel_for

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>
    #if defined(_MSC_VER)
    #define PYCONV_WINO_RESTRICT __restrict
    #else
    #define PYCONV_WINO_RESTRICT restrict
    #endif
    #define R_ PYCONV_WINO_RESTRICT
    #if defined(__GNUC__)
    #define PYCONV_WINO_FN static __attribute__((noinline))
    #else
    #define PYCONV_WINO_FN static
    #endif

    /* The transforms, for T = float and double.  Planes: plane p of a buffer
       holds n consecutive elements at buf + p * stride; every loop runs over
       those n elements with a handful of planes in and out, so it vectorises.

       F(4x4, 3x3):
         B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
         A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
       F(2x2, 3x3):
         B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
         A^T = [1 1 1 0; 0 1 -1 -1] */
    #define PYCONV_WINO_DEFINE(T, S, ABS)                                                   \\
    /* One-dimensional transforms over n elements of separate planes (restrict    \\
       parameters, so each loop vectorises). */                                     \\
    /* B^T of F(4,3) on s0..s5 -> o0..o5 */                                        \\
    PYCONV_WINO_FN void pyconv_wino_bt6_##S(ptrdiff_t n,                              \\
        const T *R_ s0, const T *R_ s1, const T *R_ s2, const T *R_ s3,                \\
        const T *R_ s4, const T *R_ s5, T *R_ o0, T *R_ o1, T *R_ o2, T *R_ o3,       \\
        T *R_ o4, T *R_ o5, T *R_ check)                                               \\
    {                                                                                    \\
        for (ptrdiff_t k = 0; k < n; k++) {                                              \\
            T d0 = s0[k], d1 = s1[k], d2 = s2[k], d3 = s3[k], d4 = s4[k], d5 = s5[k];    \\
            T a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = 2 * (d3 - d1);           \\
            T first = 4 * d0 - 5 * d2 + d4, last = 4 * d1 - 5 * d3 + d5;                 \\
            o0[k] = first;                                                               \\
            o1[k] = a + b;                                                               \\
            o2[k] = a - b;                                                               \\
            o3[k] = c + e;                                                               \\
            o4[k] = c - e;                                                               \\
            o5[k] = last;                                                                \\
        }                                                                                \\
        if (check)                                                                       \\
            for (ptrdiff_t k = 0; k < n; k++) check[k] += ABS(o0[k]) + ABS(o5[k]);       \\
    }                                                                                    \\
    /* A^T of F(4,3) on s0..s5 -> o0..o3; with check: check[k] += (o_j - o_j), which    \\
       stays 0 while every o_j is finite and turns NaN when one is not. */            \\
    PYCONV_WINO_FN void pyconv_wino_at6_##S(ptrdiff_t n,                              \\
        const T *R_ s0, const T *R_ s1, const T *R_ s2, const T *R_ s3,                \\
        const T *R_ s4, const T *R_ s5, T *R_ o0, T *R_ o1, T *R_ o2, T *R_ o3,       \\
        T *R_ check)                                                                   \\
    {                                                                                    \\
        if (check)                                                                       \\
            for (ptrdiff_t k = 0; k < n; k++) {                                          \\
                T m0 = s0[k], m1 = s1[k], m2 = s2[k], m3 = s3[k], m4 = s4[k], m5 = s5[k]; \\
                T a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;                    \\
                T y0 = m0 + a + c, y1 = b + 2 * e, y2 = a + 4 * c, y3 = b + 8 * e + m5;  \\
                o0[k] = y0;                                                              \\
                o1[k] = y1;                                                              \\
                o2[k] = y2;                                                              \\
                o3[k] = y3;                                                              \\
                check[k] += ((y0 - y0) + (y1 - y1)) + ((y2 - y2) + (y3 - y3));           \\
            }                                                                            \\
        else                                                                             \\
            for (ptrdiff_t k = 0; k < n; k++) {                                          \\
                T m0 = s0[k], m1 = s1[k], m2 = s2[k], m3 = s3[k], m4 = s4[k], m5 = s5[k]; \\
                T a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;                    \\
                o0[k] = m0 + a + c;                                                      \\
                o1[k] = b + 2 * e;                                                       \\
                o2[k] = a + 4 * c;                                                       \\
                o3[k] = b + 8 * e + m5;                                                  \\
            }                                                                            \\
    }                                                                                    \\
    /* B^T of F(2,3) on s0..s3 -> o0..o3 */                                            \\
    PYCONV_WINO_FN void pyconv_wino_bt4_##S(ptrdiff_t n,                              \\
        const T *R_ s0, const T *R_ s1, const T *R_ s2, const T *R_ s3,                \\
        T *R_ o0, T *R_ o1, T *R_ o2, T *R_ o3, T *R_ check)                           \\
    {                                                                                    \\
        for (ptrdiff_t k = 0; k < n; k++) {                                              \\
            T d0 = s0[k], d1 = s1[k], d2 = s2[k], d3 = s3[k];                            \\
            o0[k] = d0 - d2;                                                             \\
            o1[k] = d1 + d2;                                                             \\
            o2[k] = d2 - d1;                                                             \\
            o3[k] = d1 - d3;                                                             \\
        }                                                                                \\
        if (check)                                                                       \\
            for (ptrdiff_t k = 0; k < n; k++) check[k] += ABS(o0[k]) + ABS(o3[k]);       \\
    }                                                                                    \\
    /* A^T of F(2,3) on s0..s3 -> o0..o1; check as in at6 */                          \\
    PYCONV_WINO_FN void pyconv_wino_at4_##S(ptrdiff_t n,                              \\
        const T *R_ s0, const T *R_ s1, const T *R_ s2, const T *R_ s3,                \\
        T *R_ o0, T *R_ o1, T *R_ check)                                               \\
    {                                                                                    \\
        if (check)                                                                       \\
            for (ptrdiff_t k = 0; k < n; k++) {                                          \\
                T m1 = s1[k], m2 = s2[k];                                                \\
                T y0 = s0[k] + m1 + m2, y1 = m1 - m2 - s3[k];                            \\
                o0[k] = y0;                                                              \\
                o1[k] = y1;                                                              \\
                check[k] += (y0 - y0) + (y1 - y1);                                       \\
            }                                                                            \\
        else                                                                             \\
            for (ptrdiff_t k = 0; k < n; k++) {                                          \\
                T m1 = s1[k], m2 = s2[k];                                                \\
                o0[k] = s0[k] + m1 + m2;                                                 \\
                o1[k] = m1 - m2 - s3[k];                                                 \\
            }                                                                            \\
    }                                                                                    \\
    /* o_j[t] = src[step * t + j], j < 4 (step 4) or j < 2 (step 2 or 4) */            \\
    PYCONV_WINO_FN void pyconv_wino_split4_##S(const T *R_ src, ptrdiff_t nt,         \\
        T *R_ o0, T *R_ o1, T *R_ o2, T *R_ o3)                                        \\
    {                                                                                    \\
        for (ptrdiff_t t = 0; t < nt; t++) {                                             \\
            o0[t] = src[4 * t];                                                          \\
            o1[t] = src[4 * t + 1];                                                      \\
            o2[t] = src[4 * t + 2];                                                      \\
            o3[t] = src[4 * t + 3];                                                      \\
        }                                                                                \\
    }                                                                                    \\
    PYCONV_WINO_FN void pyconv_wino_split2_##S(const T *R_ src, ptrdiff_t step,       \\
        ptrdiff_t nt, T *R_ o0, T *R_ o1)                                              \\
    {                                                                                    \\
        if (step == 4)                                                                   \\
            for (ptrdiff_t t = 0; t < nt; t++) {                                         \\
                o0[t] = src[4 * t];                                                      \\
                o1[t] = src[4 * t + 1];                                                  \\
            }                                                                            \\
        else                                                                             \\
            for (ptrdiff_t t = 0; t < nt; t++) {                                         \\
                o0[t] = src[2 * t];                                                      \\
                o1[t] = src[2 * t + 1];                                                  \\
            }                                                                            \\
    }                                                                                    \\
    /* y[4t + j] = s_j[t], j < 4;  y[2t + j] = s_j[t], j < 2 */                        \\
    PYCONV_WINO_FN void pyconv_wino_merge4_##S(const T *R_ s0, const T *R_ s1,        \\
        const T *R_ s2, const T *R_ s3, ptrdiff_t nt, T *R_ y)                         \\
    {                                                                                    \\
        for (ptrdiff_t t = 0; t < nt; t++) {                                             \\
            y[4 * t] = s0[t];                                                            \\
            y[4 * t + 1] = s1[t];                                                        \\
            y[4 * t + 2] = s2[t];                                                        \\
            y[4 * t + 3] = s3[t];                                                        \\
        }                                                                                \\
    }                                                                                    \\
    PYCONV_WINO_FN void pyconv_wino_merge2_##S(const T *R_ s0, const T *R_ s1,        \\
        ptrdiff_t nt, T *R_ y)                                                         \\
    {                                                                                    \\
        for (ptrdiff_t t = 0; t < nt; t++) {                                             \\
            y[2 * t] = s0[t];                                                            \\
            y[2 * t + 1] = s1[t];                                                        \\
        }                                                                                \\
    }                                                                                    \\
    /* Two-dimensional transforms and gathers over planes p at buf + p * stride.       \\
       d[(y * 6 + x) * ds + t] = line[4t + x] for the 6 columns x of one input row y.  */\\
    static void pyconv_wino_gather_f4_##S(const T *line, ptrdiff_t nt, T *d, ptrdiff_t ds) \\
    {                                                                                    \\
        pyconv_wino_split4_##S(line, nt, d, d + ds, d + 2 * ds, d + 3 * ds);           \\
        pyconv_wino_split2_##S(line + 4, 4, nt, d + 4 * ds, d + 5 * ds);                \\
    }                                                                                    \\
    static void pyconv_wino_gather_f2_##S(const T *line, ptrdiff_t nt, T *d, ptrdiff_t ds) \\
    {                                                                                    \\
        pyconv_wino_split2_##S(line, 2, nt, d, d + ds);                                  \\
        pyconv_wino_split2_##S(line + 2, 2, nt, d + 2 * ds, d + 3 * ds);                 \\
    }                                                                                    \\
    /* v[(r * 6 + i) * vs + k] = (B^T d_k B)[r, i] from d[(y * 6 + x) * ds + k], the     \\
       row pass in rows (36 planes, stride ds); check[k] += |points (0,0), (0,5),      \\
       (5,0), (5,5)|. */                                                                        \\
    static void pyconv_wino_input_f4_##S(ptrdiff_t n, const T *d, ptrdiff_t ds,          \\
                                         T *rows, T *v, ptrdiff_t vs, T *check)          \\
    {                                                                                    \\
        for (int y = 0; y < 6; y++) {                                                    \\
            const T *s = d + 6 * y * ds;                                                 \\
            T *o = rows + 6 * y * ds;                                                    \\
            pyconv_wino_bt6_##S(n, s, s + ds, s + 2 * ds, s + 3 * ds, s + 4 * ds, s + 5 * ds, \\
                                o, o + ds, o + 2 * ds, o + 3 * ds, o + 4 * ds, o + 5 * ds, NULL); \\
        }                                                                                \\
        for (int i = 0; i < 6; i++) {                                                    \\
            const T *s = rows + i * ds;                                                  \\
            T *o = v + i * vs;                                                           \\
            pyconv_wino_bt6_##S(n, s, s + 6 * ds, s + 12 * ds, s + 18 * ds, s + 24 * ds,  \\
                                s + 30 * ds, o, o + 6 * vs, o + 12 * vs, o + 18 * vs,     \\
                                o + 24 * vs, o + 30 * vs, (i == 0 || i == 5) ? check : NULL); \\
        }                                                                                \\
    }                                                                                    \\
    static void pyconv_wino_input_f2_##S(ptrdiff_t n, const T *d, ptrdiff_t ds,          \\
                                         T *rows, T *v, ptrdiff_t vs, T *check)          \\
    {                                                                                    \\
        for (int y = 0; y < 4; y++) {                                                    \\
            const T *s = d + 4 * y * ds;                                                 \\
            T *o = rows + 4 * y * ds;                                                    \\
            pyconv_wino_bt4_##S(n, s, s + ds, s + 2 * ds, s + 3 * ds,                    \\
                                o, o + ds, o + 2 * ds, o + 3 * ds, NULL);                \\
        }                                                                                \\
        for (int i = 0; i < 4; i++) {                                                    \\
            const T *s = rows + i * ds;                                                  \\
            T *o = v + i * vs;                                                           \\
            pyconv_wino_bt4_##S(n, s, s + 4 * ds, s + 8 * ds, s + 12 * ds,               \\
                                o, o + 4 * vs, o + 8 * vs, o + 12 * vs,                  \\
                                (i == 0 || i == 3) ? check : NULL);                      \\
        }                                                                                \\
    }                                                                                    \\
    /* o[(r * 4 + c) * os + k] = (A^T m_k A)[r, c] from mm[(y * 6 + x) * ms + k]; the     \\
       column pass in cols (24 planes, stride os); check[k] turns NaN if some o[. + k]  \\
       is not finite (see at6). */                                                      \\
    static void pyconv_wino_output_f4_##S(ptrdiff_t n, const T *mm, ptrdiff_t ms,        \\
                                          T *cols, T *o, ptrdiff_t os, T *check)         \\
    {                                                                                    \\
        for (int x = 0; x < 6; x++) {                                                    \\
            const T *s = mm + x * ms;                                                    \\
            T *c = cols + x * os;                                                        \\
            pyconv_wino_at6_##S(n, s, s + 6 * ms, s + 12 * ms, s + 18 * ms, s + 24 * ms,  \\
                                s + 30 * ms, c, c + 6 * os, c + 12 * os, c + 18 * os, NULL); \\
        }                                                                                \\
        for (int r = 0; r < 4; r++) {                                                    \\
            const T *s = cols + 6 * r * os;                                              \\
            T *p = o + 4 * r * os;                                                       \\
            pyconv_wino_at6_##S(n, s, s + os, s + 2 * os, s + 3 * os, s + 4 * os, s + 5 * os, \\
                                p, p + os, p + 2 * os, p + 3 * os, check);               \\
        }                                                                                \\
    }                                                                                    \\
    static void pyconv_wino_output_f2_##S(ptrdiff_t n, const T *mm, ptrdiff_t ms,        \\
                                          T *cols, T *o, ptrdiff_t os, T *check)         \\
    {                                                                                    \\
        for (int x = 0; x < 4; x++) {                                                    \\
            const T *s = mm + x * ms;                                                    \\
            T *c = cols + x * os;                                                        \\
            pyconv_wino_at4_##S(n, s, s + 4 * ms, s + 8 * ms, s + 12 * ms, c, c + 4 * os, NULL); \\
        }                                                                                \\
        for (int r = 0; r < 2; r++) {                                                    \\
            const T *s = cols + 4 * r * os;                                              \\
            T *p = o + 2 * r * os;                                                       \\
            pyconv_wino_at4_##S(n, s, s + os, s + 2 * os, s + 3 * os, p, p + os, check); \\
        }                                                                                \\
    }                                                                                    \\
    /* One-row tiles (a 1 x 3 kernel): v[i * vs + k] = (B^T d_k)[i] from d[x * ds + k],  \\
       check[k] += |points 0, alpha - 1|; o[c * os + k] = (A^T m_k)[c] from mm[x * ms + k], \\
       check as in at6. */                                                               \\
    static void pyconv_wino_input_f4_row_##S(ptrdiff_t n, const T *d, ptrdiff_t ds,      \\
                                             T *rows, T *v, ptrdiff_t vs, T *check)      \\
    {                                                                                    \\
        (void)rows;                                                                      \\
        pyconv_wino_bt6_##S(n, d, d + ds, d + 2 * ds, d + 3 * ds, d + 4 * ds, d + 5 * ds, \\
                            v, v + vs, v + 2 * vs, v + 3 * vs, v + 4 * vs, v + 5 * vs, check); \\
    }                                                                                    \\
    static void pyconv_wino_input_f2_row_##S(ptrdiff_t n, const T *d, ptrdiff_t ds,      \\
                                             T *rows, T *v, ptrdiff_t vs, T *check)      \\
    {                                                                                    \\
        (void)rows;                                                                      \\
        pyconv_wino_bt4_##S(n, d, d + ds, d + 2 * ds, d + 3 * ds,                        \\
                            v, v + vs, v + 2 * vs, v + 3 * vs, check);                   \\
    }                                                                                    \\
    static void pyconv_wino_output_f4_row_##S(ptrdiff_t n, const T *mm, ptrdiff_t ms,    \\
                                              T *cols, T *o, ptrdiff_t os, T *check)     \\
    {                                                                                    \\
        (void)cols;                                                                      \\
        pyconv_wino_at6_##S(n, mm, mm + ms, mm + 2 * ms, mm + 3 * ms, mm + 4 * ms, mm + 5 * ms, \\
                            o, o + os, o + 2 * os, o + 3 * os, check);                   \\
    }                                                                                    \\
    static void pyconv_wino_output_f2_row_##S(ptrdiff_t n, const T *mm, ptrdiff_t ms,    \\
                                              T *cols, T *o, ptrdiff_t os, T *check)     \\
    {                                                                                    \\
        (void)cols;                                                                      \\
        pyconv_wino_at4_##S(n, mm, mm + ms, mm + 2 * ms, mm + 3 * ms, o, o + os, check); \\
    }                                                                                    \\
    /* y[4t + c] = o[c * os + t] (c < 4), y[2t + c] = o[c * os + t] (c < 2): one output  \\
       row of nt tiles. */                                                               \\
    static void pyconv_wino_scatter_f4_##S(const T *o, ptrdiff_t os, ptrdiff_t nt, T *y) \\
    {                                                                                    \\
        pyconv_wino_merge4_##S(o, o + os, o + 2 * os, o + 3 * os, nt, y);               \\
    }                                                                                    \\
    static void pyconv_wino_scatter_f2_##S(const T *o, ptrdiff_t os, ptrdiff_t nt, T *y) \\
    {                                                                                    \\
        pyconv_wino_merge2_##S(o, o + os, nt, y);                                        \\
    }

    PYCONV_WINO_DEFINE(float, f32, fabsf)
    PYCONV_WINO_DEFINE(double, f64, fabs)
    #undef R_
    """
    void gather_f4_f32 "pyconv_wino_gather_f4_f32"(const float* line, Py_ssize_t nt, float* d, Py_ssize_t ds) noexcept nogil
    void gather_f4_f64 "pyconv_wino_gather_f4_f64"(const double* line, Py_ssize_t nt, double* d, Py_ssize_t ds) noexcept nogil
    void gather_f2_f32 "pyconv_wino_gather_f2_f32"(const float* line, Py_ssize_t nt, float* d, Py_ssize_t ds) noexcept nogil
    void gather_f2_f64 "pyconv_wino_gather_f2_f64"(const double* line, Py_ssize_t nt, double* d, Py_ssize_t ds) noexcept nogil
    void input_f4_f32 "pyconv_wino_input_f4_f32"(Py_ssize_t n, const float* d, Py_ssize_t ds, float* rows,
                                                 float* v, Py_ssize_t vs, float* check) noexcept nogil
    void input_f4_f64 "pyconv_wino_input_f4_f64"(Py_ssize_t n, const double* d, Py_ssize_t ds, double* rows,
                                                 double* v, Py_ssize_t vs, double* check) noexcept nogil
    void input_f2_f32 "pyconv_wino_input_f2_f32"(Py_ssize_t n, const float* d, Py_ssize_t ds, float* rows,
                                                 float* v, Py_ssize_t vs, float* check) noexcept nogil
    void input_f2_f64 "pyconv_wino_input_f2_f64"(Py_ssize_t n, const double* d, Py_ssize_t ds, double* rows,
                                                 double* v, Py_ssize_t vs, double* check) noexcept nogil
    void output_f4_f32 "pyconv_wino_output_f4_f32"(Py_ssize_t n, const float* mm, Py_ssize_t ms, float* cols,
                                                   float* o, Py_ssize_t os, float* check) noexcept nogil
    void output_f4_f64 "pyconv_wino_output_f4_f64"(Py_ssize_t n, const double* mm, Py_ssize_t ms, double* cols,
                                                   double* o, Py_ssize_t os, double* check) noexcept nogil
    void output_f2_f32 "pyconv_wino_output_f2_f32"(Py_ssize_t n, const float* mm, Py_ssize_t ms, float* cols,
                                                   float* o, Py_ssize_t os, float* check) noexcept nogil
    void output_f2_f64 "pyconv_wino_output_f2_f64"(Py_ssize_t n, const double* mm, Py_ssize_t ms, double* cols,
                                                   double* o, Py_ssize_t os, double* check) noexcept nogil
    void input_f4_row_f32 "pyconv_wino_input_f4_row_f32"(Py_ssize_t n, const float* d, Py_ssize_t ds, float* rows,
                                                         float* v, Py_ssize_t vs, float* check) noexcept nogil
    void input_f4_row_f64 "pyconv_wino_input_f4_row_f64"(Py_ssize_t n, const double* d, Py_ssize_t ds, double* rows,
                                                         double* v, Py_ssize_t vs, double* check) noexcept nogil
    void input_f2_row_f32 "pyconv_wino_input_f2_row_f32"(Py_ssize_t n, const float* d, Py_ssize_t ds, float* rows,
                                                         float* v, Py_ssize_t vs, float* check) noexcept nogil
    void input_f2_row_f64 "pyconv_wino_input_f2_row_f64"(Py_ssize_t n, const double* d, Py_ssize_t ds, double* rows,
                                                         double* v, Py_ssize_t vs, double* check) noexcept nogil
    void output_f4_row_f32 "pyconv_wino_output_f4_row_f32"(Py_ssize_t n, const float* mm, Py_ssize_t ms, float* cols,
                                                           float* o, Py_ssize_t os, float* check) noexcept nogil
    void output_f4_row_f64 "pyconv_wino_output_f4_row_f64"(Py_ssize_t n, const double* mm, Py_ssize_t ms, double* cols,
                                                           double* o, Py_ssize_t os, double* check) noexcept nogil
    void output_f2_row_f32 "pyconv_wino_output_f2_row_f32"(Py_ssize_t n, const float* mm, Py_ssize_t ms, float* cols,
                                                           float* o, Py_ssize_t os, float* check) noexcept nogil
    void output_f2_row_f64 "pyconv_wino_output_f2_row_f64"(Py_ssize_t n, const double* mm, Py_ssize_t ms, double* cols,
                                                           double* o, Py_ssize_t os, double* check) noexcept nogil
    void scatter_f4_f32 "pyconv_wino_scatter_f4_f32"(const float* o, Py_ssize_t os, Py_ssize_t nt, float* y) noexcept nogil
    void scatter_f4_f64 "pyconv_wino_scatter_f4_f64"(const double* o, Py_ssize_t os, Py_ssize_t nt, double* y) noexcept nogil
    void scatter_f2_f32 "pyconv_wino_scatter_f2_f32"(const float* o, Py_ssize_t os, Py_ssize_t nt, float* y) noexcept nogil
    void scatter_f2_f64 "pyconv_wino_scatter_f2_f64"(const double* o, Py_ssize_t os, Py_ssize_t nt, double* y) noexcept nogil

cdef enum:
    SCRATCH_ALIGN = 64   # bytes; each scratch array starts on a cache line
    CHUNK = 128          # elements (channel x tile) per plane of one transform pass (36 planes: 18 KiB in float32)


cdef struct Geometry:
    int m                       # output tile size, 2 or 4 (alpha = m + 2)
    bint rows                   # one-row tiles (1 x m outputs from 1 x alpha inputs: a 1 x 3 kernel)
    Py_ssize_t in_channels      # per group (C)
    Py_ssize_t out_channels     # per group (K)
    Py_ssize_t groups
    Py_ssize_t height, width    # input
    Py_ssize_t out_height, out_width
    Py_ssize_t pad_top, pad_left
    Py_ssize_t batch            # images
    Py_ssize_t tiles_w, tiles   # tiles per output row, per image
    Py_ssize_t tile_block       # tiles per task, of all images' tiles in order (the last block may be smaller)
    Py_ssize_t tile_blocks
    Py_ssize_t k_block          # output channels per task (multiple of the GEMM's MR, or K)
    Py_ssize_t k_blocks
    Py_ssize_t chunk            # plane stride of the transform buffers: max(CHUNK, tile_block)
    Py_ssize_t packed_size      # elements of one packed U[g, e]


cdef struct Scratch:
    # Per-thread buffers.
    void* v             # alpha^2 x C x tile_block: transformed input
    void* mm            # alpha^2 x k_block x tile_block: GEMM output
    void* planes        # alpha^2 x chunk: raw input tiles / output tiles
    void* passes        # alpha^2 x chunk: first pass of a 2-D transform
    void* line          # one zero-padded input row or one output row: m * (tile_block + 1)
    void* check         # chunk: non-finite probe
    void* gemm          # gemm_workspace_size bytes


cdef inline floating huge(const floating* tag) noexcept nogil:
    # Bound of the non-finite probe: inputs this large (2^100 ~ 1e30 in float32) could overflow
    # in the transforms (factors up to 100 in, 361 out) where the direct sum stays finite.
    if floating is float:
        return <float>1.2676506002282294e30
    else:
        return 1e300


cdef inline Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t multiple) noexcept nogil:
    return (x + multiple - 1) // multiple * multiple


cdef inline Py_ssize_t transform_points(const Geometry* g) noexcept nogil:
    # alpha^2, or alpha for one-row tiles.
    return (g.m + 2) if g.rows else (g.m + 2) * (g.m + 2)


cdef inline Py_ssize_t tile_height(const Geometry* g) noexcept nogil:
    return 1 if g.rows else g.m


cdef Py_ssize_t scratch_layout(const Geometry* g, Py_ssize_t itemsize, Scratch* s, char* base) noexcept nogil:
    # Lays one thread's scratch out from base (NULL: only measures); returns its size in bytes.
    cdef Py_ssize_t points = transform_points(g), tb = g.tile_block, offset = 0
    cdef Py_ssize_t sizes[7]
    cdef void** slots[7]
    cdef int i
    sizes[0] = points * g.in_channels * tb * itemsize
    sizes[1] = points * g.k_block * tb * itemsize
    sizes[2] = points * g.chunk * itemsize
    sizes[3] = points * g.chunk * itemsize
    sizes[4] = g.m * (tb + 1) * itemsize
    sizes[5] = g.chunk * itemsize
    sizes[6] = gemm_workspace_size(g.k_block, tb, g.in_channels)
    slots[0] = &s.v
    slots[1] = &s.mm
    slots[2] = &s.planes
    slots[3] = &s.passes
    slots[4] = &s.line
    slots[5] = &s.check
    slots[6] = &s.gemm
    for i in range(7):
        slots[i][0] = base + offset if base != NULL else NULL
        offset += round_up(sizes[i], SCRATCH_ALIGN)
    return offset


# ---- dtype dispatch of the C transforms ------------------------------------
cdef inline void gather(int m, const floating* line, Py_ssize_t nt, floating* d, Py_ssize_t ds) noexcept nogil:
    if floating is float:
        if m == 4:
            gather_f4_f32(line, nt, d, ds)
        else:
            gather_f2_f32(line, nt, d, ds)
    else:
        if m == 4:
            gather_f4_f64(line, nt, d, ds)
        else:
            gather_f2_f64(line, nt, d, ds)


cdef inline void input_transform(int m, bint one_row, Py_ssize_t n, const floating* d, Py_ssize_t ds,
                                 floating* rows, floating* v, Py_ssize_t vs, floating* check) noexcept nogil:
    if one_row:
        if floating is float:
            if m == 4:
                input_f4_row_f32(n, d, ds, rows, v, vs, check)
            else:
                input_f2_row_f32(n, d, ds, rows, v, vs, check)
        else:
            if m == 4:
                input_f4_row_f64(n, d, ds, rows, v, vs, check)
            else:
                input_f2_row_f64(n, d, ds, rows, v, vs, check)
    elif floating is float:
        if m == 4:
            input_f4_f32(n, d, ds, rows, v, vs, check)
        else:
            input_f2_f32(n, d, ds, rows, v, vs, check)
    else:
        if m == 4:
            input_f4_f64(n, d, ds, rows, v, vs, check)
        else:
            input_f2_f64(n, d, ds, rows, v, vs, check)


cdef inline void output_transform(int m, bint one_row, Py_ssize_t n, const floating* mm, Py_ssize_t ms,
                                  floating* cols, floating* o, Py_ssize_t os, floating* check) noexcept nogil:
    if one_row:
        if floating is float:
            if m == 4:
                output_f4_row_f32(n, mm, ms, cols, o, os, check)
            else:
                output_f2_row_f32(n, mm, ms, cols, o, os, check)
        else:
            if m == 4:
                output_f4_row_f64(n, mm, ms, cols, o, os, check)
            else:
                output_f2_row_f64(n, mm, ms, cols, o, os, check)
    elif floating is float:
        if m == 4:
            output_f4_f32(n, mm, ms, cols, o, os, check)
        else:
            output_f2_f32(n, mm, ms, cols, o, os, check)
    else:
        if m == 4:
            output_f4_f64(n, mm, ms, cols, o, os, check)
        else:
            output_f2_f64(n, mm, ms, cols, o, os, check)


cdef inline void scatter(int m, const floating* o, Py_ssize_t os, Py_ssize_t nt, floating* y) noexcept nogil:
    if floating is float:
        if m == 4:
            scatter_f4_f32(o, os, nt, y)
        else:
            scatter_f2_f32(o, os, nt, y)
    else:
        if m == 4:
            scatter_f4_f64(o, os, nt, y)
        else:
            scatter_f2_f64(o, os, nt, y)


# ---- steps of a task -------------------------------------------------------
cdef void load_line(const floating* x_row, Py_ssize_t width, Py_ssize_t start, Py_ssize_t count,
                    floating* line) noexcept nogil:
    # line[j] = x_row[start + j] for j < count, 0 where start + j is outside [0, width).
    cdef Py_ssize_t lo = min(max(-start, 0), count), hi = max(min(width - start, count), lo)
    if lo > 0:
        memset(line, 0, lo * sizeof(floating))
    if hi > lo:
        memcpy(line + lo, x_row + start + lo, (hi - lo) * sizeof(floating))
    if count > hi:
        memset(line + hi, 0, (count - hi) * sizeof(floating))


cdef void gather_tiles(const Geometry* g, const floating* x_channel, Py_ssize_t ty, Py_ssize_t tx0,
                       Py_ssize_t nt, floating* planes, floating* line) noexcept nogil:
    # planes[(y * alpha + x) * chunk + t] = input tile (ty, tx0 + t)[y, x] of one channel, t < nt
    # (y = 0 only for one-row tiles).
    cdef int m = g.m
    cdef Py_ssize_t alpha = m + 2, ds = g.chunk, y, iy, j
    cdef Py_ssize_t x0 = tx0 * m - g.pad_left, count = m * nt + 2
    cdef const floating* src
    for y in range(1 if g.rows else alpha):
        iy = ty * tile_height(g) - g.pad_top + y
        if iy < 0 or iy >= g.height:
            for j in range(alpha):
                memset(planes + (y * alpha + j) * ds, 0, nt * sizeof(floating))
            continue
        src = x_channel + iy * g.width + x0
        if x0 < 0 or x0 + count > g.width:
            load_line(x_channel + iy * g.width, g.width, x0, count, line)
            src = line
        gather(m, src, nt, planes + y * alpha * ds, ds)


cdef void scatter_tiles(const Geometry* g, const Epilogue* ep, const floating* planes, Py_ssize_t ty,
                        Py_ssize_t tx0, Py_ssize_t nt, floating* output, Py_ssize_t channel_offset,
                        Py_ssize_t channel, floating* line) noexcept nogil:
    # Output rows of the tiles (ty, tx0 + t), t < nt, of one channel from
    # planes[(r * m + c) * chunk + t], clipped to the output and finished by the epilogue.
    # channel_offset: index of the channel's plane in the whole output; channel: its index
    # for the epilogue.
    cdef int m = g.m
    cdef Py_ssize_t ds = g.chunk, r, oy, offset
    cdef Py_ssize_t x0 = tx0 * m, count = min(m * nt, g.out_width - x0)
    cdef floating* y
    for r in range(tile_height(g)):
        oy = ty * tile_height(g) + r
        if oy >= g.out_height:
            break
        offset = channel_offset + oy * g.out_width + x0
        y = output + offset
        if count == m * nt:
            scatter(m, planes + r * m * ds, ds, nt, y)
        else:
            scatter(m, planes + r * m * ds, ds, nt, line)
            memcpy(y, line, count * sizeof(floating))
        epilogue_row(ep, output, offset, count, channel)


cdef inline Py_ssize_t segment(const Geometry* g, Py_ssize_t t, Py_ssize_t end, Py_ssize_t* image,
                               Py_ssize_t* ty, Py_ssize_t* tx0) noexcept nogil:
    # The tiles t, t + 1, ... (< end) that lie in one tile row: their count, image, row and first column.
    cdef Py_ssize_t rest
    image[0] = t // g.tiles
    rest = t - image[0] * g.tiles
    ty[0] = rest // g.tiles_w
    tx0[0] = rest - ty[0] * g.tiles_w
    return min(g.tiles_w - tx0[0], end - t)


cdef bint run_task(const Geometry* g, const Epilogue* ep, Py_ssize_t task, const floating* input,
                   const floating* packed, floating* output, char* scratch) noexcept nogil:
    # Task = (group * tile_blocks + block) * k_blocks + k_block, block: tiles block * tile_block ..
    # of all images' tiles in order (a block may span images); scratch: this thread's
    # scratch_layout bytes.  Returns False when its input tiles are not all finite (and then
    # writes no output) or when some output before the epilogue is not finite (an overflow in
    # the transforms or the GEMMs; its output is then written but wrong).
    cdef Scratch s
    cdef int m = g.m
    cdef Py_ssize_t points = transform_points(g)
    cdef Py_ssize_t kb = task % g.k_blocks, rest = task // g.k_blocks
    cdef Py_ssize_t block = rest % g.tile_blocks, group = rest // g.tile_blocks
    cdef Py_ssize_t C = g.in_channels, K = g.out_channels, t_begin = block * g.tile_block
    cdef Py_ssize_t nt_task = min(g.tile_block, g.batch * g.tiles - t_begin), t_end = t_begin + nt_task
    cdef Py_ssize_t k0 = kb * g.k_block, kn = min(g.k_block, K - k0)
    cdef Py_ssize_t v_stride = C * nt_task, m_stride = kn * nt_task
    cdef Py_ssize_t plane = g.height * g.width, out_plane = g.out_height * g.out_width
    cdef Py_ssize_t per_chunk = max(1, g.chunk // nt_task)     # channels per transform pass
    cdef floating* v
    cdef floating* mm
    cdef floating* planes
    cdef floating* passes
    cdef floating* line
    cdef floating* check
    cdef Py_ssize_t c0, cn, c, t, image, ty, tx0, nt, e, channel

    scratch_layout(g, sizeof(floating), &s, scratch)
    v = <floating*>s.v
    mm = <floating*>s.mm
    planes = <floating*>s.planes
    passes = <floating*>s.passes
    line = <floating*>s.line
    check = <floating*>s.check

    # 1. input transform, per_chunk channels at a time
    memset(check, 0, g.chunk * sizeof(floating))
    c0 = 0
    while c0 < C:
        cn = min(per_chunk, C - c0)
        for c in range(cn):
            t = t_begin
            while t < t_end:
                nt = segment(g, t, t_end, &image, &ty, &tx0)
                gather_tiles(g, input + ((image * g.groups + group) * C + c0 + c) * plane, ty, tx0, nt,
                             planes + c * nt_task + (t - t_begin), line)
                t = t + nt
        input_transform(m, g.rows, cn * nt_task, planes, g.chunk, passes, v + c0 * nt_task, v_stride, check)
        c0 = c0 + cn
    for t in range(g.chunk):
        if not check[t] <= huge(check):   # also when NaN
            return False

    # 2. M[e] = U[e][k0 : k0 + kn] @ V[e], rows k0 .. k0 + kn - 1 of U[e] packed whole
    for e in range(points):
        gemm_prepacked_rows(kn, nt_task, C, packed + (group * points + e) * g.packed_size, K, k0,
                            v + e * v_stride, nt_task, mm + e * m_stride, nt_task, False, s.gemm)

    # 3. output transform, per_chunk output channels at a time
    c0 = 0
    while c0 < kn:
        cn = min(per_chunk, kn - c0)
        output_transform(m, g.rows, cn * nt_task, mm + c0 * nt_task, m_stride, passes, planes, g.chunk, check)
        for c in range(cn):
            channel = group * K + k0 + c0 + c
            t = t_begin
            while t < t_end:
                nt = segment(g, t, t_end, &image, &ty, &tx0)
                scatter_tiles(g, ep, planes + c * nt_task + (t - t_begin), ty, tx0, nt, output,
                              (image * g.groups * K + channel) * out_plane, channel, line)
                t = t + nt
        c0 = c0 + cn
    # check[t] was finite and at most HUGE; the output transform added 0 per finite output, NaN per
    # other one: an output overflowed (Inf or NaN, perhaps made finite by the epilogue since).
    for t in range(g.chunk):
        if not check[t] <= huge(check):
            return False
    return True


cdef struct Job:
    # One winograd_conv2d call, for parallel_for: task i runs run_task(..., i, ...) on the
    # scratch of the thread that claims it and records whether it stayed finite in finite[i].
    const Geometry* g
    const Epilogue* ep
    bint double_precision
    const void* input
    const void* packed
    void* output
    char* scratch
    Py_ssize_t scratch_size
    unsigned char* finite


cdef void _run_job_task(void* context, Py_ssize_t task, int thread) noexcept nogil:
    cdef const Job* job = <const Job*>context
    cdef char* scratch = job.scratch + thread * job.scratch_size
    if job.double_precision:
        job.finite[task] = run_task(job.g, job.ep, task, <const double*>job.input, <const double*>job.packed,
                                    <double*>job.output, scratch)
    else:
        job.finite[task] = run_task(job.g, job.ep, task, <const float*>job.input, <const float*>job.packed,
                                    <float*>job.output, scratch)


def pack_weights(const floating[:, :, ::1] transformed, floating[:, ::1] packed):
    """Pack each transformed weight matrix transformed[i] (K x C) with gemm_pack_a into
    packed[i] (gemm.packed_a_size(K, C) elements), the layout winograd_conv2d reads.
    Both allocated by the caller; same dtype.  No checks."""
    cdef Py_ssize_t i, k = transformed.shape[1], c = transformed.shape[2]
    with nogil:
        for i in range(transformed.shape[0]):
            gemm_pack_a(k, c, &transformed[i, 0, 0], c, &packed[i, 0])


def winograd_conv2d(const floating[:, :, :, ::1] input, const floating[:, ::1] packed, floating[:, :, :, ::1] output,
                    int m, bint rows, Py_ssize_t groups, Py_ssize_t pad_top, Py_ssize_t pad_left,
                    Py_ssize_t tile_block, Py_ssize_t k_block,
                    const floating[::1] scale, const floating[::1] shift, const floating[::1] residual,
                    int activation, double p0, double p1, double p2, int num_threads):
    """Winograd F(m x m, 3 x 3) convolution (stride 1, dilation 1) with the fused epilogue; with ``rows``
    F(1 x m, 1 x 3), a 1 x 3 kernel (a 1-D convolution seen as H = 1).

    input (N, groups * C, H, W); output (N, groups * K, OH, OW), allocated by
    the caller; packed (groups * P, gemm.packed_a_size(K, C)) from pack_weights
    of U[g, e] = (G w G^T)[e], P = (m + 2)^2 points, or of U[g, e] = (G w)[e],
    P = m + 2 points with ``rows``; pad_top / pad_left zeros before the
    input (the output size implies the rest).  tile_block: tiles per task;
    k_block: output channels per task (a multiple of the GEMM's MR, or K).
    Epilogue arguments as in epilogue.pxd (empty = absent).
    Returns False, with output partly written, if some input tile holds a
    NaN or Inf or is above HUGE, or if some output came out of the output
    transform as NaN or Inf (the caller then recomputes with the direct
    algorithm).
    """
    cdef Geometry g
    cdef Scratch layout
    cdef Epilogue ep = epilogue_init(
        &scale[0] if scale.shape[0] else NULL, &shift[0] if shift.shape[0] else NULL,
        &residual[0] if residual.shape[0] else NULL, activation, p0, p1, p2)
    cdef Py_ssize_t batch = input.shape[0], tasks, size
    cdef char* scratch
    cdef char* aligned
    cdef unsigned char[::1] finite
    g.m = m
    g.rows = rows
    g.groups = groups
    g.in_channels = input.shape[1] // groups
    g.out_channels = output.shape[1] // groups
    g.height = input.shape[2]
    g.width = input.shape[3]
    g.out_height = output.shape[2]
    g.out_width = output.shape[3]
    g.pad_top = pad_top
    g.pad_left = pad_left
    g.tiles_w = (g.out_width + m - 1) // m
    g.tiles = g.tiles_w * ((g.out_height + tile_height(&g) - 1) // tile_height(&g))
    g.batch = batch
    g.tile_block = max(1, min(tile_block, batch * g.tiles))
    g.tile_blocks = (batch * g.tiles + g.tile_block - 1) // g.tile_block
    g.k_block = max(1, min(k_block, g.out_channels))
    g.k_blocks = (g.out_channels + g.k_block - 1) // g.k_block
    g.chunk = max(<Py_ssize_t>CHUNK, g.tile_block)
    g.packed_size = packed.shape[1]
    tasks = groups * g.tile_blocks * g.k_blocks
    if tasks == 0:
        return True
    num_threads = <int>max(1, min(<Py_ssize_t>num_threads, tasks))
    size = scratch_layout(&g, sizeof(floating), &layout, NULL)
    scratch = <char*>malloc(size * num_threads + SCRATCH_ALIGN)
    if scratch == NULL:
        raise MemoryError()
    aligned = <char*>round_up(<Py_ssize_t>scratch, SCRATCH_ALIGN)
    finite_array = np.empty(tasks, np.uint8)
    finite = finite_array
    cdef Job job
    job.g = &g
    job.ep = &ep
    job.double_precision = floating is double
    job.input = &input[0, 0, 0, 0]
    job.packed = &packed[0, 0]
    job.output = &output[0, 0, 0, 0]
    job.scratch = aligned
    job.scratch_size = size
    job.finite = &finite[0]
    with nogil:
        parallel_for(_run_job_task, &job, tasks, num_threads)
    free(scratch)
    return bool(finite_array.all())
