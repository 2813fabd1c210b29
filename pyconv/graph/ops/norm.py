"""Normalisations: inference ``batch_norm`` (and, made by the passes, ``channel_affine``: a batch norm with
the activation after it, and ``cat_channel_affine``: the same on a concatenation, without forming it),
``group_norm``, ``layer_norm``."""

import numpy as np

from ... import functional as F
from ..._kernels.normalization import cat_channel_affine, channel_affine
from ...functional.activation import activation_kernel
from ...functional.normalization import batch_norm_affine
from ..._threads import kernel_threads
from ._base import Attr, Op, OpError, register
from .conv import ACTIVATIONS


def _check_affine(shapes, positions, expected, names):
    for position, name in zip(positions, names):
        if shapes[position] is not None and shapes[position] != expected:
            raise OpError(f"expected {name} of shape {expected}, got {shapes[position]}")


def _channel_affine_kernel(scale, shift, kind=0, params=(0.0, 0.0, 0.0)):
    """The kernel of activation ``kind`` (ACT_*, 0: none) of input * scale + shift per channel (dim 1)."""
    def channel_affine_kernel(inputs, outs):
        x, out = inputs[0], outs[0]
        planes = (x.shape[0], x.shape[1], x.size // max(1, x.shape[0] * x.shape[1]))
        channel_affine(x.reshape(planes), scale, shift, out.reshape(planes), kernel_threads(x.size), kind, *params)
        return outs
    return channel_affine_kernel


@register
class BatchNorm(Op):
    """(input - running_mean) / sqrt(running_var + eps) * weight + bias over channel dim 1."""
    name = "batch_norm"
    inputs = ("input", "running_mean:const", "running_var:const", "weight?:const", "bias?:const")
    attrs = {"eps": Attr("float", min=0)}

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        if len(x) < 2:
            raise OpError(f"expected input with a channel dim (N, C, *), got {x}")
        _check_affine(shapes, (1, 2, 3, 4), (x[1],), ("running_mean", "running_var", "weight", "bias"))
        return [x]

    def kernel(self, attrs, constants):
        return _channel_affine_kernel(*batch_norm_affine(*constants[1:], attrs["eps"], constants[1].dtype))


@register
class ChannelAffine(Op):
    """activation(input * scale + shift) with one scale and shift per channel (dim 1): a batch norm and
    the activation after it, fused by passes.fuse_epilogue (the same bits as the two ops)."""
    name = "channel_affine"
    inputs = ("input", "scale:const", "shift:const")
    attrs = {"activation": Attr("choice", choices=ACTIVATIONS, optional=True), "activation_args": Attr("args")}

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        if len(x) < 2:
            raise OpError(f"expected input with a channel dim (N, C, *), got {x}")
        _check_affine(shapes, (1, 2), (x[1],), ("scale", "shift"))
        if attrs["activation"] is not None:
            activation_kernel(attrs["activation"], "channel_affine", **attrs["activation_args"])
        return [x]

    def kernel(self, attrs, constants):
        scale, shift = (np.ascontiguousarray(c, np.float32) for c in constants[1:])
        if attrs["activation"] is None:
            return _channel_affine_kernel(scale, shift)
        return _channel_affine_kernel(scale, shift, *activation_kernel(attrs["activation"], "channel_affine",
                                                                       **attrs["activation_args"]))


@register
class CatChannelAffine(Op):
    """activation(cat(inputs, dim=1) * scale + shift) with one scale and shift per channel: a
    concatenation read only by a batch norm (with or without an activation after it), as DenseNet's
    layers do, fused by passes.fuse_concatenation: one pass over the values instead of two, the same
    bits as the ops it replaces."""
    name = "cat_channel_affine"
    inputs = ("scale:const", "shift:const", "inputs*")
    attrs = ChannelAffine.attrs

    def infer(self, shapes, attrs, batch, constants):
        pieces = shapes[2:]
        first = pieces[0]
        if len(first) < 2 or any(len(s) != len(first) or s[0] != first[0] or s[2:] != first[2:] for s in pieces):
            raise OpError(f"expected inputs (N, C_k, *) that differ only in dim 1, got {pieces}")
        out = (first[0], sum(s[1] for s in pieces)) + tuple(first[2:])
        _check_affine(shapes, (0, 1), (out[1],), ("scale", "shift"))
        if attrs["activation"] is not None:
            activation_kernel(attrs["activation"], "cat_channel_affine", **attrs["activation_args"])
        return [out]

    def kernel(self, attrs, constants):
        scale, shift = (np.ascontiguousarray(c, np.float32) for c in constants[:2])
        kind, params = 0, (0.0, 0.0, 0.0)
        if attrs["activation"] is not None:
            kind, params = activation_kernel(attrs["activation"], "cat_channel_affine", **attrs["activation_args"])

        def cat_channel_affine_kernel(inputs, outs):
            out = outs[0]
            batch, inner = out.shape[0], out.size // max(1, out.shape[0] * out.shape[1])
            pieces = [np.ascontiguousarray(x).reshape(batch, x.shape[1], inner) for x in inputs[2:]]
            cat_channel_affine(pieces, scale, shift, out.reshape(batch, out.shape[1], inner),
                               kernel_threads(out.size), kind, *params)
            return outs
        return cat_channel_affine_kernel


@register
class GroupNorm(Op):
    """group_norm over ``num_groups`` groups of channels, per-channel affine weight and bias."""
    name = "group_norm"
    inputs = ("input", "weight?:const", "bias?:const")
    attrs = {"num_groups": Attr("int", min=1), "eps": Attr("float", min=0)}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        if len(x) < 2 or x[1] % attrs["num_groups"]:
            raise OpError(f"expected input (N, C, *) with C divisible by num_groups={attrs['num_groups']}, got {x}")
        _check_affine(shapes, (1, 2), (x[1],), ("weight", "bias"))
        return [x]

    def kernel(self, attrs, constants):
        weight, bias = constants[1:]
        return lambda inputs, outs: (F.group_norm(inputs[0], attrs["num_groups"], weight, bias, attrs["eps"]),)


@register
class LayerNorm(Op):
    """layer_norm over the trailing ``normalized_shape`` dims."""
    name = "layer_norm"
    inputs = ("input", "weight?:const", "bias?:const")
    attrs = {"normalized_shape": Attr("ints"), "eps": Attr("float", min=0)}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x, normalized = shapes[0], tuple(attrs["normalized_shape"])
        if not normalized or x[len(x) - len(normalized):] != normalized or len(normalized) > len(x):
            raise OpError(f"expected input ending in normalized_shape {list(normalized)}, got {x}")
        _check_affine(shapes, (1, 2), normalized, ("weight", "bias"))
        return [x]

    def kernel(self, attrs, constants):
        weight, bias = constants[1:]
        normalized = tuple(attrs["normalized_shape"])
        return lambda inputs, outs: (F.layer_norm(inputs[0], normalized, weight, bias, attrs["eps"]),)
