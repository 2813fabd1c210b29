"""The pyconv command: run, summary, bench and export, and clear one-line errors (exit status 2)."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from pyconv.cli import feature_grid, main
from pyconv.graph import Model, save_graph
from graphs import block_inputs, residual_block


@pytest.fixture
def files(tmp_path):
    save_graph(residual_block(), tmp_path / "block.pyconv")
    x, s = block_inputs(2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "s.npy", s)
    return tmp_path


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_run_prints_top_classes_and_saves_output(files, capsys):
    status, out, _ = _run(capsys, "run", files / "block.pyconv", "--input", files / "x.npy", "--input",
                          files / "s.npy", "--top", "2", "-o", files / "y.npy")
    assert status == 0
    assert "logits: (2, 5)" in out and "out: (2, 4, 8, 8)" in out
    assert out.count("sample ") == 2 and out.count("class ") == 4
    expected = Model(residual_block())(*block_inputs(2))[0]
    np.testing.assert_array_equal(np.load(files / "y.npy"), expected)


def test_run_intermediate_values(files, capsys):
    status, out, _ = _run(capsys, "run", files / "block.pyconv", "--input", files / "x.npy", "--input",
                          files / "s.npy", "--outputs", "stem", "block", "-o", files / "values.npz")
    assert status == 0 and "stem: (2, 4, 8, 8)" in out
    assert sorted(np.load(files / "values.npz").files) == ["block", "stem"]


def test_summary_and_bench(files, capsys):
    status, out, _ = _run(capsys, "summary", files / "block.pyconv", "--batch", "4")
    assert status == 0 and "conv2d+batch_norm+relu" in out and "params: 297" in out
    status, out, err = _run(capsys, "bench", files / "block.pyconv", "--batch", "1,2", "--threads", "1",
                            "--repeat", "2")
    assert status == 0 and "images/s" in out and len(out.strip().splitlines()) == 4 and "2/2" in err


@pytest.mark.parametrize("argv, message", [
    (["run", "missing.pyconv", "--input", "x.npy"], "no such file: missing.pyconv"),
    (["run", "block.pyconv", "--input", "x.txt", "--input", "s.npy"], "expected an input array (.npy) or an image"),
    (["run", "block.pyconv", "--input", "x.npy"], "the model takes 2 input(s) (x, s), got 1 --input"),
    (["run", "block.pyconv", "--input", "x.npy", "--input", "s.png"],
     "input 's' of shape (N, 4, 8, 8) does not take an image"),
    (["featuremaps", "block.pyconv", "x.npy", "--layer", "stem", "-o", "m.png"], "models with one input"),
    (["run", "block.pyconv", "--input", "x.npy", "--input", "x.npy"], "input 's' of shape"),
    (["run", "block.pyconv", "--input", "x.npy", "--input", "s.npy", "--outputs", "nowhere"], "'nowhere' is neither"),
    (["summary", "x.npy"], "not a valid .pyconv file"),
    (["export", "no_colon", "--input-shape", "1,3,8,8", "-o", "m.pyconv"], "expected MODULE:FACTORY"),
    (["bench", "block.pyconv", "--compare", "torch"], "--compare needs --factory MODULE:FACTORY"),
    (["bench", "block.pyconv", "--factory", "m:f"], "--factory is used with --compare only"),
    (["bench", "block.pyconv", "--compare", "torch", "--factory", "nocolon"], "--factory: expected MODULE:FACTORY"),
    (["bench", "block.pyconv", "--chart", "chart.jpg"], "--chart: expected a .png file name"),
    (["bench", "missing.pyconv"], "no such file: missing.pyconv"),
])
def test_errors_are_one_line(files, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(files)
    status, out, err = _run(capsys, *argv)
    assert status == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "expected positive integers"),
    (["--repeat", "0"], "expected positive integers"),
    (["--repeat", "2,3"], "expected one positive integer"),
    (["--compare", "tensorflow"], "expected engines from torch, onnxruntime, got 'tensorflow'"),
])
def test_bad_arguments_exit_with_usage(files, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", str(files / "block.pyconv"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_bench_chart_without_matplotlib_fails_clearly(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, _, err = _run(capsys, "bench", files / "block.pyconv", "--chart", files / "chart.png")
    assert status == 2 and "--chart needs matplotlib (pip install 'pyconv[plot]')" in err
    assert err.count("\n") == 1 and not (files / "chart.png").exists()


def test_bench_chart_and_autotune(files, capsys):
    pytest.importorskip("matplotlib")
    status, out, _ = _run(capsys, "bench", files / "block.pyconv", "--batch", "1,2", "--threads", "1", "--repeat",
                          "2", "--autotune", "--chart", files / "chart.png")
    assert status == 0 and f"wrote {files / 'chart.png'}" in out
    assert (files / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (files / "block.pyconv.plan.json").exists()


# pyconv bench --compare: torch and ONNX Runtime run in child processes, pyconv's process never imports torch.
_COMPARE_SCRIPT = """
import sys

