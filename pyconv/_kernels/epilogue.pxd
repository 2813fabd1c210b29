# Fused epilogue of the fast convolution kernels: while an output row is still
# in cache, each kernel finishes it with
#     y = activation(conv * scale[c] + shift[c] + residual)
# where c is the row's output channel.  Each part is optional: scale NULL
# means 1, shift NULL means 0 (a plain bias is shift with scale NULL, so it
# costs one add), residual NULL means no residual; activation ACT_IDENTITY
# (from activation.pxd) means none.  The Python layer folds conv bias and
# batch-norm into scale/shift (pyconv/functional/_conv_plan.py, Epilogue).
#
#     from pyconv._kernels.epilogue cimport Epilogue, epilogue_init, epilogue_row
#
# The struct holds untyped pointers so one struct serves float32 and float64:
# scale and shift point to out_channels elements of the output dtype, residual
# to an array laid out exactly as the output (same shape, C-contiguous).
from cython cimport floating

from pyconv._kernels.activation cimport (ACT_HARDTANH, ACT_IDENTITY, ACT_RELU, act_hardtanh, act_relu,
                                         activation_row)

cdef struct Epilogue:
    const void* scale       # (out_channels,) or NULL
    const void* shift       # (out_channels,) or NULL
    const void* residual    # like the output, or NULL
    int activation          # ACT_* of activation.pxd
    double p0, p1, p2       # its parameters (see activation.pxd)


cdef inline Epilogue epilogue_init(const void* scale, const void* shift, const void* residual,
                                   int activation, double p0, double p1, double p2) noexcept nogil:
    cdef Epilogue ep
    ep.scale = scale
    ep.shift = shift
    ep.residual = residual
    ep.activation = activation
    ep.p0 = p0
    ep.p1 = p1
    ep.p2 = p2
    return ep


cdef inline bint epilogue_is_identity(const Epilogue* ep) noexcept nogil:
    return (ep.scale == NULL and ep.shift == NULL and ep.residual == NULL
            and ep.activation == ACT_IDENTITY)


cdef inline void epilogue_row(const Epilogue* ep, floating* output, Py_ssize_t offset,
                              Py_ssize_t n, Py_ssize_t channel) noexcept nogil:
    # Finishes output[offset:offset + n] in place; all n elements belong to
    # output channel `channel`; offset indexes the whole (C-contiguous) output,
    # so the residual element of output[offset + i] is residual[offset + i].
    cdef floating* row = output + offset
    cdef const floating* residual
    cdef floating scale, shift, low, high
    cdef Py_ssize_t i
    if ep.activation == ACT_RELU or ep.activation == ACT_HARDTANH:
        # One pass: the same operations in the same order as the passes below (x * 1 and
        # x + -0.0 are exact for every x, -0.0 included), so the same bits.
        scale = 1 if ep.scale == NULL else (<const floating*>ep.scale)[channel]
        shift = -0.0 if ep.shift == NULL else (<const floating*>ep.shift)[channel]
        residual = (<const floating*>ep.residual) + offset if ep.residual != NULL else NULL
        if ep.activation == ACT_RELU:
            if residual == NULL:
                for i in range(n):
                    row[i] = act_relu(row[i] * scale + shift)
            else:
                for i in range(n):
                    row[i] = act_relu((row[i] * scale + shift) + residual[i])
        else:
            low, high = <floating>ep.p0, <floating>ep.p1
            if residual == NULL:
                for i in range(n):
                    row[i] = act_hardtanh(row[i] * scale + shift, low, high)
            else:
                for i in range(n):
                    row[i] = act_hardtanh((row[i] * scale + shift) + residual[i], low, high)
        return
    if ep.scale != NULL:
        scale = (<const floating*>ep.scale)[channel]
        shift = 0 if ep.shift == NULL else (<const floating*>ep.shift)[channel]
        for i in range(n):
            row[i] = row[i] * scale + shift
    elif ep.shift != NULL:
        shift = (<const floating*>ep.shift)[channel]
        for i in range(n):
            row[i] = row[i] + shift
    if ep.residual != NULL:
        residual = (<const floating*>ep.residual) + offset
        for i in range(n):
            row[i] = row[i] + residual[i]
    if ep.activation != ACT_IDENTITY:
        activation_row(row, row, n, ep.activation, ep.p0, ep.p1, ep.p2)
