"""Time whole models: pyconv (exported, loaded from the .pyconv file) against torch eager and ONNX Runtime
(the model exported through torch.onnx), in one run.

    python bench/models.py                    # the full-size model suite, batch 1 and 8, threads 1 and 2
    python bench/models.py --models resnet18,vgg11 --batch 8 --threads 2 --repeat 5 --chart models.png
    python bench/models.py --suite test       # the small models the tests run, at their test input sizes
    python bench/models.py --threads 2 --rounds 3   # the timing 3 times, medians over the rounds

The models are written once in tests/models for torch and pyconv (random weights and batch-norm statistics).
``--suite full`` (the default) is DESIGN.md's model suite at full size, each module's ``FULL`` configuration:
resnet18, resnet50, mobilenetv2 (width 1.0), shufflenetv2 (x1.0), squeezenet (1.1), alexnet (the paper's
grouped network), vgg11 (with batch norm), inception (GoogLeNet), densenet121 on 224x224, unet (64-base) on
256x256 and dcgan (the 64x64 generator from a 100-long latent).  ``--suite test`` is the small test models.
Each engine runs in a process of its own, one after the other, model by model, as in bench/layers.py: a
torch child builds the model, exports it to .pyconv and .onnx files, times torch eager and saves its
outputs; an ONNX Runtime child (no torch) times the .onnx file; this process, which never imports torch
(torch's OpenMP runtime slows pyconv's kernels), times the .pyconv file and checks its outputs against torch's
(max|dy|/max|y| and, for classifiers, the top-1 class).  For each model, batch size and thread count: medians
of samples taken after two warm-up calls, the ratios torch/pyconv and ORT/pyconv, and their geometric means;
``--chart`` draws the ratios per model as a PNG (needs matplotlib).  Exporting the full-size models takes a
few seconds each (VGG-11's .pyconv and .onnx files are 0.5 GB each, in a temporary folder).
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
import time

import numpy as np
from tabulate import tabulate

import pyconv
from layers import ort_session, time_round_robin, warm_allocator

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests")
sys.path.insert(0, TESTS)
from models import MODELS, full_suite  # noqa: E402  (the model sources; building them in torch needs torch)


def suite_names(suite):
    return list(full_suite()) if suite == "full" else list(MODELS)


def input_shape(name, suite):
    """The model's input shape without the batch dimension."""
    if suite == "full":
        return full_suite()[name][2][1:]
    return importlib.import_module(f"models.{name}").INPUT_SHAPE[1:]


def _inputs(shape, batch):
    return np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)


def _output_path(folder, name, batch):
    return os.path.join(folder, f"{name}.torch-output.{batch}.npy")


