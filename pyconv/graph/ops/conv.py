"""Products: ``conv`` (plain and transposed, 1d/2d/3d, with a fused epilogue), ``linear`` and ``matmul``."""
import math
import threading

import numpy as np

from ...functional import prepack_conv
from ...functional._conv_plan import algorithm_class, bind_algorithm, run_algorithm
from ...functional.activation import KERNEL_ACTIVATIONS, activation_kernel
from ...functional.shapes import conv_output_shape, conv_transpose_output_shape
from ._base import Attr, Op, OpError, register

ACTIVATIONS = tuple(a for a in KERNEL_ACTIVATIONS if a != "identity")


@register
class Conv(Op):
    """activation((conv(input, weight) + bias) * scale + shift + residual); ``transposed`` for conv_transpose.

    scale/shift (per output channel) come from folded batch norms, residual
    from a fused residual add, activation from a fused activation.
    """
    name = "conv"
    inputs = ("input", "weight:const", "bias?:const", "scale?:const", "shift?:const", "residual?")
    attrs = {
        "stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"), "groups": Attr("int", min=1),
        "transposed": Attr("bool"), "output_padding": Attr("ints"),
        "activation": Attr("choice", choices=ACTIVATIONS, optional=True), "activation_args": Attr("args"),
    }

    def infer(self, shapes, attrs, batch, constants):
        x, weight = shapes[0], shapes[1]
        dims = len(weight) - 2
        if dims not in (1, 2, 3) or len(x) != dims + 2:
            raise OpError(f"expected a 3D-5D weight and an input with 2 more dims than spatial ones, "
                          f"got weight {weight} and input {x}")
        for key in ("stride", "padding", "dilation", "output_padding"):
            if len(attrs[key]) != dims:
                raise OpError(f"expected {key} to have {dims} entries, got {attrs[key]}")
        groups = attrs["groups"]
        if attrs["transposed"]:
            in_channels, out_channels = weight[0], weight[1] * groups
            if any(p >= max(s, d) for p, s, d in zip(attrs["output_padding"], attrs["stride"], attrs["dilation"])):
                raise OpError(f"output_padding {attrs['output_padding']} must be smaller than stride or dilation")
            spatial = conv_transpose_output_shape(x[2:], weight[2:], attrs["stride"], attrs["padding"],
                                                  attrs["output_padding"], attrs["dilation"])
        else:
            in_channels, out_channels = weight[1] * groups, weight[0]
            if any(attrs["output_padding"]):
                raise OpError(f"output_padding {attrs['output_padding']} is for transposed convolutions only")
            spatial = conv_output_shape(x[2:], weight[2:], attrs["stride"], attrs["padding"], attrs["dilation"])
        if weight[0] % groups or in_channels != x[1] or out_channels % groups:
            raise OpError(f"input {x} does not fit weight {weight} with groups={groups}")
        if any(s <= 0 for s in spatial):
            raise OpError(f"input {x} is too small for weight {weight}: output size {spatial}")
        out = (x[0], out_channels) + tuple(spatial)
        for position in (2, 3, 4):
            if shapes[position] is not None and shapes[position] != (out_channels,):
                raise OpError(f"expected {self.input_name(position)} of shape ({out_channels},), "
                              f"got {shapes[position]}")
        if shapes[5] is not None and shapes[5] != out:
            raise OpError(f"expected residual of the output's shape {out}, got {shapes[5]}")
        if attrs["activation"] is not None:
            activation_kernel(attrs["activation"], "conv", **attrs["activation_args"])
        return [out]

    def kernel(self, attrs, constants):
        return ConvKernel(attrs, *constants[1:5])

    def macs(self, shapes, out_shapes, attrs):
        x, weight, out = shapes[0], shapes[1], out_shapes[0]
        if attrs["transposed"]:
            return math.prod(x) * math.prod(weight[1:])
        return math.prod(out) * math.prod(weight[1:])


