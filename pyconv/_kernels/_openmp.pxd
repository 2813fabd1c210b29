# OpenMP shim: lets every kernel compile with or without OpenMP (the pattern of
# scikit-learn's _openmp_helpers.pxd).  Without OpenMP, prange runs serially
# and these report a single thread.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define PYCONV_HAVE_OPENMP 1
    #else
    #define PYCONV_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_procs(void) { return 1; }
    #endif
    """
    bint PYCONV_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_procs() noexcept nogil
