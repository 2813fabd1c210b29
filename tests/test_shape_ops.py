"""flatten, pixel_shuffle, pixel_unshuffle and channel_shuffle against torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    """torch only computes references here; one thread keeps its many tiny calls fast on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def t(x):
    return torch.from_numpy(np.array(x, order="C"))


def assert_same(actual, expected):
    """Pure data movement: bit-identical to torch."""
    assert isinstance(actual, np.ndarray)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


# ---------------------------------------------------------------------------------------------
# flatten
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 0, 2), (7,)])
def test_flatten_every_dim_pair(shape, rng):
    x = rng.standard_normal(shape)
    ndim = len(shape)
    for start in range(-ndim, ndim):
        for end in range(-ndim, ndim):
            if start % ndim > end % ndim:
                continue
            assert_same(F.flatten(x, start, end), torch.flatten(t(x), start, end).numpy())


def test_flatten_defaults_and_keywords(rng):
    x = rng.standard_normal((2, 3, 4))
    assert_same(F.flatten(x), torch.flatten(t(x)).numpy())
    assert_same(F.flatten(x, start_dim=1), torch.flatten(t(x), start_dim=1).numpy())
    assert_same(F.flatten(x, end_dim=-2), torch.flatten(t(x), end_dim=-2).numpy())


@pytest.mark.parametrize("start, end", [(0, -1), (0, 0), (-1, -1)])
def test_flatten_0d(start, end):
    x = np.array(2.5)
    assert_same(F.flatten(x, start, end), torch.flatten(torch.tensor(2.5, dtype=torch.float64), start, end).numpy())


def test_flatten_is_a_view_of_contiguous_input(rng):
    x = rng.standard_normal((2, 3, 4))
    assert np.shares_memory(F.flatten(x, 1), x)


def test_flatten_non_contiguous_and_any_dtype(rng):
    x = rng.standard_normal((4, 5, 6)).transpose(2, 0, 1)[:, ::-1]
    assert_same(F.flatten(x, 1), torch.flatten(t(x), 1).numpy())
    ints = np.arange(24).reshape(2, 3, 4)
    assert_same(F.flatten(ints, 0, 1), torch.flatten(torch.from_numpy(ints), 0, 1).numpy())


@pytest.mark.parametrize("start, end, error, match", [
    (3, -1, ValueError, "start_dim"),
    (-4, -1, ValueError, "start_dim"),
    (0, 3, ValueError, "end_dim"),
    (2, 1, ValueError, "start_dim"),
    (1.0, 2, TypeError, "start_dim"),
    (0, "1", TypeError, "end_dim"),
])
def test_flatten_errors(start, end, error, match):
    with pytest.raises(error, match=match):
        F.flatten(np.zeros((2, 3, 4)), start, end)


def test_flatten_0d_out_of_range():
    with pytest.raises(ValueError, match="start_dim"):
        F.flatten(np.array(1.0), 1)


# ---------------------------------------------------------------------------------------------
# pixel_shuffle / pixel_unshuffle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, factor", [
    ((2, 12, 5, 7), 2), ((1, 27, 4, 3), 3), ((8, 3, 5), 2), ((2, 3, 8, 4, 5), 2),
    ((2, 5, 3, 4), 1), ((1, 32, 3, 3), 4), ((0, 4, 3, 3), 2), ((2, 4, 0, 3), 2),
])
def test_pixel_shuffle_matches_torch(shape, factor, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    assert_same(F.pixel_shuffle(x, factor), TF.pixel_shuffle(t(x), factor).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, factor", [
    ((2, 3, 10, 14), 2), ((2, 9, 6), 3), ((2, 3, 4, 8, 4), 2), ((2, 3, 4, 4), 1), ((1, 2, 12, 8), 4),
])
def test_pixel_unshuffle_matches_torch(shape, factor, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    assert_same(F.pixel_unshuffle(x, factor), TF.pixel_unshuffle(t(x), factor).numpy())


@pytest.mark.parametrize("shape", [(0, 4, 4, 4), (1, 0, 4, 4)])
def test_pixel_unshuffle_empty_input_has_the_unshuffled_shape(shape):
    # torch returns a copy of an empty input unchanged, shape included; the unshuffled shape is the right one.
    out = F.pixel_unshuffle(np.zeros(shape), 2)
    assert out.shape == (shape[0], shape[1] * 4, 2, 2)


def test_pixel_unshuffle_inverts_pixel_shuffle(rng):
    x = rng.standard_normal((2, 18, 5, 4))
    assert np.array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 3), 3), x)


@pytest.mark.parametrize("op, factor_name", [(F.pixel_shuffle, "upscale_factor"),
                                             (F.pixel_unshuffle, "downscale_factor")])
@pytest.mark.parametrize("layout", ["transposed", "reversed", "sliced"])
def test_pixel_shuffles_non_contiguous(op, factor_name, layout, rng):
    base = rng.standard_normal((3, 8, 12, 10)).astype(np.float32)
    x = {"transposed": base.transpose(0, 1, 3, 2), "reversed": base[::-1, :, ::-1],
         "sliced": base[:, ::2, 2:10, 1:9]}[layout]
    torch_op = TF.pixel_shuffle if op is F.pixel_shuffle else TF.pixel_unshuffle
    assert_same(op(x, **{factor_name: 2}), torch_op(t(x), 2).numpy())