class ConvKernel:
    """A prepacked convolution writing into a given output; the algorithm is chosen per input shape and
    each algorithm packs the weights once (``prepare``), under a lock so concurrent calls share it."""

    def __init__(self, attrs, weight, bias, scale, shift):
        self.conv = prepack_conv(
            weight, bias, tuple(attrs["stride"]), tuple(attrs["padding"]), tuple(attrs["dilation"]), attrs["groups"],
            transposed=attrs["transposed"], output_padding=tuple(attrs["output_padding"]), scale=scale, shift=shift,
            activation=attrs["activation"], activation_args=attrs["activation_args"])
        self._implementations = {}
        self._lock = threading.Lock()

    def algorithm(self, input_shape):
        return self.conv.algorithm_for(input_shape)

    def prepare(self, input_shape):
        """The algorithm object 'auto' runs on inputs of ``input_shape``, packing its weights on first use."""
        return self.implementation(self.conv.algorithm_for(input_shape))

    def implementation(self, name):
        """The object of algorithm ``name``, packing its weights on first use."""
        implementation = self._implementations.get(name)
        if implementation is None:
            with self._lock:
                implementation = self._implementations.get(name)
                if implementation is None:
                    cls = algorithm_class(self.conv.problem.op, name)
                    implementation = self._implementations[name] = cls(self.conv.problem, self.conv.weight)
        return implementation

    def run(self, implementation, inputs, outs):
        """Fill ``outs[0]`` with algorithm object ``implementation`` on ``inputs`` (input, ..., residual)."""
        if outs[0].size:
            run_algorithm(implementation, inputs[0], outs[0], self.conv.epilogue, inputs[5])
        return outs

    def __call__(self, inputs, outs):
        return self.run(self.prepare(inputs[0].shape), inputs, outs)

    def bind(self, input_shapes, output_shapes, implementation=None):
        """The kernel for one plan: ``call(inputs, outs)`` on inputs of ``input_shapes`` only, running
        ``implementation`` (default: the one 'auto' picks) with its per-call work done once."""
        if not math.prod(output_shapes[0]):
            return lambda inputs, outs: outs
        implementation = implementation or self.prepare(input_shapes[0])
        run = bind_algorithm(implementation, input_shapes[0], output_shapes[0], self.conv.epilogue)

        def call(inputs, outs):
            run(inputs[0], outs[0], inputs[5])
            return outs
        return call


@register
class Linear(Op):
    """input (*, in) @ weight.T + bias -> (*, out), as torch's linear."""
    name = "linear"
    inputs = ("input", "weight:const", "bias?:const")

    def infer(self, shapes, attrs, batch, constants):
        x, weight, bias = shapes
        if len(weight) != 2 or not x or x[-1] != weight[1]:
            raise OpError(f"input {x} does not fit weight {weight} (out_features, in_features)")
        if bias is not None and bias != (weight[0],):
            raise OpError(f"expected bias of shape ({weight[0]},), got {bias}")
        return [x[:-1] + (weight[0],)]

    def kernel(self, attrs, constants):
        weight_t, bias = constants[1].T, constants[2]

        def linear(inputs, outs):
            x, out = inputs[0], outs[0]
            rows = out.reshape(-1, out.shape[-1])
            np.matmul(x.reshape(-1, x.shape[-1]), weight_t, out=rows)
            if bias is not None:
                rows += bias
            return outs
        return linear

    def macs(self, shapes, out_shapes, attrs):
        return math.prod(out_shapes[0]) * shapes[1][1]


@register
class MatMul(Op):
    """input @ other with numpy's (= torch's) broadcasting of the leading dims; both at least 2D."""
    name = "matmul"
    inputs = ("input", "other")

    def infer(self, shapes, attrs, batch, constants):
        a, b = shapes
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise OpError(f"cannot multiply shapes {a} and {b} (both at least 2D, inner sizes equal)")
        return [tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])]

    def kernel(self, attrs, constants):
        def matmul(inputs, outs):
            np.matmul(inputs[0], inputs[1], out=outs[0])
            return outs
        return matmul

    def macs(self, shapes, out_shapes, attrs):
        return math.prod(out_shapes[0]) * shapes[0][-1]
