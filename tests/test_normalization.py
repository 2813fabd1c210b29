"""batch_norm (inference), group_norm and layer_norm against torch."""
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


def tensor(a):
    return None if a is None else torch.from_numpy(np.array(a))


def channel_params(rng, channels, dtype, affine):
    weight = rng.uniform(-2, 2, channels).astype(dtype) if affine in ("weight", "both") else None
    bias = rng.uniform(-2, 2, channels).astype(dtype) if affine in ("bias", "both") else None
    return weight, bias


# ---------------------------------------------------------------- batch_norm

BATCH_NORM_SHAPES = [(4, 3), (2, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4), (1, 3, 1, 1, 1, 2), (0, 3, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
@pytest.mark.parametrize("eps", [1e-5, 0.1, 0.0])
def test_batch_norm_matches_torch(shape, affine, eps, dtype, rng):
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    mean = rng.standard_normal(3).astype(dtype)
    var = rng.uniform(0.2, 3, 3).astype(dtype)
    weight, bias = channel_params(rng, 3, dtype, affine)
    expected = TF.batch_norm(tensor(x), tensor(mean), tensor(var), tensor(weight), tensor(bias), eps=eps).numpy()
    assert_close(F.batch_norm(x, mean, var, weight, bias, eps=eps), expected)


def test_batch_norm_ignores_momentum_and_takes_non_contiguous(rng):
    x = rng.standard_normal((5, 8, 6, 7))[::2, ::2].transpose(0, 1, 3, 2)
    mean, var, weight, bias = rng.standard_normal(8)[::2], rng.uniform(0.5, 2, 8)[::2], rng.standard_normal(4), None
    expected = TF.batch_norm(tensor(x), tensor(mean), tensor(var), tensor(weight), momentum=0.7).numpy()
    assert_close(F.batch_norm(x, mean, var, weight, bias, momentum=0.7), expected)


def test_batch_norm_nan_inf_and_negative_variance_as_torch():
    x = np.array([[np.nan, 1.0, np.inf], [-np.inf, 2.0, 3.0]], np.float32)
    mean = np.zeros(3, np.float32)
    var = np.array([1.0, -4.0, 0.0], np.float32)  # sqrt of a negative: NaN; zero variance with eps=0: Inf
    expected = TF.batch_norm(tensor(x), tensor(mean), tensor(var), eps=0.0).numpy()
    assert_close(F.batch_norm(x, mean, var, eps=0.0), expected)


def test_batch_norm_thread_count_independent(num_threads, rng):
    x = rng.standard_normal((3, 7, 31, 29)).astype(np.float32)
    args = rng.standard_normal(7).astype(np.float32), rng.uniform(0.5, 2, 7).astype(np.float32)
    num_threads(1)
    one = F.batch_norm(x, *args)
    num_threads(2)
    assert np.array_equal(one, F.batch_norm(x, *args))


@pytest.mark.parametrize("call, error, match", [
    (lambda x, s: F.batch_norm(x, s, s, training=True), ValueError, "training"),
    (lambda x, s: F.batch_norm(x, None, s), ValueError, "running_mean"),
    (lambda x, s: F.batch_norm(x, s, None), ValueError, "running_var"),
    (lambda x, s: F.batch_norm(x[0, 0], s, s), ValueError, "input"),
    (lambda x, s: F.batch_norm(x, np.zeros(4), s), ValueError, "running_mean"),
    (lambda x, s: F.batch_norm(x, s, np.zeros(2)), ValueError, "running_var"),
    (lambda x, s: F.batch_norm(x, s, s, np.zeros(4)), ValueError, "weight"),
    (lambda x, s: F.batch_norm(x, s, s, None, np.zeros((3, 1))), ValueError, "bias"),
    (lambda x, s: F.batch_norm(x, s.reshape(3, 1), s), ValueError, "running_mean"),
    (lambda x, s: F.batch_norm(x, s.astype(np.float32), s), TypeError, "running_mean"),
    (lambda x, s: F.batch_norm(x, s, s, np.ones(3, np.float32)), TypeError, "weight"),
    (lambda x, s: F.batch_norm(x.astype(np.int32), s, s), TypeError, "input"),
    (lambda x, s: F.batch_norm(x, s, s, eps=-1e-3), ValueError, "eps"),
    (lambda x, s: F.batch_norm(x, s, s, eps="1"), TypeError, "eps"),
    (lambda x, s: F.batch_norm(x, s, s, momentum=None), TypeError, "momentum"),
])
def test_batch_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(np.ones((2, 3, 4)), np.ones(3))


# ---------------------------------------------------------------- group_norm

def torch_group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """torch's result; for float32 groups of one element, torch's float64 result in float32.

    A one-element group normalises to exactly 0 (output = bias), but torch's float32
    kernel computes x * rstd - mean * rstd, cancellation noise amplified by
    1 / sqrt(eps) (~6e-5 for |x| ~ 3); pyconv's statistics in double give the exact 0.
    """
    group_size = x.shape[1] // num_groups * int(np.prod(x.shape[2:]))
    if x.dtype == np.float32 and group_size == 1:
        as64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
        return torch_group_norm(x.astype(np.float64), num_groups, as64(weight), as64(bias), eps).astype(np.float32)
    return TF.group_norm(tensor(x), num_groups, tensor(weight), tensor(bias), eps=eps).numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 6), (2, 6, 5), (3, 6, 4, 5), (1, 6, 2, 3, 4), (0, 6, 3), (2, 0, 3), (1, 6, 2)])
