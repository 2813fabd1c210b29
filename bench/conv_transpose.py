"""Transposed convolution: pyconv's 'gemm' algorithm against the direct kernel and torch.

    python bench/conv_transpose.py [--rounds 9] [--threads 1,2] [--cases convT4x4] [--no-direct]

For the transposed cases of the layer suite (bench/suite.py) and each thread
count: medians of pyconv gemm (weights packed once, output allocated per call,
as a planned layer runs), the direct kernel and torch, sampled round robin
(sleep, one untimed call, then 3 timed calls: bench/gemm.py's
time_round_robin); the ratios torch/gemm and direct/gemm; effective GFLOP/s
(2 x the suite's MACs / time) and its % of numpy's fp32 GEMM peak measured in
the same run; the 2-thread speed-up of gemm next to the GEMM peak's own; the
largest difference from torch relative to max|torch|.
"""
import argparse

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from gemm import measure_peak, time_round_robin
from suite import SUITE, Case
from pyconv.functional._conv_plan import ConvProblem, Epilogue, algorithm_class


# More shapes for the 'auto' rule (--extra): models' transposed layers, depthwise, tiny, 1d, 3d.
EXTRA = [
    Case("dcgan1_100_512_1", "conv_transpose2d", (1, 100, 1, 1), (100, 512, 4, 4)),
    Case("dcgan2_512_256_4", "conv_transpose2d", (1, 512, 4, 4), (512, 256, 4, 4), dict(stride=2, padding=1)),
    Case("dcgan4_128_64_16", "conv_transpose2d", (1, 128, 16, 16), (128, 64, 4, 4), dict(stride=2, padding=1)),
    Case("dcgan5_64_3_32", "conv_transpose2d", (1, 64, 32, 32), (64, 3, 4, 4), dict(stride=2, padding=1)),
    Case("unet_up_512_256_28", "conv_transpose2d", (1, 512, 28, 28), (512, 256, 2, 2), dict(stride=2)),
    Case("unet_up_128_64_112_n2", "conv_transpose2d", (2, 128, 112, 112), (128, 64, 2, 2), dict(stride=2)),
    Case("convT3x3s1_64_64_32", "conv_transpose2d", (1, 64, 32, 32), (64, 64, 3, 3), dict(padding=1)),
    Case("convT_dw4x4s2_64_32", "conv_transpose2d", (1, 64, 32, 32), (64, 1, 4, 4),
         dict(stride=2, padding=1, groups=64)),
    Case("convT_g4_4x4s2_128_32", "conv_transpose2d", (1, 128, 32, 32), (128, 32, 4, 4),
         dict(stride=2, padding=1, groups=4)),
    Case("convT_dil2_3x3s2_64_28", "conv_transpose2d", (1, 64, 28, 28), (64, 64, 3, 3),
         dict(stride=2, padding=2, dilation=2, output_padding=1)),
    Case("convT_tiny_1_1_8", "conv_transpose2d", (1, 1, 8, 8), (1, 1, 3, 3), dict(stride=2)),
    Case("convT1d_k4s2_256_128_1024", "conv_transpose1d", (1, 256, 1024), (256, 128, 4), dict(stride=2, padding=1)),
    Case("convT3d_k4s2_32_16_8", "conv_transpose3d", (1, 32, 8, 8, 8), (32, 16, 4, 4, 4), dict(stride=2, padding=1)),
]


def problem_of(case, dtype):
    """The ConvProblem of a conv_transpose suite case."""
    w_shape, kwargs = case.weight_shape, case.kwargs
    dims = len(w_shape) - 2

    def spread(name, default):
        value = kwargs.get(name, default)
        return (value,) * dims if isinstance(value, int) else tuple(value)

    groups = kwargs.get("groups", 1)
    padding = spread("padding", 0)
    return ConvProblem(True, w_shape[0], w_shape[1] * groups, groups, tuple(w_shape[2:]), spread("stride", 1),
                       padding, padding, spread("dilation", 1), spread("output_padding", 0), np.dtype(dtype))


def runner(name, problem, x, w, threads):
    """A no-argument call of algorithm ``name`` on x, allocating its output like a layer call."""
    implementation = algorithm_class("conv_transpose", name)(problem, w)
    shape = (x.shape[0], problem.out_channels) + problem.output_spatial(x.shape[2:])
    epilogue = Epilogue.bias_only(None, x.dtype)
    residual = np.empty(0, x.dtype)

    def call():
        out = np.empty(shape, x.dtype)
        implementation.run(x, out, epilogue, residual, threads)
        return out
    return call


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cases", default="", help="substring filter on case ids")
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--no-direct", action="store_true", help="skip the (slow) direct kernel")
    parser.add_argument("--extra", action="store_true", help="the EXTRA shapes instead of the suite's")
    parser.add_argument("--best", action="store_true",
                        help="report the best sample instead of the median (a shared, noisy machine)")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    statistic = np.min if args.best else np.median

    block = np.ones(30 * 2 ** 20 // 8)  # DESIGN.md, trap 2
    del block
    peaks = {t: measure_peak(np.float32, t, 5, 0.2, statistic) for t in thread_counts}
    print("numpy fp32 GEMM peak: " + ", ".join(f"{t} thread(s) {p:.1f} GFLOP/s" for t, p in peaks.items()))

    cases = [c for c in (EXTRA if args.extra else SUITE) if c.op.startswith("conv_transpose") and args.cases in c.id]
    print(f"{'case':<26} thr {'gemm ms':>8} {'direct ms':>9} {'torch ms':>8} {'torch/gemm':>10} "
          f"{'direct/gemm':>11} {'GFLOP/s':>8} {'% peak':>6} {'rel.err':>8}")
    speed = {}
    for case in cases:
        x, w = case.arrays()
        problem = problem_of(case, x.dtype)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        reference = case.run_torch(torch, tx, tw).numpy()
        for threads in thread_counts:
            torch.set_num_threads(threads)
            runners = {"gemm": runner("gemm", problem, x, w, threads)}
            if not args.no_direct:
                runners["direct"] = runner("direct", problem, x, w, threads)
            runners["torch"] = lambda: case.run_torch(torch, tx, tw)
            error = float(np.abs(runners["gemm"]() - reference).max() / np.abs(reference).max())
            with threadpool_limits(limits=threads, user_api="blas"):
                seconds = time_round_robin(runners, args.rounds, args.sleep, statistic)
            gflops = 2 * case.macs() / seconds["gemm"] / 1e9
            speed[case.id, threads] = gflops
            direct = seconds.get("direct", float("nan"))
            print(f"{case.id:<26} {threads:>3} {seconds['gemm'] * 1e3:8.3f} {direct * 1e3:9.3f} "
                  f"{seconds['torch'] * 1e3:8.3f} {seconds['torch'] / seconds['gemm']:10.2f} "
                  f"{direct / seconds['gemm']:11.1f} {gflops:8.1f} {100 * gflops / peaks[threads]:5.0f}% "
                  f"{error:8.1e}", flush=True)
    if 1 in thread_counts and 2 in thread_counts:
        print(f"\n2-thread speed-up: GEMM peak {peaks[2] / peaks[1]:.2f}; " + ", ".join(
            f"{case.id} {speed[case.id, 2] / speed[case.id, 1]:.2f}" for case in cases))


if __name__ == "__main__":
    main()
