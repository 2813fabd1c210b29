"""autotune=True (no torch): tuned outputs equal untuned ones, the fastest candidate is chosen (on a fake
clock), choices are cached next to the model file per thread count and batch size, and a stale, corrupt or
unwritable cache is never trusted blindly."""
import json
import os
import warnings

import numpy as np
import pytest

import pyconv
from pyconv.graph import Model, autotune, save_graph
from graphs import block_inputs, residual_block


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "block.pyconv"
    save_graph(residual_block(), path)
    return str(path)


def _algorithms(model, batch):
    return [row["algorithm"] for row in model.summary(batch=batch).rows if row["algorithm"]]


class FakeClock:
    """Replaces the tuner's clock and kernel calls: running algorithm NAME advances the clock by cost[NAME]."""

    def __init__(self, monkeypatch, cost):
        self.now, self.cost, self.runs = 0.0, cost, []
        monkeypatch.setattr(autotune, "_clock", lambda: self.now)
        monkeypatch.setattr(autotune, "run_algorithm", self.run)

    def run(self, implementation, *args):
        self.runs.append(implementation.name)
        self.now += self.cost[implementation.name]


@pytest.mark.parametrize("batch", [1, 8])
def test_tuned_outputs_equal_untuned(model_file, batch):
    x, s = block_inputs(batch)
    tuned = pyconv.load(model_file, autotune=True)
    for a, b in zip(tuned(x, s), pyconv.load(model_file)(x, s)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert len(_algorithms(tuned, batch)) == 2
    cached = json.load(open(model_file + ".plan.json"))
    assert f"threads={pyconv.get_num_threads()},batch={batch}" in cached["plans"]


def test_fastest_candidate_is_chosen_and_hopeless_ones_cut(model_file, monkeypatch):
    clock = FakeClock(monkeypatch, {"direct": 100.0, "gemm": 3.0, "winograd_f2": 2.0, "winograd_f4": 5.0,
                                    "winograd": 9.0, "depthwise": 9.0})
    model = Model(residual_block(), autotune=True)
    assert _algorithms(model, 1) == ["winograd_f2", "winograd_f2"]
    assert "winograd" not in clock.runs and "depthwise" not in clock.runs
    assert clock.runs.count("direct") == 2  # one untimed run per conv: 100 > 4 x the best median so far
    assert clock.runs.count("winograd_f2") == 8  # 1 untimed + 3 timed per conv
    clock.cost["direct"] = 1.0
    model(*block_inputs(3))
    assert _algorithms(model, 3) == ["direct", "direct"]
    assert model.tuner.cache_path is None  # not loaded from a file: nothing cached


def test_cache_is_reused_without_timing(model_file, monkeypatch):
    first = pyconv.load(model_file, autotune=True)
    first(*block_inputs(2))
    chosen = {batch: _algorithms(first, batch) for batch in (1, 2)}

    def no_timing(*args):
        raise AssertionError("timed although the plan was cached")
    monkeypatch.setattr(autotune, "run_algorithm", no_timing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = pyconv.load(model_file, autotune=True)
        second(*block_inputs(2))
    assert {batch: _algorithms(second, batch) for batch in (1, 2)} == chosen


def test_plans_per_thread_count(model_file, num_threads):
    model = pyconv.load(model_file, autotune=True)
    x, s = block_inputs(1)
    num_threads(1)
    one = model(x, s)
    num_threads(2)
    two = model(x, s)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert {"threads=1,batch=1", "threads=2,batch=1"} <= set(json.load(open(model_file + ".plan.json"))["plans"])


def test_stale_cache_is_ignored(model_file, monkeypatch):
    pyconv.load(model_file, autotune=True)
    save_graph(residual_block(seed=1), model_file)  # another model at the same path
    with pytest.warns(RuntimeWarning, match="written for another model file"):
        model = pyconv.load(model_file, autotune=True)
    x, s = block_inputs(2)
    np.testing.assert_allclose(model(x, s)[0], pyconv.load(model_file)(x, s)[0], rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(autotune, "_cpu_identity", lambda: "another machine")
    with pytest.warns(RuntimeWarning, match="written for another CPU"):
        pyconv.load(model_file, autotune=True)
    assert json.load(open(model_file + ".plan.json"))["cpu"] == "another machine"  # replaced


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read it"),
    ('{"format": "pyconv-plan", "version": 99}', "not a pyconv plan cache of this version"),
    ("[1, 2]", "not a pyconv plan cache"),
])
def test_corrupt_cache_is_ignored(model_file, content, message):
    with open(model_file + ".plan.json", "w") as file:
        file.write(content)
    with pytest.warns(RuntimeWarning, match=message):
        model = pyconv.load(model_file, autotune=True)
    assert len(_algorithms(model, 1)) == 2
    assert json.load(open(model_file + ".plan.json"))["format"] == "pyconv-plan"


def test_cached_algorithm_that_cannot_compute_the_conv_is_ignored(model_file):
    pyconv.load(model_file, autotune=True)
    path = model_file + ".plan.json"
    cached = json.load(open(path))
    for choices in cached["plans"].values():
        for signature in choices:
            choices[signature] = "depthwise"  # the block's convs are dense
    json.dump(cached, open(path, "w"))
    with pytest.warns(RuntimeWarning, match="ignoring the cached algorithm 'depthwise'"):
        model = pyconv.load(model_file, autotune=True)
    assert "depthwise" not in _algorithms(model, 1)
    cached["plans"] = {"threads=1,batch=1": ["not", "a", "dict"]}
    json.dump(cached, open(path, "w"))
    with pytest.warns(RuntimeWarning, match="plans are malformed"):
        pyconv.load(model_file, autotune=True)


def test_unwritable_directory_skips_caching(model_file, monkeypatch):
    def refuse(*args):
        raise PermissionError("read-only directory")
    monkeypatch.setattr(os, "replace", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = pyconv.load(model_file, autotune=True)
        model(*block_inputs(2))
    assert not [name for name in os.listdir(os.path.dirname(model_file)) if name != "block.pyconv"]


def test_non_finite_weights_are_not_tuned(tmp_path):
    graph = residual_block()
    graph.constants["conv.weight"][0, 0, 0, 0] = np.nan
    model = Model(graph, autotune=True)
    assert _algorithms(model, 1)[1] == "direct"  # what 'auto' runs: NaN meets the padding as in torch
    x, s = block_inputs(1)
    np.testing.assert_array_equal(np.isnan(model(x, s)[1]), np.isnan(Model(graph)(x, s)[1]))
    with pytest.raises(TypeError, match="autotune to be True or False"):
        Model(graph, autotune="yes")
