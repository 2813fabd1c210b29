"""torchvision's classification models through ``pyconv.from_torch`` (optional: skipped without torchvision).

One variant per family, random weights (``weights=None``, nothing downloaded), 224x224: exported at batch 1,
compared with torch eager at batch 1 and, from the same export (dynamic batch), at batch 8: max|Δ| <=
1e-4·max|y| and the same top-1 class.  torchvision's own initialisation leaves batch-norm statistics at
mean 0 / variance 1 and some models' outputs vanish with them (MobileNet's logits ~1e-9, EfficientNet's
~1e-14, GoogLeNet's all equal), where any answer passes; ``build`` therefore draws random batch-norm
scales and shifts and sets the running statistics from one training-mode pass on random images, so every
layer's activations, and the logits, are of order one.  ``bench/torchvision_models.py`` times these models.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import pyconv  # noqa: E402

# one variant per family named in issue 8
MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1", "alexnet",
          "vgg11", "googlenet", "densenet121", "efficientnet_b0", "regnet_y_400mf"]
INPUT_SHAPE = (3, 224, 224)


def build(name, seed=0):
    """torchvision model ``name`` in eval mode: random weights, random batch-norm affine parameters and
    running statistics of one pass with the batch norms in training mode (GoogLeNet without its auxiliary
    classifiers)."""
    torch.manual_seed(seed)
    options = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = torchvision.models.get_model(name, weights=None, **options).eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # running statistics = the average over the passes (here: one)
            if norm.affine:
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_(0.0, 0.2)
            norm.train()  # the rest in eval mode: no dropout, no stochastic depth in the statistics
        if norms:
            model(torch.randn(2, *INPUT_SHAPE))
    return model.eval()


def _check(model, ours, x):
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    actual = ours(x)
    assert actual.shape == expected.shape
    error = np.abs(actual - expected).max()
    scale = np.abs(expected).max()
    assert error <= 1e-4 * scale, f"batch {len(x)}: max|Δ| {error:.3g} > 1e-4 * max|y| ({scale:.3g})"
    np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1), err_msg=f"batch {len(x)}: top-1")


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_model_equals_torch(name):
    model = build(name)
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((1, *INPUT_SHAPE), dtype=np.float32)
    ours = pyconv.from_torch(model, torch.from_numpy(x1))
    _check(model, ours, x1)
    _check(model, ours, rng.standard_normal((8, *INPUT_SHAPE), dtype=np.float32))
