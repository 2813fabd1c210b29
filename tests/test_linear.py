"""linear against torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

DTYPES = [np.float32, np.float64]


def torch_linear(x, w, b=None):
    tensor = lambda a: None if a is None else torch.from_numpy(np.array(a))  # noqa: E731
    return TF.linear(tensor(x), tensor(w), tensor(b)).numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_shape", [(7,), (3, 7), (2, 3, 7), (2, 1, 3, 7), (1, 2, 2, 3, 7), (0, 7), (2, 0, 7)])
@pytest.mark.parametrize("bias_shape", [None, (5,), (1,), ()])
def test_linear_matches_torch(input_shape, bias_shape, dtype, rng):
    x = rng.uniform(-1, 1, input_shape).astype(dtype)
    w = rng.uniform(-1, 1, (5, 7)).astype(dtype)
    b = None if bias_shape is None else rng.uniform(-1, 1, bias_shape).astype(dtype)
    result = F.linear(x, w, b)
    assert result.shape == input_shape[:-1] + (5,)
    assert_close(result, torch_linear(x, w, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_shape", [(7,), (3, 7), (2, 3, 7)])
def test_linear_one_dimensional_weight_as_torch(input_shape, dtype, rng):
    x = rng.uniform(-1, 1, input_shape).astype(dtype)
    w = rng.uniform(-1, 1, 7).astype(dtype)
    assert_close(F.linear(x, w), torch_linear(x, w))


def test_linear_zero_in_features_gives_bias(rng):
    b = rng.uniform(-1, 1, 3)
    assert_close(F.linear(np.zeros((2, 0)), np.zeros((3, 0)), b), torch_linear(np.zeros((2, 0)), np.zeros((3, 0)), b))


def test_linear_non_contiguous_and_nan(rng):
    x = rng.uniform(-1, 1, (6, 4, 9))[::-1, ::2].transpose(1, 0, 2)
    w = rng.uniform(-1, 1, (9, 5)).T  # a transposed (Fortran-ordered) weight
    b = rng.uniform(-1, 1, 10)[::2]
    x[0, 1, 2] = np.nan
    expected = torch_linear(np.ascontiguousarray(x), np.ascontiguousarray(w), b.copy())
    assert np.isnan(expected[0, 1]).all()
    assert_close(F.linear(x, w, b), expected)


@settings(max_examples=200, deadline=None)
@given(leading=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
       in_features=st.integers(1, 12), out_features=st.integers(1, 6), bias=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_linear_random_shapes_match_torch(leading, in_features, out_features, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, leading + (in_features,)).astype(dtype)
    w = rng.uniform(-1, 1, (out_features, in_features)).astype(dtype)
    b = rng.uniform(-1, 1, out_features).astype(dtype) if bias else None
    assert_close(F.linear(x, w, b), torch_linear(x, w, b))


@pytest.mark.parametrize("x, w, b, error, match", [
    (np.zeros((2, 5)), np.zeros((3, 4)), None, ValueError, "input with 4 features"),
    (np.zeros(()), np.zeros((3, 1)), None, ValueError, "input"),
    (np.zeros((2, 4)), np.zeros((1, 3, 4)), None, ValueError, "weight"),
    (np.zeros((2, 4)), np.zeros(()), None, ValueError, "weight"),
    (np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4), ValueError, "bias"),
    (np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((2, 3)), ValueError, "bias"),
    (np.zeros((2, 4)), np.zeros(4), np.zeros(()), ValueError, "bias"),
    (np.zeros((2, 4)), np.zeros((3, 4), np.float32), None, TypeError, "weight"),
    (np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(3, np.float32), TypeError, "bias"),
    (np.zeros((2, 4), np.int64), np.zeros((3, 4)), None, TypeError, "input"),
    (np.zeros((2, 4)), np.zeros((3, 4), np.complex128), None, TypeError, "weight"),
    (np.zeros((2, 4)), None, None, TypeError, "weight"),
])
def test_linear_errors(x, w, b, error, match):
    with pytest.raises(error, match=match):
        F.linear(x, w, b)
