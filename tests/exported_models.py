"""The ten models of tests/models built in torch (as test_nn_models builds them) and exported once per
test process with ``pyconv.export`` at batch 1, for the export tests."""
import functools
import importlib
import tempfile

import numpy as np
import torch

import pyconv
from test_nn_models import build_torch

_FOLDER = tempfile.TemporaryDirectory(prefix="pyconv-exported-")  # removed when the process ends


def model_input(name, batch, seed=1):
    shape = (batch,) + importlib.import_module(f"models.{name}").INPUT_SHAPE[1:]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@functools.lru_cache(maxsize=None)
def exported(name):
    """(the torch model, the path of its .pyconv file)."""
    model = build_torch(name)
    path = f"{_FOLDER.name}/{name}.pyconv"
    pyconv.export(model, torch.from_numpy(model_input(name, 1, seed=0)), path)
    return model, path


def torch_output(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x.copy())).numpy()
