"""Padding layers as in torch.nn: zero, constant, reflection, replication and circular, 1d/2d/3d."""
import numpy as np

from .. import functional as F
from ._utils import _ntuple, _pair, _quadruple
from .module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
]

_EXPAND = {1: _pair, 2: _quadruple, 3: _ntuple(6)}


class _PadNd(Module):
    """``padding``: an int for every side, or (left, right[, top, bottom[, front, back]])."""

    _dims = 0
    _mode = None

    def __init__(self, padding):
        super().__init__()
        self.padding = _EXPAND[self._dims](padding)

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``, as torch.nn.ConstantPad1d."""
    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with ``value``, as torch.nn.ConstantPad2d."""
    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with ``value``, as torch.nn.ConstantPad3d."""
    _dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros, as torch.nn.ZeroPad1d."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last 2 dims with zeros, as torch.nn.ZeroPad2d."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last 3 dims with zeros, as torch.nn.ZeroPad3d."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad the last dim by reflection, as torch.nn.ReflectionPad1d."""
    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Pad the last 2 dims by reflection, as torch.nn.ReflectionPad2d."""
    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Pad the last 3 dims by reflection, as torch.nn.ReflectionPad3d."""
    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating the edge, as torch.nn.ReplicationPad1d."""
    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Pad the last 2 dims by repeating the edge, as torch.nn.ReplicationPad2d."""
    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Pad the last 3 dims by repeating the edge, as torch.nn.ReplicationPad3d."""
    _dims, _mode = 3, "replicate"


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def forward(self, input):
        ndim = np.ndim(input)
        if ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expected {self._dims + 1}D or {self._dims + 2}D input "
                             f"(got {ndim}D input)")
        return F.pad(input, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    """Pad the last dim circularly (wrapping around), as torch.nn.CircularPad1d."""
    _dims = 1


class CircularPad2d(_CircularPadNd):
    """Pad the last 2 dims circularly (wrapping around), as torch.nn.CircularPad2d."""
    _dims = 2


class CircularPad3d(_CircularPadNd):
    """Pad the last 3 dims circularly (wrapping around), as torch.nn.CircularPad3d."""
    _dims = 3
