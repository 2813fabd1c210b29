"""Winograd 3x3 convolution: speed against torch, accuracy, and the F(2,3) / F(4,3) choice.

    python bench/winograd.py                 # the 3x3 stride-1 suite cases, 1 and 2 threads
    python bench/winograd.py --accuracy      # max|y - ref| / max|ref| against float64 direct
    python bench/winograd.py --rule          # F(2,3) vs F(4,3) over channels x sizes (the tile rule)

Timing as bench/layers.py: prepack_conv once, then calls; pyconv's
algorithms and torch alternate sample by sample, a sleep before each sample,
one untimed call, then back-to-back calls; medians (--best: the best sample,
for 2 threads on a machine other jobs share).
GFLOP/s are effective (2 x direct MACs / time); "% peak" is of numpy's fp32
GEMM peak measured in the same run.
"""
import argparse
import statistics
import time

import numpy as np
import torch

import pyconv
import pyconv.functional as F
from layers import SLEEP, gemm_peaks, warm_allocator
from suite import SUITE

CASES = ["conv3x3_64_56", "conv3x3_128_28", "conv3x3_256_14", "conv3x3_512_7", "conv3x3_64_56_n8"]
ALGORITHMS = ["winograd", "winograd_f2", "winograd_f4"]


def time_round_robin(calls, repeat, statistic=statistics.median, back_to_back=3):
    """Seconds per call of each engine (median, or another statistic, of the samples); as
    bench/layers.py: engines alternate, a sleep then one untimed call before each sample."""
    samples = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeat):
        for name, call in calls.items():
            time.sleep(SLEEP)
            call()
            start = time.perf_counter()
            for _ in range(back_to_back):
                call()
            samples[name].append((time.perf_counter() - start) / back_to_back)
    return {name: statistic(times) for name, times in samples.items()}


def suite_cases(ids):
    return [case for case in SUITE if case.id in ids]


def speed(args):
    threads = [int(t) for t in args.threads.split(",")]
    peaks = gemm_peaks(threads, args.repeat)
    print("numpy fp32 GEMM peak:", ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in peaks.items()))
    print(f"| case | thr | torch ms | {' | '.join(f'{a} ms (torch/it, GFLOP/s, % peak)' for a in ALGORITHMS)} |")
    print("|" + " --- |" * (3 + len(ALGORITHMS)))
    for case in suite_cases(args.cases.split(",")):
        x, w = case.arrays()
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        for t in threads:
            torch.set_num_threads(t)
            pyconv.set_num_threads(t)
            calls = {"torch": lambda: case.run_torch(torch, tx, tw)}
            for name in ALGORITHMS:
                calls[name] = _bound(F.prepack_conv(w, algorithm=name, **case.kwargs), x)
            seconds = time_round_robin(calls, args.repeat, statistic=args.statistic)
            cells = []
            for name in ALGORITHMS:
                gflops = 2 * case.macs() / seconds[name] / 1e9
                cells.append(f"{seconds[name] * 1e3:.3f} ({seconds['torch'] / seconds[name]:.2f}, {gflops:.0f}, "
                             f"{100 * gflops / peaks[t]:.0f}%)")
            print(f"| {case.id} | {t} | {seconds['torch'] * 1e3:.3f} | {' | '.join(cells)} |", flush=True)


def _bound(conv, x):
    return lambda: conv(x)


def accuracy(args):
    print("| case | F(2,3) float32 | F(4,3) float32 | direct float32 | F(2,3) float64 | F(4,3) float64 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in suite_cases(args.cases.split(",")):
        x, w = case.arrays()
        ref = F.conv2d(x.astype(np.float64), w.astype(np.float64), algorithm="direct", **case.kwargs)
        scale = np.abs(ref).max()
        cells = []
        for dtype in (np.float32, np.float64):
            for name in (["winograd_f2", "winograd_f4"] + (["direct"] if dtype == np.float32 else [])):
                y = F.conv2d(x.astype(dtype), w.astype(dtype), algorithm=name, **case.kwargs)
                cells.append(f"{np.abs(y - ref).max() / scale:.1e}")
        print(f"| {case.id} | {' | '.join(cells)} |", flush=True)


def rule(args):
    threads = [int(t) for t in args.threads.split(",")]
    rng = np.random.default_rng(0)
    print("| N | channels | size | thr | F(2,3) ms | F(4,3) ms | F(2,3) / F(4,3) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, channels, size in [(n, c, s) for n in (1, 2, 8) for c in (32, 64, 128, 256, 512)
                              for s in (7, 10, 14, 28, 56) if n * c * s * s <= 8 * 64 * 56 * 56 and c * s <= 256 * 28]:
        x = rng.standard_normal((n, channels, size, size), dtype=np.float32)
        w = rng.standard_normal((channels, channels, 3, 3), dtype=np.float32)
        convs = {m: F.prepack_conv(w, padding=1, algorithm=f"winograd_f{m}") for m in (2, 4)}
        for t in threads:
            pyconv.set_num_threads(t)
            seconds = time_round_robin({m: _bound(conv, x) for m, conv in convs.items()}, args.repeat)
            print(f"| {n} | {channels} | {size} | {t} | {seconds[2] * 1e3:.3f} | {seconds[4] * 1e3:.3f} | "
                  f"{seconds[2] / seconds[4]:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--rule", action="store_true")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--best", action="store_true",
                        help="report the best sample instead of the median (2 threads on a shared machine)")
    args = parser.parse_args()
    args.statistic = min if args.best else statistics.median
    warm_allocator()
    if args.accuracy:
        accuracy(args)
    elif args.rule:
        rule(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
