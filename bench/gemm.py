"""GEMM core benchmark: pyconv's own packed micro-kernel against BLAS and numpy.

Times the GEMM shapes that pyconv's convolutions produce, single-threaded and
with two threads each running independent GEMMs inside a prange (the way the
conv kernels call the core), and prints GFLOP/s and the fraction of numpy's
fp32 GEMM peak measured in the same run.  Implementations:

  packed     own micro-kernel, A packed on every call       (gemm, GEMM_PACKED)
  prepacked  own micro-kernel, A packed once beforehand     (gemm_prepacked)
  blas       scipy.linalg.cython_blas sgemm, OpenBLAS held to 1 thread (gemm, GEMM_BLAS)
  numpy      np.matmul over the batch (numpy's OpenBLAS threads itself at 2 threads)

Run:  python bench/gemm.py [--rounds 15] [--dtype float32] [--threads 1,2]
Samples alternate between implementations, with a 200 ms sleep before each
(DESIGN.md's trap 1; 50 ms is too short for OpenBLAS's spinning workers) and
one untimed call to wake the engine's own threads (see time_round_robin); the
table shows medians.
"""
import argparse
import time

import numpy as np
import threadpoolctl

from pyconv._kernels import gemm

# (id, batch, m, k, n): batch independent GEMMs [m x k] @ [k x n].
SHAPES = [
    ("winograd F(4,3) 64ch @56^2", 36, 64, 64, 196),
    ("winograd F(4,3) 128ch @28^2", 36, 128, 128, 49),
    ("winograd F(4,3) 256ch @14^2", 36, 256, 256, 16),
    ("winograd F(4,3) 512ch @7^2", 36, 512, 512, 4),
    ("1x1 256->64 @56^2", 2, 64, 256, 3136),
    ("1x1 64->256 @56^2", 2, 256, 64, 3136),
    ("1x1 1024->256 @14^2", 2, 256, 1024, 196),
    ("im2col 3x3 64->64 @56^2", 2, 64, 576, 3136),
]
IMPLEMENTATIONS = ("packed", "prepacked", "blas", "numpy")


def blas_controllers():
    """threadpoolctl controllers of numpy's and scipy's BLAS (scipy is imported by pyconv's gemm)."""
    controller = threadpoolctl.ThreadpoolController()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    numpy_blas = [lib for lib in blas if "numpy" in lib.filepath]
    scipy_blas = [lib for lib in blas if "scipy" in lib.filepath and "numpy" not in lib.filepath]
    return controller, numpy_blas, scipy_blas


def make_runner(name, a, b, c, threads):
    """A no-argument callable computing c = a @ b over the batch with this implementation."""
    if name == "numpy":
        return lambda: np.matmul(a, b, out=c)
    if name == "prepacked":
        m, k = a.shape[1:]
        packed = np.empty((a.shape[0], gemm.packed_a_size(m, k)), a.dtype)
        for i in range(a.shape[0]):
            gemm.pack_a(a[i], packed[i])
        return lambda: gemm.batched_matmul_prepacked(packed, m, b, c, False, threads)
    return lambda: gemm.batched_matmul(a, b, c, False, threads, name)  # "packed" or "blas"


def time_round_robin(runners, rounds, sleep=0.2, statistic=np.median, repeats=3):
    """Seconds per call for each runner (median of the samples, or another statistic).

    Samples alternate between runners.  Each sample sleeps (so the previous
    engine's spinning threads go idle), makes one untimed call (so this
    engine's own threads are awake, as they are inside a model run: on this VM
    an OpenMP worker idle for 50 ms takes milliseconds to come back, which
    would otherwise dominate a 2-thread sample), then times `repeats` calls
    back to back.
    """
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            time.sleep(sleep)
            run()
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            samples[name].append((time.perf_counter() - start) / repeats)
    return {name: float(statistic(s)) for name, s in samples.items()}


def measure_peak(dtype, threads, rounds, sleep, statistic):
    """numpy's GEMM GFLOP/s on a 2048^3 product: the machine's reference peak."""
    size = 2048
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty((size, size), dtype)
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        seconds = time_round_robin({"peak": lambda: np.matmul(a, b, out=c)}, rounds, sleep, statistic)["peak"]
    return 2 * size ** 3 / seconds / 1e9


