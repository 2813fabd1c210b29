"""Pools (1d/2d/3d by the length of kernel_size / output_size): max (optionally with int64 indices),
average, adaptive average and max, and max_unpool."""
import math

import numpy as np

from ... import functional as F
from ...functional import pooling as _pool_functions
from ..._kernels import pooling as _pooling
from ..._threads import kernel_threads
from ...functional.shapes import pool_output_shape
from ._base import Attr, Op, OpError, register

_WINDOW = {"kernel_size": Attr("ints"), "stride": Attr("ints"), "padding": Attr("ints"), "ceil_mode": Attr("bool")}


def _spatial_dims(x, sizes, attrs, keys):
    """n = len(sizes) in 1..3, the input (N, C, *n spatial) and every listed attribute of n entries."""
    n = len(sizes)
    if n not in (1, 2, 3) or len(x) != n + 2:
        raise OpError(f"expected an input (N, C, *{n} spatial dims) for a {n}d pool, got {x}")
    for key in keys:
        if len(attrs[key]) != n:
            raise OpError(f"expected {key} to have {n} entries, got {attrs[key]}")
    return n


def _window_output(x, attrs, dilation):
    kernel, stride, padding = attrs["kernel_size"], attrs["stride"], attrs["padding"]
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise OpError(f"padding {padding} must be at most half of kernel_size {kernel}")
    out = pool_output_shape(x[2:], kernel, stride, padding, dilation, attrs["ceil_mode"])
    if any(o <= 0 for o in out) or 0 in x[1:]:
        raise OpError(f"input {x} is too small for kernel_size {kernel}: output size {out}")
    return x[:2] + tuple(out)


class _IndexedOutputs(Op):
    """An op whose second output, present when ``return_indices``, is the int64 argmax positions."""

    def output_count(self, attrs):
        return 2 if attrs["return_indices"] else 1

    def check_dtypes(self, inputs, outputs):
        super().check_dtypes(inputs, outputs[:1])
        if outputs[1:] not in ([], ["int64"]):
            raise OpError(f"output 1 (indices) must be int64, got {outputs[1]}")


def _hashable(value):
    """A list attribute as a tuple: the pooling functions check tuples of ints once and remember them (a list
    was checked on every call, a tenth of a small pool's time)."""
    return tuple(value) if isinstance(value, list) else value


@register
class MaxPool(_IndexedOutputs):
    name = "max_pool"
    attrs = {**_WINDOW, "dilation": Attr("ints"), "return_indices": Attr("bool")}

    def infer(self, shapes, attrs, batch, constants):
        _spatial_dims(shapes[0], attrs["kernel_size"], attrs, ("stride", "padding", "dilation"))
        out = _window_output(shapes[0], attrs, attrs["dilation"])
        return [out] * self.output_count(attrs)

    def kernel(self, attrs, constants):
        n = len(attrs["kernel_size"])
        args = [_hashable(attrs[k]) for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                              "return_indices")]

        def max_pool(inputs, outs):
            _pool_functions._max_pool(f"max_pool{n}d", n, inputs[0], *args, out=outs[0],
                                      indices=outs[1] if attrs["return_indices"] else None)
            return outs
        return max_pool


@register
class AvgPool(Op):
    name = "avg_pool"
    attrs = {**_WINDOW, "count_include_pad": Attr("bool"), "divisor_override": Attr("int", optional=True)}

    def infer(self, shapes, attrs, batch, constants):
        n = _spatial_dims(shapes[0], attrs["kernel_size"], attrs, ("stride", "padding"))
        if attrs["divisor_override"] is not None and (n == 1 or attrs["divisor_override"] == 0):
            raise OpError("divisor_override must be non-zero, and 1d average pools take none")
        if n == 3 and any(s < k for s, k in zip(shapes[0][2:], attrs["kernel_size"])):
            raise OpError(f"input {shapes[0]} is smaller than kernel_size {attrs['kernel_size']}")
        return [_window_output(shapes[0], attrs, [1] * n)]

    def kernel(self, attrs, constants):
        n = len(attrs["kernel_size"])
        args = [_hashable(attrs[k]) for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                              "divisor_override")]

        def avg_pool(inputs, outs):
            _pool_functions._avg_pool(f"avg_pool{n}d", n, inputs[0], *args, out=outs[0])
            return outs
        return avg_pool


@register
class AdaptiveAvgPool(Op):
    name = "adaptive_avg_pool"
    attrs = {"output_size": Attr("ints")}

    def infer(self, shapes, attrs, batch, constants):
        _spatial_dims(shapes[0], attrs["output_size"], attrs, ())
        if any(s < 0 for s in attrs["output_size"]) or 0 in shapes[0][2:]:
            raise OpError(f"expected output_size >= 0 and a non-empty input, got {attrs['output_size']} "
                          f"and {shapes[0]}")
        return [shapes[0][:2] + tuple(attrs["output_size"])]

    def kernel(self, attrs, constants):
        n, size = len(attrs["output_size"]), tuple(attrs["output_size"])

        def adaptive_avg_pool(inputs, outs):
            _pool_functions._adaptive_avg_pool(f"adaptive_avg_pool{n}d", n, inputs[0], size, out=outs[0])
            return outs
        return adaptive_avg_pool


@register
class AdaptiveMaxPool(_IndexedOutputs):
    name = "adaptive_max_pool"
    attrs = {"output_size": Attr("ints"), "return_indices": Attr("bool")}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        out = AdaptiveAvgPool.infer(self, shapes, attrs, batch, constants)
        return out * self.output_count(attrs)

    def kernel(self, attrs, constants):
        pool = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[len(attrs["output_size"]) - 1]
        size, indices = tuple(attrs["output_size"]), attrs["return_indices"]

        def adaptive_max_pool(inputs, outs):
            result = pool(inputs[0], size, indices)
            return result if indices else (result,)
        return adaptive_max_pool


@register
class MaxUnpool(Op):
    """Scatter ``input`` to the flat per-plane positions ``indices`` (int64) of zeroed planes of output_size."""
    name = "max_unpool"
    inputs = ("input", "indices")
    attrs = {"output_size": Attr("ints")}

    def check_dtypes(self, inputs, outputs):
        if inputs != ["float32", "int64"] or outputs != ["float32"]:
            raise OpError(f"expected a float32 input and int64 indices, got {inputs}")

    def infer(self, shapes, attrs, batch, constants):
        x, indices = shapes
        _spatial_dims(x, attrs["output_size"], attrs, ())
        if indices != x or any(s < 0 for s in attrs["output_size"]):
            raise OpError(f"expected indices of the input's shape {x} and output_size >= 0, got {indices} "
                          f"and {attrs['output_size']}")
        return [x[:2] + tuple(attrs["output_size"])]

    def kernel(self, attrs, constants):
        def max_unpool(inputs, outs):
            x, indices, out = inputs[0], inputs[1], outs[0]
            planes = math.prod(x.shape[:2])
            flat = out.reshape(planes, -1)
            flat.fill(0)
            outside = _pooling.max_unpool(x.reshape(planes, -1), np.ascontiguousarray(indices).reshape(planes, -1),
                                          flat, kernel_threads(x.size + out.size))
            if outside:
                raise ValueError(f"max_unpool: {outside} indices outside the output planes {out.shape[2:]}")
            return outs
        return max_unpool
