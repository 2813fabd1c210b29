# GEMM core for the convolution kernels (own packed micro-kernel; the BLAS
# comparison behind this choice is in bench/GEMM.md).  Row-major:
#     C[m, n] = A[m, k] @ B[k, n]      (accumulate=False)
#     C[m, n] += A[m, k] @ B[k, n]     (accumulate=True)
# for float32 and float64 (fused `floating`), on sub-blocks of larger arrays:
# element (i, p) of A is a[i * lda + p] (lda >= k), likewise B (ldb >= n) and
# C (ldc >= n).  C must not overlap A or B.  k == 0 gives C = 0 (or leaves C).
# Single-threaded and nogil: call it from inside your own parallel_for task
# (parallel.pxd).  Each call computes its output in a fixed order, so results
# never depend on the thread count.
#
#     from pyconv._kernels.gemm cimport gemm, gemm_workspace_size
#
# workspace: scratch of at least gemm_workspace_size(m, n, k) bytes (any
# alignment; the size covers both dtypes), one per thread, allocated once per
# thread outside the hot loop (e.g. malloc(size * num_threads) before
# parallel_for, then workspace + thread * size in the task).
#
# Constant A (weights): pack it once with gemm_pack_a into
# gemm_packed_a_size(m, k) elements of the same dtype, then call
# gemm_prepacked, which reads only the packed copy (no per-call packing of A;
# measured faster whenever n is small), or gemm_prepacked_rows for rows
# row0 .. row0 + m - 1 (row0 a multiple of block_sizes()["MR"]) of A packed
# whole (packed_rows rows): the same bits as the whole product's rows.  The
# packed layout depends on the build's register blocking: pack in the process
# that computes.
from cython cimport floating

cdef Py_ssize_t gemm_workspace_size(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil

cdef void gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t lda,
               const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc, bint accumulate,
               void* workspace) noexcept nogil

cdef Py_ssize_t gemm_packed_a_size(Py_ssize_t m, Py_ssize_t k) noexcept nogil

cdef void gemm_pack_a(Py_ssize_t m, Py_ssize_t k, const floating* a, Py_ssize_t lda,
                      floating* packed_a) noexcept nogil

cdef void gemm_prepacked(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* packed_a,
                         const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                         bint accumulate, void* workspace) noexcept nogil

cdef void gemm_prepacked_rows(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* packed_a,
                              Py_ssize_t packed_rows, Py_ssize_t row0, const floating* b, Py_ssize_t ldb,
                              floating* c, Py_ssize_t ldc, bint accumulate, void* workspace) noexcept nogil
