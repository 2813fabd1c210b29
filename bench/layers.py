"""Time pyconv against torch and ONNX Runtime on the layer suite of DESIGN.md, side by side, in one run.

    python bench/layers.py                  # threads 1 and 2, 7 samples each
    python bench/layers.py --threads 2 --cases conv3x3_64_56,maxpool3x3s2_64_112
    python bench/layers.py --rounds 3       # the whole measurement 3 times, medians over the rounds

pyconv runs each convolution as a model does: prepack_conv once (weights
transformed / packed), then calls; torch runs torch.nn.functional; ONNX
Runtime (when installed) a one-node model with the weights as initializers.
For each case and thread count: medians of each engine's samples, each the
mean of 3 back-to-back calls after 2 untimed ones, so the engine's threads
are awake as inside a model run (on this VM a worker idle for 100 ms took
4-8 ms to come back over the first two calls).  Each engine runs in a
process of its own, one after the other in this run, so no engine's idle
spinning workers steal a core from another (DESIGN.md's trap 1): torch and
ONNX Runtime in child processes, pyconv in this one, which never imports
torch (as where pyconv is deployed).  Measured here: with torch merely
imported, pyconv's 2-thread OpenMP kernels ran 1.4-2.7x slower (conv3x3_64_56
0.63 ms -> 0.9-1.7 ms; torch brings its own OpenMP runtime), and interleaved
with ONNX Runtime, whose pool keeps spinning after a run, up to 3x slower.
Reported: the ratios torch/pyconv and ORT/pyconv, the
algorithm 'auto' chose, effective GFLOP/s (2 x direct MACs / time) and that
as a % of numpy's fp32 GEMM peak measured in the same run, the 2-thread
speed-up over 1 thread as a fraction of the GEMM peak's own, the largest
difference from torch relative to max|torch| and from a float64 direct
reference relative to max|ref|.
"""
import argparse
import multiprocessing
import statistics
import time

import numpy as np
from tabulate import tabulate
from threadpoolctl import threadpool_info, threadpool_limits

import pyconv
import pyconv.functional as F
from suite import SUITE

try:
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the ORT column is optional
    onnxruntime = None

WARM_UP_CALLS = 2


