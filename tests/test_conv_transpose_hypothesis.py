"""conv_transpose1d/2d/3d against torch on random valid configurations (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

OPS = {1: (F.conv_transpose1d, TF.conv_transpose1d),
       2: (F.conv_transpose2d, TF.conv_transpose2d),
       3: (F.conv_transpose3d, TF.conv_transpose3d)}
MAX_SIZE = {1: 9, 2: 6, 3: 4}
MAX_KERNEL = {1: 5, 2: 4, 3: 3}


@st.composite
def configurations(draw, dims):
    """A valid conv_transpose configuration: arguments, array shapes and a seed."""
    groups = draw(st.integers(1, 3))
    in_per_group = draw(st.integers(1, 3))
    out_per_group = draw(st.integers(1, 3))
    size, kernel, stride, dilation, output_padding, padding = [], [], [], [], [], []
    for _ in range(dims):
        n = draw(st.integers(1, MAX_SIZE[dims]))
        k = draw(st.integers(1, MAX_KERNEL[dims]))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 3))
        op = draw(st.integers(0, max(s, d) - 1))
        # the output (n - 1) s - 2 p + d (k - 1) + op + 1 must be >= 1
        p = draw(st.integers(0, ((n - 1) * s + d * (k - 1) + op) // 2))
        for values, value in zip((size, kernel, stride, dilation, output_padding, padding), (n, k, s, d, op, p)):
            values.append(value)
    return dict(
        batch=draw(st.integers(0, 2)),
        unbatched=draw(st.booleans()),
        groups=groups,
        in_channels=in_per_group * groups,
        out_per_group=out_per_group,
        size=tuple(size),
        kernel=tuple(kernel),
        stride=tuple(stride),
        padding=tuple(padding),
        output_padding=tuple(output_padding),
        dilation=tuple(dilation),
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def check_against_torch(dims, config):
    ours, theirs = OPS[dims]
    rng = np.random.default_rng(config["seed"])
    dtype = config["dtype"]
    batch_shape = () if config["unbatched"] else (config["batch"],)
    x = rng.standard_normal(batch_shape + (config["in_channels"],) + config["size"]).astype(dtype)
    w = rng.standard_normal((config["in_channels"], config["out_per_group"]) + config["kernel"]).astype(dtype)
    b = rng.standard_normal(config["out_per_group"] * config["groups"]).astype(dtype) if config["bias"] else None
    kwargs = {key: config[key] for key in ("stride", "padding", "output_padding", "groups", "dilation")}
    expected = theirs(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                      **kwargs).numpy()
    assert_close(ours(x, w, b, **kwargs), expected)


@settings(max_examples=200, deadline=None)
@given(configurations(1))
def test_conv_transpose1d_random(config):
    check_against_torch(1, config)


@settings(max_examples=200, deadline=None)
@given(configurations(2))
def test_conv_transpose2d_random(config):
    check_against_torch(2, config)


@settings(max_examples=200, deadline=None)
@given(configurations(3))
def test_conv_transpose3d_random(config):
    check_against_torch(3, config)
