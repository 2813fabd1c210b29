"""The accuracy policy of DESIGN.md in one place.

Against torch: float32 ``rtol=1e-4, atol=1e-5``; float64 ``rtol=1e-10``.
"""
import numpy as np

TORCH_TOLERANCE = {
    np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
}


def assert_close(actual, expected, **override):
    """Shape, dtype and values of ``actual`` match ``expected`` (a numpy array) within the policy."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"expected a numpy array, got {type(actual).__name__}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    tolerance = dict(TORCH_TOLERANCE[expected.dtype], **override)
    np.testing.assert_allclose(actual, expected, **tolerance)
