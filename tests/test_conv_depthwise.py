"""The depthwise algorithm (pyconv.functional._conv_depthwise) against the direct kernel and torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from pyconv._kernels.activation import KINDS as ACTIVATION_KINDS
from pyconv._kernels.conv_depthwise import LAYOUT_ALIGNED, LAYOUT_BLOCKED, LAYOUT_ROWS, depthwise_conv2d
from pyconv._kernels.epilogue import apply_epilogue
from pyconv.functional._conv_depthwise import DepthwiseConv
from fused_activations import FUSED_ACTIVATIONS
from tolerances import assert_close

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel lengths")

DTYPES = [np.float32, np.float64]

# (channels, multiplier, spatial, kernel, stride, padding, dilation): 2-D.  Widths below, at and
# past one and two vectors (8 and 16 float32 on AVX) so every kernel meets every row tail; the
# dedicated 3x3 / 5x5 stride 1 / 2 kernels and the generic one all appear.
CASES_2D = [
    (3, 1, (9, 11), 3, 1, 1, 1),
    (4, 2, (10, 7), 3, 2, 1, 1),
    (5, 1, (13, 30), 5, 1, 2, 1),
    (2, 3, (17, 40), 5, 2, 2, 1),
    (3, 1, (9, 9), (2, 4), (1, 3), (1, 0), (2, 1)),
    (6, 1, (1, 1), 3, 1, 1, 1),
    (2, 1, (5, 3), 7, 1, 3, 1),
    (17, 1, (8, 8), 3, 1, 1, 1),
    (1, 5, (8, 100), 3, 2, 0, 2),
    (3, 1, (16, 16), 3, 1, 0, 1),
    (3, 1, (6, 33), 3, 2, 0, 1),
    (2, 2, (7, 17), 5, 1, 0, 1),
    (2, 1, (12, 25), 5, 2, 1, 1),
    (4, 1, (11, 23), 1, 1, 0, 1),
    (3, 1, (9, 31), 3, 3, 1, 1),
    (2, 1, (10, 14), (3, 5), (2, 1), (1, 2), 1),
    (3, 1, (9, 19), 3, 1, "same", 2),
    (2, 2, (8, 12), (4, 2), 1, "same", 1),      # 'same' with uneven padding: 1 before, 2 after
    (2, 1, (8, 12), 3, 1, "valid", 1),
    (1, 1, (30, 3), 3, (1, 2), (1, 1), 1),
]


def _torch_conv(x, w, b, **kwargs):
    conv = torch.nn.functional.conv1d if x.ndim == 3 else torch.nn.functional.conv2d
    return conv(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kwargs).numpy()


def _arrays(rng, batch, channels, multiplier, spatial, kernel, dtype):
    kernel = (kernel,) * len(spatial) if isinstance(kernel, int) else kernel
    x = rng.standard_normal((batch, channels) + tuple(spatial)).astype(dtype)
    w = rng.standard_normal((channels * multiplier, 1) + tuple(kernel)).astype(dtype)
    b = rng.standard_normal(channels * multiplier).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES_2D, ids=str)
def test_conv2d_matches_direct_and_torch(rng, case, dtype):
    channels, multiplier, spatial, kernel, stride, padding, dilation = case
    x, w, b = _arrays(rng, 2, channels, multiplier, spatial, kernel, dtype)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=channels)
    ours = F.conv2d(x, w, b, algorithm="depthwise", **kwargs)
    assert ours.dtype == dtype
    assert_close(ours, F.conv2d(x, w, b, algorithm="direct", **kwargs))
    assert_close(ours, _torch_conv(x, w, b, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("length, kernel, stride, padding, dilation, multiplier", [
    (37, 3, 1, 1, 1, 1), (40, 5, 2, 2, 1, 2), (9, 4, 3, "valid", 2, 1), (1, 3, 1, 1, 1, 3), (33, 2, 1, "same", 3, 1),
])
def test_conv1d_matches_direct_and_torch(rng, length, kernel, stride, padding, dilation, multiplier, dtype):
    x, w, b = _arrays(rng, 3, 4, multiplier, (length,), kernel, dtype)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=4)
    ours = F.conv1d(x, w, b, algorithm="depthwise", **kwargs)
    assert_close(ours, F.conv1d(x, w, b, algorithm="direct", **kwargs))
    assert_close(ours, _torch_conv(x, w, b, **kwargs))


def test_one_plane_split_into_row_bands(rng, num_threads):
    """Fewer planes than threads: tasks are bands of output rows, each row computed once."""
    x, w, b = _arrays(rng, 1, 1, 3, (57, 41), 3, np.float32)
    num_threads(2)
    for stride in (1, 2):
        ours = F.conv2d(x, w, b, stride=stride, padding=1, algorithm="depthwise")
        assert_close(ours, _torch_conv(x, w, b, stride=stride, padding=1))


def test_tall_plane_split_into_bands_by_cache_budget(rng):
    """A plane whose rows do not all fit the per-thread buffer is computed band by band."""
    x, w, b = _arrays(rng, 1, 2, 1, (300, 200), 5, np.float64)
    for stride in (1, 2):
        ours = F.conv2d(x, w, b, stride=stride, padding=2, groups=2, algorithm="depthwise")
        assert_close(ours, _torch_conv(x, w, b, stride=stride, padding=2, groups=2))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_configurations_match_direct(data):
    dims = data.draw(st.sampled_from([1, 2]), label="dims")
    channels = data.draw(st.integers(1, 20), label="channels")
    multiplier = data.draw(st.integers(1, 3), label="multiplier")
    kernel = tuple(data.draw(st.integers(1, 6), label="kernel") for _ in range(dims))
    stride = tuple(data.draw(st.integers(1, 3), label="stride") for _ in range(dims))
    dilation = tuple(data.draw(st.integers(1, 3), label="dilation") for _ in range(dims))
    padding = tuple(data.draw(st.integers(0, 3), label="padding") for _ in range(dims))
    spatial = tuple(
        data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 40), label="size")
        for k, d, p in zip(kernel, dilation, padding))
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x, w, b = _arrays(rng, data.draw(st.integers(1, 2), label="batch"), channels, multiplier, spatial, kernel, dtype)
    conv = F.conv1d if dims == 1 else F.conv2d
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=channels)
    assert_close(conv(x, w, b, algorithm="depthwise", **kwargs), conv(x, w, b, algorithm="direct", **kwargs))


@pytest.mark.parametrize("kernel, stride, channels, multiplier", [(3, 1, 5, 1), (3, 2, 2, 2), (5, 1, 3, 1), (5, 2, 1, 1),
                                                                   (4, 3, 3, 1)])
def test_thread_count_does_not_change_bits(rng, num_threads, kernel, stride, channels, multiplier):
    x, w, b = _arrays(rng, 2, channels, multiplier, (29, 37), kernel, np.float32)
    conv = F.prepack_conv(w, b, stride=stride, padding=kernel // 2, groups=channels, algorithm="depthwise",
                          activation="silu", scale=np.linspace(0.5, 1.5, channels * multiplier))
    residual = rng.standard_normal(conv(x).shape).astype(np.float32)
    num_threads(1)
    one = conv(x, residual)
    for threads in (2, 3):
        num_threads(threads)
        assert np.array_equal(conv(x, residual), one)


ACTIVATIONS = FUSED_ACTIVATIONS


@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (5, 1), (2, 1)])
def test_fused_epilogue_equals_unfused(rng, activation, args, reference, kernel, stride):
    x, w, b = _arrays(rng, 2, 3, 2, (11, 19), kernel, np.float32)
    scale = rng.uniform(0.5, 2.0, 6)
    shift = rng.standard_normal(6)
    kwargs = dict(stride=stride, padding=kernel // 2, groups=3)
    conv = F.prepack_conv(w, None, algorithm="depthwise", scale=scale, shift=shift, activation=activation,
                          activation_args=args, **kwargs)
    plain = F.conv2d(x, w, None, algorithm="depthwise", **kwargs)
    residual = rng.standard_normal(plain.shape).astype(np.float32)
    expected = reference((plain * scale[:, None, None] + shift[:, None, None]).astype(np.float32) + residual)
    assert_close(conv(x, residual=residual), expected)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (4, 1, 2)])
def test_nan_and_inf_propagate_as_in_torch(rng, kernel, stride, padding):
    x, w, b = _arrays(rng, 1, 2, 1, (9, 12), kernel, np.float32)
    x[0, 0, 4, 5] = np.nan
    x[0, 1, 0, 0] = np.inf
    kwargs = dict(stride=stride, padding=padding, groups=2)
    ours = F.conv2d(x, w, b, algorithm="depthwise", **kwargs)
    expected = _torch_conv(x, w, b, **kwargs)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(expected))
    assert_close(ours[finite], expected[finite])


def test_non_finite_weight_meets_the_padding_as_in_torch(rng):
    """torch multiplies the padding's zeros too: 0 * inf is nan at the border."""
    x, w, b = _arrays(rng, 1, 2, 1, (6, 7), 3, np.float64)
    w[1, 0, 0, 0] = np.inf
    ours = F.conv2d(x, w, b, padding=1, groups=2, algorithm="depthwise")
    expected = _torch_conv(x, w, b, padding=1, groups=2)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    assert np.isnan(ours[0, 1, 0]).all()


