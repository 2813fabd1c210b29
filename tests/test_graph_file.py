""".pyconv files: round trip, memory mapping, and refusal of truncated, corrupted and hostile files
(each refused with ModelFileError, a ValueError naming the file)."""
import json

import numpy as np
import pytest
import safetensors.numpy

import pyconv
from pyconv.graph import ModelFileError, load_graph, save_graph
from graphs import block_inputs, residual_block, write_model_file


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("file") / "block.pyconv"
    save_graph(residual_block(), path)
    return path


def _graph_parts(graph):
    """The graph's JSON data and tensors, to be altered and written back."""
    return graph.to_json(), dict(graph.constants)


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as error:
        load_graph(path)
    assert str(path) in str(error.value)
    return error.value


def test_round_trip_keeps_graph_and_outputs(saved):
    graph = residual_block()
    loaded = load_graph(saved)
    assert loaded.to_json() == graph.to_json()
    assert loaded.constants.keys() == graph.constants.keys()
    for name, array in graph.constants.items():
        np.testing.assert_array_equal(loaded.constants[name], array)
    x, s = block_inputs(2)
    for ours, theirs in zip(pyconv.load(saved)(x, s), pyconv.graph.Model(graph)(x, s)):
        np.testing.assert_array_equal(ours, theirs)


def test_constants_are_memory_mapped(saved):
    array = load_graph(saved).constants["stem.weight"]
    base = array
    while not isinstance(base, np.memmap) and base.base is not None:
        base = base.base
    assert isinstance(base, np.memmap) and base.filename == str(saved.resolve())


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.01, 0.3, 0.9, 0.999])
def test_truncated_file_refused(saved, tmp_path, fraction):
    data = saved.read_bytes()
    path = tmp_path / "cut.pyconv"
    path.write_bytes(data[:int(len(data) * fraction)])
    _refused(path, "too short|not a valid .pyconv file")


