"""The executor on hand-built graphs (no torch): results, inputs checked, intermediate values on request,
buffer reuse without aliasing (NaN poisoning), concurrent calls."""
import threading

import numpy as np
import pytest

import pyconv.functional as F
from pyconv.graph import Graph, Model, Value, memory
from graphs import block_inputs, block_reference, node, residual_block


@pytest.fixture(scope="module")
def block():
    return residual_block()


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("passes", ["all", "none"])
def test_outputs_equal_op_by_op_reference(block, batch, passes):
    model = Model(block, debug=True) if passes == "all" else Model(block, passes=(), debug=True)
    x, s = block_inputs(batch)
    logits, features = model(x, s)
    expected_logits, expected_features = block_reference(block, x, s)
    assert logits.shape == (batch, 5) and features.shape == (batch, 4, 8, 8)
    assert logits.dtype == features.dtype == np.float32
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features, expected_features, rtol=1e-5, atol=1e-5)


def test_inputs_checked(block):
    model = Model(block)
    x, s = block_inputs(2)
    with pytest.raises(TypeError, match="expected 2 input arrays \\(x, s\\)"):
        model(x)
    with pytest.raises(TypeError, match="'x' to be a float32 array, got dtype int64"):
        model(x.astype(np.int64), s)
    with pytest.raises(TypeError, match="'s' to be a numpy array"):
        model(x, s.tolist())
    with pytest.raises(ValueError, match=r"input 'x' of shape \(N, 3, 8, 8\) .* got \(2, 3, 9, 8\)"):
        model(np.zeros((2, 3, 9, 8), np.float32), s)
    with pytest.raises(ValueError, match=r"input 's' of shape \(N, 4, 8, 8\) \(N: the batch size, 2 here\)"):
        model(x, s[:1])
    converted = model(x.astype(np.float64), np.asfortranarray(s))
    for a, b in zip(converted, model(x, s)):
        np.testing.assert_array_equal(a, b)


def test_intermediate_values_by_module_path_and_name(block):
    model = Model(block)
    x, s = block_inputs(3)
    k = block.constants
    values = model(x, s, outputs=["stem", "block.conv", "relu", "pooled"])
    assert list(values) == ["stem", "block.conv", "relu", "pooled"]
    stem = F.conv2d(x, k["stem.weight"], k["stem.bias"], padding=1)
    np.testing.assert_allclose(values["stem"], stem, rtol=1e-5, atol=1e-6)
    relu = F.relu(F.batch_norm(stem, k["bn.mean"], k["bn.var"], k["bn.weight"], k["bn.bias"]))
    np.testing.assert_allclose(values["relu"], relu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["block.conv"], F.conv2d(relu, k["conv.weight"], padding=1), rtol=1e-5,
                               atol=1e-5)
    assert values["pooled"].shape == (3, 4)
    # the module 'block' (nodes scoped 'block' and 'block.*') gives its last value read outside it: 'out'
    np.testing.assert_array_equal(model(x, s, outputs=["block"])["block"], model(x, s)[1])
    with pytest.raises(ValueError, match="'layer9' is neither a value .*module paths: 'block', 'block.act'"):
        model(x, s, outputs=["layer9"])
    with pytest.raises(TypeError, match="outputs to be a list"):
        model(x, s, outputs="stem")


def test_outputs_are_not_reused_memory(block):
    model = Model(block)
    x, s = block_inputs(2)
    first = model(x, s)
    kept = [a.copy() for a in first]
    model(*block_inputs(2, seed=5))
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_output_that_is_an_input_is_a_copy():
    graph = Graph((Value("x", ("N", 2)),), ("x", "y"),
                  (node("reshape", ["x"], [("y", ("N", 2, 1))], {"shape": ["N", 2, 1]}),), {})
    x = np.ones((3, 2), np.float32)
    same, view = Model(graph)(x)
    assert not np.shares_memory(same, x) and not np.shares_memory(view, x)
    np.testing.assert_array_equal(view[..., 0], x)


