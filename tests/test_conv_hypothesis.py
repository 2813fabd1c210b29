"""conv1d / conv2d / conv3d against torch over random valid configurations (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

OPS = {1: (F.conv1d, TF.conv1d), 2: (F.conv2d, TF.conv2d), 3: (F.conv3d, TF.conv3d)}
MAX_KERNEL = {1: 5, 2: 4, 3: 3}


@st.composite
def conv_configurations(draw, dims):
    """(input, weight, bias, kwargs): a valid call with small random sizes and arguments."""
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 5))   # up to 5 per group: blocks of 4 and the rest
    kernel = draw(st.lists(st.integers(1, MAX_KERNEL[dims]), min_size=dims, max_size=dims))
    dilation = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    padding_kind = draw(st.sampled_from(["ints", "same", "valid"]))
    stride = [1] * dims if padding_kind == "same" else draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    if padding_kind == "ints":
        padding = draw(st.lists(st.integers(0, 3), min_size=dims, max_size=dims))
        total = [2 * p for p in padding]
    else:
        padding = padding_kind
        total = [s - 1 for s in spans] if padding_kind == "same" else [0] * dims
    size = [draw(st.integers(max(1, s - t), max(1, s - t) + 6)) for s, t in zip(spans, total)]
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))              # None: unbatched input
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))

    rng = np.random.default_rng(seed)
    leading = (in_channels,) if batch is None else (batch, in_channels)
    x = rng.uniform(-1, 1, leading + tuple(size)).astype(dtype)
    w = rng.uniform(-1, 1, (out_channels, in_channels // groups) + tuple(kernel)).astype(dtype)
    b = rng.uniform(-1, 1, out_channels).astype(dtype) if draw(st.booleans()) else None
    kwargs = dict(stride=tuple(stride), padding=padding if isinstance(padding, str) else tuple(padding),
                  dilation=tuple(dilation), groups=groups)
    return x, w, b, kwargs


def check_against_torch(dims, x, w, b, kwargs):
    ours, theirs = OPS[dims]
    expected = theirs(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kwargs)
    assert_close(ours(x, w, b, **kwargs), expected.numpy())


@settings(max_examples=200, deadline=None)
@given(conv_configurations(1))
def test_conv1d_matches_torch(configuration):
    check_against_torch(1, *configuration)


@settings(max_examples=200, deadline=None)
@given(conv_configurations(2))
def test_conv2d_matches_torch(configuration):
    check_against_torch(2, *configuration)


@settings(max_examples=200, deadline=None)
@given(conv_configurations(3))
def test_conv3d_matches_torch(configuration):
    check_against_torch(3, *configuration)
