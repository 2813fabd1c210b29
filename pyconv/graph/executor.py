"""The executor: ``Model`` runs a Graph on numpy arrays.

At construction the graph is checked, optimised (``passes``), every node's
kernel is built and, for batch 1, each convolution's algorithm chosen and
its weights packed.  A call validates the inputs (float32, NCHW, one batch
size), takes the plan for that batch size (built once: concrete shapes,
arena offsets by liveness, see ``memory``) and runs the nodes in order.

With ``autotune=True`` plans are per batch size and thread count, and each
convolution runs the algorithm measured fastest on its input shape when
the plan is built (see ``autotune``; cached next to the model file).

Concurrent calls on one Model are safe: plans and kernels are shared and
read-only once built (building is locked), and each call runs in an arena
of its own, taken from a per-plan pool.  Outputs are never arena memory.
``debug=True`` fills each arena with NaN bytes before a call and each buffer
with NaN bytes after its last use, so a value read after its buffer was
reused shows up as NaN.
"""
import threading
import time
from collections import OrderedDict

import numpy as np

from . import memory
from .. import _aligned as aligned
from .autotune import Tuner, TunedConv
from .._threads import get_num_threads
from .ir import DTYPES, _dim_factor, resolve_shape
from .ops import OPS
from .passes import DEFAULT_PASSES

__all__ = ["Model"]

_MAX_PLANS = 16    # plans kept per program (one per batch size), least recently built dropped first
_MAX_PROGRAMS = 9  # programs kept per model: the plain one and 8 for sets of requested outputs


class Model:
    """A graph ready to run: ``y = model(x)``; ``model(x, outputs=[...])`` returns intermediate values.

    ``passes``: the graph passes to apply (default all of ``passes.DEFAULT_PASSES``; ``()`` runs the graph
    as loaded).  ``debug``: poison freed buffers with NaN (slower; for tests).  ``autotune``: time each
    convolution's algorithms for every batch size and thread count run (see ``autotune``); ``model_file``:
    the .pyconv file ``graph`` was loaded from, next to which the tuned plans are cached.
    """

    def __init__(self, graph, *, passes=DEFAULT_PASSES, debug=False, autotune=False, model_file=None):
        graph.check()
        if not isinstance(autotune, bool):
            raise TypeError(f"Model: expected autotune to be True or False, got {autotune!r}")
        self.graph = graph
        self.passes = tuple(passes)
        self.debug = bool(debug)
        self.tuner = Tuner(model_file) if autotune else None
        self._programs = {}
        self._lock = threading.Lock()
        self._program(frozenset()).plan(1)

    @property
    def input_names(self):
        return tuple(v.name for v in self.graph.inputs)

    @property
    def output_names(self):
        return self.graph.outputs

    def __repr__(self):
        return (f"Model(inputs={list(self.input_names)}, outputs={list(self.output_names)}, "
                f"nodes={len(self.graph.nodes)})")

    def __call__(self, *inputs, outputs=None):
        """The graph's outputs for ``inputs`` (one array, or a tuple for several outputs).

        With ``outputs`` (a list of torch module paths such as 'layer1.0.conv1', or value names of the
        graph) returns a dict of those values instead, each the output of that module.
        """
        arrays, batch = self._check_inputs(inputs)
        if outputs is None:
            results = self._program(frozenset()).plan(batch).run(arrays)
            return results[0] if len(results) == 1 else tuple(results)
        wanted = self._resolve(outputs)
        program = self._program(frozenset(wanted.values()))
        results = dict(zip(program.output_names, program.plan(batch).run(arrays)))
        return {request: results[name] for request, name in wanted.items()}

    def planned_peak_bytes(self, batch=1):
        """Bytes of the arena holding intermediate values at ``batch`` (outputs are allocated apart)."""
        return self._program(frozenset()).plan(_batch_arg(batch)).arena_bytes

    def summary(self, batch=1):
        """A table per node: op, output shape, parameters, MACs, algorithm; with totals (see ``summary``)."""
        from .summary import summarize
        return summarize(self, self._program(frozenset()), _batch_arg(batch))

    def profile(self, *inputs, repeat=10):
        """Per-node time (median of ``repeat`` runs), GFLOP/s and share of the total, as a table."""
        from .summary import profile
        arrays, batch = self._check_inputs(inputs)
        return profile(self, self._program(frozenset()), batch, arrays, repeat)

    # ---------------------------------------------------------------- internals

    def _program(self, keep):
        program = self._programs.get(keep)
        if program is None:
            with self._lock:
                program = self._programs.get(keep)
                if program is None:
                    program = self._programs[keep] = _Program(self.graph, keep, self.passes, self.debug,
                                                              self.tuner)
                    if len(self._programs) > _MAX_PROGRAMS:  # drop the oldest set of requested outputs
                        del self._programs[next(k for k in self._programs if k)]
        return program

    def _check_inputs(self, inputs):
        expected = self.graph.inputs
        if len(inputs) != len(expected):
            raise TypeError(f"Model: expected {len(expected)} input arrays ({', '.join(self.input_names)}), "
                            f"got {len(inputs)}")
        arrays, batch = [], None
        for value, x in zip(expected, inputs):
            if not isinstance(x, np.ndarray):
                raise TypeError(f"Model: expected input {value.name!r} to be a numpy array, got {type(x).__name__}")
            if x.dtype.kind != "f":
                raise TypeError(f"Model: expected input {value.name!r} to be a float32 array, got dtype {x.dtype}")
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim == len(value.shape) and batch is None:
                for dim, size in zip(value.shape, x.shape):
                    factor = _dim_factor(dim)
                    if factor and size % factor == 0 and size:
                        batch = size // factor
                        break
            arrays.append(x)
        batch = batch or 1
        for value, x in zip(expected, arrays):
            if x.shape != resolve_shape(value.shape, batch):
                shown = "(" + ", ".join(map(str, value.shape)) + ")"
                raise ValueError(f"Model: expected input {value.name!r} of shape {shown} (N: the batch size, "
                                 f"{batch} here), got {x.shape}")
        return arrays, batch

    def _resolve(self, outputs):
        """Requested name -> value name of the loaded graph, for module paths and value names."""
        if isinstance(outputs, str) or not isinstance(outputs, (list, tuple)):
            raise TypeError(f"Model: expected outputs to be a list of module paths or value names, "
                            f"got {type(outputs).__name__}")
        values = self.graph.values()
        wanted = {}
        for request in outputs:
            if not isinstance(request, str):
                raise TypeError(f"Model: expected outputs to hold strings, got {type(request).__name__}")
            wanted[request] = request if request in values or request in self.graph.constants else \
                _module_output(self.graph, request)
        return wanted


