"""Write tests/data/golden.npz: torch's outputs for a core subset of ops.

    python tests/make_golden.py      # needs torch; run after changing CASES

tests/test_golden.py checks pyconv against this file where torch is not
installed.  Each case stores its positional arrays, torch's output, and the op
name and keyword arguments (JSON) under the case's name.
"""
import json
import os

import numpy as np
import torch

rng = np.random.default_rng(2024)


def normal(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


# name: (op, positional arrays as float64, keyword arguments)
CASES = {
    "conv1d_stride2_dilation2": ("conv1d", [normal(2, 4, 17), normal(6, 4, 3), normal(6)],
                                 dict(stride=2, padding=1, dilation=2)),
    "conv2d_groups_same": ("conv2d", [normal(2, 4, 9, 11), normal(6, 2, 3, 5)], dict(padding="same", groups=2)),
    "conv2d_depthwise_stride2": ("conv2d", [normal(1, 6, 13, 12), normal(6, 1, 3, 3), normal(6)],
                                 dict(stride=2, padding=1, groups=6)),
    "conv3d": ("conv3d", [normal(1, 3, 5, 6, 7), normal(4, 3, 3, 2, 3)], dict(padding=(1, 0, 1))),
    "conv_transpose2d": ("conv_transpose2d", [normal(2, 4, 7, 6), normal(4, 3, 4, 3), normal(3)],
                         dict(stride=2, padding=1, output_padding=1)),
    "conv_transpose1d_groups": ("conv_transpose1d", [normal(1, 4, 9), normal(4, 2, 3)],
                                dict(stride=3, groups=2, dilation=2)),
    "max_pool2d_ceil": ("max_pool2d", [normal(2, 3, 11, 10)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "avg_pool2d_exclude_pad": ("avg_pool2d", [normal(2, 3, 11, 10)],
                               dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d", [normal(2, 3, 11, 10)], dict(output_size=(4, 3))),
    "adaptive_max_pool1d": ("adaptive_max_pool1d", [normal(2, 3, 13)], dict(output_size=5)),
    "pad_reflect": ("pad", [normal(1, 2, 5, 6)], dict(pad=(2, 1, 0, 3), mode="reflect")),
    "pad_circular": ("pad", [normal(1, 2, 5, 6)], dict(pad=(2, 1, 0, 3), mode="circular")),
    "interpolate_bilinear": ("interpolate", [normal(1, 2, 5, 6)],
                             dict(scale_factor=1.5, mode="bilinear", align_corners=False)),
    "interpolate_nearest": ("interpolate", [normal(1, 2, 5, 6)], dict(size=(7, 13), mode="nearest")),
    "pixel_shuffle": ("pixel_shuffle", [normal(1, 8, 3, 4)], dict(upscale_factor=2)),
    "batch_norm": ("batch_norm", [normal(2, 3, 4, 5), normal(3), positive(3), normal(3), normal(3)], dict(eps=1e-3)),
    "group_norm": ("group_norm", [normal(2, 6, 4, 5)], dict(num_groups=3)),
    "layer_norm": ("layer_norm", [normal(2, 6, 4, 5)], dict(normalized_shape=(4, 5))),
    "linear": ("linear", [normal(3, 7), normal(5, 7), normal(5)], {}),
    "gelu": ("gelu", [normal(2, 3, 4)], {}),
    "silu": ("silu", [normal(2, 3, 4)], {}),
    "hardswish": ("hardswish", [normal(2, 3, 4) * 4], {}),
    "softmax": ("softmax", [normal(2, 3, 4)], dict(dim=1)),
    "leaky_relu": ("leaky_relu", [normal(2, 3, 4)], dict(negative_slope=0.2)),
}


def main():
    arrays, specs = {}, {}
    for name, (op, positional, kwargs) in CASES.items():
        for dtype in (np.float32, np.float64):
            key = f"{name}.{np.dtype(dtype).name}"
            inputs = [a.astype(dtype) for a in positional]
            output = getattr(torch.nn.functional, op)(*map(torch.from_numpy, inputs), **kwargs)
            for i, a in enumerate(inputs):
                arrays[f"{key}.arg{i}"] = a
            arrays[f"{key}.output"] = output.numpy()
            specs[key] = dict(op=op, nargs=len(inputs), kwargs=kwargs)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden.npz")
    np.savez_compressed(path, specs=np.array(json.dumps(specs)), **arrays)
    print(f"wrote {len(specs)} cases to {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
