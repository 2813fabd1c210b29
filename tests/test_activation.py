"""Pointwise activations, prelu, softmax/log_softmax and dropout against torch."""
import math
import warnings

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
SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 9), (2, 3, 4, 5), (1, 2, 3, 4, 5)]
# Saturation and threshold regions: sigmoid/tanh tails, softplus threshold (20), exp overflow.
EXTREMES = [-1e4, -100.0, -89.0, -30.0, -20.5, -10.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 10.0, 19.9, 20.1, 30.0, 89.0,
            100.0, 1e4]

# name -> (pyconv op, torch op, the argument combinations tested)
ACTIVATIONS = {
    "relu": (F.relu, TF.relu, [{}]),
    "relu6": (F.relu6, TF.relu6, [{}]),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu,
                   [{}, {"negative_slope": 0.2}, {"negative_slope": 0.0}, {"negative_slope": -1.5},
                    {"negative_slope": 3.0}]),
    "rrelu": (F.rrelu, TF.rrelu,
              [{}, {"lower": 0.1, "upper": 0.6}, {"lower": -0.5, "upper": -0.1}, {"lower": 0.3, "upper": 0.3},
               {"training": False}]),
    "elu": (F.elu, TF.elu, [{}, {"alpha": 0.5}, {"alpha": 2.5}, {"alpha": 0.0}, {"alpha": -1.0}]),
    "selu": (F.selu, TF.selu, [{}]),
    "celu": (F.celu, TF.celu, [{}, {"alpha": 0.5}, {"alpha": 3.0}, {"alpha": -2.0}]),
    "hardtanh": (F.hardtanh, TF.hardtanh,
                 [{}, {"min_val": -2.5, "max_val": 0.5}, {"min_val": 0.0, "max_val": 6.0},
                  {"min_val": 1.0, "max_val": 1.0}]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [{}]),
    "tanh": (F.tanh, torch.tanh, [{}]),
    "hardswish": (F.hardswish, TF.hardswish, [{}]),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, [{}]),
    "silu": (F.silu, TF.silu, [{}]),
    "mish": (F.mish, TF.mish, [{}]),
    "gelu": (F.gelu, TF.gelu, [{}, {"approximate": "none"}, {"approximate": "tanh"}]),
    "softplus": (F.softplus, TF.softplus,
                 [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 5.0}, {"threshold": 0.0}, {"beta": -1.0},
                  {"beta": 3.0, "threshold": -2.0}]),
}
CASES = [(name, kwargs) for name, (_, _, grid) in ACTIVATIONS.items() for kwargs in grid]
INPLACE = [name for name in ACTIVATIONS if name not in ("sigmoid", "tanh", "gelu", "softplus")]


def torch_result(torch_op, x, **kwargs):
    return torch_op(torch.from_numpy(np.array(x)), **kwargs).numpy()


def case_id(case):
    name, kwargs = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items())


# ---------------------------------------------------------------- pointwise activations

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_activation_matches_torch(case, dtype, rng):
    name, kwargs = case
    op, torch_op, _ = ACTIVATIONS[name]
    for shape in SHAPES:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        assert_close(op(x, **kwargs), torch_result(torch_op, x, **kwargs))
    x = np.array(EXTREMES, dtype=dtype)
    assert_close(op(x, **kwargs), torch_result(torch_op, x, **kwargs))


PARAMETERS = {
    "leaky_relu": st.fixed_dictionaries({"negative_slope": st.floats(-3, 3)}),
    "rrelu": st.tuples(st.floats(-1, 1), st.floats(-1, 1)).map(lambda b: {"lower": min(b), "upper": max(b)}),
    "elu": st.fixed_dictionaries({"alpha": st.floats(-3, 3)}),
    "celu": st.fixed_dictionaries({"alpha": st.floats(0.05, 3) | st.floats(-3, -0.05)}),
    "hardtanh": st.tuples(st.floats(-5, 5), st.floats(-5, 5)).map(lambda b: {"min_val": min(b), "max_val": max(b)}),
    "gelu": st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
    "softplus": st.fixed_dictionaries({"beta": st.floats(0.1, 5) | st.floats(-5, -0.1), "threshold": st.floats(-10, 30)}),
}


