"""Winograd F(2x2,3x3) / F(4x4,3x3) convolution against the direct kernel and torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from pyconv._kernels import layout
from pyconv.functional._conv_plan import ConvProblem
from pyconv.functional._conv_winograd import Winograd, WinogradF2, WinogradF4
from fused_activations import FUSED_ACTIVATIONS
from tolerances import assert_close

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

NAMES = ["winograd", "winograd_f2", "winograd_f4"]
DTYPES = [np.float32, np.float64]


def torch_conv2d(x, w, b=None, **kwargs):
    tensor = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return TF.conv2d(tensor(x), tensor(w), tensor(b), **kwargs).numpy()


def assert_winograd_close(actual, expected):
    """Within the policy's rtol plus an atol of rtol * max|expected| (1e-4 for float32, the bound justified
    in pyconv/functional/_conv_winograd.py by the measured error; 1e-10 for float64): a Winograd output's
    error follows the magnitude of its tile, not its own (an SSE2 build, no FMA, missed the element-wise
    float64 bound by 2.4e-10 on one output near zero of 303600)."""
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    assert_close(actual, expected, atol=(1e-4 if expected.dtype == np.float32 else 1e-10) * scale)


def arrays(rng, dtype, n, c, k, h, w, groups=1, bias=True):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    return x, weight, b


# (N, C, K, H, W, groups, padding): odd sizes, sizes smaller than a tile, channel counts that are
# not multiples of the vector width, groups (incl. depthwise), every kind of padding.
GRID = [
    (1, 3, 5, 7, 9, 1, 1),
    (2, 8, 16, 13, 11, 2, 0),
    (1, 16, 24, 4, 4, 1, 2),
    (2, 5, 7, 1, 2, 1, 1),
    (1, 4, 6, 3, 3, 1, 0),
    (3, 6, 9, 6, 10, 3, (1, 2)),
    (1, 7, 7, 9, 9, 7, 1),
    (2, 12, 10, 17, 5, 2, "same"),
    (1, 9, 13, 15, 14, 1, "valid"),
    (1, 10, 3, 5, 21, 1, (3, 0)),
    (2, 4, 20, 2, 7, 1, (1, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n, c, k, h, w, groups, padding", GRID)
def test_against_direct_and_torch(rng, n, c, k, h, w, groups, padding, name, dtype):
    x, weight, b = arrays(rng, dtype, n, c, k, h, w, groups)
    y = F.conv2d(x, weight, b, padding=padding, groups=groups, algorithm=name)
    assert y.dtype == dtype
    assert_winograd_close(y, F.conv2d(x, weight, b, padding=padding, groups=groups, algorithm="direct"))
    assert_winograd_close(y, torch_conv2d(x, weight, b, padding=padding, groups=groups))


# (N, C, K, H, W, groups, padding, dilation): 'winograd' runs dilated convs on polyphase parts;
# padded sizes that are and are not multiples of the dilation, asymmetric 'same', padding beyond it.
DILATED_GRID = [
    (1, 8, 6, 28, 28, 1, 2, 2),
    (2, 8, 6, 13, 17, 2, (1, 4), (2, 3)),
    (1, 5, 4, 9, 9, 1, 0, (3, 1)),
    (3, 6, 6, 10, 11, 1, "same", 2),
    (1, 4, 5, 5, 6, 1, (5, 2), (4, 2)),
    (2, 64, 16, 14, 14, 1, 3, 3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, groups, padding, dilation", DILATED_GRID)
def test_dilated_against_direct_and_torch(rng, num_threads, n, c, k, h, w, groups, padding, dilation, dtype):
    x, weight, b = arrays(rng, dtype, n, c, k, h, w, groups)
    kwargs = dict(padding=padding, dilation=dilation, groups=groups)
    y = F.conv2d(x, weight, b, algorithm="winograd", **kwargs)
    assert_winograd_close(y, F.conv2d(x, weight, b, algorithm="direct", **kwargs))
    assert_winograd_close(y, torch_conv2d(x, weight, b, **kwargs))
    num_threads(1)
    one = F.conv2d(x, weight, b, algorithm="winograd", **kwargs)
    num_threads(2)
    assert np.array_equal(F.conv2d(x, weight, b, algorithm="winograd", **kwargs), one)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, pad, dilation, phase_shape", [
    ((2, 3, 7, 9), (2, 1), (2, 3), (6, 4)),    # padding before, zeros past the end
    ((1, 2, 4, 4), (0, 0), (1, 1), (4, 4)),
    ((1, 1, 3, 5), (5, 0), (3, 2), (3, 3)),    # whole phases of padding
])
def test_polyphase_split_and_merge_against_numpy(rng, shape, pad, dilation, phase_shape, dtype):
    """The layout kernels of the dilated path: split == numpy's padded reshape, merge inverts it, any threads."""
    (dh, dw), (ph, pw) = dilation, phase_shape
    x = rng.standard_normal(shape).astype(dtype)
    n, c, h, w = shape
    padded = np.zeros((n, c, ph * dh, pw * dw), dtype)
    padded[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    expected = padded.reshape(n, c, ph, dh, pw, dw).transpose(3, 5, 0, 1, 2, 4).reshape(dh * dw * n, c, ph, pw)
    for threads in (1, 2):
        phases = np.full((dh * dw * n, c, ph, pw), np.nan, dtype)
        layout.polyphase_split(x, phases, pad[0], pad[1], dh, dw, threads)
        assert np.array_equal(phases, expected)
        merged = np.full((n, c, ph * dh - 1, pw * dw - 1), np.nan, dtype)   # a cut-off last phase row/column
        layout.polyphase_merge(phases, merged, dh, dw, threads)
        assert np.array_equal(merged, padded[:, :, :ph * dh - 1, :pw * dw - 1])


def test_dilated_with_nan_input_as_direct(rng):
    x, weight, b = arrays(rng, np.float32, 1, 8, 4, 12, 12)
    x[0, 3, 5, 6] = np.nan
    y = F.conv2d(x, weight, b, padding=2, dilation=2, algorithm="winograd")
    direct = F.conv2d(x, weight, b, padding=2, dilation=2, algorithm="direct")
    assert np.array_equal(np.isnan(y), np.isnan(direct))
    assert_winograd_close(np.nan_to_num(y), np.nan_to_num(direct))


@pytest.mark.parametrize("name", ["winograd_f2", "winograd_f4"])
def test_float64_matches_direct_to_rounding(rng, name):
    x, weight, b = arrays(rng, np.float64, 2, 24, 20, 19, 23)
    y = F.conv2d(x, weight, b, padding=1, algorithm=name)
    expected = F.conv2d(x, weight, b, padding=1, algorithm="direct")
    assert np.abs(y - expected).max() <= 1e-12 * np.abs(expected).max()


@pytest.mark.parametrize("name", ["winograd_f2", "winograd_f4"])
def test_float32_error_within_policy(rng, name):
    """max|y - ref| / max|ref| <= 1e-4 against a float64 reference, unit-normal data (DESIGN.md)."""
    x, weight, _ = arrays(rng, np.float32, 1, 128, 32, 16, 16, bias=False)
    y = F.conv2d(x, weight, padding=1, algorithm=name)
    reference = F.conv2d(x.astype(np.float64), weight.astype(np.float64), padding=1, algorithm="direct")
    assert np.abs(y - reference).max() / np.abs(reference).max() <= 1e-4


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("n, c, k, size, groups", [(1, 300, 20, 5, 1), (1, 520, 44, 5, 2), (2, 300, 300, 22, 1)])
def test_many_channels_and_channel_blocks(rng, num_threads, name, dtype, n, c, k, size, groups):
    """C per group beyond the GEMM's KC (256: packed weights read in chunks), images of few
    tiles, whose output channels are split between threads when there are fewer tasks, and
    channels so many that the tile blocks shrink to fit the scratch budget."""
    x, weight, b = arrays(rng, dtype, n, c, k, size, size + 1, groups=groups)
    expected = F.conv2d(x, weight, b, padding=1, groups=groups, algorithm="direct")
    for threads in (1, 2, 3):
        num_threads(threads)
        assert_winograd_close(F.conv2d(x, weight, b, padding=1, groups=groups, algorithm=name), expected)


def test_blocking():
    from pyconv._kernels.gemm import block_sizes
    from pyconv.functional._conv_winograd import blocking
    mr = block_sizes()["MR"]
    in_mr = lambda k: -(-k // mr) * mr   # noqa: E731  (output channel splits: whole GEMM panels)
    assert blocking(36, 196, 1, 64, 64, 4, 2) == (98, 64)       # two even tasks
    assert blocking(36, 49, 1, 128, 128, 4, 2) == (49, in_mr(64))   # one block: output channels split
    assert blocking(36, 49, 1, 128, 128, 4, 1) == (49, 128)
    assert blocking(36, 72, 1, 300, 300, 4, 2) == (48, 300)     # scratch budget: whole vectors
    assert blocking(36, 64, 1, 256, 256, 4, 2) == (32, 256)     # even halves, not 48 + 16
    assert blocking(36, 49, 1, 512, 512, 4, 2) == (16, 512)
    assert blocking(6, 1024, 1, 256, 256, 4, 2) == (128, 256)   # one-row tiles: 6 points
    assert blocking(16, 4, 3, 64, 64, 8, 4) == (4, in_mr(32))   # 3 tasks, 4 threads
    # one block for two threads and fewer output than input channels (DenseNet's 128 -> 32): its tiles split
    # in whole vectors of 16; as many output as input channels: the output channels split
    assert blocking(36, 128, 1, 128, 32, 4, 2) == (64, 32)
    assert blocking(36, 32, 1, 128, 128, 4, 2) == (32, in_mr(64))
    assert blocking(36, 49, 1, 128, 32, 4, 2) == (32, 32)       # 32 + 17 tiles
    assert blocking(36, 49, 1, 128, 32, 4, 1) == (49, 32)
    assert blocking(36, 40, 1, 128, 32, 4, 2) == (40, in_mr(16))   # not 32 + 8: output channels split
    assert blocking(36, 16, 1, 128, 32, 4, 2) == (16, in_mr(16))   # too few tiles: output channels split


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 16, 20, 12, 12), (3, 6, 5, 29, 31), (1, 64, 64, 40, 40),
                                   (1, 40, 8, 28, 28), (8, 24, 24, 14, 14)])   # (tile blocks split for threads)
