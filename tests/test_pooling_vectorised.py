"""The vectorised pooling paths (max without indices, average, global average) on rows wide
enough for whole vectors: bit-identical to torch, the edge columns, the NaN rule and threads."""
import numpy as np
import pytest

from pyconv import functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
# Row widths around one and two vectors of 8 and 16 elements, and wide ones.
WIDTHS = [15, 16, 17, 33, 57, 112]


def _torch(fn, x, *args, **kwargs):
    return fn(torch.from_numpy(x), *args, **kwargs).numpy()


def _same_bits(actual, expected):
    """Equal values with equal sign bits (NaN payloads aside)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", [
    (3, 2, 1, 1, False), (2, 2, 0, 1, False), (3, 1, 1, 1, False), (2, 1, 0, 1, True), (3, 2, 1, 1, True),
    (5, 2, 2, 1, False), (4, 3, 1, 1, True), ((3, 4), (2, 1), (1, 2), (2, 1), False), (3, 2, 1, 2, False),
    (1, 1, 0, 1, False),
])
def test_max_pool2d_matches_torch_bit_for_bit(rng, dtype, width, kernel, stride, padding, dilation, ceil_mode):
    x = rng.standard_normal((2, 3, 11, width)).astype(dtype)
    args = (kernel, stride, padding, dilation, ceil_mode)
    _same_bits(F.max_pool2d(x, *args), _torch(TF.max_pool2d, x, *args))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kernel, stride, padding, ceil_mode, count_include_pad, divisor_override", [
    (2, 2, 0, False, True, None), (3, 2, 1, False, True, None), (3, 2, 1, True, False, None),
    (3, 1, 1, False, False, None), (2, 1, 0, True, True, None), (5, 3, 2, True, False, None),
    ((2, 3), (1, 2), (1, 1), False, True, 5), (3, 2, 1, True, True, -3),
])
def test_avg_pool2d_matches_torch_bit_for_bit(rng, dtype, width, kernel, stride, padding, ceil_mode,
                                              count_include_pad, divisor_override):
    x = rng.standard_normal((2, 3, 9, width)).astype(dtype)
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    _same_bits(F.avg_pool2d(x, *args), _torch(TF.avg_pool2d, x, *args))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pool1d_and_pool3d_wide_rows(rng, dtype):
    x = rng.standard_normal((2, 3, 70)).astype(dtype)
    _same_bits(F.max_pool1d(x, 3, 2, 1), _torch(TF.max_pool1d, x, 3, 2, 1))
    _same_bits(F.avg_pool1d(x, 4, 2, 2, True, False), _torch(TF.avg_pool1d, x, 4, 2, 2, True, False))
    x = rng.standard_normal((1, 2, 5, 6, 40)).astype(dtype)
    _same_bits(F.max_pool3d(x, 3, 2, 1), _torch(TF.max_pool3d, x, 3, 2, 1))
    _same_bits(F.max_pool3d(x, (2, 3, 3), (1, 2, 1), (1, 1, 1), (2, 1, 1)),
               _torch(TF.max_pool3d, x, (2, 3, 3), (1, 2, 1), (1, 1, 1), (2, 1, 1)))
    _same_bits(F.avg_pool3d(x, 3, 2, 1, True, False), _torch(TF.avg_pool3d, x, 3, 2, 1, True, False))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (4, 3, 2)])
def test_max_pool_nan_and_infinities_as_in_torch(rng, kernel, stride, padding):
    """A NaN wins wherever it is (vector interior or edge column); a window holding inf and
    -inf but no NaN (whose running sum is NaN) still gives inf."""
    x = rng.standard_normal((1, 2, 12, 60)).astype(np.float32)
    x[0, 0, 3, [0, 1, 20, 21, 58, 59]] = np.nan
    x[0, 1, 5, 30] = np.inf
    x[0, 1, 5, 31] = -np.inf
    x[0, 1, 8, 0] = np.inf
    x[0, 1, 9, 1] = -np.inf
    x[0, 1, 0, 10:20] = -np.inf
    ours = F.max_pool2d(x, kernel, stride, padding)
    expected = _torch(TF.max_pool2d, x, kernel, stride, padding)
    np.testing.assert_array_equal(ours, expected)
    assert np.isnan(ours).any() and np.isposinf(ours).any()
    ours = F.avg_pool2d(x, kernel, stride, padding)
    np.testing.assert_array_equal(ours, _torch(TF.avg_pool2d, x, kernel, stride, padding))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [32, 33, 47, 64, 65, 112, 113])
@pytest.mark.parametrize("kernel, padding, ceil_mode", [
    (3, 1, False), (3, 0, False), (3, 0, True), (3, 1, True), (2, 0, False), (2, 1, False), (2, 0, True),
    ((2, 3), (0, 1), False), ((3, 2), (1, 0), True), ((1, 3), (0, 1), False),
])
@pytest.mark.parametrize("planes", [(1, 1), (2, 5)])
def test_stride2_max_pool_on_wide_rows_matches_torch(rng, dtype, width, kernel, padding, ceil_mode, planes):
    """Stride 2 max pooling of rows at least two vectors wide folds each input row once, then the
    rows of each window (one plane: bands of output rows, each starting its own folds): torch's
    bits, signed zeros, infinities and NaN included."""
    x = rng.choice(np.array([0.0, -0.0, -1.0], dtype=dtype), size=planes + (13, width))
    x[..., 4:8, :] = rng.standard_normal((4, width)).astype(dtype)
    x[..., 9, ::3] = np.inf
    x[..., 9, 1::3] = -np.inf
    x.reshape(-1, width)[::9, ::11] = np.nan
    args = (kernel, 2, padding, 1, ceil_mode)
    ours = F.max_pool2d(x, *args)
    _same_bits(ours, _torch(TF.max_pool2d, x, *args))
    assert ours.ctypes.data % 64 == 0  # a new output starts on a cache line


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [64, 65, 112])
@pytest.mark.parametrize("kernel, padding", [(3, 1), (3, 0), (2, 1), (2, 0)])
def test_stride2_max_pool_on_wide_rows_nan_in_every_column(rng, num_threads, dtype, width, kernel, padding):
    """A NaN in any column of a row (every tap position of the vectors, the edges, the last
    vector's tap past its loads) wins in each window holding it; one plane on 2 threads is cut
    into bands of output rows."""
    num_threads(2)
    clean = rng.standard_normal((1, 1, 5, width)).astype(dtype)
    for column in range(width):
        x = clean.copy()
        x[0, 0, 2, column] = np.nan
        ours = F.max_pool2d(x, kernel, 2, padding)
        np.testing.assert_array_equal(ours, _torch(TF.max_pool2d, x, kernel, 2, padding), err_msg=f"column {column}")


def test_max_pool_ties_between_signed_zeros_keep_the_first_as_torch(rng):
    x = rng.choice(np.array([0.0, -0.0, -1.0], dtype=np.float32), size=(2, 2, 10, 50))
    for args in ((3, 2, 1), (2, 2, 0), (3, 1, 1)):
        _same_bits(F.max_pool2d(x, *args), _torch(TF.max_pool2d, x, *args))


def test_avg_pool_window_in_the_padding_only_gives_zero():
    # ceil_mode lets the last window start in the right padding: torch divides an empty sum
    x = np.ones((1, 1, 20, 35), np.float32)
    for count_include_pad in (True, False):
        args = (2, 2, 1, True, count_include_pad)
        _same_bits(F.avg_pool2d(x, *args), _torch(TF.avg_pool2d, x, *args))


@pytest.mark.parametrize("shape", [(1, 1, 40, 70), (1, 3, 17, 33), (5, 2, 9, 64)])
def test_thread_count_does_not_change_bits(rng, num_threads, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    calls = [lambda: F.max_pool2d(x, 3, 2, 1), lambda: F.avg_pool2d(x, 3, 1, 1, False, False),
             lambda: F.adaptive_avg_pool2d(x, 1), lambda: F.max_pool2d(x, 2, 2, 0, 1, True)]
    num_threads(1)
    one = [call() for call in calls]
    for threads in (2, 3):
        num_threads(threads)
        for call, expected in zip(calls, one):
            np.testing.assert_array_equal(call(), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(1, 1), (7, 7), (3, 11), (23, 45), (300, 301)])
def test_global_average_pool_matches_torch_and_float64(rng, dtype, size):
    x = (rng.standard_normal((2, 3) + size) + 0.25).astype(dtype)
    ours = F.adaptive_avg_pool2d(x, 1)
    assert_close(ours, _torch(TF.adaptive_avg_pool2d, x, 1))
    exact = x.astype(np.longdouble).mean(axis=(2, 3), keepdims=True)
    bound = 1e-6 if dtype == np.float32 else 1e-14
    assert np.abs(ours - exact).max() <= bound * np.abs(exact).max()


def test_global_average_pool_propagates_nan_and_inf(rng):
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    x[0, 0, 4, 4] = np.nan
    x[0, 1, 0, 0] = np.inf
    x[0, 2, 1, 1], x[0, 2, 2, 2] = np.inf, -np.inf
    ours = F.adaptive_avg_pool2d(x, 1)[0, :, 0, 0]
    assert np.isnan(ours[0]) and np.isposinf(ours[1]) and np.isnan(ours[2]) and np.isfinite(ours[3])


def test_repeated_arguments_are_checked_every_call():
    """Remembered argument checks (plain ints) still refuse bad values, and are not fooled by
    equal-comparing values of another type."""
    x = np.zeros((1, 1, 8, 8), np.float32)
    assert F.max_pool2d(x, 2).shape == (1, 1, 4, 4)
    with pytest.raises(TypeError, match="kernel_size"):
        F.max_pool2d(x, 2.0)
    with pytest.raises(TypeError, match="kernel_size"):
        F.max_pool2d(x, True)
    for _ in range(2):
        with pytest.raises(ValueError, match="padding"):
            F.avg_pool2d(x, 2, 2, 2)


def test_indices_and_unpool_do_not_depend_on_the_thread_count(rng, num_threads):
    """max pool with indices and max_unpool run a task per output row / plane on parallel_for."""
    x = rng.standard_normal((3, 4, 21, 34)).astype(np.float32)
    x[0, 1, 5, 7] = np.nan
    num_threads(1)
    out, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    unpooled = F.max_unpool2d(out, indices, 3, 2, 1, output_size=x.shape[2:])
    expected_out, expected_indices = TF.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    _same_bits(out, expected_out.numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    for threads in (2, 3):
        num_threads(threads)
        again, again_indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        _same_bits(again, out)
        np.testing.assert_array_equal(again_indices, indices)
        _same_bits(F.max_unpool2d(out, indices, 3, 2, 1, output_size=x.shape[2:]), unpooled)
