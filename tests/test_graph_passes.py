"""Graph passes on a hand-built graph: each pass alone and all together give the outputs of the graph
as loaded, and each does its job (and leaves kept values alone)."""
import numpy as np
import pytest

from pyconv.graph import Graph, Model, Value, passes
from graphs import CONV, NO_SCALAR, block_inputs, dense_block, node, residual_block, shuffle_block

PASSES = {p.__name__: p for p in passes.DEFAULT_PASSES}


@pytest.fixture(scope="module")
def block():
    return residual_block()


def _ops(graph):
    return [n.op for n in graph.nodes]


@pytest.mark.parametrize("name", sorted(PASSES) + ["all"])
def test_pass_keeps_outputs(block, name):
    chosen = passes.DEFAULT_PASSES if name == "all" else (PASSES[name],)
    x, s = block_inputs(4)
    before = Model(block, passes=(), debug=True)(x, s)
    after = Model(block, passes=chosen, debug=True)(x, s)
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # DenseNet's pattern (concatenations read by batch norms) through the same passes
    dense = dense_block()
    x = np.random.default_rng(4).standard_normal((3, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(Model(dense, passes=chosen, debug=True)(x), Model(dense, passes=(), debug=True)(x),
                               rtol=1e-5, atol=1e-5)
    if name in ("fuse_concatenation", "all"):
        fused = passes.fuse_concatenation(passes.fuse_epilogue(dense))
        assert _ops(fused).count("cat_channel_affine") == 3 and "cat" not in _ops(fused)
    # ShuffleNet's channel shuffles
    shuffle = shuffle_block()
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 8, 5, 5)).astype(np.float32)
        assert np.array_equal(Model(shuffle, passes=chosen, debug=True)(x), Model(shuffle, passes=(), debug=True)(x))