@st.composite
def activation_calls(draw):
    name = draw(st.sampled_from(sorted(ACTIVATIONS)))
    kwargs = draw(PARAMETERS.get(name, st.just({})))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(-60, 60, width=32)))
    return name, kwargs, x


@settings(max_examples=300, deadline=None)
@given(activation_calls())
def test_activation_random_calls_match_torch(call):
    name, kwargs, x = call
    op, torch_op, _ = ACTIVATIONS[name]
    assert_close(op(x, **kwargs), torch_result(torch_op, x, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_activation_nan_and_inf_propagate_as_in_torch(case, dtype):
    name, kwargs = case
    op, torch_op, _ = ACTIVATIONS[name]
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0] * 5, dtype=dtype)  # long enough for torch's SIMD path
    expected = torch_result(torch_op, x, **kwargs)
    if name == "gelu" and kwargs.get("approximate", "none") == "none" and dtype == np.float32:
        # torch's float32 SIMD erf turns gelu(+inf) into NaN; its scalar path and float64 give +inf, as pyconv does.
        expected = torch_result(torch_op, x.astype(np.float64), **kwargs).astype(dtype)
        assert np.isinf(expected[1])
    assert_close(op(x, **kwargs), expected)


@pytest.mark.parametrize("bounds", [(np.nan, 1.0), (-1.0, np.nan)])
def test_hardtanh_nan_bound_gives_nan_as_in_torch(bounds):
    x = np.linspace(-3, 3, 11)
    expected = torch_result(TF.hardtanh, x, min_val=bounds[0], max_val=bounds[1])
    assert np.isnan(expected).all()
    assert_close(F.hardtanh(x, *bounds), expected)


def test_leaky_relu_nan_slope_as_in_torch():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    assert_close(F.leaky_relu(x, np.nan), torch_result(TF.leaky_relu, x, negative_slope=np.nan))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layout", ["columns", "transposed", "reversed"])
def test_activation_non_contiguous_input(name, layout, rng):
    op, torch_op, _ = ACTIVATIONS[name]
    base = rng.standard_normal((6, 8, 5)).astype(np.float32) * 4
    x = {"columns": base[:, ::2], "transposed": base.transpose(2, 0, 1), "reversed": base[::-1, :, ::-1]}[layout]
    assert not x.flags.c_contiguous
    assert_close(op(x), torch_result(torch_op, x))


