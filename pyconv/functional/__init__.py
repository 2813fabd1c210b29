"""numpy mirror of ``torch.nn.functional``: same names, arguments, defaults and results.

Each op validates its arguments, computes the output shape, allocates the
output and calls a compiled kernel from ``pyconv._kernels``.
"""
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_transpose import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .prepack import *  # noqa: F401,F403
from .resample import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .shapes import *  # noqa: F401,F403
