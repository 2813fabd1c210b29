import numpy as np
import pytest

import pyconv
import pyconv._threads


@pytest.fixture
def num_threads(monkeypatch):
    """Lets a test change pyconv's thread count (restored afterwards).

    While it is in use, even small kernels run on every thread, so that
    1-vs-N-thread tests really run the parallel path on small inputs.
    """
    before = pyconv.get_num_threads()
    monkeypatch.setattr(pyconv._threads, "PARALLEL_MIN_ELEMENTS", 0)
    yield pyconv.set_num_threads
    pyconv.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
