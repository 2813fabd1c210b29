"""The ops of the graph IR, one module per family, each an ``Op`` in ``OPS``.

An op declares its inputs (``"weight:const"`` must be a constant,
``"bias?"`` is optional, ``"inputs*"`` takes one or more), its attributes
(name -> ``Attr``; every node gives all of them), how to infer output shapes
(``infer``) and how to run (``kernel``: built once per node, then called as
``kernel(inputs, outs)``).  With ``writes_out`` the kernel fills the
preallocated C-contiguous ``outs``; otherwise ``outs`` is None and it
returns new arrays.  With ``view`` output 0 is a view of input 0.
"""
from ._base import Attr, OpError, Op, OPS
from . import conv, elementwise, norm, pool, reduce, shape  # noqa: F401  (register the ops)

__all__ = ["Attr", "Op", "OpError", "OPS"]
