"""Dropout layers as in torch.nn: the identity at inference.

In training mode with p > 0 torch zeroes random elements; pyconv runs
inference only and refuses that mode with a clear error (call ``eval()``).
"""
from .. import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    _op = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        if self.training and self.p > 0:
            raise RuntimeError(
                f"{type(self).__name__}(p={self.p}) in training mode zeroes random elements; pyconv runs inference "
                "only: call .eval() on the model first (model.eval(), as for inference in torch)")
        return self._op(input, self.p, False, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Element-wise dropout, as torch.nn.Dropout: the identity in eval mode."""
    _op = staticmethod(F.dropout)


class Dropout1d(_DropoutNd):
    """Channel-wise dropout of (N, C, L) input, as torch.nn.Dropout1d: the identity in eval mode."""
    _op = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Channel-wise dropout of (N, C, H, W) input, as torch.nn.Dropout2d: the identity in eval mode."""
    _op = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Channel-wise dropout of (N, C, D, H, W) input, as torch.nn.Dropout3d: the identity in eval mode."""
    _op = staticmethod(F.dropout3d)
