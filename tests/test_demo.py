"""``pyconv demo``: the shipped digit classifier runs in a process where torch cannot be imported and
classifies the shipped held-out digits with at least 95% accuracy; the model file is small."""
import os
import re
import subprocess
import sys
import textwrap

import pyconv.demo
from torch_free import REFUSE_TORCH

_SCRIPT = REFUSE_TORCH + textwrap.dedent("""
    from pyconv.cli import main
    status = main(["demo"])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
    sys.exit(status)
""")


def test_demo_runs_without_torch_and_is_accurate(tmp_path):
    result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"held-out digits: 400, accuracy ([0-9.]+)%", result.stdout).group(1))
    assert accuracy >= 95.0
    assert "ms per digit at batch 1" in result.stdout and "conv2d+batch_norm+relu" in result.stdout


def test_shipped_files_are_small():
    assert os.path.getsize(os.path.join(pyconv.demo.FOLDER, "digits.pyconv")) <= 200 * 1024
    images, labels = pyconv.demo.heldout_digits()
    assert images.shape == (400, 1, 8, 8) and labels.shape == (400,) and set(labels.tolist()) == set(range(10))
