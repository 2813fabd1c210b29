"""Capture a torch model as a pyconv graph: ``export`` writes a .pyconv file, ``from_torch`` returns a Model.

The only part of pyconv that imports torch, and only inside these functions.  The model is captured with ``torch.export`` (the batch
dimension of every input dynamic: an example at batch 1 is traced at batch 2, since torch specialises
sizes 0 and 1), lowered to core ATen with ``run_decompositions`` — except for composite ops that pyconv
runs as one kernel (linear, hardswish, silu, the paddings, pixel shuffles, ...) — and each ATen op is
mapped to an op of ``pyconv.graph.ops``.  Parts that do not depend on the inputs are computed by torch
at export time and stored as constants.  Ops pyconv cannot run fail the export with one ``ExportError``
listing each of them and the line of the model's source it comes from.  The mapping of ATen ops to
pyconv ops is in ``lowering``.
"""
import importlib
import os
import sys
import warnings

import numpy as np

from ..graph import Model, save_graph
from ..graph.ir import GraphError
from .lowering import ExportError, Lowering

__all__ = ["export", "export_factory", "build_factory", "from_torch", "capture", "ExportError"]


def export(model, example_inputs, path, *, dynamic_batch=True):
    """Capture ``model`` (a torch.nn.Module in eval mode) on ``example_inputs`` (a tensor or a tuple of
    tensors, NCHW float32) and write it to the .pyconv file ``path``, which ``pyconv.load`` runs without
    torch.  With ``dynamic_batch`` the file runs at any batch size."""
    save_graph(capture(model, example_inputs, dynamic_batch=dynamic_batch), path)


def export_factory(factory, input_shape, path, *, dynamic_batch=True):
    """Export the model ``factory`` ("MODULE:FUNCTION", e.g. "torchvision.models:resnet18", called without
    arguments; MODULE is looked up from the current directory too) on a random input of ``input_shape``."""
    import torch

    export(build_factory(factory), torch.randn(*input_shape), path, dynamic_batch=dynamic_batch)


def build_factory(factory):
    """The torch model ``factory`` ("MODULE:FUNCTION", see ``export_factory``) returns, in eval mode."""
    import torch

    module_name, _, attribute = factory.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"export: expected MODULE:FACTORY (e.g. torchvision.models:resnet18), got {factory!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ExportError(f"export: cannot find {factory!r}: {error}") from None
    model = build()
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"export: {factory} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def from_torch(model, example_inputs, *, dynamic_batch=True, **options):
    """``model`` captured as in ``export``, as a ready-to-call pyconv Model (``options`` as ``pyconv.load``)."""
    return Model(capture(model, example_inputs, dynamic_batch=dynamic_batch), **options)


def capture(model, example_inputs, *, dynamic_batch=True):
    """The pyconv Graph of ``model`` on ``example_inputs`` (see ``export``)."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"export: expected model to be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError("export: model is in training mode; call model.eval() before exporting")
    examples = _examples(torch, example_inputs)
    dynamic_shapes = None
    if dynamic_batch:
        batches = {x.shape[0] if x.ndim else None for x in examples}
        if len(batches) != 1 or None in batches or 0 in batches:
            raise ValueError(f"export: with dynamic_batch, every example input needs the same batch size "
                             f"(dim 0, >= 1), got shapes {[tuple(x.shape) for x in examples]}")
        if batches == {1}:  # torch.export specialises size 1: trace at batch 2
            examples = tuple(torch.cat([x, x]) for x in examples)
        batch = torch.export.Dim("batch", min=1)
        dynamic_shapes = tuple({0: batch} for _ in examples)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecations, not the user's
            program = torch.export.export(model, examples, dynamic_shapes=dynamic_shapes)
            program = program.run_decompositions(_decomposition_table(torch))
    except Exception as error:
        hint = ""
        if "Constraints violated" in str(error):
            hint = ("; the model's code depends on the batch size, so it cannot run at other batch sizes: "
                    "pass dynamic_batch=False to export it for the example's batch size only")
        raise ExportError(f"export: torch.export failed: {str(error).strip().splitlines()[0]}{hint}") from error
    graph = Lowering(torch, program).graph()
    try:
        graph.check()
    except GraphError as error:
        raise ExportError(f"export: pyconv's shapes disagree with torch's (a bug in pyconv): {error}") from error
    return graph


def _examples(torch, example_inputs):
    items = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    examples = []
    for item in items:
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(np.ascontiguousarray(item))
        if not isinstance(item, torch.Tensor) or item.dtype != torch.float32:
            raise TypeError(f"export: expected example_inputs to be float32 tensors (or a tuple of them), got "
                            f"{getattr(item, 'dtype', type(item).__name__)}")
        examples.append(item)
    if not examples:
        raise ValueError("export: expected at least one example input")
    return tuple(examples)


def _decomposition_table(torch):
    """Core ATen decompositions, minus the composite ops pyconv runs as one kernel."""
    aten = torch.ops.aten
    table = torch.export.default_decompositions()
    for name in ("linear", "hardswish", "hardsigmoid", "silu", "mish", "softplus", "celu", "selu", "prelu",
                 "_prelu_kernel", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
                 "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
                 "replication_pad2d", "replication_pad3d", "_pad_circular", "pad", "max_unpool2d", "max_unpool3d",
                 "max_pool1d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d",
                 "adaptive_max_pool1d"):
        for overload in getattr(aten, name).overloads():
            table.pop(getattr(getattr(aten, name), overload), None)
    for name in ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
                 "upsample_bilinear2d", "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_nearest_exact1d",
                 "_upsample_nearest_exact2d", "_upsample_nearest_exact3d"):
        table.pop(getattr(aten, name).vec, None)
    return table