def test_thread_determinism(rng, num_threads, name, shape):
    n, c, k, h, w = shape
    x, weight, b = arrays(rng, np.float32, n, c, k, h, w)
    num_threads(1)
    one = F.conv2d(x, weight, b, padding=1, algorithm=name)
    for threads in (2, 3):
        num_threads(threads)
        assert np.array_equal(F.conv2d(x, weight, b, padding=1, algorithm=name), one)


ACTIVATIONS = FUSED_ACTIVATIONS


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_fused_epilogue_equals_unfused(rng, activation, args, reference, name, dtype):
    """conv * scale + shift + residual, then the activation: fused == step by step on the same conv."""
    x, weight, _ = arrays(rng, dtype, 2, 6, 10, 11, 9, bias=False)
    scale = rng.uniform(0.5, 2.0, 10)
    shift = rng.standard_normal(10)
    conv = F.prepack_conv(weight, None, padding=(1, 0), algorithm=name, scale=scale, shift=shift,
                          activation=activation, activation_args=args)
    plain = F.conv2d(x, weight, padding=(1, 0), algorithm=name)
    residual = rng.standard_normal(plain.shape).astype(dtype)
    per_channel = (1, -1, 1, 1)
    affine = plain * scale.astype(dtype).reshape(per_channel) + shift.astype(dtype).reshape(per_channel)
    assert_close(conv(x, residual=residual), reference(affine + residual))
    assert_close(conv(x), reference(affine))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (0, 3, 5, 7), (1, 2, 10, 10), (1, 5, 10, 0)])
