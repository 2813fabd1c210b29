"""Graph passes.  Each takes a Graph and ``keep`` (value names that must stay observable, e.g. requested
intermediate values) and returns an equivalent Graph; none changes the loaded graph.

- ``fold_constants``: nodes whose inputs are all constants become constants.
- ``fold_batch_norm``: a batch norm after a conv becomes the conv's epilogue scale/shift; after a linear
  layer it is folded into the weights.
- ``fuse_epilogue``: a per-channel constant add (a bias), a residual add and an activation after a conv
  move into the conv's epilogue, in the epilogue's order; an activation after a batch norm that no conv
  took (DenseNet's pre-activation) joins it in one ``channel_affine`` node.
- ``fuse_concatenation``: a concatenation along the channels read only by a batch_norm or channel_affine
  node (DenseNet's layers) joins it in one ``cat_channel_affine`` node, which never forms the
  concatenation.
- ``fuse_channel_shuffle``: a channel shuffle (a channel_shuffle node, or reshape, transpose, reshape as
  ShuffleNet writes it), with the concatenation along the channels that defines its input and the split along
  the channels that reads its output (values each read once and not kept), becomes one ``cat_shuffle`` node,
  which copies each channel once.
- ``eliminate_dead_nodes``: nodes and constants no output (or kept value) depends on are dropped.
"""
import numpy as np

from ..functional import fold_batch_norm as _batch_norm_scale_shift
from ..functional.normalization import batch_norm_affine
from .ir import DTYPES
from .ops import OPS

__all__ = ["fold_constants", "fold_batch_norm", "fuse_epilogue", "fuse_concatenation", "fuse_channel_shuffle",
           "eliminate_dead_nodes", "DEFAULT_PASSES", "evaluate"]


def evaluate(node, arrays):
    """The outputs of ``node`` on input arrays (None for absent inputs), without batch dims."""
    spec = OPS[node.op]
    shapes = spec.infer([None if a is None else a.shape for a in arrays], node.attrs, 1, arrays)
    if spec.view:
        return [arrays[0].reshape(shapes[0])]
    kernel = spec.kernel(node.attrs, arrays)
    if spec.writes_out:
        return kernel(arrays, [np.empty(s, DTYPES[v.dtype]) for s, v in zip(shapes, node.outputs)])
    return kernel(arrays, None)


def fold_constants(graph, keep=frozenset()):
    constants = dict(graph.constants)
    nodes = []
    for node in graph.nodes:
        names = [n for n in node.inputs if n is not None]
        if names and all(n in constants for n in names):
            results = evaluate(node, [None if n is None else constants[n] for n in node.inputs])
            for value, array in zip(node.outputs, results):
                constants[value.name] = np.ascontiguousarray(array, DTYPES[value.dtype])
        else:
            nodes.append(node)
    return graph.replace(nodes=tuple(nodes), constants=constants)


class _Rewriter:
    """In-order fusion of a consumer into its producer: the fused node takes the consumer's place
    (where all its inputs are defined) and the consumer's outputs."""

    def __init__(self, graph, keep):
        self.graph = graph
        self.nodes = list(graph.nodes)
        self.position = {v.name: i for i, node in enumerate(self.nodes) for v in node.outputs}
        self.users = graph.consumers()
        self.fixed = set(keep) | set(graph.outputs)
        self.constants = dict(graph.constants)
        self.shapes = {name: value.shape for name, value in graph.values().items()}

    def fusable_producer(self, name, ops):
        """The node defining ``name`` if it is one of ``ops`` and ``name`` is read only once and not kept."""
        if name is None or name in self.fixed or len(self.users.get(name, ())) != 1 or name not in self.position:
            return None
        node = self.nodes[self.position[name]]
        return node if node.op in ops else None

    def fuse(self, producer, consumer, op=None, attrs=None, **changes):
        """Replace ``producer`` and ``consumer`` by ``producer`` with ``changes`` (or as node ``op`` with
        ``attrs``) and the consumer's outputs."""
        place = self.position[consumer.outputs[0].name]
        self.nodes[self.position[producer.outputs[0].name]] = None
        fused = producer.__class__(op or producer.op, changes.pop("inputs", producer.inputs), consumer.outputs,
                                   attrs if attrs is not None else {**producer.attrs, **changes}, producer.scope,
                                   (producer.origin or (producer,)) + (consumer.origin or (consumer,)))
        self.nodes[place] = fused
        for value in fused.outputs:
            self.position[value.name] = place
        return fused

    def constant(self, name, array):
        """A new constant named ``name`` (with a suffix if that names a constant or value already)."""
        taken = self.constants.keys() | self.shapes.keys()
        unique, suffix = name, 1
        while unique in taken:
            unique, suffix = f"{name}.{suffix}", suffix + 1
        self.constants[unique] = np.ascontiguousarray(array, np.float32)
        return unique

    def result(self):
        return self.graph.replace(nodes=tuple(n for n in self.nodes if n is not None), constants=self.constants)