def torch_engine(suite, names, batches, count, repeat, folder, export, onnx):
    """In a child process: with ``export``, export each model to FOLDER/NAME.pyconv (and NAME.onnx with
    ``onnx``) and save torch's output for each batch size; time torch eager at ``count`` threads;
    {(name, batch, count): median seconds}.  One child per thread count: in a child that had timed at
    1 thread, torch at 2 threads ran 17-60x slower than in a fresh process (resnet18 763 ms against 26;
    bench/MODELS.md)."""
    import torch
    from full_models import build_full_torch
    from test_nn_models import build_torch

    warm_allocator()
    seconds = {}
    for name in names:
        start = time.perf_counter()
        model = build_full_torch(name) if suite == "full" else build_torch(name)
        shape = input_shape(name, suite)
        if export:
            pyconv.export(model, torch.randn(1, *shape), os.path.join(folder, f"{name}.pyconv"))
        if export and onnx:
            try:
                with torch.no_grad():
                    torch.onnx.export(model, torch.randn(1, *shape), os.path.join(folder, f"{name}.onnx"),
                                      input_names=["x"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
            except Exception as error:  # e.g. aten::channel_shuffle has no ONNX export: no ORT column there
                print(f"  torch.onnx cannot export {name}: {type(error).__name__}: {str(error).splitlines()[0]}",
                      file=sys.stderr, flush=True)
        exported = time.perf_counter()
        torch.set_num_threads(count)
        for batch in batches:
            x = torch.from_numpy(_inputs(shape, batch))
            with torch.no_grad():
                seconds[name, batch, count] = time_round_robin({"torch": lambda: model(x)}, repeat)["torch"]
                if export:
                    np.save(_output_path(folder, name, batch), model(x).numpy())
        print(f"  torch: {name} exported in {exported - start:.1f} s, timed in {time.perf_counter() - exported:.1f} s",
              file=sys.stderr, flush=True)
    return seconds


def ort_engine(suite, names, batches, threads, repeat, folder):
    """In a child process: time FOLDER/NAME.onnx in ONNX Runtime; {(name, batch, threads): median seconds}."""
    warm_allocator()
    seconds = {}
    for name in names:
        if not os.path.exists(os.path.join(folder, f"{name}.onnx")):
            continue
        for count in threads:
            session = ort_session(os.path.join(folder, f"{name}.onnx"), count)
            for batch in batches:
                x = _inputs(input_shape(name, suite), batch)
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


def output_error(actual, expected):
    """max|actual - expected| / max|expected|, and whether the top-1 classes differ (classifiers only)."""
    error = np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max()
    top1_differs = expected.ndim == 2 and not np.array_equal(actual.argmax(1), expected.argmax(1))
    return error, top1_differs


def pyconv_engine(suite, names, batches, threads, repeat, folder, autotune):
    """In this process: time FOLDER/NAME.pyconv and compare its outputs with torch's;
    {(name, batch, threads): median seconds}, {(name, batch): output_error}."""
    seconds, errors = {}, {}
    for name in names:
        model = pyconv.load(os.path.join(folder, f"{name}.pyconv"), autotune=autotune)
        for count in threads:
            pyconv.set_num_threads(count)
            for batch in batches:
                x = _inputs(input_shape(name, suite), batch)
                y = model(x)  # builds (and with autotune, tunes) the plan for this batch size and thread count
                if count == threads[0]:
                    errors[name, batch] = output_error(y, np.load(_output_path(folder, name, batch)))
                seconds[name, batch, count] = time_round_robin({"pyconv": lambda: model(x)}, repeat)["pyconv"]
    return seconds, errors


def geometric_mean(values):
    values = [v for v in values if not math.isnan(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("full", "test"), default="full",
                        help="the full-size model suite (default) or the small test models")
    parser.add_argument("--models", help="comma-separated names (default: the whole suite)")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--autotune", action="store_true", help="load the .pyconv files with autotune=True")
    parser.add_argument("--chart", metavar="OUT.png", help="draw the ratios per model as a PNG (needs matplotlib)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the timing (per model: torch children, ORT child, pyconv) is repeated after the "
                             "export; each time is the median over the rounds (default 1)")
    args = parser.parse_args()
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be at least 1")
    known = suite_names(args.suite)
    names = args.models.split(",") if args.models else known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown models in --suite {args.suite}: {', '.join(unknown)} (known: {', '.join(known)})")
    if args.chart and importlib.util.find_spec("matplotlib") is None:
        parser.error("--chart needs matplotlib (pip install 'pyconv[plot]')")
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    with_ort = importlib.util.find_spec("onnxruntime") is not None
    warm_allocator()
    rounds = {"torch": [], "ort": [], "pyconv": []}
    errors = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            seconds = {"torch": {}, "ort": {}, "pyconv": {}}
            # Model by model, the three engines back to back: the host's slow spells (seconds to minutes, every
            # engine ~1.25x slower in them; bench/MODELS.md) then fall on one model's engines alike more often
            # than on one engine's whole suite.
            for name in names:
                for index, count in enumerate(threads):
                    seconds["torch"].update(in_child_process(torch_engine, args.suite, [name], batches, count,
                                                             args.repeat, folder, round_index == 0 and index == 0,
                                                             with_ort))
                if with_ort and os.path.exists(os.path.join(folder, f"{name}.onnx")):
                    seconds["ort"].update(in_child_process(ort_engine, args.suite, [name], batches, threads,
                                                           args.repeat, folder))
                ours, model_errors = pyconv_engine(args.suite, [name], batches, threads, args.repeat, folder,
                                                   args.autotune)
                seconds["pyconv"].update(ours)
                errors.update(model_errors)
            for engine in rounds:
                rounds[engine].append(seconds[engine])
            print(f"round {round_index + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    # Each time: the median over the rounds, so a slow spell of the shared host in one engine's turn does not
    # decide a ratio.
    torch_seconds, ort_seconds, ours = ({key: float(np.median([r[key] for r in rounds[engine]]))
                                         for key in rounds[engine][0]} for engine in ("torch", "ort", "pyconv"))
    rows = []
    for name in names:
        for count in threads:
            for batch in batches:
                key = (name, batch, count)
                ort = ort_seconds.get(key, math.nan)
                error, top1_differs = errors[name, batch]
                rows.append([name, batch, count, ours[key] * 1e3, torch_seconds[key] * 1e3, ort * 1e3,
                             torch_seconds[key] / ours[key], ort / ours[key],
                             f"{error:.2g}" + (" TOP-1 DIFFERS" if top1_differs else "")])
    print(f"suite: {args.suite}; ONNX Runtime: {'in the table' if with_ort else 'not installed'}; "
          f"autotune: {args.autotune}")
    print(tabulate(rows, headers=["model", "batch", "threads", "pyconv ms", "torch ms", "ORT ms", "torch/pyconv",
                                  "ORT/pyconv", "max|dy|/max|y|"], floatfmt=".3g"))
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
