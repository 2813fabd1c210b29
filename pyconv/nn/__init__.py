"""Modules mirroring torch.nn, loading torch state dicts as they are.

Port a torch CNN by replacing ``import torch.nn as nn`` with ``from pyconv import nn``
(and ``torch.nn.functional`` with ``pyconv.nn.functional``): the same classes,
constructor arguments, parameter names and state-dict keys, on numpy arrays.
"""
from . import functional, init
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation_all
from .container import *  # noqa: F401,F403
from .container import __all__ as _container_all
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout_all
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear_all
from .module import Module
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization_all
from .padding import *  # noqa: F401,F403
from .padding import __all__ as _padding_all
from .parameter import Parameter
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling_all
from .shape import *  # noqa: F401,F403
from .shape import __all__ as _shape_all

__all__ = (["Module", "Parameter", "functional", "init"] + _container_all + _conv_all + _pooling_all + _linear_all
           + _normalization_all + _dropout_all + _activation_all + _shape_all + _padding_all)
