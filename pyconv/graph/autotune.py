"""Autotuning: time the candidate algorithms of each convolution on its real input shape, keep the fastest.

``Model(..., autotune=True)`` (``pyconv.load(path, autotune=True)``) builds each plan (one per batch size
and thread count) with a ``Tuner``: for every conv node it runs each algorithm of
``pyconv.functional._conv_plan.ALGORITHMS`` that can compute the convolution on a random input of the
node's shape (with its epilogue and residual) and picks the one with the fastest of three timed runs
(other processes only ever add time to a run).  Convolutions with the same arguments, weight shape and
input shape share one measurement.  Every candidate is proven equal to the direct algorithm by its
tests, so tuned outputs equal untuned ones within float32 rounding.  Weights with NaN/Inf are not
tuned: 'auto' runs the direct algorithm for them, as torch propagates them.

For a model loaded from ``m.pyconv`` the choices are cached in ``m.pyconv.plan.json``, keyed by the
SHA-256 of the model file, the CPU (model name and flags) and pyconv's version, then per thread count
and batch size.  A cache written for another file, CPU or pyconv, or one that cannot be read, is
ignored with a warning (and replaced); an entry naming an algorithm that cannot compute its
convolution is ignored with a warning and timed again.  A directory that cannot be written just
leaves the choices uncached.
"""
import hashlib
import json
import os
import platform
import statistics
import threading
import time
import warnings

import numpy as np

from .._threads import get_num_threads
from ..functional._conv_plan import ALGORITHMS, algorithm_class, run_algorithm

__all__ = ["Tuner", "TunedConv", "candidates", "median_seconds", "CACHE_SUFFIX"]

CACHE_SUFFIX = ".plan.json"
_CACHE_FORMAT, _CACHE_VERSION = "pyconv-plan", 1
_TIMED_RUNS = 3        # per candidate, after one untimed run
_HOPELESS = 4.0        # a candidate whose untimed run takes this many times the best time is not timed further
_clock = time.perf_counter


def median_seconds(call, repeat, warm_up=1, back_to_back=1):
    """Median seconds per call of ``call()`` over ``repeat`` samples, after ``warm_up`` untimed calls; each
    sample is the mean of ``back_to_back`` calls."""
    for _ in range(warm_up):
        call()
    samples = []
    for _ in range(max(1, repeat)):
        start = _clock()
        for _ in range(back_to_back):
            call()
        samples.append((_clock() - start) / back_to_back)
    return statistics.median(samples)


def candidates(problem):
    """Names of the algorithms that can compute ``problem`` ('winograd' left out where both of its tile
    sizes are candidates themselves)."""
    names = [name for name in ALGORITHMS[problem.op] if algorithm_class(problem.op, name).unsupported(problem) is None]
    if "winograd_f2" in names and "winograd_f4" in names:
        names.remove("winograd")
    return names


class TunedConv:
    """A plan's conv kernel running the algorithm the tuner chose for the plan's input shape."""

    def __init__(self, kernel, name):
        self.kernel, self.name = kernel, name
        self.implementation = kernel.implementation(name)

    def algorithm(self, input_shape):
        return self.name

    def __call__(self, inputs, outs):
        return self.kernel.run(self.implementation, inputs, outs)

    def bind(self, input_shapes, output_shapes):
        return self.kernel.bind(input_shapes, output_shapes, self.implementation)


