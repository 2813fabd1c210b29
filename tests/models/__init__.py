"""CNNs written once for torch and pyconv.

Each module defines ``build(nn, F, T)`` and ``INPUT_SHAPE``. ``build`` takes the
namespaces (``torch.nn, torch.nn.functional, torch`` or ``pyconv.nn,
pyconv.nn.functional, pyconv``) and returns the model, so the same source text
runs on both. Forwards use the numpy spellings of tensor methods
(``x.shape[0]`` for ``x.size(0)``, ``x.reshape(n, -1)`` for ``x.view(n, -1)``,
``T.chunk(x, 2, dim=1)`` for ``x.chunk(2, dim=1)``), which torch tensors accept too.
"""
MODELS = ["resnet", "mobilenetv2", "shufflenetv2", "squeezenet", "alexnet", "vgg", "inception", "densenet", "unet",
          "dcgan"]
