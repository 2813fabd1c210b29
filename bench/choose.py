"""Time every algorithm that can compute a convolution, to derive algorithm='auto' (bench/ALGORITHMS.md).

    python bench/choose.py                      # threads 1 and 2, suite + extra shapes
    python bench/choose.py --threads 2 --only conv3x3

For each problem (the conv cases of the layer suite and a grid of extra shapes
around them) and thread count, every algorithm of pyconv.functional's
``algorithm=`` that can compute it runs prepacked, alternating, medians of
--repeat samples (bench/layers.py's method).  The table shows milliseconds,
the fastest algorithm and what 'auto' picks; a row where 'auto' is more than
10% slower than the fastest is marked.
"""
import argparse

import numpy as np
from tabulate import tabulate

import pyconv
import pyconv.functional as F
from layers import time_round_robin, warm_allocator
from pyconv.functional._conv_plan import ALGORITHMS, algorithm_class
from pyconv.functional._conv_winograd import choose_tile
from suite import SUITE, Case, _conv


def extra_cases():
    """Shapes around the suite's: where the rule's boundaries lie."""
    cases = []
    for channels, size in ((16, 112), (32, 56), (64, 28), (96, 14), (128, 56), (256, 28), (512, 14), (32, 7),
                           (128, 7), (256, 7), (1024, 7)):
        cases.append(_conv(f"x3x3_{channels}_{size}", channels, channels, size, 3, padding=1))
    for c_in, c_out, size in ((32, 32, 112), (16, 96, 112), (96, 24, 56), (144, 24, 56), (192, 64, 28),
                              (960, 160, 7), (2048, 512, 7), (512, 2048, 7), (256, 512, 28)):
        cases.append(_conv(f"x1x1_{c_in}_{c_out}_{size}", c_in, c_out, size, 1))
    cases.append(_conv("x1x1s2_256_512_56", 256, 512, 56, 1, stride=2))
    for channels, size, k, stride in ((32, 112, 3, 1), (384, 14, 3, 1), (960, 7, 3, 1), (576, 14, 5, 1),
                                      (240, 28, 5, 2)):
        cases.append(_conv(f"xdw{k}x{k}s{stride}_{channels}_{size}", channels, channels, size, k,
                           groups=channels, stride=stride, padding=k // 2))
    for c_in, c_out, size, stride in ((128, 256, 28, 2), (256, 512, 14, 2), (3, 32, 224, 2)):
        cases.append(_conv(f"x3x3s{stride}_{c_in}_{c_out}_{size}", c_in, c_out, size, 3, stride=stride, padding=1))
    cases.append(_conv("x5x5_64_64_28", 64, 64, 28, 5, padding=2))
    cases.append(_conv("xgroup3x3_g8_256_28", 256, 256, 28, 3, groups=8, padding=1))
    cases.append(_conv("xgroup3x3_g64_256_14", 256, 256, 14, 3, groups=64, padding=1))
    for c_in, c_out, size, k, stride, pad in ((512, 256, 4, 4, 2, 1), (64, 32, 32, 4, 2, 1), (256, 128, 28, 2, 2, 0),
                                              (128, 128, 14, 3, 1, 1)):
        cases.append(Case(f"xconvT{k}x{k}s{stride}_{c_in}_{c_out}_{size}", "conv_transpose2d",
                          (1, c_in, size, size), (c_in, c_out, k, k), dict(stride=stride, padding=pad)))
    return cases


def bench_problem(case, threads, repeat):
    """{algorithm name: median seconds} for every algorithm that can compute the case; and auto's pick.

    'winograd' itself is timed only where the tile variants cannot run (dilated
    convolutions, which it computes on polyphase parts); elsewhere it runs
    winograd_f2 or winograd_f4, which are.
    """
    x, w = case.arrays()
    transposed = case.op.startswith("conv_transpose")
    kind = "conv_transpose" if transposed else "conv"
    pyconv.set_num_threads(threads)
    auto = F.prepack_conv(w, transposed=transposed, **case.kwargs)
    calls = {}
    tiles_fit = kind == "conv" and algorithm_class(kind, "winograd_f2").unsupported(auto.problem) is None
    for name in ALGORITHMS[kind]:
        if not (name == "winograd" and tiles_fit) and algorithm_class(kind, name).unsupported(auto.problem) is None:
            conv = F.prepack_conv(w, transposed=transposed, algorithm=name, **case.kwargs)
            calls[name] = (lambda conv: lambda: conv(x))(conv)
    picked = auto.algorithm_for(x.shape)
    if picked == "winograd" and tiles_fit:  # the tile variant it runs for this input
        out_height, out_width = auto.problem.output_spatial(x.shape[2:])
        picked = f"winograd_f{choose_tile(x.shape[0], out_height, out_width)}"
    return time_round_robin(calls, repeat), picked


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="substring filter on case ids")
    parser.add_argument("--format", default="github")
    args = parser.parse_args()
    warm_allocator()
    cases = [c for c in SUITE + extra_cases() if c.weight_shape is not None and args.only in c.id]
    rows = []
    for case in cases:
        for threads in (int(t) for t in args.threads.split(",")):
            seconds, auto = bench_problem(case, threads, args.repeat)
            best = min(seconds, key=seconds.get)
            slow = seconds.get(auto, np.inf) > 1.1 * seconds[best]
            cells = ", ".join(f"{name} {s * 1e3:.3f}" for name, s in sorted(seconds.items(), key=lambda i: i[1]))
            rows.append([case.id, threads, cells, best, auto + (" (!)" if slow else "")])
            print(f"  {case.id} @{threads}t: {cells}; auto {auto}", flush=True)
    print(tabulate(rows, headers=["problem", "thr", "ms per algorithm (fastest first)", "fastest", "auto"],
                   tablefmt=args.format, disable_numparse=True))


if __name__ == "__main__":
    main()