def test_non_contiguous_input(rng):
    x, w, b = _arrays(rng, 2, 3, 1, (20, 30), 3, np.float32)
    view = x[:, :, ::2, ::-1]
    ours = F.conv2d(view, w, b, padding=1, groups=3, algorithm="depthwise")
    assert_close(ours, _torch_conv(np.ascontiguousarray(view), w, b, padding=1, groups=3))


def test_batch_zero_and_unbatched(rng):
    x, w, b = _arrays(rng, 1, 3, 1, (8, 8), 3, np.float32)
    empty = F.conv2d(x[:0], w, b, padding=1, groups=3, algorithm="depthwise")
    assert empty.shape == (0, 3, 8, 8)
    assert_close(F.conv2d(x[0], w, b, padding=1, groups=3, algorithm="depthwise"),
                 _torch_conv(x, w, b, padding=1, groups=3)[0])


def _problem(weight_shape, transposed=False, **kwargs):
    return F.prepack_conv(np.ones(weight_shape, np.float32), transposed=transposed, **kwargs).problem


def test_unsupported_reasons():
    assert DepthwiseConv.unsupported(_problem((6, 1, 3, 3), groups=6)) is None
    assert DepthwiseConv.unsupported(_problem((6, 1, 3), groups=3)) is None
    assert "groups == in_channels" in DepthwiseConv.unsupported(_problem((6, 2, 3, 3), groups=3))
    assert "transposed" in DepthwiseConv.unsupported(_problem((6, 1, 3, 3), transposed=True, groups=6))
    assert "3-D" in DepthwiseConv.unsupported(_problem((4, 1, 3, 3, 3), groups=4))


