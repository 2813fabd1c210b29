"""Random valid pooling configurations against torch (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconv import functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

MAX_POOLS = {1: (F.max_pool1d, TF.max_pool1d), 2: (F.max_pool2d, TF.max_pool2d), 3: (F.max_pool3d, TF.max_pool3d)}
AVG_POOLS = {1: (F.avg_pool1d, TF.avg_pool1d), 2: (F.avg_pool2d, TF.avg_pool2d), 3: (F.avg_pool3d, TF.avg_pool3d)}
ADAPTIVE_AVG = {1: (F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d), 2: (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
                3: (F.adaptive_avg_pool3d, TF.adaptive_avg_pool3d)}
ADAPTIVE_MAX = {1: (F.adaptive_max_pool1d, TF.adaptive_max_pool1d), 2: (F.adaptive_max_pool2d, TF.adaptive_max_pool2d),
                3: (F.adaptive_max_pool3d, TF.adaptive_max_pool3d)}


@st.composite
def inputs(draw, n, spatial):
    """An array of the given spatial size: batched or not, normal values, small integers (ties) or with NaN."""
    channels = draw(st.integers(1, 3))
    leading = (draw(st.integers(1, 2)), channels) if draw(st.booleans()) else (channels,)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "ties", "nan"]))
    shape = leading + tuple(spatial)
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    return x


@st.composite
def windows(draw, n, with_dilation):
    """kernel_size, stride, padding, dilation and an input spatial size giving an output >= 1."""
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(n))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * n)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(n)) if with_dilation else (1,) * n
    spatial = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        if n == 3 and not with_dilation:
            smallest = max(smallest, k)  # torch's avg_pool3d wants input >= kernel
        spatial.append(draw(st.integers(smallest, smallest + 7)))
    return kernel, stride, padding, dilation, spatial


def _compare_max_pool(n, data):
    kernel, stride, padding, dilation, spatial = data.draw(windows(n, with_dilation=True))
    x = data.draw(inputs(n, spatial))
    ceil_mode = data.draw(st.booleans())
    ours, theirs = MAX_POOLS[n]
    expected_values, expected_indices = theirs(torch.from_numpy(x), kernel, stride, padding, dilation, ceil_mode, True)
    values, indices = ours(x, kernel, stride, padding, dilation, ceil_mode, True)
    np.testing.assert_array_equal(values, expected_values.numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    assert values.dtype == x.dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(ours(x, kernel, stride, padding, dilation, ceil_mode), values)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_max_pool2d_random(data):
    _compare_max_pool(2, data)


@settings(max_examples=200, deadline=None)
@given(n=st.sampled_from([1, 3]), data=st.data())
def test_max_pool1d_3d_random(n, data):
    _compare_max_pool(n, data)


def _compare_avg_pool(n, data):
    kernel, stride, padding, _, spatial = data.draw(windows(n, with_dilation=False))
    x = data.draw(inputs(n, spatial))
    args = (kernel, stride, padding, data.draw(st.booleans()), data.draw(st.booleans()))
    if n > 1:
        args += (data.draw(st.one_of(st.none(), st.integers(-3, 5).filter(bool))),)
    ours, theirs = AVG_POOLS[n]
    assert_close(ours(x, *args), theirs(torch.from_numpy(x), *args).numpy())


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_avg_pool2d_random(data):
    _compare_avg_pool(2, data)


@settings(max_examples=200, deadline=None)
@given(n=st.sampled_from([1, 3]), data=st.data())
def test_avg_pool1d_3d_random(n, data):
    _compare_avg_pool(n, data)


@st.composite
def adaptive_config(draw, n):
    spatial = [draw(st.integers(1, 12)) for _ in range(n)]
    size = [draw(st.integers(0, 13)) for _ in range(n)]
    if n > 1:
        size = [None if draw(st.integers(0, 4)) == 0 else s for s in size]
    output_size = size[0] if n == 1 and draw(st.booleans()) else tuple(size)
    return spatial, output_size


@settings(max_examples=200, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), data=st.data())
def test_adaptive_avg_pool_random(n, data):
    spatial, output_size = data.draw(adaptive_config(n))
    x = data.draw(inputs(n, spatial))
    ours, theirs = ADAPTIVE_AVG[n]
    assert_close(ours(x, output_size), theirs(torch.from_numpy(x), output_size).numpy())


@settings(max_examples=200, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), data=st.data())
def test_adaptive_max_pool_random(n, data):
    spatial, output_size = data.draw(adaptive_config(n))
    x = data.draw(inputs(n, spatial))
    ours, theirs = ADAPTIVE_MAX[n]
    expected_values, expected_indices = theirs(torch.from_numpy(x), output_size, True)
    values, indices = ours(x, output_size, True)
    np.testing.assert_array_equal(values, expected_values.numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
