"""Time torchvision's classification models (optional suite: needs torchvision): pyconv against torch eager and
ONNX Runtime, side by side in one run.

    python bench/torchvision_models.py prepare --folder /tmp/tvbench        # export; not timed, no lock needed
    flock /tmp/pyconv-bench.lock python bench/torchvision_models.py time --folder /tmp/tvbench \\
        --models resnet18,mobilenet_v2 --batch 1,8 --threads 1,2 --results /tmp/tvbench/results.json
    python bench/torchvision_models.py table --results /tmp/tvbench/results.json

The models are tests/test_torchvision_models.py's: one variant per family, random weights with batch-norm
statistics of a training-mode pass (``build``), 224x224.  ``prepare`` (a torch process) writes per model
the .pyconv file (exported at batch 1, run at every batch), an ONNX file (torch.onnx, dynamic batch), the
pickled torch module and torch's outputs on the bench inputs.  ``time`` follows bench/layers.py's protocol:
ONNX Runtime, then torch eager, each in a child process of its own, then pyconv in this process, which never
imports torch; per model, batch and thread count the median of ``--repeat`` samples, each the mean of
``--calls`` back-to-back calls after 2 untimed ones.  It adds its rows to the ``--results`` file (so a
long suite can be timed in several short locked runs) and prints the table of every row there: times,
the ratios torch/pyconv and ORT/pyconv, max|pyconv - torch| / max|torch|, the machine's 1-minute load
average around the pyconv timing (the other work on a shared machine), and the geometric means.
"""
import argparse
import json
import math
import multiprocessing
import os
import sys

import numpy as np
from tabulate import tabulate

import pyconv
from layers import ort_session, time_round_robin, warm_allocator

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, os.pardir, "tests")
# tests/test_torchvision_models.py's MODELS (not imported here: that module imports torch)
MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1", "alexnet",
          "vgg11", "googlenet", "densenet121", "efficientnet_b0", "regnet_y_400mf"]
INPUT_SHAPE = (3, 224, 224)


def bench_input(batch):
    return np.random.default_rng(batch).standard_normal((batch, *INPUT_SHAPE), dtype=np.float32)


