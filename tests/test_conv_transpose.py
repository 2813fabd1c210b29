"""conv_transpose1d/2d/3d against torch, against a float64 numpy oracle, and their errors."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

OPS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_OPS = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
DTYPES = [np.float32, np.float64]


def torch_conv_transpose(dims, x, w, b=None, **kwargs):
    """torch's result for numpy arguments, as a numpy array."""
    as_tensor = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return TORCH_OPS[dims](as_tensor(x), as_tensor(w), as_tensor(b), **kwargs).numpy()


def numpy_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation):
    """float64 oracle: zero-stuff the input, pad it, correlate with the flipped, dilated kernel."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    dims = x.ndim - 2
    batch, in_channels = x.shape[:2]
    kernel = w.shape[2:]
    stuffed = np.zeros((batch, in_channels) + tuple((n - 1) * s + 1 for n, s in zip(x.shape[2:], stride)))
    stuffed[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
    full = [d * (k - 1) for d, k in zip(dilation, kernel)]
    padded = np.pad(stuffed, [(0, 0), (0, 0)] + [(f, f + op) for f, op in zip(full, output_padding)])
    crop = tuple(slice(p, size - p) for p, size in zip(padding, padded.shape[2:]))
    padded = padded[(slice(None), slice(None)) + crop]
    windows = sliding_window_view(padded, [f + 1 for f in full], axis=tuple(range(2, 2 + dims)))
    windows = windows[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]  # (N, C_in, *out, *kernel)
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * dims]
    in_per_group = in_channels // groups
    kernel_axes = list(range(2 + dims, 2 + 2 * dims))
    outputs = []
    for g in range(groups):
        channels = slice(g * in_per_group, (g + 1) * in_per_group)
        part = np.tensordot(windows[:, channels], flipped[channels],
                            axes=([1] + kernel_axes, [0] + list(range(2, 2 + dims))))  # (N, *out, C_out_g)
        outputs.append(np.moveaxis(part, -1, 1))
    out = np.concatenate(outputs, axis=1)
    if b is not None:
        out += b.astype(np.float64).reshape((1, -1) + (1,) * dims)
    return out


def make(rng, dims, batch, in_channels, out_per_group, groups, size, kernel, dtype, bias=True):
    size = (size,) * dims if np.isscalar(size) else tuple(size)
    kernel = (kernel,) * dims if np.isscalar(kernel) else tuple(kernel)
    x = rng.standard_normal((batch, in_channels) + size).astype(dtype)
    w = rng.standard_normal((in_channels, out_per_group) + kernel).astype(dtype)
    b = rng.standard_normal(out_per_group * groups).astype(dtype) if bias else None
    return x, w, b


# (dims, batch, C_in, C_out/groups, groups, input size, kernel, stride, padding, output_padding, dilation, bias)
CASES = [
    (1, 1, 3, 2, 1, 7, 3, 1, 0, 0, 1, False),
    (1, 2, 4, 3, 1, 9, 4, 2, 1, 1, 1, True),
    (1, 3, 6, 1, 6, 11, 5, 3, 2, 2, 2, True),      # depthwise
    (1, 2, 6, 2, 3, 5, 3, 1, 2, 2, 3, True),       # output_padding < dilation, padding > 1
    (1, 1, 2, 5, 2, 1, 1, 1, 0, 0, 1, True),       # length 1, kernel 1
    (1, 2, 3, 2, 1, 4, 7, 4, 5, 3, 1, False),      # kernel longer than input, padding > kernel / 2
    (2, 1, 3, 2, 1, 5, 3, 1, 0, 0, 1, True),
    (2, 2, 4, 3, 2, (7, 5), (3, 2), (2, 3), (1, 0), (1, 2), (1, 2), True),
    (2, 2, 8, 1, 8, (6, 9), 3, 2, 1, 1, 1, True),  # depthwise
    (2, 1, 6, 4, 3, (4, 3), (1, 5), (1, 2), (0, 2), (0, 1), (2, 1), False),
    (2, 3, 2, 3, 1, (1, 1), 2, 2, 0, 0, 1, True),
    (2, 1, 4, 2, 2, (5, 6), (4, 3), (3, 1), (3, 1), (2, 1), (2, 3), True),
    (3, 1, 2, 2, 1, 3, 2, 1, 0, 0, 1, True),
    (3, 2, 4, 2, 2, (3, 4, 2), (3, 2, 2), (2, 1, 3), (1, 0, 1), (1, 0, 2), (1, 2, 1), True),
    (3, 1, 3, 1, 3, (2, 3, 4), 3, 2, 1, 1, 1, False),  # depthwise
    (3, 2, 2, 3, 1, (4, 2, 3), (1, 2, 3), (1, 3, 2), (0, 1, 2), (0, 2, 1), (2, 1, 2), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_torch(case, dtype, rng):
    dims, batch, c_in, c_out_g, groups, size, kernel, stride, padding, output_padding, dilation, bias = case
    x, w, b = make(rng, dims, batch, c_in, c_out_g, groups, size, kernel, dtype, bias)
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    assert_close(OPS[dims](x, w, b, **kwargs), torch_conv_transpose(dims, x, w, b, **kwargs))


@pytest.mark.parametrize("case", CASES[1::2], ids=[f"case{i}" for i in range(1, len(CASES), 2)])
def test_matches_numpy_oracle(case, rng):
    dims, batch, c_in, c_out_g, groups, size, kernel, stride, padding, output_padding, dilation, bias = case
    x, w, b = make(rng, dims, batch, c_in, c_out_g, groups, size, kernel, np.float64, bias)
    tup = lambda v: (v,) * dims if np.isscalar(v) else v  # noqa: E731
    expected = numpy_conv_transpose(x, w, b, tup(stride), tup(padding), tup(output_padding), groups, tup(dilation))
    actual = OPS[dims](x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                       dilation=dilation)
    assert_close(actual, expected)


def test_numpy_oracle_agrees_with_torch(rng):
    """The oracle itself is checked once against torch, so a shared mistake cannot hide."""
    x, w, b = make(rng, 2, 2, 4, 3, 2, (5, 4), (3, 2), np.float64)
    expected = torch_conv_transpose(2, x, w, b, stride=(2, 3), padding=(1, 2), output_padding=(1, 0),
                                    groups=2, dilation=(2, 1))
    assert_close(numpy_conv_transpose(x, w, b, (2, 3), (1, 2), (1, 0), 2, (2, 1)), expected)


# DESIGN.md layer suite, transposed rows, at small channel counts.
LAYER_SUITE = {
    "4x4_s2_p1": dict(channels=(16, 8), size=16, kernel=4, stride=2, padding=1, output_padding=0),
    "2x2_s2": dict(channels=(8, 4), size=16, kernel=2, stride=2, padding=0, output_padding=0),
    "3x3_s2_p1_op1": dict(channels=(8, 4), size=14, kernel=3, stride=2, padding=1, output_padding=1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer", LAYER_SUITE)
def test_layer_suite_shapes(layer, dtype, rng):
    spec = LAYER_SUITE[layer]
    c_in, c_out = spec["channels"]
    x, w, b = make(rng, 2, 1, c_in, c_out, 1, spec["size"], spec["kernel"], dtype)
    kwargs = dict(stride=spec["stride"], padding=spec["padding"], output_padding=spec["output_padding"])
    actual = F.conv_transpose2d(x, w, b, **kwargs)
    assert actual.shape == (1, c_out, 2 * spec["size"], 2 * spec["size"])
    assert_close(actual, torch_conv_transpose(2, x, w, b, **kwargs))
    expected64 = numpy_conv_transpose(x, w, b, (spec["stride"],) * 2, (spec["padding"],) * 2,
                                      (spec["output_padding"],) * 2, 1, (1, 1))
    np.testing.assert_allclose(actual, expected64, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_unbatched(dims, dtype, rng):
    x, w, b = make(rng, dims, 1, 4, 3, 2, 4, 3, dtype)
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2)
    actual = OPS[dims](x[0], w, b, **kwargs)
    assert actual.shape == torch_conv_transpose(dims, x, w, b, **kwargs).shape[1:]
    assert_close(actual, torch_conv_transpose(dims, x[0], w, b, **kwargs))


def test_sequence_arguments_and_numpy_ints(rng):
    x, w, b = make(rng, 2, 2, 3, 2, 1, (5, 6), (2, 3), np.float64)
    kwargs = dict(stride=[np.int64(2), 1], padding=(np.int32(1), 0), output_padding=(1, 0),
                  groups=np.int64(1), dilation=[1])
    expected = torch_conv_transpose(2, x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=1)
    assert_close(F.conv_transpose2d(x, w, b, **kwargs), expected)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_thread_count_does_not_change_bits(dims, num_threads, rng):
    size = {1: 97, 2: (13, 11), 3: (5, 7, 6)}[dims]
    x, w, b = make(rng, dims, 3, 6, 5, 2, size, 3, np.float32)
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2)
    num_threads(1)
    one = OPS[dims](x, w, b, **kwargs)
    num_threads(2)
    two = OPS[dims](x, w, b, **kwargs)
    assert np.array_equal(one, two)
    assert_close(two, torch_conv_transpose(dims, x, w, b, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_arguments(dtype, rng):
    base_x = rng.standard_normal((2, 8, 9, 12)).astype(dtype)
    base_w = rng.standard_normal((3, 4, 8, 6)).astype(dtype)   # transposed to (8, 4, 3, 6) below
    base_b = rng.standard_normal(16).astype(dtype)
    x = base_x[:, ::2, ::-1, 1::2]          # (2, 4, 9, 6): strided, negative stride
    w = base_w.transpose(2, 1, 0, 3)[:4, :, :, ::-2]   # (4, 4, 3, 3)
    b = base_b[::-2][:8]                    # (8,)
    assert not (x.flags.c_contiguous or w.flags.c_contiguous or b.flags.c_contiguous)
    kwargs = dict(stride=(2, 1), padding=1, output_padding=(1, 0), groups=2)
    assert_close(F.conv_transpose2d(x, w, b, **kwargs), torch_conv_transpose(2, x, w, b, **kwargs))
    fortran = np.asfortranarray(x)
    assert_close(F.conv_transpose2d(fortran, w, b, **kwargs), torch_conv_transpose(2, x, w, b, **kwargs))


def test_byte_swapped_input(rng):
    x, w, b = make(rng, 1, 2, 3, 2, 1, 6, 3, np.float64)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    assert_close(F.conv_transpose1d(swapped, w, b, stride=2), torch_conv_transpose(1, x, w, b, stride=2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate_like_torch(dtype, rng):
    x, w, b = make(rng, 2, 1, 2, 3, 1, (5, 6), 3, dtype)
    x[0, 0, 1, 2] = np.nan
    x[0, 1, 3, 4] = np.inf
    w[1, 0, 0, 1] = 0.0                     # inf * 0 -> nan, as in torch
    kwargs = dict(stride=2, padding=1)
    actual = F.conv_transpose2d(x, w, b, **kwargs)
    expected = torch_conv_transpose(2, x, w, b, **kwargs)
    assert np.isnan(actual).any() and np.isinf(actual).any() and np.isfinite(actual).any()
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    assert np.array_equal(np.isposinf(actual), np.isposinf(expected))
    assert np.array_equal(np.isneginf(actual), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert_close(actual[finite], expected[finite])


def test_nan_in_weight_and_bias(rng):
    x, w, b = make(rng, 1, 2, 2, 2, 1, 5, 3, np.float64)
    w[0, 1, 2] = np.nan
    b[0] = np.nan
    actual = F.conv_transpose1d(x, w, b, stride=2)
    expected = torch_conv_transpose(1, x, w, b, stride=2)
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    assert np.isnan(actual[:, 0]).all() and not np.isnan(actual[:, 1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_batch_zero(dims, dtype, rng):
    x, w, b = make(rng, dims, 0, 4, 3, 2, 3, 2, dtype)
    actual = OPS[dims](x, w, b, stride=2, groups=2)
    expected = torch_conv_transpose(dims, x, w, b, stride=2, groups=2)
    assert actual.shape == expected.shape == (0, 6) + (6,) * dims
    assert actual.dtype == dtype


def test_returns_new_array_and_leaves_input_alone(rng):
    x, w, b = make(rng, 2, 1, 2, 2, 1, 4, 3, np.float32)
    copies = [a.copy() for a in (x, w, b)]
    out = F.conv_transpose2d(x, w, b)
    assert not any(np.shares_memory(out, a) for a in (x, w, b))
    assert all(np.array_equal(a, c) for a, c in zip((x, w, b), copies))


X1 = np.zeros((1, 4, 5), np.float32)
W1 = np.zeros((4, 2, 3), np.float32)
X2 = np.zeros((1, 4, 5, 5), np.float32)
W2 = np.zeros((4, 2, 3, 3), np.float32)

VALUE_ERRORS = [
    ("input ndim", F.conv_transpose2d, (np.zeros((5, 5), np.float32), W2), {}, r"expected input to be 3D or 4D"),
    ("input ndim 1d", F.conv_transpose1d, (np.zeros((1, 1, 4, 5), np.float32), W1), {}, "input"),
    ("input ndim 3d", F.conv_transpose3d, (np.zeros((4, 5, 5), np.float32), np.zeros((4, 2, 3, 3, 3), np.float32)), {},
     r"expected input to be 4D or 5D"),
    ("weight ndim", F.conv_transpose2d, (X2, W1), {}, r"expected weight to be 4D"),
    ("channels", F.conv_transpose2d, (np.zeros((1, 3, 5, 5), np.float32), W2), {},
     r"expected input with 4 channels \(weight\.shape\[0\]\), got 3"),
    ("channels unbatched", F.conv_transpose1d, (np.zeros((5, 5), np.float32), W1), {}, r"weight\.shape\[0\]"),
    ("groups divisor", F.conv_transpose2d, (X2, W2), dict(groups=3),
     r"weight\.shape\[0\] \(4\).*divisible by groups \(3\)"),
    ("groups zero", F.conv_transpose2d, (X2, W2), dict(groups=0), "groups"),
    ("groups negative", F.conv_transpose1d, (X1, W1), dict(groups=-2), "groups"),
    ("stride zero", F.conv_transpose2d, (X2, W2), dict(stride=(1, 0)), "stride"),
    ("stride negative", F.conv_transpose1d, (X1, W1), dict(stride=-1), "stride"),
    ("stride length", F.conv_transpose2d, (X2, W2), dict(stride=(1, 2, 3)), "stride"),
    ("dilation zero", F.conv_transpose2d, (X2, W2), dict(dilation=0), "dilation"),
    ("padding negative", F.conv_transpose2d, (X2, W2), dict(padding=(0, -1)), "expected padding"),
    ("output_padding negative", F.conv_transpose1d, (X1, W1), dict(output_padding=-1), "expected output_padding"),
    ("output_padding == stride", F.conv_transpose2d, (X2, W2), dict(stride=2, output_padding=2), "output_padding"),
    ("output_padding >= max(stride, dilation)", F.conv_transpose2d, (X2, W2),
     dict(stride=(2, 1), output_padding=(1, 1)), "output_padding"),
    ("output_padding == dilation", F.conv_transpose1d, (X1, W1), dict(dilation=2, output_padding=2), "output_padding"),
    ("output negative", F.conv_transpose2d, (X2, W2), dict(padding=4), "output size"),
    ("output zero", F.conv_transpose1d, (np.zeros((1, 4, 1), np.float32), np.zeros((4, 2, 2), np.float32)),
     dict(padding=1), "output size"),
    ("bias length", F.conv_transpose2d, (X2, W2, np.zeros(4, np.float32)), {}, r"bias of shape \(2,\)"),
    ("bias length groups", F.conv_transpose2d, (X2, W2, np.zeros(2, np.float32)), dict(groups=2),
     r"bias of shape \(4,\)"),
    ("bias ndim", F.conv_transpose1d, (X1, W1, np.zeros((1, 2), np.float32)), {}, "bias"),
    ("empty weight", F.conv_transpose2d, (X2, np.zeros((4, 0, 3, 3), np.float32)), {}, "weight"),
    ("empty kernel", F.conv_transpose1d, (X1, np.zeros((4, 2, 0), np.float32)), {}, "weight"),
    ("empty spatial", F.conv_transpose2d, (np.zeros((1, 4, 0, 5), np.float32), W2), {}, "input"),
]


@pytest.mark.parametrize("op, args, kwargs, match", [c[1:] for c in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS])
def test_value_errors(op, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        op(*args, **kwargs)
    with pytest.raises(ValueError, match=op.__name__):
        op(*args, **kwargs)


@pytest.mark.parametrize("op, args, kwargs", [c[1:4] for c in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS])
def test_torch_refuses_the_same_arguments(op, args, kwargs):
    """Each ValueError case is one torch refuses too (so pyconv is not stricter than torch)."""
    tensors = [torch.from_numpy(a) for a in args]
    with pytest.raises(RuntimeError):
        getattr(TF, op.__name__)(*tensors, **kwargs)


TYPE_ERRORS = [
    ("int input", (X2.astype(np.int32), W2), {}, "input"),
    ("bool input", (X2.astype(bool), W2), {}, "input"),
    ("complex weight", (X2, W2.astype(np.complex64)), {}, "weight"),
    ("float16 weight", (X2, W2.astype(np.float16)), {}, "weight"),
    ("int bias", (X2, W2, np.zeros(2, np.int64)), {}, "bias"),
    ("dtype mismatch weight", (X2, W2.astype(np.float64)), {}, r"weight.*float32.*float64"),
    ("dtype mismatch bias", (X2, W2, np.zeros(2, np.float64)), {}, "bias"),
    ("None input", (None, W2), {}, "input"),
    ("float stride", (X2, W2), dict(stride=2.0), "stride"),
    ("bool padding", (X2, W2), dict(padding=True), "padding"),
    ("float groups", (X2, W2), dict(groups=1.0), "groups"),
]


@pytest.mark.parametrize("args, kwargs, match", [c[1:] for c in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors(args, kwargs, match):
    with pytest.raises(TypeError, match=match):
        F.conv_transpose2d(*args, **kwargs)
