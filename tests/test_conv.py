"""conv1d / conv2d / conv3d against torch and against a float64 numpy oracle."""
import itertools

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

OPS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_OPS = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
DTYPES = [np.float32, np.float64]


def torch_conv(dims, x, w, b=None, **kwargs):
    """torch's result for the same call, as a numpy array."""
    tensor = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return TORCH_OPS[dims](tensor(x), tensor(w), tensor(b), **kwargs).numpy()


def make_arrays(rng, dtype, input_shape, weight_shape, bias=True):
    """Uniform(-1, 1) input, weight and (optionally) bias."""
    x = rng.uniform(-1, 1, input_shape).astype(dtype)
    w = rng.uniform(-1, 1, weight_shape).astype(dtype)
    b = rng.uniform(-1, 1, weight_shape[0]).astype(dtype) if bias else None
    return x, w, b


def reference_conv(x, w, b, stride, pad_before, pad_after, dilation, groups):
    """float64 convolution from sliding windows and einsum: an oracle independent of the kernel."""
    dims = w.ndim - 2
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(pad_before, pad_after)))
    span = [d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:])]
    windows = sliding_window_view(x, span, axis=tuple(range(2, 2 + dims)))  # (N, C, *positions, *span)
    windows = windows[(...,) + tuple(slice(None, None, d) for d in dilation)]
    windows = windows[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]
    n, channels, out_channels = x.shape[0], x.shape[1], w.shape[0]
    windows = windows.reshape((n, groups, channels // groups) + windows.shape[2:])
    w = w.astype(np.float64).reshape((groups, out_channels // groups) + w.shape[1:])
    out, taps = "xyz"[:dims], "pqr"[:dims]
    y = np.einsum(f"ngc{out}{taps},gkc{taps}->ngk{out}", windows, w)
    y = y.reshape((n, out_channels) + y.shape[3:])
    if b is not None:
        y += b.astype(np.float64).reshape((out_channels,) + (1,) * dims)
    return y


# ---------------------------------------------------------------- grid against torch

# Per dimension count: input spatial size, a non-square kernel (even sizes make 'same' pad
# asymmetrically), strides, paddings, dilations.
GRID = {
    1: dict(size=(13,), kernel=(4,), strides=[1, 2, 3], paddings=[0, 1, (2,), "same", "valid"], dilations=[1, 3]),
    2: dict(size=(9, 11), kernel=(3, 2), strides=[1, 2, (2, 1), (1, 3)], paddings=[0, 1, (2, 0), "same", "valid"],
            dilations=[1, (2, 1)]),
    3: dict(size=(5, 7, 6), kernel=(2, 3, 2), strides=[1, 2, (1, 2, 3)], paddings=[0, 1, (1, 0, 2), "same", "valid"],
            dilations=[1, (2, 1, 2)]),
}
# (groups, in_channels, out_channels): dense (one block of 4 output channels; 4 + 4 + 1),
# grouped, depthwise, depthwise with channel multiplier 2.
GROUPS = [(1, 3, 4), (1, 2, 9), (2, 4, 6), (3, 3, 3), (3, 3, 6)]


def _grid_cases():
    for dims, grid in GRID.items():
        for stride, padding, dilation in itertools.product(grid["strides"], grid["paddings"], grid["dilations"]):
            if padding == "same" and stride != 1:
                continue
            yield pytest.param(dims, stride, padding, dilation, id=f"{dims}d-s{stride}-p{padding}-d{dilation}")


@pytest.mark.parametrize("dims, stride, padding, dilation", list(_grid_cases()))
@pytest.mark.parametrize("groups, in_channels, out_channels", GROUPS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(dims, stride, padding, dilation, groups, in_channels, out_channels, bias, dtype, rng):
    grid = GRID[dims]
    x, w, b = make_arrays(rng, dtype, (2, in_channels) + grid["size"],
                          (out_channels, in_channels // groups) + grid["kernel"], bias)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert_close(OPS[dims](x, w, b, **kwargs), torch_conv(dims, x, w, b, **kwargs))


@pytest.mark.parametrize("kernel", [(1, 1), (3, 1), (1, 3), (5, 5), (2, 4), (7, 3), (9, 11)])
@pytest.mark.parametrize("stride, padding", [(1, 0), (1, "same"), ((2, 1), (3, 1)), ((1, 2), (0, 2)), (3, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_shapes_2d(kernel, stride, padding, dtype, rng):
    x, w, b = make_arrays(rng, dtype, (3, 2, 9, 11), (5, 2) + kernel)
    kwargs = dict(stride=stride, padding=padding)
    assert_close(F.conv2d(x, w, b, **kwargs), torch_conv(2, x, w, b, **kwargs))


@pytest.mark.parametrize("dims, input_shape, weight_shape, kwargs", [
    (1, (1, 1, 1), (1, 1, 1), {}),                                  # smallest
    (1, (2, 3, 17), (4, 3, 17), {}),                                # kernel = input: one output
    (1, (2, 3, 7), (4, 3, 6), dict(padding="same", dilation=2)),   # 'same' wider than the input
    (1, (3, 2, 10), (2, 2, 1), dict(stride=4)),
    (2, (1, 4, 1, 23), (6, 2, 1, 5), dict(groups=2, stride=(1, 2))),
    (2, (2, 3, 8, 8), (4, 3, 3, 3), dict(padding=3, dilation=3)),   # taps that read only padding
    (2, (1, 2, 4, 4), (3, 2, 3, 3), dict(padding=(4, 5), stride=(3, 2))),
    (2, (1, 8, 7, 7), (8, 1, 3, 3), dict(padding=1, groups=8)),
    (3, (1, 2, 3, 4, 5), (3, 2, 3, 4, 5), {}),
    (3, (2, 4, 6, 5, 4), (4, 1, 1, 3, 2), dict(padding="same", groups=4)),
    (3, (1, 3, 5, 6, 7), (6, 1, 3, 3, 3), dict(stride=(2, 1, 2), padding=(0, 1, 2), dilation=(1, 2, 1), groups=3)),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_configurations(dims, input_shape, weight_shape, kwargs, dtype, rng):
    x, w, b = make_arrays(rng, dtype, input_shape, weight_shape)
    assert_close(OPS[dims](x, w, b, **kwargs), torch_conv(dims, x, w, b, **kwargs))


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_unbatched_input(dims, bias, rng):
    x, w, b = make_arrays(rng, np.float32, (4,) + (6,) * dims, (6, 2) + (3,) * dims, bias)
    y = OPS[dims](x, w, b, padding=1, groups=2)
    assert y.shape == (6,) + (6,) * dims
    assert_close(y, torch_conv(dims, x, w, b, padding=1, groups=2))


def test_list_arguments_and_single_element_tuples(rng):
    x, w, b = make_arrays(rng, np.float64, (2, 3, 8, 9), (4, 3, 3, 3))
    y = F.conv2d(x, w, b, stride=[2, 1], padding=(1,), dilation=[2])
    assert_close(y, torch_conv(2, x, w, b, stride=(2, 1), padding=1, dilation=2))


# ---------------------------------------------------------------- float64 oracle

@pytest.mark.parametrize("dims, input_shape, weight_shape, stride, pad_before, pad_after, dilation, groups, padding", [
    (1, (2, 4, 15), (6, 2, 3), (2,), (1,), (1,), (2,), 2, 1),
    (1, (1, 3, 10), (2, 3, 4), (1,), (1,), (2,), (1,), 1, "same"),
    (2, (2, 3, 9, 10), (5, 3, 3, 2), (1, 2), (2, 0), (2, 0), (1, 2), 1, (2, 0)),
    (2, (1, 4, 8, 8), (4, 1, 2, 2), (1, 1), (0, 0), (1, 1), (1, 1), 4, "same"),
    (2, (2, 6, 7, 11), (9, 2, 3, 3), (2, 3), (1, 1), (1, 1), (1, 1), 3, 1),
    (3, (2, 2, 5, 6, 7), (3, 2, 2, 3, 2), (1, 2, 1), (1, 0, 1), (1, 0, 1), (2, 1, 1), 1, (1, 0, 1)),
    (3, (1, 3, 4, 5, 6), (3, 1, 2, 2, 2), (1, 1, 1), (0, 0, 0), (1, 1, 1), (1, 1, 1), 3, "same"),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_float64_oracle(dims, input_shape, weight_shape, stride, pad_before, pad_after, dilation, groups,
                                padding, dtype, rng):
    x, w, b = make_arrays(rng, dtype, input_shape, weight_shape)
    y = OPS[dims](x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = reference_conv(x, w, b, stride, pad_before, pad_after, dilation, groups)
    assert_close(y, expected.astype(dtype), **({} if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)))


# ---------------------------------------------------------------- threads, layouts, special values

@pytest.mark.parametrize("dims, input_shape, weight_shape, kwargs", [
    (1, (3, 6, 101), (10, 3, 5), dict(padding=2, groups=2)),
    (2, (2, 6, 97, 101), (7, 6, 3, 5), dict(stride=(1, 2), padding=(1, 2))),
    (2, (1, 12, 31, 29), (12, 1, 3, 3), dict(padding="same", groups=12)),
    (3, (1, 4, 9, 11, 13), (6, 2, 3, 2, 3), dict(padding=1, dilation=(1, 2, 1), groups=2)),
])
def test_same_bits_with_1_and_2_threads(dims, input_shape, weight_shape, kwargs, num_threads, rng):
    x, w, b = make_arrays(rng, np.float32, input_shape, weight_shape)
    num_threads(1)
    one = OPS[dims](x, w, b, **kwargs)
    num_threads(2)
    two = OPS[dims](x, w, b, **kwargs)
    assert np.array_equal(one, two)
    assert_close(two, torch_conv(dims, x, w, b, **kwargs))


@pytest.mark.parametrize("layout", ["transposed", "sliced", "reversed"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_arrays(layout, dtype, rng):
    base_x = rng.uniform(-1, 1, (10, 9, 6, 2)).astype(dtype)
    base_w = rng.uniform(-1, 1, (3, 3, 6, 8)).astype(dtype)
    bias = rng.uniform(-1, 1, 8).astype(dtype)[::2]
    if layout == "transposed":
        x, w = base_x.transpose(3, 2, 0, 1), base_w.transpose(3, 2, 0, 1)[:4]     # (2, 6, 10, 9), (4, 6, 3, 3)
    elif layout == "sliced":
        x, w = base_x.transpose(3, 2, 0, 1)[:, ::2, 1::2], base_w.transpose(3, 2, 0, 1)[::2, ::2]
    else:
        x, w = base_x.transpose(3, 2, 0, 1)[::-1, :, ::-1, ::-1], base_w.transpose(3, 2, 1, 0)[::-2, :, ::-1]
    assert not x.flags.c_contiguous and not w.flags.c_contiguous and not bias.flags.c_contiguous
    groups = x.shape[1] // w.shape[1]
    y = F.conv2d(x, w, bias, padding=1, groups=groups)
    assert_close(y, torch_conv(2, x, w, bias, padding=1, groups=groups))


def test_byte_swapped_input(rng):
    x, w, b = make_arrays(rng, np.float32, (1, 2, 5, 5), (3, 2, 3, 3))
    y = F.conv2d(x.astype(">f4"), w, b)
    assert y.dtype == np.float32
    assert_close(y, torch_conv(2, x, w, b))


@pytest.mark.parametrize("where", ["input", "weight", "bias"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_like_torch(where, value, rng):
    x, w, b = make_arrays(rng, np.float32, (2, 2, 7, 6), (3, 2, 3, 3))
    if where == "input":
        x[1, 0, 1, 1] = value
    elif where == "weight":
        w[2, 1, 1, 1] = value    # the centre tap: it never reads padding
    else:
        b[1] = value
    y = F.conv2d(x, w, b, padding=1)
    expected = torch_conv(2, x, w, b, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(expected)) and np.isnan(y).any() == np.isnan(value)
    assert_close(y, expected)


@pytest.mark.parametrize("dims, groups", [(1, 1), (2, 1), (3, 1), (2, 2), (2, 4), (3, 4)])
@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_weight_times_padding_is_nan(dims, groups, value, dtype, rng):
    # Padding is zeros and 0 * inf = nan, as in torch's float64 path.  torch's float32 (oneDNN)
    # path skips small paddings instead, so the expected values come from torch in float64.
    x, w, b = make_arrays(rng, np.float64, (2, 4) + (5,) * dims, (4, 4 // groups) + (3,) * dims)
    w[(1, 0) + (0,) * dims] = value
    kwargs = dict(padding=(1,) * (dims - 1) + (2,), groups=groups)
    expected = torch_conv(dims, x, w, b, **kwargs)
    assert np.isnan(expected[:, 1, ..., 0]).all() and np.isfinite(expected[:, 0]).all()
    y = OPS[dims](x.astype(dtype), w.astype(dtype), b.astype(dtype), **kwargs)
    assert_close(y, expected.astype(dtype))


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_zero_gives_empty_output(dims, dtype, rng):
    x, w, b = make_arrays(rng, dtype, (0, 4) + (7,) * dims, (6, 2) + (3,) * dims)
    y = OPS[dims](x, w, b, stride=2, groups=2)
    assert_close(y, torch_conv(dims, x, w, b, stride=2, groups=2))
    assert y.shape == (0, 6) + (3,) * dims


def test_output_is_a_new_array_and_inputs_are_untouched(rng):
    x, w, b = make_arrays(rng, np.float32, (1, 2, 5, 5), (2, 2, 1, 1))
    copies = [a.copy() for a in (x, w, b)]
    y = F.conv2d(x, w, b)
    assert all(np.array_equal(a, c) for a, c in zip((x, w, b), copies))
    assert y.flags.c_contiguous and y.flags.writeable and not np.shares_memory(y, x)
    assert y.ctypes.data % 64 == 0  # on a cache line, as torch's tensors
