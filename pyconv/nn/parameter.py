"""``Parameter``: a numpy array that a Module registers as a parameter, as torch.nn.Parameter."""
import numpy as np

__all__ = ["Parameter"]


class Parameter(np.ndarray):
    """A numpy array marked as a module parameter.

    Assigning one to a Module attribute registers it (it then appears in
    ``parameters()`` and ``state_dict()``), exactly as torch.nn.Parameter does.
    ``Parameter(data)`` shares memory with ``data`` where it can (like torch).
    Arithmetic on a Parameter returns plain numpy arrays; views (slices,
    reshapes) stay Parameters. ``requires_grad`` is accepted for torch
    compatibility and ignored: pyconv only runs inference.
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        return np.asarray(data).view(cls)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        """Results of ufuncs on a Parameter (w * 2, w.sum()) are plain arrays, not parameters."""
        array = array.view(np.ndarray)
        return array[()] if return_scalar else array

    def __repr__(self):
        return "Parameter containing:\n" + repr(self.view(np.ndarray))

    def __reduce_ex__(self, protocol):
        return Parameter, (self.view(np.ndarray),)
