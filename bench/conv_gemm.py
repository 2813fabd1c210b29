"""The GEMM convolution ("gemm") against the direct kernel and torch on the conv cases of the layer suite.

    python bench/conv_gemm.py                         # the cases gemm owns, threads 1 and 2
    python bench/conv_gemm.py --cases all             # every conv case of the suite (for 'auto')
    python bench/conv_gemm.py --cases conv1x1_256_64_56 --onnx

pyconv runs prepacked (weights packed once, as pyconv.nn and the graph
executor hold them; the bias is fused into the epilogue).  Samples alternate
between engines; each round first waits (up to 6 s) for the CPUs to be idle
(other processes on this shared machine otherwise stall one of the two
threads for a whole time slice), each sample sleeps 50 ms, makes one untimed
call (wakes the engine's own threads, see bench/GEMM.md) and times `--inner`
calls back to back.  Medians of `--repeat` samples (`--statistic min` for
the best).  GFLOP/s = 2 x direct MACs / time; % of numpy's fp32 GEMM peak
(2048^3) measured in the same run at the same thread count.  speed-up =
1-thread time / 2-thread time per engine, next to numpy's own 2-thread
speed-up.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pyconv  # noqa: E402
import pyconv.functional as F  # noqa: E402
from suite import SUITE  # noqa: E402

OWN = ["conv3x3s2_64_128_56", "conv7x7s2_3_64_224", "conv1x1_256_64_56", "conv1x1_64_256_56",
       "conv1x1_1024_256_14", "group3x3_g32_128_56", "alexnet5x5_g2_96_256_27", "dilated3x3_256_28",
       "conv1d_k3_256_4096", "conv3d_3x3x3_32_16x32x32"]
SLEEP = 0.05


def gemm_peak(threads, repeat, n=2048):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    times = []
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        for _ in range(repeat):
            time.sleep(0.2)  # OpenBLAS workers spin ~90 ms after a call
            a @ b
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def onnx_session(case, w, threads):
    """An ONNX Runtime session computing the case's conv, or None without onnxruntime/onnx."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    kw = case.kwargs
    dims = len(case.input_shape) - 2
    as_list = lambda v: list(v) if isinstance(v, (tuple, list)) else [v] * dims  # noqa: E731
    pads = as_list(kw.get("padding", 0))
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=as_list(kw.get("stride", 1)),
                            dilations=as_list(kw.get("dilation", 1)), group=kw.get("groups", 1), pads=pads + pads)
    out_shape = list(case.output_shape())
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             list(case.input_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def cpu_idle(interval=0.3):
    """Share of the machine's CPU time that was idle over ``interval`` seconds (Linux; 1.0 elsewhere)."""
    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)
    try:
        idle0, total0 = read()
        time.sleep(interval)
        idle1, total1 = read()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_until_idle(limit=0.9, attempts=20):
    for _ in range(attempts):
        if cpu_idle() >= limit:
            return


def time_engines(calls, repeat, inner, statistic):
    samples = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeat):
        wait_until_idle()
        for name, call in calls.items():
            time.sleep(SLEEP)
            call()
            start = time.perf_counter()
            for _ in range(inner):
                call()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistic(s) for name, s in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="own", help="'own' (default), 'all' (every conv case) or ids")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--engines", default="gemm,direct,torch", help="of gemm, direct, torch, onnx")
    parser.add_argument("--statistic", default="median", choices=["median", "min"])
    args = parser.parse_args()
    block = np.ones(30 * 2 ** 20 // 8)
    block[::4096] += 1
    del block
    if args.cases == "own":
        wanted = OWN
    elif args.cases == "all":
        wanted = [c.id for c in SUITE if c.op in ("conv1d", "conv2d", "conv3d")]
    else:
        wanted = args.cases.split(",")
    cases = [c for c in SUITE if c.id in wanted]
    engines = args.engines.split(",")
    threads_list = [int(t) for t in args.threads.split(",")]
    peaks = {t: gemm_peak(t, args.repeat) for t in threads_list}
    print("numpy fp32 GEMM peak:", ", ".join(f"{t} thr {p:.1f} GFLOP/s" for t, p in peaks.items()),
          f"(2-thread speed-up {peaks.get(2, 0) / peaks.get(1, 1):.2f})" if len(peaks) > 1 else "")
    header = (f"{'case':27s} thr " + " ".join(f"{e + ' ms':>10s}" for e in engines)
              + "  torch/gemm direct/gemm  GFLOP/s  %peak")
    print(header)
    results = {}
    for case in cases:
        x, w = case.arrays()
        bias = np.random.default_rng(2).standard_normal(w.shape[0], dtype=np.float32)
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias)
        kw = dict(case.kwargs)
        packed = {a: F.prepack_conv(w, bias, algorithm=a, **kw) for a in ("gemm", "direct")}
        tfn = getattr(torch.nn.functional, case.op)
        reference = tfn(tx, tw, tb, **kw).numpy()
        output = packed["gemm"](x)
        error = np.abs(output - reference).max() / np.abs(reference).max()
        macs = output.size * int(np.prod(w.shape[1:]))
        for threads in threads_list:
            pyconv.set_num_threads(threads)
            torch.set_num_threads(threads)
            calls = {}
            for engine in engines:
                if engine in packed:
                    calls[engine] = (lambda p: lambda: p(x))(packed[engine])
                elif engine == "torch":
                    calls[engine] = lambda: tfn(tx, tw, tb, **kw)
                elif engine == "onnx":
                    session = onnx_session(case, w, threads)
                    if session is not None:
                        calls[engine] = lambda s=session: s.run(None, {"x": x})
            seconds = time_engines(calls, args.repeat, args.inner,
                                   statistics.median if args.statistic == "median" else min)
            results[case.id, threads] = seconds
            gflops = 2 * macs / seconds["gemm"] / 1e9
            line = f"{case.id:27s} {threads:3d} " + " ".join(
                f"{seconds[e] * 1e3:10.3f}" if e in seconds else f"{'-':>10s}" for e in engines)
            line += (f"  {seconds.get('torch', np.nan) / seconds['gemm']:10.2f} "
                     f"{seconds.get('direct', np.nan) / seconds['gemm']:11.2f} {gflops:8.1f} "
                     f"{100 * gflops / peaks[threads]:5.0f}%")
            if "onnx" in seconds:
                line += f"  onnx/gemm {seconds['onnx'] / seconds['gemm']:.2f}"
            print(line, flush=True)
        if 1 in threads_list and 2 in threads_list:
            ups = {e: results[case.id, 1][e] / results[case.id, 2][e] for e in results[case.id, 2]}
            print(f"{'':27s} 2-thread speed-up: " + ", ".join(f"{e} {u:.2f}" for e, u in ups.items())
                  + f" (GEMM peak {peaks[2] / peaks[1]:.2f}); rel. error vs torch {error:.1e}", flush=True)


if __name__ == "__main__":
    main()
