"""The graph IR: nodes over named values with static shapes and a symbolic batch.

A ``Graph`` has inputs (``Value``: name, shape, dtype), constants (named
numpy arrays: weights), nodes in topological order and output names.  A
``Node`` applies one op of ``pyconv.graph.ops`` to input values (names;
``None`` for an absent optional input) and defines output ``Value``s; its
``scope`` is the torch module path it came from ('layer1.0.conv1').

Shapes are tuples of dims; a dim is an int, ``"N"`` (the batch size, fixed
per call) or ``"k*N"``.  ``Graph.check`` validates a graph completely (op
names, attribute types, input kinds, references, sizes) and infers every
shape, comparing it with the declared one, at two batch sizes — so a
declared shape that does not follow from the inputs is refused.
"""
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from .ops import OPS, OpError

__all__ = ["Graph", "Node", "Value", "GraphError", "BATCH", "resolve_shape", "DTYPES", "MAX_ELEMENTS"]

BATCH = "N"
DTYPES = {"float32": np.dtype(np.float32), "int64": np.dtype(np.int64)}
MAX_ELEMENTS = 2 ** 28       # per value and batch item (1 GiB of float32): bounds what a file can make us allocate
MAX_RANK = 8
_SCALED_BATCH = re.compile(r"^([1-9][0-9]{0,8})\*N$")


class GraphError(ValueError):
    """A graph is malformed: unknown op, bad attribute, dangling reference, inconsistent shape, ..."""


def _dim_factor(dim):
    """k for a dim 'k*N' ('N' is 1*N), 0 for an int dim; GraphError for anything else."""
    if type(dim) is int:
        return 0
    if dim == BATCH:
        return 1
    match = _SCALED_BATCH.match(dim) if type(dim) is str else None
    if match is None:
        raise GraphError(f"expected a dim to be an int, 'N' or 'k*N', got {dim!r}")
    return int(match.group(1))


def resolve_shape(shape, batch):
    """The concrete shape of ``shape`` (dims int / 'N' / 'k*N') at batch size ``batch``."""
    return tuple(d if type(d) is int else _dim_factor(d) * batch for d in shape)


def check_shape(shape, where):
    """``shape`` (a JSON list) as a tuple of dims; GraphError naming ``where`` if malformed."""
    if type(shape) not in (list, tuple) or len(shape) > MAX_RANK:
        raise GraphError(f"{where}: expected a shape (a list of at most {MAX_RANK} dims), got {shape!r}")
    for dim in shape:
        if type(dim) is int and not 0 <= dim <= MAX_ELEMENTS:
            raise GraphError(f"{where}: expected dims in [0, {MAX_ELEMENTS}], got {dim}")
        _dim_factor(dim)
    return tuple(shape)


@dataclass(frozen=True)
class Value:
    """A named value: graph input or node output."""
    name: str
    shape: tuple
    dtype: str = "float32"


@dataclass(frozen=True, eq=False)
class Node:
    """One op applied to named inputs, defining ``outputs`` (Values).

    ``origin`` (not saved) lists the nodes of the loaded graph that passes
    merged into this one, for summaries.
    """
    op: str
    inputs: tuple
    outputs: tuple
    attrs: dict = field(default_factory=dict)
    scope: str = ""
    origin: tuple = ()

    @property
    def output_names(self):
        return tuple(v.name for v in self.outputs)

    def label(self):
        """How messages name this node: op, first output and module path."""
        where = f" in {self.scope!r}" if self.scope else ""
        first = self.outputs[0].name if self.outputs else "?"
        return f"node {self.op!r} ({first}){where}"