@pytest.mark.parametrize("num_groups", [1, 2, 3, 6])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_group_norm_matches_torch(shape, num_groups, affine, dtype, rng):
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    weight, bias = channel_params(rng, shape[1], dtype, affine)
    for eps in (1e-5, 0.5):
        expected = torch_group_norm(x, num_groups, weight, bias, eps)
        assert_close(F.group_norm(x, num_groups, weight, bias, eps=eps), expected)


def test_group_norm_float32_with_large_offset_stays_accurate(rng):
    # Statistics in double: an offset 1000x the spread costs float32 nothing beyond its rounding.
    x = (rng.standard_normal((2, 8, 50)) * 0.5 + 500).astype(np.float32)
    reference = TF.group_norm(tensor(x.astype(np.float64)), 4).numpy()
    assert_close(F.group_norm(x, 4), reference.astype(np.float32), rtol=1e-4, atol=1e-3)


@settings(max_examples=200, deadline=None)
@given(shape=hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=5), data=st.data(),
       dtype=st.sampled_from(DTYPES), affine=st.booleans(), seed=st.integers(0, 2**16))
def test_group_norm_random_shapes_match_torch(shape, data, dtype, affine, seed):
    divisors = [g for g in range(1, shape[1] + 1) if shape[1] % g == 0]
    num_groups = data.draw(st.sampled_from(divisors))
    if shape[0] * shape[1] // num_groups * int(np.prod(shape[2:])) == 1:
        return  # torch refuses a single value per group (tested in test_group_norm_errors)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + rng.uniform(-5, 5)).astype(dtype)
    weight, bias = channel_params(rng, shape[1], dtype, "both" if affine else "none")
    assert_close(F.group_norm(x, num_groups, weight, bias), torch_group_norm(x, num_groups, weight, bias))


def test_group_norm_non_contiguous_nan_and_threads(num_threads, rng):
    x = rng.standard_normal((4, 12, 20, 30)).transpose(0, 1, 3, 2)[:, ::-1]
    x[1, 2, 3, 4] = np.nan  # poisons its group (channels 0..2 of sample 1), as in torch
    weight, bias = rng.standard_normal(12), rng.standard_normal(12)
    expected = TF.group_norm(tensor(x), 4, tensor(weight), tensor(bias)).numpy()
    num_threads(1)
    one = F.group_norm(x, 4, weight, bias)
    num_threads(2)
    assert np.array_equal(one, F.group_norm(x, 4, weight, bias), equal_nan=True)
    assert np.isnan(one[1, :3]).all() and not np.isnan(one[1, 3:]).any()
    assert_close(one, expected)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.group_norm(x[0, 0], 1), ValueError, "input"),
    (lambda x: F.group_norm(x, 4), ValueError, "num_groups"),
    (lambda x: F.group_norm(x, 0), ValueError, "num_groups"),
    (lambda x: F.group_norm(x, -3), ValueError, "num_groups"),
    (lambda x: F.group_norm(x, 3.0), TypeError, "num_groups"),
    (lambda x: F.group_norm(np.ones((1, 4)), 4), ValueError, "more than 1 value"),
    (lambda x: F.group_norm(x, 3, np.ones(3)), ValueError, "weight"),
    (lambda x: F.group_norm(x, 3, None, np.ones((6, 1))), ValueError, "bias"),
    (lambda x: F.group_norm(x, 3, np.ones(6, np.float32)), TypeError, "weight"),
    (lambda x: F.group_norm(x.astype(np.int64), 3), TypeError, "input"),
    (lambda x: F.group_norm(x, 3, eps=None), TypeError, "eps"),
])
def test_group_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(np.ones((2, 6, 5)))


# ---------------------------------------------------------------- layer_norm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, normalized_shape", [
    ((7,), (7,)), ((3, 7), (7,)), ((2, 3, 5), (5,)), ((2, 3, 5), (3, 5)), ((2, 3, 5), (2, 3, 5)),
    ((2, 3, 4, 5), (4, 5)), ((1, 2, 3, 4, 5), (3, 4, 5)), ((0, 4), (4,)), ((3, 0), (0,)), ((4, 1), (1,)),
])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_layer_norm_matches_torch(shape, normalized_shape, affine, dtype, rng):
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    weight = rng.uniform(-2, 2, normalized_shape).astype(dtype) if affine in ("weight", "both") else None
    bias = rng.uniform(-2, 2, normalized_shape).astype(dtype) if affine in ("bias", "both") else None
    for eps in (1e-5, 0.3):
        expected = TF.layer_norm(tensor(x), normalized_shape, tensor(weight), tensor(bias), eps=eps).numpy()
        assert_close(F.layer_norm(x, normalized_shape, weight, bias, eps=eps), expected)
        assert_close(F.layer_norm(x, list(normalized_shape), weight, bias, eps=eps), expected)


