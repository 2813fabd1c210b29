"""Element-wise ops: activations, prelu, binary arithmetic with broadcasting, unary math, clamp, softmax."""
import numpy as np

from ... import functional as F
from ..._kernels import activation as _activation
from ..._threads import kernel_threads
from ...functional.activation import activation_kernel
from ._base import Attr, Op, OpError, axis, register
from .conv import ACTIVATIONS


@register
class Activation(Op):
    """One of pyconv.functional's pointwise activations, with torch's keyword arguments in ``args``."""
    name = "activation"
    attrs = {"function": Attr("choice", choices=ACTIVATIONS), "args": Attr("args")}

    def infer(self, shapes, attrs, batch, constants):
        activation_kernel(attrs["function"], "activation", **attrs["args"])
        return [shapes[0]]

    def kernel(self, attrs, constants):
        kind, (p0, p1, p2) = activation_kernel(attrs["function"], "activation", **attrs["args"])

        def activation(inputs, outs):
            flat = outs[0].reshape(-1)
            _activation.pointwise(inputs[0].reshape(-1), flat, kind, p0, p1, p2, kernel_threads(flat.size))
            return outs
        return activation


@register
class PReLU(Op):
    """prelu(input, weight): weight has 1 or C (input.shape[1]) entries."""
    name = "prelu"
    inputs = ("input", "weight:const")
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x, weight = shapes
        size = int(np.prod(weight))
        if len(weight) > 1 or size != 1 and (len(x) < 2 or size != x[1]):
            raise OpError(f"expected a weight of 1 or {x[1] if len(x) > 1 else 1} entries, got shape {weight}")
        return [x]

    def kernel(self, attrs, constants):
        weight = constants[1]
        return lambda inputs, outs: (F.prelu(inputs[0], weight),)


class _Binary(Op):
    """input <op> other, broadcast as numpy and torch do; other may be replaced by the number ``scalar``
    (``scalar_first``: scalar <op> input)."""
    inputs = ("input", "other?")
    attrs = {"scalar": Attr("float", optional=True), "scalar_first": Attr("bool")}
    ufunc = None

    def infer(self, shapes, attrs, batch, constants):
        if (shapes[1] is None) == (attrs["scalar"] is None):
            raise OpError("expected exactly one of the input 'other' and the attribute 'scalar'")
        if shapes[1] is None:
            return [shapes[0]]
        if attrs["scalar_first"]:
            raise OpError("scalar_first needs a scalar")
        return [tuple(np.broadcast_shapes(shapes[0], shapes[1]))]

    def kernel(self, attrs, constants):
        ufunc, scalar, first = self.ufunc, attrs["scalar"], attrs["scalar_first"]
        scalar = None if scalar is None else np.float32(scalar)

        def binary(inputs, outs):
            a, b = inputs[0], inputs[1] if scalar is None else scalar
            with np.errstate(all="ignore"):  # inf and nan as torch gives them
                if first:
                    ufunc(b, a, out=outs[0])
                else:
                    ufunc(a, b, out=outs[0])
            return outs
        return binary


class _Unary(Op):
    """ufunc(input) element-wise."""
    ufunc = None

    def infer(self, shapes, attrs, batch, constants):
        return [shapes[0]]

    def kernel(self, attrs, constants):
        ufunc = self.ufunc

        def unary(inputs, outs):
            with np.errstate(all="ignore"):
                ufunc(inputs[0], out=outs[0])
            return outs
        return unary


def _rsqrt(x, out):
    np.sqrt(x, out=out)
    return np.divide(1, out, out=out)


for _name, _ufunc in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.true_divide),
                      ("maximum", np.maximum), ("minimum", np.minimum), ("pow", np.power)):
    register(type(_name.title(), (_Binary,), {"name": _name, "ufunc": staticmethod(_ufunc)}))
for _name, _ufunc in (("neg", np.negative), ("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("rsqrt", _rsqrt),
                      ("abs", np.abs), ("reciprocal", np.reciprocal)):
    register(type(_name.title(), (_Unary,), {"name": _name, "ufunc": staticmethod(_ufunc)}))


@register
class Clamp(Op):
    """min(max(input, min), max); either bound may be null, not both."""
    name = "clamp"
    attrs = {"min": Attr("float", optional=True), "max": Attr("float", optional=True)}

    def infer(self, shapes, attrs, batch, constants):
        if attrs["min"] is None and attrs["max"] is None:
            raise OpError("expected at least one of min and max")
        return [shapes[0]]

    def kernel(self, attrs, constants):
        low, high = attrs["min"], attrs["max"]

        def clamp(inputs, outs):
            x, out = inputs[0], outs[0]
            if low is not None:
                np.maximum(x, np.float32(low), out=out)
                x = out
            if high is not None:
                np.minimum(x, np.float32(high), out=out)
            return outs
        return clamp


@register
class Softmax(Op):
    """softmax along ``dim`` (``log``: log_softmax)."""
    name = "softmax"
    attrs = {"dim": Attr("int"), "log": Attr("bool")}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        axis(attrs["dim"], max(len(shapes[0]), 1))
        return [shapes[0]]

    def kernel(self, attrs, constants):
        function = F.log_softmax if attrs["log"] else F.softmax
        return lambda inputs, outs: (function(inputs[0], attrs["dim"]),)
