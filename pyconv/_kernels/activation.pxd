# Pointwise activations as torch computes them on the CPU, one `cdef inline`
# scalar function each, for float32 and float64 (fused `floating`): constants
# and parameters are cast to the element type, and computed in it, as torch
# computes in the tensor's dtype.  float64 calls libm.  float32 calls libm's
# float versions except for exp, erf and tanh, which are polynomial approximations
# below (pyconv_expf within 1.4 ulp, pyconv_erff within 3.3e-7, pyconv_tanhf within
# 1.33 ulp; measured against double libm on a dense grid) written so that gcc vectorises the row
# loops: libm's expf and erff are scalar calls, and silu after a 1x1 conv took
# 12x the conv's time, gelu 45x (EfficientNet's SiLU layers, measured); tanhf likewise.
#
# Other kernels (conv epilogues, the graph executor) reuse them with
#     from pyconv._kernels.activation cimport activation_row, ACT_RELU, ...
# either per element (act_relu(x), act_gelu(x), ...) or per row:
#     activation_row(src, dst, n, kind, p0, p1, p2)
# which chooses the loop once per row so each loop stays vectorisable;
# src == dst (in place) is allowed.  Parameters per kind:
#     ACT_IDENTITY, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_HARDSWISH,
#     ACT_HARDSIGMOID, ACT_SILU, ACT_MISH, ACT_GELU, ACT_GELU_TANH: none
#     ACT_HARDTANH:   p0 = min_val, p1 = max_val   (relu6: 0, 6)
#     ACT_LEAKY_RELU: p0 = negative_slope           (rrelu eval: (lower + upper) / 2)
#     ACT_ELU:        p0 = negative coefficient, p1 = positive coefficient,
#                     p2 = input scale              (elu: alpha, 1, 1;
#                     selu: alpha * scale, scale, 1; celu: alpha, 1, 1 / alpha)
#     ACT_SOFTPLUS:   p0 = beta, p1 = threshold
# NaN propagates through every one of them, as in torch.
from cython cimport floating
from libc.math cimport M_SQRT1_2, erf, exp, expm1, expm1f, log1p, log1pf, tanh

