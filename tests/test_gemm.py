"""The GEMM core (pyconv/_kernels/gemm.pyx) against numpy float64 matmul.

Results are checked against the standard forward error bound of a
k-term dot product, |C - A @ B| <= k * eps * (|A| @ |B|), which holds for
any summation order; bit-for-bit checks cover what must not vary (threads,
prepacked vs packed-per-call, leading dimensions).
"""
import numpy as np
import pytest

from pyconv._kernels import gemm

DTYPES = [np.float32, np.float64]

# (m, n, k): odd sizes, sizes below and not multiples of the register tile (MR rows,
# NR = NV vectors of columns), every kind of column remainder (whole vectors, < one
# vector, both), k over the KC block (256) and n over the NC block (4032).
SIZES = [
    (1, 1, 1), (1, 7, 1), (7, 1, 97), (2, 3, 4), (97, 101, 7), (101, 97, 300), (13, 200, 5),
    (8, 48, 256), (9, 49, 257), (64, 196, 64), (17, 33, 64), (3, 4100, 2), (40, 16, 600),
]


def reference(a, b):
    """Exact-enough product and the error bound a correct float GEMM must meet."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[-1]
    bound = max(k, 1) * np.finfo(a.dtype).eps * (np.abs(a64) @ np.abs(b64)) + np.finfo(a.dtype).tiny
    return a64 @ b64, bound


def assert_gemm_close(actual, expected, bound):
    error = np.abs(actual.astype(np.float64) - expected)
    assert np.all(error <= bound), f"max error {error.max():.3g}, max bound {bound.max():.3g}"


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", SIZES)
def test_overwrite_matches_numpy(m, n, k, dtype, rng):
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    c = np.full((m, n), np.nan, dtype)  # overwritten, never read
    gemm.matmul(a, b, c)
    assert_gemm_close(c, *reference(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", SIZES)
def test_accumulate_adds_to_c(m, n, k, dtype, rng):
    a, b, c0 = random(rng, (m, k), dtype), random(rng, (k, n), dtype), random(rng, (m, n), dtype)
    c = c0.copy()
    gemm.matmul(a, b, c, accumulate=True)
    expected, bound = reference(a, b)
    assert_gemm_close(c, expected + c0, bound + np.finfo(dtype).eps * np.abs(expected + c0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_sub_blocks_with_leading_dimensions(dtype, accumulate, rng):
    m, n, k = 37, 53, 29
    big_a, big_b = random(rng, (60, 70), dtype), random(rng, (50, 90), dtype)
    big_c = random(rng, (80, 100), dtype)
    before = big_c.copy()
    a, b, c = big_a[5:5 + m, 11:11 + k], big_b[3:3 + k, 20:20 + n], big_c[7:7 + m, 30:30 + n]
    gemm.matmul(a, b, c, accumulate=accumulate)
    expected, bound = reference(a, b)
    if accumulate:
        expected = expected + before[7:7 + m, 30:30 + n]
        bound = bound + np.finfo(dtype).eps * np.abs(expected)
    assert_gemm_close(c, expected, bound)
    outside = np.ones(big_c.shape, bool)
    outside[7:7 + m, 30:30 + n] = False
    assert np.array_equal(big_c[outside], before[outside]), "wrote outside the C block"
    # The same product on contiguous copies gives the same bits: the leading dimensions
    # change only where the kernel reads and writes.
    c_copy = before[7:7 + m, 30:30 + n].copy()
    gemm.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b), c_copy, accumulate=accumulate)
    assert np.array_equal(c, c_copy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k", [(1000, 1280), (45, 300), (7, 3), (33, 257)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_column_kernels_give_the_micro_kernels_bits(m, k, dtype, accumulate, rng):
    """A column of C gets the same bits from the micro-kernel (n = 2 NR), the column kernel (n < one vector)
    and the one-column kernel (n = 1): each output is one FMA chain over k in order in all three."""
    nr = gemm.block_sizes()["NR_float32" if dtype == np.float32 else "NR_float64"]
    a, b, c0 = random(rng, (m, k), dtype), random(rng, (k, 2 * nr), dtype), random(rng, (m, 2 * nr), dtype)
    wide = c0.copy()
    gemm.matmul(a, b, wide, accumulate=accumulate)
    for n in (1, 3, 4, 5, 7, 8):
        narrow = c0[:, :n].copy()
        gemm.matmul(a, np.ascontiguousarray(b[:, :n]), narrow, accumulate=accumulate)
        assert np.array_equal(narrow, wide[:, :n]), n
    assert_gemm_close(wide, *(reference(a, b)[0] + (c0 if accumulate else 0), reference(a, b)[1] + np.abs(c0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_zero(dtype, rng):
    a, b = np.empty((5, 0), dtype), np.empty((0, 9), dtype)
    c = np.full((5, 9), np.nan, dtype)
    gemm.matmul(a, b, c)
    assert np.array_equal(c, np.zeros((5, 9), dtype))
    c0 = random(rng, (5, 9), dtype)
    c = c0.copy()
    gemm.matmul(a, b, c, accumulate=True)
    assert np.array_equal(c, c0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_its_row_and_column(dtype, rng):
    # Padding rows of A and columns of B are zeros: NaN/Inf must not leak from them into
    # real outputs, nor be lost.
    m, n, k = 11, 53, 19
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    a[3, 4] = np.nan
    b[6, 50] = np.inf
    c = np.empty((m, n), dtype)
    gemm.matmul(a, b, c)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    assert np.array_equal(np.isnan(c), np.isnan(expected))
    assert np.array_equal(np.isinf(c), np.isinf(expected))
    assert np.isnan(c[3]).all() and np.isfinite(np.delete(c, [3], 0)[:, :50]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (97, 101, 7), (9, 49, 257), (64, 196, 64), (3, 4100, 2)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_prepacked_gives_the_same_bits(m, n, k, dtype, accumulate, rng):
    a, b, c0 = random(rng, (m, k), dtype), random(rng, (k, n), dtype), random(rng, (m, n), dtype)
    packed = np.empty(gemm.packed_a_size(m, k), dtype)
    gemm.pack_a(a, packed)
    c_prepacked, c_packed = c0.copy(), c0.copy()
    gemm.matmul_prepacked(packed, b, c_prepacked, accumulate)
    gemm.matmul(a, b, c_packed, accumulate)
    assert np.array_equal(c_prepacked, c_packed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, m, n, k", [(5, 13, 101, 97), (7, 64, 49, 128), (3, 9, 3, 300)])
def test_two_threads_give_the_bits_of_one(batch, m, n, k, dtype, rng):
    a, b = random(rng, (batch, m, k), dtype), random(rng, (batch, k, n), dtype)
    one, two = np.empty((batch, m, n), dtype), np.empty((batch, m, n), dtype)
    gemm.batched_matmul(a, b, one, False, 1)
    gemm.batched_matmul(a, b, two, False, 2)
    assert np.array_equal(one, two)
    single = np.empty((m, n), dtype)
    for i in range(batch):
        gemm.matmul(a[i], b[i], single)
        assert np.array_equal(one[i], single)
    packed = np.empty((batch, gemm.packed_a_size(m, k)), dtype)
    for i in range(batch):
        gemm.pack_a(a[i], packed[i])
    prepacked = np.empty((batch, m, n), dtype)
    gemm.batched_matmul_prepacked(packed, m, b, prepacked, False, 2)
    assert np.array_equal(prepacked, one)


def test_batched_accumulate_and_strided_batch(rng):
    big = random(rng, (4, 30, 40), np.float32)
    a, b = big[:, 2:12, 5:25], random(rng, (4, 20, 17), np.float32)
    c0 = random(rng, (4, 10, 17), np.float32)
    c = c0.copy()
    gemm.batched_matmul(a, b, c, True, 2)
    for i in range(4):
        expected, bound = reference(a[i], b[i])
        assert_gemm_close(c[i], expected + c0[i], bound + np.finfo(np.float32).eps * np.abs(expected + c0[i]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (97, 101, 7), (9, 49, 257), (40, 16, 600)])
def test_blas_implementation_matches_numpy(m, n, k, dtype, rng):
    pytest.importorskip("scipy")
    a, b, c0 = random(rng, (m, k), dtype), random(rng, (k, n), dtype), random(rng, (m, n), dtype)
    c = np.full((m, n), np.nan, dtype)
    gemm.matmul(a, b, c, implementation="blas")
    assert_gemm_close(c, *reference(a, b))
    c = c0.copy()
    gemm.batched_matmul(a[None], b[None], c[None], True, 1, "blas")
    expected, bound = reference(a, b)
    assert_gemm_close(c, expected + c0, bound + np.finfo(dtype).eps * np.abs(expected + c0))


def test_unknown_implementation_is_refused():
    a = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="implementation"):
        gemm.matmul(a, a, a.copy(), implementation="fast")


def test_block_sizes_are_consistent():
    sizes = gemm.block_sizes()
    assert sizes["MC"] % sizes["MR"] == 0
    assert sizes["NR_float32"] == 2 * sizes["NR_float64"]
    assert sizes["NR_float32"] % (sizes["vector_bytes"] // 4) == 0
