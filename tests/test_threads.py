import os
# Subprocesses run in tmp_path so the source tree's pyconv/ cannot shadow the installed one.
import subprocess
import sys

import pytest

import pyconv


def test_default_is_at_least_one_thread():
    assert pyconv.get_num_threads() >= 1


def test_set_num_threads_round_trips(num_threads):
    num_threads(1)
    assert pyconv.get_num_threads() == 1
    num_threads(2)
    assert pyconv.get_num_threads() in (1, 2)  # 1 only where the build has no thread pool


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_set_num_threads_rejects(bad, error, num_threads):
    with pytest.raises(error, match="n"):
        pyconv.set_num_threads(bad)


@pytest.mark.parametrize("variable", ["PYCONV_NUM_THREADS", "OMP_NUM_THREADS"])
def test_environment_sets_default(variable, tmp_path):
    from pyconv._kernels.parallel import pool_available

    env = {k: v for k, v in os.environ.items() if k not in ("PYCONV_NUM_THREADS", "OMP_NUM_THREADS")}
    env[variable] = "3"
    out = subprocess.run([sys.executable, "-c", "import pyconv; print(pyconv.get_num_threads())"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("3" if pool_available() else "1")


def test_pyconv_variable_wins_over_omp(tmp_path):
    env = dict(os.environ, PYCONV_NUM_THREADS="1", OMP_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", "import pyconv; print(pyconv.get_num_threads())"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "1"


def test_import_does_not_import_torch(tmp_path):
    code = "import sys, pyconv, pyconv.functional; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