def test_functional_refuses_non_depthwise(rng):
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm='depthwise'.*groups == in_channels"):
        F.conv2d(x, w, groups=2, algorithm="depthwise")


def _kernel_call(x, w, stride, padding, layout, threads=1, epilogue=None, params=(0.0, 0.0, 0.0)):
    """depthwise_conv2d itself on the row path or the channel-blocked path (multiplier 1, square kernel)."""
    kernel = w.shape[-1]
    out_size = [(n + 2 * p - kernel) // s + 1 for n, s, p in zip(x.shape[2:], stride, padding)]
    out = np.empty(x.shape[:2] + tuple(out_size), x.dtype)
    empty = np.empty(0, x.dtype)
    scale, shift, residual, activation = epilogue or (empty, empty, empty, 0)
    depthwise_conv2d(x, np.ascontiguousarray(w.reshape(w.shape[0], -1)), out, (kernel, kernel), tuple(stride),
                     tuple(padding), (1, 1), layout, empty, scale, shift, residual.reshape(-1), activation, *params,
                     threads)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56, 57, 112])
@pytest.mark.parametrize("kernel, stride", [(3, (1, 1)), (3, (2, 2)), (5, (1, 1)), (5, (2, 2)), (3, (2, 1)),
                                            (5, (1, 2))])
