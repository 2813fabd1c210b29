import numpy as np
import pytest

import pyconv


@pytest.fixture
def num_threads():
    """Lets a test change pyconv's thread count; restores it afterwards."""
    before = pyconv.get_num_threads()
    yield pyconv.set_num_threads
    pyconv.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
