"""Time whole models: pyconv (exported, loaded from the .pyconv file) against torch eager and ONNX Runtime
(the model exported through torch.onnx), in one run.

    python bench/models.py                              # the ten test models + resnet18, batch 1 and 8, threads 1 and 2
    python bench/models.py --models resnet18 --batch 8 --threads 2 --repeat 5 --chart models.png

The models are those of tests/models (written once for torch and pyconv, random weights and batch-norm
statistics), at their test input sizes, plus 'resnet18': the test ResNet at ResNet-18's widths on 224x224.
Each engine runs in a process of its own, one after the other, as in bench/layers.py: a torch child
builds each model, exports it to .pyconv and .onnx files and times torch eager; an ONNX Runtime child
(no torch) times the .onnx files; this process, which never imports torch (torch's OpenMP runtime slows
pyconv's kernels), times the .pyconv files.  For each model, batch size and thread count: medians of
samples taken after two warm-up calls, the ratios torch/pyconv and ORT/pyconv, and their geometric means;
``--chart`` draws the ratios per model as a PNG (needs matplotlib).
Targets (issue 8, at 2 threads): geometric mean >= 2.5x torch eager and >= 1.0x ONNX Runtime, no model
slower than torch eager.
"""
import argparse
import importlib
import importlib.util
import math
import multiprocessing
import os
import sys
import tempfile

import numpy as np
from tabulate import tabulate

import pyconv
from layers import time_round_robin, warm_allocator

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests")
sys.path.insert(0, TESTS)
from models import MODELS  # noqa: E402  (the model sources; building them in torch needs torch, in the child)

RESNET18 = "resnet18"


def input_shape(name):
    """The model's input shape without the batch dimension."""
    if name == RESNET18:
        return (3, 224, 224)
    return importlib.import_module(f"models.{name}").INPUT_SHAPE[1:]


def _inputs(shape, batch):
    return np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)