if __name__ == "__main__":  # not in the spawned children, which import this file as __mp_main__
    sys.path.insert(0, ".")
    from pyconv.cli import main
    status = main(sys.argv[1:])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
    sys.exit(status)
"""


def test_bench_compare_runs_torch_in_child_processes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "tiny_models.py").write_text(
        "import torch\n\ndef tiny():\n    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), "
        "torch.nn.Linear(144, 5))\n\ndef other():\n    return torch.nn.Conv2d(3, 4, 3)\n")
    (tmp_path / "compare.py").write_text(_COMPARE_SCRIPT)
    assert main(["export", "tiny_models:tiny", "--input-shape", "1,3,8,8", "-o", "tiny.pyconv"]) == 0
    engines = "torch,onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch"

    def bench(*argv):
        return subprocess.run([sys.executable, "compare.py", "bench", "tiny.pyconv", "--batch", "1,2", "--threads",
                               "1", "--repeat", "2", *argv], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    result = bench("--compare", engines, "--factory", "tiny_models:tiny")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and "torch/pyconv" in lines[0] and ("ORT/pyconv" in lines[0]) == ("onnx" in engines)
    runs = 2 * (2 + engines.count(","))
    assert f"{runs}/{runs}" in result.stderr  # the progress bar counted every run
    result = bench("--compare", "torch", "--factory", "tiny_models:other")
    assert result.returncode == 2 and "builds a model with 112 parameters, tiny.pyconv has 837" in result.stderr
    assert "Traceback" not in result.stderr


def test_module_entry_point_has_no_traceback(files):
    (files / "broken.pyconv").write_bytes(b"\x00" * 64)
    result = subprocess.run([sys.executable, "-m", "pyconv", "summary", "broken.pyconv"], cwd=files,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "broken.pyconv" in result.stderr


def test_export_command(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "tiny_models.py").write_text(
        "import torch\n\ndef tiny():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    status, out, err = _run(capsys, "export", "tiny_models:tiny", "--input-shape", "1,3,8,8", "-o", "tiny.pyconv")
    assert status == 0 and "wrote tiny.pyconv" in out, err
    assert main(["run", "tiny.pyconv", "--input", str(_saved(tmp_path))]) == 0
    status, _, err = _run(capsys, "export", "tiny_models:nothing", "--input-shape", "1,3,8,8", "-o", "t.pyconv")
    assert status == 2 and "cannot find 'tiny_models:nothing'" in err


def _saved(folder):
    np.save(folder / "tiny_in.npy", np.ones((3, 3, 8, 8), np.float32))
    return folder / "tiny_in.npy"


def test_feature_grid_layout():
    maps = np.stack([np.full((3, 4), c, np.float32) for c in range(5)])
    maps[1, 0, 0] = 10.0
    grid = feature_grid(maps, min_side=8)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 6 + 2, 3 * 8 + 4)   # 2 rows x 3 columns, zoom 2
    assert grid[0, 0] == 0 and grid[:2, 10:12].tolist() == [[255, 255], [255, 255]]  # channel 1: its max at (0, 0)
    assert grid[6:8].min() == grid[6:8].max() == 128                            # the gap between rows


def test_featuremaps_and_image_inputs(tmp_path, capsys, monkeypatch):
    image_module = pytest.importorskip("PIL.Image")
    graph = residual_block()
    one_input = graph.replace(inputs=graph.inputs[:1], outputs=("relu",), nodes=graph.nodes[:3])
    save_graph(one_input, tmp_path / "stem.pyconv")
    pixels = (np.random.default_rng(0).random((11, 13, 3)) * 255).astype(np.uint8)
    image_module.fromarray(pixels).save(tmp_path / "img.png")
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(capsys, "featuremaps", "stem.pyconv", "img.png", "--layer", "stem", "-o", "maps.png")
    assert status == 0, err
    assert "4 channels of 'stem', each 8x8" in out
    with image_module.open(tmp_path / "maps.png") as drawn:
        assert drawn.size == (2 * 48 + 2, 2 * 48 + 2) and drawn.mode == "L"
    status, out, _ = _run(capsys, "run", "stem.pyconv", "--input", "img.png", "-o", "y.npy")
    expected = Model(one_input)(np.asarray(image_module.fromarray(pixels).resize((8, 8)), np.float32)
                                .transpose(2, 0, 1)[None] / 255)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)


def test_images_without_pillow_fail_clearly(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.chdir(files)
    (files / "img.png").write_bytes(b"not read")
    status, _, err = _run(capsys, "run", "block.pyconv", "--input", "img.png", "--input", "s.npy")
    assert status == 2 and "images need Pillow (pip install pillow)" in err
