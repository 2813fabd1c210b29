"""The ten suite models loaded with autotune=True in a process where importing torch fails: at batch 1 and 8
their outputs equal torch's (max|dy| <= 1e-4 max|y|, same top-1) and the untuned outputs, the tuned plans
are cached next to each file, and a second load reuses them without timing."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyconv  # noqa: E402
from exported_models import exported, model_input, torch_output  # noqa: E402
from models import MODELS  # noqa: E402
from test_nn_models import assert_model_output_close  # noqa: E402
from torch_free import REFUSE_TORCH  # noqa: E402

_TORCH_FREE_AUTOTUNE_SCRIPT = REFUSE_TORCH + textwrap.dedent("""
    import numpy as np
    import pyconv
    from pyconv.graph import autotune

    for path in sys.argv[1:]:
        model = pyconv.load(path + ".pyconv", autotune=True)
        for batch in (1, 8):
            np.save(f"{path}.out{batch}.npy", model(np.load(f"{path}.in{batch}.npy")))

    def no_timing(*args):
        raise AssertionError("timed although the plans were cached")

    autotune.run_algorithm = no_timing
    for path in sys.argv[1:]:
        model = pyconv.load(path + ".pyconv", autotune=True)
        for batch in (1, 8):
            np.testing.assert_array_equal(model(np.load(f"{path}.in{batch}.npy")), np.load(f"{path}.out{batch}.npy"))
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
""")


def test_tuned_models_equal_torch_and_untuned_without_torch(tmp_path):
    prefixes = []
    for name in MODELS:
        prefix = tmp_path / name
        prefix.with_suffix(".pyconv").write_bytes(open(exported(name)[1], "rb").read())
        for batch in (1, 8):
            np.save(f"{prefix}.in{batch}.npy", model_input(name, batch, seed=batch + 10))
        prefixes.append(str(prefix))
    script = tmp_path / "autotune_without_torch.py"
    script.write_text(_TORCH_FREE_AUTOTUNE_SCRIPT)
    subprocess.run([sys.executable, str(script), *prefixes], cwd=tmp_path, check=True, timeout=300)
    for name, prefix in zip(MODELS, prefixes):
        model, path = exported(name)
        untuned = pyconv.load(path)
        for batch in (1, 8):
            x = np.load(f"{prefix}.in{batch}.npy")
            tuned, expected = np.load(f"{prefix}.out{batch}.npy"), torch_output(model, x)
            assert_model_output_close(tuned, expected)
            assert_model_output_close(tuned, untuned(x))
            if expected.ndim == 2:
                np.testing.assert_array_equal(tuned.argmax(1), expected.argmax(1))
        plans = json.load(open(f"{prefix}.pyconv.plan.json"))["plans"]
        assert {key.split(",")[1] for key in plans} == {"batch=1", "batch=8"}, name
