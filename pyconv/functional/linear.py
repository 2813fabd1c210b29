"""``linear`` as in ``torch.nn.functional``: y = x @ weight.T + bias, through numpy's BLAS matmul."""
import math

import numpy as np

from ._checks import as_float_array, check_same_dtype

__all__ = ["linear"]


def linear(input, weight, bias=None):
    """input (*, in_features) @ weight.T + bias with weight (out_features, in_features) -> (*, out_features).

    Like torch, a 1-D weight (in_features,) gives output (*) (and takes no bias); bias is
    (out_features,), a single element, or None.
    """
    x = as_float_array(input, "input", "linear")
    w = as_float_array(weight, "weight", "linear")
    b = None if bias is None else as_float_array(bias, "bias", "linear")
    check_same_dtype("linear", "input", x, weight=w, bias=b)
    if x.ndim == 0:
        raise ValueError("linear: expected input to be at least 1-D (*, in_features), got 0D")
    if w.ndim not in (1, 2):
        raise ValueError(
            f"linear: expected weight to be 2D (out_features, in_features) or 1D (in_features,), "
            f"got {w.ndim}D with shape {w.shape}"
        )
    in_features = w.shape[-1]
    if x.shape[-1] != in_features:
        raise ValueError(
            f"linear: expected input with {in_features} features in its last dimension (weight.shape[-1]), "
            f"got {x.shape[-1]} (input shape {x.shape})"
        )
    rows = x.reshape(math.prod(x.shape[:-1]), in_features)
    if w.ndim == 1:
        if b is not None:
            raise ValueError(f"linear: a bias needs a 2D weight (out_features, in_features), got weight shape {w.shape}")
        return np.matmul(rows, w).reshape(x.shape[:-1])
    out_features = w.shape[0]
    if b is not None and not (b.ndim <= 1 and b.size in (1, out_features)):
        raise ValueError(
            f"linear: expected bias of shape ({out_features},) (out_features) or a single element, got shape {b.shape}"
        )
    out = np.matmul(rows, w.T)
    if b is not None:
        with np.errstate(invalid="ignore"):  # Inf + -Inf: NaN, silently as in torch
            out += b.reshape(-1)
    return out.reshape(x.shape[:-1] + (out_features,))