def test_non_finite_input_as_torch(rng, name, value, where):
    """One NaN/Inf reaches only the outputs whose window holds it (as torch), not its whole tile."""
    x, weight, b = arrays(rng, np.float32, 2, 6, 4, 11, 11)
    x[where] = value
    y = F.conv2d(x, weight, b, padding=1, algorithm=name)
    expected = torch_conv2d(x, weight, b, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.array_equal(np.isinf(y), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_winograd_close(y[finite], expected[finite])


@pytest.mark.parametrize("name", NAMES)
def test_huge_finite_input_as_direct(rng, name):
    """Values whose transform overflows take the direct path too: finite where the direct sum is."""
    x, weight, b = arrays(rng, np.float32, 1, 3, 4, 8, 8)
    x[0, 1, 4, 4] = 3e38
    y = F.conv2d(x, weight, b, padding=1, algorithm=name)
    expected = F.conv2d(x, weight, b, padding=1, algorithm="direct")
    assert np.array_equal(np.isfinite(y), np.isfinite(expected))
    assert_close(y, expected)


# Scale of unit-normal inputs and weights whose direct sums (16 channels x 9 taps) reach ~5e37 in
# float32 and ~5e307 in float64, finite, while F(4,3)'s transforms overflow.
LARGE = {np.float32: 1e18, np.float64: 1e153}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["auto"] + NAMES)
@pytest.mark.parametrize("size", [12, 28])
def test_large_weights_as_direct(rng, num_threads, name, size, dtype):
    """Weights as large as the input: the transforms overflow where the direct sum is finite
    (float32 F(4,3) gave 40 NaN and 24 Inf at 28x28); such a call is computed directly."""
    x = (rng.standard_normal((1, 16, size, size)) * LARGE[dtype]).astype(dtype)
    weight = (rng.standard_normal((16, 16, 3, 3)) * LARGE[dtype]).astype(dtype)
    expected = F.conv2d(x, weight, padding=1, algorithm="direct")
    assert np.isfinite(expected).all()
    for threads in (1, 2):
        num_threads(threads)
        y = F.conv2d(x, weight, padding=1, algorithm=name)
        assert np.isfinite(y).all()
        assert_winograd_close(y, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_transform_overflow_hidden_from_the_input_probe(name, dtype):
    """A constant input near the maximum cancels in the probed transform points (first and last
    row of B^T sum to 0) but overflows in the others (no padding, whole tiles: every tile is
    constant; max / 3: F(2,3)'s V reaches 4x it; max / 5: F(4,3)'s first row pass -6x, its probed
    points at most 5x); weights whose taps cancel keep the direct sums finite (0).  The output
    check sends the call to the direct algorithm, also when ReLU would have turned -Inf into 0."""
    x = np.full((1, 2, 10, 10), np.finfo(dtype).max / (5 if name == "winograd_f4" else 3), dtype)
    weight = np.zeros((3, 2, 3, 3), dtype)
    weight[:, :, 1, 0] = 1
    weight[:, :, 1, 2] = -1
    weight[1] *= -0.5
    expected = F.conv2d(x, weight, algorithm="direct")
    assert np.isfinite(expected).all()
    assert np.array_equal(F.conv2d(x, weight, algorithm=name), expected)
    conv = F.prepack_conv(weight, None, algorithm=name, activation="relu")
    assert np.array_equal(conv(x), F.relu(expected))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weight_as_direct(rng, name, value, dtype):
    """Non-finite weights: every call computed by the direct algorithm (whose NaN pattern is its own
    concern: torch float32 skips the padding there, torch float64 multiplies it)."""
    x, weight, b = arrays(rng, dtype, 2, 4, 3, 6, 7)
    weight[1, 2, 0, 2] = value
    conv = F.prepack_conv(weight, b, padding=1, algorithm=name)
    expected = F.conv2d(x, weight, b, padding=1, algorithm="direct")
    for _ in range(2):
        assert np.array_equal(conv(x), expected, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_weights_overflowing_when_transformed_as_direct(rng, name):
    """F(2,3) scales weights by up to 2.25: float32 weights near the maximum take the direct path."""
    x, weight, b = arrays(rng, np.float32, 1, 2, 2, 6, 6)
    x = np.abs(x) * 1e-38
    weight[:] = 3e38
    y = F.conv2d(x, weight, b, padding=1, algorithm=name)
    assert_close(y, F.conv2d(x, weight, b, padding=1, algorithm="direct"))


def test_non_contiguous_input_and_unbatched(rng):
    x, weight, b = arrays(rng, np.float64, 2, 8, 6, 12, 14)
    view = x[:, ::2, ::-1, 1:]
    y = F.conv2d(view, weight[:, ::2], b, padding=1, algorithm="winograd")
    assert_close(y, torch_conv2d(view, weight[:, ::2], b, padding=1))
    assert_close(F.conv2d(x[1], weight, b, padding=1, algorithm="winograd"),
                 torch_conv2d(x[1:2], weight, b, padding=1)[0])


def _problem(dims=2, kernel=3, stride=1, dilation=1, transposed=False):
    return ConvProblem(transposed=transposed, in_channels=4, out_channels=4, groups=1,
                       kernel_size=(kernel,) * dims, stride=(stride,) * dims, pad_before=(1,) * dims,
                       pad_after=(1,) * dims, dilation=(dilation,) * dims, output_padding=(0,) * dims,
                       dtype=np.dtype(np.float32))


@pytest.mark.parametrize("cls", [Winograd, WinogradF2, WinogradF4])
def test_unsupported_reasons(cls):
    assert cls.unsupported(_problem()) is None
    if cls is Winograd:
        assert cls.unsupported(_problem(kernel=5)) is None
        assert cls.unsupported(_problem(kernel=9)) is None
        assert "kernel of 3x3 to 9x9, got 2x2" in cls.unsupported(_problem(kernel=2))
        assert "kernel of 3x3 to 9x9, got 11x11" in cls.unsupported(_problem(kernel=11))
    else:
        assert "3x3 kernel, got 5x5" in cls.unsupported(_problem(kernel=5))
    assert "stride 1" in cls.unsupported(_problem(stride=2))
    if cls is Winograd:
        assert cls.unsupported(_problem(dilation=2)) is None
    else:
        assert "dilation 1" in cls.unsupported(_problem(dilation=2))
    assert cls.unsupported(_problem(dims=1)) is None                     # one-row tiles
    reason = cls.unsupported(_problem(dims=1, kernel=5))
    assert "a 3 (1-D), 1x3 or 3x3" in reason and "kernel, got 5" in reason
    assert "stride 1 and dilation 1" in cls.unsupported(_problem(dims=1, stride=2))
    assert "1-D and 2-D" in cls.unsupported(_problem(dims=3))
    assert "transposed" in cls.unsupported(_problem(transposed=True))


@pytest.mark.parametrize("name", NAMES)
def test_functional_refuses_what_it_cannot_compute(rng, name):
    x, weight, _ = arrays(rng, np.float32, 1, 2, 2, 8, 8)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, weight, stride=2, algorithm=name)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv1d(x[:, :, 0], weight[..., 0], stride=2, algorithm=name)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, weight[:, :, :, :2], algorithm=name)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 3), groups=st.integers(1, 3), c=st.integers(1, 6), k=st.integers(1, 6),
       h=st.integers(1, 13), w=st.integers(1, 13), pads=st.lists(st.integers(0, 3), min_size=2, max_size=2),
       same=st.booleans(), name=st.sampled_from(NAMES), double=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_hypothesis_against_direct_and_torch(n, groups, c, k, h, w, pads, same, name, double, seed):
    rng = np.random.default_rng(seed)
    padding = "same" if same else tuple(pads)
    if not same and (h + 2 * pads[0] < 3 or w + 2 * pads[1] < 3):
        return
    if same and (h < 1 or w < 1):
        return
    dtype = np.float64 if double else np.float32
    x, weight, b = arrays(rng, dtype, n, c * groups, k * groups, h, w, groups)
    y = F.conv2d(x, weight, b, padding=padding, groups=groups, algorithm=name)
    assert_winograd_close(y, F.conv2d(x, weight, b, padding=padding, groups=groups, algorithm="direct"))
    assert_winograd_close(y, torch_conv2d(x, weight, b, padding=padding, groups=groups))


