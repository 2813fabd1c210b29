"""The other engines of ``pyconv bench --compare``: the torch model a .pyconv file was exported from, timed in
torch eager and in ONNX Runtime (exported through ``torch.onnx``).

Each engine runs in a spawned child process of its own (``EngineProcess``), one after the other, as
bench/layers.py does: pyconv's process never imports torch (torch's OpenMP runtime made pyconv's
2-thread kernels 1.4-2.7x slower there), and no engine's spinning worker threads steal a core from the
next one timed.  The ONNX Runtime child never imports torch either: the torch child exports the model.
"""
import io
import multiprocessing

import numpy as np

from ..graph.autotune import median_seconds

__all__ = ["EngineProcess", "EngineError", "WARM_UP_CALLS"]

WARM_UP_CALLS = 2
_engine = {}  # in a child: what ``_setup_*`` built


class EngineError(RuntimeError):
    """An engine failed in its child process (building, exporting or running the model)."""


class EngineProcess:
    """A child process timing one engine: ``with EngineProcess('torch', factory) as engine:
    engine.parameters, engine.seconds(shapes, threads, repeat), engine.onnx_model(shapes)``;
    'onnxruntime' takes the ONNX model (bytes) instead of a factory."""

    def __init__(self, engine, source):
        self.engine = engine
        self._pool = multiprocessing.get_context("spawn").Pool(1)
        setup = {"torch": _setup_torch, "onnxruntime": _setup_onnxruntime}[engine]
        try:
            self.parameters = self._apply(setup, source)
        except BaseException:
            self.close()
            raise

    def seconds(self, shapes, threads, repeat):
        """Median seconds per call on random float32 inputs of ``shapes`` with ``threads`` threads."""
        return self._apply(_seconds, shapes, threads, repeat)

    def onnx_model(self, shapes):
        """The torch model exported through torch.onnx (batch dimension dynamic), as bytes."""
        return self._apply(_onnx_model, shapes, what="the ONNX export (torch.onnx.export)")

    def _apply(self, function, *args, what=None):
        """``function(*args)`` in the child; its ValueErrors (ExportError: a bad factory) as they are, other
        errors as EngineError naming the engine (or ``what`` failed)."""
        try:
            return self._pool.apply(function, args)
        except ValueError:
            raise
        except Exception as error:
            first = (str(error).strip().splitlines() or [""])[0]
            raise EngineError(f"{what or self.engine} failed: {type(error).__name__}: {first}") from None

    def close(self):
        self._pool.terminate()
        self._pool.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _inputs(shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]


def _setup_torch(factory):
    """Build the factory's model; its parameter count (to check it is the .pyconv file's model)."""
    import torch

    from . import build_factory
    model = build_factory(factory)
    _engine.update(torch=torch, model=model)
    return sum(p.numel() for p in model.parameters())


def _setup_onnxruntime(model_bytes):
    import onnxruntime
    _engine.update(onnxruntime=onnxruntime, model_bytes=model_bytes)
    return None


def _seconds(shapes, threads, repeat):
    arrays = _inputs(shapes)
    if "torch" in _engine:
        torch, model = _engine["torch"], _engine["model"]
        torch.set_num_threads(threads)
        tensors = [torch.from_numpy(a) for a in arrays]

        def call():
            with torch.no_grad():
                model(*tensors)
    else:
        ort = _engine["onnxruntime"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(_engine["model_bytes"], options, providers=["CPUExecutionProvider"])
        feed = {i.name: a for i, a in zip(session.get_inputs(), arrays)}

        def call():
            session.run(None, feed)
    return median_seconds(call, repeat, warm_up=WARM_UP_CALLS)


def _onnx_model(shapes):
    torch, model = _engine["torch"], _engine["model"]
    names = [f"input{i}" for i in range(len(shapes))]
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, tuple(torch.from_numpy(a) for a in _inputs(shapes)), buffer, input_names=names,
                          dynamic_axes={name: {0: "batch"} for name in names}, dynamo=False)
    return buffer.getvalue()
