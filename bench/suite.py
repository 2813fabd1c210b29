"""The layer suite of DESIGN.md: stable ids, inputs, and the same call in pyconv and torch.

Each case gives a pyconv call and the torch call computing the same thing, the
multiply-accumulates of the direct algorithm (for effective GFLOP/s), and the
arrays both run on.  Weights and inputs are seeded unit normals.
"""
from dataclasses import dataclass, field
from math import prod

import numpy as np

import pyconv.functional as F


@dataclass
class Case:
    id: str
    op: str              # name in pyconv.functional and torch.nn.functional
    input_shape: tuple
    weight_shape: tuple = None
    kwargs: dict = field(default_factory=dict)

    def arrays(self, dtype=np.float32):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(self.input_shape, dtype=dtype)
        w = None if self.weight_shape is None else rng.standard_normal(self.weight_shape, dtype=dtype)
        return x, w

    def run_pyconv(self, x, w):
        fn = getattr(F, self.op)
        return fn(x, **self.kwargs) if w is None else fn(x, w, **self.kwargs)

    def run_torch(self, torch, x, w):
        fn = getattr(torch.nn.functional, self.op)
        return fn(x, **self.kwargs) if w is None else fn(x, w, **self.kwargs)

    def output_shape(self):
        x, w = self.arrays()
        return self.run_pyconv(x, w).shape

    def macs(self):
        """Multiply-accumulates of the direct algorithm; None for ops that are not convolutions."""
        if self.weight_shape is None:
            return None
        if self.op.startswith("conv_transpose"):
            # every input element meets every weight of its group once
            n, c_in = self.input_shape[:2]
            return n * prod(self.input_shape[1:]) * prod(self.weight_shape[1:])
        out = self.output_shape()
        return prod(out) * prod(self.weight_shape[1:])


def _conv(id, c_in, c_out, size, k, n=1, groups=1, **kwargs):
    return Case(id, "conv2d", (n, c_in, size, size), (c_out, c_in // groups, k, k), dict(groups=groups, **kwargs))


SUITE = [
    _conv("conv3x3_64_56", 64, 64, 56, 3, padding=1),
    _conv("conv3x3_128_28", 128, 128, 28, 3, padding=1),
    _conv("conv3x3_256_14", 256, 256, 14, 3, padding=1),
    _conv("conv3x3_512_7", 512, 512, 7, 3, padding=1),
    _conv("conv3x3_64_56_n8", 64, 64, 56, 3, n=8, padding=1),
    _conv("conv3x3s2_64_128_56", 64, 128, 56, 3, stride=2, padding=1),
    _conv("conv7x7s2_3_64_224", 3, 64, 224, 7, stride=2, padding=3),
    _conv("conv1x1_256_64_56", 256, 64, 56, 1),
    _conv("conv1x1_64_256_56", 64, 256, 56, 1),
    _conv("conv1x1_1024_256_14", 1024, 256, 14, 1),
    _conv("dw3x3_144_56", 144, 144, 56, 3, groups=144, padding=1),
    _conv("dw3x3s2_96_112", 96, 96, 112, 3, groups=96, stride=2, padding=1),
    _conv("dw5x5_240_28", 240, 240, 28, 5, groups=240, padding=2),
    _conv("group3x3_g32_128_56", 128, 128, 56, 3, groups=32, padding=1),
    _conv("alexnet5x5_g2_96_256_27", 96, 256, 27, 5, groups=2, padding=2),
    _conv("dilated3x3_256_28", 256, 256, 28, 3, dilation=2, padding=2),
    Case("convT4x4s2_256_128_16", "conv_transpose2d", (1, 256, 16, 16), (256, 128, 4, 4), dict(stride=2, padding=1)),
    Case("convT2x2s2_128_64_64", "conv_transpose2d", (1, 128, 64, 64), (128, 64, 2, 2), dict(stride=2)),
    Case("convT3x3s2_64_32_56", "conv_transpose2d", (1, 64, 56, 56), (64, 32, 3, 3),
         dict(stride=2, padding=1, output_padding=1)),
    Case("conv1d_k3_256_4096", "conv1d", (1, 256, 4096), (256, 256, 3), dict(padding=1)),
    Case("conv3d_3x3x3_32_16x32x32", "conv3d", (1, 32, 16, 32, 32), (32, 32, 3, 3, 3), dict(padding=1)),
    Case("maxpool3x3s2_64_112", "max_pool2d", (1, 64, 112, 112), kwargs=dict(kernel_size=3, stride=2, padding=1)),
    Case("avgpool2x2s2_256_56", "avg_pool2d", (1, 256, 56, 56), kwargs=dict(kernel_size=2, stride=2)),
    Case("adaptiveavg1_2048_7", "adaptive_avg_pool2d", (1, 2048, 7, 7), kwargs=dict(output_size=1)),
]
