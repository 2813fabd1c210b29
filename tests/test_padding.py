"""pad against torch.nn.functional.pad: every mode, negative pads, errors, threads, layouts."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
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
INDEXED_MODES = ["reflect", "replicate", "circular"]


def torch_pad(x, pad, mode="constant", value=None):
    return TF.pad(torch.from_numpy(np.array(x, order="C")), pad, mode=mode, value=value).numpy()


def assert_same(actual, expected):
    """Padding moves values: the result must be bit-identical to torch's (NaN where torch has NaN)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


# (input shape, pad) per number of padded dims, including negative pads (crops)
INDEXED_CASES = [
    ((3, 7), (2, 3)),
    ((2, 3, 7), (0, 6)),
    ((2, 3, 7), (-2, 3)),
    ((2, 3, 7), (4, -3)),
    ((2, 3, 7), (-1, -2)),
    ((3, 5, 7), (1, 2, 3, 0)),
    ((2, 3, 5, 7), (2, 1, 0, 4)),
    ((2, 3, 5, 7), (-2, 3, 2, -1)),
    ((1, 4, 6), (6, 6, 4, 3)),
    ((2, 3, 4, 5, 6), (1, 2, 3, 1, 0, 2)),
    ((3, 4, 5, 6), (2, 0, 1, 2, 3, 3)),
    ((2, 2, 4, 5, 6), (-1, 2, 1, -2, 2, -1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", INDEXED_MODES)
@pytest.mark.parametrize("shape, pad", INDEXED_CASES)
def test_indexed_modes_match_torch(shape, pad, mode, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    sizes = shape[len(shape) - len(pad) // 2:][::-1]
    if mode == "reflect" and any(p >= s for i, s in enumerate(sizes) for p in pad[2 * i:2 * i + 2]):
        with pytest.raises(RuntimeError):
            torch_pad(x, pad, mode)
        with pytest.raises(ValueError, match="reflect pads must be smaller"):
            F.pad(x, pad, mode=mode)
        return
    assert_same(F.pad(x, pad, mode=mode), torch_pad(x, pad, mode))


CONSTANT_CASES = [
    ((5,), (2, 3)),
    ((2, 3, 7), (1, 2)),
    ((2, 3, 7), (-2, -5)),  # crops to an empty dim
    ((2, 3, 5, 7), (1, 2, 3, 4)),
    ((2, 3, 5, 7), (-1, 2, 0, -3)),
    ((2, 3, 4, 5, 6), (1, 0, 2, 1, 0, 3)),
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 1)),  # pads batch and channel dims too
    ((2, 3, 4, 5), (0, 0, -1, 2, 1, -1, 2, 0)),
    ((3, 0, 4), (1, 2)),  # empty input: all fill
    ((3, 4), ()),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [None, 0, -2.5, 7, float("nan"), float("-inf")])
@pytest.mark.parametrize("shape, pad", CONSTANT_CASES)
def test_constant_matches_torch(shape, pad, value, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    assert_same(F.pad(x, pad, value=value), torch_pad(x, pad, "constant", value))


def test_constant_0d_input():
    x = np.array(3.0)
    assert_same(F.pad(x, ()), torch_pad(x, ()))


@pytest.mark.parametrize("mode", INDEXED_MODES)
def test_value_zero_accepted_as_torch(mode, rng):
    x = rng.standard_normal((2, 3, 6))
    assert_same(F.pad(x, (1, 2), mode=mode, value=0), torch_pad(x, (1, 2), mode, 0))


@pytest.mark.parametrize("mode", INDEXED_MODES)
def test_batch_zero(mode):
    x = np.zeros((0, 3, 5, 6), dtype=np.float32)
    out = F.pad(x, (1, 2, 2, 1), mode=mode)
    assert out.shape == torch_pad(x, (1, 2, 2, 1), mode).shape == (0, 3, 8, 9)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_empty_padded_dim_output(mode, rng):
    # torch accepts a padded dim cropped to 0 while another padded dim keeps elements
    x = rng.standard_normal((1, 2, 4, 5))
    assert_same(F.pad(x, (0, 0, -2, -2), mode=mode), torch_pad(x, (0, 0, -2, -2), mode))


def test_circular_empty_channels():
    x = np.zeros((2, 0, 5))
    assert_same(F.pad(x, (1, 2), mode="circular"), torch_pad(x, (1, 2), "circular"))


@pytest.mark.parametrize("mode", ["constant"] + INDEXED_MODES)
def test_nan_and_inf_move_like_values(mode, rng):
    x = rng.standard_normal((2, 3, 6, 7))
    x[0, 1, 0, 0] = np.nan
    x[1, 2, 5, 6] = np.inf
    x[1, 0, 2, 3] = -np.inf
    assert_same(F.pad(x, (2, 3, 1, 4), mode=mode), torch_pad(x, (2, 3, 1, 4), mode))


@pytest.mark.parametrize("mode", ["constant"] + INDEXED_MODES)
@pytest.mark.parametrize("layout", ["transposed", "sliced", "reversed", "fortran"])
def test_non_contiguous_input(mode, layout, rng):
    base = rng.standard_normal((4, 6, 9, 10)).astype(np.float32)
    x = {
        "transposed": base.transpose(0, 1, 3, 2),
        "sliced": base[::2, 1:5, ::3, 1:],
        "reversed": base[:, :, ::-1, ::-2],
        "fortran": np.asfortranarray(base),
    }[layout]
    assert_same(F.pad(x, (1, 2, 2, 1), mode=mode), torch_pad(x, (1, 2, 2, 1), mode))


def test_byte_swapped_input(rng):
    x = rng.standard_normal((2, 3, 5)).astype(">f4")
    assert_same(F.pad(x, (2, 1), mode="reflect"), torch_pad(x.astype(np.float32), (2, 1), "reflect"))


@pytest.mark.parametrize("mode", ["constant"] + INDEXED_MODES)
def test_same_bits_with_1_and_2_threads(mode, num_threads, rng):
    x = rng.standard_normal((3, 5, 97, 101)).astype(np.float32)
    num_threads(1)
    one = F.pad(x, (3, 4, 2, 5), mode=mode, value=None)
    num_threads(2)
    two = F.pad(x, (3, 4, 2, 5), mode=mode, value=None)
    assert np.array_equal(one, two)
    assert_same(two, torch_pad(x, (3, 4, 2, 5), mode))


def test_returns_new_array(rng):
    x = rng.standard_normal((2, 3, 4))
    out = F.pad(x, (0, 0))
    out[...] = 0
    assert np.any(x != 0)


# ---------------------------------------------------------------------------------------------
# errors: each names the argument
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad, error, match", [
    ((1,), ValueError, "pad"),
    ((1, 2, 3), ValueError, "pad"),
    ((1,) * 8, ValueError, "pad"),
    ((1.0, 2), TypeError, "pad"),
    ((True, 2), TypeError, "pad"),
    (2, TypeError, "pad"),
    ((-3, -2, 0, 0), ValueError, "pad"),  # crops more than the dim holds
])
def test_constant_pad_errors(pad, error, match):
    with pytest.raises(error, match=match):
        F.pad(np.zeros((2, 3, 4)), pad)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        F.pad(np.zeros((2, 3, 4)), (1, 1), mode="zeros")


@pytest.mark.parametrize("mode", INDEXED_MODES)
def test_value_with_indexed_mode(mode):
    with pytest.raises(ValueError, match="value"):
        F.pad(np.zeros((2, 3, 4)), (1, 1), mode=mode, value=1.0)


@pytest.mark.parametrize("value", [1e40, -3.5e38])
def test_value_overflowing_float32(value):
    with pytest.raises(ValueError, match="value"):
        F.pad(np.zeros((2, 3), dtype=np.float32), (1, 1), value=value)


def test_value_not_a_number():
    with pytest.raises(TypeError, match="value"):
        F.pad(np.zeros((2, 3)), (1, 1), value="1")


@pytest.mark.parametrize("mode", INDEXED_MODES)
@pytest.mark.parametrize("shape, pad", [
    ((5,), (1, 1)),  # 1D input
    ((1, 2, 3, 5), (1, 1)),  # 4D input with one padded dim
    ((2, 5), (1, 1, 1, 1)),
    ((1, 2, 3, 4, 5), (1, 1, 1, 1)),
    ((3, 4, 5), (1,) * 6),
    ((1, 1, 2, 3, 4, 5), (1,) * 6),
])
def test_indexed_mode_input_rank(mode, shape, pad):
    with pytest.raises(ValueError, match="input"):
        F.pad(np.zeros(shape), pad, mode=mode)


@pytest.mark.parametrize("pad", [(5, 0), (0, 5), (7, 1)])
def test_reflect_pad_not_smaller_than_dim(pad):
    with pytest.raises(ValueError, match="pad"):
        F.pad(np.zeros((2, 3, 5)), pad, mode="reflect")


@pytest.mark.parametrize("pad", [(6, 0), (0, 6), (-2, 4), (4, -2)])
def test_circular_wrapping_more_than_once(pad):
    with pytest.raises(ValueError, match="pad"):
        F.pad(np.zeros((2, 3, 5)), pad, mode="circular")


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("shape", [(2, 0, 5), (0, 5), (2, 3, 0)])
def test_indexed_mode_empty_dims(mode, shape):
    with pytest.raises(ValueError, match="input"):
        F.pad(np.zeros(shape), (1, 1), mode=mode)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_indexed_mode_nothing_left(mode):
    with pytest.raises(ValueError, match="pad"):
        F.pad(np.zeros((2, 3, 5)), (-2, -3), mode=mode)


@pytest.mark.parametrize("mode", INDEXED_MODES)
def test_negative_output_size(mode):
    with pytest.raises(ValueError, match="pad"):
        F.pad(np.zeros((1, 2, 4, 5)), (0, 0, -3, -2), mode=mode)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex64, np.float16])