def test_activation_accepts_lists_and_empty_arrays():
    assert_close(F.relu([-1.0, 2.0]), np.array([0.0, 2.0]))
    for shape in [(0,), (2, 0, 3)]:
        x = np.zeros(shape, np.float32)
        assert_close(F.gelu(x), torch_result(TF.gelu, x))


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_writes_into_input_and_returns_it(name, rng):
    op, torch_op, grid = ACTIVATIONS[name]
    kwargs = grid[-1]
    for x in [rng.standard_normal((3, 4, 5)) * 4, np.asfortranarray(rng.standard_normal((3, 4, 5)) * 4),
              np.array(-2.5)]:
        expected = torch_result(torch_op, x, **kwargs)
        result = op(x, inplace=True, **kwargs)
        assert result is x
        assert_close(x, expected)


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_refuses_what_it_cannot_write(name):
    op = ACTIVATIONS[name][0]
    with pytest.raises(ValueError, match="contiguous"):
        op(np.zeros((4, 6))[:, ::2], inplace=True)
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        op(read_only, inplace=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        op(np.zeros(3, np.int64), inplace=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        op(np.zeros(3, ">f8"), inplace=True)
    with pytest.raises(TypeError, match="numpy array"):
        op([1.0, 2.0], inplace=True)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_is_thread_count_independent(name, num_threads, rng):
    op = ACTIVATIONS[name][0]
    x = (rng.standard_normal(3 * 16384 + 101) * 5).astype(np.float32)  # several kernel chunks and a tail
    num_threads(1)
    one = op(x)
    num_threads(2)
    two = op(x)
    assert np.array_equal(one, two)
    assert_close(two, torch_result(ACTIVATIONS[name][1], x))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("bad, error, match", [
    (np.zeros(3, np.int32), TypeError, "input"),
    (np.zeros(3, bool), TypeError, "input"),
    (np.zeros(3, np.complex64), TypeError, "input"),
    (np.zeros(3, np.float16), TypeError, "input"),
    (None, TypeError, "input"),
    ("abc", TypeError, "input"),
])
def test_activation_rejects_non_float_input(name, bad, error, match):
    with pytest.raises(error, match=match):
        ACTIVATIONS[name][0](bad)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.hardtanh(x, 2.0, 1.0), ValueError, "min_val"),
    (lambda x: F.hardtanh(x, "a"), TypeError, "min_val"),
    (lambda x: F.hardtanh(x, max_val=None), TypeError, "max_val"),
    (lambda x: F.celu(x, alpha=0.0), ValueError, "alpha"),
    (lambda x: F.celu(x, alpha="1"), TypeError, "alpha"),
    (lambda x: F.elu(x, alpha=None), TypeError, "alpha"),
    (lambda x: F.leaky_relu(x, negative_slope=[0.1]), TypeError, "negative_slope"),
    (lambda x: F.rrelu(x, 0.5, 0.1), ValueError, "lower"),
    (lambda x: F.rrelu(x, training=True), ValueError, "training"),
    (lambda x: F.rrelu(x, lower="0"), TypeError, "lower"),
    (lambda x: F.gelu(x, approximate="erf"), ValueError, "approximate"),
    (lambda x: F.gelu(x, approximate=None), ValueError, "approximate"),
    (lambda x: F.softplus(x, beta="2"), TypeError, "beta"),
    (lambda x: F.softplus(x, threshold=None), TypeError, "threshold"),
])
def test_activation_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(np.zeros(3))


# ---------------------------------------------------------------- prelu

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, weight_shape", [
    ((), (1,)), ((), ()), ((7,), (1,)), ((7,), ()), ((4, 3), (3,)), ((4, 3), (1,)), ((2, 3, 5), (3,)),
    ((2, 3, 4, 5), (3,)), ((2, 3, 4, 5), ()), ((1, 3, 2, 3, 4), (3,)), ((0, 3, 4), (3,)), ((2, 0), (0,)),
])
def test_prelu_matches_torch(shape, weight_shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    w = rng.uniform(-2, 2, weight_shape).astype(dtype)
    expected = TF.prelu(torch.from_numpy(np.array(x)), torch.from_numpy(np.array(w))).numpy()
    assert_close(F.prelu(x, w), expected)


def test_prelu_non_contiguous_nan_and_threads(num_threads, rng):
    x = rng.standard_normal((3, 5, 40, 30)).transpose(0, 1, 3, 2)
    x[0, 1, 2, 3] = np.nan
    w = rng.uniform(-2, 2, 10)[::2]
    expected = TF.prelu(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w.copy())).numpy()
    num_threads(1)
    one = F.prelu(x, w)
    num_threads(2)
    assert np.array_equal(one, F.prelu(x, w), equal_nan=True)
    assert_close(one, expected)


@pytest.mark.parametrize("x, w, error, match", [
    (np.zeros((2, 3)), np.zeros((1, 3)), ValueError, "weight"),
    (np.zeros((2, 3)), np.zeros(2), ValueError, "weight"),
    (np.zeros(3), np.zeros(3), ValueError, "weight"),
    (np.zeros(()), np.zeros(2), ValueError, "weight"),
    (np.zeros((2, 3)), np.zeros(3, np.float32), TypeError, "weight"),
    (np.zeros((2, 3)), np.zeros(3, np.int64), TypeError, "weight"),
    (np.zeros((2, 3), np.int64), np.zeros(3), TypeError, "input"),
])
def test_prelu_errors(x, w, error, match):
    with pytest.raises(error, match=match):
        F.prelu(x, w)