def _epilogue_free(conv):
    return conv.attrs["activation"] is None and conv.inputs[5] is None


def fold_batch_norm(graph, keep=frozenset()):
    rewriter = _Rewriter(graph, keep)
    c = rewriter.constants
    for node in graph.nodes:
        if node.op != "batch_norm":
            continue
        producer = rewriter.fusable_producer(node.inputs[0], ("conv", "linear"))
        if producer is None or producer.op == "conv" and not _epilogue_free(producer):
            continue
        if producer.op == "linear" and len(node.outputs[0].shape) != 2:
            continue  # batch norm over dim 1 of (N, L, features) is not per output feature
        mean, var, weight, bias = (None if n is None else c[n] for n in node.inputs[1:])
        scale, shift = _batch_norm_scale_shift(mean, var, weight, bias, node.attrs["eps"])
        out = node.outputs[0].name
        if producer.op == "conv":
            old_scale, old_shift = (None if n is None else c[n].astype(np.float64) for n in producer.inputs[3:5])
            new_scale = scale if old_scale is None else old_scale * scale
            new_shift = shift if old_shift is None else old_shift * scale + shift
            inputs = producer.inputs[:3] + (rewriter.constant(out + ".scale", new_scale),
                                            rewriter.constant(out + ".shift", new_shift), None)
        else:
            w = c[producer.inputs[1]].astype(np.float64) * scale[:, None]
            b = shift if producer.inputs[2] is None else c[producer.inputs[2]].astype(np.float64) * scale + shift
            inputs = (producer.inputs[0], rewriter.constant(out + ".weight", w), rewriter.constant(out + ".bias", b))
        rewriter.fuse(producer, node, inputs=inputs)
    return rewriter.result()


def _channel_vector(array, output_shape):
    """``array`` as a (C,) vector if it broadcasts as one value per channel (dim 1) of ``output_shape``."""
    channels, ndim = output_shape[1], len(output_shape)
    if array.shape in ((channels,) + (1,) * (ndim - 2), (1, channels) + (1,) * (ndim - 2)):
        return array.reshape(channels)
    return None


def _fuse_batch_norm_activation(rewriter, batch_norm, activation):
    """A batch norm (one no conv took) and the activation after it as one channel_affine node: one pass
    over the values instead of two, with the batch norm's own scale and shift (batch_norm_affine)."""
    c = rewriter.constants
    mean, var, weight, bias = (None if n is None else c[n] for n in batch_norm.inputs[1:])
    scale, shift = batch_norm_affine(mean, var, weight, bias, batch_norm.attrs["eps"],
                                     DTYPES[batch_norm.outputs[0].dtype])
    out = activation.outputs[0].name
    inputs = (batch_norm.inputs[0], rewriter.constant(out + ".scale", scale), rewriter.constant(out + ".shift", shift))
    rewriter.fuse(batch_norm, activation, op="channel_affine", inputs=inputs,
                  attrs={"activation": activation.attrs["function"], "activation_args": activation.attrs["args"]})


def fuse_epilogue(graph, keep=frozenset()):
    rewriter = _Rewriter(graph, keep)
    c = rewriter.constants
    for node in graph.nodes:
        if node.op == "activation":
            producer = rewriter.fusable_producer(node.inputs[0], ("conv", "batch_norm"))
            if producer is not None and producer.op == "batch_norm":
                _fuse_batch_norm_activation(rewriter, producer, node)
            elif producer is not None and producer.attrs["activation"] is None:
                rewriter.fuse(producer, node, activation=node.attrs["function"], activation_args=node.attrs["args"])
        elif node.op == "add" and node.attrs["scalar"] is None:
            candidates = []
            for name, other in (node.inputs, node.inputs[::-1]):
                conv = rewriter.fusable_producer(name, ("conv",))
                if conv is not None and _epilogue_free(conv) and conv.outputs[0].shape == node.outputs[0].shape:
                    candidates.append((rewriter.position[name], conv, other))
            if not candidates:
                continue
            _, conv, other = max(candidates, key=lambda item: item[0])
            if other in c:
                vector = _channel_vector(c[other], node.outputs[0].shape)
                if vector is None:
                    continue
                old = conv.inputs[4]
                shift = vector.astype(np.float64) + (0 if old is None else c[old])
                inputs = conv.inputs[:4] + (rewriter.constant(node.outputs[0].name + ".shift", shift), None)
            elif rewriter.shapes.get(other) == node.outputs[0].shape:
                inputs = conv.inputs[:5] + (other,)
            else:
                continue
            rewriter.fuse(conv, node, inputs=inputs)
    return rewriter.result()