cdef extern from *:
    """
    #ifndef PYCONV_FAST_MATH
    #define PYCONV_FAST_MATH
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* expf, vectorisable: exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in two parts
       (Cody-Waite), exp(r) by Cephes' degree-6 polynomial.  Below -87.34 (where libm's results are
       subnormal) 0, so exp(-Inf) = 0 exactly; above 88.376 Inf; NaN stays NaN. */
    static inline float pyconv_expf(float x)
    {
        float c = x > 88.3762626647949f ? 88.3762626647949f : x;
        c = c < -87.3365447505531f ? -87.3365447505531f : c;
        /* adding 1.5 * 2^23 rounds c / ln 2 to an integer n held in the low mantissa bits */
        float t = c * 1.44269504088896341f + 12582912.0f;
        float n = t - 12582912.0f;
        uint32_t bits;
        memcpy(&bits, &t, sizeof bits);
        bits = (bits - 0x4B400000u + 127u) << 23;         /* the bits of 2^n */
        float r = c - n * 0.693359375f;
        r = r - n * -2.12194440e-4f;
        float p = 1.9875691500E-4f;
        p = p * r + 1.3981999507E-3f;
        p = p * r + 8.3334519073E-3f;
        p = p * r + 4.1665795894E-2f;
        p = p * r + 1.6666665459E-1f;
        p = p * r + 5.0000001201E-1f;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        float y = (p * r * r + r + 1.0f) * scale;
        return x > 88.3762626647949f ? INFINITY : (x < -87.3365447505531f ? 0.0f : (x != x ? x : y));
    }
    /* erff, vectorisable: a rational function on [-4, 4] (erf is +-1 in float32 beyond), odd
       numerator of degree 13 over an even denominator of degree 8 (Eigen's generic_fast_erf_float
       coefficients); NaN stays NaN. */
    static inline float pyconv_erff(float x)
    {
        float c = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
        float x2 = c * c;
        float p = -2.72614225801306e-10f;
        p = p * x2 + 2.77068142495902e-08f;
        p = p * x2 + -2.10102402082508e-06f;
        p = p * x2 + -5.69250639462346e-05f;
        p = p * x2 + -7.34990630326855e-04f;
        p = p * x2 + -2.95459980854025e-03f;
        p = p * x2 + -1.60960333262415e-02f;
        p = p * c;
        float q = -1.45660718464996e-05f;
        q = q * x2 + -2.13374055278905e-04f;
        q = q * x2 + -1.68282697438203e-03f;
        q = q * x2 + -7.37332916720468e-03f;
        q = q * x2 + -1.42647390514189e-02f;
        return x != x ? x : p / q;
    }
    /* tanhf, vectorisable (Cephes' tanhf): on a = |x| < 0.625 an odd polynomial, a + a^3 P(a^2),
       else 1 - 2 / (exp(2a) + 1) (1 when exp overflows), with the sign of x (so tanh(-0) = -0);
       NaN stays NaN.  Within 1.33 ulp of double tanh over every float32 (libm's tanhf is a scalar
       call: a DCGAN's last layer spent 0.9 ms of its 1.5 in it at batch 8). */
    static inline float pyconv_tanhf(float x)
    {
        float a = fabsf(x);
        float s = a * a;
        float p = -5.70498872745E-3f;
        p = p * s + 2.06390887954E-2f;
        p = p * s + -5.37397155531E-2f;
        p = p * s + 1.33314422036E-1f;
        p = p * s + -3.33332819422E-1f;
        float small = p * s * a + a;
        float large = 1.0f - 2.0f / (pyconv_expf(a + a) + 1.0f);
        return x != x ? x : copysignf(a < 0.625f ? small : large, x);
    }
    #endif
    """
    float pyconv_expf(float x) noexcept nogil
    float pyconv_erff(float x) noexcept nogil
    float pyconv_tanhf(float x) noexcept nogil

cdef enum:
    ACT_IDENTITY = 0
    ACT_RELU = 1
    ACT_HARDTANH = 2
    ACT_LEAKY_RELU = 3
    ACT_ELU = 4
    ACT_SIGMOID = 5
    ACT_TANH = 6
    ACT_HARDSWISH = 7
    ACT_HARDSIGMOID = 8
    ACT_SILU = 9
    ACT_MISH = 10
    ACT_GELU = 11
    ACT_GELU_TANH = 12
    ACT_SOFTPLUS = 13


# libm in the element type's precision (float32 exp, erf and tanh: the approximations above).
cdef inline floating math_exp(floating x) noexcept nogil:
    if floating is float:
        return pyconv_expf(x)
    else:
        return exp(x)


cdef inline floating math_expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating math_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating math_tanh(floating x) noexcept nogil:
    if floating is float:
        return pyconv_tanhf(x)
    else:
        return tanh(x)


cdef inline floating math_erf(floating x) noexcept nogil:
    if floating is float:
        return pyconv_erff(x)
    else:
        return erf(x)


cdef inline floating act_relu(floating x) noexcept nogil:
    # torch: clamp_min(x, 0); NaN and -0.0 pass through.
    return <floating>0 if x < 0 else x


cdef inline floating act_hardtanh(floating x, floating min_val, floating max_val) noexcept nogil:
    # torch: clamp(x, min_val, max_val) = min(max(x, min_val), max_val) with NaN-propagating
    # min/max: NaN in x or in a bound gives NaN.  One comparison of x per bound (a comparison with a
    # NaN x is false, so x is kept), the form the compiler turns into maxps/minps; the bounds' own
    # NaN tests are loop-invariant.
    cdef floating t = min_val if (x < min_val or min_val != min_val) else x
    return max_val if (t > max_val or max_val != max_val) else t


cdef inline floating act_leaky_relu(floating x, floating negative_slope) noexcept nogil:
    return x if x > 0 else x * negative_slope


