"""The GEMM convolution (algorithm='gemm') against the direct kernel and torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv.functional as F
from pyconv._kernels.activation import KINDS as ACTIVATION_KINDS
from pyconv._kernels.conv_gemm import conv_pointwise, pack_pointwise, pointwise_packed_size
from pyconv._kernels.epilogue import apply_epilogue
from pyconv._kernels.gemm import block_sizes
from pyconv.functional._conv_gemm import GemmConv, PointwiseGemm
from pyconv.functional._conv_plan import Epilogue, run_algorithm
from fused_activations import FUSED_ACTIVATIONS
from tolerances import assert_close

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

OPS = {1: (F.conv1d, TF.conv1d), 2: (F.conv2d, TF.conv2d), 3: (F.conv3d, TF.conv3d)}
MC = block_sizes()["MC"]  # output channels per packed weight block

# (input shape, weight shape, conv arguments): odd sizes, sizes below one GEMM tile,
# groups, channel counts off the vector width, every kind of padding.
CASES = [
    ((2, 5, 17), (7, 5, 3), dict(padding=1)),
    ((1, 6, 23), (10, 3, 4), dict(padding="same", dilation=2, groups=2)),       # asymmetric 'same'
    ((3, 4, 11), (5, 4, 2), dict(stride=3, padding=2)),
    ((2, 3, 9, 11), (5, 3, 3, 3), dict(padding=1)),
    ((1, 6, 10, 9), (9, 2, 2, 4), dict(padding="same", groups=3)),               # even kernel: extra zero after
    ((2, 4, 13, 12), (6, 4, 5, 3), dict(stride=(2, 3), padding=(2, 0), dilation=(1, 2))),
    ((1, 3, 15, 15), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ((2, 8, 7, 5), (12, 8, 1, 1), dict()),                                       # pointwise, in place
    ((1, 8, 9, 8), (10, 4, 1, 1), dict(stride=2, groups=2)),                     # strided 1x1: gathered
    ((2, 5, 17), (6, 5, 1), dict(stride=3)),                                     # strided 1-D pointwise
    ((2, 3, 7, 11, 10), (4, 3, 1, 1, 1), dict(stride=(2, 3, 1))),                # strided 3-D pointwise
    ((1, 6, 6, 7), (4, 6, 1, 1), dict(padding=1)),                               # 1x1 with padding
    ((1, 8, 6, 6), (8, 2, 3, 3), dict(padding=1, groups=4)),                     # 2 channels per group
    ((2, 4, 3, 2), (3, 4, 3, 2), dict()),                                        # one output position
    ((1, 3, 5, 6, 7), (4, 3, 3, 3, 3), dict(padding=1)),
    ((2, 4, 6, 5, 4), (6, 2, 2, 3, 1), dict(stride=(2, 1, 1), padding=(0, 1, 0), dilation=(2, 1, 1), groups=2)),
    ((1, 4, 5, 6, 5), (5, 4, 3, 2, 3), dict(padding="same")),
    ((1, 300, 5, 5), (4, 300, 1, 1), dict()),                                    # K above the GEMM's k block
    ((1, 40, 6, 6), (MC + 9, 40, 3, 3), dict(padding=1)),                        # several channel blocks
    ((1, 36, 5, 5), (2 * (MC + 3), 18, 1, 1), dict(groups=2)),                   # several blocks per group
]


def _run(x, w, b, kwargs, algorithm):
    return OPS[w.ndim - 2][0](x, w, b, algorithm=algorithm, **kwargs)


def _torch(x, w, b, kwargs):
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return OPS[w.ndim - 2][1](t(x), t(w), t(b), **kwargs).numpy()


def _arrays(rng, input_shape, weight_shape, dtype, bias=True):
    x = rng.standard_normal(input_shape).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    b = rng.standard_normal(weight_shape[0]).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", CASES)
def test_matches_direct_and_torch(input_shape, weight_shape, kwargs, dtype, rng):
    x, w, b = _arrays(rng, input_shape, weight_shape, dtype)
    y = _run(x, w, b, kwargs, "gemm")
    assert y.dtype == dtype
    assert_close(y, _run(x, w, b, kwargs, "direct"))
    assert_close(y, _torch(x, w, b, kwargs))


@pytest.fixture(params=[1, 97, 2 ** 30], ids=["one-tile-columns", "odd-blocks", "one-block"])
def column_bytes(request, monkeypatch):
    """Pointwise column blocks from one GEMM tile wide (many blocks) to whole images."""
    monkeypatch.setattr(PointwiseGemm, "COLUMN_BYTES", request.param)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", [
    ((1, 6, 19, 23), (4, 6, 1, 1), dict()),
    ((2, 6, 7, 61), (6, 3, 1, 1), dict(groups=2)),
    ((1, 4, 3, 5, 7), (5, 4, 1, 1, 1), dict()),
])
def test_pointwise_gemm_column_blocks(input_shape, weight_shape, kwargs, dtype, column_bytes, monkeypatch, rng):
    monkeypatch.setattr(GemmConv, "POINTWISE_IMPLICIT_FROM", 2 ** 62)
    x, w, b = _arrays(rng, input_shape, weight_shape, dtype)
    assert_close(_run(x, w, b, kwargs, "gemm"), _torch(x, w, b, kwargs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", [
    ((1, 6, 19, 23), (4, 6, 1, 1), dict()),                 # the last tile gathered (it would read past the end)
    ((3, 6, 7, 61), (12, 3, 1, 1), dict(groups=2)),
    ((1, 4, 3, 5, 7), (5, 4, 1, 1, 1), dict()),
    ((2, 5, 1, 16), (9, 5, 1, 1), dict()),                  # whole vectors only
])
def test_pointwise_in_place(input_shape, weight_shape, kwargs, dtype, monkeypatch, rng):
    monkeypatch.setattr(GemmConv, "POINTWISE_IMPLICIT_FROM", 0)
    x, w, b = _arrays(rng, input_shape, weight_shape, dtype)
    expected = _torch(x, w, b, kwargs)
    one = _run_threads(x, w, b, kwargs, 1)
    assert_close(one, expected)
    assert np.array_equal(_run_threads(x, w, b, kwargs, 2), one)


def _run_threads(x, w, b, kwargs, threads):
    """GemmConv.run with exactly ``threads`` threads (no small-work rule)."""
    problem = F.prepack_conv(w, b, **kwargs).problem
    output = np.empty((x.shape[0], problem.out_channels) + problem.output_spatial(x.shape[2:]), x.dtype)
    GemmConv(problem, w).run(x, output, Epilogue.bias_only(b, x.dtype), np.empty(0, x.dtype), threads)
    return output


@pytest.mark.parametrize("tasks_per_thread", [1, 1000], ids=["tile-blocks", "channel-chunks"])
@pytest.mark.parametrize("layout, tiling", [("column", "auto"), ("phase", "linear"), ("phase", "rows")],
                         ids=["copy-per-kernel-column", "copy-per-phase", "copy-per-phase-row-tiles"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", [
    ((2, 3, 13, 131), (5, 3, 3, 3), dict(padding=(1, 2), stride=(1, 2))),   # rows wider than a tile
    ((1, 4, 6, 32), (9, 4, 3, 3), dict(padding=1)),                        # rows of whole vectors
    ((1, 4, 3, 9, 101), (20, 2, 3, 1, 3), dict(padding=1, groups=2)),      # stored in place and via the tile
    ((2, 5, 201), (3, 5, 3), dict(padding="same", dilation=3)),
    ((1, 6, 19, 23), (4, 3, 1, 1), dict(stride=2, groups=2)),
    ((1, 3, 4, 4), (2 * MC + 5, 3, 3, 3), dict(padding=1)),                # fewer outputs than one tile
])
def test_tiles_and_blocks(input_shape, weight_shape, kwargs, dtype, layout, tiling, tasks_per_thread,
                          monkeypatch, rng):
    monkeypatch.setattr(GemmConv, "TASKS_PER_THREAD", tasks_per_thread)
    monkeypatch.setattr(PointwiseGemm, "TASKS_PER_THREAD", tasks_per_thread)
    monkeypatch.setattr(GemmConv, "TILING", tiling)
    monkeypatch.setattr(GemmConv, "LAYOUT", layout)
    x, w, b = _arrays(rng, input_shape, weight_shape, dtype)
    expected = _torch(x, w, b, kwargs)
    one = _run_threads(x, w, b, kwargs, 1)
    assert_close(one, expected)
    for threads in (2, 3):
        assert np.array_equal(_run_threads(x, w, b, kwargs, threads), one)


@pytest.mark.parametrize("input_shape, weight_shape, kwargs", [
    ((3, 6, 21, 19), (10, 3, 3, 3), dict(padding=1, groups=2)),     # many tasks: batch x groups x columns
    ((1, 8, 5, 5), (2 * MC + 5, 8, 3, 3), dict(padding=1)),         # few columns: split over channel blocks
    ((1, 16, 30, 30), (8, 16, 1, 1), dict()),                       # pointwise in place
    ((2, 4, 40), (4, 4, 3), dict(padding="same")),
])
def test_same_bits_with_1_and_2_threads(input_shape, weight_shape, kwargs, num_threads, rng):
    x, w, b = _arrays(rng, input_shape, weight_shape, np.float32)
    num_threads(1)
    one = _run(x, w, b, kwargs, "gemm")
    num_threads(2)
    two = _run(x, w, b, kwargs, "gemm")
    num_threads(3)
    three = _run(x, w, b, kwargs, "gemm")
    assert np.array_equal(one, two)
    assert np.array_equal(one, three)


def test_work_split_stays_in_range():
    """Pointwise row and column blocks and implicit channel chunks for any size and thread count."""
    implicit = GemmConv(F.prepack_conv(np.ones((40, 2, 3, 3), np.float32), padding=1).problem,
                        np.ones((40, 2, 3, 3), np.float32))
    lanes = block_sizes()["vector_bytes"] // 4
    mr = block_sizes()["MR"]
    for out_channels in (3, 96, 1000):
        weight = np.ones((out_channels, 2, 1, 1), np.float32)
        pointwise = GemmConv(F.prepack_conv(weight).problem, weight)
        for positions in (1, 5, lanes, lanes + 1, 196, 3136, 100_000):
            for threads in (1, 2, 7):
                for batch in (1, 8):
                    rows, columns = pointwise.pointwise_gemm.split(batch, positions, threads)
                    assert 1 <= rows <= out_channels and (rows == out_channels or rows % mr == 0)
                    assert 1 <= columns <= positions and (columns == positions or columns % lanes == 0)
                    if threads == 1:
                        assert rows == out_channels
            tiles_per_block, chunks = implicit.split(1, (1, positions), threads)
            assert 1 <= tiles_per_block and 1 <= chunks <= implicit.panels
            assert chunks == 1 or threads > 1


def test_pointwise_kernel_refuses_a_split_inside_a_row_panel():
    mr = block_sizes()["MR"]
    x, out = np.ones((1, 4, 9), np.float32), np.empty((1, 3 * mr, 9), np.float32)
    packed = np.empty(pointwise_packed_size(1, 3 * mr, 4), np.float32)
    pack_pointwise(np.ones((3 * mr, 4), np.float32), 1, packed)
    empty = np.empty(0, np.float32)
    for rows, columns in ((mr + 1, 9), (0, 9), (mr, 0)):
        with pytest.raises(ValueError, match="rows per task"):
            conv_pointwise(x, packed, out, 1, rows, columns, empty, empty, empty, 0, 0.0, 0.0, 0.0, 1)
    conv_pointwise(x, packed, out, 1, 3 * mr, 9, empty, empty, empty, 0, 0.0, 0.0, 0.0, 1)
    np.testing.assert_array_equal(out, 4.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_splits_give_the_same_bits(dtype, rng):
    """conv_pointwise cut into any row blocks (multiples of MR, through gemm_prepacked_rows on the
    weights packed whole) and column blocks: the same bits as one task, with the fused epilogue."""
    groups, out_per_group, k, positions = 2, 3 * block_sizes()["MR"] + 5, 300, 77     # k > KC: two K blocks
    x = rng.standard_normal((2, groups * k, positions)).astype(dtype)
    w = rng.standard_normal((groups * out_per_group, k)).astype(dtype)
    scale = rng.standard_normal(groups * out_per_group).astype(dtype)
    shift = rng.standard_normal(groups * out_per_group).astype(dtype)
    packed = np.empty(pointwise_packed_size(groups, out_per_group, k), dtype)
    pack_pointwise(w, groups, packed)

    def run(rows, columns, threads):
        out = np.empty((2, groups * out_per_group, positions), dtype)
        conv_pointwise(x, packed, out, groups, rows, columns, scale, shift, np.empty(0, dtype), 1, 0.0, 0.0, 0.0,
                       threads)
        return out
    whole = run(out_per_group, positions, 1)
    expected = np.einsum("gok,ngkp->ngop", w.reshape(groups, out_per_group, k).astype(np.float64),
                         x.reshape(2, groups, k, positions).astype(np.float64)).reshape(whole.shape)
    expected = np.maximum(expected * scale[:, None] + shift[:, None], 0)
    assert_close(whole, expected.astype(dtype))
    mr = block_sizes()["MR"]
    for rows in (mr, 2 * mr, 3 * mr):
        for columns in (1, 16, 50, positions):
            for threads in (1, 2, 3):
                assert np.array_equal(run(rows, columns, threads), whole)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_weight_meets_padding_like_torch(dims, value, rng):
    # 0 * inf is nan: the padding zeros are real zeros in the patches, as in torch.
    x, w, b = _arrays(rng, (1, 4) + (5,) * dims, (4, 2) + (3,) * dims, np.float32)
    w[1, 0, (0,) * dims] = value
    kwargs = dict(padding=1, groups=2)
    y, expected = _run(x, w, b, kwargs, "gemm"), _torch(x, w, b, kwargs)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(y).any()
    assert_close(y, expected)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("weight_shape, kwargs", [((4, 3, 3, 3), dict(padding=1)), ((4, 3, 1, 1), dict())])
def test_non_finite_input_propagates_like_torch(weight_shape, kwargs, value, rng):
    x, w, b = _arrays(rng, (2, 3, 6, 7), weight_shape, np.float32)
    x[1, 2, 3, 4] = value
    y, expected = _run(x, w, b, kwargs, "gemm"), _torch(x, w, b, kwargs)
    assert not np.isfinite(y).all()
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.array_equal(np.isinf(y), np.isinf(expected))
    assert_close(y, expected)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "reversed"])
def test_non_contiguous_input(layout, rng):
    x, w, b = _arrays(rng, (2, 4, 12, 10), (5, 4, 3, 3), np.float32)
    view = {"transposed": x.transpose(0, 1, 3, 2), "sliced": x[:, :, ::2, 1:], "reversed": x[:, ::-1, :, ::-1]}[layout]
    kwargs = dict(padding=1, stride=(1, 2))
    assert_close(_run(view, w, b, kwargs, "gemm"), _torch(np.ascontiguousarray(view), w, b, kwargs))


def test_batch_zero_and_unbatched(rng):
    x, w, b = _arrays(rng, (0, 3, 6, 6), (4, 3, 3, 3), np.float32)
    assert _run(x, w, b, dict(padding=1), "gemm").shape == (0, 4, 6, 6)
    x = rng.standard_normal((3, 6, 6)).astype(np.float32)
    assert_close(_run(x, w, b, dict(padding=1), "gemm"), _torch(x[None], w, b, dict(padding=1))[0])


ACTIVATIONS = FUSED_ACTIVATIONS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_shape, kwargs", [((6, 4, 3, 3), dict(padding=1, stride=(2, 1))),
                                                  ((6, 2, 1, 1), dict(groups=2))])
@pytest.mark.parametrize("activation, args, reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("pointwise_implicit_from", [0, 2 ** 62], ids=["in-place", "pointwise-gemm"])
def test_fused_epilogue_equals_unfused(activation, args, reference, weight_shape, kwargs, dtype,
                                       pointwise_implicit_from, monkeypatch, rng):
    monkeypatch.setattr(PointwiseGemm, "COLUMN_BYTES", 1)  # several column blocks, each finished on its own
    monkeypatch.setattr(GemmConv, "POINTWISE_IMPLICIT_FROM", pointwise_implicit_from)
    x, w, b = _arrays(rng, (2, 4, 9, 11), weight_shape, dtype)
    scale, shift = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    conv = F.prepack_conv(w, None, algorithm="gemm", scale=scale, shift=shift, activation=activation,
                          activation_args=args, **kwargs)
    plain = _run(x, w, None, kwargs, "gemm")
    residual = rng.standard_normal(plain.shape).astype(dtype)
    expected = reference(plain * scale[:, None, None] + shift[:, None, None] + residual)
    assert_close(conv(x, residual=residual), expected)


def test_bias_alone_is_fused(rng):
    x, w, b = _arrays(rng, (1, 3, 8, 8), (5, 3, 3, 3), np.float64)
    problem = F.prepack_conv(w, b, padding=1).problem
    output = np.empty((1, 5, 8, 8))
    run_algorithm(GemmConv(problem, w), x, output, Epilogue.bias_only(b, np.float64))
    assert_close(output, _torch(x, w, b, dict(padding=1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation, params", [
    ("identity", (0.0, 0.0, 0.0)), ("relu", (0.0, 0.0, 0.0)), ("hardtanh", (0.0, 6.0, 0.0)),
    ("hardtanh", (-0.5, 0.25, 0.0)), ("hardtanh", (np.nan, 1.0, 0.0)), ("hardtanh", (-1.0, np.nan, 0.0)),
    ("silu", (0.0, 0.0, 0.0)), ("leaky_relu", (0.1, 0.0, 0.0))])
@pytest.mark.parametrize("parts", ["scale, shift, residual", "scale, shift", "scale", "shift, residual",
                                   "residual", ""])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", [
    ((2, 5, 9, 40), (19, 5, 1, 1), dict()),                          # pointwise in place: stored in place
    ((1, 4, 11, 53), (9, 4, 3, 3), dict(padding=1, stride=(2, 1))),  # rows of whole and partial tiles
    ((1, 4, 11, 53), (16, 4, 3, 3), dict(padding=1, stride=(2, 1))),  # wide tiles across row ends
    ((1, 3, 9, 17), (6, 3, 3, 3), dict(padding=1))])                 # narrow tiles; partial panel
@pytest.mark.parametrize("tiling", ["auto", "rows"])
def test_epilogue_in_registers_bits_equal_separate_pass(rng, input_shape, weight_shape, kwargs, parts,
                                                        activation, params, dtype, tiling, monkeypatch):
    """The implicit GEMM's micro-kernel finishes the tiles it stores in place, and whole panels' tiles
    through its scratch when no residual is read, in its registers (ReLU, hardtanh with bounds that
    are not NaN; the other activations right after); the other tiles copied out of its scratch with
    epilogue_row: the same bits as epilogue_row's separate pass over the plain output, signed zeros,
    NaN and infinities included, for every part present or absent, with row tiles too."""
    monkeypatch.setattr(GemmConv, "POINTWISE_IMPLICIT_FROM", 0)
    if tiling == "rows":
        monkeypatch.setattr(GemmConv, "LAYOUT", "phase")
        monkeypatch.setattr(GemmConv, "TILING", "rows")
    x, w, _ = _arrays(rng, input_shape, weight_shape, dtype, bias=False)
    x[0, 0, 2, 3] = np.nan
    x[0, 1, 4, 7] = np.inf
    w[2] = -0.0        # a channel of zero sums (+0.0): -0.0 once scaled by a negative scale
    out_channels = weight_shape[0]
    empty = np.empty(0, dtype)
    scale = rng.uniform(-2.0, 2.0, out_channels).astype(dtype) if "scale" in parts else empty
    if scale.size:
        scale[2] = -abs(scale[2])
    shift = (rng.standard_normal(out_channels) * 3).astype(dtype) if "shift" in parts else empty
    if shift.size:
        shift[2] = 0.0
    problem = F.prepack_conv(w, None, **kwargs).problem
    plain = F.conv2d(x, w, None, algorithm="gemm", **kwargs)
    residual = None
    if "residual" in parts:
        residual = rng.standard_normal(plain.shape).astype(dtype)
        residual[0, 3, 1, :] = -0.0
        residual[0, 4, 0, 5] = np.nan
    epilogue = Epilogue(scale, shift, ACTIVATION_KINDS[activation], params)
    fused = np.empty_like(plain)
    run_algorithm(GemmConv(problem, w), x, fused, epilogue, residual)
    unfused = plain.reshape(plain.shape[0], out_channels, -1).copy()
    apply_epilogue(unfused, scale, shift, empty if residual is None else residual.reshape(-1),
                   ACTIVATION_KINDS[activation], *params, 1)
    assert np.array_equal(fused.view(np.uint8), unfused.reshape(plain.shape).view(np.uint8))


def test_transposed_convolutions_are_refused():
    problem = F.prepack_conv(np.ones((4, 3, 3, 3), np.float32), transposed=True, stride=2).problem
    assert "transposed" in GemmConv.unsupported(problem)
    assert GemmConv.unsupported(F.prepack_conv(np.ones((4, 3, 3, 3), np.float32)).problem) is None


@st.composite
def configurations(draw):
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 4))
    out_channels = groups * draw(st.integers(1, 6))
    kernel = draw(st.lists(st.integers(1, 4 if dims < 3 else 3), min_size=dims, max_size=dims))
    dilation = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    padding_kind = draw(st.sampled_from(["ints", "same", "valid"]))
    stride = [1] * dims if padding_kind == "same" else draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    if padding_kind == "ints":
        padding = tuple(draw(st.lists(st.integers(0, 3), min_size=dims, max_size=dims)))
        total = [2 * p for p in padding]
    else:
        padding = padding_kind
        total = [s - 1 for s in spans] if padding_kind == "same" else [0] * dims
    size = [draw(st.integers(max(1, s - t), max(1, s - t) + (12 if dims < 3 else 5))) for s, t in zip(spans, total)]
    batch = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    split = dict(threads=draw(st.integers(1, 3)), tasks_per_thread=draw(st.sampled_from([1, 4, 1000])),
                 column_bytes=draw(st.sampled_from([1, 200, PointwiseGemm.COLUMN_BYTES])),
                 block_bytes=draw(st.sampled_from([1, 2000, GemmConv.BLOCK_BYTES])),
                 layout=draw(st.sampled_from(["auto", "phase", "column"])),
                 tiling=draw(st.sampled_from(["auto", "linear", "rows"])),
                 pointwise_implicit_from=draw(st.sampled_from([0, GemmConv.POINTWISE_IMPLICIT_FROM])))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.uniform(-1, 1, (batch, in_channels) + tuple(size)).astype(dtype)
    w = rng.uniform(-1, 1, (out_channels, in_channels // groups) + tuple(kernel)).astype(dtype)
    b = rng.uniform(-1, 1, out_channels).astype(dtype) if draw(st.booleans()) else None
    kwargs = dict(stride=tuple(stride), padding=padding, dilation=tuple(dilation), groups=groups)
    return x, w, b, kwargs, split


@settings(max_examples=200, deadline=None)
@given(configurations())
def test_random_configurations_match_torch_and_direct(configuration):
    x, w, b, kwargs, split = configuration
    threads = split.pop("threads")
    owners = {name: PointwiseGemm if name == "column_bytes" else GemmConv for name in split}
    if "tasks_per_thread" in split:   # the pointwise GEMM's split has its own
        split["pointwise_tasks_per_thread"] = split["tasks_per_thread"]
        owners["pointwise_tasks_per_thread"] = PointwiseGemm
    attribute = {name: name.upper().removeprefix("POINTWISE_") if name.startswith("pointwise_tasks") else name.upper()
                 for name in split}
    saved = {name: getattr(owners[name], attribute[name]) for name in split}
    try:
        for name, value in split.items():
            setattr(owners[name], attribute[name], value)
        y = _run_threads(x, w, b, kwargs, threads)
    finally:
        for name, value in saved.items():
            setattr(owners[name], attribute[name], value)
    assert_close(y, _torch(x, w, b, kwargs))
    assert_close(y, _run(x, w, b, kwargs, "direct"))