def _cpu_identity():
    """The CPU's model name and feature flags (Linux), else what ``platform`` knows."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    return f"{platform.machine()} | {model or platform.processor()} | {flags}"


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signature(problem, input_shape, residual):
    """What a measurement depends on, as text: the convolution, its input shape and whether it adds a residual."""
    p = problem
    return (f"{p.op} in={list(input_shape)} out_channels={p.out_channels} groups={p.groups} "
            f"kernel={list(p.kernel_size)} stride={list(p.stride)} pad={list(p.pad_before)}/{list(p.pad_after)} "
            f"dilation={list(p.dilation)} output_padding={list(p.output_padding)} residual={int(residual)}")


class Tuner:
    """Chooses conv algorithms by timing them; with ``model_path``, caches the choices next to that file."""

    def __init__(self, model_path=None):
        self._lock = threading.Lock()
        self._plans = {}       # "threads=T,batch=B" -> {signature: algorithm name}
        self._dirty = False
        self.cache_path = None if model_path is None else os.fsdecode(model_path) + CACHE_SUFFIX
        if self.cache_path is not None:
            self._identity = {"model_sha256": _file_sha256(model_path), "cpu": _cpu_identity(),
                              "pyconv": _pyconv_version()}
            self._plans = self._read_cache()

    # ---------------------------------------------------------------- choosing

    def choose(self, kernel, input_shape, residual):
        """The algorithm name for conv kernel ``kernel`` (a ``ConvKernel``) on inputs of ``input_shape``,
        or None to leave the choice to 'auto' (non-finite weights)."""
        conv = kernel.conv
        if not np.isfinite(conv.weight).all():
            return None
        auto = conv.algorithm_for(input_shape)  # timed first: the others' first runs often show them hopeless
        names = sorted(candidates(conv.problem), key=lambda name: not name.startswith(auto))
        key = f"threads={get_num_threads()},batch={input_shape[0]}"
        signature = _signature(conv.problem, input_shape, residual)
        with self._lock:
            known = self._plans.get(key, {}).get(signature)
            if known is not None and known not in names:
                warnings.warn(f"{self.cache_path}: ignoring the cached algorithm {known!r} for {signature}: it is "
                              f"not one of {names}", RuntimeWarning, stacklevel=2)
                known = None
            if known is None:
                known = self._fastest(conv, names, input_shape, residual)
                self._plans.setdefault(key, {})[signature] = known
                self._dirty = True
        return known

    @staticmethod
    def _fastest(conv, names, input_shape, residual):
        if len(names) == 1:
            return names[0]
        rng = np.random.default_rng(0)
        x = rng.standard_normal(input_shape, dtype=np.float32)
        out = np.empty((input_shape[0], conv.problem.out_channels) + conv.problem.output_spatial(input_shape[2:]),
                       np.float32)
        extra = rng.standard_normal(out.shape, dtype=np.float32) if residual else None
        best, best_seconds = None, float("inf")
        for name in names:
            implementation = algorithm_class(conv.problem.op, name)(conv.problem, conv.weight)

            def call():
                run_algorithm(implementation, x, out, conv.epilogue, extra)

            if median_seconds(call, 1, warm_up=0) > _HOPELESS * best_seconds:  # the untimed run
                continue
            seconds = min(median_seconds(call, 1, warm_up=0) for _ in range(_TIMED_RUNS))
            if seconds < best_seconds:
                best, best_seconds = name, seconds
        return best

    # ---------------------------------------------------------------- the cache file

    def save(self):
        """Write the choices made since loading to the cache file (atomically); an OSError skips caching."""
        with self._lock:
            if self.cache_path is None or not self._dirty:
                return
            text = json.dumps({"format": _CACHE_FORMAT, "version": _CACHE_VERSION, **self._identity,
                               "plans": self._plans}, indent=1, sort_keys=True)
            partial = f"{self.cache_path}.{os.getpid()}.{threading.get_ident()}.partial"
            try:
                with open(partial, "w") as file:
                    file.write(text)
                os.replace(partial, self.cache_path)
                self._dirty = False
            except OSError:
                try:
                    os.remove(partial)
                except OSError:
                    pass

    def _read_cache(self):
        """The cached plans if the cache file exists, is well-formed and was written for this model file, CPU
        and pyconv; else {} (with a warning unless there is no file)."""
        try:
            with open(self.cache_path, encoding="utf-8") as file:
                data = json.load(file)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            return self._ignore(f"cannot read it ({type(error).__name__}: {error})")
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("version") != _CACHE_VERSION:
            return self._ignore("not a pyconv plan cache of this version")
        for field, what in (("model_sha256", "another model file"), ("cpu", "another CPU"),
                            ("pyconv", "another pyconv version")):
            if data.get(field) != self._identity[field]:
                return self._ignore(f"it was written for {what} (stale)")
        plans = data.get("plans")
        if not isinstance(plans, dict) or not all(
                isinstance(key, str) and isinstance(choices, dict)
                and all(isinstance(s, str) and isinstance(n, str) for s, n in choices.items())
                for key, choices in plans.items()):
            return self._ignore("its plans are malformed")
        return plans

    def _ignore(self, reason):
        warnings.warn(f"ignoring the plan cache {self.cache_path}: {reason}; timing the algorithms again",
                      RuntimeWarning, stacklevel=4)
        self._dirty = True  # replace it with a good one
        return {}


def _pyconv_version():
    from .. import __version__
    return __version__
