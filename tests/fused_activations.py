"""Activations the conv epilogue fuses, as (name, torch keyword arguments, pyconv.functional reference)."""
import pyconv.functional as F

FUSED_ACTIVATIONS = [
    ("relu", {}, F.relu),
    ("relu6", {}, F.relu6),
    ("hardtanh", {"min_val": 0.0, "max_val": 6.0}, lambda y: F.hardtanh(y, 0.0, 6.0)),
    ("leaky_relu", {"negative_slope": 0.1}, lambda y: F.leaky_relu(y, 0.1)),
    ("hardswish", {}, F.hardswish),
    ("silu", {}, F.silu),
    ("sigmoid", {}, F.sigmoid),
    ("gelu", {}, F.gelu),
    ("gelu", {"approximate": "tanh"}, lambda y: F.gelu(y, approximate="tanh")),
    ("elu", {"alpha": 0.5}, lambda y: F.elu(y, 0.5)),
]
