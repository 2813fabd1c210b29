"""adaptive_avg_pool* and adaptive_max_pool* against torch: grids, edge cases and errors."""
import numpy as np
import pytest


from pyconv import functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
AVG = {1: (F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d), 2: (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
       3: (F.adaptive_avg_pool3d, TF.adaptive_avg_pool3d)}
MAX = {1: (F.adaptive_max_pool1d, TF.adaptive_max_pool1d), 2: (F.adaptive_max_pool2d, TF.adaptive_max_pool2d),
       3: (F.adaptive_max_pool3d, TF.adaptive_max_pool3d)}

# (input shape, output_size): divisible, non-divisible, larger than the input, equal, None entries,
# global (1), empty (0), odd and non-square sizes, unbatched.
CASES = {
    1: [((2, 3, 12), 4), ((2, 3, 13), 5), ((3, 7), 10), ((2, 2, 9), 9), ((1, 4, 11), 1), ((2, 3, 5), (3,)),
        ((2, 3, 5), 0)],
    2: [((2, 3, 12, 12), 4), ((2, 3, 13, 11), (5, 3)), ((3, 7, 5), (10, 6)), ((2, 2, 9, 9), (9, 9)),
        ((2, 4, 7, 7), 1), ((2, 3, 7, 9), (None, 4)), ((1, 2, 6, 10), (4, None)), ((2, 3, 5, 6), (0, 3)),
        ((1, 2, 1, 17), (1, 5))],
    3: [((2, 2, 8, 8, 8), 4), ((1, 3, 7, 9, 5), (3, 4, 2)), ((2, 4, 5, 6), (6, 7, 8)), ((2, 2, 3, 5, 7), 1),
        ((1, 2, 5, 6, 7), (None, 3, None)), ((2, 1, 4, 5, 6), (2, 0, 3))],
}


def _torch(fn, x, *args):
    result = fn(torch.from_numpy(np.array(x)), *args)
    if isinstance(result, tuple):
        return tuple(r.numpy() for r in result)
    return result.numpy()


def _params(with_indices):
    for n, cases in CASES.items():
        for case_id, (shape, size) in enumerate(cases):
            for dtype in DTYPES:
                for return_indices in ((False, True) if with_indices else (None,)):
                    yield pytest.param(n, shape, size, dtype, return_indices,
                                       id=f"{n}d-{case_id}-{np.dtype(dtype).name}-idx{return_indices}")


@pytest.mark.parametrize("n, shape, size, dtype, unused", list(_params(False)))
def test_adaptive_avg_pool_matches_torch(n, shape, size, dtype, unused, rng):
    x = rng.standard_normal(shape).astype(dtype)
    ours, theirs = AVG[n]
    expected = _torch(theirs, x, size)
    result = ours(x, size)
    assert_close(result, expected)
    all_ones = np.all(np.array(expected.shape[-n:]) == 1)
    if not all_ones:  # torch's general kernel: same order of additions and divisions, same bits
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("n, shape, size, dtype, return_indices", list(_params(True)))
def test_adaptive_max_pool_matches_torch(n, shape, size, dtype, return_indices, rng):
    x = rng.standard_normal(shape).astype(dtype)
    ours, theirs = MAX[n]
    expected = _torch(theirs, x, size, return_indices)
    result = ours(x, size, return_indices)
    if return_indices:
        assert isinstance(result, tuple)
        for a, e in zip(result, expected):
            assert a.dtype == e.dtype and a.shape == e.shape
            np.testing.assert_array_equal(a, e)
    else:
        assert result.dtype == expected.dtype and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)


def test_adaptive_windows_by_hand():
    # L=5 -> 3: windows [0, 2), [1, 4), [3, 5)
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    np.testing.assert_allclose(F.adaptive_avg_pool1d(x, 3), [[[1.5, 3.0, 4.5]]])
    values, indices = F.adaptive_max_pool1d(x[:, :, ::-1], 3, return_indices=True)
    np.testing.assert_array_equal(values, [[[5.0, 4.0, 2.0]]])
    np.testing.assert_array_equal(indices, [[[0, 1, 3]]])


def test_global_average_is_a_plane_mean(rng):
    x = rng.standard_normal((3, 2048, 7, 7)).astype(np.float32)
    result = F.adaptive_avg_pool2d(x, 1)
    assert result.shape == (3, 2048, 1, 1)
    assert_close(result, x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32))
    big = rng.standard_normal((2, 3, 301, 299)).astype(np.float32) + 5
    assert_close(F.adaptive_avg_pool2d(big, (1, 1)), _torch(TF.adaptive_avg_pool2d, big, 1))
    assert_close(F.adaptive_avg_pool3d(x[:, :, None], 1), _torch(TF.adaptive_avg_pool3d, x[:, :, None], 1))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_nan_propagation_values_and_indices(n, rng):
    x = rng.standard_normal((2, 3) + (7,) * n)
    x[rng.random(x.shape) < 0.1] = np.nan
    x.reshape(-1)[:3] = np.nan
    for size in (3, 1, 5):
        values, indices = MAX[n][0](x, size, True)
        expected_values, expected_indices = _torch(MAX[n][1], x, size, True)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(indices, expected_indices)
        assert_close(AVG[n][0](x, size), _torch(AVG[n][1], x, size))
    assert np.isnan(MAX[n][0](x, 1)).any()