def test_aligned_rows_match_row_path_and_torch(rng, dtype, width, kernel, stride):
    """The aligned-rows kernels (whole vectors from a ring of zero-padded rows, every column a
    vector's lane): row widths around one and two vectors of 4-16 lanes, either stride along
    either axis, one image of a few planes (bands of output rows)."""
    x, w, _ = _arrays(rng, 1, 3, 1, (11, width), kernel, dtype)
    padding = (kernel // 2, kernel // 2)
    aligned = _kernel_call(x, w, stride, padding, LAYOUT_ALIGNED)
    assert_close(aligned, _kernel_call(x, w, stride, padding, LAYOUT_ROWS))
    assert_close(aligned, _torch_conv(x, w, None, stride=stride, padding=padding, groups=3))
    for threads in (2, 3):
        assert np.array_equal(_kernel_call(x, w, stride, padding, LAYOUT_ALIGNED, threads), aligned)


@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (5, 1), (5, 2)])
@pytest.mark.parametrize("multiplier", [1, 2])
def test_aligned_rows_nan_inf_padding_multiplier_and_epilogue(rng, kernel, stride, multiplier):
    """On the aligned-rows kernels: a channel multiplier reads each input plane once per output
    channel, the epilogue (shift, residual, ReLU) finishes every row (against torch); NaN and inf
    inputs propagate and a non-finite weight meets the zero padding (0 * inf is NaN) as on the row
    path."""
    x, w, _ = _arrays(rng, 2, 4, multiplier, (9, 64), kernel, np.float32)
    padding = (kernel // 2, kernel // 2)
    out_shape = (2, 4 * multiplier, (9 + 2 * padding[0] - kernel) // stride + 1,
                 (64 + 2 * padding[1] - kernel) // stride + 1)
    shift = rng.standard_normal(4 * multiplier).astype(np.float32)
    residual = rng.standard_normal(out_shape).astype(np.float32)

    def call(layout):
        out, empty = np.empty(out_shape, np.float32), np.empty(0, np.float32)
        depthwise_conv2d(x, np.ascontiguousarray(w.reshape(w.shape[0], -1)), out, (kernel, kernel),
                         (stride, stride), padding, (1, 1), layout, empty, empty, shift, residual.reshape(-1),
                         ACTIVATION_KINDS["relu"], 0.0, 0.0, 0.0, 2)
        return out

    conv = _torch_conv(x, w, None, stride=stride, padding=padding, groups=4)
    assert_close(call(LAYOUT_ALIGNED), np.maximum(conv + shift[:, None, None] + residual, 0))
    x[0, 1, 4, [0, 17, 63]] = np.nan
    x[1, 2, 0, 20] = np.inf
    w[3, 0, 0, 0] = np.inf
    ours, rows = call(LAYOUT_ALIGNED), call(LAYOUT_ROWS)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(rows))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(rows))
    assert np.isnan(ours[:, 3, 0]).all() and np.isinf(ours).any()  # output channel 3: weight row 3
    finite = np.isfinite(rows)
    assert_close(np.where(finite, ours, 0), np.where(finite, rows, 0))


