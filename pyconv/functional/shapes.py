"""Output-size formulas, as torch documents them for Conv, ConvTranspose and pools.

Each takes per-dimension sizes (an int or a tuple; ints broadcast over the
spatial dimensions) and returns a tuple of output sizes, one per dimension.
They only compute: the ops check their arguments before calling them.
"""
from ._checks import as_tuple

__all__ = ["conv_output_shape", "conv_transpose_output_shape", "pool_output_shape"]


def _spatial(input_size, op):
    if isinstance(input_size, (list, tuple)):
        return as_tuple(input_size, len(input_size), "input_size", op, minimum=0)
    return as_tuple(input_size, 1, "input_size", op, minimum=0)


def conv_output_shape(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """``floor((L + 2p - d(k-1) - 1) / s) + 1`` for each spatial dimension."""
    op = "conv_output_shape"
    size = _spatial(input_size, op)
    n = len(size)
    k = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    s = as_tuple(stride, n, "stride", op, minimum=1)
    p = as_tuple(padding, n, "padding", op, minimum=0)
    d = as_tuple(dilation, n, "dilation", op, minimum=1)
    return tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n))


def conv_transpose_output_shape(input_size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """``(L - 1)s - 2p + d(k-1) + output_padding + 1`` for each spatial dimension."""
    op = "conv_transpose_output_shape"
    size = _spatial(input_size, op)
    n = len(size)
    k = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    s = as_tuple(stride, n, "stride", op, minimum=1)
    p = as_tuple(padding, n, "padding", op, minimum=0)
    op_ = as_tuple(output_padding, n, "output_padding", op, minimum=0)
    d = as_tuple(dilation, n, "dilation", op, minimum=1)
    return tuple((size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op_[i] + 1 for i in range(n))


def pool_output_shape(input_size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Pooling output size; with ``ceil_mode`` the last window must start inside the input or left padding."""
    op = "pool_output_shape"
    size = _spatial(input_size, op)
    n = len(size)
    k = as_tuple(kernel_size, n, "kernel_size", op, minimum=1)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else as_tuple(
        stride, n, "stride", op, minimum=1)
    p = as_tuple(padding, n, "padding", op, minimum=0)
    d = as_tuple(dilation, n, "dilation", op, minimum=1)
    out = []
    for i in range(n):
        span = size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
        if ceil_mode:
            length = -(-span // s[i]) + 1
            if (length - 1) * s[i] >= size[i] + p[i]:
                length -= 1
        else:
            length = span // s[i] + 1
        out.append(length)
    return tuple(out)


def lift_to_3d(values, fill):
    """Per-dimension ``values`` of a 1-D or 2-D op as 3 values: ``fill`` for the leading dimensions the
    kernels (which see every op as 3-D) add."""
    return (fill,) * (3 - len(values)) + tuple(values)