def test_rejects_non_float(dtype):
    with pytest.raises(TypeError, match="input"):
        F.pad(np.zeros((2, 3), dtype=dtype), (1, 1))


# ---------------------------------------------------------------------------------------------
# random configurations against torch
# ---------------------------------------------------------------------------------------------


@st.composite
def pad_configs(draw):
    mode = draw(st.sampled_from(["constant"] + INDEXED_MODES))
    if mode == "constant":
        padded = draw(st.integers(0, 4))
        ndim = draw(st.integers(max(padded, 1), 5))
    else:
        padded = draw(st.integers(1, 3))
        ndim = padded + draw(st.integers(1, 2))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    pad = []
    for size in reversed(shape[ndim - padded:]):
        low, high = {"constant": (-size, 5), "reflect": (-size + 1, size - 1),
                     "replicate": (-size + 1, 7), "circular": (-size + 1, size)}[mode]
        pad += [draw(st.integers(low, high)), draw(st.integers(low, high))]
    value = draw(st.sampled_from([None, 0.0, -1.5, 3.0])) if mode == "constant" else None
    dtype = draw(st.sampled_from(DTYPES))
    return mode, shape, tuple(pad), value, dtype


@settings(max_examples=300, deadline=None)
@given(pad_configs(), st.integers(0, 2**32 - 1))
def test_random_configs_match_torch(config, seed):
    mode, shape, pad, value, dtype = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    try:
        expected = torch_pad(x, pad, mode, value)
    except (RuntimeError, NotImplementedError):
        with pytest.raises(ValueError):
            F.pad(x, pad, mode=mode, value=value)
        return
    sizes = shape[len(shape) - len(pad) // 2:][::-1]
    if mode == "circular":
        # torch returns unspecified values (or raises) when a pad wraps around the cropped dim more than once
        kept = [s - max(-pad[2 * i], 0) - max(-pad[2 * i + 1], 0) for i, s in enumerate(sizes)]
        assume(all(max(pad[2 * i], pad[2 * i + 1], 0) <= max(k, 0) for i, k in enumerate(kept)))
    assert_same(F.pad(x, pad, mode=mode, value=value), expected)