def test_fold_batch_norm_into_conv_and_linear(block):
    folded = passes.fold_batch_norm(block)
    assert "batch_norm" not in _ops(folded)
    stem = folded.nodes[0]
    assert stem.op == "conv" and stem.output_names == ("bn",) and stem.inputs[3:5] == ("bn.scale", "bn.shift")
    linear = Graph((Value("x", ("N", 3)),), ("y",), (
        node("linear", ["x", "w", None], [("h", ("N", 2))]),
        node("batch_norm", ["h", "m", "v", None, None], [("y", ("N", 2))], {"eps": 1e-5})),
        {"w": np.ones((2, 3), np.float32), "m": np.array([1, 2], np.float32), "v": np.array([4, 9], np.float32)})
    folded = passes.fold_batch_norm(linear)
    assert _ops(folded) == ["linear"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(Model(linear, passes=(passes.fold_batch_norm,))(x), Model(linear, passes=())(x),
                               rtol=1e-6)


def test_fuse_epilogue_takes_bias_residual_and_activation(block):
    fused = passes.fuse_epilogue(passes.fold_batch_norm(block))
    conv = fused.nodes[1]
    assert conv.op == "conv" and conv.output_names == ("sum",)
    assert conv.inputs[4] == "biased.shift" and conv.inputs[5] == "relu"   # bias add, then residual add
    assert fused.nodes[0].attrs["activation"] == "relu"
    assert _ops(fused) == ["conv", "conv", "add", "activation", "mean", "linear", "mul"]


def test_fusion_leaves_kept_values_alone(block):
    kept = passes.fuse_epilogue(passes.fold_batch_norm(block, {"stem", "conv"}), {"stem", "conv"})
    # the kept convs take no batch norm; the one with an activation after it becomes a channel_affine
    assert _ops(kept).count("batch_norm") + _ops(kept).count("channel_affine") == 2
    x, s = block_inputs(2)
    values = Model(block)(x, s, outputs=["stem", "conv", "relu"])
    plain = Model(block, passes=())(x, s, outputs=["stem", "conv", "relu"])
    for name in values:
        np.testing.assert_allclose(values[name], plain[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("function, args", [("relu", {}), ("relu6", {}), ("hardtanh", {"min_val": -0.5, "max_val": 0.5}),
                                            ("silu", {}), ("leaky_relu", {"negative_slope": 0.2})])
def test_batch_norm_then_activation_is_one_channel_affine(function, args):
    """DenseNet's pre-activation (a batch norm on a concatenation, no conv before it): batch norm and
    activation become one channel_affine node with the same bits, NaN and signed zeros included."""
    rng = np.random.default_rng(0)
    graph = Graph((Value("x", ("N", 5, 6, 7)),), ("y",), (
        node("batch_norm", ["x", "m", "v", "w", "b"], [("h", ("N", 5, 6, 7))], {"eps": 1e-5}),
        node("activation", ["h"], [("y", ("N", 5, 6, 7))], {"function": function, "args": args})),
        {"m": rng.standard_normal(5).astype(np.float32), "v": rng.uniform(0.5, 2, 5).astype(np.float32),
         "w": rng.standard_normal(5).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)})
    fused = passes.fuse_epilogue(graph)
    assert _ops(fused) == ["channel_affine"]
    x = rng.standard_normal((3, 5, 6, 7)).astype(np.float32)
    x[0, 1, 2, 3], x[1, 2] = np.nan, -0.0
    ours, plain = Model(graph)(x), Model(graph, passes=())(x)
    assert np.array_equal(ours.view(np.uint32), plain.view(np.uint32))
    assert "batch_norm+" + function in str(Model(graph).summary())


@pytest.mark.parametrize("activation", [None, "relu", "silu"])
def test_concatenation_read_by_a_batch_norm_is_one_cat_channel_affine(activation):
    """DenseNet's layer: cat(features, dim=1), batch norm (and activation) become one cat_channel_affine
    node with the same bits, NaN and signed zeros included; a concatenation read twice, along another
    dim or kept stays a cat."""
    rng = np.random.default_rng(2)
    shape = ("N", 7, 4, 5)
    nodes = [node("cat", ["x", "y", "z"], [("c", shape)], {"dim": -3}),
             node("batch_norm", ["c", "m", "v", "w", "b"], [("h", shape)], {"eps": 1e-5})]
    if activation:
        nodes.append(node("activation", ["h"], [("a", shape)], {"function": activation, "args": {}}))
    inputs = (Value("x", ("N", 2, 4, 5)), Value("y", ("N", 4, 4, 5)), Value("z", ("N", 1, 4, 5)))
    constants = {"m": rng.standard_normal(7).astype(np.float32), "v": rng.uniform(0.5, 2, 7).astype(np.float32),
                 "w": rng.standard_normal(7).astype(np.float32), "b": rng.standard_normal(7).astype(np.float32)}
    graph = Graph(inputs, (nodes[-1].output_names[0],), tuple(nodes), constants)
    fused = Model(graph)
    assert _ops(passes.fuse_concatenation(passes.fuse_epilogue(graph))) == ["cat_channel_affine"]
    arrays = [rng.standard_normal((3, v.shape[1], 4, 5)).astype(np.float32) for v in inputs]
    arrays[0][0, 1, 2, 3], arrays[1][1, 2], arrays[2][2, 0, 1] = np.nan, -0.0, np.inf
    ours, plain = fused(*arrays), Model(graph, passes=())(*arrays)
    assert np.array_equal(ours.view(np.uint32), plain.view(np.uint32))
    assert "cat+batch_norm" + (f"+{activation}" if activation else "") in str(fused.summary())
    # not fused: the concatenation kept, read twice, or along another dim
    assert "cat" in _ops(passes.fuse_concatenation(graph, {"c"}))
    twice = graph.replace(nodes=graph.nodes + (node("add", ["c", "c"], [("d", shape)], NO_SCALAR),),
                          outputs=graph.outputs + ("d",))
    assert "cat" in _ops(passes.fuse_concatenation(twice))
    rows = Graph((Value("x", ("N", 7, 2, 5)), Value("y", ("N", 7, 2, 5))), ("h",), (
        node("cat", ["x", "y"], [("c", shape)], {"dim": 2}),
        node("batch_norm", ["c", "m", "v", "w", "b"], [("h", shape)], {"eps": 1e-5})), constants)
    assert _ops(passes.fuse_concatenation(rows)) == ["cat", "batch_norm"]


def test_fused_constants_never_replace_a_constant_of_the_same_name():
    """The fusion names its scale and shift after the output ("y.scale"); a constant of that name that
    another node reads keeps its values (the new one gets a suffix)."""
    rng = np.random.default_rng(1)
    graph = Graph((Value("x", ("N", 5, 3, 3)),), ("z",), (
        node("batch_norm", ["x", "m", "v", None, None], [("h", ("N", 5, 3, 3))], {"eps": 1e-5}),
        node("activation", ["h"], [("y", ("N", 5, 3, 3))], {"function": "relu", "args": {}}),
        node("add", ["y", "y.scale"], [("z", ("N", 5, 3, 3))], NO_SCALAR)),
        {"m": rng.standard_normal(5).astype(np.float32), "v": rng.uniform(0.5, 2, 5).astype(np.float32),
         "y.scale": np.full((1, 5, 1, 1), 100.0, np.float32)})
    fused = passes.fuse_epilogue(graph)
    assert _ops(fused) == ["channel_affine", "add"] and fused.constants["y.scale"].max() == 100.0
    x = rng.standard_normal((2, 5, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(Model(graph)(x), Model(graph, passes=())(x))


def test_eliminate_dead_nodes(block):
    pruned = passes.eliminate_dead_nodes(block)
    assert "mul" not in _ops(pruned) and len(pruned.nodes) == len(block.nodes) - 1
    assert "unused" in [v for n in passes.eliminate_dead_nodes(block, {"unused"}).nodes for v in n.output_names]
    partial = Graph(block.inputs, ("pooled",), block.nodes, block.constants, block.parameters)
    pruned = passes.eliminate_dead_nodes(partial)
    assert "fc.weight" not in pruned.constants and "fc.weight" not in pruned.parameters


def test_fold_constants():
    constants = {"a": np.full((2, 1, 1), 2.0, np.float32), "b": np.full((2, 1, 1), 3.0, np.float32),
                 "w": np.ones((2, 2, 1, 1), np.float32)}
    graph = Graph((Value("x", ("N", 2, 3, 3)),), ("y",), (
        node("mul", ["a", "b"], [("ab", (2, 1, 1))], NO_SCALAR),
        node("conv", ["x", "w", None, None, None, None], [("c", ("N", 2, 3, 3))],
             {**CONV, "padding": [0, 0]}),
        node("add", ["c", "ab"], [("y", ("N", 2, 3, 3))], NO_SCALAR)), constants)
    folded = passes.fold_constants(graph)
    assert _ops(folded) == ["conv", "add"]
    np.testing.assert_array_equal(folded.constants["ab"], np.full((2, 1, 1), 6.0, np.float32))
    assert _ops(Model(graph)._program(frozenset()).graph) == ["conv"]   # then fused as a bias
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(Model(graph)(x), x.sum(1, keepdims=True).repeat(2, 1) + 6, rtol=1e-6)


def test_channel_shuffle_is_one_cat_shuffle():
    fused = passes.fuse_channel_shuffle(shuffle_block())
    # block 1: cat, reshape, transpose, reshape and the next split; block 2: no cat before, a cat after
    assert _ops(fused) == ["split", "conv", "cat_shuffle", "conv", "cat_shuffle", "cat"]
    first, second = fused.nodes[2], fused.nodes[4]
    assert first.inputs == ("x1", "b") and first.output_names == ("y1", "y2")
    assert first.attrs == {"groups": 2, "sizes": [4, 4]} and len(first.origin) == 5
    assert second.inputs == ("d",) and second.output_names == ("ds",) and second.attrs == {"groups": 2, "sizes": [4]}
    # a kept value inside the pattern stops the fusion there, and the other shuffle still fuses
    kept = passes.fuse_channel_shuffle(shuffle_block(), keep=frozenset({"t"}))
    assert _ops(kept) == ["split", "conv", "cat", "reshape", "permute", "reshape", "split", "conv", "cat_shuffle",
                          "cat"]
    x = np.random.default_rng(0).standard_normal((2, 8, 5, 5)).astype(np.float32)
    model = Model(shuffle_block(), debug=True)
    before = Model(shuffle_block(), passes=(), debug=True)
    t, y = model(x, outputs=["t", "y"])["t"], model(x)
    assert np.array_equal(y, before(x)) and np.array_equal(t, before(x, outputs=["t"])["t"])


@pytest.mark.parametrize("counts, groups, sizes", [((3, 5, 4), 3, [5, 7]), ((12,), 4, [12]), ((6, 6), 2, [3, 9]),
                                                    ((7, 5), 3, [1, 10, 1]), ((4, 4), 1, [8])])
def test_cat_shuffle_kernel_against_numpy(counts, groups, sizes):
    """Uneven inputs and outputs, a run of output channels crossing inputs: as concatenate, reshape, swap, split."""
    from pyconv.graph.ops import OPS
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, c, 3, 4)).astype(np.float32) for c in counts]
    outs = [np.full((2, s, 3, 4), np.nan, np.float32) for s in sizes]
    OPS["cat_shuffle"].kernel({"groups": groups, "sizes": sizes}, [])(xs, outs)
    x = np.concatenate(xs, 1)
    shuffled = x.reshape(2, groups, -1, 3, 4).swapaxes(1, 2).reshape(x.shape)
    for out, expected in zip(outs, np.split(shuffled, np.cumsum(sizes)[:-1], axis=1)):
        assert np.array_equal(out, expected)


def test_channel_shuffle_node_is_one_cat_shuffle():
    """nn.ChannelShuffle's node between a concatenation and a split fuses the same way."""
    half, shape = ("N", 3, 4, 4), ("N", 6, 4, 4)
    graph = Graph((Value("a", half), Value("b", half)), ("p", "q"), (
        node("cat", ["a", "b"], [("c", shape)], {"dim": 1}),
        node("channel_shuffle", ["c"], [("s", shape)], {"groups": 3}),
        node("split", ["s"], [("p", ("N", 2, 4, 4)), ("q", ("N", 4, 4, 4))], {"dim": 1, "sizes": [2, 4]})), {})
    fused = passes.fuse_channel_shuffle(graph)
    assert _ops(fused) == ["cat_shuffle"] and fused.nodes[0].attrs == {"groups": 3, "sizes": [2, 4]}
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, 3, 4, 4)).astype(np.float32) for _ in range(2))
    for got, expected in zip(Model(graph, debug=True)(a, b), Model(graph, passes=(), debug=True)(a, b)):
        assert np.array_equal(got, expected)
