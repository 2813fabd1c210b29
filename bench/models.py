"""Time whole models: pyconv (exported, loaded from the .pyconv file) against torch eager and ONNX Runtime
(the model exported through torch.onnx), side by side in one run.

    python bench/models.py                              # the ten test models + resnet18, batch 1 and 8, threads 1 and 2
    python bench/models.py --models resnet18 --batch 8 --threads 2 --repeat 5

The models are those of tests/models (written once for torch and pyconv, random weights and batch-norm
statistics), at their test input sizes, plus 'resnet18': the test ResNet at ResNet-18's widths on 224x224.
For each model, batch size and thread count: medians of the engines (alternating, with the sleep and
warm-up call of bench/layers.py), the ratios torch/pyconv and ORT/pyconv, and their geometric means.
Targets (issue 8, at 2 threads): geometric mean >= 2.5x torch eager and >= 1.0x ONNX Runtime, no model
slower than torch eager.
"""
import argparse
import importlib
import io
import math
import os
import sys
import tempfile

import numpy as np
import torch
from tabulate import tabulate

import pyconv
from layers import time_round_robin, warm_allocator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from models import MODELS  # noqa: E402
from test_nn_models import build_torch  # noqa: E402

try:
    import onnxruntime
except ImportError:  # the ORT column is optional
    onnxruntime = None


def suite():
    """name -> (torch model builder, input shape without the batch dim)."""
    cases = {name: (lambda name=name: build_torch(name),
                    importlib.import_module(f"models.{name}").INPUT_SHAPE[1:]) for name in MODELS}

    def resnet18():
        torch.manual_seed(0)
        return importlib.import_module("models.resnet").build(torch.nn, torch.nn.functional, torch,
                                                              widths=(64, 128, 256, 512), num_classes=1000).eval()
    cases["resnet18"] = (resnet18, (3, 224, 224))
    return cases


def ort_session(model, shape, threads):
    if onnxruntime is None:
        return None
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.randn(1, *shape), buffer, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def bench_model(name, build, shape, batches, threads, repeat, folder):
    model = build()
    path = os.path.join(folder, f"{name}.pyconv")
    pyconv.export(model, torch.randn(1, *shape), path)
    ours = pyconv.load(path)
    rows = []
    for count in threads:
        pyconv.set_num_threads(count)
        torch.set_num_threads(count)
        session = ort_session(model, shape, count)
        for batch in batches:
            x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
            tx = torch.from_numpy(x)
            calls = {"pyconv": lambda: ours(x)}
            with torch.no_grad():
                calls["torch"] = lambda: model(tx)
                if session is not None:
                    calls["ort"] = lambda: session.run(None, {"x": x})
                seconds = time_round_robin(calls, repeat)
            ort = seconds.get("ort", math.nan)
            rows.append([name, batch, count, seconds["pyconv"] * 1e3, seconds["torch"] * 1e3, ort * 1e3,
                         seconds["torch"] / seconds["pyconv"], ort / seconds["pyconv"]])
            print(f"  {name} batch {batch}, {count} thread(s): pyconv {seconds['pyconv'] * 1e3:.3g} ms",
                  file=sys.stderr)
    return rows


def geometric_means(rows):
    means = []
    for batch, count in sorted({(r[1], r[2]) for r in rows}):
        chosen = [r for r in rows if (r[1], r[2]) == (batch, count)]
        means.append([batch, count] + [math.exp(statistics_mean([math.log(r[i]) for r in chosen]))
                                       for i in (6, 7)] + [min(r[6] for r in chosen)])
    return means


def statistics_mean(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def main():
    cases = suite()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(cases), help="comma-separated names")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    warm_allocator()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            build, shape = cases[name]
            rows += bench_model(name, build, shape, batches, threads, args.repeat, folder)
    print(tabulate(rows, headers=["model", "batch", "threads", "pyconv ms", "torch ms", "ORT ms", "torch/pyconv",
                                  "ORT/pyconv"], floatfmt=".3g"))
    print()
    print(tabulate(geometric_means(rows), headers=["batch", "threads", "geomean torch/pyconv", "geomean ORT/pyconv",
                                                   "worst torch/pyconv"], floatfmt=".3g"))


if __name__ == "__main__":
    main()