# ---------------------------------------------------------------- softmax / log_softmax

SOFTMAX = [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(), (1,), (9,), (3, 7), (2, 5, 3), (2, 3, 4, 5), (2, 1, 3, 2, 3), (1, 300, 2),
                                   (2, 3, 300)])
def test_softmax_every_dim_matches_torch(ops, shape, dtype, rng):
    op, torch_op = ops
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    for dim in range(-max(len(shape), 1), max(len(shape), 1)):
        assert_close(op(x, dim), torch_op(torch.from_numpy(np.array(x)), dim).numpy())


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_is_stable_for_large_inputs(ops, dim, rng):
    op, torch_op = ops
    x = (rng.standard_normal((5, 6)) * 1000 + 5000).astype(np.float32)  # exp(x) overflows without the max
    expected = torch_op(torch.from_numpy(x.astype(np.float64)), dim).numpy().astype(np.float32)
    result = op(x, dim)
    assert np.isfinite(result).all()
    assert_close(result, expected)


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_nan_and_inf_rows_as_in_torch(ops, dim):
    op, torch_op = ops
    inf, nan = np.inf, np.nan
    x = np.array([[-inf, -inf], [inf, 1.0], [inf, inf], [nan, 1.0], [-inf, 1.0], [2.0, 1.0]], np.float32)
    x = x if dim == 1 else np.ascontiguousarray(x.T)
    assert_close(op(x, dim), torch_op(torch.from_numpy(x), dim).numpy())


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, expected_dim", [((), 0), ((4,), 0), ((2, 3), 1), ((2, 3, 4), 0), ((2, 3, 4, 5), 1)])
def test_softmax_implicit_dim_warns_and_picks_torchs_dim(ops, shape, expected_dim, rng):
    op, torch_op = ops
    x = rng.standard_normal(shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice") as record:
        result = op(x)
    assert record[0].filename == __file__  # _stacklevel=3 points at the caller, as in torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(result, torch_op(torch.from_numpy(np.array(x))).numpy())
    assert_close(result, op(x, expected_dim))


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
def test_softmax_dtype_casts_first(ops, rng):
    op, torch_op = ops
    x = rng.standard_normal((3, 4))
    result = op(x, 1, dtype=np.float32)
    assert result.dtype == np.float32
    assert_close(result, torch_op(torch.from_numpy(x), 1, dtype=torch.float32).numpy())
    ints = np.arange(12).reshape(3, 4)
    assert_close(op(ints, 0, dtype="float64"), torch_op(torch.from_numpy(ints), 0, dtype=torch.float64).numpy())
    assert op(x.astype(np.float32), 1, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
def test_softmax_empty_and_non_contiguous(ops, rng):
    op, torch_op = ops
    for shape, dim in [((2, 0), 1), ((0, 3), 1), ((0, 3), 0)]:
        assert op(np.zeros(shape, np.float32), dim).shape == shape
    x = rng.standard_normal((7, 6, 5))[::-1, ::2].transpose(2, 0, 1)
    for dim in range(3):
        assert_close(op(x, dim), torch_op(torch.from_numpy(np.ascontiguousarray(x)), dim).numpy())


@pytest.mark.parametrize("ops", SOFTMAX, ids=["softmax", "log_softmax"])
def test_softmax_thread_count_independent(ops, num_threads, rng):
    op = ops[0]
    x = rng.standard_normal((3, 37, 1000)).astype(np.float32)
    for dim in (0, 1, 2):
        num_threads(1)
        one = op(x, dim)
        num_threads(2)
        assert np.array_equal(one, op(x, dim))


@settings(max_examples=200, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=7), data=st.data(),
       log=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_softmax_random_calls_match_torch(shape, data, log, dtype):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-80, 80, width=32)))
    op, torch_op = SOFTMAX[log]
    assert_close(op(x, dim), torch_op(torch.from_numpy(x), dim).numpy())


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("call, error, match", [
    (lambda op: op(np.zeros((2, 3)), 2), ValueError, "dim"),
    (lambda op: op(np.zeros((2, 3)), -3), ValueError, "dim"),
    (lambda op: op(np.zeros(()), 1), ValueError, "dim"),
    (lambda op: op(np.zeros((2, 3)), 1.0), TypeError, "dim"),
    (lambda op: op(np.zeros((2, 3)), 1, dtype=np.int32), TypeError, "dtype"),
    (lambda op: op(np.zeros((2, 3)), 1, dtype="float16"), TypeError, "dtype"),
    (lambda op: op(np.zeros((2, 3)), 1, dtype="nonsense"), TypeError, "dtype"),
    (lambda op: op(np.zeros((2, 3), np.complex128), 1, dtype=np.float64), TypeError, "input"),
    (lambda op: op(np.zeros((2, 3), np.int64), 1), TypeError, "input"),
])
def test_softmax_errors(op, call, error, match):
    with pytest.raises(error, match=match):
        call(op)


