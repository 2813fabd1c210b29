"""A first pyconv program: a small CNN written as pyconv.functional calls.

Runs without torch.  The weights are seeded random numbers (a later release
ships a trained model and ``pyconv demo``); the point is the API and the speed:
every call takes and returns numpy arrays, exactly as torch.nn.functional
takes and returns tensors.
"""
import time

import numpy as np

import pyconv
import pyconv.functional as F

rng = np.random.default_rng(0)


def weight(*shape):
    fan_in = int(np.prod(shape[1:]))
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))


params = {
    "stem": weight(32, 3, 3, 3),
    "bn_mean": np.zeros(32, np.float32), "bn_var": np.ones(32, np.float32),
    "bn_weight": np.ones(32, np.float32), "bn_bias": np.zeros(32, np.float32),
    "depthwise": weight(32, 1, 3, 3),
    "pointwise": weight(64, 32, 1, 1),
    "conv": weight(128, 64, 3, 3), "conv_bias": np.zeros(128, np.float32),
    "fc": weight(10, 128), "fc_bias": np.zeros(10, np.float32),
}


def forward(x):
    """(N, 3, 64, 64) images -> (N, 10) class probabilities; prints each layer's output."""
    layers = [
        ("conv2d 3x3 s2", lambda t: F.conv2d(t, params["stem"], stride=2, padding=1)),
        ("batch_norm", lambda t: F.batch_norm(t, params["bn_mean"], params["bn_var"],
                                              params["bn_weight"], params["bn_bias"])),
        ("relu", F.relu),
        ("depthwise conv2d 3x3", lambda t: F.conv2d(t, params["depthwise"], padding=1, groups=32)),
        ("conv2d 1x1", lambda t: F.conv2d(t, params["pointwise"])),
        ("hardswish", F.hardswish),
        ("max_pool2d 2x2", lambda t: F.max_pool2d(t, 2)),
        ("conv2d 3x3 + bias", lambda t: F.conv2d(t, params["conv"], params["conv_bias"], padding=1)),
        ("relu", F.relu),
        ("adaptive_avg_pool2d", lambda t: F.adaptive_avg_pool2d(t, 1)),
        ("flatten", lambda t: F.flatten(t, 1)),
        ("linear", lambda t: F.linear(t, params["fc"], params["fc_bias"])),
        ("softmax", lambda t: F.softmax(t, dim=1)),
    ]
    for name, layer in layers:
        start = time.perf_counter()
        x = layer(x)
        print(f"  {name:<22} -> {str(x.shape):<20} {1e3 * (time.perf_counter() - start):7.3f} ms")
    return x


if __name__ == "__main__":
    images = rng.standard_normal((4, 3, 64, 64), dtype=np.float32)
    print(f"pyconv {pyconv.__version__}, {pyconv.get_num_threads()} thread(s); input {images.shape}")
    forward(images)  # warm-up
    print("layer by layer:")
    start = time.perf_counter()
    probabilities = forward(images)
    print(f"total {1e3 * (time.perf_counter() - start):.2f} ms; predicted classes {probabilities.argmax(1).tolist()}")