def measure_limit_cost(controller, scipy_blas):
    """Microseconds per call of the ways to hold scipy's OpenBLAS to one thread for one op."""
    repeats = 2000
    results = {}
    start = time.perf_counter()
    for _ in range(repeats // 10):
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            pass
    results["threadpool_limits(1) context (new controller each time)"] = (
        (time.perf_counter() - start) / (repeats // 10) * 1e6)
    start = time.perf_counter()
    for _ in range(repeats):
        with controller.limit(limits=1, user_api="blas"):
            pass
    results["cached ThreadpoolController.limit(1) context"] = (time.perf_counter() - start) / repeats * 1e6
    if scipy_blas:
        lib = scipy_blas[0]
        start = time.perf_counter()
        for _ in range(repeats):
            before = lib.get_num_threads()
            lib.set_num_threads(1)
            lib.set_num_threads(before)
        results["cached lib controller get + set(1) + set(back)"] = (time.perf_counter() - start) / repeats * 1e6
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--shapes", default="", help="substring filter on shape ids")
    parser.add_argument("--sleep", type=float, default=0.2,
                        help="seconds to sleep before each sample: OpenBLAS's idle workers spin for 2^28 "
                             "cycles (~90 ms here) after a call, longer than DESIGN.md's 50 ms")
    parser.add_argument("--best", action="store_true",
                        help="report the best sample instead of the median (2-thread runs on a shared machine)")
    parser.add_argument("--serialisation", action="store_true",
                        help="also time blas at 2 threads with scipy's OpenBLAS left at its own thread count")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    thread_counts = [int(t) for t in args.threads.split(",")]
    names = args.implementations.split(",")
    statistic = np.min if args.best else np.median
    if "blas" in names and not gemm.load_blas():
        print("scipy is not installed: no blas column")
        names.remove("blas")

    # A process that has run a model has grown its heap already (DESIGN.md, trap 2).
    block = np.ones(30 * 2 ** 20 // 8)
    del block

    controller, numpy_blas, scipy_blas = blas_controllers()
    print("BLAS libraries loaded (threadpoolctl):")
    for lib in numpy_blas + scipy_blas:
        info = lib.info()
        print(f"  {'numpy' if lib in numpy_blas else 'scipy'}: {info['internal_api']} {info['version']} "
              f"{info.get('threading_layer')} arch={info.get('architecture')} threads={info['num_threads']} "
              f"{info['filepath']}")
    scipy_default_threads = scipy_blas[0].get_num_threads() if scipy_blas else 1

    print("\nCost of holding OpenBLAS to one thread around one op:")
    for what, micros in measure_limit_cost(controller, scipy_blas).items():
        print(f"  {what}: {micros:.1f} us")

    peaks = {t: measure_peak(dtype, t, max(5, args.rounds // 3), args.sleep, statistic) for t in thread_counts}
    print("\nnumpy GEMM peak (2048^3): " + ", ".join(f"{t} thread(s) {p:.1f} GFLOP/s" for t, p in peaks.items()))

    rng = np.random.default_rng(0)
    header = f"{'shape':<30} {'batch x [m x k] @ [k x n]':<26} thr " + " ".join(f"{n:>15}" for n in names)
    print(f"\n{dtype.name}: GFLOP/s (% of numpy's peak at the same thread count), "
          f"{'best' if args.best else 'median'} of {args.rounds}")
    print(header)
    for shape_id, batch, m, k, n in SHAPES:
        if args.shapes and args.shapes not in shape_id:
            continue
        a = rng.standard_normal((batch, m, k)).astype(dtype)
        b = rng.standard_normal((batch, k, n)).astype(dtype)
        flops = 2.0 * batch * m * k * n
        for threads in thread_counts:
            outputs = {name: np.empty((batch, m, n), dtype) for name in names}
            runners = {name: make_runner(name, a, b, outputs[name], threads) for name in names}
            with _blas_threads(numpy_blas, scipy_blas, threads):
                seconds = time_round_robin(runners, args.rounds, args.sleep, statistic)
            cells = []
            for name in names:
                gflops = flops / seconds[name] / 1e9
                cells.append(f"{gflops:7.1f} ({100 * gflops / peaks[threads]:3.0f}%)")
            print(f"{shape_id:<30} {f'{batch} x [{m} x {k}] @ [{k} x {n}]':<26} {threads:>3} " + " ".join(
                f"{cell:>15}" for cell in cells))

    if args.serialisation and "blas" in names and scipy_blas:
        print(f"\nblas inside a 2-thread prange, scipy's OpenBLAS at its own {scipy_default_threads} threads "
              "vs held to 1 (GFLOP/s, median):")
        for shape_id, batch, m, k, n in SHAPES:
            if args.shapes and args.shapes not in shape_id:
                continue
            a = rng.standard_normal((batch, m, k)).astype(dtype)
            b = rng.standard_normal((batch, k, n)).astype(dtype)
            c = np.empty((batch, m, n), dtype)
            result = {}
            for label, blas_threads in (("own threads", scipy_default_threads), ("held to 1", 1)):
                scipy_blas[0].set_num_threads(blas_threads)
                seconds = time_round_robin({"blas": make_runner("blas", a, b, c, 2)}, args.rounds, args.sleep,
                                           statistic)["blas"]
                result[label] = 2.0 * batch * m * k * n / seconds / 1e9
            scipy_blas[0].set_num_threads(scipy_default_threads)
            print(f"  {shape_id:<30} " + ", ".join(f"{label}: {g:.1f}" for label, g in result.items()))


class _blas_threads:
    """numpy's BLAS at `threads` (numpy threads itself); scipy's BLAS at 1 (called inside a prange)."""

    def __init__(self, numpy_blas, scipy_blas, threads):
        self.settings = [(lib, threads) for lib in numpy_blas] + [(lib, 1) for lib in scipy_blas]

    def __enter__(self):
        self.before = [(lib, lib.get_num_threads()) for lib, _ in self.settings]
        for lib, threads in self.settings:
            lib.set_num_threads(threads)

    def __exit__(self, *exc):
        for lib, threads in self.before:
            lib.set_num_threads(threads)


if __name__ == "__main__":
    main()