def test_flipped_bytes_refused(saved, tmp_path):
    """One flipped bit anywhere (header length, header, graph JSON, weights) is detected."""
    data = saved.read_bytes()
    path = tmp_path / "flipped.pyconv"
    for position in list(range(0, 16)) + list(range(16, len(data), max(1, len(data) // 40))) + [len(data) - 1]:
        corrupted = bytearray(data)
        corrupted[position] ^= 0x04
        path.write_bytes(bytes(corrupted))
        with pytest.raises(ModelFileError):
            load_graph(path)


def test_not_a_model_file_refused(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, str(path))
    _refused(path, "without a pyconv graph")
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    _refused(path, "not a valid .pyconv file")
    path.write_bytes(b"")
    _refused(path, "too short")


@pytest.mark.parametrize("version, match", [("2", "newer pyconv"), ("0", "unreadable format version"),
                                            ("one", "unreadable format version"), ("", "unreadable")])
def test_wrong_format_version_refused(tmp_path, version, match):
    data, tensors = _graph_parts(residual_block())
    write_model_file(tmp_path / "v.pyconv", data, tensors, {"pyconv.format_version": version})
    _refused(tmp_path / "v.pyconv", match)


def test_bad_checksum_refused(tmp_path):
    data, tensors = _graph_parts(residual_block())
    write_model_file(tmp_path / "c.pyconv", data, tensors, checksum=False)
    _refused(tmp_path / "c.pyconv", "checksum mismatch")


def _altered(change):
    data, tensors = _graph_parts(residual_block())
    data = json.loads(json.dumps(data))
    change(data, tensors)
    return data, tensors


def _node(data, output):
    return next(n for n in data["nodes"] if n["outputs"][0]["name"] == output)


def _set(mapping, key, value):
    mapping[key] = value


HOSTILE = {
    "unknown op": (lambda d, t: _set(_node(d, "relu"), "op", "os.system"), "unknown op 'os.system'"),
    "dangling value": (lambda d, t: _set(_node(d, "relu"), "inputs", ["nowhere"]), "dangling"),
    "cycle": (lambda d, t: _set(_node(d, "relu"), "inputs", ["out"]), "not defined before"),
    "missing constant": (lambda d, t: t.pop("bn.var"), "'bn.var' is not defined"),
    "computed weight": (lambda d, t: _node(d, "conv")["inputs"].__setitem__(1, "relu"), "must be a constant"),
    "attribute type": (lambda d, t: _node(d, "stem")["attrs"].__setitem__("groups", "1"), "'groups'"),
    "bool as int": (lambda d, t: _node(d, "stem")["attrs"].__setitem__("groups", True), "'groups'"),
    "zero stride": (lambda d, t: _node(d, "stem")["attrs"].__setitem__("stride", [0, 1]), "stride"),
    "missing attribute": (lambda d, t: _node(d, "stem")["attrs"].pop("dilation"), "missing \\['dilation'\\]"),
    "unknown attribute": (lambda d, t: _node(d, "pooled")["attrs"].__setitem__("evil", 1), "unknown \\['evil'\\]"),
    "huge int": (lambda d, t: _node(d, "stem")["attrs"].__setitem__("padding", [10 ** 30, 1]), "'padding'"),
    "huge input": (lambda d, t: _set(d["inputs"][0], "shape", ["N", 3, 2 ** 14, 2 ** 14]), "beyond"),
    "huge dim": (lambda d, t: _set(d["inputs"][0], "shape", ["N", 3, 10 ** 12, 8]), "dims in"),
    "huge repeat": (lambda d, t: _set(d["inputs"][0], "shape", ["99999999999*N", 3, 8, 8]), "dim"),
    "wrong declared shape": (lambda d, t: _set(_node(d, "pooled")["outputs"][0], "shape", ["N", 5]), "declared"),
    "batch declared static": (lambda d, t: _set(_node(d, "pooled")["outputs"][0], "shape", [1, 4]), "declared"),
    "wrong input count": (lambda d, t: _node(d, "pooled")["inputs"].append("out"), "expected 1 inputs"),
    "wrong output count": (lambda d, t: _node(d, "pooled")["outputs"].append(
        {"name": "x2", "shape": ["N"], "dtype": "float32"}), "expected 1 outputs"),
    "duplicate value": (lambda d, t: _set(_node(d, "pooled")["outputs"][0], "name", "relu"), "defined twice"),
    "no outputs": (lambda d, t: _set(d, "outputs", []), "no outputs"),
    "undefined output": (lambda d, t: _set(d, "outputs", ["ghost"]), "'ghost' is not defined"),
    "bad dtype": (lambda d, t: _set(_node(d, "pooled")["outputs"][0], "dtype", "float16"), "dtype"),
    "wrong constant shape": (lambda d, t: _set(t, "bn.var", np.ones(7, np.float32)), "running_var"),
    "int64 weights": (lambda d, t: _set(t, "fc.weight", np.ones((5, 4), np.int64)), "float32"),
    "float16 tensor": (lambda d, t: _set(t, "fc.weight", np.ones((5, 4), np.float16)), "F16"),
    "nodes not a list": (lambda d, t: _set(d, "nodes", {"a": 1}), "expected a list"),
    "extra key": (lambda d, t: _set(d, "exec", "print(1)"), "unknown \\['exec'\\]"),
    "bad activation": (lambda d, t: _node(d, "relu")["attrs"].__setitem__("function", "__import__"), "function"),
    "bad activation args": (lambda d, t: _node(d, "relu")["attrs"].__setitem__("args", {"alpha": 1}), "alpha"),
    "unknown parameter": (lambda d, t: d["parameters"].append("ghost"), "parameter 'ghost'"),
    # cat_channel_affine (made by the passes, but a valid op name in a file): pieces that do not add up
    "cat_channel_affine channels": (lambda d, t: _node(d, "bn").update(
        op="cat_channel_affine", inputs=["bn.mean", "bn.var", "stem", "x"],
        attrs={"activation": None, "activation_args": {}}), "expected scale of shape \\(7,\\)"),
    "cat_channel_affine pieces": (lambda d, t: _node(d, "bn").update(
        op="cat_channel_affine", inputs=["bn.mean", "bn.var", "stem", "fc.weight"],
        attrs={"activation": "relu", "activation_args": {}}), "differ only in dim 1"),
    "cat_channel_affine no piece": (lambda d, t: _node(d, "bn").update(
        op="cat_channel_affine", inputs=["bn.mean", "bn.var"],
        attrs={"activation": None, "activation_args": {}}), "expected at least 3 inputs"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_graph_refused(tmp_path, case):
    change, match = HOSTILE[case]
    data, tensors = _altered(change)
    write_model_file(tmp_path / "hostile.pyconv", data, tensors)
    _refused(tmp_path / "hostile.pyconv", match)


@pytest.mark.parametrize("text, match", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"inputs": NaN}', "NaN"),
    ("not json", "invalid graph"),
    ("[]", "expected an object"),
])
def test_malformed_graph_json_refused(tmp_path, text, match):
    write_model_file(tmp_path / "json.pyconv", text, {"w": np.ones(2, np.float32)})
    _refused(tmp_path / "json.pyconv", match)


def test_load_arguments_checked(tmp_path):
    with pytest.raises(TypeError, match="path"):
        pyconv.load(3)
    with pytest.raises(FileNotFoundError):
        pyconv.load(tmp_path / "missing.pyconv")