@pytest.mark.parametrize("op", [F.pixel_shuffle, F.pixel_unshuffle])
def test_pixel_shuffles_same_bits_with_1_and_2_threads(op, num_threads, rng):
    x = rng.standard_normal((3, 36, 97, 101)).astype(np.float32)[:, :, :96, :99]
    num_threads(1)
    one = op(x, 3)
    num_threads(2)
    two = op(x, 3)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("shape, factor, match", [
    ((12, 5), 2, "input"),
    ((2, 6, 3, 3), 2, "upscale_factor"),  # 6 channels not divisible by 4
    ((2, 4, 3, 3), 0, "upscale_factor"),
    ((2, 4, 3, 3), -2, "upscale_factor"),
])
def test_pixel_shuffle_errors(shape, factor, match):
    with pytest.raises(ValueError, match=match):
        F.pixel_shuffle(np.zeros(shape), factor)


@pytest.mark.parametrize("shape, factor, match", [
    ((4, 6), 2, "input"),
    ((2, 3, 5, 4), 2, "height"),
    ((2, 3, 4, 5), 2, "width"),
    ((2, 3, 4, 4), 0, "downscale_factor"),
])
def test_pixel_unshuffle_errors(shape, factor, match):
    with pytest.raises(ValueError, match=match):
        F.pixel_unshuffle(np.zeros(shape), factor)


@pytest.mark.parametrize("op, name", [(F.pixel_shuffle, "upscale_factor"), (F.pixel_unshuffle, "downscale_factor"),
                                      (F.channel_shuffle, "groups")])
def test_factor_must_be_int(op, name):
    with pytest.raises(TypeError, match=name):
        op(np.zeros((1, 4, 4, 4)), 2.0)


@pytest.mark.parametrize("op", [F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle])
def test_rejects_non_float(op):
    with pytest.raises(TypeError, match="input"):
        op(np.zeros((1, 4, 4, 4), dtype=np.int32), 2)


# ---------------------------------------------------------------------------------------------
# channel_shuffle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, groups", [
    ((2, 6, 5), 3), ((1, 12, 4, 5), 4), ((2, 12, 4, 5), 12), ((2, 8, 3, 2, 2), 2), ((3, 7, 5, 5), 1),
    ((0, 6, 3, 3), 2), ((2, 0, 3, 3), 3),
])
def test_channel_shuffle_matches_torch(shape, groups, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    assert_same(F.channel_shuffle(x, groups), TF.channel_shuffle(t(x), groups).numpy())


def test_channel_shuffle_non_contiguous(rng):
    x = rng.standard_normal((2, 5, 12, 6)).transpose(0, 2, 1, 3)[:, :, ::-1]
    assert_same(F.channel_shuffle(x, 3), TF.channel_shuffle(t(x), 3).numpy())


@pytest.mark.parametrize("shape, groups", [((4, 6), 2), ((2, 6, 5), 4), ((2, 6, 5), 0), ((2, 6, 5), -3)])
def test_channel_shuffle_errors(shape, groups):
    with pytest.raises(ValueError, match="input" if len(shape) < 3 else "groups"):
        F.channel_shuffle(np.zeros(shape), groups)


@settings(max_examples=200, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    channels=st.integers(1, 4), factor=st.integers(1, 3),
    height=st.integers(1, 6), width=st.integers(1, 6),
    groups=st.integers(1, 4), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes_match_torch(lead, channels, factor, height, width, groups, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, channels * factor * factor, height, width)).astype(dtype)
    assert_same(F.pixel_shuffle(x, factor), TF.pixel_shuffle(t(x), factor).numpy())
    y = rng.standard_normal((*lead, channels, height * factor, width * factor)).astype(dtype)
    assert_same(F.pixel_unshuffle(y, factor), TF.pixel_unshuffle(t(y), factor).numpy())
    z = rng.standard_normal((lead[0] if lead else 2, channels * groups, height, width)).astype(dtype)
    assert_same(F.channel_shuffle(z, groups), TF.channel_shuffle(t(z), groups).numpy())


@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_concatenate_kernel_equals_numpy(num_threads, rng):
    """The graph's cat copies rows of bytes in chunks (layout.concatenate): pieces empty, shorter and
    longer than a chunk (32 KiB), several chunks, any number of rows: np.concatenate's bytes."""
    from pyconv._kernels.layout import concatenate
    for rows, widths in [(1, [3, 0, 40000, 5]), (4, [70000, 1]), (3, [0, 0, 8]), (2, [32768, 32768]), (0, [4, 4])]:
        pieces = [rng.integers(0, 256, (rows, w), dtype=np.uint8) for w in widths]
        out = np.full((rows, sum(widths)), 7, np.uint8)
        concatenate(pieces, out, num_threads)
        np.testing.assert_array_equal(out, np.concatenate(pieces, axis=1))
    with pytest.raises(ValueError, match="do not fill"):
        concatenate([np.zeros((2, 3), np.uint8)], np.zeros((2, 4), np.uint8), 1)
    with pytest.raises(ValueError, match="expected pieces of 2 rows"):
        concatenate([np.zeros((3, 4), np.uint8)], np.zeros((2, 4), np.uint8), 1)
