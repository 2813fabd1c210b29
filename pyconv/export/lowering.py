"""ATen -> pyconv IR: ``Lowering`` walks an exported, decomposed torch program once and emits the nodes
of a pyconv Graph (the torch module is passed in: this module does not import it)."""
import operator
import os
import re

import numpy as np

from ..graph.ir import Graph, Node, Value
from ..graph.ops._base import INT_LIMIT
from ..graph.passes import eliminate_dead_nodes


class ExportError(ValueError):
    """A torch model cannot be exported: torch.export failed, or it uses ops pyconv does not support."""


class _Unsupported(Exception):
    """Raised by a lowering: the node cannot become pyconv ops (the message says why)."""


class _Const:
    """A tensor known at export time (parameter, buffer, or computed from them)."""

    def __init__(self, tensor, name, parameter):
        self.tensor, self.name, self.parameter = tensor, name, parameter


_SYMBOLIC = object()   # a size computed from input shapes (only used in other nodes' shape arguments)
_UNKNOWN = object()    # the output of an unsupported node


class Lowering:
    """Walks the exported program once, emitting IR nodes; collects unsupported nodes."""

    def __init__(self, torch, program):
        self.torch = torch
        self.program = program
        self.env = {}
        self.nodes, self.inputs, self.outputs = [], [], []
        self.constants, self.parameters = {}, set()
        self.unsupported = []
        self.batch = None
        self.torch_dir = os.path.dirname(torch.__file__)
        self.taken = {node.name for node in program.graph.nodes}  # value names
        self.constant_names = {}  # id of a _Const -> its IR name
        self.reshaped = {}  # id of a _Const of linear weights -> the _Const as 1x1 convolution weights

    def graph(self):
        specs = {spec.arg.name: spec for spec in self.program.graph_signature.input_specs}
        for node in self.program.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node, specs[node.name])
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                self._output(node)
        if self.unsupported:
            lines = [f"  {target} at {source}" for target, source in dict.fromkeys(self.unsupported)]
            raise ExportError(f"export: {len(lines)} operation(s) of the model are not supported by pyconv:\n"
                              + "\n".join(lines))
        graph = Graph(tuple(self.inputs), tuple(self.outputs), tuple(self.nodes), self.constants,
                      frozenset(self.parameters))
        return eliminate_dead_nodes(graph)

    # ---------------------------------------------------------------- nodes

    def _placeholder(self, node, spec):
        kind = spec.kind.name
        if kind == "USER_INPUT":
            value = node.meta["val"]
            if not isinstance(value, self.torch.Tensor):
                raise ExportError(f"export: input {node.name!r} is not a tensor")
            if self.batch is None and value.ndim and not isinstance(value.shape[0], int):
                self.batch = value.shape[0].node.expr
            self.inputs.append(Value(node.name, self._shape(value)))
            self.env[node] = node.name
        elif kind in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
            tensors = self.program.state_dict if spec.target in self.program.state_dict else self.program.constants
            self.env[node] = _Const(tensors[spec.target], spec.target, kind == "PARAMETER")
        else:
            raise ExportError(f"export: unsupported input {node.name!r} of kind {kind}")

    def _call(self, node):
        value = node.meta.get("val")
        args = list(node.args) + list(node.kwargs.values())
        if value is None or isinstance(value, (int, float, bool, self.torch.SymInt, self.torch.SymFloat)):
            self.env[node] = _SYMBOLIC  # sizes, and asserts on them (no outputs)
            return
        items = list(self._flat(args))
        name = str(node.target).replace("aten.", "", 1)
        lower = _getitem if node.target is operator.getitem else _LOWERINGS.get(name)
        try:
            if not any(isinstance(a, str) or a is _SYMBOLIC or a is _UNKNOWN for a in items):
                self.env[node] = self._fold(node)
            elif lower is None:
                raise _Unsupported(str(node.target))
            elif any(a is _UNKNOWN for a in items):  # after an unsupported node: reported there
                self.env[node] = _UNKNOWN
            else:
                self.env[node] = lower(self, node, self._bind(node) if lower is not _getitem else None)
        except _Unsupported as error:
            self.env[node] = _UNKNOWN
            reason = str(error) if str(error) != str(node.target) else ""
            self.unsupported.append((str(node.target) + (f" ({reason})" if reason else ""), self._source(node)))

    def _output(self, node):
        specs = self.program.graph_signature.output_specs
        for index, (spec, arg) in enumerate(zip(specs, node.args[0])):
            if spec.kind.name != "USER_OUTPUT":
                raise ExportError(f"export: the model mutates {spec.target!r} in forward; pyconv runs models "
                                  f"without state (call model.eval() and avoid in-place buffer updates)")
            if not hasattr(arg, "op"):
                raise ExportError(f"export: output {index} of the model is {arg!r}, not a tensor")
            item = self.env[arg]
            if item is _UNKNOWN:  # the unsupported node is reported
                continue
            try:
                self.outputs.append(self.value(item))
            except _Unsupported as error:
                self.unsupported.append((f"output {index} ({error})", self._source(arg)))

    def _flat(self, args):
        """The IR items of the fx nodes in ``args`` (nested lists flattened, multi-output items too)."""
        for a in args:
            if isinstance(a, (list, tuple)):
                yield from self._flat(a)
            elif hasattr(a, "op"):
                item = self.env[a]
                yield from (item if isinstance(item, list) else [item])

    def _fold(self, node):
        """Compute ``node`` with torch now: none of its inputs depends on the model's inputs."""
        def real(a):
            if isinstance(a, (list, tuple)):
                return type(a)(real(x) for x in a)
            if hasattr(a, "op"):
                item = self.env[a]
                return item.tensor if isinstance(item, _Const) else [real_item.tensor for real_item in item]
            return a
        parameter = any(isinstance(a, _Const) and a.parameter for a in self._flat(list(node.args)))
        with self.torch.no_grad():
            result = node.target(*real(node.args), **{k: real(v) for k, v in node.kwargs.items()})
        if isinstance(result, (list, tuple)):
            return [_Const(r, f"{node.name}.{i}", parameter) for i, r in enumerate(result)]
        return _Const(result, node.name, parameter)

    def _bind(self, node):
        """Argument name -> value (fx nodes replaced by their IR item), defaults filled in."""
        bound = {}
        for index, argument in enumerate(node.target._schema.arguments):
            if index < len(node.args):
                raw = node.args[index]
            elif argument.name in node.kwargs:
                raw = node.kwargs[argument.name]
            else:
                raw = argument.default_value if argument.has_default_value() else None
            bound[argument.name] = self._item(raw)
        return bound

    def _item(self, raw):
        if isinstance(raw, (list, tuple)):
            return [self._item(x) for x in raw]
        return self.env[raw] if hasattr(raw, "op") else raw

    def _source(self, node):
        """The last line of the model's own code (not torch's) in the node's stack trace."""
        frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', node.meta.get("stack_trace") or "")
        for filename, line, code in reversed(frames):
            if not os.path.abspath(filename).startswith(self.torch_dir):
                return f"{filename}:{line}: {code.strip()}"
        return "(no source line recorded)"

    # ---------------------------------------------------------------- emitting

    def value(self, item):
        """The IR name of a tensor item (a value name, or a constant registered on first use)."""
        if isinstance(item, str):
            return item
        if isinstance(item, _Const):
            name = self.constant_names.get(id(item))
            if name is None:
                tensor = item.tensor
                if not isinstance(tensor, self.torch.Tensor) or tensor.dtype not in (self.torch.float32,
                                                                                       self.torch.int64):
                    raise _Unsupported(f"constant {item.name!r} of type {getattr(tensor, 'dtype', type(tensor))}")
                name = item.name
                while name in self.constants or name in self.taken:
                    name += "_"
                self.constants[name] = np.ascontiguousarray(tensor.detach().numpy())
                self.constant_names[id(item)] = name
                if item.parameter:
                    self.parameters.add(name)
            return name
        raise _Unsupported("a size or number computed at run time, not a tensor")

    def optional(self, item):
        return None if item is None else self.value(item)

    def as_conv_weight(self, item):
        """The IR name of linear weights ``item`` (out, in), a constant, reshaped to (out, in, 1, 1)."""
        key = id(item)
        if key not in self.reshaped:
            self.reshaped[key] = _Const(item.tensor.reshape(*item.tensor.shape, 1, 1), item.name, item.parameter)
        return self.value(self.reshaped[key])

    def constant_only(self, item, what):
        if not isinstance(item, _Const):
            raise _Unsupported(f"{what} computed at run time")
        return self.value(item)

    def emit(self, op, inputs, attrs, node, outputs=None):
        """Append an IR node; ``outputs`` (default: the fx node's one output) are (name, meta value) pairs, or
        (name, IR shape) pairs for float32 values the fx graph does not have."""
        if outputs is None:
            outputs = [(node.name, node.meta["val"])]
        values = tuple(Value(name, meta, "float32") if isinstance(meta, tuple) else
                       Value(name, self._shape(meta), self._dtype(meta)) for name, meta in outputs)
        stack = node.meta.get("nn_module_stack") or {}
        scope = list(stack.values())[-1][0] if stack else ""
        self.nodes.append(Node(op, tuple(inputs), values, attrs, scope if isinstance(scope, str) else ""))
        return [v.name for v in values] if len(values) > 1 else values[0].name

    def _dtype(self, meta):
        names = {self.torch.float32: "float32", self.torch.int64: "int64"}
        if meta.dtype not in names:
            raise _Unsupported(f"values of dtype {meta.dtype}")
        return names[meta.dtype]

    def _shape(self, meta):
        dims = []
        for size in meta.shape:
            if isinstance(size, int):
                dims.append(size)
                continue
            expr = size.node.expr
            if expr.is_number:
                dims.append(int(expr))
                continue
            coefficient, rest = expr.as_coeff_Mul()
            if self.batch is None or rest != self.batch or not coefficient.is_Integer or coefficient < 1:
                raise _Unsupported(f"a size ({expr}) that depends on the input other than through the batch size")
            dims.append("N" if coefficient == 1 else f"{int(coefficient)}*N")
        return tuple(dims)

    def meta_shape(self, node):
        return self._shape(node.meta["val"])