def fuse_concatenation(graph, keep=frozenset()):
    rewriter = _Rewriter(graph, keep)
    c = rewriter.constants
    for node in graph.nodes:
        if node.op not in ("batch_norm", "channel_affine"):
            continue
        cat = rewriter.fusable_producer(node.inputs[0], ("cat",))
        ndim = len(node.outputs[0].shape)
        if cat is None or ndim < 2 or cat.attrs["dim"] % ndim != 1:
            continue
        out = node.outputs[0].name
        if node.op == "batch_norm":
            mean, var, weight, bias = (None if n is None else c[n] for n in node.inputs[1:])
            scale, shift = batch_norm_affine(mean, var, weight, bias, node.attrs["eps"], DTYPES[node.outputs[0].dtype])
            affine = (rewriter.constant(out + ".scale", scale), rewriter.constant(out + ".shift", shift))
            attrs = {"activation": None, "activation_args": {}}
        else:
            affine, attrs = node.inputs[1:3], node.attrs
        rewriter.fuse(cat, node, op="cat_channel_affine", inputs=affine + tuple(cat.inputs), attrs=dict(attrs))
    return rewriter.result()


def fuse_channel_shuffle(graph, keep=frozenset()):
    """Each channel shuffle (_channel_shuffle) as one cat_shuffle node, which takes in the concatenation along
    the channels that defines its input and the split along the channels that reads its output when those
    values are each read once and not kept."""
    rewriter = _Rewriter(graph, keep)
    for node in graph.nodes:
        found = _channel_shuffle(rewriter, node)
        if found is None:
            continue
        source, groups, shuffle = found          # shuffle: its nodes, the last defining the shuffled value
        ndim = len(rewriter.shapes[source])
        cat = rewriter.fusable_producer(source, ("cat",))
        if cat is None or cat.attrs["dim"] % ndim != 1:
            cat = None
        chain = ([] if cat is None else [cat]) + shuffle
        split = _single_reader(rewriter, shuffle[-1].outputs[0].name, "split")
        if split is not None and split.attrs["dim"] % ndim == 1:
            chain.append(split)
            sizes, outputs = list(split.attrs["sizes"]), split.outputs
        else:
            sizes, outputs = [rewriter.shapes[source][1]], shuffle[-1].outputs
        last = chain[-1]
        place = rewriter.position[last.outputs[0].name]
        for absorbed in chain[:-1]:
            rewriter.nodes[rewriter.position[absorbed.outputs[0].name]] = None
        fused = last.__class__("cat_shuffle", (source,) if cat is None else cat.inputs, outputs,
                               {"groups": groups, "sizes": sizes}, shuffle[-1].scope,   # the shuffling block's
                               sum((n.origin or (n,) for n in chain), ()))
        rewriter.nodes[place] = fused
        for value in outputs:
            rewriter.position[value.name] = place
    return rewriter.result()


def _channel_shuffle(rewriter, node):
    """(input, groups, nodes) when ``node`` is a channel_shuffle node, or the transpose of a channel shuffle
    written out (reshape (N, C, *S) -> (N, g, C / g, *S), swap dims 1 and 2, reshape back) whose values are
    read once and not kept; else None."""
    shapes = rewriter.shapes
    if node.op == "channel_shuffle" and node.inputs[0] in shapes and len(shapes[node.inputs[0]]) >= 3:
        return node.inputs[0], node.attrs["groups"], [node]
    if node.op != "permute":
        return None
    grouped = rewriter.fusable_producer(node.inputs[0], ("reshape",))
    back = _single_reader(rewriter, node.outputs[0].name, "reshape")
    if grouped is None or back is None or grouped.inputs[0] not in shapes:
        return None
    x, split_view = shapes[grouped.inputs[0]], shapes[grouped.outputs[0].name]
    ndim = len(x)
    if (ndim < 3 or len(split_view) != ndim + 1 or list(node.attrs["dims"]) != [0, 2, 1] + list(range(3, ndim + 1))
            or shapes[back.outputs[0].name] != x or split_view[:1] + split_view[3:] != x[:1] + x[2:]
            or not all(isinstance(d, int) for d in split_view[1:3]) or split_view[1] * split_view[2] != x[1]):
        return None
    return grouped.inputs[0], split_view[1], [grouped, node, back]


def _single_reader(rewriter, name, op):
    """The one node reading ``name`` if it is an ``op`` node and ``name`` is not kept, else None."""
    readers = rewriter.users.get(name, ())
    if name in rewriter.fixed or len(readers) != 1 or readers[0].op != op:
        return None
    return readers[0]


def eliminate_dead_nodes(graph, keep=frozenset()):
    needed = set(graph.outputs) | set(keep)
    nodes = []
    for node in reversed(graph.nodes):
        if any(v.name in needed for v in node.outputs):
            nodes.append(node)
            needed.update(n for n in node.inputs if n is not None)
    constants = {k: v for k, v in graph.constants.items() if k in needed}
    return graph.replace(nodes=tuple(reversed(nodes)), constants=constants,
                         parameters=frozenset(p for p in graph.parameters if p in constants))


DEFAULT_PASSES = (fold_constants, fold_batch_norm, fuse_epilogue, fuse_concatenation, fuse_channel_shuffle,
                  eliminate_dead_nodes)
