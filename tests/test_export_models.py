"""The ten models of tests/models exported with pyconv.export and run from the .pyconv file: outputs equal
torch's (max|dy| <= 1e-4 max|y|, same top-1) at batch 1 and 8, also in a process where torch cannot be
imported; every graph pass keeps the outputs; intermediate values by module path equal torch's."""
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyconv  # noqa: E402
from pyconv.graph import Model, load_graph, passes  # noqa: E402
from exported_models import exported, model_input, torch_output  # noqa: E402
from models import MODELS  # noqa: E402
from test_nn_models import assert_model_output_close  # noqa: E402
from torch_free import REFUSE_TORCH  # noqa: E402


def _assert_matches_torch(actual, expected):
    assert_model_output_close(actual, expected)
    if expected.ndim == 2:  # classifiers: the same top-1 class
        np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("name", MODELS)
def test_exported_model_equals_torch(name):
    model, path = exported(name)
    loaded = pyconv.load(path, debug=True)
    assert "torch" not in type(loaded).__module__
    for batch in (1, 8):
        x = model_input(name, batch)
        _assert_matches_torch(loaded(x), torch_output(model, x))


@pytest.mark.parametrize("name", MODELS)
def test_every_pass_keeps_outputs(name):
    graph = load_graph(exported(name)[1])
    x = model_input(name, 2)
    expected = Model(graph, passes=())(x)
    for graph_pass in passes.DEFAULT_PASSES:
        np.testing.assert_allclose(Model(graph, passes=(graph_pass,), debug=True)(x), expected,
                                   rtol=1e-5, atol=1e-5 * np.abs(expected).max(), err_msg=graph_pass.__name__)


@pytest.mark.parametrize("name", MODELS)
def test_summary_counts_torch_parameters(name):
    model, path = exported(name)
    summary = pyconv.load(path).summary()
    assert summary.totals["params"] == sum(p.numel() for p in model.parameters())
    assert summary.totals["MACs"] > 0 and summary.totals["peak activation bytes"] > 0


@pytest.mark.parametrize("name, paths", [
    ("resnet", ["conv1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer2", "layer3.1", "avgpool", "fc"]),
    ("mobilenetv2", ["features.0", "features.2.conv.1", "features.3", "classifier.1"]),
    ("unet", ["inc", "down2.maxpool_conv.0", "up1", "up3.up.0", "outc"]),
])
def test_intermediate_values_by_module_path_equal_torch(name, paths):
    model, path = exported(name)
    x = model_input(name, 2)
    captured = {}
    modules = dict(model.named_modules())
    handles = [modules[p].register_forward_hook(
        lambda module, args, output, p=p: captured.__setitem__(p, output.detach().numpy().copy())) for p in paths]
    try:
        torch_output(model, x)
    finally:
        for handle in handles:
            handle.remove()
    values = pyconv.load(path)(x, outputs=paths)
    for p in paths:
        assert_model_output_close(values[p], captured[p])


def test_concurrent_calls_equal_serial_calls():
    loaded = pyconv.load(exported("resnet")[1])
    inputs = [model_input("resnet", batch, seed) for seed, batch in enumerate((1, 3, 8, 2))]
    serial = [loaded(x) for x in inputs]
    results = []

    def work(worker):
        for index in range(len(inputs)):
            j = (index + worker) % len(inputs)
            results.append((j, loaded(inputs[j])))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 * len(inputs)
    for j, y in results:
        np.testing.assert_array_equal(y, serial[j])


# Runs in a fresh interpreter in which importing torch fails: loads each .pyconv file, runs it on the saved
# inputs at batch 1 and 8 and saves the outputs; checks torch was never imported.
_TORCH_FREE_SCRIPT = REFUSE_TORCH + textwrap.dedent("""
    import numpy as np
    import pyconv

    for path in sys.argv[1:]:
        model = pyconv.load(path + ".pyconv")
        for batch in (1, 8):
            np.save(f"{path}.out{batch}.npy", model(np.load(f"{path}.in{batch}.npy")))
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
""")


def test_exported_models_run_without_torch(tmp_path):
    prefixes = []
    for name in MODELS:
        model, path = exported(name)
        prefix = tmp_path / name
        prefix.with_suffix(".pyconv").write_bytes(open(path, "rb").read())
        for batch in (1, 8):
            np.save(f"{prefix}.in{batch}.npy", model_input(name, batch, seed=batch))
        prefixes.append(str(prefix))
    script = tmp_path / "run_without_torch.py"
    script.write_text(_TORCH_FREE_SCRIPT)
    subprocess.run([sys.executable, str(script), *prefixes], cwd=tmp_path, check=True, timeout=300)
    for name, prefix in zip(MODELS, prefixes):
        model = exported(name)[0]
        for batch in (1, 8):
            expected = torch_output(model, np.load(f"{prefix}.in{batch}.npy"))
            _assert_matches_torch(np.load(f"{prefix}.out{batch}.npy"), expected)
