"""pyconv: CPU inference for convolutional networks, exact to PyTorch, without PyTorch."""
from . import functional
from . import nn
from ._threads import get_num_threads, set_num_threads
from .export import export, from_torch
from .graph import load
from .io import load_checkpoint, load_state_dict, save_state_dict
from .tensor import (add, amax, cat, chunk, clamp, clip, concat, flatten, mean, mul, permute, relu, reshape,
                     sigmoid, split, stack, tanh, transpose)

__version__ = "0.1.0"

__all__ = ["functional", "nn", "get_num_threads", "set_num_threads", "__version__",
           "load_checkpoint", "load_state_dict", "save_state_dict",
           # exported models: capture with torch, run without it (pyconv.export, pyconv.graph)
           "export", "from_torch", "load",
           # tensor functions with torch's signatures (pyconv.tensor)
           "add", "amax", "cat", "chunk", "clamp", "clip", "concat", "flatten", "mean", "mul", "permute", "relu",
           "reshape", "sigmoid", "split", "stack", "tanh", "transpose"]
