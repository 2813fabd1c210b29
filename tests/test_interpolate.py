"""interpolate against torch.nn.functional.interpolate: every mode and argument, errors, threads, layouts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from tolerances import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
LINEAR_MODES = {3: "linear", 4: "bilinear", 5: "trilinear"}


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    """torch only computes references here; one thread keeps its many tiny calls fast on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def torch_interpolate(x, **kwargs):
    return TF.interpolate(torch.from_numpy(np.array(x, order="C")), **kwargs).numpy()


def check(x, **kwargs):
    """pyconv equals torch: nearest modes pick the same pixels (bit-identical), others within the policy."""
    expected = torch_interpolate(x, **kwargs)
    actual = F.interpolate(x, **kwargs)
    if kwargs.get("mode", "nearest").startswith("nearest"):
        assert actual.shape == expected.shape and actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    else:
        assert_close(actual, expected)
    return actual


SHAPES = {3: (2, 3, 7), 4: (2, 3, 7, 9), 5: (2, 2, 5, 4, 6)}
# (size, scale_factor, recompute_scale_factor) per number of spatial dims
RESIZES = {
    1: [(4, None, None), (17, None, None), (7, None, None), (None, 1.5, None), (None, 2, None), (None, 0.5, None),
        (None, 1 / 3, None), (None, 2.3, True), (None, 2.3, False), (None, 1.05, None), (None, 0.7, True)],
    2: [((5, 13), None, None), (4, None, None), ((7, 9), None, None), (None, 1.5, None), (None, (2, 0.5), None),
        (None, (1 / 3, 2.3), None), (None, (2.3, 1 / 3), True), (None, 1.05, False), (None, (0.7, 3), None)],
    3: [((3, 7, 5), None, None), (None, 1.5, None), (None, (2, 0.5, 1 / 3), None), (None, (2.3, 1.5, 0.7), True),
        (None, 1.05, None)],
}


def resize_cases(ndim):
    return [pytest.param(*case, id=f"size={case[0]}-scale={case[1]}-recompute={case[2]}") for case in RESIZES[ndim - 2]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area"])
@pytest.mark.parametrize("ndim", [3, 4, 5])
def test_nearest_and_area_modes(ndim, mode, dtype, rng):
    x = rng.standard_normal(SHAPES[ndim]).astype(dtype)
    for size, scale, recompute in RESIZES[ndim - 2]:
        check(x, size=size, scale_factor=scale, mode=mode, recompute_scale_factor=recompute)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [None, False, True])
@pytest.mark.parametrize("ndim", [3, 4, 5])
def test_linear_modes(ndim, align_corners, dtype, rng):
    x = rng.standard_normal(SHAPES[ndim]).astype(dtype)
    for size, scale, recompute in RESIZES[ndim - 2]:
        check(x, size=size, scale_factor=scale, mode=LINEAR_MODES[ndim], align_corners=align_corners,
              recompute_scale_factor=recompute)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [None, False, True])
def test_bicubic(align_corners, dtype, rng):
    x = rng.standard_normal((2, 3, 7, 9)).astype(dtype)
    for size, scale, recompute in RESIZES[2] + [((1, 1), None, None), ((2, 15), None, None)]:
        check(x, size=size, scale_factor=scale, mode="bicubic", align_corners=align_corners,
              recompute_scale_factor=recompute)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, align_corners", [("bilinear", False), ("bilinear", True), ("bicubic", None),
                                                 ("bicubic", True), ("lanczos", None)])
def test_antialias(mode, align_corners, dtype, rng):
    x = rng.standard_normal((2, 3, 17, 19)).astype(dtype)
    for size, scale in [((5, 8), None), ((17, 7), None), ((30, 40), None), (None, 0.3), (None, (0.45, 2.5)),
                        (None, 1 / 3), ((16, 19), None)]:
        check(x, size=size, scale_factor=scale, mode=mode, align_corners=align_corners, antialias=True)


