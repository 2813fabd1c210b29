"""max_pool*, avg_pool*, lp_pool* and max_unpool* against torch: grids, edge cases and errors."""
import math

import numpy as np
import pytest

from pyconv import functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]


def _torch(fn, x, *args, **kwargs):
    """torch's result of ``fn`` on numpy ``x`` as numpy (a tuple of them for (values, indices))."""
    result = fn(torch.from_numpy(np.array(x)), *args, **kwargs)
    if isinstance(result, tuple):
        return tuple(r.numpy() for r in result)
    return result.numpy()


def _assert_same(actual, expected):
    """Exact equality of values (NaN == NaN) or of (values, indices) pairs, with dtypes."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_same(a, e)
        return
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


# ------------------------------------------------------------------ max pool grids

MAX_POOL_CASES = {
    1: [
        ((2, 3, 17), 3, 2, 1, 1),
        ((2, 3, 16), 4, None, 2, 1),
        ((1, 2, 13), 3, 1, 1, 3),
        ((3, 11), 2, 3, 1, 2),
        ((1, 1, 7), 7, 1, 3, 1),
        ((2, 2, 9), 3, (), 0, 1),
    ],
    2: [
        ((2, 3, 11, 13), 3, 2, 1, 1),
        ((2, 3, 11, 13), (3, 2), (2, 1), (1, 0), (1, 2)),
        ((1, 2, 8, 9), 2, None, 0, 1),
        ((1, 2, 8, 9), (2, 4), (3, 2), (1, 2), (2, 1)),
        ((3, 1, 7, 7), 5, 1, 2, 1),
        ((2, 2, 10, 6), (1, 3), (1, 3), 0, 1),
        ((1, 1, 9, 9), 3, 3, 1, 3),
        ((3, 10, 11), 3, 2, 1, 1),
        ((1, 2, 5, 5), 4, 3, 2, 1),
    ],
    3: [
        ((2, 2, 7, 8, 9), 3, 2, 1, 1),
        ((1, 2, 6, 7, 5), (2, 3, 1), (1, 2, 2), (1, 1, 0), (2, 1, 1)),
        ((2, 5, 6, 7), 2, None, 0, 1),
        ((1, 1, 5, 5, 5), 3, (3, 1, 2), 1, (1, 2, 1)),
    ],
}
MAX_POOLS = {1: (F.max_pool1d, TF.max_pool1d), 2: (F.max_pool2d, TF.max_pool2d), 3: (F.max_pool3d, TF.max_pool3d)}


def _max_pool_params():
    for n, cases in MAX_POOL_CASES.items():
        for case_id, case in enumerate(cases):
            for ceil_mode in (False, True):
                for return_indices in (False, True):
                    for dtype in DTYPES:
                        yield pytest.param(n, case, ceil_mode, return_indices, dtype,
                                           id=f"{n}d-{case_id}-ceil{int(ceil_mode)}-idx{int(return_indices)}-"
                                              f"{np.dtype(dtype).name}")


@pytest.mark.parametrize("n, case, ceil_mode, return_indices, dtype", list(_max_pool_params()))
def test_max_pool_matches_torch(n, case, ceil_mode, return_indices, dtype, rng):
    shape, kernel, stride, padding, dilation = case
    ours, theirs = MAX_POOLS[n]
    x = rng.standard_normal(shape).astype(dtype)
    args = (kernel, stride, padding, dilation, ceil_mode, return_indices)
    _assert_same(ours(x, *args), _torch(theirs, x, *args))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_ties_pick_the_first_maximum(n, rng):
    shape = (2, 3) + (9,) * n
    x = rng.integers(0, 3, size=shape).astype(np.float32)
    ours, theirs = MAX_POOLS[n]
    _assert_same(ours(x, 3, 2, 1, 1, True, True), _torch(theirs, x, 3, 2, 1, 1, True, True))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_nan_wins_and_the_last_nan_gives_the_index(n, rng):
    shape = (2, 2) + (8,) * n
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.15] = np.nan
    x.reshape(-1)[:5] = np.nan
    ours, theirs = MAX_POOLS[n]
    for kwargs in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, dilation=2, ceil_mode=True)):
        values, indices = ours(x, return_indices=True, **kwargs)
        _assert_same((values, indices), _torch(theirs, x, return_indices=True, **kwargs))
        assert np.isnan(values).any()
        _assert_same(ours(x, **kwargs), _torch(theirs, x, **kwargs))


def test_max_pool_nan_index_is_the_last_nan_in_the_window():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0]]])
    values, indices = F.max_pool1d(x, 5, return_indices=True)
    assert np.isnan(values[0, 0, 0]) and indices[0, 0, 0] == 3


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_all_minus_inf_gives_torch_indices(n):
    x = np.full((1, 2) + (5,) * n, -np.inf, dtype=np.float32)
    ours, theirs = MAX_POOLS[n]
    values, indices = ours(x, 3, 2, 1, return_indices=True)
    assert np.all(values == -np.inf)
    _assert_same((values, indices), _torch(theirs, x, 3, 2, 1, return_indices=True))


def test_max_pool_window_entirely_in_padding_matches_torch():
    # Dilated taps at -1 and 3 miss a length-3 input: torch gives -inf and index 3 (its window start).
    x = np.arange(3.0).reshape(1, 1, 3)
    expected = _torch(TF.max_pool1d, x, 2, 1, 1, 4, False, True)
    _assert_same(F.max_pool1d(x, 2, 1, 1, 4, return_indices=True), expected)
    assert expected[0][0, 0, 0] == -np.inf


# ------------------------------------------------------------------ avg pool grids

AVG_POOL_CASES = {
    1: [
        ((2, 3, 17), 3, 2, 1),
        ((2, 3, 16), 4, None, 2),
        ((3, 11), 2, 3, 1),
        ((1, 2, 6), 3, 2, 1),
        ((1, 1, 7), 7, 1, 3),
    ],
    2: [
        ((2, 3, 11, 13), 3, 2, 1),
        ((2, 3, 11, 13), (3, 2), (2, 1), (1, 0)),
        ((1, 2, 8, 9), 2, None, 0),
        ((1, 2, 8, 9), (2, 4), (3, 2), (1, 2)),
        ((3, 1, 7, 7), 5, 1, 2),
        ((3, 10, 11), 3, 2, 1),
        ((1, 2, 5, 5), 4, 3, 2),
        ((1, 1, 2, 2), 3, 1, 1),
    ],
    3: [
        ((2, 2, 7, 8, 9), 3, 2, 1),
        ((1, 2, 6, 7, 5), (2, 3, 1), (1, 2, 2), (1, 1, 0)),
        ((2, 5, 6, 7), 2, None, 0),
        ((1, 1, 5, 5, 5), 3, (3, 1, 2), 1),
    ],
}
AVG_POOLS = {1: (F.avg_pool1d, TF.avg_pool1d), 2: (F.avg_pool2d, TF.avg_pool2d), 3: (F.avg_pool3d, TF.avg_pool3d)}


def _avg_pool_params():
    for n, cases in AVG_POOL_CASES.items():
        for case_id, case in enumerate(cases):
            for ceil_mode in (False, True):
                for count_include_pad in (False, True):
                    for divisor_override in ((None,) if n == 1 else (None, 3, -2)):
                        for dtype in DTYPES:
                            yield pytest.param(
                                n, case, ceil_mode, count_include_pad, divisor_override, dtype,
                                id=f"{n}d-{case_id}-ceil{int(ceil_mode)}-pad{int(count_include_pad)}-"
                                   f"div{divisor_override}-{np.dtype(dtype).name}")


@pytest.mark.parametrize("n, case, ceil_mode, count_include_pad, divisor_override, dtype", list(_avg_pool_params()))
def test_avg_pool_matches_torch(n, case, ceil_mode, count_include_pad, divisor_override, dtype, rng):
    shape, kernel, stride, padding = case
    ours, theirs = AVG_POOLS[n]
    x = rng.standard_normal(shape).astype(dtype)
    args = (kernel, stride, padding, ceil_mode, count_include_pad)
    if n > 1:
        args += (divisor_override,)
    assert_close(ours(x, *args), _torch(theirs, x, *args))


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_ceil_mode_divisors_by_hand(count_include_pad):
    # L=6, k=3, s=2, p=1, ceil: windows [-1,2) [1,4) [3,6) [5,8)->clipped to [5,7) then [5,6).
    x = np.arange(6.0).reshape(1, 1, 6)
    expected = [1 / 3, 2, 4, 2.5] if count_include_pad else [0.5, 2, 4, 5]
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 2, 1, True, count_include_pad)[0, 0], expected)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_avg_pool_propagates_nan_and_inf(n, rng):
    x = rng.standard_normal((1, 4) + (6,) * n)
    x.reshape(-1)[[3, 20]] = np.nan
    x.reshape(-1)[9] = np.inf
    x.reshape(-1)[14] = -np.inf
    ours, theirs = AVG_POOLS[n]
    result = ours(x, 2, 1, 1)
    assert np.isnan(result).any() and np.isinf(result).any()
    assert_close(result, _torch(theirs, x, 2, 1, 1))


def test_avg_pool_float32_matches_torch_bit_for_bit(rng):
    x = rng.standard_normal((2, 4, 33, 35)).astype(np.float32)
    _assert_same(F.avg_pool2d(x, 3, 2, 1, True, False), _torch(TF.avg_pool2d, x, 3, 2, 1, True, False))


# ------------------------------------------------------------------ lp pool

LP_POOLS = {1: (F.lp_pool1d, TF.lp_pool1d), 2: (F.lp_pool2d, TF.lp_pool2d), 3: (F.lp_pool3d, TF.lp_pool3d)}
LP_CASES = {
    1: [((2, 3, 11), 3, None), ((3, 10), 2, 3), ((1, 2, 9), 4, 2)],
    2: [((2, 3, 9, 11), 3, None), ((2, 3, 9, 11), (2, 3), (3, 1)), ((3, 7, 8), 2, 1)],
    3: [((1, 2, 5, 6, 7), 2, None), ((2, 5, 6, 7), (3, 2, 2), (1, 2, 3))],
}


def _lp_params():
    for n, cases in LP_CASES.items():
        for case_id, case in enumerate(cases):
            for norm_type in (1, 2, 3, 1.5, -1, math.inf, -math.inf):
                for ceil_mode in (False, True):
                    for dtype in DTYPES:
                        yield pytest.param(n, case, norm_type, ceil_mode, dtype,
                                           id=f"{n}d-{case_id}-p{norm_type}-ceil{int(ceil_mode)}-"
                                              f"{np.dtype(dtype).name}")


@pytest.mark.parametrize("n, case, norm_type, ceil_mode, dtype", list(_lp_params()))
def test_lp_pool_matches_torch(n, case, norm_type, ceil_mode, dtype, rng):
    shape, kernel, stride = case
    ours, theirs = LP_POOLS[n]
    positive = (np.abs(rng.standard_normal(shape)) + 0.1).astype(dtype)
    assert_close(ours(positive, norm_type, kernel, stride, ceil_mode),
                 _torch(theirs, positive, norm_type, kernel, stride, ceil_mode))
    # Small integers keep the sums exact, so signs, zeros and NaNs are comparable.
    integers = rng.integers(-2, 3, size=shape).astype(dtype)
    with np.errstate(all="ignore"):
        ours_result = ours(integers, norm_type, kernel, stride, ceil_mode)
    assert_close(ours_result, _torch(theirs, integers, norm_type, kernel, stride, ceil_mode))


def test_lp_pool_signs_and_zeros_by_hand():
    x = np.array([[[-1.0, -2.0, 0.0, -0.0, 1.0, -1.0]]])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(F.lp_pool1d(x, 3, 2), [[[np.nan, 0.0, 0.0]]])
        # sum 0 (a -0 average turned +0 as torch does) ** (1 / -1) is +inf; 0 ** -1 + (-0) ** -1 is nan.
        np.testing.assert_array_equal(F.lp_pool1d(x, -1, 2), [[[-2 / 3, np.nan, np.inf]]])


# ------------------------------------------------------------------ max unpool

UNPOOL_CASES = {
    1: [((2, 3, 13), 3, 2, 1), ((3, 12), 2, None, 0), ((1, 2, 11), 4, 3, 2)],
    2: [((2, 3, 11, 13), 3, 2, 1), ((1, 2, 8, 9), (2, 3), (2, 1), (1, 0)), ((3, 9, 10), 2, None, 0)],
    3: [((1, 2, 7, 8, 9), 3, 2, 1), ((2, 6, 7, 5), (2, 3, 1), (1, 2, 2), (1, 1, 0))],
}
UNPOOLS = {1: (F.max_unpool1d, TF.max_unpool1d), 2: (F.max_unpool2d, TF.max_unpool2d),
           3: (F.max_unpool3d, TF.max_unpool3d)}


def _unpool_params():
    for n, cases in UNPOOL_CASES.items():
        for case_id, case in enumerate(cases):
            for output_size in ("default", "spatial", "with N, C"):
                for dtype in DTYPES:
                    yield pytest.param(n, case, output_size, dtype,
                                       id=f"{n}d-{case_id}-{output_size}-{np.dtype(dtype).name}")


@pytest.mark.parametrize("n, case, output_size, dtype", list(_unpool_params()))
def test_max_pool_then_max_unpool_matches_torch(n, case, output_size, dtype, rng):
    shape, kernel, stride, padding = case
    x = rng.standard_normal(shape).astype(dtype)
    values, indices = MAX_POOLS[n][0](x, kernel, stride, padding, return_indices=True)
    size = None
    if output_size != "default":
        size = shape[-n:] if output_size == "spatial" else (7, 7) + shape[-n:]
    ours, theirs = UNPOOLS[n]
    try:
        expected = theirs(torch.from_numpy(values), torch.from_numpy(indices), kernel, stride, padding, size).numpy()
    except RuntimeError as error:  # the default size can be too small for the indices
        assert "invalid max index" in str(error)
        with pytest.raises(ValueError, match="indices"):
            ours(values, indices, kernel, stride, padding, size)
        return
    result = ours(values, indices, kernel, stride, padding, size)
    _assert_same(result, expected)
    if size is not None:
        assert result.shape == shape
        # Every pooled maximum is back at its place, everything else is zero.
        kept = result != 0
        np.testing.assert_array_equal(result[kept], x[kept])


def test_max_unpool_later_duplicates_win():
    # torch splits a plane across its threads, so only its 1-thread result is well defined.
    x = np.array([[[1.0, 2.0, 3.0]]], dtype=np.float32)
    indices = np.zeros((1, 1, 3), dtype=np.int64)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = _torch(lambda t: TF.max_unpool1d(t, torch.from_numpy(indices), 2), x)
    finally:
        torch.set_num_threads(before)
    result = F.max_unpool1d(x, indices, 2)
    _assert_same(result, expected)
    assert result[0, 0, 0] == 3


def test_max_unpool_accepts_other_integer_index_dtypes(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    expected = F.max_unpool2d(values, indices, 2)
    np.testing.assert_array_equal(F.max_unpool2d(values, indices.astype(np.int32), 2), expected)
    np.testing.assert_array_equal(F.max_unpool2d(values, indices.astype(np.uint16), 2), expected)


@pytest.mark.parametrize("bad", [16, 100, -1, np.iinfo(np.int64).max, np.iinfo(np.int64).min])
def test_max_unpool_refuses_indices_outside_the_output(bad):
    values = np.ones((1, 2, 2, 2))
    indices = np.zeros((1, 2, 2, 2), dtype=np.int64)
    indices[0, 1, 1, 0] = bad
    with pytest.raises(ValueError, match="indices"):
        F.max_unpool2d(values, indices, 2)


def test_max_unpool_refuses_huge_unsigned_indices():
    values = np.ones((1, 1, 2))
    indices = np.array([[[0, np.iinfo(np.uint64).max]]], dtype=np.uint64)
    with pytest.raises(ValueError, match="indices"):
        F.max_unpool1d(values, indices, 2)


def test_max_unpool_indices_valid_for_a_bigger_output_only():
    values, indices = F.max_pool2d(np.arange(25.0).reshape(1, 1, 5, 5), 2, return_indices=True)
    with pytest.raises(ValueError, match="indices"):
        F.max_unpool2d(values, indices, 2, output_size=(3, 3))  # the index 18 needs a 5x5 plane


# ------------------------------------------------------------------ layout, threads, batch 0

@pytest.mark.parametrize("n", [1, 2, 3])
def test_non_contiguous_inputs(n, rng):
    base = rng.standard_normal((3, 4) + (12,) * n)
    views = [
        np.swapaxes(base, 0, 1),                 # transposed
        base[:, ::2, ..., 1:],                   # sliced with a step
        base[..., ::-1],                         # negative stride
        base.astype(">f8"),                      # big-endian
    ]
    for x in views:
        _assert_same(MAX_POOLS[n][0](x, 3, 2, 1, return_indices=True), _torch(MAX_POOLS[n][1], np.array(x, "<f8"),
                                                                              3, 2, 1, return_indices=True))
        assert_close(AVG_POOLS[n][0](x, 3, 2, 1), _torch(AVG_POOLS[n][1], np.array(x, "<f8"), 3, 2, 1))


def test_same_bits_with_one_and_two_threads(num_threads, rng):
    x = rng.standard_normal((3, 5, 37, 41)).astype(np.float32)
    x3 = rng.standard_normal((2, 3, 9, 11, 13)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        num_threads(threads)
        values, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        runs.append([
            values, indices, F.max_pool2d(x, (3, 2), 1, 1, 2, True),
            F.avg_pool2d(x, 3, 2, 1, True, False), F.avg_pool3d(x3, 3, 2, 1),
            F.max_pool3d(x3, 2, return_indices=True)[1], F.lp_pool2d(x, 2, 3),
            F.max_unpool2d(values, indices, 3, 2, 1, output_size=x.shape),
        ])
    for one, two in zip(*runs):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding, ceil_mode", [
    ((1, 40, 7, 7), 3, 1, 1, True),          # GoogLeNet's branch pools: a plane per task, one call (flat)
    ((2, 24, 14, 14), 3, 1, 1, False),
    ((1, 30, 5, 9), (2, 3), 1, (1, 0), False),
    ((1, 40, 28, 28), 3, 2, 0, True),        # stride 2 on rows narrower than a vector: a plane per task
    ((2, 16, 13, 13), 3, 2, 0, True),        # AlexNet / SqueezeNet
    ((1, 9, 2, 3), 2, 1, 1, False),          # fewer outputs than a vector even flat
    ((1, 12, 28, 28), 3, 1, 1, True),        # stride 1 max on rows up to FLAT_MAX_WIDTH: flat too
    ((2, 5, 40, 64), (3, 5), 1, (1, 2), False),
    ((1, 20, 27, 27), 3, 2, 1, False),       # stride 2 max, 2 or 3 wide: along the rows, then across
    ((1, 20, 14, 15), (3, 2), 2, (1, 0), True),
    ((1, 8, 31, 32), (2, 3), 2, 0, True),
])
@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan-inf"])
def test_narrow_planes_bit_for_bit_and_threads(num_threads, shape, kernel, stride, padding, ceil_mode, special,
                                                dtype, rng):
    """Planes narrower than a vector, stride 1 max pools on rows up to 64 wide and stride 2 ones on rows up
    to 32 wide run a plane per task through a padded copy of the plane (stride 1 max pooling in one
    kernel call over it, stride 2 along the rows, then across them; a plane with a NaN again by the
    row kernel): torch's max (NaN, -inf, ties of -0.0 and 0.0) and average
    (count_include_pad both ways, the divisor override) to the bit, on 1 and 2 threads."""
    x = rng.standard_normal(shape).astype(dtype)
    if special:   # in some planes only: the others keep the fast path's folds
        x[0, ::3][rng.random(x[0, ::3].shape) < 0.02] = np.nan
        x[0, 1::3][rng.random(x[0, 1::3].shape) < 0.05] = -np.inf
    zeros = rng.random(shape) < 0.2
    x[zeros] = np.where(rng.random(shape) < 0.5, 0.0, -0.0)[zeros]
    results = []
    for threads in (1, 2):
        num_threads(threads)
        values = [F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)]
        for include_pad in (False, True):
            values.append(F.avg_pool2d(x, kernel, stride, padding, ceil_mode, include_pad))
        values.append(F.avg_pool2d(x, kernel, stride, padding, ceil_mode, True, 3))
        results.append(values)
    expected = _torch(TF.max_pool2d, x, kernel, stride, padding, 1, ceil_mode)
    _assert_same(results[0][0], expected)
    assert np.array_equal(np.signbit(results[0][0]), np.signbit(expected))
    for include_pad, result in zip((False, True), results[0][1:3]):
        assert_close(result, _torch(TF.avg_pool2d, x, kernel, stride, padding, ceil_mode, include_pad))
    assert_close(results[0][3], _torch(TF.avg_pool2d, x, kernel, stride, padding, ceil_mode, True, 3))
    for one, two in zip(*results):
        assert np.array_equal(one.view(np.uint8), two.view(np.uint8))


def test_batch_zero_gives_empty_outputs():
    for n in (1, 2, 3):
        x = np.zeros((0, 3) + (6,) * n, dtype=np.float32)
        spatial = (3,) * n
        values, indices = MAX_POOLS[n][0](x, 2, return_indices=True)
        assert values.shape == indices.shape == (0, 3) + spatial
        assert values.dtype == np.float32 and indices.dtype == np.int64
        assert AVG_POOLS[n][0](x, 2).shape == (0, 3) + spatial
        assert LP_POOLS[n][0](x, 2, 2).shape == (0, 3) + spatial
        assert UNPOOLS[n][0](values, indices, 2).shape == x.shape


def test_float32_in_float32_out_and_new_arrays(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    for result in (F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.lp_pool2d(x, 2, 2)):
        assert result.dtype == np.float32 and not np.shares_memory(result, x)


# ------------------------------------------------------------------ errors

def _ones(*shape):
    return np.ones(shape, dtype=np.float32)


ERROR_CASES = [
    # wrong ndim
    (lambda: F.max_pool1d(_ones(4), 2), ValueError, "max_pool1d: expected input to be 2D or 3D"),
    (lambda: F.max_pool2d(_ones(4, 4), 2), ValueError, "max_pool2d: expected input to be 3D or 4D"),
    (lambda: F.max_pool3d(_ones(1, 1, 1, 4, 4, 4), 2), ValueError, "max_pool3d: expected input to be 4D or 5D"),
    (lambda: F.avg_pool2d(_ones(1, 1, 1, 4, 4), 2), ValueError, "avg_pool2d: expected input"),
    (lambda: F.avg_pool3d(_ones(4, 4, 4), 2), ValueError, "avg_pool3d: expected input"),
    (lambda: F.lp_pool2d(_ones(4, 4), 2, 2), ValueError, "lp_pool2d: expected input"),
    (lambda: F.max_unpool2d(_ones(2, 2), np.zeros((2, 2), np.int64), 2), ValueError, "max_unpool2d: expected input"),
    # empty channel / spatial sizes (batch 0 is fine)
    (lambda: F.max_pool2d(_ones(1, 0, 4, 4), 2), ValueError, "input with non-zero"),
    (lambda: F.avg_pool1d(_ones(2, 0), 2), ValueError, "input with non-zero"),
    (lambda: F.max_pool3d(_ones(1, 1, 4, 0, 4), 2), ValueError, "input with non-zero"),
    # kernel_size, stride, dilation <= 0, negative padding
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 0), ValueError, "kernel_size"),
    (lambda: F.avg_pool1d(_ones(1, 1, 4), (-1,)), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 2, 0), ValueError, "stride"),
    (lambda: F.avg_pool3d(_ones(1, 1, 4, 4, 4), 2, (1, 0, 1)), ValueError, "stride"),
    (lambda: F.max_pool1d(_ones(1, 1, 4), 2, dilation=0), ValueError, "dilation"),
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 2, padding=-1), ValueError, "padding"),
    (lambda: F.avg_pool2d(_ones(1, 1, 4, 4), 2, padding=(0, -1)), ValueError, "padding"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 0), ValueError, "kernel_size"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 2, 0), ValueError, "stride"),
    (lambda: F.max_unpool1d(_ones(1, 1, 2), np.zeros((1, 1, 2), np.int64), 2, 2, -1), ValueError, "padding"),
    # padding more than half the (undilated) kernel
    (lambda: F.max_pool2d(_ones(1, 1, 9, 9), 3, padding=2), ValueError, "padding to be at most half of kernel_size"),
    (lambda: F.max_pool2d(_ones(1, 1, 9, 9), 3, padding=2, dilation=2), ValueError, "padding"),
    (lambda: F.max_pool1d(_ones(1, 1, 9), 2, padding=2), ValueError, "padding"),
    (lambda: F.avg_pool2d(_ones(1, 1, 9, 9), (4, 3), padding=(2, 2)), ValueError, "padding"),
    (lambda: F.avg_pool3d(_ones(1, 1, 9, 9, 9), 1, padding=1), ValueError, "padding"),
    # output size <= 0
    (lambda: F.max_pool2d(_ones(1, 1, 5, 5), 6), ValueError, "too small for kernel_size"),
    (lambda: F.max_pool1d(_ones(1, 1, 5), 3, dilation=3), ValueError, "too small"),
    (lambda: F.avg_pool1d(_ones(1, 1, 5), 6), ValueError, "too small"),
    (lambda: F.avg_pool2d(_ones(1, 1, 5, 2), 3), ValueError, "too small"),
    (lambda: F.lp_pool2d(_ones(1, 1, 5, 5), 2, 6), ValueError, "too small"),
    # torch's avg_pool3d wants input >= kernel even with padding
    (lambda: F.avg_pool3d(_ones(1, 1, 2, 2, 2), 3, 1, 1), ValueError, "at least kernel_size"),
    # argument types
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 2.0), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), (2, 2, 2)), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 2, ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: F.max_pool2d(_ones(1, 1, 4, 4), 2, return_indices="yes"), TypeError, "return_indices"),
    (lambda: F.avg_pool2d(_ones(1, 1, 4, 4), 2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: F.avg_pool2d(_ones(1, 1, 4, 4), 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool3d(_ones(1, 1, 4, 4, 4), 2, divisor_override=2.5), TypeError, "divisor_override"),
    (lambda: F.avg_pool2d(_ones(1, 1, 4, 4), 2, divisor_override=True), TypeError, "divisor_override"),
    (lambda: F.avg_pool2d(_ones(1, 1, 4, 4), 2, return_indices=True), TypeError, "return_indices"),
    (lambda: F.avg_pool1d(_ones(1, 1, 4), 2, divisor_override=2), TypeError, "divisor_override"),
    (lambda: F.lp_pool2d(_ones(1, 1, 4, 4), 0, 2), ValueError, "norm_type"),
    (lambda: F.lp_pool2d(_ones(1, 1, 4, 4), "2", 2), TypeError, "norm_type"),
    # dtypes
    (lambda: F.max_pool2d(np.ones((1, 1, 4, 4), np.int32), 2), TypeError, "float32 or float64"),
    (lambda: F.avg_pool2d(np.ones((1, 1, 4, 4), bool), 2), TypeError, "float32 or float64"),
    (lambda: F.max_pool1d(np.ones((1, 1, 4), np.complex64), 2), TypeError, "float32 or float64"),
    (lambda: F.lp_pool1d(np.ones((1, 1, 4), np.int64), 2, 2), TypeError, "float32 or float64"),
    (lambda: F.max_unpool1d(np.ones((1, 1, 2), np.int64), np.zeros((1, 1, 2), np.int64), 2), TypeError,
     "float32 or float64"),
    # unpool indices and output_size
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.float32), 2), TypeError, "indices"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 1), np.int64), 2), ValueError, "indices"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 2, output_size=(1, 4, 4)),
     ValueError, "output_size"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 2, output_size=(6, 4)),
     ValueError, "output_size"),
    (lambda: F.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 2, output_size=(4, 2)),
     ValueError, "output_size"),
    (lambda: F.max_unpool1d(_ones(1, 1, 2), np.zeros((1, 1, 2), np.int64), 2, output_size=4), TypeError,
     "output_size"),
    (lambda: F.max_unpool1d(_ones(1, 1, 1), np.zeros((1, 1, 1), np.int64), 1, 1, 1), ValueError, "negative"),
    (lambda: F.max_unpool2d(_ones(1, 0, 2, 2), np.zeros((1, 0, 2, 2), np.int64), 2), ValueError,
     "input with non-zero"),
]


@pytest.mark.parametrize("call, error, message", ERROR_CASES, ids=[f"error-{i}" for i in range(len(ERROR_CASES))])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_torch_raises_on_the_same_configurations():
    """The error grid's value errors are errors in torch too (a few representative ones)."""
    x = torch.ones(1, 1, 9, 9)
    for call in (lambda: TF.max_pool2d(x, 3, padding=2), lambda: TF.max_pool2d(x, 3, padding=2, dilation=2),
                 lambda: TF.max_pool2d(x, 10), lambda: TF.avg_pool3d(torch.ones(1, 1, 2, 2, 2), 3, 1, 1),
                 lambda: TF.avg_pool2d(x, 2, divisor_override=0), lambda: TF.max_pool2d(torch.ones(1, 0, 4, 4), 2)):
        with pytest.raises(RuntimeError):
            call()
    # ... while these edge configurations are valid in torch and in pyconv.
    for ours, theirs, args in ((F.max_pool2d, TF.max_pool2d, (2, 1, 1, 3)), (F.avg_pool2d, TF.avg_pool2d, (3, 1, 1))):
        small = np.ones((1, 1, 2, 2), np.float32)
        assert_close(ours(small, *args), _torch(theirs, small, *args))
