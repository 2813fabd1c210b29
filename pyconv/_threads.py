"""The number of threads pyconv's kernels use.

Default: ``PYCONV_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the cores this
process may run on.  Results never depend on it: every output element is
computed by exactly one thread in a fixed order.
"""
import os

from ._kernels.parallel import pool_available

__all__ = ["set_num_threads", "get_num_threads"]

# Below this many elements (or element visits) a kernel runs on one thread: a few microseconds
# of work, where handing half to the pool's worker gains little and a worker that has gone to
# sleep costs more to wake (torch's at::parallel_for uses the same grain).  At this size, with
# the worker awake (parallel.pxd's pool, float32, 2 vCPUs): gelu 13.7 us at 1 thread, 7.9 at 2;
# relu 3.7 and 2.7.
PARALLEL_MIN_ELEMENTS = 32768


def _default_num_threads():
    for variable in ("PYCONV_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").split(",")[0].strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                raise ValueError(f"{variable} must be a positive integer, got {value!r}") from None
            if n < 1:
                raise ValueError(f"{variable} must be a positive integer, got {value!r}")
            return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = None


def set_num_threads(n):
    """Use ``n`` threads (a positive int) in pyconv's kernels from now on."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: expected n to be an int, got {type(n).__name__}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"set_num_threads: expected n >= 1, got {n}")
    _num_threads = n


def get_num_threads():
    """The number of threads pyconv's kernels use (1 when built without a thread pool: no pthreads)."""
    global _num_threads
    if not pool_available():
        return 1
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def kernel_threads(elements):
    """Threads for a kernel over ``elements`` elements: 1 for small work, else ``get_num_threads()``."""
    return 1 if elements < PARALLEL_MIN_ELEMENTS else get_num_threads()
