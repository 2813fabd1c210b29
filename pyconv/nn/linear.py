"""Identity and Linear, as in torch.nn."""

import numpy as np

from .. import functional as F
from . import init
from ._utils import factory_dtype, positive_int
from .module import Module
from .parameter import Parameter

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input; any constructor arguments are ignored, as torch.nn.Identity."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x @ weight.T + bias over the last dim of (*, in_features) input, as torch.nn.Linear."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        dtype = factory_dtype("Linear", device, dtype)
        self.in_features = positive_int(in_features, "in_features", "Linear", 0)
        self.out_features = positive_int(out_features, "out_features", "Linear", 0)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's initialisation: kaiming-uniform weight (a = sqrt(5)), U(+-1/sqrt(fan_in)) bias."""
        init.reset_weight_and_bias(self.weight, self.bias)
        self._reset_prepared()

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