def _batch_arg(batch):
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"expected batch to be an int >= 1, got {batch!r}")
    return batch


def _module_output(graph, path):
    """The value a module computes: the last value defined inside module ``path`` that is read outside it
    (or is a graph output); for a module called several times, its last call's."""
    def inside(node):
        return node.scope == path or node.scope.startswith(path + ".")
    readers = {}
    for node in graph.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node)
    found = None
    for node in graph.nodes:
        if inside(node):
            for value in node.outputs:
                if value.name in graph.outputs or any(not inside(r) for r in readers.get(value.name, ())):
                    found = value.name
    if found is None:
        scopes = sorted({n.scope for n in graph.nodes if n.scope})
        shown = ", ".join(repr(s) for s in scopes[:12]) + (", ..." if len(scopes) > 12 else "")
        raise ValueError(f"Model: outputs: {path!r} is neither a value of the graph nor a module path of the "
                         f"model (module paths: {shown})")
    return found


class _Program:
    """The graph optimised for one set of kept values, with a kernel per node and plans per batch size."""

    def __init__(self, graph, keep, passes, debug, tuner):
        for graph_pass in passes:
            graph = graph_pass(graph, keep)
        self.graph = graph
        self.output_names = graph.outputs + tuple(sorted(keep))
        self.debug = debug
        self.tuner = tuner
        self.kernels = []
        for node in graph.nodes:
            spec = OPS[node.op]
            constants = [None if n is None else graph.constants.get(n) for n in node.inputs]
            self.kernels.append(None if spec.view else spec.kernel(node.attrs, constants))
        self._plans = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, batch):
        key = batch if self.tuner is None else (batch, get_num_threads())  # tuned for a thread count
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._plans[key] = _Plan(self, batch)
                    if self.tuner is not None:
                        self.tuner.save()
                    while len(self._plans) > _MAX_PLANS:
                        self._plans.popitem(last=False)
        return plan


