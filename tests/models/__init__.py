"""CNNs written once for torch and pyconv.

Each module defines ``build(nn, F, T, **sizes)`` and ``INPUT_SHAPE``. ``build`` takes the
namespaces (``torch.nn, torch.nn.functional, torch`` or ``pyconv.nn,
pyconv.nn.functional, pyconv``) and returns the model, so the same source text
runs on both. Forwards use the numpy spellings of tensor methods
(``x.shape[0]`` for ``x.size(0)``, ``x.reshape(n, -1)`` for ``x.view(n, -1)``,
``T.chunk(x, 2, dim=1)`` for ``x.chunk(2, dim=1)``), which torch tensors accept too.

``build``'s defaults give the small model the tests run on ``INPUT_SHAPE``; each module's ``FULL`` maps the
name of a standard full-size network to the keyword arguments that build it, run on ``FULL_INPUT_SHAPE``
(batch 1): DESIGN.md's model suite, which bench/models.py times.
"""
import importlib

MODELS = ["resnet", "mobilenetv2", "shufflenetv2", "squeezenet", "alexnet", "vgg", "inception", "densenet", "unet",
          "dcgan"]


def full_suite():
    """{name: (module name, build keyword arguments, input shape)} of the full-size networks, in MODELS order."""
    suite = {}
    for module_name in MODELS:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for name, kwargs in module.FULL.items():
            suite[name] = (module_name, kwargs, module.FULL_INPUT_SHAPE)
    return suite