def test_minus_inf_inputs_give_torch_indices():
    x = np.full((1, 2, 5, 6), -np.inf, dtype=np.float32)
    values, indices = F.adaptive_max_pool2d(x, (3, 4), True)
    expected_values, expected_indices = _torch(TF.adaptive_max_pool2d, x, (3, 4), True)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(indices, expected_indices)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_non_contiguous_inputs(n, rng):
    base = rng.standard_normal((3, 4) + (10,) * n)
    for x in (np.swapaxes(base, 0, 1), base[:, 1::2, ..., ::-1], base[..., 1:].astype(">f8")):
        plain = np.array(x, "<f8")
        assert_close(AVG[n][0](x, 3), _torch(AVG[n][1], plain, 3))
        np.testing.assert_array_equal(MAX[n][0](x, 4, True)[1], _torch(MAX[n][1], plain, 4, True)[1])


def test_same_bits_with_one_and_two_threads(num_threads, rng):
    x = rng.standard_normal((3, 7, 29, 31)).astype(np.float32)
    x3 = rng.standard_normal((2, 5, 7, 9, 11)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        num_threads(threads)
        runs.append([F.adaptive_avg_pool2d(x, (5, 7)), F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool3d(x3, (3, 4, 5)),
                     *F.adaptive_max_pool2d(x, (6, 4), True), *F.adaptive_max_pool3d(x3, 2, True)])
    for one, two in zip(*runs):
        np.testing.assert_array_equal(one, two)


def test_batch_zero_and_empty_channels():
    for n in (1, 2, 3):
        x = np.zeros((0, 3) + (6,) * n, dtype=np.float32)
        assert AVG[n][0](x, 2).shape == (0, 3) + (2,) * n
        assert AVG[n][0](x, 1).shape == (0, 3) + (1,) * n
        values, indices = MAX[n][0](x, 4, True)
        assert values.shape == indices.shape == (0, 3) + (4,) * n and indices.dtype == np.int64
        # torch: zero channels are fine for the average, an error for the max
        no_channels = np.zeros((2, 0) + (6,) * n)
        assert AVG[n][0](no_channels, 2).shape == (2, 0) + (2,) * n
        with pytest.raises(ValueError, match="input with non-zero"):
            MAX[n][0](no_channels, 2)


def _ones(*shape):
    return np.ones(shape, dtype=np.float32)


ERROR_CASES = [
    (lambda: F.adaptive_avg_pool1d(_ones(4), 2), ValueError, "adaptive_avg_pool1d: expected input to be 2D or 3D"),
    (lambda: F.adaptive_max_pool2d(_ones(4, 4), 2), ValueError, "adaptive_max_pool2d: expected input to be 3D or 4D"),
    (lambda: F.adaptive_avg_pool3d(_ones(1, 1, 1, 2, 2, 2), 2), ValueError, "adaptive_avg_pool3d: expected input"),
    (lambda: F.adaptive_avg_pool2d(_ones(1, 1, 0, 4), 2), ValueError, "non-zero spatial"),
    (lambda: F.adaptive_max_pool1d(_ones(1, 1, 0), 2), ValueError, "non-zero"),
    (lambda: F.adaptive_avg_pool2d(_ones(1, 1, 4, 4), -1), ValueError, "output_size"),
    (lambda: F.adaptive_max_pool3d(_ones(1, 1, 4, 4, 4), (2, -1, 2)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_ones(1, 1, 4, 4), (2,)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_ones(1, 1, 4, 4), (2, 2, 2)), ValueError, "output_size"),
    (lambda: F.adaptive_max_pool1d(_ones(1, 1, 4), (2, 2)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool1d(_ones(1, 1, 4), None), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool1d(_ones(1, 1, 4), (None,)), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_ones(1, 1, 4, 4), None), TypeError, "output_size"),
    (lambda: F.adaptive_max_pool2d(_ones(1, 1, 4, 4), 2.0), TypeError, "output_size"),
    (lambda: F.adaptive_max_pool2d(_ones(1, 1, 4, 4), 2, return_indices=None), TypeError, "return_indices"),
    (lambda: F.adaptive_avg_pool2d(np.ones((1, 1, 4, 4), np.int64), 2), TypeError, "float32 or float64"),
    (lambda: F.adaptive_max_pool1d(np.ones((1, 1, 4), bool), 2), TypeError, "float32 or float64"),
    (lambda: F.adaptive_avg_pool3d(np.ones((1, 1, 4, 4, 4), np.complex128), 2), TypeError, "float32 or float64"),
]


@pytest.mark.parametrize("call, error, message", ERROR_CASES, ids=[f"error-{i}" for i in range(len(ERROR_CASES))])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