@pytest.mark.parametrize("n, size, tile", [(1, 7, 2), (1, 10, 2), (2, 7, 2), (1, 14, 4), (1, 28, 4), (8, 7, 4)])
def test_winograd_runs_the_chosen_tile(rng, n, size, tile):
    """'winograd' computes exactly what the fixed-tile algorithm choose_tile names computes."""
    from pyconv.functional._conv_winograd import choose_tile
    assert choose_tile(n, size, size) == tile
    x, weight, b = arrays(rng, np.float32, n, 8, 8, size, size)
    conv = F.prepack_conv(weight, b, padding=1, algorithm="winograd")
    assert np.array_equal(conv(x), F.conv2d(x, weight, b, padding=1, algorithm=f"winograd_f{tile}"))


# ---- kernels larger than 3x3: one 3x3 Winograd convolution over their 3x3 parts ----------------

# (N, C, K, H, W, groups, kernel, padding, dilation): square and oblong kernels of 2x2 to 3x3
# parts, groups, 'same' (asymmetric for even kernels), outputs smaller than a tile, dilation.
LARGE_GRID = [
    (1, 8, 6, 11, 13, 1, 5, 2, 1),
    (2, 6, 4, 9, 9, 2, 5, 0, 1),
    (1, 4, 5, 15, 12, 1, 7, 3, 1),
    (1, 8, 8, 10, 10, 2, 4, "same", 1),
    (1, 5, 7, 9, 12, 1, (3, 6), (1, 2), 1),
    (1, 12, 16, 20, 20, 1, 9, 4, 1),
    (2, 4, 4, 3, 3, 1, 5, 2, 1),
    (1, 6, 6, 17, 17, 1, 5, 2, 2),
    (1, 6, 9, 8, 7, 3, (5, 4), "same", 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, groups, kernel, padding, dilation", LARGE_GRID)
def test_large_kernel_against_direct_and_torch(rng, num_threads, n, c, k, h, w, groups, kernel, padding,
                                               dilation, dtype):
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c // groups) + kernel).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    args = dict(padding=padding, dilation=dilation, groups=groups)
    y = F.conv2d(x, weight, b, **args, algorithm="winograd")
    assert_winograd_close(y, F.conv2d(x, weight, b, **args, algorithm="direct"))
    assert_winograd_close(y, torch_conv2d(x, weight, b, **args))
    num_threads(1)
    one_thread = F.conv2d(x, weight, b, **args, algorithm="winograd")
    num_threads(2)
    assert np.array_equal(F.conv2d(x, weight, b, **args, algorithm="winograd"), one_thread)


def test_large_kernel_float32_error_against_float64(rng):
    """The alexnet 5x5 layer's shape, smaller: within the 1e-4 * max|ref| bound by a margin."""
    x = rng.standard_normal((1, 96, 27, 27))
    weight = rng.standard_normal((64, 48, 5, 5))
    ref = F.conv2d(x, weight, padding=2, groups=2, algorithm="direct")
    y = F.conv2d(x.astype(np.float32), weight.astype(np.float32), padding=2, groups=2, algorithm="winograd")
    assert np.abs(y - ref).max() / np.abs(ref).max() < 2e-5


@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_large_kernel_fused_epilogue_equals_unfused(rng, activation, args, reference):
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    weight = rng.standard_normal((6, 8, 5, 5)).astype(np.float32)
    scale, shift = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    residual = rng.standard_normal((2, 6, 12, 12)).astype(np.float32)
    conv = F.prepack_conv(weight, None, padding=2, algorithm="winograd", scale=scale, shift=shift,
                          activation=activation, activation_args=args)
    plain = F.conv2d(x, weight, padding=2, algorithm="winograd")
    expected = reference(plain * scale[:, None, None] + shift[:, None, None] + residual)
    assert_winograd_close(conv(x, residual=residual), expected)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (0, 2, 6, 11), (1, 5, 11, 11)])
