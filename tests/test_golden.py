"""pyconv against torch outputs stored in tests/data/golden.npz — runs without torch.

The file is written by tests/make_golden.py.
"""
import json
import os

import numpy as np
import pytest

import pyconv.functional as F
from tolerances import assert_close

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "golden.npz"))
SPECS = json.loads(str(GOLDEN["specs"]))


@pytest.mark.parametrize("key", sorted(SPECS))
def test_matches_torch_output(key):
    spec = SPECS[key]
    args = [GOLDEN[f"{key}.arg{i}"] for i in range(spec["nargs"])]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["kwargs"].items()}
    assert_close(getattr(F, spec["op"])(*args, **kwargs), GOLDEN[f"{key}.output"])


def test_golden_file_covers_the_core_ops():
    ops = {spec["op"] for spec in SPECS.values()}
    assert {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "batch_norm", "linear"} <= ops
