"""``Model.summary`` and ``Model.profile``: tables per planned node, with totals, through ``tabulate``.

MACs follow ptflops (its pytorch backend, counting module calls: ``count_functional=False``; its default
also counts the functional call inside each nn.ReLU / pooling / Upsample module a second time), so the
totals of an exported model equal ptflops' count of the torch model.  Counted are the nodes of torch
modules without submodules (a leaf scope; ops written in a ``forward`` that has submodules count 0):

- conv: output elements x kernel elements x in_channels / groups (transposed: input elements x kernel
  elements x out_channels / groups), plus one per output element for a bias;
- linear: rows x in_features x out_features, plus one per output element for a bias;
- batch_norm, group_norm: 2 per input element with an affine weight, else 1; layer_norm: 1;
- relu, relu6, leaky_relu, elu, gelu activations and prelu: 1 per output element (other activations 0);
- max/avg/adaptive pools and a mean (an adaptive average pool to 1x1): 1 per input element;
- upsample: 1 per output element; matmul: its products; every other op 0.

A node the passes fused (conv+batch_norm+relu) counts the MACs of the nodes it was made of.
"""
import math
import statistics

from tabulate import tabulate

from .ir import resolve_shape
from .ops import OPS

__all__ = ["Summary", "summarize", "profile"]


class Summary:
    """A table: ``rows`` (dicts, one per node), ``totals`` (dict) and ``text`` (what printing shows)."""

    def __init__(self, rows, totals, text):
        self.rows, self.totals, self.text = rows, totals, text

    def __str__(self):
        return self.text

    __repr__ = __str__


def _op_label(node):
    """'conv2d', or for fused nodes the ops merged into it: 'conv2d+batch_norm+relu'."""
    def name(n):
        if n.op == "conv":
            dims = len(n.attrs["stride"])
            return f"conv_transpose{dims}d" if n.attrs["transposed"] else f"conv{dims}d"
        return n.attrs["function"] if n.op == "activation" else n.op
    parts = [name(n) for n in (node.origin or (node,))]
    if node.op == "conv" and node.attrs["activation"] and "activation" not in [n.op for n in node.origin]:
        parts.append(node.attrs["activation"])
    return "+".join(parts)


def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def _node_params(node, loaded):
    """Elements of the torch parameters the node's original nodes read."""
    names = {n for o in (node.origin or (node,)) for n in o.inputs if n in loaded.parameters}
    return sum(loaded.constants[n].size for n in names)


_COUNTED_ACTIVATIONS = frozenset({"relu", "relu6", "leaky_relu", "elu", "gelu"})
_POOLS = frozenset({"max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "mean"})


def _node_macs(node, in_shapes, out_shapes):
    """MACs of one node of the loaded graph, in ptflops' convention (see the module docstring)."""
    op, inputs = node.op, node.inputs
    out = math.prod(out_shapes[0]) if out_shapes else 0
    if op in ("conv", "linear", "matmul"):  # the products (``Op.macs``), and a bias add per output element
        bias = out if op != "matmul" and inputs[2] is not None else 0
        return OPS[op].macs(in_shapes, out_shapes, node.attrs) + bias
    if op in ("batch_norm", "group_norm"):
        weight = inputs[3] if op == "batch_norm" else inputs[1]
        return math.prod(in_shapes[0]) * (2 if weight is not None else 1)
    if op == "layer_norm" or op in _POOLS:
        return math.prod(in_shapes[0])
    if op == "activation" and node.attrs["function"] in _COUNTED_ACTIVATIONS or op in ("prelu", "upsample"):
        return out
    return 0


def _leaf_scopes(graph):
    """Module paths of the nodes that no other node's module path lies under (modules without submodules)."""
    scopes = {node.scope for node in graph.nodes}
    parents = set()
    for scope in scopes:
        if scope:
            parts = scope.split(".")
            parents.update(".".join(parts[:i]) for i in range(len(parts)))
    return scopes - parents


def loaded_macs(graph, batch):
    """First output name -> MACs of each node of ``graph`` (as loaded: before the passes) at ``batch``."""
    leaves = _leaf_scopes(graph)
    shapes = {v.name: resolve_shape(v.shape, batch) for v in graph.inputs}
    shapes.update((name, array.shape) for name, array in graph.constants.items())
    macs = {}
    for node, out_shapes in graph.infer_shapes(batch):
        in_shapes = [None if n is None else shapes[n] for n in node.inputs]
        shapes.update(zip(node.output_names, out_shapes))
        if node.outputs:
            macs[node.outputs[0].name] = _node_macs(node, in_shapes, out_shapes) if node.scope in leaves else 0
    return macs


def _rows(model, program, batch):
    plan = program.plan(batch)
    macs = loaded_macs(model.graph, batch)
    rows = []
    for step in plan.steps:
        node = step.node
        in_shapes = []
        for i in step.inputs:
            in_shapes.append(None if i is None else plan.shape_of(i))
        algorithm = step.kernel.algorithm(in_shapes[0]) if hasattr(step.kernel, "algorithm") else ""
        rows.append({"node": node.scope or node.outputs[0].name, "op": _op_label(node),
                     "output shape": _shape_text(node.outputs[0].shape), "params": _node_params(node, model.graph),
                     "MACs": sum(macs.get(n.outputs[0].name, 0) for n in node.origin or (node,)),
                     "algorithm": algorithm})
    return plan, rows


def _totals(model, plan, rows):
    loaded = model.graph
    return {"nodes": len(rows), "params": sum(loaded.constants[n].size for n in loaded.parameters),
            "MACs": sum(r["MACs"] for r in rows), "peak activation bytes": plan.arena_bytes}


def _cell(value):
    if isinstance(value, float):
        return "" if value != value else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else value


def _text(rows, totals, batch, columns):
    numeric = [isinstance(rows[0][c], (int, float)) if rows else False for c in columns]
    table = tabulate([[_cell(r[c]) for c in columns] for r in rows], headers=columns, disable_numparse=True,
                     colalign=["right" if n else "left" for n in numeric])
    lines = [f"{k}: {v:,}" for k, v in totals.items() if isinstance(v, int)]
    lines += [f"{k}: {v:.4g}" for k, v in totals.items() if isinstance(v, float)]
    return f"{table}\n(batch {batch}) " + ", ".join(lines)


def summarize(model, program, batch):
    plan, rows = _rows(model, program, batch)
    totals = _totals(model, plan, rows)
    return Summary(rows, totals, _text(rows, totals, batch, ["node", "op", "output shape", "params", "MACs",
                                                            "algorithm"]))


def profile(model, program, batch, inputs, repeat):
    """Run ``repeat`` times (after one warm-up) timing each step; median per node."""
    plan, rows = _rows(model, program, batch)
    samples = []
    for _ in range(repeat + 1):
        times = [0.0] * len(plan.steps)
        plan.run(inputs, times)
        samples.append(times)
    samples = samples[1:]
    medians = [statistics.median(s[i] for s in samples) for i in range(len(plan.steps))]
    total = sum(medians) or 1.0
    for row, seconds in zip(rows, medians):
        row["ms"] = seconds * 1e3
        row["GFLOP/s"] = 2 * row["MACs"] / seconds / 1e9 if row["MACs"] and seconds > 0 else float("nan")
        row["share %"] = 100 * seconds / total
    totals = _totals(model, plan, rows)
    totals["ms"] = sum(medians) * 1e3
    return Summary(rows, totals, _text(rows, totals, batch, ["node", "op", "output shape", "MACs", "algorithm",
                                                            "ms", "GFLOP/s", "share %"]))