def torch_engine(names, batches, threads, repeat, folder, onnx):
    """In a child process: export each model to FOLDER/NAME.pyconv (and NAME.onnx with ``onnx``) and time
    torch eager; {(name, batch, threads): median seconds}."""
    import torch
    from test_nn_models import build_torch

    warm_allocator()
    seconds = {}
    for name in names:
        if name == RESNET18:
            torch.manual_seed(0)
            model = importlib.import_module("models.resnet").build(
                torch.nn, torch.nn.functional, torch, widths=(64, 128, 256, 512), num_classes=1000).eval()
        else:
            model = build_torch(name)
        shape = input_shape(name)
        pyconv.export(model, torch.randn(1, *shape), os.path.join(folder, f"{name}.pyconv"))
        if onnx:
            try:
                with torch.no_grad():
                    torch.onnx.export(model, torch.randn(1, *shape), os.path.join(folder, f"{name}.onnx"),
                                      input_names=["x"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
            except Exception as error:  # e.g. aten::channel_shuffle has no ONNX export: no ORT column there
                print(f"  torch.onnx cannot export {name}: {type(error).__name__}: {str(error).splitlines()[0]}",
                      file=sys.stderr, flush=True)
        for count in threads:
            torch.set_num_threads(count)
            for batch in batches:
                x = torch.from_numpy(_inputs(shape, batch))
                with torch.no_grad():
                    seconds[name, batch, count] = time_round_robin({"torch": lambda: model(x)}, repeat)["torch"]
        print(f"  torch: {name} done", file=sys.stderr, flush=True)
    return seconds


def ort_engine(names, batches, threads, repeat, folder):
    """In a child process: time FOLDER/NAME.onnx in ONNX Runtime; {(name, batch, threads): median seconds}."""
    import onnxruntime

    warm_allocator()
    seconds = {}
    for name in names:
        if not os.path.exists(os.path.join(folder, f"{name}.onnx")):
            continue
        for count in threads:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = count
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            session = onnxruntime.InferenceSession(os.path.join(folder, f"{name}.onnx"), options,
                                                   providers=["CPUExecutionProvider"])
            for batch in batches:
                x = _inputs(input_shape(name), batch)
                seconds[name, batch, count] = time_round_robin({"ort": lambda: session.run(None, {"x": x})},
                                                               repeat)["ort"]
    return seconds


def in_child_process(function, *args):
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(function, args)
    finally:
        pool.close()
        pool.join()


def pyconv_engine(names, batches, threads, repeat, folder, autotune):
    """In this process: time FOLDER/NAME.pyconv; {(name, batch, threads): median seconds}."""
    seconds = {}
    for name in names:
        model = pyconv.load(os.path.join(folder, f"{name}.pyconv"), autotune=autotune)
        for count in threads:
            pyconv.set_num_threads(count)
            for batch in batches:
                x = _inputs(input_shape(name), batch)
                model(x)  # builds (and with autotune, tunes) the plan for this batch size and thread count
                seconds[name, batch, count] = time_round_robin({"pyconv": lambda: model(x)}, repeat)["pyconv"]
    return seconds


def geometric_mean(values):
    values = [v for v in values if not math.isnan(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS + [RESNET18]), help="comma-separated names")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--autotune", action="store_true", help="load the .pyconv files with autotune=True")
    parser.add_argument("--chart", metavar="OUT.png", help="draw the ratios per model as a PNG (needs matplotlib)")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS + [RESNET18]]
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)} (known: {', '.join(MODELS + [RESNET18])})")
    if args.chart and importlib.util.find_spec("matplotlib") is None:
        parser.error("--chart needs matplotlib (pip install 'pyconv[plot]')")
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    with_ort = importlib.util.find_spec("onnxruntime") is not None
    warm_allocator()
    with tempfile.TemporaryDirectory() as folder:
        torch_seconds = in_child_process(torch_engine, names, batches, threads, args.repeat, folder, with_ort)
        ort_seconds = in_child_process(ort_engine, names, batches, threads, args.repeat, folder) if with_ort else {}
        ours = pyconv_engine(names, batches, threads, args.repeat, folder, args.autotune)
    rows = []
    for name in names:
        for count in threads:
            for batch in batches:
                key = (name, batch, count)
                ort = ort_seconds.get(key, math.nan)
                rows.append([name, batch, count, ours[key] * 1e3, torch_seconds[key] * 1e3, ort * 1e3,
                             torch_seconds[key] / ours[key], ort / ours[key]])
    print(f"ONNX Runtime: {'in the table' if with_ort else 'not installed'}; autotune: {args.autotune}")
    print(tabulate(rows, headers=["model", "batch", "threads", "pyconv ms", "torch ms", "ORT ms", "torch/pyconv",
                                  "ORT/pyconv"], floatfmt=".3g"))
    means = []
    for count in threads:
        for batch in batches:
            chosen = [r for r in rows if (r[1], r[2]) == (batch, count)]
            means.append([batch, count, geometric_mean([r[6] for r in chosen]), geometric_mean([r[7] for r in chosen]),
                          min(r[6] for r in chosen)])
    print()
    print(tabulate(means, headers=["batch", "threads", "geomean torch/pyconv", "geomean ORT/pyconv",
                                   "worst torch/pyconv"], floatfmt=".3g"))
    if args.chart:
        from pyconv.cli import bar_chart
        panels = []
        for count in threads:
            for batch in batches:
                chosen = [r for r in rows if (r[1], r[2]) == (batch, count)]
                series = {"torch/pyconv": [r[6] for r in chosen]}
                if with_ort:
                    series["ORT/pyconv"] = [r[7] for r in chosen]
                panels.append((f"batch {batch}, {count} thread(s)", [r[0] for r in chosen], series))
        bar_chart(args.chart, panels, "speed-up of pyconv (time ratio)", lines=(1.0,), log=True)
        print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
