"""Load time of a ResNet-50-sized state dict: pyconv (no torch) vs torch.load and safetensors.

Builds random tensors with ResNet-50's parameter and buffer names and shapes
(written out here, no torchvision), saves them as a torch zip .pth, a legacy
.pth and a .safetensors, and prints the median load time of several runs of
each loader, alternating loaders, with the files in the page cache (warm).

    python bench/load.py [--runs 9] [--dir /tmp]
"""
import argparse
import os
import statistics
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch
import safetensors.numpy
import safetensors.torch

import pyconv


def resnet50_shapes():
    """(name, shape, dtype) of torchvision's resnet50().state_dict(), in its order."""
    entries = []

    def conv(name, out_channels, in_channels, k):
        entries.append((f"{name}.weight", (out_channels, in_channels, k, k), torch.float32))

    def bn(name, channels):
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            entries.append((f"{name}.{suffix}", (channels,), torch.float32))
        entries.append((f"{name}.num_batches_tracked", (), torch.int64))

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    in_channels = 64
    for layer, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            conv(f"{prefix}.conv1", width, in_channels, 1)
            bn(f"{prefix}.bn1", width)
            conv(f"{prefix}.conv2", width, width, 3)
            bn(f"{prefix}.bn2", width)
            conv(f"{prefix}.conv3", width * 4, width, 1)
            bn(f"{prefix}.bn3", width * 4)
            if block == 0:
                conv(f"{prefix}.downsample.0", width * 4, in_channels, 1)
                bn(f"{prefix}.downsample.1", width * 4)
            in_channels = width * 4
    entries.append(("fc.weight", (1000, 2048), torch.float32))
    entries.append(("fc.bias", (1000,), torch.float32))
    return entries


def resnet50_state_dict(seed=0):
    generator = torch.Generator().manual_seed(seed)
    state_dict = OrderedDict()
    for name, shape, dtype in resnet50_shapes():
        if dtype is torch.int64:
            state_dict[name] = torch.tensor(0)
        else:
            state_dict[name] = torch.randn(shape, generator=generator)
    return state_dict


def median_ms(loaders, runs):
    """Median time in ms of each loader; the loaders take turns (round robin), 50 ms apart."""
    samples = {name: [] for name in loaders}
    for _ in range(runs):
        for name, load in loaders.items():
            time.sleep(0.05)
            start = time.perf_counter()
            load()
            samples[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(times) for name, times in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = parser.parse_args()
    np.ones(30 * 2**20 // 8).sum()          # a process that has run a model has done this (see DESIGN)
    torch.set_num_threads(pyconv.get_num_threads())

    state_dict = resnet50_state_dict()
    nbytes = sum(t.numel() * t.element_size() for t in state_dict.values())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        zip_path = os.path.join(tmp, "resnet50.pth")
        legacy_path = os.path.join(tmp, "resnet50_legacy.pth")
        st_path = os.path.join(tmp, "resnet50.safetensors")
        torch.save(state_dict, zip_path)
        torch.save(state_dict, legacy_path, _use_new_zipfile_serialization=False)
        safetensors.torch.save_file(state_dict, st_path)

        loaders = {
            "pyconv.load_state_dict  .pth (zip)": lambda: pyconv.load_state_dict(zip_path),
            "torch.load              .pth (zip)": lambda: torch.load(zip_path),
            "torch.load(mmap=True)   .pth (zip)": lambda: torch.load(zip_path, mmap=True),
            "pyconv.load_state_dict  .pth (legacy)": lambda: pyconv.load_state_dict(legacy_path),
            "torch.load(weights_only=False) .pth (legacy)":
                lambda: torch.load(legacy_path, weights_only=False),
            "pyconv.load_state_dict  .safetensors": lambda: pyconv.load_state_dict(st_path),
            "safetensors.numpy.load_file .safetensors": lambda: safetensors.numpy.load_file(st_path),
            "safetensors.torch.load_file .safetensors": lambda: safetensors.torch.load_file(st_path),
        }
        for load in loaders.values():       # warm the page cache and every code path
            load()
        print(f"ResNet-50 state dict: {len(state_dict)} tensors, {nbytes / 1e6:.1f} MB; "
              f"median of {args.runs} warm runs, {pyconv.get_num_threads()} threads")
        print(f"{'loader':<46} {'ms':>8} {'GB/s':>6}")
        for name, ms in median_ms(loaders, args.runs).items():
            print(f"{name:<46} {ms:8.1f} {nbytes / ms / 1e6:6.2f}")


if __name__ == "__main__":
    main()