cdef inline floating act_elu(floating x, floating negative_coef, floating positive_coef,
                             floating input_scale) noexcept nogil:
    return math_expm1(x * input_scale) * negative_coef if x <= 0 else x * positive_coef


cdef inline floating act_sigmoid(floating x) noexcept nogil:
    return <floating>1 / (<floating>1 + math_exp(-x))


cdef inline floating act_tanh(floating x) noexcept nogil:
    return math_tanh(x)


cdef inline floating act_hardsigmoid(floating x) noexcept nogil:
    # torch: min(max(x + 3, 0), 6) / 6
    cdef floating t = x + <floating>3
    t = <floating>0 if t < 0 else t
    t = <floating>6 if t > 6 else t
    return t / <floating>6


cdef inline floating act_hardswish(floating x) noexcept nogil:
    # torch: x * min(max(x + 3, 0), 6) / 6
    cdef floating t = x + <floating>3
    t = <floating>0 if t < 0 else t
    t = <floating>6 if t > 6 else t
    return x * t / <floating>6


cdef inline floating act_silu(floating x) noexcept nogil:
    return x / (<floating>1 + math_exp(-x))


cdef inline floating act_mish(floating x) noexcept nogil:
    return x * math_tanh(math_log1p(math_exp(x)))


cdef inline floating act_gelu(floating x) noexcept nogil:
    # torch approximate='none': x * 0.5 * (1 + erf(x / sqrt(2)))
    return x * <floating>0.5 * (<floating>1 + math_erf(x * <floating>M_SQRT1_2))


cdef inline floating act_gelu_tanh(floating x) noexcept nogil:
    # torch approximate='tanh': 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    cdef floating inner = <floating>0.7978845608028654 * (x + <floating>0.044715 * (x * x * x))
    return <floating>0.5 * x * (<floating>1 + math_tanh(inner))


cdef inline floating act_softplus(floating x, floating beta, floating threshold) noexcept nogil:
    # torch: x if x * beta > threshold else log1p(exp(x * beta)) / beta
    return x if x * beta > threshold else math_log1p(math_exp(x * beta)) / beta


cdef inline void activation_row(const floating* src, floating* dst, Py_ssize_t n, int kind,
                                double p0, double p1, double p2) noexcept nogil:
    # dst[i] = activation(src[i]) for i < n; src may equal dst.
    cdef Py_ssize_t i
    cdef floating a = <floating>p0
    cdef floating b = <floating>p1
    cdef floating c = <floating>p2
    if kind == ACT_RELU:
        for i in range(n):
            dst[i] = act_relu(src[i])
    elif kind == ACT_HARDTANH:
        for i in range(n):
            dst[i] = act_hardtanh(src[i], a, b)
    elif kind == ACT_LEAKY_RELU:
        for i in range(n):
            dst[i] = act_leaky_relu(src[i], a)
    elif kind == ACT_ELU:
        for i in range(n):
            dst[i] = act_elu(src[i], a, b, c)
    elif kind == ACT_SIGMOID:
        for i in range(n):
            dst[i] = act_sigmoid(src[i])
    elif kind == ACT_TANH:
        for i in range(n):
            dst[i] = act_tanh(src[i])
    elif kind == ACT_HARDSWISH:
        for i in range(n):
            dst[i] = act_hardswish(src[i])
    elif kind == ACT_HARDSIGMOID:
        for i in range(n):
            dst[i] = act_hardsigmoid(src[i])
    elif kind == ACT_SILU:
        for i in range(n):
            dst[i] = act_silu(src[i])
    elif kind == ACT_MISH:
        for i in range(n):
            dst[i] = act_mish(src[i])
    elif kind == ACT_GELU:
        for i in range(n):
            dst[i] = act_gelu(src[i])
    elif kind == ACT_GELU_TANH:
        for i in range(n):
            dst[i] = act_gelu_tanh(src[i])
    elif kind == ACT_SOFTPLUS:
        for i in range(n):
            dst[i] = act_softplus(src[i], a, b)
    elif src != dst:
        for i in range(n):
            dst[i] = src[i]
