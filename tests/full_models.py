"""The full-size networks of tests/models (each module's ``FULL`` configurations: DESIGN.md's model suite) built
in torch, for bench/models.py, and the seeded build of any tests/models network (test_nn_models.build_torch):
random batch-norm statistics and affine parameters, eval mode."""
import importlib

import torch

from models import full_suite


def build_full_torch(name, seed=0):
    module_name, kwargs, _ = full_suite()[name]
    return build_seeded_torch(module_name, seed, **kwargs)


def build_seeded_torch(module_name, seed=0, **kwargs):
    """tests/models/<module_name>.build(**kwargs) in torch, seeded, with random batch-norm statistics and
    affine parameters, in eval mode."""
    torch.manual_seed(seed)
    model = importlib.import_module(f"models.{module_name}").build(torch.nn, torch.nn.functional, torch, **kwargs)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.normal_(0.0, 0.2)
                layer.running_var.uniform_(0.5, 1.5)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_(0.0, 0.2)
    return model.eval()
