"""algorithm='gemm' for conv_transpose1d/2d/3d (GEMM + col2im): against torch and the direct kernel."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
import pyconv.functional._conv_transpose_gemm as gemm_module
from pyconv.functional._conv_plan import ConvProblem, Epilogue
from pyconv.functional._conv_transpose_gemm import GemmConvTranspose
from tolerances import assert_close

torch = pytest.importorskip("torch")

FUNCTIONS = {1: "conv_transpose1d", 2: "conv_transpose2d", 3: "conv_transpose3d"}

# (input spatial, kernel, arguments): every stride / padding / output_padding / dilation / groups
# combination the kernel treats differently, odd and non-square sizes.
CASES = [
    ((7,), (3,), dict(stride=2, padding=1, output_padding=1)),
    ((600,), (3,), dict(stride=1, padding=1)),                         # long rows: width tiles
    ((1100,), (4,), dict(stride=2, padding=1, groups=2)),
    ((5,), (1,), dict(stride=3)),                                      # phases without taps: bias only
    ((6,), (2,), dict(stride=2, dilation=2, output_padding=1)),        # odd outputs reached by no tap
    ((9,), (3,), dict(padding=4, dilation=3)),                         # padding larger than the kernel
    ((5, 7), (4, 4), dict(stride=2, padding=1)),
    ((6, 6), (2, 2), dict(stride=2)),
    ((9, 11), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((5, 8), (3, 2), dict(stride=(3, 2), padding=(2, 0), output_padding=(2, 1))),
    ((7, 6), (3, 5), dict(stride=(1, 3), padding=(1, 2), dilation=(2, 1), output_padding=(1, 0))),
    ((4, 5), (1, 1), dict(stride=1)),
    ((4, 5), (1, 1), dict(stride=2, output_padding=1)),
    ((6, 5), (3, 3), dict(stride=2, padding=3, dilation=2, output_padding=1)),
    ((8, 8), (5, 5), dict(stride=3, padding=6, dilation=2)),           # padding beyond the kernel's reach
    ((10, 9), (3, 3), dict(stride=2, padding=1, groups=3)),
    ((3, 700), (3, 3), dict(stride=(2, 3), padding=1, output_padding=(1, 2))),  # 2d column tiles
    ((3, 2), (2, 3), dict(stride=(40, 60), padding=(1, 2), output_padding=(5, 7))),  # more phases than columns
    ((3, 4, 5), (3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 3, 4), (2, 3, 1), dict(stride=(2, 1, 3), padding=(0, 1, 0), dilation=(2, 1, 1))),
    ((4, 3, 3), (3, 2, 2), dict(stride=(1, 2, 2), padding=(2, 0, 1), groups=2, output_padding=(0, 1, 1))),
]
CHANNELS = [(3, 5), (6, 70)]  # (in, out); 70 outputs x kW 3 split into channel blocks, not a vector multiple
# Input channels per group up to which the kernel runs without GEMM: every test runs both ways.
MODES = {"gemm": 0, "direct": 1 << 30}


@pytest.fixture(params=list(MODES))
def mode(request, monkeypatch):
    """Runs the test with the GEMM path, then with the direct path, whatever the channel counts."""
    monkeypatch.setattr(gemm_module, "DIRECT_MAX_IN_CHANNELS", MODES[request.param])
    return request.param


def _arrays(rng, dims, spatial, kernel, kwargs, channels, dtype, batch=2):
    groups = kwargs.get("groups", 1)
    in_channels, out_channels = channels
    in_channels *= groups
    out_channels = -(-out_channels // groups) * groups
    x = rng.standard_normal((batch, in_channels) + spatial).astype(dtype)
    w = rng.standard_normal((in_channels, out_channels // groups) + kernel).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    return x, w, b


def _torch(x, w, b, **kwargs):
    fn = getattr(torch.nn.functional, FUNCTIONS[x.ndim - 2])
    return fn(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kwargs).numpy()


def _pyconv(x, w, b, algorithm="gemm", **kwargs):
    return getattr(F, FUNCTIONS[w.ndim - 2])(x, w, b, algorithm=algorithm, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("spatial, kernel, kwargs", CASES)
def test_matches_torch_and_direct(rng, mode, spatial, kernel, kwargs, channels, dtype):
    x, w, b = _arrays(rng, len(spatial), spatial, kernel, kwargs, channels, dtype)
    result = _pyconv(x, w, b, **kwargs)
    assert_close(result, _torch(x, w, b, **kwargs))
    assert_close(result, _pyconv(x, w, b, algorithm="direct", **kwargs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_suite_shapes_against_float64(rng, dtype):
    """The layer suite's transposed cases (smaller spatial size), float32 within 1e-5 * max|y| of float64."""
    for c_in, c_out, size, k, kwargs in [(256, 128, 6, 4, dict(stride=2, padding=1)),
                                         (128, 64, 9, 2, dict(stride=2)),
                                         (64, 32, 11, 3, dict(stride=2, padding=1, output_padding=1))]:
        x = rng.standard_normal((1, c_in, size, size))
        w = rng.standard_normal((c_in, c_out, k, k))
        reference = _torch(x, w, None, **kwargs)
        result = _pyconv(x.astype(dtype), w.astype(dtype), None, **kwargs)
        error = np.abs(result - reference).max() / np.abs(reference).max()
        assert error < (1e-6 if dtype == np.float32 else 1e-14), error


