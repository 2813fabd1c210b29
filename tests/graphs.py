"""Small graphs built by hand (no torch) for the graph tests: a residual CNN block with two inputs and
two outputs, and a helper to write .pyconv files with any metadata."""
import json

import numpy as np
import safetensors.numpy

import pyconv.functional as F

from pyconv.graph import Graph, Node, Value
from pyconv.graph.file import _checksum

CONV = {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1, "transposed": False,
        "output_padding": [0, 0], "activation": None, "activation_args": {}}
NO_SCALAR = {"scalar": None, "scalar_first": False}


def node(op, inputs, outputs, attrs=None, scope=""):
    """A Node; ``outputs`` are (name, shape) or (name, shape, dtype)."""
    return Node(op, tuple(inputs), tuple(Value(*o) for o in outputs), attrs or {}, scope)


def residual_block(seed=0, channels=4):
    """x (N, 3, 8, 8), s (N, C, 8, 8) -> (logits (N, 5), features (N, C, 8, 8)):
    stem conv+bn+relu, conv+bn + s + stem (a residual add with a bias add), relu, mean, linear."""
    rng = np.random.default_rng(seed)
    c = channels

    def array(*shape, low=None):
        values = rng.standard_normal(shape).astype(np.float32)
        return np.abs(values) + low if low is not None else values

    constants = {
        "stem.weight": array(c, 3, 3, 3) * 0.3, "stem.bias": array(c),
        "bn.mean": array(c), "bn.var": array(c, low=0.5), "bn.weight": array(c, low=0.5), "bn.bias": array(c),
        "conv.weight": array(c, c, 3, 3) * 0.3,
        "bn2.mean": array(c), "bn2.var": array(c, low=0.5), "bn2.weight": array(c), "bn2.bias": array(c),
        "shift": array(c, 1, 1), "fc.weight": array(5, c), "fc.bias": array(5),
    }
    n, f = "N", ("N", c, 8, 8)
    nodes = (
        node("conv", ["x", "stem.weight", "stem.bias", None, None, None], [("stem", f)], CONV, "stem"),
        node("batch_norm", ["stem", "bn.mean", "bn.var", "bn.weight", "bn.bias"], [("bn", f)], {"eps": 1e-5}, "bn"),
        node("activation", ["bn"], [("relu", f)], {"function": "relu", "args": {}}, "relu"),
        node("conv", ["relu", "conv.weight", None, None, None, None], [("conv", f)], CONV, "block.conv"),
        node("batch_norm", ["conv", "bn2.mean", "bn2.var", "bn2.weight", "bn2.bias"], [("bn2", f)], {"eps": 1e-3},
             "block.bn"),
        node("add", ["bn2", "shift"], [("biased", f)], NO_SCALAR, "block"),
        node("add", ["biased", "relu"], [("sum", f)], NO_SCALAR, "block"),
        node("add", ["sum", "s"], [("summed", f)], NO_SCALAR, "block"),
        node("activation", ["summed"], [("out", f)], {"function": "relu6", "args": {}}, "block.act"),
        node("mean", ["out"], [("pooled", (n, c))], {"dims": [2, 3], "keepdim": False}, "pool"),
        node("linear", ["pooled", "fc.weight", "fc.bias"], [("logits", (n, 5))], {}, "fc"),
        node("mul", ["out", None], [("unused", f)], {"scalar": 2.0, "scalar_first": False}, "dead"),
    )
    parameters = frozenset(k for k in constants if not k.endswith((".mean", ".var")) and k != "shift")
    return Graph((Value("x", (n, 3, 8, 8)), Value("s", f)), ("logits", "out"), nodes, constants, parameters)


def block_inputs(batch, seed=1, channels=4):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 3, 8, 8)).astype(np.float32),
            rng.standard_normal((batch, channels, 8, 8)).astype(np.float32))


def block_reference(graph, x, s):
    """residual_block's outputs computed with pyconv.functional calls, one op at a time."""
    k = graph.constants
    stem = F.relu(F.batch_norm(F.conv2d(x, k["stem.weight"], k["stem.bias"], padding=1), k["bn.mean"], k["bn.var"],
                               k["bn.weight"], k["bn.bias"]))
    bn2 = F.batch_norm(F.conv2d(stem, k["conv.weight"], padding=1), k["bn2.mean"], k["bn2.var"], k["bn2.weight"],
                       k["bn2.bias"], eps=1e-3)
    out = F.relu6(bn2 + k["shift"] + stem + s)
    return F.linear(out.mean(axis=(2, 3)), k["fc.weight"], k["fc.bias"]), out