# (batch, channels, spatial, kernel, stride, padding): channel counts below, at and past a block of
# lanes (8 or 16 float32, 4 or 8 float64) so the last block is partial; rows narrower than the
# 4-pixel block; vertical stride != horizontal (no row pairs); odd band lengths.
BLOCKED_CASES = [
    (1, 20, (13, 17), 3, (1, 1), (1, 1)),
    (2, 9, (12, 30), 3, (2, 2), (1, 1)),
    (1, 35, (11, 28), 5, (1, 1), (2, 2)),
    (1, 17, (15, 21), 5, (2, 2), (2, 2)),
    (1, 16, (9, 3), 3, (1, 1), (1, 1)),
    (2, 7, (6, 2), 5, (1, 1), (2, 2)),
    (1, 24, (14, 19), 3, (2, 1), (0, 1)),
    (1, 33, (10, 10), 5, (1, 2), (1, 0)),
    (3, 1, (8, 9), 3, (1, 1), (0, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", BLOCKED_CASES, ids=str)
def test_channel_blocked_path_matches_row_path_and_torch(rng, case, dtype):
    batch, channels, spatial, kernel, stride, padding = case
    x, w, _ = _arrays(rng, batch, channels, 1, spatial, kernel, dtype)
    blocked = _kernel_call(x, w, stride, padding, LAYOUT_BLOCKED)
    assert_close(blocked, _kernel_call(x, w, stride, padding, LAYOUT_ROWS))
    assert_close(blocked, _torch_conv(x, w, None, stride=stride, padding=padding, groups=channels))


@pytest.mark.parametrize("parts", ["scale, shift, residual", "scale, shift", "shift"])
@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_channel_blocked_path_thread_count_and_epilogue(rng, kernel, stride, parts):
    """Bands of output rows (one image, few blocks) give the same bits on 1-3 threads; the fused
    epilogue equals the unfused one (without a residual it runs on the channel-blocked values)."""
    x, w, _ = _arrays(rng, 1, 21, 1, (23, 26), kernel, np.float32)
    stride, padding = (stride, stride), (kernel // 2, kernel // 2)
    plain = _kernel_call(x, w, stride, padding, LAYOUT_BLOCKED)
    empty = np.empty(0, np.float32)
    scale = rng.uniform(0.5, 2.0, 21).astype(np.float32) if "scale" in parts else empty
    shift = rng.standard_normal(21).astype(np.float32)
    residual = rng.standard_normal(plain.shape).astype(np.float32) if "residual" in parts else empty
    epilogue = (scale, shift, residual, ACTIVATION_KINDS["relu"])
    one = _kernel_call(x, w, stride, padding, LAYOUT_BLOCKED, 1, epilogue)
    expected = (plain * (scale[:, None, None] if scale.size else 1) + shift[:, None, None]
                + (residual if residual.size else 0))
    assert_close(one, np.maximum(expected, 0))
    for threads in (2, 3):
        assert np.array_equal(_kernel_call(x, w, stride, padding, LAYOUT_BLOCKED, threads, epilogue), one)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, params", [
    ("identity", (0.0, 0.0, 0.0)), ("relu", (0.0, 0.0, 0.0)), ("hardtanh", (0.0, 6.0, 0.0)),
    ("hardtanh", (-0.5, 0.25, 0.0)), ("hardtanh", (np.nan, 1.0, 0.0)), ("hardtanh", (-1.0, np.nan, 0.0)),
    ("silu", (0.0, 0.0, 0.0)), ("leaky_relu", (0.1, 0.0, 0.0)), ("hardswish", (0.0, 0.0, 0.0))])
@pytest.mark.parametrize("parts", ["scale, shift", "scale", "shift", ""])
@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_channel_blocked_epilogue_bits_equal_separate_pass(rng, kernel, stride, parts, activation, params, dtype):
    """The channel-blocked path finishes the epilogue in the row kernels' registers (ReLU, hardtanh
    with bounds that are not NaN) or after them (the other activations): the same bits as
    epilogue_row's separate pass over its plain output, signed zeros, NaN and infinities included,
    for every part present or absent."""
    x, w, _ = _arrays(rng, 1, 19, 1, (11, 13), kernel, dtype)
    x[0, 2, 4, 4] = np.nan
    x[0, 5, 3, 3] = np.inf
    x[0, 7] = -0.0     # a plane of zeros (the sums start at +0.0): -0.0 once scaled by a negative scale
    empty = np.empty(0, dtype)
    scale = rng.uniform(-2.0, 2.0, 19).astype(dtype) if "scale" in parts else empty
    if scale.size:
        scale[7] = -abs(scale[7])
    shift = (rng.standard_normal(19) * 3).astype(dtype) if "shift" in parts else empty
    if shift.size:
        shift[7] = 0.0
    stride, padding = (stride, stride), (kernel // 2, kernel // 2)
    fused = _kernel_call(x, w, stride, padding, LAYOUT_BLOCKED, 2, (scale, shift, empty, ACTIVATION_KINDS[activation]),
                         params)
    unfused = _kernel_call(x, w, stride, padding, LAYOUT_BLOCKED)
    apply_epilogue(unfused.reshape(1, 19, -1), scale, shift, empty, ACTIVATION_KINDS[activation], *params, 1)
    assert np.array_equal(fused.view(np.uint8), unfused.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prepacked_blocked_weights_give_the_kernels_own_bits(rng, dtype):
    """pyconv.functional packs the channel-blocked filters once (pack_blocked_weight); the kernel packs
    them per call when given none: the same bits; a wrong-sized packing is refused."""
    x, w, b = _arrays(rng, 2, 21, 1, (15, 17), 3, dtype)
    packed_per_call = _kernel_call(x, w, (1, 1), (1, 1), LAYOUT_BLOCKED)
    prepacked = F.conv2d(x, w, None, padding=1, groups=21, algorithm="depthwise")
    assert np.array_equal(prepacked, packed_per_call)
    out = np.empty_like(packed_per_call)
    empty = np.empty(0, dtype)
    with pytest.raises(ValueError, match="blocked_weight"):
        depthwise_conv2d(x, np.ascontiguousarray(w.reshape(21, -1)), out, (3, 3), (1, 1), (1, 1), (1, 1),
                         LAYOUT_BLOCKED, np.ones(5, dtype), empty, empty, empty, 0, 0.0, 0.0, 0.0, 1)


def test_channel_blocked_path_nan_inf_and_padding(rng):
    """NaN/Inf inputs reach only their outputs; an infinite weight meets the padding's zeros (nan) as in torch."""
    x, w, b = _arrays(rng, 1, 12, 1, (9, 12), 5, np.float64)
    x[0, 3, 4, 5] = np.nan
    x[0, 7, 0, 0] = np.inf
    w[10, 0, 0, 0] = np.inf
    ours = _kernel_call(x, w, (1, 1), (2, 2), LAYOUT_BLOCKED)
    expected = _torch_conv(x, w, None, padding=2, groups=12)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_close(ours[finite], expected[finite])
