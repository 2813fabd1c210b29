"""``pyconv demo``: a digit classifier trained with torch (examples/train_digits.py), run without torch on
400 held-out digits of scikit-learn's bundled 8x8 digits, both shipped here."""
import os
import statistics
import time

import numpy as np

__all__ = ["run"]

FOLDER = os.path.dirname(os.path.abspath(__file__))


def heldout_digits():
    """(images (400, 1, 8, 8) float32 in [0, 1], labels (400,) int64)."""
    data = np.load(os.path.join(FOLDER, "digits_heldout.npz"))
    return (data["levels"] / 16.0).astype(np.float32)[:, None], data["labels"]


def run(repeat=200):
    """Print the held-out accuracy, the latency at batch 1 and for all digits at once, and the model's
    summary; returns the accuracy."""
    from .. import load
    model = load(os.path.join(FOLDER, "digits.pyconv"))
    images, labels = heldout_digits()
    accuracy = float((model(images).argmax(1) == labels).mean())
    single = []
    for index in range(repeat):
        one = images[index % len(images)][None]
        start = time.perf_counter()
        model(one)
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    model(images)
    batch_seconds = time.perf_counter() - start
    print(f"pyconv demo: a CNN trained with torch on scikit-learn's digits, run without torch\n"
          f"held-out digits: {len(labels)}, accuracy {accuracy:.1%}\n"
          f"latency: {statistics.median(single) * 1e3:.3f} ms per digit at batch 1 (median of {repeat}), "
          f"{len(labels) / batch_seconds:,.0f} digits/s at batch {len(labels)}\n")
    print(model.summary())
    return accuracy