def test_no_bias_and_unbatched(rng):
    x, w, _ = _arrays(rng, 2, (5, 6), (3, 3), {}, (4, 6), np.float32)
    assert_close(_pyconv(x, w, None, stride=2), _torch(x, w, None, stride=2))
    assert_close(_pyconv(x[0], w, None, stride=2), _torch(x[:1], w, None, stride=2)[0])


def test_non_contiguous_input(rng):
    x, w, b = _arrays(rng, 2, (9, 10), (3, 3), {}, (4, 5), np.float32)
    strided = np.swapaxes(x, 2, 3)[:, ::-1, ::2]
    expected = _torch(np.ascontiguousarray(strided), w, b, stride=2, padding=1)
    assert_close(_pyconv(strided, w, b, stride=2, padding=1), expected)


def test_batch_zero(rng):
    x, w, b = _arrays(rng, 2, (4, 4), (3, 3), {}, (3, 5), np.float32, batch=0)
    result = _pyconv(x, w, b, stride=2)
    assert result.shape == _torch(x, w, b, stride=2).shape


def test_nan_and_inf_propagate_like_torch(rng, mode):
    x, w, b = _arrays(rng, 2, (6, 7), (4, 4), {}, (3, 4), np.float32)
    x[0, 1, 2, 3] = np.nan
    x[1, 0, 4, 1] = np.inf
    expected = _torch(x, w, b, stride=2, padding=1)
    result = _pyconv(x, w, b, stride=2, padding=1)
    assert np.array_equal(np.isnan(result), np.isnan(expected))
    assert np.array_equal(np.isinf(result), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_close(result[finite], expected[finite])


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(stride=1, padding=2),
                                    dict(stride=3, output_padding=2)])
