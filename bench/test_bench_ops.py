"""pytest-benchmark cases: every op of pyconv.functional on a typical CNN-sized input.

    pytest bench/test_bench_ops.py --benchmark-columns=median,iqr,rounds

Timings only, never asserted.  The layer suite cases come from suite.py; the
ops around them get one representative call each.
"""
import numpy as np
import pytest

import pyconv.functional as F
from suite import SUITE

rng = np.random.default_rng(0)
X = rng.standard_normal((1, 64, 56, 56), dtype=np.float32)
X3D = rng.standard_normal((1, 16, 16, 32, 32), dtype=np.float32)
C = X.shape[1]

OTHER_OPS = {
    "relu": lambda: F.relu(X),
    "relu6": lambda: F.relu6(X),
    "leaky_relu": lambda: F.leaky_relu(X),
    "prelu": lambda: F.prelu(X, np.full(C, 0.25, np.float32)),
    "rrelu": lambda: F.rrelu(X),
    "elu": lambda: F.elu(X),
    "selu": lambda: F.selu(X),
    "celu": lambda: F.celu(X),
    "hardtanh": lambda: F.hardtanh(X),
    "sigmoid": lambda: F.sigmoid(X),
    "tanh": lambda: F.tanh(X),
    "hardswish": lambda: F.hardswish(X),
    "hardsigmoid": lambda: F.hardsigmoid(X),
    "silu": lambda: F.silu(X),
    "mish": lambda: F.mish(X),
    "gelu": lambda: F.gelu(X),
    "gelu_tanh": lambda: F.gelu(X, approximate="tanh"),
    "softplus": lambda: F.softplus(X),
    "softmax": lambda: F.softmax(X, dim=1),
    "log_softmax": lambda: F.log_softmax(X, dim=1),
    "batch_norm": lambda: F.batch_norm(X, np.zeros(C, np.float32), np.ones(C, np.float32)),
    "group_norm": lambda: F.group_norm(X, 8),
    "layer_norm": lambda: F.layer_norm(X, X.shape[1:]),
    "linear": lambda: F.linear(X.reshape(56, -1)[:, :1024], rng.standard_normal((1000, 1024), dtype=np.float32)),
    "pad_constant": lambda: F.pad(X, (1, 1, 1, 1)),
    "pad_reflect": lambda: F.pad(X, (1, 1, 1, 1), mode="reflect"),
    "pad_replicate": lambda: F.pad(X, (1, 1, 1, 1), mode="replicate"),
    "pad_circular": lambda: F.pad(X, (1, 1, 1, 1), mode="circular"),
    "interpolate_nearest": lambda: F.interpolate(X, scale_factor=2),
    "interpolate_bilinear": lambda: F.interpolate(X, scale_factor=2, mode="bilinear", align_corners=False),
    "pixel_shuffle": lambda: F.pixel_shuffle(X, 2),
    "pixel_unshuffle": lambda: F.pixel_unshuffle(X, 2),
    "channel_shuffle": lambda: F.channel_shuffle(X, 4),
    "max_pool2d_indices": lambda: F.max_pool2d(X, 3, 2, 1, return_indices=True),
    "max_pool3d": lambda: F.max_pool3d(X3D, 2),
    "avg_pool3d": lambda: F.avg_pool3d(X3D, 2),
    "lp_pool2d": lambda: F.lp_pool2d(X, 2, 2),
    "adaptive_max_pool2d": lambda: F.adaptive_max_pool2d(X, 7),
    "max_unpool2d": lambda: F.max_unpool2d(*F.max_pool2d(X, 2, return_indices=True), 2),
}


@pytest.mark.parametrize("case", SUITE, ids=[case.id for case in SUITE])
def test_layer_suite(benchmark, case):
    x, w = case.arrays()
    benchmark(case.run_pyconv, x, w)


@pytest.mark.parametrize("name", sorted(OTHER_OPS))
def test_op(benchmark, name):
    benchmark(OTHER_OPS[name])