def test_large_kernel_non_finite_input_as_torch(rng, value, where):
    """A NaN or Inf reaches exactly the outputs torch's does (not those of the parts' zero taps)."""
    x = rng.standard_normal((2, 6, 12, 12)).astype(np.float32)
    x[where] = value
    weight = rng.standard_normal((4, 6, 5, 5)).astype(np.float32)
    y = F.conv2d(x, weight, padding=1, algorithm="winograd")
    expected = torch_conv2d(x, weight, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert_winograd_close(np.nan_to_num(y), np.nan_to_num(expected))


@pytest.mark.parametrize("shape, kernel, groups, chosen", [
    ((1, 96, 27, 27), 5, 2, "winograd"),      # alexnet's 5x5: 48 in, 128 out per group
    ((1, 64, 56, 56), 5, 1, "winograd"),
    ((1, 64, 28, 28), 7, 1, "winograd"),
    ((1, 96, 7, 7), 5, 2, "gemm"),            # few outputs
    ((1, 16, 56, 56), 5, 1, "gemm"),          # few channels
    ((1, 3, 224, 224), 7, 1, "gemm"),         # a stem (and stride 2 in practice)
    ((1, 64, 28, 28), 11, 1, "gemm"),         # beyond WINOGRAD_LARGE_MAX_KERNEL
])
def test_auto_rule_for_large_kernels(shape, kernel, groups, chosen):
    out_channels = 256 if groups == 2 else 64
    weight = np.zeros((out_channels, shape[1] // groups, kernel, kernel), np.float32)
    conv = F.prepack_conv(weight, None, padding=kernel // 2, groups=groups)
    assert conv.algorithm_for(shape) == chosen


# ---- one-row tiles: 1-D kernels of 3 and 1x3 kernels, F(1x4, 1x3) / F(1x2, 1x3)

def torch_conv1d(x, w, b=None, **kwargs):
    tensor = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return TF.conv1d(tensor(x), tensor(w), tensor(b), **kwargs).numpy()


def arrays_1d(rng, dtype, n, c, k, length, groups=1, bias=True):
    x = rng.standard_normal((n, c, length)).astype(dtype)
    weight = rng.standard_normal((k, c // groups, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    return x, weight, b


# (N, C, K, L, groups, padding): lengths below one tile and not multiples of 4 or 2, groups, every padding.
ROW_GRID = [
    (1, 3, 5, 9, 1, 1),
    (2, 8, 16, 37, 2, 0),
    (1, 16, 24, 1, 1, 1),
    (3, 5, 7, 2, 1, 2),
    (1, 6, 6, 6, 3, (2, 1)),
    (2, 12, 10, 23, 1, "same"),
    (1, 9, 13, 40, 1, "valid"),
    (2, 40, 36, 130, 4, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n, c, k, length, groups, padding", ROW_GRID)
def test_rows_1d_against_direct_and_torch(rng, n, c, k, length, groups, padding, name, dtype):
    if isinstance(padding, tuple):   # asymmetric: pad explicitly, torch's conv1d takes one number
        x, weight, b = arrays_1d(rng, dtype, n, c, k, length, groups)
        x = np.pad(x, ((0, 0), (0, 0), padding))
        padding = 0
    else:
        x, weight, b = arrays_1d(rng, dtype, n, c, k, length, groups)
    y = F.conv1d(x, weight, b, padding=padding, groups=groups, algorithm=name)
    assert y.dtype == dtype
    assert_winograd_close(y, F.conv1d(x, weight, b, padding=padding, groups=groups, algorithm="direct"))
    assert_winograd_close(y, torch_conv1d(x, weight, b, padding=padding, groups=groups))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n, c, k, h, w, padding", [(2, 8, 6, 5, 19, (0, 1)), (1, 5, 7, 3, 2, (1, 1)),
                                                    (1, 16, 16, 7, 33, "same")])
def test_rows_1x3_against_direct_and_torch(rng, n, c, k, h, w, padding, name, dtype):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((k, c, 1, 3)).astype(dtype)
    y = F.conv2d(x, weight, padding=padding, algorithm=name)
    assert_winograd_close(y, F.conv2d(x, weight, padding=padding, algorithm="direct"))
    assert_winograd_close(y, torch_conv2d(x, weight, padding=padding))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dilation, padding", [(2, 2), (3, 1), (2, "same")])
def test_rows_1d_dilated_against_torch(rng, num_threads, dilation, padding, dtype):
    x, weight, b = arrays_1d(rng, dtype, 2, 8, 6, 29)
    y = F.conv1d(x, weight, b, padding=padding, dilation=dilation, algorithm="winograd")
    assert_winograd_close(y, torch_conv1d(x, weight, b, padding=padding, dilation=dilation))
    num_threads(1)
    one = F.conv1d(x, weight, b, padding=padding, dilation=dilation, algorithm="winograd")
    num_threads(2)
    assert np.array_equal(F.conv1d(x, weight, b, padding=padding, dilation=dilation, algorithm="winograd"), one)


@pytest.mark.parametrize("name", NAMES)
def test_rows_thread_determinism_and_float32_error(rng, num_threads, name):
    """Many tiles and channels (several tasks, output channels split): 1, 2 and 3 threads give the same bits,
    within 1e-4 * max|ref| of a float64 reference (measured on such data: F(1x4, 1x3) 2.9e-6, F(1x2, 1x3) 5e-7)."""
    x, weight, b = arrays_1d(rng, np.float32, 2, 256, 96, 300)
    num_threads(1)
    one = F.conv1d(x, weight, b, padding=1, algorithm=name)
    for threads in (2, 3):
        num_threads(threads)
        assert np.array_equal(F.conv1d(x, weight, b, padding=1, algorithm=name), one)
    reference = F.conv1d(x.astype(np.float64), weight.astype(np.float64), b.astype(np.float64), padding=1,
                         algorithm="direct")
    assert np.abs(one - reference).max() <= 1e-4 * np.abs(reference).max()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0), (1, 3, 17), (1, 5, 39)])
def test_rows_non_finite_input_as_torch(rng, name, value, where):
    x, weight, b = arrays_1d(rng, np.float32, 2, 6, 4, 40)
    x[where] = value
    y = F.conv1d(x, weight, b, padding=1, algorithm=name)
    expected = torch_conv1d(x, weight, b, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.array_equal(np.isinf(y), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_winograd_close(y[finite], expected[finite])


@pytest.mark.parametrize("name", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_rows_fused_epilogue_equals_unfused(rng, activation, args, reference, name):
    x, weight, _ = arrays_1d(rng, np.float32, 2, 6, 10, 27, bias=False)
    scale, shift = rng.uniform(0.5, 2.0, 10), rng.standard_normal(10)
    conv = F.prepack_conv(weight, None, padding=1, algorithm=name, scale=scale, shift=shift,
                          activation=activation, activation_args=args)
    plain = F.conv1d(x, weight, padding=1, algorithm=name)
    residual = rng.standard_normal(plain.shape).astype(np.float32)
    affine = plain * scale.astype(np.float32)[:, None] + shift.astype(np.float32)[:, None]
    assert_close(conv(x, residual=residual), reference(affine + residual))


@pytest.mark.parametrize("shape, kernel, groups, chosen", [
    ((1, 256, 4096), (3,), 1, "winograd"),
    ((1, 32, 1024), (3,), 1, "winograd"),
    ((1, 16, 1024), (3,), 1, "gemm"),         # few channels: the GEMM wins (bench/ALGORITHMS.md)
    ((1, 64, 8, 32), (1, 3), 1, "winograd"),
    ((1, 64, 8, 32), (1, 3), 4, "gemm"),      # 16 per group
    ((1, 64, 512), (5,), 1, "gemm"),          # one-row tiles take kernels of 3 only
])
def test_auto_rule_for_one_row_tiles(shape, kernel, groups, chosen):
    weight = np.zeros((64, shape[1] // groups) + kernel, np.float32)
    conv = F.prepack_conv(weight, None, padding=tuple(k // 2 for k in kernel), groups=groups)
    assert conv.algorithm_for(shape) == chosen