# ---------------------------------------------------------------- dropout

def channel_planes_are_all_or_nothing(x, y, scale, channel_axes):
    """Each channel plane of y is all zero or x * scale; returns the fraction of zero planes."""
    planes_x = x.reshape(x.shape[:channel_axes] + (-1,))
    planes_y = y.reshape(y.shape[:channel_axes] + (-1,))
    zero = (planes_y == 0).all(axis=-1)
    kept = (planes_y == planes_x * scale).all(axis=-1)
    assert (zero | kept).all()
    return zero.mean()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_zeroes_with_probability_p_and_rescales(p, dtype):
    np.random.seed(0)
    x = np.random.uniform(1, 2, 200_000).astype(dtype)
    y = F.dropout(x, p)
    scale = dtype(1) / dtype(1 - p)  # torch: bernoulli(1 - p) / (1 - p), in the input's dtype
    kept = y != 0
    assert np.array_equal(y[kept], x[kept] * scale)
    assert abs((~kept).mean() - p) < 0.01  # 6 standard deviations
    np.random.seed(0)
    np.random.uniform(1, 2, 200_000)
    assert np.array_equal(F.dropout(x, p), y)  # np.random.seed makes it reproducible


@pytest.mark.parametrize("op", [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d])
def test_dropout_identity_when_not_training_or_p_zero(op, rng):
    x = rng.standard_normal((2, 3, 4, 5) if op is not F.dropout1d else (2, 3, 4))
    for kwargs in [{"training": False}, {"p": 0.0}, {"p": 1.0, "training": False}]:
        y = op(x, **kwargs)
        assert np.array_equal(y, x) and not np.shares_memory(y, x)
        assert op(x, inplace=True, **kwargs) is x
    torch_same = TF.dropout(torch.from_numpy(x), 0.5, training=False).numpy()
    assert np.array_equal(op(x, training=False), torch_same)


@pytest.mark.parametrize("op, shape", [(F.dropout, (3, 8)), (F.dropout1d, (2, 3, 8)), (F.dropout2d, (2, 3, 2, 4)),
                                       (F.dropout3d, (2, 3, 2, 2, 2))])
