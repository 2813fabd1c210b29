"""``pyconv.nn.functional`` is ``pyconv.functional``, so ``import pyconv.nn.functional as F`` works as in torch."""
import sys

from .. import functional as _functional

sys.modules[__name__] = _functional
