"""``Model.summary`` totals of the exported model suite against torch: MACs equal ptflops' count (its pytorch
backend counting module calls, the convention documented in pyconv/graph/summary.py) and parameters equal
``sum(p.numel())``."""
import io

import pytest

torch = pytest.importorskip("torch")
ptflops = pytest.importorskip("ptflops")

import pyconv  # noqa: E402
from exported_models import exported, model_input  # noqa: E402
from models import MODELS  # noqa: E402
from test_nn_models import build_torch  # noqa: E402


@pytest.mark.parametrize("name", MODELS)
def test_summary_totals_equal_ptflops_and_torch(name):
    path = exported(name)[1]
    model = build_torch(name)  # a fresh copy: ptflops adds attributes to the module it counts
    macs, params = ptflops.get_model_complexity_info(
        model, model_input(name, 1).shape[1:], as_strings=False, print_per_layer_stat=False, ost=io.StringIO(),
        backend="pytorch", backend_specific_config={"count_functional": False})
    loaded = pyconv.load(path)
    summary = loaded.summary()
    assert summary.totals["MACs"] == macs
    assert summary.totals["params"] == params == sum(p.numel() for p in model.parameters())
    assert sum(row["MACs"] for row in summary.rows) == macs
    assert loaded.summary(batch=3).totals["MACs"] == 3 * macs
