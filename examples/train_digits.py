"""Train the demo's digit classifier with torch on scikit-learn's bundled digits, and export it.

    pip install scikit-learn && python examples/train_digits.py

Holds out 400 of the 1797 8x8 digits, trains a small CNN (convolutions, a depthwise convolution, batch
norm, pooling) on the rest and writes what ``pyconv demo`` runs without torch: pyconv/demo/digits.pyconv
and the held-out digits, pyconv/demo/digits_heldout.npz (16 grey levels as uint8, and labels).
"""
import os

import numpy as np
import torch
from sklearn.datasets import load_digits

import pyconv

nn = torch.nn
HELD_OUT = 400
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pyconv", "demo")


def build():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, 10))


def main():
    digits = load_digits()
    levels = digits.images.astype(np.uint8)                       # 0..16
    images = (levels / 16.0).astype(np.float32)[:, None]          # (1797, 1, 8, 8) in [0, 1]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    held_out, train = order[:HELD_OUT], order[HELD_OUT:]

    torch.manual_seed(0)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images[train]), torch.from_numpy(labels[train])
    for _ in range(40):
        model.train()
        for batch in torch.randperm(len(y)).split(64):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(images[held_out])).argmax(1).numpy()
    print(f"torch: held-out accuracy {(predicted == labels[held_out]).mean():.1%}")

    pyconv.export(model, torch.from_numpy(images[:1]), os.path.join(FOLDER, "digits.pyconv"))
    np.savez_compressed(os.path.join(FOLDER, "digits_heldout.npz"), levels=levels[held_out],
                        labels=labels[held_out])
    print(f"wrote {os.path.normpath(FOLDER)}/digits.pyconv and digits_heldout.npz")


if __name__ == "__main__":
    main()
