"""pyconv: CPU inference for convolutional networks, exact to PyTorch, without PyTorch."""
from . import functional
from . import nn
from ._threads import get_num_threads, set_num_threads
from .tensor import (add, amax, cat, chunk, clamp, clip, concat, flatten, mean, mul, permute, relu, reshape,
                     sigmoid, split, stack, tanh, transpose)

__version__ = "0.1.0"

__all__ = ["functional", "nn", "get_num_threads", "set_num_threads", "__version__",
           # tensor functions with torch's signatures (pyconv.tensor)
           "add", "amax", "cat", "chunk", "clamp", "clip", "concat", "flatten", "mean", "mul", "permute", "relu",
           "reshape", "sigmoid", "split", "stack", "tanh", "transpose"]