def test_antialias_output_width_one():
    # torch's antialiased vertical pass returns the first row everywhere when the output width is 1 (a torch
    # bug); the same resize of the transposed input goes through torch's horizontal pass and is right.
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 5))
    actual = F.interpolate(x, size=(9, 1), mode="bilinear", antialias=True)
    expected = torch_interpolate(x.transpose(0, 1, 3, 2), size=(1, 9), mode="bilinear", antialias=True)
    assert_close(actual, expected.transpose(0, 1, 3, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_picks_torch_pixels_1d(mode, dtype):
    for length in list(range(1, 33)) + [97, 101]:
        x = np.arange(length, dtype=dtype).reshape(1, 1, length)
        for out in range(1, 70):
            check(x, size=out, mode=mode)
        for scale in (0.3, 0.5, 1 / 3, 0.7, 1.05, 1.5, 2, 2.1, 2.3, 3.7):
            if int(length * scale) > 0:
                check(x, scale_factor=scale, mode=mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("height", [2, 130])
def test_nearest_picks_torch_pixels_2d(height, mode, dtype):
    # torch's 2d kernel uses another index routine when output height + width <= 128 (height 2 here) than
    # above (height 130): scale 2.1 on width 5 gives output width 10 = 2 x 5, copied 2:1 by one routine only.
    for width in (1, 2, 3, 5, 7, 16, 33):
        x = np.arange(height * width, dtype=dtype).reshape(1, 1, height, width)
        for scale in (2.1, 1.5, 0.7, 1 / 3, 2, 3.3):
            if int(width * scale) > 0:
                check(x, scale_factor=(1.0, scale), mode=mode)
        for out in (1, 4, 11, 29):
            check(x, size=(height, out), mode=mode)


def test_nearest_3d_matches_torch_for_unit_spatial_input(rng):
    # channels-last-contiguous inputs (spatial 1 x 1 x 1, more than 3 channels) take torch's other routine
    x = rng.standard_normal((2, 5, 1, 1, 1))
    check(x, scale_factor=(2.1, 3, 1.5))
    check(x, size=(3, 2, 4), mode="nearest-exact")


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area", "linear"])
def test_batch_zero(mode):
    x = np.zeros((0, 3, 5), dtype=np.float32)
    assert F.interpolate(x, size=4, mode=mode).shape == torch_interpolate(x, size=4, mode=mode).shape == (0, 3, 4)


def test_area_allows_empty_outputs_and_channels():
    x = np.zeros((2, 0, 5, 5))
    assert F.interpolate(x, size=3, mode="area").shape == (2, 0, 3, 3)
    y = np.ones((1, 2, 5))
    assert F.interpolate(y, size=0, mode="area").shape == torch_interpolate(y, size=0, mode="area").shape
    assert F.interpolate(y, scale_factor=0.1, mode="area").shape == (1, 2, 0)


@pytest.mark.parametrize("mode, kwargs", [
    ("nearest", {}), ("nearest-exact", {}), ("bilinear", {}), ("bilinear", {"align_corners": True}),
    ("bicubic", {}), ("area", {}), ("bilinear", {"antialias": True}), ("bicubic", {"antialias": True}),
])
@pytest.mark.parametrize("size", [(11, 7), (4, 3), (8, 8)])
def test_nan_and_inf_propagate_as_torch(mode, kwargs, size, rng):
    x = rng.standard_normal((2, 2, 8, 8))
    x[0, 0, 3, 4] = np.nan
    x[1, 1, 0, 7] = np.inf
    x[1, 0, 5, 2] = -np.inf
    actual = F.interpolate(x, size=size, mode=mode, **kwargs)
    expected = torch_interpolate(x, size=size, mode=mode, **kwargs)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert_close(actual, expected)


@pytest.mark.parametrize("mode, kwargs", [
    ("nearest", {}), ("nearest-exact", {}), ("bilinear", {}), ("bicubic", {"align_corners": True}),
    ("area", {}), ("bilinear", {"antialias": True}), ("lanczos", {"antialias": True}),
])
@pytest.mark.parametrize("layout", ["transposed", "sliced", "reversed"])
def test_non_contiguous_input(mode, kwargs, layout, rng):
    base = rng.standard_normal((3, 4, 12, 14)).astype(np.float32)
    x = {"transposed": base.transpose(0, 1, 3, 2), "sliced": base[::2, 1:, ::2, 3:],
         "reversed": base[:, ::-1, ::-1, ::-2]}[layout]
    check(x, size=(9, 17), mode=mode, **kwargs)


@pytest.mark.parametrize("mode, kwargs, shape", [
    ("nearest", {}, (2, 3, 50, 61)), ("nearest-exact", {}, (2, 3, 50, 61)), ("bilinear", {}, (2, 3, 50, 61)),
    ("bicubic", {}, (2, 3, 50, 61)), ("area", {}, (2, 3, 50, 61)), ("bicubic", {"antialias": True}, (2, 3, 97, 101)),
    ("trilinear", {}, (1, 3, 9, 20, 23)), ("linear", {}, (3, 5, 997)),
])
def test_same_bits_with_1_and_2_threads(mode, kwargs, shape, num_threads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    size = tuple(2 * s - 3 if i % 2 else s // 2 + 1 for i, s in enumerate(shape[2:]))
    num_threads(1)
    one = F.interpolate(x, size=size, mode=mode, **kwargs)
    num_threads(2)
    two = F.interpolate(x, size=size, mode=mode, **kwargs)
    assert np.array_equal(one, two)
    assert_close(two, torch_interpolate(x, size=size, mode=mode, **kwargs))


def test_returns_new_array_when_size_is_unchanged(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    for mode in ("nearest", "area", "bilinear"):
        out = F.interpolate(x, size=4, mode=mode, **({"antialias": True} if mode == "bilinear" else {}))
        assert not np.shares_memory(out, x)
        np.testing.assert_array_equal(out, x)


# ---------------------------------------------------------------------------------------------
# errors: each names the argument
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size=3, scale_factor=2.0), ValueError, "size or scale_factor"),
    (dict(), ValueError, "size or scale_factor"),
    (dict(size=3, recompute_scale_factor=True), ValueError, "recompute_scale_factor"),
    (dict(size=3, align_corners=False), ValueError, "align_corners"),
    (dict(size=3, mode="area", align_corners=True), ValueError, "align_corners"),
    (dict(size=3, mode="cubic"), ValueError, "mode"),
    (dict(size=3, mode="linear"), ValueError, "mode"),
    (dict(size=3, mode="trilinear"), ValueError, "mode"),
    (dict(size=0), ValueError, "size"),
    (dict(size=(3, -1)), ValueError, "size"),
    (dict(scale_factor=0.1), ValueError, "size"),
    (dict(scale_factor=-2.0), ValueError, "size"),
    (dict(scale_factor=float("inf")), ValueError, "scale_factor"),
    (dict(scale_factor=float("nan")), ValueError, "scale_factor"),
    (dict(size=(3, 4, 5)), ValueError, "size"),
    (dict(scale_factor=(2.0,)), ValueError, "scale_factor"),
    (dict(size=(3.0, 4)), TypeError, "size"),
    (dict(size=2.5), TypeError, "size"),
    (dict(scale_factor="2"), TypeError, "scale_factor"),
    (dict(size=3, mode="nearest", antialias=True), ValueError, "antialias"),
    (dict(size=3, mode="area", antialias=True), ValueError, "antialias"),
    (dict(size=3, mode="lanczos"), ValueError, "antialias"),
    (dict(size=3, mode="lanczos", antialias=True, align_corners=True), ValueError, "align_corners"),
    (dict(size=3, mode="bilinear", align_corners=1), TypeError, "align_corners"),
    (dict(scale_factor=2.0, recompute_scale_factor="yes"), TypeError, "recompute_scale_factor"),
    (dict(size=3, mode=None), ValueError, "mode"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        F.interpolate(np.zeros((2, 3, 5, 7)), **kwargs)


@pytest.mark.parametrize("shape", [(3, 5), (1, 1, 2, 2, 2, 2)])
def test_input_rank(shape):
    with pytest.raises(ValueError, match="input"):
        F.interpolate(np.zeros(shape), size=3)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_empty_channels_or_spatial_dims(mode):
    with pytest.raises(ValueError, match="channel"):
        F.interpolate(np.zeros((2, 0, 4, 4)), size=3, mode=mode)
    with pytest.raises(ValueError, match="size"):
        F.interpolate(np.zeros((2, 3, 0, 4)), size=3, mode=mode)


def test_area_errors():
    with pytest.raises(ValueError, match="size"):
        F.interpolate(np.zeros((2, 3, 5)), size=-1, mode="area")
    with pytest.raises(ValueError, match="input"):
        F.interpolate(np.zeros((2, 3, 0)), size=2, mode="area")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
def test_rejects_non_float(dtype):
    with pytest.raises(TypeError, match="input"):
        F.interpolate(np.zeros((1, 2, 3, 3), dtype=dtype), size=2)


# ---------------------------------------------------------------------------------------------
# random configurations against torch, per mode
# ---------------------------------------------------------------------------------------------

MODE_RANKS = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5), "linear": (3,),
              "bilinear": (4,), "bicubic": (4,), "trilinear": (5,), "lanczos": (4,)}


@st.composite
def interpolate_configs(draw, mode):
    ndim = draw(st.sampled_from(MODE_RANKS[mode]))
    biggest = {3: 20, 4: 10, 5: 5}[ndim]
    spatial = [draw(st.integers(1, biggest)) for _ in range(ndim - 2)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial)
    kwargs = {"mode": mode}
    if draw(st.booleans()):
        kwargs["size"] = [draw(st.integers(1, 2 * biggest)) for _ in spatial]
    else:
        factor = st.one_of(st.sampled_from([0.5, 1.5, 2, 1 / 3, 2.3, 1.0, 3]), st.floats(0.2, 3.5))
        factors = [draw(factor) for _ in spatial]
        if any(int(s * f) < 1 for s, f in zip(spatial, factors)):
            factors = [max(f, 1.0) for f in factors]
        kwargs["scale_factor"] = factors
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    if mode in ("linear", "bilinear", "bicubic", "trilinear"):
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    if mode in ("bilinear", "bicubic"):
        kwargs["antialias"] = draw(st.booleans())
    if mode == "lanczos":
        kwargs["antialias"] = True
    return shape, kwargs, draw(st.sampled_from(DTYPES))


@pytest.mark.parametrize("mode", list(MODE_RANKS))
def test_random_configs_match_torch(mode):
    @settings(max_examples=200, deadline=None)
    @given(interpolate_configs(mode), st.integers(0, 2**32 - 1))
    def run(config, seed):
        shape, kwargs, dtype = config
        x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        if kwargs.get("antialias"):
            expected = torch_interpolate(x, **kwargs)
            if expected.shape[-1] == 1 and expected.shape[-2] != shape[-2]:
                return  # torch's antialias bug at output width 1, see test_antialias_output_width_one
        check(x, **kwargs)

    run()