def test_dropout_p_one_multiplies_by_zero_as_torch(op, shape):
    x = np.tile(np.array([np.nan, np.inf, -np.inf, 1.0], np.float32), math.prod(shape) // 4).reshape(shape)
    torch_op = getattr(TF, op.__name__)
    assert_close(op(x, 1.0), torch_op(torch.from_numpy(x), 1.0).numpy())  # NaN * 0 and Inf * 0 are NaN


@pytest.mark.parametrize("op, shape, channel_axes", [
    (F.dropout1d, (40, 50, 7), 2), (F.dropout1d, (400, 7), 1),
    (F.dropout2d, (40, 50, 3, 4), 2),
    (F.dropout3d, (40, 50, 2, 3, 2), 2), (F.dropout3d, (400, 2, 3, 2), 1),
])
def test_channel_dropout_drops_whole_channels(op, shape, channel_axes):
    np.random.seed(1)
    x = np.random.uniform(1, 2, shape)
    p = 0.3
    fraction = channel_planes_are_all_or_nothing(x, op(x, p), 1 / (1 - p), channel_axes)
    assert abs(fraction - p) < 0.07


def test_dropout_unusual_ndims_warn_and_follow_torch():
    x = np.random.uniform(1, 2, (60, 50, 7))
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        y = F.dropout2d(x, 0.5)  # taken as (N, C, L), like torch
    channel_planes_are_all_or_nothing(x, y, 2.0, 2)
    with pytest.warns(UserWarning, match="3-D input to dropout3d"):
        y = F.dropout3d(x, 0.5)  # taken as unbatched (C, D, H), like torch
    channel_planes_are_all_or_nothing(x, y, 2.0, 1)
    with pytest.warns(UserWarning, match="2-D input to dropout2d"):
        F.dropout2d(np.ones((3, 4)), 0.5)
    with pytest.warns(UserWarning, match="1-D input to dropout3d"):
        F.dropout3d(np.ones(4), 0.5)  # each element is a channel, as in torch
    with pytest.warns(UserWarning, match="1-D input to dropout2d"), pytest.raises(ValueError, match="input"):
        F.dropout2d(np.ones(4), 0.5)
    with pytest.warns(UserWarning, match="0-D input to dropout3d"), pytest.raises(ValueError, match="input"):
        F.dropout3d(np.array(1.0), 0.5)


def test_dropout_inplace_writes_through_any_strides():
    np.random.seed(2)
    base = np.random.uniform(1, 2, (30, 40))
    original = base.copy()
    view = base[:, ::2]
    assert F.dropout(view, 0.5, inplace=True) is view
    assert ((view == 0) | (view == original[:, ::2] * 2)).all() and (view == 0).any()
    assert np.array_equal(base[:, 1::2], original[:, 1::2])  # the columns between are untouched
    assert F.dropout2d(np.ones((2, 3, 2, 2)), 0.5, inplace=True).shape == (2, 3, 2, 2)


@pytest.mark.parametrize("op", [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d])
@pytest.mark.parametrize("p, error", [(-0.1, ValueError), (1.5, ValueError), (np.nan, ValueError), ("0.5", TypeError),
                                      (None, TypeError)])
def test_dropout_rejects_bad_p(op, p, error):
    with pytest.raises(error, match="p"):
        op(np.ones((2, 3, 4, 5)), p)


def test_dropout_other_errors():
    with pytest.raises(ValueError, match="input"):
        F.dropout1d(np.ones(4), 0.5)
    with pytest.raises(ValueError, match="input"):
        F.dropout1d(np.ones((2, 3, 4, 5)), 0.5, training=False)
    with pytest.raises(TypeError, match="input"):
        F.dropout(np.ones(4, np.int64), 0.5)
    read_only = np.ones(4)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        F.dropout(read_only, 0.5, inplace=True)


def test_tanh_float32_within_two_ulp_of_float64():
    # pyconv's float32 tanh is its own vectorised approximation (pyconv_tanhf, 1.33 ulp at worst over
    # every float32); a dense grid across both of its branches (|x| < 0.625 and above) and the tails
    grid = np.concatenate([np.linspace(-20, 20, 2_000_003), np.geomspace(1e-30, 0.7, 100_000)]).astype(np.float32)
    grid = np.concatenate([grid, -grid, np.float32([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45])])
    got = F.tanh(grid)
    exact = np.tanh(grid.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert (np.abs(got - exact) / ulp).max() <= 2.0
    assert np.array_equal(np.signbit(got), np.signbit(grid))  # tanh(-0.0) = -0.0, odd everywhere
    assert np.isnan(F.tanh(np.float32([np.nan]))).all()
