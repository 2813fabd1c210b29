"""prepack_conv, fold_batch_norm and the fused epilogue: fused == unfused for every algorithm."""
import numpy as np
import pytest

import pyconv.functional as F
from pyconv.functional._conv_plan import ALGORITHMS, algorithm_class
from fused_activations import FUSED_ACTIVATIONS
from tolerances import assert_close

# (weight shape, conv arguments) per kind; each serves at least one fast algorithm.
CONV_CASES = [
    ((6, 5, 3, 3), dict(padding=1)),                       # Winograd, gemm, direct
    ((6, 4, 3, 3), dict(padding=(2, 1), dilation=(2, 3))),  # Winograd on polyphase parts
    ((8, 4, 3, 3), dict(padding="same", groups=2)),
    ((7, 5, 1, 1), dict()),                                # pointwise
    ((6, 1, 3, 3), dict(padding=1, groups=6)),             # depthwise
    ((6, 3, 5, 5), dict(stride=2, padding=2)),
    ((4, 3, 3), dict(padding=1)),                          # conv1d
    ((4, 2, 3, 3, 3), dict(padding=1)),                    # conv3d
]
TRANSPOSED_CASES = [
    ((5, 3, 4, 4), dict(stride=2, padding=1)),
    ((4, 6, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((4, 3, 3), dict(stride=3)),
]
ACTIVATIONS = [(None, {}, lambda y: y)] + FUSED_ACTIVATIONS


def _algorithms(kind, weight_shape, kwargs):
    """Names of the algorithms of ``kind`` that can compute this case."""
    problem = F.prepack_conv(np.ones(weight_shape, np.float32), transposed=kind == "conv_transpose",
                             **kwargs).problem
    return [name for name in ALGORITHMS[kind] if algorithm_class(kind, name).unsupported(problem) is None]


def _cases():
    for kind, cases in (("conv", CONV_CASES), ("conv_transpose", TRANSPOSED_CASES)):
        for weight_shape, kwargs in cases:
            for name in _algorithms(kind, weight_shape, kwargs):
                yield pytest.param(kind, weight_shape, kwargs, name, id=f"{kind}-{weight_shape}-{name}")


def _arrays(rng, kind, weight_shape, kwargs, dtype, batch=2, size=9):
    dims = len(weight_shape) - 2
    groups = kwargs.get("groups", 1)
    in_channels = weight_shape[0] if kind == "conv_transpose" else weight_shape[1] * groups
    out_channels = weight_shape[1] * groups if kind == "conv_transpose" else weight_shape[0]
    x = rng.standard_normal((batch, in_channels) + (size,) * dims).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    return x, w, b


def _assert_fused_close(name, actual, expected):
    """assert_close; Winograd within its documented float32 bound, 1e-4 * max|y| (_conv_winograd.py)."""
    if name.startswith("winograd"):
        assert_close(actual, expected, atol=1e-4 * max(float(np.abs(expected).max()), 1e-30))
    else:
        assert_close(actual, expected)


def _functional(kind, dims):
    return getattr(F, f"{kind}{dims}d")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, weight_shape, kwargs, name", list(_cases()))
def test_prepacked_equals_functional(rng, kind, weight_shape, kwargs, name, dtype):
    x, w, b = _arrays(rng, kind, weight_shape, kwargs, dtype)
    conv = F.prepack_conv(w, b, transposed=kind == "conv_transpose", algorithm=name, **kwargs)
    expected = _functional(kind, w.ndim - 2)(x, w, b, algorithm=name, **kwargs)
    first = conv(x)
    assert np.array_equal(first, expected)
    assert np.array_equal(conv(x), first)  # the packed weights are reused, unchanged
    assert len(conv._implementations) == 1
    assert np.array_equal(conv(x[0]), expected[0])  # unbatched


@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=lambda v: str(v) if isinstance(v, str) else None)
@pytest.mark.parametrize("kind, weight_shape, kwargs, name", list(_cases()))
def test_fused_equals_unfused(rng, kind, weight_shape, kwargs, name, activation, args, reference):
    """(conv + bias) * scale + shift + residual, then the activation: fused in the kernel == step by step."""
    x, w, b = _arrays(rng, kind, weight_shape, kwargs, np.float32)
    channels = b.size
    scale = rng.uniform(0.5, 2.0, channels)
    shift = rng.standard_normal(channels)
    conv = F.prepack_conv(w, b, transposed=kind == "conv_transpose", algorithm=name, scale=scale, shift=shift,
                          activation=activation, activation_args=args, **kwargs)
    plain = _functional(kind, w.ndim - 2)(x, w, b, algorithm="direct", **kwargs)
    residual = rng.standard_normal(plain.shape).astype(np.float32)
    per_channel = (1, channels) + (1,) * (w.ndim - 2)
    expected = reference((plain * scale.reshape(per_channel) + shift.reshape(per_channel)).astype(np.float32)
                         + residual)
    _assert_fused_close(name, conv(x, residual=residual), expected)
    expected_no_residual = reference((plain * scale.reshape(per_channel) + shift.reshape(per_channel))
                                     .astype(np.float32))
    _assert_fused_close(name, conv(x), expected_no_residual)


@pytest.mark.parametrize("kind, weight_shape, kwargs, name", list(_cases()))
def test_fused_thread_determinism(rng, num_threads, kind, weight_shape, kwargs, name):
    x, w, b = _arrays(rng, kind, weight_shape, kwargs, np.float32, batch=3, size=13)
    conv = F.prepack_conv(w, b, transposed=kind == "conv_transpose", algorithm=name,
                          scale=np.linspace(0.5, 1.5, b.size), activation="silu", **kwargs)
    residual = rng.standard_normal(conv(x).shape).astype(np.float32)
    num_threads(1)
    one = conv(x, residual)
    num_threads(2)
    assert np.array_equal(conv(x, residual), one)


@pytest.mark.parametrize("name", ["direct", "winograd", "gemm"])
def test_out_is_written_and_returned(rng, name):
    x, w, b = _arrays(rng, "conv", (6, 5, 3, 3), {}, np.float32)
    conv = F.prepack_conv(w, b, padding=1, algorithm=name, activation="relu")
    out = np.full((2, 6, 9, 9), np.nan, np.float32)
    assert conv(x, out=out) is out
    assert np.array_equal(out, conv(x))
    single = np.empty((6, 9, 9), np.float32)
    assert conv(x[1], out=single) is single
    assert np.array_equal(single, out[1])


def test_choices_remembered_for_a_bounded_number_of_shapes():
    conv = F.prepack_conv(np.ones((2, 2, 3, 3), np.float32), padding=1)
    for size in range(1, 100):
        conv(np.ones((1, 2, size, 3), np.float32))
    assert len(conv._choices) == 64


def test_out_errors(rng):
    x, w, b = _arrays(rng, "conv", (4, 4, 3, 3), {}, np.float32)
    conv = F.prepack_conv(w, b, padding=1)
    with pytest.raises(ValueError, match="out"):
        conv(x, out=np.empty((2, 4, 9, 8), np.float32))
    with pytest.raises(TypeError, match="out"):
        conv(x, out=np.empty((2, 4, 9, 9), np.float64))
    with pytest.raises(ValueError, match="out"):
        conv(x, out=np.empty((2, 4, 9, 9, 2), np.float32)[..., 0])  # not contiguous
    with pytest.raises(ValueError, match="overlap input"):
        conv(x, out=x)
    residual = np.zeros((2, 4, 9, 9), np.float32)
    with pytest.raises(ValueError, match="overlap residual"):
        conv(x, residual=residual, out=residual)
    with pytest.raises(TypeError, match="out"):
        conv(x, out=[0.0])


def test_bias_and_shift_without_scale_add_up(rng):
    x, w, b = _arrays(rng, "conv", (4, 3, 3, 3), {}, np.float64)
    shift = rng.standard_normal(4)
    conv = F.prepack_conv(w, b, padding=1, shift=shift)
    assert_close(conv(x), F.conv2d(x, w, b + shift, padding=1))


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_fold_batch_norm_matches_batch_norm(rng, eps):
    x = rng.standard_normal((2, 5, 4, 4))
    mean, var = rng.standard_normal(5), rng.uniform(0.1, 2.0, 5)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    scale, shift = F.fold_batch_norm(mean, var, gamma, beta, eps)
    expected = F.batch_norm(x, mean, var, gamma, beta, eps=eps)
    assert_close(x * scale[:, None, None] + shift[:, None, None], expected)
    scale, shift = F.fold_batch_norm(mean, var, eps=eps)
    assert_close(x * scale[:, None, None] + shift[:, None, None], F.batch_norm(x, mean, var, eps=eps))


def test_conv_bn_relu_fused_matches_layers(rng):
    """The conv -> batch norm -> add -> relu block of a ResNet, fused, against the three functional calls."""
    x, w, b = _arrays(rng, "conv", (8, 8, 3, 3), {}, np.float32, size=12)
    mean, var = rng.standard_normal(8).astype(np.float32), rng.uniform(0.5, 2, 8).astype(np.float32)
    gamma, beta = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    scale, shift = F.fold_batch_norm(mean, var, gamma, beta)
    conv = F.prepack_conv(w, None, padding=1, scale=scale, shift=shift, activation="relu")
    expected = F.relu(F.batch_norm(F.conv2d(x, w, padding=1), mean, var, gamma, beta) + x)
    assert_close(conv(x, residual=x), expected)


def test_algorithm_for_reports_choice(rng):
    conv = F.prepack_conv(np.ones((4, 4, 3, 3), np.float32), padding=1, algorithm="direct")
    assert conv.algorithm_for((1, 4, 8, 8)) == "direct"
    assert "direct" in repr(conv)
    auto = F.prepack_conv(np.ones((4, 4, 3, 3), np.float32), padding=1)
    assert auto.algorithm_for((1, 4, 8, 8)) in ALGORITHMS["conv"]


def test_errors():
    w = np.ones((4, 3, 3, 3), np.float32)
    x = np.ones((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.prepack_conv(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="weight"):
        F.prepack_conv(np.ones((4, 3, 3, 3), np.int32))
    with pytest.raises(TypeError, match="bias"):
        F.prepack_conv(w, np.ones(4, np.float64))
    with pytest.raises(ValueError, match="bias"):
        F.prepack_conv(w, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="scale"):
        F.prepack_conv(w, scale=np.ones(3))
    with pytest.raises(ValueError, match="shift"):
        F.prepack_conv(w, shift=np.ones((4, 1)))
    with pytest.raises(ValueError, match="activation"):
        F.prepack_conv(w, activation="swish")
    with pytest.raises(TypeError, match="negative_slope"):
        F.prepack_conv(w, activation="relu", activation_args={"negative_slope": 0.1})
    with pytest.raises(ValueError, match="algorithm"):
        F.prepack_conv(w, algorithm="fastest")
    with pytest.raises(ValueError, match="algorithm='depthwise' cannot"):
        F.prepack_conv(w, algorithm="depthwise")
    with pytest.raises(ValueError, match="algorithm='winograd' cannot"):
        F.prepack_conv(w, stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match="groups"):
        F.prepack_conv(w, groups=3)
    conv = F.prepack_conv(w, padding=1)
    with pytest.raises(TypeError, match="input"):
        conv(x.astype(np.float64))
    with pytest.raises(ValueError, match="channels"):
        conv(np.ones((1, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="residual"):
        conv(x, residual=np.ones((1, 4, 8, 7), np.float32))
    with pytest.raises(TypeError, match="residual"):
        conv(x, residual=np.ones((1, 4, 8, 8), np.float64))
    with pytest.raises(ValueError, match="running_var"):
        F.fold_batch_norm(np.zeros(3), np.ones(4))


def test_functional_algorithm_errors():
    x = np.ones((1, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="expected algorithm to be one of"):
        F.conv2d(x, w, algorithm="fast")
    with pytest.raises(ValueError, match="expected algorithm to be one of"):
        F.conv2d(x, w, algorithm=None)
    with pytest.raises(ValueError, match="conv_transpose2d: expected algorithm"):
        F.conv_transpose2d(x, np.ones((3, 4, 3, 3), np.float32), algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm='depthwise' cannot compute"):
        F.conv2d(x, w, algorithm="depthwise")
    with pytest.raises(ValueError, match="expected algorithm"):  # checked even when the batch is empty
        F.conv2d(x[:0], w, algorithm="fast")
