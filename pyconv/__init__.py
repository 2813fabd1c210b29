"""pyconv: CPU inference for convolutional networks, exact to PyTorch, without PyTorch."""
from . import functional
from ._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["functional", "get_num_threads", "set_num_threads", "__version__"]
