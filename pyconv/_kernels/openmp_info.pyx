"""What the kernels were built with: OpenMP or not."""
from ._openmp cimport PYCONV_HAVE_OPENMP, omp_get_num_procs


def openmp_enabled():
    """True if the kernels were compiled with OpenMP (prange runs in parallel)."""
    return bool(PYCONV_HAVE_OPENMP)


def num_procs():
    """Processors OpenMP sees (1 without OpenMP)."""
    return omp_get_num_procs()
