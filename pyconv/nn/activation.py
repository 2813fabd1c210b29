"""Activation layers as in torch.nn, over the pyconv.functional activations."""
import warnings

import numpy as np

from .. import functional as F
from ._utils import factory_dtype, positive_int
from .module import Module
from .parameter import Parameter

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "Hardtanh", "Sigmoid", "Tanh",
    "Hardswish", "Hardsigmoid", "SiLU", "Mish", "GELU", "Softplus", "Softmax", "LogSoftmax",
]


def _inplace_repr(module, leading_comma):
    if not module.inplace:
        return ""
    return ", inplace=True" if leading_comma else "inplace=True"


class _Inplace(Module):
    """An activation whose only argument is ``inplace``; subclasses name the functional op."""

    _op = None
    _repr_inplace = True  # whether torch's repr shows inplace=True

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return self._op(input, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_repr(self, False) if self._repr_inplace else ""


class ReLU(_Inplace):
    """max(0, x), as torch.nn.ReLU."""
    _op = staticmethod(F.relu)


class SELU(_Inplace):
    """scale * elu(x, alpha) with the SELU constants, as torch.nn.SELU."""
    _op = staticmethod(F.selu)


class SiLU(_Inplace):
    """x * sigmoid(x), as torch.nn.SiLU."""
    _op = staticmethod(F.silu)


class Mish(_Inplace):
    """x * tanh(softplus(x)), as torch.nn.Mish."""
    _op = staticmethod(F.mish)


class Hardswish(_Inplace):
    """x * relu6(x + 3) / 6, as torch.nn.Hardswish."""
    _op = staticmethod(F.hardswish)
    _repr_inplace = False


class Hardsigmoid(_Inplace):
    """relu6(x + 3) / 6, as torch.nn.Hardsigmoid."""
    _op = staticmethod(F.hardsigmoid)
    _repr_inplace = False


class Hardtanh(Module):
    """x clipped to [min_val, max_val], as torch.nn.Hardtanh (min_value/max_value: deprecated names)."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning,
                          stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning,
                          stacklevel=2)
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise ValueError(f"{type(self).__name__}: max_val ({self.max_val}) must be greater than min_val "
                             f"({self.min_val})")

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_repr(self, True)}"


class ReLU6(Hardtanh):
    """min(max(0, x), 6), as torch.nn.ReLU6."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input):
        return F.relu6(input, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self, False)


class LeakyReLU(Module):
    """x if x >= 0 else negative_slope * x, as torch.nn.LeakyReLU."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}{_inplace_repr(self, True)}"


class _Alpha(Module):
    _op = None

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return self._op(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_repr(self, True)}"


class ELU(_Alpha):
    """x if x > 0 else alpha * (exp(x) - 1), as torch.nn.ELU."""
    _op = staticmethod(F.elu)


class CELU(_Alpha):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), as torch.nn.CELU."""
    _op = staticmethod(F.celu)


class RReLU(Module):
    """Randomized leaky ReLU, as torch.nn.RReLU. Inference uses the fixed slope (lower + upper) / 2;
    training mode (random slopes) is refused: call ``eval()``."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input):
        if self.training:
            raise RuntimeError(
                "RReLU in training mode draws a random negative slope per element; pyconv runs inference only "
                "(slope (lower + upper) / 2): call .eval() on the model first")
        return F.rrelu(input, self.lower, self.upper, False, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}{_inplace_repr(self, True)}"


class PReLU(Module):
    """x if x >= 0 else weight * x with a learned slope per channel (or one shared), as torch.nn.PReLU."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        dtype = factory_dtype("PReLU", device, dtype)
        self.num_parameters = positive_int(num_parameters, "num_parameters", "PReLU")
        super().__init__()
        self.init = init
        self.weight = Parameter(np.empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        """Every slope = ``init``."""
        self.weight[...] = self.init
        self._reset_prepared()

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), as torch.nn.Sigmoid."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x), as torch.nn.Tanh."""

    def forward(self, input):
        return F.tanh(input)


class GELU(Module):
    """x * Phi(x) (approximate='none') or its tanh approximation ('tanh'), as torch.nn.GELU."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta (x where beta * x > threshold), as torch.nn.Softplus."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class _SoftmaxNd(Module):
    _op = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        # stack level 5: the implicit-dim warning points at the caller of the module
        return self._op(input, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxNd):
    """softmax along ``dim``, as torch.nn.Softmax."""
    _op = staticmethod(F.softmax)


class LogSoftmax(_SoftmaxNd):
    """log_softmax along ``dim``, as torch.nn.LogSoftmax."""
    _op = staticmethod(F.log_softmax)