@dataclass(frozen=True, eq=False)
class Graph:
    """Inputs, constants, nodes (topologically ordered) and outputs.

    ``parameters`` names the constants that were torch parameters (not
    buffers), so summaries count parameters as torch does.
    """
    inputs: tuple
    outputs: tuple
    nodes: tuple
    constants: dict
    parameters: frozenset = frozenset()

    def replace(self, **changes):
        return replace(self, **changes)

    # -------------------------------------------------------------- queries

    def values(self):
        """name -> Value for inputs and node outputs."""
        values = {v.name: v for v in self.inputs}
        for node in self.nodes:
            values.update((v.name, v) for v in node.outputs)
        return values

    def consumers(self):
        """value name -> list of nodes reading it (once per node)."""
        users = {}
        for node in self.nodes:
            for name in dict.fromkeys(n for n in node.inputs if n is not None):
                users.setdefault(name, []).append(node)
        return users

    # -------------------------------------------------------------- validation

    def check(self):
        """Validate the whole graph (see the module docstring); GraphError on the first problem."""
        defined = {}
        for value in self.inputs:
            _check_name(value.name, "graph input")
            if value.dtype != "float32":
                raise GraphError(f"graph input {value.name!r}: expected dtype float32, got {value.dtype!r}")
            check_shape(value.shape, f"graph input {value.name!r}")
            if value.name in defined or value.name in self.constants:
                raise GraphError(f"graph input {value.name!r} is defined twice")
            defined[value.name] = value
        for name, array in self.constants.items():
            _check_name(name, "constant")
            if not isinstance(array, np.ndarray) or array.dtype not in DTYPES.values():
                raise GraphError(f"constant {name!r}: expected a float32 or int64 array")
        for name in self.parameters:
            if name not in self.constants:
                raise GraphError(f"parameter {name!r} is not a constant of the graph")
        if not self.outputs:
            raise GraphError("the graph has no outputs")
        for node in self.nodes:
            self._check_node(node, defined)
            for value in node.outputs:
                _check_name(value.name, node.label())
                if value.name in defined or value.name in self.constants:
                    raise GraphError(f"{node.label()}: output {value.name!r} is defined twice")
                defined[value.name] = value
        for name in self.outputs:
            if name not in defined and name not in self.constants:
                raise GraphError(f"graph output {name!r} is not defined by any node, input or constant")
        self._check_shapes()

    def _check_node(self, node, defined):
        spec = OPS.get(node.op) if type(node.op) is str else None
        if spec is None:
            raise GraphError(f"unknown op {node.op!r} (known: {', '.join(sorted(OPS))})")
        if type(node.scope) is not str:
            raise GraphError(f"{node.label()}: expected scope to be a string")
        try:
            spec.check_attrs(node.attrs)
            spec.check_arity(node.inputs, len(node.outputs), node.attrs)
        except OpError as error:
            raise GraphError(f"{node.label()}: {error}") from None
        for position, name in enumerate(node.inputs):
            if name is None:
                continue
            if type(name) is not str:
                raise GraphError(f"{node.label()}: input {position} is {name!r}, expected a value name")
            if name not in defined and name not in self.constants:
                raise GraphError(f"{node.label()}: input {name!r} is not defined before the node "
                                 f"(dangling reference or cycle)")
            if spec.needs_constant(position) and name not in self.constants:
                raise GraphError(f"{node.label()}: input {position} ({spec.input_name(position)}) must be a "
                                 f"constant, got the computed value {name!r}")
        for value in node.outputs:
            if value.dtype not in DTYPES:
                raise GraphError(f"{node.label()}: output {value.name!r} has unknown dtype {value.dtype!r}")
            check_shape(value.shape, f"{node.label()} output {value.name!r}")

    def _check_shapes(self):
        """Infer all shapes at batch 1 and 2 and compare them with the declared ones."""
        for batch in (1, 2):
            for node, shapes in self.infer_shapes(batch):
                for value, shape in zip(node.outputs, shapes):
                    declared = resolve_shape(value.shape, batch)
                    if shape != declared:
                        raise GraphError(f"{node.label()}: output {value.name!r} is declared with shape "
                                         f"{list(value.shape)}, which at batch {batch} is {declared}, but the "
                                         f"op computes {shape}")

    def infer_shapes(self, batch):
        """Yield (node, concrete output shapes) in order, at batch size ``batch``; GraphError if invalid."""
        shapes = {v.name: resolve_shape(v.shape, batch) for v in self.inputs}
        dtypes = {v.name: v.dtype for v in self.inputs}
        for name, array in self.constants.items():
            shapes[name] = array.shape
            dtypes[name] = array.dtype.name
        for node in self.nodes:
            spec = OPS[node.op]
            inputs = [None if n is None else shapes[n] for n in node.inputs]
            try:
                spec.check_dtypes([None if n is None else dtypes[n] for n in node.inputs],
                                  [v.dtype for v in node.outputs])
                out = spec.infer(inputs, node.attrs, batch, self._constant_inputs(node))
            except (OpError, ValueError, TypeError, ZeroDivisionError, OverflowError) as error:
                raise GraphError(f"{node.label()}: {error}") from None
            if len(out) != len(node.outputs):
                raise GraphError(f"{node.label()}: the op computes {len(out)} outputs, the node declares "
                                 f"{len(node.outputs)}")
            for value, shape in zip(node.outputs, out):
                if math.prod(shape) > MAX_ELEMENTS * batch or any(d < 0 for d in shape):
                    raise GraphError(f"{node.label()}: output {value.name!r} would have shape {shape}, "
                                     f"beyond {MAX_ELEMENTS} elements per batch item")
                shapes[value.name] = shape
                dtypes[value.name] = value.dtype
            yield node, tuple(out)

    def _constant_inputs(self, node):
        return [self.constants.get(n) if n is not None else None for n in node.inputs]

    # -------------------------------------------------------------- JSON

    def to_json(self):
        """The graph's structure as JSON-able data (constants are stored apart, by name)."""
        return {
            "inputs": [_value_json(v) for v in self.inputs],
            "outputs": list(self.outputs),
            "parameters": sorted(self.parameters),
            "nodes": [{"op": n.op, "inputs": list(n.inputs), "outputs": [_value_json(v) for v in n.outputs],
                       "attrs": n.attrs, "scope": n.scope} for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data, constants):
        """A Graph from ``to_json`` data and its constants; GraphError for malformed data (then call check)."""
        top = _object(data, "graph", {"inputs", "outputs", "parameters", "nodes"})
        inputs = tuple(_value(v, "graph input") for v in _list(top["inputs"], "graph inputs"))
        outputs = tuple(_name(n, "graph output") for n in _list(top["outputs"], "graph outputs"))
        parameters = frozenset(_name(n, "parameter") for n in _list(top["parameters"], "parameters"))
        nodes = []
        for index, item in enumerate(_list(top["nodes"], "nodes")):
            where = f"node {index}"
            entry = _object(item, where, {"op", "inputs", "outputs", "attrs", "scope"})
            node_inputs = tuple(None if n is None else _name(n, f"{where} input")
                                for n in _list(entry["inputs"], f"{where} inputs"))
            node_outputs = tuple(_value(v, f"{where} output") for v in _list(entry["outputs"], f"{where} outputs"))
            if type(entry["attrs"]) is not dict:
                raise GraphError(f"{where}: expected attrs to be an object, got {type(entry['attrs']).__name__}")
            nodes.append(Node(_name(entry["op"], f"{where} op"), node_inputs, node_outputs, entry["attrs"],
                              _name(entry["scope"], f"{where} scope", empty=True)))
        return cls(inputs, outputs, tuple(nodes), dict(constants), parameters)


def _check_name(name, where):
    if type(name) is not str or not name:
        raise GraphError(f"{where}: expected a non-empty string name, got {name!r}")


def _value_json(value):
    return {"name": value.name, "shape": list(value.shape), "dtype": value.dtype}


def _object(data, where, keys):
    if type(data) is not dict:
        raise GraphError(f"{where}: expected an object, got {type(data).__name__}")
    if set(data) != keys:
        missing, extra = sorted(keys - set(data)), sorted(set(data) - keys)
        raise GraphError(f"{where}: expected the keys {sorted(keys)}"
                         + (f", missing {missing}" if missing else "") + (f", unknown {extra}" if extra else ""))
    return data


def _list(data, where):
    if type(data) is not list:
        raise GraphError(f"{where}: expected a list, got {type(data).__name__}")
    return data


def _name(data, where, empty=False):
    if type(data) is not str or not (data or empty) or len(data) > 1024:
        raise GraphError(f"{where}: expected a name (a string), got {data!r:.80}")
    return data


def _value(data, where):
    entry = _object(data, where, {"name", "shape", "dtype"})
    name = _name(entry["name"], where)
    return Value(name, check_shape(entry["shape"], f"{where} {name!r}"), _name(entry["dtype"], f"{where} dtype"))
