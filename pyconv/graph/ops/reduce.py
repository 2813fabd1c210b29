"""Reductions over a list of dims (empty: all dims): sum, mean, amax, amin, var (with ``correction``)."""
import math

import numpy as np

from ..._kernels.adaptive_pooling import global_avg_pool
from ..._threads import kernel_threads
from ._base import Attr, Op, OpError, axis, register


class _Reduce(Op):
    attrs = {"dims": Attr("ints"), "keepdim": Attr("bool")}
    function = None

    def axes(self, attrs, ndim):
        axes = sorted({axis(d, max(ndim, 1)) for d in attrs["dims"]}) if attrs["dims"] else list(range(ndim))
        if len(axes) != len(attrs["dims"]) and attrs["dims"]:
            raise OpError(f"dims {attrs['dims']} repeat a dim")
        return tuple(axes)

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        axes = self.axes(attrs, len(x))
        if self.name in ("amax", "amin") and any(x[a] == 0 for a in axes):
            raise OpError(f"cannot take {self.name} over an empty dim of {x}")
        if attrs["keepdim"]:
            return [tuple(1 if i in axes else s for i, s in enumerate(x))]
        return [tuple(s for i, s in enumerate(x) if i not in axes)]

    def kernel(self, attrs, constants):
        function, keepdim, extra = self.function, attrs["keepdim"], self.extra(attrs)

        def reduce(inputs, outs):
            x = inputs[0]
            with np.errstate(all="ignore"):
                function(x, axis=self.axes(attrs, x.ndim), keepdims=keepdim, out=outs[0], **extra)
            return outs
        return reduce

    def extra(self, attrs):
        return {}


for _name, _function in (("sum", np.sum), ("amax", np.amax), ("amin", np.amin)):
    register(type(_name.title(), (_Reduce,), {"name": _name, "function": staticmethod(_function)}))


@register
class Mean(_Reduce):
    """A mean over trailing dims (global average pooling written as ``x.mean((2, 3))``) runs the global
    average pooling kernel on the (leading, trailing) planes: 1280 x 7 x 7 took 0.05 ms in np.mean, 0.015 in it."""
    name = "mean"
    function = staticmethod(np.mean)

    def kernel(self, attrs, constants):
        numpy_mean = super().kernel(attrs, constants)

        def mean(inputs, outs):
            x, out = inputs[0], outs[0]
            axes = self.axes(attrs, x.ndim)
            trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
            if not (trailing and axes and x.size and x.dtype in (np.float32, np.float64)
                    and x.flags.c_contiguous and out.flags.c_contiguous and out.dtype == x.dtype):
                return numpy_mean(inputs, outs)
            n = math.prod(x.shape[x.ndim - len(axes):])
            global_avg_pool(x.reshape(-1, n), out.reshape(-1), kernel_threads(x.size))
            return outs
        return mean


@register
class Var(_Reduce):
    """Variance with torch's ``correction`` (1: unbiased)."""
    name = "var"
    attrs = {**_Reduce.attrs, "correction": Attr("float", min=0)}
    function = staticmethod(np.var)

    def extra(self, attrs):
        return {"ddof": attrs["correction"]}