def write_model_file(path, graph_json, tensors, metadata=None, checksum=True):
    """Write a .pyconv-shaped safetensors file with ``graph_json`` (data or a string), any metadata
    overrides, and a correct checksum unless ``checksum`` is False."""
    text = graph_json if isinstance(graph_json, str) else json.dumps(graph_json)
    meta = {"pyconv.format": "pyconv", "pyconv.format_version": "1", "pyconv.graph": text,
            "pyconv.checksum": _checksum(text, tensors) if checksum else "00000000"}
    meta.update(metadata or {})
    safetensors.numpy.save_file(tensors, str(path), metadata=meta)


def dense_block(seed=0):
    """x (N, 3, 6, 6) -> (N, 9, 6, 6), DenseNet's pattern: stem conv, then twice cat(features so far),
    batch norm, relu, conv; the block's output is the last concatenation after a batch norm."""
    rng = np.random.default_rng(seed)

    def array(*shape, low=None):
        values = rng.standard_normal(shape).astype(np.float32)
        return np.abs(values) + low if low is not None else values

    constants = {"stem.weight": array(5, 3, 3, 3) * 0.3}
    nodes = [node("conv", ["x", "stem.weight", None, None, None, None], [("f0", ("N", 5, 6, 6))], CONV, "stem")]
    features, channels = ["f0"], 5
    for i in (1, 2, 3):
        cat, bn, relu = f"cat{i}", f"bn{i}", f"relu{i}"
        shape = ("N", channels, 6, 6)
        constants.update({f"{bn}.mean": array(channels), f"{bn}.var": array(channels, low=0.5),
                          f"{bn}.weight": array(channels), f"{bn}.bias": array(channels)})
        nodes.append(node("cat", list(features), [(cat, shape)], {"dim": 1}, f"layer{i}"))
        nodes.append(node("batch_norm", [cat, f"{bn}.mean", f"{bn}.var", f"{bn}.weight", f"{bn}.bias"],
                          [(bn, shape)], {"eps": 1e-5}, f"layer{i}.norm"))
        if i == 3:
            break
        constants[f"conv{i}.weight"] = array(2, channels, 3, 3) * 0.3
        nodes.append(node("activation", [bn], [(relu, shape)], {"function": "relu", "args": {}}, f"layer{i}.relu"))
        nodes.append(node("conv", [relu, f"conv{i}.weight", None, None, None, None], [(f"f{i}", ("N", 2, 6, 6))],
                          CONV, f"layer{i}.conv"))
        features.append(f"f{i}")
        channels += 2
    return Graph((Value("x", ("N", 3, 6, 6)),), ("bn3",), tuple(nodes), constants)


def shuffle_block(seed=0):
    """x (N, 8, 5, 5) -> (N, 8, 5, 5), ShuffleNet's pattern written out as torch.export lowers it, twice:
    split the channels, a conv on the second half, cat, reshape (N, 2, 4, 5, 5), transpose dims 1 and 2,
    reshape back; the second shuffle reads the conv's output alone (no cat) and no split follows it."""
    rng = np.random.default_rng(seed)
    constants = {"conv.weight": rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3}
    shape, half, grouped = ("N", 8, 5, 5), ("N", 4, 5, 5), ("N", 2, 4, 5, 5)
    nodes = [node("split", ["x"], [("x1", half), ("x2", half)], {"dim": 1, "sizes": [4, 4]}, "block1"),
             node("conv", ["x2", "conv.weight", None, None, None, None], [("b", half)], CONV, "block1.branch"),
             node("cat", ["x1", "b"], [("c", shape)], {"dim": 1}, "block1"),
             node("reshape", ["c"], [("g", grouped)], {"shape": ["N", 2, 4, 5, 5]}, "block1"),
             node("permute", ["g"], [("t", ("N", 4, 2, 5, 5))], {"dims": [0, 2, 1, 3, 4]}, "block1"),
             node("reshape", ["t"], [("s", shape)], {"shape": ["N", 8, 5, 5]}, "block1"),
             node("split", ["s"], [("y1", half), ("y2", half)], {"dim": 1, "sizes": [4, 4]}, "block2"),
             node("conv", ["y2", "conv.weight", None, None, None, None], [("d", half)], CONV, "block2.branch"),
             node("reshape", ["d"], [("dg", ("N", 2, 2, 5, 5))], {"shape": ["N", 2, 2, 5, 5]}, "block2"),
             node("permute", ["dg"], [("dt", ("N", 2, 2, 5, 5))], {"dims": [0, 2, 1, 3, 4]}, "block2"),
             node("reshape", ["dt"], [("ds", half)], {"shape": ["N", 4, 5, 5]}, "block2"),
             node("cat", ["y1", "ds"], [("y", shape)], {"dim": 1}, "block2")]
    return Graph((Value("x", shape),), ("y",), tuple(nodes), constants)