def prepare(names, batches, folder):
    """Write name.pyconv, name.onnx, name.pt and name.npz (torch's output per batch) into ``folder``."""
    import torch
    sys.path.insert(0, TESTS)
    from test_torchvision_models import INPUT_SHAPE as TEST_SHAPE, MODELS as TEST_MODELS, build
    assert (TEST_SHAPE, TEST_MODELS) == (INPUT_SHAPE, MODELS), "keep MODELS in step with the test module"
    os.makedirs(folder, exist_ok=True)
    for name in names:
        model = build(name)
        example = torch.from_numpy(bench_input(1))
        pyconv.export(model, example, os.path.join(folder, f"{name}.pyconv"))
        torch.onnx.export(model, example, os.path.join(folder, f"{name}.onnx"), input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
        torch.save(model, os.path.join(folder, f"{name}.pt"))
        with torch.no_grad():
            outputs = {str(batch): model(torch.from_numpy(bench_input(batch))).numpy() for batch in batches}
        np.savez(os.path.join(folder, f"{name}.npz"), **outputs)
        print(f"  prepared {name}", file=sys.stderr, flush=True)


def engine_seconds(engine, names, batches, thread_counts, repeat, calls, folder):
    """{(name, batch, threads): (median seconds, max|y - torch| / max|torch|)} of one engine."""
    warm_allocator()
    results = {}
    if engine == "torch":
        import torch
    for name in names:
        reference = np.load(os.path.join(folder, f"{name}.npz"))
        if engine == "torch":
            model = torch.load(os.path.join(folder, f"{name}.pt"), weights_only=False)
        elif engine == "pyconv":
            model = pyconv.load(os.path.join(folder, f"{name}.pyconv"))
        for threads in thread_counts:
            if engine == "torch":
                torch.set_num_threads(threads)
            elif engine == "pyconv":
                pyconv.set_num_threads(threads)
            else:
                session = ort_session(os.path.join(folder, f"{name}.onnx"), threads)
            for batch in batches:
                x = bench_input(batch)
                if engine == "torch":
                    tx = torch.from_numpy(x)
                    call = lambda: model(tx).numpy()  # noqa: E731
                elif engine == "pyconv":
                    call = lambda: model(x)  # noqa: E731
                else:
                    call = lambda: session.run(None, {"x": x})[0]  # noqa: E731
                if engine == "torch":
                    with torch.no_grad():
                        seconds = time_round_robin({engine: call}, repeat, calls)[engine]
                        y = call()
                else:
                    seconds = time_round_robin({engine: call}, repeat, calls)[engine]
                    y = call()
                expected = reference[str(batch)]
                error = float(np.abs(y - expected).max() / np.abs(expected).max())
                results[name, batch, threads] = (seconds, error)
                print(f"  {engine} {name} batch {batch}, {threads} thread(s): {seconds * 1e3:.4g} ms",
                      file=sys.stderr, flush=True)
    return results


def in_child_process(*args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(engine_seconds, args)


def table(rows):
    """The results table (one row per model, batch, thread count) and the geometric means per batch and
    thread count."""
    body = []
    for row in sorted(rows, key=lambda r: (MODELS.index(r["model"]) if r["model"] in MODELS else len(MODELS),
                                           r["model"], r["batch"], r["threads"])):
        ort = row.get("ort", math.nan)
        body.append([row["model"], row["batch"], row["threads"], row["pyconv"] * 1e3, row["torch"] * 1e3, ort * 1e3,
                     row["torch"] / row["pyconv"], ort / row["pyconv"], f"{row['pyconv_error']:.1e}",
                     f"{row.get('load', math.nan):.1f}"])
    headers = ["model", "batch", "threads", "pyconv ms", "torch ms", "ORT ms", "torch/pyconv", "ORT/pyconv",
               "pyconv err", "load"]
    means = []
    for batch, threads in sorted({(r["batch"], r["threads"]) for r in rows}):
        chosen = [r for r in body if (r[1], r[2]) == (batch, threads)]
        ratios = [[r[i] for r in chosen if not math.isnan(r[i])] for i in (6, 7)]
        means.append([batch, threads, len(chosen)] + [math.exp(sum(map(math.log, v)) / len(v)) if v else math.nan
                                                      for v in ratios] + [min(r[6] for r in chosen)])
    return (tabulate(body, headers=headers, tablefmt="github", floatfmt=".3g") + "\n\n"
            + tabulate(means, headers=["batch", "threads", "models", "geomean torch/pyconv", "geomean ORT/pyconv",
                                       "worst torch/pyconv"], tablefmt="github", floatfmt=".3g"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("prepare", "time", "table"))
    parser.add_argument("--folder", help="where prepare writes the models and time reads them")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names (default: all)")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=5, help="samples per engine and case (default 5)")
    parser.add_argument("--calls", type=int, default=3, help="back-to-back calls per sample (default 3)")
    parser.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    parser.add_argument("--results", help="JSON file the rows are added to (time) or read from (table)")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown models: {', '.join(sorted(unknown))} (expected some of {', '.join(MODELS)})")
    batches = [int(b) for b in args.batch.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    if args.command != "table" and not args.folder:
        parser.error(f"{args.command} needs --folder")
    if args.command == "prepare":
        prepare(names, batches, args.folder)
        return
    rows = []
    if args.results and os.path.exists(args.results):
        with open(args.results) as file:
            rows = json.load(file)
    if args.command == "time":
        engines = ["torch"] if args.no_ort else ["ort", "torch"]
        timed = {engine: in_child_process(engine, names, batches, thread_counts, args.repeat, args.calls,
                                          args.folder) for engine in engines}
        load = os.getloadavg()[0]  # other work on the machine: 2-thread times suffer first
        timed["pyconv"] = engine_seconds("pyconv", names, batches, thread_counts, args.repeat, args.calls,
                                         args.folder)
        load = max(load, os.getloadavg()[0])
        done = set(timed["pyconv"])
        rows = [r for r in rows if (r["model"], r["batch"], r["threads"]) not in done]
        for key, (seconds, error) in timed["pyconv"].items():
            row = {"model": key[0], "batch": key[1], "threads": key[2], "pyconv": seconds, "pyconv_error": error,
                   "torch": timed["torch"][key][0], "calls": args.calls, "repeat": args.repeat, "load": load}
            if "ort" in timed:
                row["ort"] = timed["ort"][key][0]
            rows.append(row)
        if args.results:
            with open(args.results, "w") as file:
                json.dump(rows, file, indent=1)
    print(table(rows))


if __name__ == "__main__":
    main()
