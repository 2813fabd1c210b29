"""Whole CNNs written once (tests/models, ``build(nn, F, T)``) and run by torch and by pyconv.nn:
same state-dict keys, same repr, same outputs (max|dy| <= 1e-4 max|y|), weights from torch."""
import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn
import pyconv.nn.functional as F
from models import MODELS
from torch_free import REFUSE_TORCH

torch = pytest.importorskip("torch")
from full_models import build_seeded_torch  # noqa: E402  (needs torch)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def build_torch(name, seed=0):
    """The small torch model, seeded, with random batch-norm statistics and affine parameters, in eval mode."""
    return build_seeded_torch(name, seed)


def build_pyconv(name):
    module = importlib.import_module(f"models.{name}")
    np.random.seed(0)
    return module.build(nn, F, pyconv).eval()


def model_input(name, seed=1):
    shape = importlib.import_module(f"models.{name}").INPUT_SHAPE
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_model_output_close(actual, expected):
    """The issue's whole-model bound: max|actual - expected| <= 1e-4 * max|expected|."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    assert np.isfinite(expected).all() and np.abs(expected).max() > 0
    error = np.abs(actual.astype(np.float64) - expected).max()
    assert error <= 1e-4 * np.abs(expected).max(), f"max|dy| = {error:.3g}, max|y| = {np.abs(expected).max():.3g}"


@pytest.fixture(scope="module", params=MODELS)
def models(request):
    """(name, torch model, pyconv model loaded from torch's state dict)."""
    name = request.param
    theirs = build_torch(name)
    ours = build_pyconv(name)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return name, theirs, ours


def test_state_dict_keys_and_shapes_equal_torch(models):
    _, theirs, ours = models
    torch_sd, sd = theirs.state_dict(), ours.state_dict()
    assert list(sd) == list(torch_sd)
    assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in torch_sd.values()]


def test_repr_equals_torch(models):
    _, theirs, ours = models
    assert repr(ours) == repr(theirs)


def test_output_equals_torch(models):
    name, theirs, ours = models
    x = model_input(name)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x.copy())).numpy()
    assert_model_output_close(ours(x), expected)


def test_models_refuse_training_mode():
    model = build_pyconv("resnet").train()
    with pytest.raises(RuntimeError, match=r"\.eval\(\)"):
        model(model_input("resnet"))


# ---------------------------------------------------------------- checkpoint file, torch-free process

# Runs in a fresh interpreter in which importing torch fails: builds every model with pyconv.nn, loads
# the torch.save'd state dict through pyconv.load_state_dict and saves the output; then writes the
# model's state dict as .safetensors, loads that into a fresh model and checks the output is the same.
_TORCH_FREE_SCRIPT = REFUSE_TORCH + textwrap.dedent("""
    import importlib
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import pyconv
    import pyconv.nn as nn
    import pyconv.nn.functional as F

    folder = sys.argv[2]
    for name in sys.argv[3:]:
        build = importlib.import_module("models." + name).build
        x = np.load(f"{folder}/{name}.in.npy")
        model = build(nn, F, pyconv).eval()
        model.load_state_dict(pyconv.load_state_dict(f"{folder}/{name}.pth"))
        y = model(x)
        np.save(f"{folder}/{name}.out.npy", y)
        pyconv.save_state_dict(model.state_dict(), f"{folder}/{name}.safetensors")
        again = build(nn, F, pyconv).eval()
        again.load_state_dict(pyconv.load_state_dict(f"{folder}/{name}.safetensors"))
        assert np.array_equal(again(x), y), name + ": output differs after the .safetensors round trip"
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
""")


def test_checkpoints_saved_by_torch_load_without_torch(tmp_path):
    """torch.save(model.state_dict()) for every model, then load and run in a process without torch
    (and round-trip the weights through pyconv.save_state_dict's .safetensors there)."""
    expected = {}
    for name in MODELS:
        model = build_torch(name)
        x = model_input(name)
        torch.save(model.state_dict(), tmp_path / f"{name}.pth")
        np.save(tmp_path / f"{name}.in.npy", x)
        with torch.no_grad():
            expected[name] = model(torch.from_numpy(x.copy())).numpy()
    script = tmp_path / "run_without_torch.py"
    script.write_text(_TORCH_FREE_SCRIPT)
    subprocess.run([sys.executable, str(script), TESTS_DIR, str(tmp_path), *MODELS], cwd=tmp_path, check=True,
                   timeout=300)
    for name in MODELS:
        assert_model_output_close(np.load(tmp_path / f"{name}.out.npy"), expected[name])
