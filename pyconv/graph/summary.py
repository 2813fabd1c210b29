"""``Model.summary`` and ``Model.profile``: tables per planned node, with totals, through ``tabulate``."""
import statistics

from tabulate import tabulate

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


def _rows(model, program, batch):
    plan = program.plan(batch)
    rows = []
    for step in plan.steps:
        node = step.node
        in_shapes = []
        for i in step.inputs:
            in_shapes.append(None if i is None else plan.shape_of(i))
        algorithm = step.kernel.algorithm(in_shapes[0]) if hasattr(step.kernel, "algorithm") else ""
        rows.append({"node": node.scope or node.outputs[0].name, "op": _op_label(node),
                     "output shape": _shape_text(node.outputs[0].shape), "params": _node_params(node, model.graph),
                     "MACs": OPS[node.op].macs(in_shapes, step.shapes, node.attrs), "algorithm": algorithm})
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