class _Step:
    __slots__ = ("node", "kernel", "call", "inputs", "outputs", "outs", "fresh", "view_shape", "shapes", "free",
                 "poison")


class _Plan:
    """The steps of a program at one batch size: value slots, arena offsets, when to drop each value."""

    def __init__(self, program, batch):
        graph = program.graph
        self.debug = program.debug
        slot = {}
        self.template = []
        for name, array in graph.constants.items():
            slot[name] = len(self.template)
            self.template.append(array)
        self.input_ids = []
        for value in graph.inputs:
            slot[value.name] = len(self.template)
            self.input_ids.append(slot[value.name])
            self.template.append(None)
        concrete = {v.name: resolve_shape(v.shape, batch) for v in graph.inputs}
        concrete.update((name, array.shape) for name, array in graph.constants.items())
        root, defined, last_use, buffers, self.steps = {}, {}, {}, {}, []
        for index, ((node, shapes), kernel) in enumerate(zip(graph.infer_shapes(batch), program.kernels)):
            spec = OPS[node.op]
            step = _Step()
            step.node, step.kernel, step.shapes = node, kernel, shapes
            step.inputs = [None if n is None else slot[n] for n in node.inputs]
            for i in step.inputs:
                if i is not None:
                    last_use[i] = index
            step.outputs = []
            for value, shape in zip(node.outputs, shapes):
                i = slot[value.name] = len(self.template)
                self.template.append(None)
                step.outputs.append(i)
                defined[i] = index
                root[i] = root.get(step.inputs[0], step.inputs[0]) if spec.view else i
                if spec.writes_out:
                    size = int(np.prod(shape)) * DTYPES[value.dtype].itemsize
                    buffers[i] = memory.Buffer(size, index, index)
            step.view_shape = shapes[0] if spec.view else None
            step.outs = [[s, DTYPES[v.dtype], None] for s, v in zip(shapes, node.outputs)] if spec.writes_out else None
            concrete.update((v.name, shape) for v, shape in zip(node.outputs, shapes))
            if hasattr(kernel, "prepare"):  # choose the algorithm and pack the weights now
                name = None
                if program.tuner is not None:
                    name = program.tuner.choose(kernel, concrete[node.inputs[0]], node.inputs[5] is not None)
                if name is None:
                    kernel.prepare(concrete[node.inputs[0]])
                else:
                    step.kernel = TunedConv(kernel, name)
            # A kernel that can, binds itself to this plan's shapes (its per-call work done once here).
            step.call = step.kernel
            if spec.writes_out and hasattr(step.kernel, "bind"):
                step.call = step.kernel.bind([None if n is None else concrete[n] for n in node.inputs], shapes)
            self.steps.append(step)
        self.output_ids = [slot[name] for name in program.output_names]
        self._shapes = {slot[name]: shape for name, shape in concrete.items()}
        for i in self.output_ids:  # outputs live on after the call: never in the arena
            buffers.pop(root.get(i, i), None)
        in_place = self._concatenate_in_place(buffers, root, defined)
        for i, index in last_use.items():
            r = root.get(i, i)
            if r in buffers:
                buffers[r].last = max(buffers[r].last, index)
        self.arena_bytes = memory.assign_offsets(buffers.values())
        for step in self.steps:
            step.fresh = False
            if step.outs is not None:
                for out, i in zip(step.outs, step.outputs):
                    if i in in_place:
                        out[2] = buffers[root[i]].offset + in_place[i]
                    else:
                        out[2] = buffers[i].offset if i in buffers else None
                    step.fresh |= out[2] is None
            step.free, step.poison = [], []
        kept = set(self.output_ids)
        for i, index in {**defined, **last_use}.items():  # drop each value after its last use
            if i not in kept and (i in defined or i in self.input_ids):
                self.steps[index].free.append(i)
        for buffer in buffers.values():
            self.steps[buffer.last].poison.append((buffer.offset, buffer.size))
        sources = set(self.input_ids) | set(range(len(graph.constants)))
        self.copied = [root.get(i, i) in sources for i in self.output_ids]
        self._arenas = []
        self._arena_lock = threading.Lock()

    def shape_of(self, slot):
        return self._shapes[slot]

    def _concatenate_in_place(self, buffers, root, defined):
        """Concatenations along dim 1 with dim 0 of size 1 (their channel slices are contiguous) whose
        inputs are all arena values written by other single-output steps: those steps write into the
        slices of the concatenation's buffer, which then lives from the first of them on, and the
        concatenation step copies nothing (SqueezeNet's fire modules, GoogLeNet's branches at batch 1).
        Returns {input slot: byte offset in the concatenation's buffer}; the root of each input and of
        its views becomes the concatenation, so their reads keep its buffer alive.  The slices start
        where the channels do, not on cache lines."""
        in_place = {}
        for step in self.steps:
            if step.node.op != "cat" or step.outs is None or step.outputs[0] not in buffers:
                continue
            shape = step.shapes[0]
            if len(shape) < 2 or step.node.attrs["dim"] % len(shape) != 1 or shape[0] != 1:
                continue
            inputs = step.inputs
            # arena values (so no graph input, constant, output or view) of distinct single-output steps
            if len(set(inputs)) != len(inputs) or any(
                    i not in buffers or len(self.steps[defined[i]].outputs) != 1
                    or self.steps[defined[i]].node.op == "cat" for i in inputs):
                continue
            out, offset = step.outputs[0], 0
            for i in inputs:
                in_place[i] = offset
                offset += buffers.pop(i).size
                for value, value_root in list(root.items()):   # the input and its views
                    if value_root == i:
                        root[value] = out
                root[i] = out
                buffers[out].first = min(buffers[out].first, defined[i])
            step.call = _already_concatenated
        return in_place

    def _acquire(self):
        """An arena no other call is using, and each step's output views into it (None: not in the arena)."""
        with self._arena_lock:
            if self._arenas:
                return self._arenas.pop()
        arena = aligned.empty((self.arena_bytes,), np.uint8)  # on a cache line, as every buffer in it
        return arena, [None if step.outs is None else
                       [None if offset is None else np.ndarray(shape, dtype, buffer=arena, offset=offset)
                        for shape, dtype, offset in step.outs] for step in self.steps]

    def _release(self, arena_and_views):
        with self._arena_lock:
            self._arenas.append(arena_and_views)

    def run(self, inputs, times=None):
        """The program's outputs (list) for validated ``inputs``; ``times`` (a list per step) gets seconds added."""
        arena_and_views = self._acquire()
        arena, views = arena_and_views
        try:
            if self.debug:
                arena.fill(0xFF)
            env = list(self.template)
            for i, array in zip(self.input_ids, inputs):
                env[i] = array
            for index, step in enumerate(self.steps):
                start = time.perf_counter() if times is not None else 0.0
                args = [None if i is None else env[i] for i in step.inputs]
                if step.view_shape is not None:
                    results = (args[0].reshape(step.view_shape),)
                elif step.outs is not None:
                    outs = views[index]
                    if step.fresh:  # an output of the call: a new array every time
                        outs = [aligned.empty(shape, dtype) if view is None else view
                                for view, (shape, dtype, _) in zip(outs, step.outs)]
                    results = step.call(args, outs)
                else:
                    results = _owned(step, args, step.call(args, None))
                for i, result in zip(step.outputs, results):
                    env[i] = result
                for i in step.free:
                    env[i] = None
                if self.debug:
                    for offset, size in step.poison:
                        arena[offset:offset + size].fill(0xFF)
                if times is not None:
                    times[index] += time.perf_counter() - start
            return [env[i].copy() if copy else env[i] for i, copy in zip(self.output_ids, self.copied)]
        finally:
            self._release(arena_and_views)


def _already_concatenated(inputs, outs):
    """A concatenation whose inputs were written into its slices (_Plan._concatenate_in_place)."""
    return outs


def _owned(step, args, results):
    """The results of an allocating kernel, checked against the plan and never sharing an input's memory."""
    owned = []
    for result, shape in zip(results, step.shapes):
        if result.shape != shape:
            raise RuntimeError(f"{step.node.label()}: computed shape {result.shape}, planned {shape}")
        if any(a is not None and np.may_share_memory(result, a) for a in args) or not result.flags.c_contiguous:
            result = result.copy()
        owned.append(result)
    return owned
