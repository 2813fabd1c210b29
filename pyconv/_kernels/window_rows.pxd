# Padded, phase-split input rows for the sliding-window kernels (depthwise
# convolution, pooling): padding and stride are dealt with once per input
# row, while copying it into a per-thread buffer, so the kernels' inner
# loops are plain unit-stride vector loops without a branch.
#
#     from pyconv._kernels.window_rows cimport WindowRows, window_rows_init, window_rows_fill, ...
#
# A window with stride s, dilation d and kernel width k reads, for output
# column ow and tap t, the padded input column ow * s + t * d.  A buffered
# row holds the padded row split into its s phases:
#     phase r, element j  =  padded column j * s + r  =  input column j * s + r - pad_w,
# each phase_len elements long, the pad value outside the input.  Tap t of
# output column ow is element ow + (t * d) // s of phase (t * d) % s, so
# consecutive output columns read consecutive elements.  phase_len covers
# max(out_w, vector_length) output columns of every tap: a kernel may compute
# a whole vector past out_w without reading outside the row; it is a multiple
# of 16 elements, so every phase starts 64-byte aligned.
#
# A task (a band of output rows) fills consecutive buffer rows with the
# padded input rows it needs (window_rows_fill), then runs its kernel over
# them: buffer row i holds padded row first + i, rows are row_len elements
# (a multiple of 64 bytes) apart.  Only the parts of a row inside the input
# are copied; the pad parts are written by window_rows_init (once per call)
# and by rows wholly in the padding, and never change.
#
# The copies are C (GNU vector extensions, vector width from the compiler's
# target macros): rows are short, so per-row overhead decides their speed.
from cython cimport floating

cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>

    #if defined(__AVX__)
    #define PYCONV_ROWS_VBYTES 32
    #else
    #define PYCONV_ROWS_VBYTES 16
    #endif

    typedef struct {
        ptrdiff_t in_h, in_w;          /* input plane (H, W) */
        ptrdiff_t pad_h, pad_w;        /* padding before (top, left) */
        ptrdiff_t stride;              /* along the row: the number of phases */
        ptrdiff_t phase_len, row_len;
        ptrdiff_t lo[2], hi[2];        /* phases 0 and 1: elements [lo, hi) lie inside the input */
    } pyconv_window_rows;

    static inline ptrdiff_t pyconv_rows_ceil_div(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b; }

    static inline pyconv_window_rows pyconv_rows_geometry(
        ptrdiff_t in_h, ptrdiff_t in_w, ptrdiff_t pad_h, ptrdiff_t pad_w, ptrdiff_t stride,
        ptrdiff_t phase_len, size_t itemsize)
    {
        pyconv_window_rows g;
        g.in_h = in_h;
        g.in_w = in_w;
        g.pad_h = pad_h;
        g.pad_w = pad_w;
        g.stride = stride;
        g.phase_len = phase_len;
        g.row_len = pyconv_rows_ceil_div(stride * phase_len * (ptrdiff_t)itemsize, 64) * 64 / (ptrdiff_t)itemsize;
        for (ptrdiff_t r = 0; r < 2; r++) {
            /* input column j * stride + r - pad_w in [0, in_w) */
            ptrdiff_t lo = pad_w > r ? pyconv_rows_ceil_div(pad_w - r, stride) : 0;
            ptrdiff_t hi = in_w + pad_w > r ? pyconv_rows_ceil_div(in_w + pad_w - r, stride) : 0;
            g.lo[r] = lo < phase_len ? lo : phase_len;
            g.hi[r] = hi < phase_len ? hi : phase_len;
            if (g.hi[r] < g.lo[r]) g.hi[r] = g.lo[r];
        }
        return g;
    }

    #define PYCONV_ROWS_FUNCTIONS(SUFFIX, T, I)                                        \\
    /* dst[0:n] = value, n a multiple of the vector length */                        \\
    static inline void pyconv_rows_set_##SUFFIX(T *dst, ptrdiff_t n, T value)        \\
    {                                                                               \\
        typedef T vec __attribute__((vector_size(PYCONV_ROWS_VBYTES)));             \\
        enum { VL = PYCONV_ROWS_VBYTES / sizeof(T) };                               \\
        vec v = (vec){0} + value;                                                   \\
        for (ptrdiff_t i = 0; i < n; i += VL) memcpy(dst + i, &v, sizeof v);        \\
    }                                                                               \\
                                                                                    \\
    /* dst[0:n] = src[0:n] by whole vectors, the last one overlapping */           \\
    static inline void pyconv_rows_copy_##SUFFIX(T *dst, const T *src, ptrdiff_t n)  \\
    {                                                                               \\
        typedef T vec __attribute__((vector_size(PYCONV_ROWS_VBYTES)));             \\
        enum { VL = PYCONV_ROWS_VBYTES / sizeof(T) };                               \\
        vec v;                                                                      \\
        if (n < VL) {                                                               \\
            for (ptrdiff_t i = 0; i < n; i++) dst[i] = src[i];                      \\
            return;                                                                 \\
        }                                                                           \\
        for (ptrdiff_t i = 0; i + VL < n; i += VL) {                                \\
            memcpy(&v, src + i, sizeof v);                                          \\
            memcpy(dst + i, &v, sizeof v);                                          \\
        }                                                                           \\
        memcpy(&v, src + n - VL, sizeof v);                                         \\
        memcpy(dst + n - VL, &v, sizeof v);                                         \\
    }                                                                               \\
                                                                                    \\
    /* even[j] = src[2 j], odd[j] = src[2 j + 1] for j < n */                       \\
    static inline void pyconv_rows_deinterleave_##SUFFIX(T *even, T *odd,           \\
                                                         const T *src, ptrdiff_t n) \\
    {                                                                               \\
        PYCONV_ROWS_DEINTERLEAVE_BODY(T, I)                                         \\
        for (ptrdiff_t j = 0; j < n; j++) {                                         \\
            even[j] = src[2 * j];                                                   \\
            odd[j] = src[2 * j + 1];                                                \\
        }                                                                           \\
    }                                                                               \\
                                                                                    \\
    /* Buffer rows 0..count-1 := padded rows first..first+count-1 of plane        \\
       (NULL: all padding), split into phases. */                                   \\
    static void pyconv_rows_fill_##SUFFIX(const pyconv_window_rows *g, T *buffer,    \\
                                          const T *plane, ptrdiff_t first,          \\
                                          ptrdiff_t count, T pad_value)             \\
    {                                                                               \\
        const ptrdiff_t s = g->stride, pad = g->pad_w, L = g->phase_len;            \\
        for (ptrdiff_t i = 0; i < count; i++) {                                     \\
            ptrdiff_t h = first + i - g->pad_h;                                     \\
            T *dst = buffer + i * g->row_len;                                       \\
            if (plane == NULL || h < 0 || h >= g->in_h) {                           \\
                pyconv_rows_set_##SUFFIX(dst, g->row_len, pad_value);               \\
                continue;                                                           \\
            }                                                                       \\
            const T *src = plane + h * g->in_w;                                     \\
            if (s == 1) {                                                           \\
                if (g->hi[0] > g->lo[0])                                            \\
                    pyconv_rows_copy_##SUFFIX(dst + g->lo[0], src + g->lo[0] - pad,  \\
                                              g->hi[0] - g->lo[0]);                 \\
            } else if (s == 2) {                                                    \\
                /* both phases where both lie inside the input, then the at most  \\
                   one element at either end that only one of them has */          \\
                ptrdiff_t lo = g->lo[0] > g->lo[1] ? g->lo[0] : g->lo[1];            \\
                ptrdiff_t hi = g->hi[0] < g->hi[1] ? g->hi[0] : g->hi[1];            \\
                if (hi > lo)                                                        \\
                    pyconv_rows_deinterleave_##SUFFIX(dst + lo, dst + L + lo,       \\
                                                      src + 2 * lo - pad, hi - lo); \\
                else                                                                \\
                    hi = lo;                                                        \\
                for (ptrdiff_t r = 0; r < 2; r++) {                                 \\
                    for (ptrdiff_t j = g->lo[r]; j < lo && j < g->hi[r]; j++)        \\
                        dst[r * L + j] = src[2 * j + r - pad];                      \\
                    for (ptrdiff_t j = hi > g->lo[r] ? hi : g->lo[r]; j < g->hi[r]; j++) \\
                        dst[r * L + j] = src[2 * j + r - pad];                      \\
                }                                                                   \\
            } else {                                                                \\
                for (ptrdiff_t r = 0; r < s; r++) {                                 \\
                    ptrdiff_t offset = r - pad;                                     \\
                    ptrdiff_t lo = offset < 0 ? pyconv_rows_ceil_div(-offset, s) : 0; \\
                    ptrdiff_t hi = g->in_w > offset                                 \\
                        ? pyconv_rows_ceil_div(g->in_w - offset, s) : 0;            \\
                    if (hi > L) hi = L;                                             \\
                    for (ptrdiff_t j = lo; j < hi; j++)                             \\
                        dst[r * L + j] = src[j * s + offset];                       \\
                }                                                                   \\
            }                                                                       \\
        }                                                                           \\
    }

    /* Two vector loads and two shuffles per vector of each output, the last
       vector overlapping the one before; the plain loop after it then has
       nothing left to do (gcc's __builtin_shuffle; elsewhere only the loop). */
    #if defined(__GNUC__) && !defined(__clang__)
    #define PYCONV_ROWS_DEINTERLEAVE_BODY(T, I)                                      \\
        typedef T vec __attribute__((vector_size(PYCONV_ROWS_VBYTES)));             \\
        typedef I ivec __attribute__((vector_size(PYCONV_ROWS_VBYTES)));            \\
        enum { VL = PYCONV_ROWS_VBYTES / sizeof(T) };                               \\
        if (n >= VL) {                                                              \\
            ivec pick_even, pick_odd;                                               \\
            for (int i = 0; i < VL; i++) {                                          \\
                pick_even[i] = 2 * i;                                               \\
                pick_odd[i] = 2 * i + 1;                                            \\
            }                                                                       \\
            for (ptrdiff_t j = 0;; j += VL) {                                       \\
                if (j + VL > n) j = n - VL;                                         \\
                vec a, b, e, o;                                                     \\
                memcpy(&a, src + 2 * j, sizeof a);                                  \\
                memcpy(&b, src + 2 * j + VL, sizeof b);                             \\
                e = __builtin_shuffle(a, b, pick_even);                             \\
                o = __builtin_shuffle(a, b, pick_odd);                              \\
                memcpy(even + j, &e, sizeof e);                                     \\
                memcpy(odd + j, &o, sizeof o);                                      \\
                if (j + VL >= n) return;                                            \\
            }                                                                       \\
        }
    #else
    #define PYCONV_ROWS_DEINTERLEAVE_BODY(T, I)
    #endif

    PYCONV_ROWS_FUNCTIONS(f32, float, int)
    PYCONV_ROWS_FUNCTIONS(f64, double, long long)
    """
    ctypedef struct WindowRows "pyconv_window_rows":
        Py_ssize_t in_h, in_w
        Py_ssize_t pad_h, pad_w
        Py_ssize_t stride
        Py_ssize_t phase_len, row_len
    WindowRows pyconv_rows_geometry(Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t pad_h, Py_ssize_t pad_w,
                                    Py_ssize_t stride, Py_ssize_t phase_len, size_t itemsize) noexcept nogil
    void pyconv_rows_set_f32(float* dst, Py_ssize_t n, float value) noexcept nogil
    void pyconv_rows_set_f64(double* dst, Py_ssize_t n, double value) noexcept nogil
    void pyconv_rows_fill_f32(const WindowRows* g, float* buffer, const float* plane, Py_ssize_t first,
                              Py_ssize_t count, float pad_value) noexcept nogil
    void pyconv_rows_fill_f64(const WindowRows* g, double* buffer, const double* plane, Py_ssize_t first,
                              Py_ssize_t count, double pad_value) noexcept nogil


cdef inline Py_ssize_t window_rows_phase_len(Py_ssize_t out_w, Py_ssize_t kernel_w, Py_ssize_t stride_w,
                                             Py_ssize_t dilation_w, Py_ssize_t vector_length) noexcept nogil:
    """Elements per phase: room for max(out_w, vector_length) outputs of every tap, rounded up
    to a multiple of 16 elements so that every phase starts 64-byte aligned."""
    return (max(out_w, vector_length) + ((kernel_w - 1) * dilation_w) // stride_w + 15) // 16 * 16


cdef inline Py_ssize_t window_rows_row_len(Py_ssize_t phase_len, Py_ssize_t stride_w,
                                           Py_ssize_t itemsize) noexcept nogil:
    """Elements from one buffered row to the next: the phases, rounded up to 64 bytes."""
    return (stride_w * phase_len * itemsize + 63) // 64 * 64 // itemsize


cdef inline WindowRows window_rows_init(floating* buffer, Py_ssize_t rows, floating pad_value,
                                        Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t pad_h, Py_ssize_t pad_w,
                                        Py_ssize_t stride_w, Py_ssize_t phase_len) noexcept nogil:
    """The geometry of a buffer of ``rows`` rows, every element set to ``pad_value``."""
    cdef WindowRows g = pyconv_rows_geometry(in_h, in_w, pad_h, pad_w, stride_w, phase_len, sizeof(floating))
    if floating is float:
        pyconv_rows_set_f32(buffer, rows * g.row_len, pad_value)
    else:
        pyconv_rows_set_f64(buffer, rows * g.row_len, pad_value)
    return g


cdef inline void window_rows_fill(const WindowRows* g, floating* buffer, const floating* plane,
                                  Py_ssize_t first, Py_ssize_t count, floating pad_value) noexcept nogil:
    """Buffer rows 0..count-1 := padded rows first..first+count-1 of ``plane`` (H, W); NULL plane: all padding."""
    if floating is float:
        pyconv_rows_fill_f32(g, buffer, plane, first, count, pad_value)
    else:
        pyconv_rows_fill_f64(g, buffer, plane, first, count, pad_value)