def test_buffers_are_reused_and_never_alias():
    """Offsets: live buffers never overlap, and the arena is smaller than all buffers together."""
    rng = np.random.default_rng(0)
    buffers = []
    for _ in range(200):
        first = int(rng.integers(0, 100))
        buffers.append(memory.Buffer(int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 10))))
    peak = memory.assign_offsets(buffers)
    assert peak < sum(b.size for b in buffers)
    for i, a in enumerate(buffers):
        assert a.offset % memory.ALIGNMENT == 0 and a.offset + a.size <= peak
        for b in buffers[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset


def test_planned_peak_is_below_the_sum_of_values(block):
    model = Model(block, passes=())
    total = sum(4 * np.prod(v.shape[1:]) * 8 for n in block.nodes for v in n.outputs)
    assert 0 < model.planned_peak_bytes(8) < total
    with pytest.raises(ValueError, match="batch"):
        model.planned_peak_bytes(0)


def test_arena_values_start_on_cache_lines(block):
    """Every value a step writes into the arena starts on a 64-byte line (the arena's start included:
    numpy puts large arrays 16 bytes past one)."""
    plan = Model(block)._program(frozenset()).plan(8)
    arena, views = plan._acquire()
    starts = [view.ctypes.data for outs in views if outs is not None for view in outs if view is not None]
    assert starts and all(start % memory.ALIGNMENT == 0 for start in starts)
    assert arena.ctypes.data % memory.ALIGNMENT == 0


def test_poisoning_catches_aliasing(block, monkeypatch):
    """With every buffer planned at offset 0 (a broken planner), debug mode's NaN poisoning shows up."""
    def everything_at_zero(buffers):
        buffers = list(buffers)
        for b in buffers:
            b.offset = 0
        return max(b.size for b in buffers)
    monkeypatch.setattr(memory, "assign_offsets", everything_at_zero)
    x, s = block_inputs(2)
    broken = Model(block, passes=(), debug=True)(x, s)
    expected = block_reference(block, x, s)
    assert any(not np.allclose(a, b, equal_nan=False) for a, b in zip(broken, expected))


def test_concurrent_calls_equal_serial_calls(block):
    model = Model(block)
    inputs = [block_inputs(batch, seed) for seed, batch in enumerate((1, 2, 3, 4, 1, 2, 3, 4))]
    serial = [model(*pair) for pair in inputs]
    results = {}

    def work(worker):
        for round_ in range(3):
            for index in range(worker, len(inputs), 4):
                results[(worker, round_, index)] = model(*inputs[index])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 * len(inputs)
    for (_, _, index), outputs in results.items():
        for a, b in zip(outputs, serial[index]):
            np.testing.assert_array_equal(a, b)


def test_summary_table(block):
    summary = Model(block).summary(batch=2)
    assert summary.totals["params"] == sum(block.constants[p].size for p in block.parameters)
    # ptflops' convention (summary's docstring): products + bias, 2 per element for an affine batch norm, 1 for a
    # relu/relu6, 1 per input element for the pooling mean; the adds of 'block' (it has submodules) count 0
    stem_macs = 4 * 64 * 27 + 256 + 2 * 256 + 256
    conv_macs = 4 * 64 * 36 + 2 * 256
    assert [row["MACs"] for row in summary.rows[:2]] == [2 * stem_macs, 2 * conv_macs]
    assert summary.totals["MACs"] == 2 * (stem_macs + conv_macs + 256 + 256 + 5 * 4 + 5)
    ops = [row["op"] for row in summary.rows]
    assert ops[:2] == ["conv2d+batch_norm+relu", "conv2d+batch_norm+add+add"]
    assert all(bool(row["algorithm"]) == row["op"].startswith("conv") for row in summary.rows)
    assert "conv2d+batch_norm+relu" in str(summary) and "params: 297" in str(summary)
    profile = Model(block).profile(*block_inputs(2), repeat=2)
    assert abs(sum(row["share %"] for row in profile.rows) - 100) < 1e-6
    assert profile.totals["ms"] > 0


def test_programs_for_requested_outputs_are_bounded(block):
    model = Model(block)
    x, s = block_inputs(1)
    names = ["stem", "bn", "relu", "conv", "bn2", "biased", "sum", "summed", "out", "pooled", "logits"]
    for name in names:
        assert model(x, s, outputs=[name])[name].shape[0] == 1
    assert len(model._programs) <= 9 and frozenset() in model._programs


@pytest.mark.parametrize("dim", [1, 2, 3, -2])
@pytest.mark.parametrize("size", [3, 40], ids=["short-rows", "long-rows"])
def test_cat_along_any_dim_equals_numpy(dim, size):
    """The cat node copies rows of at least Cat.ROW_BYTES_FOR_TASKS bytes in parallel chunks
    (layout.concatenate), shorter ones with np.concatenate: np.concatenate's values either way,
    along any dim, an empty piece included."""
    rng = np.random.default_rng(3)
    lengths = [2, 0, 5]
    shapes = []
    for length in lengths:
        shape = [2, 3, size, size]
        shape[dim] = length
        shapes.append(tuple(shape))
    out_shape = list(shapes[0])
    out_shape[dim] = sum(lengths)
    graph = Graph(tuple(Value(f"x{i}", ("N",) + s[1:]) for i, s in enumerate(shapes)), ("y",), (
        node("cat", [f"x{i}" for i in range(3)], [("y", ("N",) + tuple(out_shape[1:]))], {"dim": dim}),), {})
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    np.testing.assert_array_equal(Model(graph)(*arrays), np.concatenate(arrays, axis=dim))


def _branches_graph():
    """x (N, 2, 5, 5) -> (w (N, 8, 5, 5), z (N, 4, 25)): three branches concatenated along the channels (a 3x3
    conv a, a 1x1 conv b and b's relu), a conv of the concatenation and a conv of that (w, written after the
    concatenation's last reader), then b read again through a reshape (z, the relu of that view)."""
    rng = np.random.default_rng(5)
    conv = {"stride": [1, 1], "dilation": [1, 1], "groups": 1, "transposed": False, "output_padding": [0, 0],
            "activation": None, "activation_args": {}}
    constants = {"w3": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
                 "w1": rng.standard_normal((4, 2, 1, 1)).astype(np.float32),
                 "wc": rng.standard_normal((2, 11, 1, 1)).astype(np.float32),
                 "ww": rng.standard_normal((8, 2, 1, 1)).astype(np.float32)}
    relu = {"function": "relu", "args": {}}
    nodes = (node("conv", ["x", "w3", None, None, None, None], [("a", ("N", 3, 5, 5))], {**conv, "padding": [1, 1]}),
             node("conv", ["x", "w1", None, None, None, None], [("b", ("N", 4, 5, 5))], {**conv, "padding": [0, 0]}),
             node("activation", ["b"], [("r", ("N", 4, 5, 5))], relu),
             node("cat", ["a", "b", "r"], [("c", ("N", 11, 5, 5))], {"dim": 1}),
             node("conv", ["c", "wc", None, None, None, None], [("y", ("N", 2, 5, 5))], {**conv, "padding": [0, 0]}),
             node("conv", ["y", "ww", None, None, None, None], [("w", ("N", 8, 5, 5))], {**conv, "padding": [0, 0]}),
             node("reshape", ["b"], [("bv", ("N", 4, 25))], {"shape": ["N", 4, 25]}),
             node("activation", ["bv"], [("z", ("N", 4, 25))], relu))
    return Graph((Value("x", ("N", 2, 5, 5)),), ("w", "z"), nodes, constants)


@pytest.mark.parametrize("batch", [1, 3])
def test_concatenation_of_one_image_is_written_in_place(batch):
    """At batch 1 the branches write straight into the concatenation's channel slices and the cat step copies
    nothing; the results equal the copying plan's bit for bit (the concatenation requested, so copied) and
    numpy's, with freed buffers poisoned (debug) and a branch read through a view after the concatenation."""
    from pyconv.graph.executor import _already_concatenated
    graph = _branches_graph()
    constants = graph.constants
    x = np.random.default_rng(batch).standard_normal((batch, 2, 5, 5)).astype(np.float32)
    model = Model(graph, passes=(), debug=True)
    plan = model._program(frozenset()).plan(batch)
    assert [s.call is _already_concatenated for s in plan.steps].count(True) == (batch == 1)
    w, z = model(x)
    copied = model(x, outputs=["c", "w", "z"])
    assert not any(s.call is _already_concatenated for s in model._program(frozenset({"c"})).plan(batch).steps)
    np.testing.assert_array_equal(w, copied["w"])
    np.testing.assert_array_equal(z, copied["z"])
    a, b = F.conv2d(x, constants["w3"], padding=1), F.conv2d(x, constants["w1"])
    np.testing.assert_allclose(copied["c"], np.concatenate([a, b, np.maximum(b, 0)], 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(z, np.maximum(b, 0).reshape(batch, 4, 25), rtol=1e-6, atol=1e-6)
    expected = F.conv2d(F.conv2d(copied["c"], constants["wc"]), constants["ww"])
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-5)