def test_non_finite_weights_like_torch(rng, mode, kwargs):
    """inf and nan weights give torch's nan/inf pattern (no padding zeros are multiplied)."""
    x, w, b = _arrays(rng, 2, (6, 7), (4, 4), {}, (4, 3), np.float32)
    w[1, 2, 0, 3] = np.inf
    w[2, 0, 1, 1] = np.nan
    x[0, 0, 0, 0] = 0.0
    expected = _torch(x, w, b, **kwargs)
    result = _pyconv(x, w, b, **kwargs)
    assert np.array_equal(np.isnan(result), np.isnan(expected))
    assert np.array_equal(np.isinf(result), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_close(result[finite], expected[finite])


@pytest.mark.parametrize("spatial, kernel, kwargs", [CASES[1], CASES[2], CASES[8], CASES[15], CASES[16], CASES[18]])
def test_thread_count_does_not_change_bits(rng, num_threads, mode, spatial, kernel, kwargs):
    x, w, b = _arrays(rng, len(spatial), spatial, kernel, kwargs, (6, 70), np.float32, batch=3)
    num_threads(1)
    one = _pyconv(x, w, b, **kwargs)
    num_threads(2)
    assert np.array_equal(_pyconv(x, w, b, **kwargs), one)
    num_threads(3)
    assert np.array_equal(_pyconv(x, w, b, **kwargs), one)


@pytest.mark.parametrize("activation, params, reference", [
    ("relu", (), F.relu),
    ("hardtanh", (0.0, 6.0), F.relu6),
    ("leaky_relu", (0.1,), lambda y: F.leaky_relu(y, 0.1)),
    ("hardswish", (), F.hardswish),
    ("silu", (), F.silu),
    ("sigmoid", (), F.sigmoid),
    ("gelu", (), F.gelu),
])
@pytest.mark.parametrize("spatial, kernel, kwargs", [CASES[0], CASES[2], CASES[8], CASES[16], CASES[18]])
def test_fused_epilogue_equals_unfused(rng, mode, spatial, kernel, kwargs, activation, params, reference):
    """The kernel's epilogue (scale, shift, residual, activation) against the same steps done afterwards."""
    from pyconv._kernels.activation import KINDS
    x, w, _ = _arrays(rng, len(spatial), spatial, kernel, kwargs, (4, 70), np.float32)
    dims = len(spatial)
    problem = ConvProblem(True, w.shape[0], w.shape[1] * kwargs.get("groups", 1), kwargs.get("groups", 1), kernel,
                          _tuple(kwargs.get("stride", 1), dims), _tuple(kwargs.get("padding", 0), dims),
                          _tuple(kwargs.get("padding", 0), dims), _tuple(kwargs.get("dilation", 1), dims),
                          _tuple(kwargs.get("output_padding", 0), dims), np.dtype(np.float32))
    plain = _pyconv(x, w, None, **kwargs)
    channels = (1, plain.shape[1]) + (1,) * dims
    scale = rng.uniform(0.5, 2.0, plain.shape[1]).astype(np.float32)
    shift = rng.standard_normal(plain.shape[1]).astype(np.float32)
    residual = rng.standard_normal(plain.shape).astype(np.float32)
    epilogue = Epilogue(scale, shift, KINDS[activation], tuple(params) + (0.0,) * (3 - len(params)))
    fused = np.empty_like(plain)
    GemmConvTranspose(problem, w).run(x, fused, epilogue, residual.reshape(-1), 2)
    assert_close(fused, reference(plain * scale.reshape(channels) + shift.reshape(channels) + residual))
    # shift alone (a bias) and no residual
    epilogue = Epilogue(np.empty(0, np.float32), shift, KINDS[activation], epilogue.params)
    GemmConvTranspose(problem, w).run(x, fused, epilogue, np.empty(0, np.float32), 1)
    assert_close(fused, reference(plain + shift.reshape(channels)))


# One input position per image: the pointwise GEMM over the batch (no dilation, no output_padding),
# or col2im (with them); paddings that crop the kernel window, groups, 1d-3d.
SINGLE_POSITION = [
    ((1,), (4,), dict()), ((1, 1), (4, 4), dict()), ((1, 1), (3, 5), dict(stride=2, padding=(1, 2))),
    ((1, 1), (4, 4), dict(padding=1, groups=2)), ((1, 1, 1), (2, 3, 2), dict(stride=3, padding=(0, 1, 0))),
    ((1, 1), (3, 3), dict(stride=2, output_padding=1)), ((1, 1), (3, 3), dict(dilation=2, padding=1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("spatial, kernel, kwargs", SINGLE_POSITION)
def test_single_input_position_matches_torch_and_direct(rng, num_threads, spatial, kernel, kwargs, batch, dtype):
    """DCGAN's first layer (a 1 x 1 latent): the batch as the positions of one pointwise GEMM, with the
    fused epilogue; the same bits on 1 and 2 threads."""
    x, w, b = _arrays(rng, len(spatial), spatial, kernel, kwargs, (20, 70), dtype, batch=batch)
    num_threads(1)
    one = _pyconv(x, w, b, **kwargs)
    assert_close(one, _torch(x, w, b, **kwargs))
    assert_close(one, _pyconv(x, w, b, algorithm="direct", **kwargs))
    num_threads(2)
    assert np.array_equal(_pyconv(x, w, b, **kwargs), one)
    relu6 = F.prepack_conv(w, b, transposed=True, algorithm="gemm", activation="relu6", **kwargs)
    assert np.array_equal(relu6(x), np.clip(one, 0, 6))
    # a fused scale and shift (repeated per tap), against the col2im path on the same GEMM core
    dims = len(spatial)
    problem = ConvProblem(True, w.shape[0], w.shape[1] * kwargs.get("groups", 1), kwargs.get("groups", 1), kernel,
                          _tuple(kwargs.get("stride", 1), dims), _tuple(kwargs.get("padding", 0), dims),
                          _tuple(kwargs.get("padding", 0), dims), _tuple(kwargs.get("dilation", 1), dims),
                          _tuple(kwargs.get("output_padding", 0), dims), np.dtype(dtype))
    scale = rng.uniform(-2, 2, one.shape[1]).astype(dtype)
    epilogue = Epilogue(scale, b, 1, (0.0, 0.0, 0.0))
    single, col2im = np.empty_like(one), np.empty_like(one)
    GemmConvTranspose(problem, w).run(x, single, epilogue, np.empty(0, dtype), 2)
    forced = GemmConvTranspose(problem, w)
    forced._weight = None   # no single-position path: col2im
    forced.run(x, col2im, epilogue, np.empty(0, dtype), 2)
    assert np.array_equal(single, col2im)
    channel = (1, -1) + (1,) * dims
    plain = one - b.reshape(channel)   # `one` has the bias added
    assert_close(single, np.maximum(plain * scale.reshape(channel) + b.reshape(channel), 0))


def _tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def test_unsupported():
    plain = ConvProblem(False, 3, 4, 1, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (0, 0), np.dtype(np.float32))
    assert "transposed" in GemmConvTranspose.unsupported(plain)
    transposed = ConvProblem(True, 3, 4, 1, (3, 3), (2, 2), (5, 5), (5, 5), (3, 3), (2, 2), np.dtype(np.float64))
    assert GemmConvTranspose.unsupported(transposed) is None


@st.composite
def _configurations(draw):
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    in_per_group = draw(st.integers(1, 3))
    out_per_group = draw(st.integers(1, 4))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 5)) for _ in range(dims))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    spatial = tuple(draw(st.integers(1, 7 if dims < 3 else 4)) for _ in range(dims))
    out = [(i - 1) * s - 2 * p + d * (k - 1) + o + 1
           for i, s, p, d, k, o in zip(spatial, stride, padding, dilation, kernel, output_padding)]
    if min(out) <= 0:
        padding = (0,) * dims
    batch = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return dims, groups, in_per_group, out_per_group, kernel, spatial, batch, bias, dict(
        stride=stride, padding=padding, dilation=dilation, output_padding=output_padding, groups=groups)


@pytest.mark.parametrize("direct_max_in_channels", list(MODES.values()), ids=list(MODES))
@settings(max_examples=200, deadline=None)
@given(_configurations(), st.integers(0, 2 ** 32 - 1))
def test_random_configurations_match_torch(direct_max_in_channels, configuration, seed):
    dims, groups, in_per_group, out_per_group, kernel, spatial, batch, bias, kwargs = configuration
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, groups * in_per_group) + spatial)
    w = rng.standard_normal((groups * in_per_group, out_per_group) + kernel)
    b = rng.standard_normal(groups * out_per_group) if bias else None
    before = gemm_module.DIRECT_MAX_IN_CHANNELS
    gemm_module.DIRECT_MAX_IN_CHANNELS = direct_max_in_channels
    try:
        assert_close(_pyconv(x, w, b, **kwargs), _torch(x, w, b, **kwargs))
    finally:
        gemm_module.DIRECT_MAX_IN_CHANNELS = before