def warm_allocator():
    """Allocate and free a 30 MiB block, as any process that has run a model has done.

    In a fresh process glibc returns large blocks to the OS on every free, which
    makes per-call output allocation look slow (DESIGN.md, performance trap 2).
    """
    block = np.ones(30 * 2**20 // 8)
    block[::4096] += 1.0
    del block


def time_round_robin(calls, repeat, back_to_back=3):
    """Median seconds per call of each engine; engines alternate sample by sample."""
    samples = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            for _ in range(WARM_UP_CALLS):
                call()
            start = time.perf_counter()
            for _ in range(back_to_back):
                call()
            samples[name].append((time.perf_counter() - start) / back_to_back)
    return {name: statistics.median(times) for name, times in samples.items()}


def gemm_peak_gflops(threads, repeat, n=2048):
    """Median fp32 GEMM speed of numpy's BLAS at ``threads`` threads.  Run it in a child process
    (gemm_peaks): OpenBLAS's idle threads spin on after a call and took a core from the pyconv case timed
    next in the same process (conv3x3_64_56, the first case, read 1.0-1.2 ms at 2 threads for 0.53)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        seconds = time_round_robin({"peak": lambda: a @ b}, repeat, back_to_back=1)["peak"]
    return 2 * n**3 / seconds / 1e9


def pyconv_call(case, x, w):
    """A no-argument callable running the case in pyconv, and the algorithm it runs ('' for pools)."""
    if w is None:
        return lambda: case.run_pyconv(x, w), ""
    transposed = case.op.startswith("conv_transpose")
    conv = F.prepack_conv(w, transposed=transposed, **case.kwargs)
    return lambda: conv(x), conv.algorithm_for(x.shape)


def onnx_session(case, x, w, threads):
    """An ONNX Runtime session computing the case, or None when ORT is missing."""
    if onnxruntime is None:
        return None
    dims = x.ndim - 2
    k = dict(case.kwargs)

    def ints(name, default):
        value = k.get(name, default)
        return list(value) if isinstance(value, (tuple, list)) else [value] * dims

    inputs = ["x"]
    initializers = []
    if case.op.startswith("conv"):
        inputs.append("w")
        initializers.append(numpy_helper.from_array(w, "w"))
        pads = ints("padding", 0)
        attributes = dict(strides=ints("stride", 1), pads=pads + pads, dilations=ints("dilation", 1),
                          group=k.get("groups", 1), kernel_shape=list(w.shape[2:]))
        node_type = "Conv"
        if case.op.startswith("conv_transpose"):
            node_type = "ConvTranspose"
            attributes["output_padding"] = ints("output_padding", 0)
    elif case.op in ("max_pool2d", "avg_pool2d"):
        kernel = ints("kernel_size", 1)
        pads = ints("padding", 0)
        node_type = "MaxPool" if case.op == "max_pool2d" else "AveragePool"
        attributes = dict(kernel_shape=kernel, strides=ints("stride", kernel), pads=pads + pads)
        if node_type == "AveragePool":
            attributes["count_include_pad"] = 1
    elif case.op == "adaptive_avg_pool2d" and k["output_size"] == 1:
        node_type, attributes = "GlobalAveragePool", {}
    else:
        raise ValueError(f"no ONNX equivalent written for {case.id}")
    out_shape = case.output_shape()
    graph = helper.make_graph(
        [helper.make_node(node_type, inputs, ["y"], **attributes)], case.id,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return ort_session(model.SerializeToString(), threads)


def ort_session(model, threads):
    """An ONNX Runtime CPU session of ``model`` (a .onnx path or its bytes) on ``threads`` intra-op threads,
    nodes run sequentially (no inter-op pool): how every bench here runs ONNX Runtime."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def reference_error(case, x, w, ours):
    """max|ours - ref| / max|ref| against pyconv's direct kernel in float64 (convolutions only)."""
    if w is None:
        return None
    fn = getattr(F, case.op)
    ref = fn(x.astype(np.float64), w.astype(np.float64), algorithm="direct", **case.kwargs)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def engine_seconds(engine, case_ids, thread_counts, repeat):
    """({(case id, threads): median seconds}, {case id: output}) of 'torch' or 'ort', in a child process."""
    warm_allocator()
    if engine == "torch":
        import torch
    seconds, outputs = {}, {}
    for case in SUITE:
        if case.id not in case_ids:
            continue
        x, w = case.arrays()
        for threads in thread_counts:
            if engine == "torch":
                torch.set_num_threads(threads)
                tx, tw = torch.from_numpy(x), None if w is None else torch.from_numpy(w)
                call = lambda: case.run_torch(torch, tx, tw).numpy()  # noqa: E731
            else:
                session = onnx_session(case, x, w, threads)
                call = lambda: session.run(None, {"x": x})[0]  # noqa: E731
            seconds[case.id, threads] = time_round_robin({engine: call}, repeat)[engine]
        outputs[case.id] = call()
    return seconds, outputs


def in_child_process(engine, case_ids, thread_counts, repeat):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(engine_seconds, (engine, case_ids, thread_counts, repeat))


def gemm_peaks(thread_counts, repeat):
    """{threads: gemm_peak_gflops}, measured in a child process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return {t: pool.apply(gemm_peak_gflops, (t, repeat)) for t in thread_counts}


def bench_case(case, threads, repeat, torch_output):
    x, w = case.arrays()
    pyconv.set_num_threads(threads)
    run_pyconv, algorithm = pyconv_call(case, x, w)
    ours = run_pyconv()
    error = float(np.max(np.abs(ours - torch_output)) / max(np.max(np.abs(torch_output)), 1e-30))
    seconds = time_round_robin({"pyconv": run_pyconv}, repeat)["pyconv"]
    return seconds, algorithm, error, reference_error(case, x, w, ours)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--repeat", type=int, default=7, help="samples per engine and case (default 7)")
    parser.add_argument("--cases", default="", help="comma-separated case ids (default: the whole suite)")
    parser.add_argument("--format", default="github", help="tabulate table format (default github)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the whole measurement (torch child, ORT child, pyconv) is repeated; each "
                             "time is the median over the rounds, so a slow spell of the shared host in one "
                             "engine's turn does not decide a ratio (default 1)")
    args = parser.parse_args()
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be at least 1")

    warm_allocator()
    thread_counts = [int(t) for t in args.threads.split(",")]
    wanted = set(filter(None, args.cases.split(",")))
    unknown = wanted - {case.id for case in SUITE}
    if unknown:
        parser.error(f"unknown case ids: {', '.join(sorted(unknown))}")
    cases = [case for case in SUITE if not wanted or case.id in wanted]

    print("thread pools:", ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()))
    print("ONNX Runtime:", "not installed" if onnxruntime is None else onnxruntime.__version__)
    case_ids = {case.id for case in cases}
    torch_rounds, ort_rounds, pyconv_rounds, peak_rounds = [], [], [], []
    for round_index in range(args.rounds):
        torch_seconds, torch_outputs = in_child_process("torch", case_ids, thread_counts, args.repeat)
        torch_rounds.append(torch_seconds)
        ort_rounds.append({} if onnxruntime is None else
                          in_child_process("ort", case_ids, thread_counts, args.repeat)[0])
        peak_rounds.append(gemm_peaks(thread_counts, args.repeat))
        pyconv_rounds.append({(case.id, threads): bench_case(case, threads, args.repeat, torch_outputs[case.id])
                              for case in cases for threads in thread_counts})
        print(f"round {round_index + 1} of {args.rounds} done", flush=True)
    torch_seconds = {key: float(np.median([r[key] for r in torch_rounds])) for key in torch_rounds[0]}
    ort = {key: float(np.median([r[key] for r in ort_rounds])) for key in ort_rounds[0]}
    peaks = {t: float(np.median([r[t] for r in peak_rounds])) for t in thread_counts}
    print("numpy fp32 GEMM peak:", ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in peaks.items()))

    rows = []
    ratios = {t: {"torch": [], "ort": []} for t in thread_counts}
    for case in cases:
        macs = case.macs()
        one_thread = None
        for threads in thread_counts:
            ours = float(np.median([r[case.id, threads][0] for r in pyconv_rounds]))
            _, algorithm, error, ref_error = pyconv_rounds[-1][case.id, threads]
            theirs, ort_time = torch_seconds[case.id, threads], ort.get((case.id, threads))
            gflops = 2 * macs / ours / 1e9 if macs else None
            scaling = ""
            if threads == 1:
                one_thread = ours
            elif one_thread is not None and 1 in peaks:
                scaling = f"{100 * (one_thread / ours) / (peaks[threads] / peaks[1]):.0f}%"
            ratios[threads]["torch"].append(theirs / ours)
            if ort_time is not None:
                ratios[threads]["ort"].append(ort_time / ours)
            rows.append([
                case.id, threads, algorithm, f"{ours * 1e3:.3f}", f"{theirs * 1e3:.3f}",
                "" if ort_time is None else f"{ort_time * 1e3:.3f}",
                f"{theirs / ours:.2f}", "" if ort_time is None else f"{ort_time / ours:.2f}",
                "" if gflops is None else f"{gflops:.1f}",
                "" if gflops is None else f"{100 * gflops / peaks[threads]:.0f}%",
                scaling, f"{error:.1e}", "" if ref_error is None else f"{ref_error:.1e}",
            ])
            print(f"  {case.id} @{threads}t [{algorithm}]: pyconv {ours * 1e3:.3f} ms, torch {theirs * 1e3:.3f} ms"
                  + ("" if ort_time is None else f", ort {ort_time * 1e3:.3f} ms"), flush=True)
    headers = ["case", "thr", "algorithm", "pyconv ms", "torch ms", "ORT ms", "torch/pyconv", "ORT/pyconv",
               "GFLOP/s", "% GEMM peak", "2t scaling vs GEMM", "err vs torch", "err vs f64"]
    print(tabulate(rows, headers=headers, tablefmt=args.format, disable_numparse=True))
    for threads in thread_counts:
        for engine, values in ratios[threads].items():
            if values:
                geomean = float(np.exp(np.mean(np.log(values))))
                print(f"geometric mean {engine}/pyconv at {threads} thread(s): {geomean:.2f}")


if __name__ == "__main__":
    main()