# ---------------------------------------------------------------- lowerings: (lowering, fx node, bound args)

_LOWERINGS = {}


def _lowers(*targets):
    def decorate(function):
        for target in targets:
            _LOWERINGS[target] = function
        return function
    return decorate


def _ints(values, n):
    """An int list of n entries (a single entry repeats), as ATen's int[n] arguments."""
    values = [int(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    return values * n if len(values) == 1 else values


def _alias(lw, node, a):
    return lw.value(a["self"] if "self" in a else a["input"])


@_lowers("clone.default", "alias.default", "detach.default", "lift_fresh_copy.default", "contiguous.default")
def _identity(lw, node, a):
    return _alias(lw, node, a)


@_lowers("_to_copy.default")
def _to_copy(lw, node, a):
    if node.meta["val"].dtype != node.args[0].meta["val"].dtype:
        raise _Unsupported("a dtype conversion")
    return _alias(lw, node, a)


@_lowers("dropout.default", "native_dropout.default")
def _dropout(lw, node, a):
    if a["train"]:
        raise _Unsupported("dropout in training mode")
    name = lw.value(a["input"])
    return [name, None] if "native_dropout" in str(node.target) else name


@_lowers("convolution.default")
def _convolution(lw, node, a):
    dims = len(node.meta["val"].shape) - 2
    attrs = {"stride": _ints(a["stride"], dims), "padding": _ints(a["padding"], dims),
             "dilation": _ints(a["dilation"], dims), "groups": int(a["groups"]), "transposed": bool(a["transposed"]),
             "output_padding": _ints(a["output_padding"], dims), "activation": None, "activation_args": {}}
    inputs = [lw.value(a["input"]), lw.constant_only(a["weight"], "convolution weights"),
              None if a["bias"] is None else lw.constant_only(a["bias"], "convolution bias"), None, None, None]
    return lw.emit("conv", inputs, attrs, node)


@_lowers("linear.default")
def _linear(lw, node, a):
    """input (*, in) @ weight.T + bias as a 1x1 convolution of one image whose M = prod(*) rows are the input
    rows: (M, in) -> (1, in, M, 1) -> conv -> (M, out).  So a linear runs pyconv's prepacked GEMM on pyconv's
    threads, reading its weights once per call at any batch size; the 'linear' op's numpy matmul ran on
    BLAS threads pyconv's thread count does not bound (at 2 threads a 576 -> 1024 layer at batch 1 took
    13-17 ms on this 2-core VM, as a convolution 0.2-1.5 ms)."""
    if not isinstance(a["weight"], _Const):
        raise _Unsupported("linear weights computed at run time")
    bias = None if a["bias"] is None else lw.constant_only(a["bias"], "linear bias")
    shape, out_shape = lw.meta_shape(node.args[0]), lw.meta_shape(node)
    rows = _product(shape[:-1])
    if a["weight"].tensor.ndim != 2:
        raise _Unsupported("linear with 1-D weights")
    if rows is None:
        raise _Unsupported("a linear over rows that are not a multiple of the batch size")
    (out_features, in_features), name = a["weight"].tensor.shape, node.name
    conv_weight = lw.as_conv_weight(a["weight"])
    steps = [("reshape", {"shape": [rows, in_features]}, (rows, in_features)),
             ("permute", {"dims": [1, 0]}, (in_features, rows)),
             ("reshape", {"shape": [1, in_features, rows, 1]}, (1, in_features, rows, 1)),
             ("conv", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "transposed": False,
                       "output_padding": [0, 0], "activation": None, "activation_args": {}}, (1, out_features, rows, 1)),
             ("reshape", {"shape": [out_features, rows]}, (out_features, rows)),
             ("permute", {"dims": [1, 0]}, (rows, out_features)),
             ("reshape", {"shape": list(out_shape)}, out_shape)]
    value = lw.value(a["input"])
    if shape == (rows, in_features):
        steps = steps[1:]
    if out_shape == (rows, out_features):
        steps = steps[:-1]
    for index, (op, attrs, step_shape) in enumerate(steps):
        inputs = [value, conv_weight, bias, None, None, None] if op == "conv" else [value]
        value = lw.emit(op, inputs, attrs, node, [(name if index == len(steps) - 1 else f"{name}.{op}{index}",
                                                   step_shape)])
    return value


def _product(dims):
    """The product of IR dims (ints, 'N', 'k*N') as one IR dim; None if it is not (at most one batch factor)."""
    factor, batched = 1, False
    for dim in dims:
        if type(dim) is int:
            factor *= dim
        elif batched:
            return None
        else:
            batched = True
            factor *= 1 if dim == "N" else int(dim.split("*")[0])
    if not batched:
        return factor
    return "N" if factor == 1 else (f"{factor}*N" if factor > 0 else 0)


@_lowers("mm.default", "bmm.default", "matmul.default")
def _matmul(lw, node, a):
    return lw.emit("matmul", [lw.value(a["self"]), lw.value(a["mat2"] if "mat2" in a else a["other"])], {}, node)


@_lowers("addmm.default")
def _addmm(lw, node, a):
    if a["beta"] != 1 or a["alpha"] != 1:
        raise _Unsupported("addmm with beta or alpha other than 1")
    product = lw.emit("matmul", [lw.value(a["mat1"]), lw.value(a["mat2"])], {}, node,
                      [(node.name + ".mm", node.meta["val"])])
    return lw.emit("add", [product, lw.value(a["self"])], {"scalar": None, "scalar_first": False}, node)


@_lowers("_native_batch_norm_legit_no_training.default", "_native_batch_norm_legit.default",
         "native_batch_norm.default")
def _batch_norm(lw, node, a):
    if a.get("training"):
        raise _Unsupported("batch norm in training mode")
    inputs = [lw.value(a["input"]), lw.constant_only(a["running_mean"], "running_mean"),
              lw.constant_only(a["running_var"], "running_var"), lw.optional(a["weight"]), lw.optional(a["bias"])]
    name = lw.emit("batch_norm", inputs, {"eps": float(a["eps"])}, node, [(node.name, node.meta["val"][0])])
    return [name, None, None]


@_lowers("native_group_norm.default")
def _group_norm(lw, node, a):
    name = lw.emit("group_norm", [lw.value(a["input"]), lw.optional(a["weight"]), lw.optional(a["bias"])],
                   {"num_groups": int(a["group"]), "eps": float(a["eps"])}, node, [(node.name, node.meta["val"][0])])
    return [name, None, None]


@_lowers("native_layer_norm.default")
def _layer_norm(lw, node, a):
    name = lw.emit("layer_norm", [lw.value(a["input"]), lw.optional(a["weight"]), lw.optional(a["bias"])],
                   {"normalized_shape": _ints(a["normalized_shape"], 1), "eps": float(a["eps"])}, node,
                   [(node.name, node.meta["val"][0])])
    return [name, None, None]


def _activation(function, **arguments):
    def lower(lw, node, a):
        args = {key: a[source] if isinstance(a[source], str) else float(a[source]) for key, source in arguments.items()}
        return lw.emit("activation", [lw.value(a["self"])], {"function": function, "args": args}, node)
    return lower


for _target, _function in (("relu", "relu"), ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("selu", "selu"),
                           ("hardswish", "hardswish"), ("hardsigmoid", "hardsigmoid"), ("silu", "silu"),
                           ("mish", "mish")):
    _LOWERINGS[f"{_target}.default"] = _activation(_function)
_LOWERINGS["leaky_relu.default"] = _activation("leaky_relu", negative_slope="negative_slope")
_LOWERINGS["celu.default"] = _activation("celu", alpha="alpha")
_LOWERINGS["softplus.default"] = _activation("softplus", beta="beta", threshold="threshold")
_LOWERINGS["gelu.default"] = _activation("gelu", approximate="approximate")


@_lowers("hardtanh.default")
def _hardtanh(lw, node, a):
    low, high = float(a["min_val"]), float(a["max_val"])
    if (low, high) == (0.0, 6.0):
        return _activation("relu6")(lw, node, a)
    return _activation("hardtanh", min_val="min_val", max_val="max_val")(lw, node, a)


@_lowers("elu.default")
def _elu(lw, node, a):
    if float(a["scale"]) != 1 or float(a["input_scale"]) != 1:
        raise _Unsupported("elu with scale or input_scale other than 1")
    return _activation("elu", alpha="alpha")(lw, node, a)


@_lowers("prelu.default", "_prelu_kernel.default")
def _prelu(lw, node, a):
    return lw.emit("prelu", [lw.value(a["self"]), lw.constant_only(a["weight"], "prelu weights")], {}, node)


def _binary(op, first="self", second="other"):
    def lower(lw, node, a):
        x, y, alpha = a[first], a[second], a.get("alpha", 1)
        if alpha != 1:
            if isinstance(y, (int, float)):
                y = y * alpha
            else:
                raise _Unsupported(f"{op} with alpha={alpha}")
        if isinstance(x, (int, float)):
            return lw.emit(op, [lw.value(y), None], {"scalar": float(x), "scalar_first": True}, node)
        if isinstance(y, (int, float)):
            return lw.emit(op, [lw.value(x), None], {"scalar": float(y), "scalar_first": False}, node)
        return lw.emit(op, [lw.value(x), lw.value(y)], {"scalar": None, "scalar_first": False}, node)
    return lower


for _op in ("add", "sub", "mul", "div"):
    _LOWERINGS[f"{_op}.Tensor"] = _LOWERINGS[f"{_op}.Scalar"] = _binary(_op)
_LOWERINGS["rsub.Scalar"] = _LOWERINGS["rsub.Tensor"] = _binary("sub", "other", "self")
_LOWERINGS["maximum.default"] = _binary("maximum")
_LOWERINGS["minimum.default"] = _binary("minimum")
_LOWERINGS["pow.Tensor_Scalar"] = _binary("pow", "self", "exponent")
_LOWERINGS["pow.Tensor_Tensor"] = _binary("pow", "self", "exponent")
for _op in ("neg", "exp", "log", "sqrt", "rsqrt", "abs", "reciprocal"):
    _LOWERINGS[f"{_op}.default"] = (lambda op: lambda lw, node, a: lw.emit(op, [lw.value(a["self"])], {}, node))(_op)


@_lowers("clamp.default", "clamp_min.default", "clamp_max.default")
def _clamp(lw, node, a):
    low, high = a.get("min"), a.get("max")
    return lw.emit("clamp", [lw.value(a["self"])], {"min": None if low is None else float(low),
                                                    "max": None if high is None else float(high)}, node)


@_lowers("_softmax.default", "_log_softmax.default")
def _softmax(lw, node, a):
    return lw.emit("softmax", [lw.value(a["self"])], {"dim": int(a["dim"]), "log": "log" in str(node.target)}, node)


def _pool_outputs(node, count):
    """(name, meta) for the outputs of a (values, indices) op whose indices are used; their count."""
    used = {user.args[1] for user in node.users if user.target is operator.getitem}
    pairs = [(f"{node.name}.{i}", node.meta["val"][i]) for i in range(count if 1 in used else 1)]
    return pairs, 1 in used


@_lowers("max_pool1d_with_indices.default", "max_pool2d_with_indices.default", "max_pool3d_with_indices.default",
         "max_pool1d.default")
def _max_pool(lw, node, a):
    indexed = "with_indices" in str(node.target)
    meta = node.meta["val"][0] if indexed else node.meta["val"]
    n = len(meta.shape) - 2
    kernel = _ints(a["kernel_size"], n)
    attrs = {"kernel_size": kernel, "stride": _ints(a["stride"], n) if a["stride"] else kernel,
             "padding": _ints(a["padding"], n), "dilation": _ints(a["dilation"], n), "ceil_mode": bool(a["ceil_mode"])}
    if not indexed:
        return lw.emit("max_pool", [lw.value(a["self"])], {**attrs, "return_indices": False}, node)
    outputs, with_indices = _pool_outputs(node, 2)
    names = lw.emit("max_pool", [lw.value(a["self"])], {**attrs, "return_indices": with_indices}, node, outputs)
    return names if with_indices else [names, None]


@_lowers("avg_pool1d.default", "avg_pool2d.default", "avg_pool3d.default")
def _avg_pool(lw, node, a):
    n = len(node.meta["val"].shape) - 2
    kernel = _ints(a["kernel_size"], n)
    override = a.get("divisor_override")
    attrs = {"kernel_size": kernel, "stride": _ints(a["stride"], n) if a["stride"] else kernel,
             "padding": _ints(a["padding"], n), "ceil_mode": bool(a["ceil_mode"]),
             "count_include_pad": bool(a["count_include_pad"]), "divisor_override": override}
    return lw.emit("avg_pool", [lw.value(a["self"])], attrs, node)


@_lowers("_adaptive_avg_pool2d.default", "_adaptive_avg_pool3d.default", "adaptive_avg_pool1d.default")
def _adaptive_avg_pool(lw, node, a):
    n = len(node.meta["val"].shape) - 2
    return lw.emit("adaptive_avg_pool", [lw.value(a["self"])], {"output_size": _ints(a["output_size"], n)}, node)


@_lowers("adaptive_max_pool1d.default", "adaptive_max_pool2d.default", "adaptive_max_pool3d.default")
def _adaptive_max_pool(lw, node, a):
    n = len(node.meta["val"][0].shape) - 2
    outputs, with_indices = _pool_outputs(node, 2)
    names = lw.emit("adaptive_max_pool", [lw.value(a["self"])],
                    {"output_size": _ints(a["output_size"], n), "return_indices": with_indices}, node, outputs)
    return names if with_indices else [names, None]


@_lowers("max_unpool2d.default", "max_unpool3d.default")
def _max_unpool(lw, node, a):
    n = len(node.meta["val"].shape) - 2
    return lw.emit("max_unpool", [lw.value(a["self"]), lw.value(a["indices"])],
                   {"output_size": _ints(a["output_size"], n)}, node)


def _reduce(op):
    def lower(lw, node, a):
        if a.get("dtype") not in (None, lw.torch.float32):
            raise _Unsupported(f"{op} to dtype {a['dtype']}")
        dims = a.get("dim")
        attrs = {"dims": [] if dims is None else _ints(dims, 1), "keepdim": bool(a.get("keepdim", False))}
        if op == "var":
            attrs["correction"] = float(1 if a.get("correction") is None else a["correction"])
        return lw.emit(op, [lw.value(a["self"])], attrs, node)
    return lower


_LOWERINGS["mean.dim"] = _LOWERINGS["mean.default"] = _reduce("mean")
_LOWERINGS["sum.dim_IntList"] = _LOWERINGS["sum.default"] = _reduce("sum")
_LOWERINGS["amax.default"] = _reduce("amax")
_LOWERINGS["amin.default"] = _reduce("amin")
_LOWERINGS["var.correction"] = _reduce("var")


@_lowers("view.default", "_unsafe_view.default", "reshape.default", "squeeze.dim", "squeeze.dims", "squeeze.default",
         "unsqueeze.default", "flatten.using_ints", "view_copy.default", "expand.default")
def _reshape(lw, node, a):
    source = node.args[0]
    shape, before = lw.meta_shape(node), lw.meta_shape(source)
    if shape == before:
        return lw.value(a["self"])
    if "expand" in str(node.target):
        return lw.emit("expand", [lw.value(a["self"])], {"shape": list(shape)}, node)
    return lw.emit("reshape", [lw.value(a["self"])], {"shape": list(shape)}, node)


@_lowers("permute.default")
def _permute(lw, node, a):
    return lw.emit("permute", [lw.value(a["self"])], {"dims": [int(d) for d in a["dims"]]}, node)


@_lowers("cat.default")
def _cat(lw, node, a):
    return lw.emit("cat", [lw.value(t) for t in a["tensors"]], {"dim": int(a["dim"])}, node)


@_lowers("split_with_sizes.default", "split.Tensor")
def _split(lw, node, a):
    shape = lw.meta_shape(node.args[0])
    dim = int(a["dim"]) % len(shape)
    sizes = [t.shape[dim] for t in node.meta["val"]]
    if not all(isinstance(s, int) for s in sizes):
        raise _Unsupported("a split of the batch dimension")
    outputs = [(f"{node.name}.{i}", meta) for i, meta in enumerate(node.meta["val"])]
    names = lw.emit("split", [lw.value(a["self"])], {"dim": dim, "sizes": [int(s) for s in sizes]}, node, outputs)
    return names if isinstance(names, list) else [names]


@_lowers("slice.Tensor")
def _slice(lw, node, a):
    start, end, step = a["start"], a["end"], int(a["step"])
    if any(x is _SYMBOLIC for x in (start, end)):
        raise _Unsupported("a slice with bounds computed from sizes")
    start = 0 if start is None else max(-INT_LIMIT, min(INT_LIMIT, int(start)))
    end = INT_LIMIT if end is None else max(-INT_LIMIT, min(INT_LIMIT, int(end)))
    if lw.meta_shape(node) == lw.meta_shape(node.args[0]) and step == 1 and start == 0:
        return lw.value(a["self"])
    return lw.emit("slice", [lw.value(a["self"])], {"dim": int(a["dim"]), "start": start, "end": end, "step": step},
                   node)


@_lowers("select.int")
def _select(lw, node, a):
    return lw.emit("select", [lw.value(a["self"])], {"dim": int(a["dim"]), "index": int(a["index"])}, node)


def _pad(mode, key="pad"):
    def lower(lw, node, a):
        actual = mode or a.get("mode", "constant")
        value = a.get("value")
        attrs = {"pad": [int(p) for p in a[key]], "mode": actual,
                 "value": float(0.0 if value is None or actual != "constant" else value)}
        return lw.emit("pad", [lw.value(a["self"])], attrs, node)
    return lower


_LOWERINGS["constant_pad_nd.default"] = _pad("constant")
_LOWERINGS["pad.default"] = _pad(None)
_LOWERINGS["_pad_circular.default"] = _pad("circular")
for _n in (1, 2, 3):
    _LOWERINGS[f"reflection_pad{_n}d.default"] = _pad("reflect", "padding")
    _LOWERINGS[f"replication_pad{_n}d.default"] = _pad("replicate", "padding")


@_lowers("pixel_shuffle.default", "pixel_unshuffle.default")
def _pixel_shuffle(lw, node, a):
    inverse = "unshuffle" in str(node.target)
    factor = a["downscale_factor"] if inverse else a["upscale_factor"]
    return lw.emit("pixel_shuffle", [lw.value(a["self"])], {"factor": int(factor), "inverse": inverse}, node)


@_lowers("channel_shuffle.default", "native_channel_shuffle.default")
def _channel_shuffle(lw, node, a):
    return lw.emit("channel_shuffle", [lw.value(a["self"])], {"groups": int(a["groups"])}, node)


_UPSAMPLE_MODES = {"nearest": "nearest", "_nearest_exact": "nearest-exact", "linear1d": "linear",
                   "bilinear2d": "bilinear", "bicubic2d": "bicubic", "trilinear3d": "trilinear"}


@_lowers(*[f"{prefix}.vec" for prefix in (
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d", "upsample_bilinear2d",
    "upsample_bicubic2d", "upsample_trilinear3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
    "_upsample_nearest_exact3d")])
def _upsample(lw, node, a):
    target = str(node.target)
    mode = next(m for key, m in _UPSAMPLE_MODES.items() if key in target)
    size, scales = a["output_size"], a["scale_factors"]
    if size is not None and any(not isinstance(s, int) for s in size):
        raise _Unsupported("an upsample to a size computed from sizes")
    attrs = {"mode": mode, "size": None if scales is not None else [int(s) for s in size],
             "scale_factor": None if scales is None else [float(s) for s in scales],
             "align_corners": a.get("align_corners")}
    return lw.emit("upsample", [lw.value(a["input"])], attrs, node)


def _getitem(lw, node, a):
    items = lw.env[node.args[0]]
    item = items[node.args[1]] if isinstance(items, list) else _UNKNOWN
    if item is None or item is _UNKNOWN:
        raise _Unsupported(f"output {node.args[1]} of {node.args[0].target}")
    return item
