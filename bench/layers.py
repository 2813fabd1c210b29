"""Time pyconv against torch on the layer suite of DESIGN.md, side by side, in one run.

    python bench/layers.py                  # threads 1 and 2, 7 samples each
    python bench/layers.py --threads 2 --cases conv3x3_64_56,maxpool3x3s2_64_112

For each case and thread count: medians of pyconv and torch (alternating, each
sample after a 50 ms sleep so neither engine's spinning workers steal a core
from the other), the ratio torch/pyconv, effective GFLOP/s (2 x direct MACs /
time), that as a % of numpy's fp32 GEMM peak measured in the same run, and the
largest difference from torch relative to max|torch|.
"""
import argparse
import statistics
import time

import numpy as np
import torch
from tabulate import tabulate
from threadpoolctl import threadpool_info, threadpool_limits

import pyconv
from suite import SUITE

SLEEP = 0.05


def warm_allocator():
    """Allocate and free a 30 MiB block, as any process that has run a model has done.

    In a fresh process glibc returns large blocks to the OS on every free, which
    makes per-call output allocation look slow (DESIGN.md, performance trap 2).
    """
    block = np.ones(30 * 2**20 // 8)
    block[::4096] += 1.0
    del block


def gemm_peak_gflops(threads, repeat, n=2048):
    """Median fp32 GEMM speed of numpy's BLAS at ``threads`` threads."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        times = []
        for _ in range(repeat):
            time.sleep(SLEEP)
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def time_side_by_side(calls, repeat):
    """Median seconds of each call; calls alternate, each sample after a short sleep."""
    for call in calls.values():
        call()
        call()
    samples = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            time.sleep(SLEEP)
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def bench_case(case, threads, repeat):
    x, w = case.arrays()
    tx = torch.from_numpy(x)
    tw = None if w is None else torch.from_numpy(w)
    pyconv.set_num_threads(threads)
    torch.set_num_threads(threads)
    ours = case.run_pyconv(x, w)
    theirs = case.run_torch(torch, tx, tw).numpy()
    error = float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))
    seconds = time_side_by_side(
        {"pyconv": lambda: case.run_pyconv(x, w), "torch": lambda: case.run_torch(torch, tx, tw)}, repeat)
    return seconds, error


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--repeat", type=int, default=7, help="samples per engine and case (default 7)")
    parser.add_argument("--cases", default="", help="comma-separated case ids (default: the whole suite)")
    parser.add_argument("--format", default="github", help="tabulate table format (default github)")
    args = parser.parse_args()

    warm_allocator()
    thread_counts = [int(t) for t in args.threads.split(",")]
    wanted = set(filter(None, args.cases.split(",")))
    unknown = wanted - {case.id for case in SUITE}
    if unknown:
        parser.error(f"unknown case ids: {', '.join(sorted(unknown))}")
    cases = [case for case in SUITE if not wanted or case.id in wanted]

    print("thread pools:", ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()))
    peaks = {t: gemm_peak_gflops(t, args.repeat) for t in thread_counts}
    print("numpy fp32 GEMM peak:", ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in peaks.items()))

    rows = []
    for case in cases:
        macs = case.macs()
        for threads in thread_counts:
            seconds, error = bench_case(case, threads, args.repeat)
            ours, theirs = seconds["pyconv"], seconds["torch"]
            gflops = 2 * macs / ours / 1e9 if macs else None
            rows.append([
                case.id, threads, f"{ours * 1e3:.3f}", f"{theirs * 1e3:.3f}", f"{theirs / ours:.2f}",
                "" if gflops is None else f"{gflops:.1f}",
                "" if gflops is None else f"{100 * gflops / peaks[threads]:.0f}%",
                f"{error:.1e}",
            ])
            print(f"  {case.id} @{threads}t: pyconv {ours * 1e3:.3f} ms, torch {theirs * 1e3:.3f} ms", flush=True)
    headers = ["case", "thr", "pyconv ms", "torch ms", "torch/pyconv", "GFLOP/s", "% GEMM peak", "rel. err"]
    print(tabulate(rows, headers=headers, tablefmt=args.format, disable_numparse=True))
    for threads in thread_counts:
        ratios = [float(r[4]) for r in rows if r[1] == threads]
        geomean = float(np.exp(np.mean(np.log(ratios))))
        print(f"geometric mean torch/pyconv at {threads} thread(s): {geomean:.2f}")


if __name__ == "__main__":
    main()