def test_layer_norm_takes_an_int_like_nn_layer_norm(rng):
    x = rng.standard_normal((3, 6))
    assert_close(F.layer_norm(x, 6), TF.layer_norm(tensor(x), (6,)).numpy())


@settings(max_examples=200, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6), data=st.data(),
       dtype=st.sampled_from(DTYPES), affine=st.booleans(), seed=st.integers(0, 2**16))
def test_layer_norm_random_shapes_match_torch(shape, data, dtype, affine, seed):
    count = data.draw(st.integers(1, len(shape)))
    normalized_shape = shape[len(shape) - count:]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + rng.uniform(-5, 5)).astype(dtype)
    weight = rng.standard_normal(normalized_shape).astype(dtype) if affine else None
    bias = rng.standard_normal(normalized_shape).astype(dtype) if affine else None
    expected = TF.layer_norm(tensor(x), normalized_shape, tensor(weight), tensor(bias)).numpy()
    assert_close(F.layer_norm(x, normalized_shape, weight, bias), expected)


def test_layer_norm_non_contiguous_nan_and_threads(num_threads, rng):
    x = rng.standard_normal((40, 30, 20)).transpose(2, 0, 1)[:, ::-1]
    x[3, 4, 5] = np.inf  # its row becomes NaN, as in torch
    weight, bias = rng.standard_normal(30), rng.standard_normal(30)
    expected = TF.layer_norm(tensor(x), (30,), tensor(weight), tensor(bias)).numpy()
    num_threads(1)
    one = F.layer_norm(x, (30,), weight, bias)
    num_threads(2)
    assert np.array_equal(one, F.layer_norm(x, (30,), weight, bias), equal_nan=True)
    assert np.isnan(one[3, 4]).all()
    assert_close(one, expected)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.layer_norm(x, (3, 5)), ValueError, "normalized_shape"),
    (lambda x: F.layer_norm(x, (1, 2, 3, 4)), ValueError, "normalized_shape"),
    (lambda x: F.layer_norm(x, ()), ValueError, "normalized_shape"),
    (lambda x: F.layer_norm(x, (4.0,)), TypeError, "normalized_shape"),
    (lambda x: F.layer_norm(x, None), TypeError, "normalized_shape"),
    (lambda x: F.layer_norm(x, (4,), np.ones(3)), ValueError, "weight"),
    (lambda x: F.layer_norm(x, (3, 4), np.ones(12)), ValueError, "weight"),
    (lambda x: F.layer_norm(x, (4,), None, np.ones((1, 4))), ValueError, "bias"),
    (lambda x: F.layer_norm(x, (4,), np.ones(4, np.float32)), TypeError, "weight"),
    (lambda x: F.layer_norm(x.astype(np.int16), (4,)), TypeError, "input"),
    (lambda x: F.layer_norm(x, (4,), eps="small"), TypeError, "eps"),
])
def test_layer_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(np.ones((2, 3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_cat_channel_affine_equals_concatenate_then_channel_affine(dtype, num_threads, rng):
    """The kernel behind the graph's cat_channel_affine reads each plane from its input: the same bits
    as np.concatenate, then channel_affine (with an activation, NaN, Inf and -0.0 included)."""
    from pyconv._kernels.activation import KINDS
    from pyconv._kernels.normalization import cat_channel_affine, channel_affine
    pieces = [rng.standard_normal((3, c, 10)).astype(dtype) for c in (2, 5, 1, 4)]
    pieces[1][0, 2, 3], pieces[2][1, 0, :4], pieces[3][2, 1, 5] = np.nan, -0.0, -np.inf
    scale, shift = rng.standard_normal(12).astype(dtype), rng.standard_normal(12).astype(dtype)
    scale[5] = -1.0
    expected = np.empty((3, 12, 10), dtype)
    channel_affine(np.concatenate(pieces, axis=1), scale, shift, expected, 1, KINDS["silu"])
    out = np.empty_like(expected)
    cat_channel_affine(pieces, scale, shift, out, num_threads, KINDS["silu"])
    assert np.array_equal(out.view(np.uint8), expected.view(np.uint8))
    with pytest.raises(ValueError, match="add up to out's 12 channels"):
        cat_channel_affine(pieces[:3], scale, shift, out, 1)
    with pytest.raises(ValueError, match=r"^cat_channel_affine: expected inputs of out's shape \(3, C, 10\)"):
        cat_channel_affine(pieces[:3] + [np.zeros((3, 4, 9), dtype)], scale, shift, out, 1)
    cat_channel_affine([p[:0] for p in pieces], scale, shift, out[:0], 1)   # empty batch: nothing to do
    with pytest.raises(ValueError, match=r"^channel_affine: expected inputs of out's shape \(3, C, 9\), got \(3, 12, 10\)"):
        channel_affine(expected, scale, shift, np.empty((3, 12, 9), dtype), 1)
