"""Every pyconv.nn layer against its torch.nn twin: constructor signature, repr, state-dict keys and
output (weights copied through state_dict()), float32, over the constructor arguments."""
import inspect
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pyconv.nn as nn
from tolerances import assert_close

torch = pytest.importorskip("torch")

# (layer, positional args, keyword args, input shape). Together the cases cover every constructor
# argument of every layer; odd sizes, non-square kernels, unbatched inputs.
CASES = [
    # convolutions
    ("Conv1d", (4, 6, 3), {}, (2, 4, 11)),
    ("Conv1d", (4, 6, 4), dict(stride=2, padding=2, dilation=2, groups=2, bias=False), (2, 4, 13)),
    ("Conv1d", (4, 6, 4), dict(padding="same", dilation=1), (4, 10)),
    ("Conv1d", (3, 5, 3), dict(padding="valid"), (1, 3, 9)),
    ("Conv1d", (3, 5, 3), dict(padding=2, padding_mode="reflect"), (2, 3, 7)),
    ("Conv1d", (3, 5, 4), dict(padding="same", padding_mode="circular", dilation=2), (2, 3, 9)),
    ("Conv2d", (3, 8, (3, 5)), {}, (2, 3, 9, 11)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False),
     (2, 4, 10, 9)),
    ("Conv2d", (6, 6, 3), dict(stride=2, padding=1, groups=6), (1, 6, 9, 8)),
    ("Conv2d", (3, 4, (4, 3)), dict(padding="same", dilation=(1, 2)), (2, 3, 8, 9)),
    ("Conv2d", (3, 4, (4, 3)), dict(padding="same", padding_mode="reflect"), (2, 3, 8, 9)),
    ("Conv2d", (3, 4, 3), dict(padding=(1, 2), padding_mode="replicate", stride=2), (3, 7, 9)),
    ("Conv2d", (3, 4, 3), dict(padding=(2, 1), padding_mode="circular", dilation=2), (2, 3, 8, 7)),
    ("Conv2d", (2, 3, 1), {}, (2, 2, 5, 6)),
    ("Conv3d", (2, 4, 3), dict(stride=2, padding=1), (2, 2, 7, 6, 5)),
    ("Conv3d", (2, 4, (2, 3, 1)), dict(padding="same", padding_mode="replicate"), (1, 2, 5, 6, 4)),
    ("Conv3d", (4, 4, 3), dict(padding=1, padding_mode="circular", groups=2, bias=False), (4, 5, 4, 6)),
    ("ConvTranspose1d", (4, 6, 3), {}, (2, 4, 9)),
    ("ConvTranspose1d", (4, 6, 4), dict(stride=3, padding=1, output_padding=2, groups=2, bias=False, dilation=2),
     (2, 4, 7)),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0)), (2, 4, 6, 7)),
    ("ConvTranspose2d", (4, 4, 4), dict(stride=2, padding=1, groups=4, dilation=1), (4, 5, 5)),
    ("ConvTranspose2d", (3, 2, 3), dict(dilation=(2, 3), padding=2, bias=False), (1, 3, 5, 4)),
    ("ConvTranspose3d", (2, 3, 3), dict(stride=2, padding=1, output_padding=1), (2, 2, 3, 4, 3)),
    # pooling
    ("MaxPool1d", (3,), {}, (2, 3, 10)),
    ("MaxPool1d", (4,), dict(stride=2, padding=2, dilation=2, ceil_mode=True), (2, 3, 13)),
    ("MaxPool1d", (3,), dict(return_indices=True), (3, 11)),
    ("MaxPool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True), (2, 3, 9, 8)),
    ("MaxPool2d", (3, 2, 1), {}, (2, 4, 11, 10)),
    ("MaxPool2d", (2,), dict(return_indices=True), (2, 3, 7, 6)),
    ("MaxPool3d", (2,), dict(stride=(1, 2, 2), padding=1, ceil_mode=True), (1, 2, 5, 6, 7)),
    ("MaxPool3d", (3,), dict(stride=2, return_indices=True, dilation=(1, 2, 1)), (2, 2, 7, 9, 5)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 10)),
    ("AvgPool1d", (2,), {}, (3, 9)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1), (2, 3, 9, 10)),
    ("AvgPool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False),
     (2, 3, 9, 8)),
    ("AvgPool2d", (2,), dict(divisor_override=3), (2, 3, 6, 7)),
    ("AvgPool3d", (2,), dict(stride=(1, 2, 2), padding=(1, 0, 1), count_include_pad=False), (1, 2, 4, 6, 5)),
    ("AvgPool3d", (3,), dict(stride=2, ceil_mode=True, divisor_override=5), (2, 2, 7, 6, 5)),
    ("LPPool1d", (2, 3), {}, (2, 3, 10)),
    ("LPPool1d", (1.5, 3), dict(stride=2, ceil_mode=True), (2, 3, 10)),
    ("LPPool2d", (2, (3, 2)), dict(stride=(1, 2)), (2, 3, 7, 8)),
    ("LPPool2d", (3, 2), dict(ceil_mode=True), (2, 3, 7, 9)),
    ("LPPool3d", (2, 2), dict(stride=1), (1, 2, 4, 5, 3)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 10, 7)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 5, 7, 7)),
    ("AdaptiveAvgPool3d", ((2, 3, 2),), {}, (1, 2, 5, 7, 4)),
    ("AdaptiveMaxPool1d", (4,), dict(return_indices=True), (2, 3, 10)),
    ("AdaptiveMaxPool2d", ((3, 4),), {}, (2, 3, 10, 7)),
    ("AdaptiveMaxPool3d", (2,), dict(return_indices=True), (1, 2, 5, 7, 4)),
    # linear, normalisation, dropout
    ("Linear", (5, 7), {}, (3, 2, 5)),
    ("Linear", (5, 4), dict(bias=False), (5,)),
    ("BatchNorm1d", (4,), {}, (6, 4)),
    ("BatchNorm1d", (4,), dict(eps=1e-3, momentum=None, affine=False), (3, 4, 7)),
    ("BatchNorm2d", (3,), {}, (2, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(bias=False, momentum=0.3), (2, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), (2, 3, 5, 6)),
    ("BatchNorm3d", (2,), dict(eps=1e-2), (2, 2, 3, 4, 5)),
    ("GroupNorm", (2, 6), {}, (2, 6, 5, 4)),
    ("GroupNorm", (3, 6), dict(eps=1e-3, affine=False), (2, 6, 7)),
    ("GroupNorm", (1, 4), dict(bias=False), (3, 4, 2, 2, 3)),
    ("LayerNorm", ((4, 5),), {}, (2, 3, 4, 5)),
    ("LayerNorm", (6,), dict(eps=1e-3, elementwise_affine=False), (2, 6)),
    ("LayerNorm", ([5],), dict(bias=False), (3, 5)),
    ("Dropout", (), {}, (2, 3, 4)),
    ("Dropout", (0.3,), dict(inplace=True), (2, 3, 4)),
    ("Dropout1d", (0.2,), {}, (2, 3, 4)),
    ("Dropout2d", (), {}, (2, 3, 4, 5)),
    ("Dropout2d", (0.4,), {}, (2, 3, 4)),  # torch warns: 3-D input taken as (N, C, L)
    ("Dropout3d", (0.1,), {}, (2, 3, 2, 4, 5)),
    # activations
    ("ReLU", (), {}, (2, 3, 4, 5)),
    ("ReLU", (), dict(inplace=True), (2, 7)),
    ("ReLU6", (), {}, (2, 3, 4)),
    ("ReLU6", (True,), {}, (2, 3, 4)),
    ("LeakyReLU", (), {}, (2, 3, 4)),
    ("LeakyReLU", (0.2, True), {}, (2, 3, 4)),
    ("PReLU", (), {}, (2, 3, 4)),
    ("PReLU", (3,), dict(init=0.1), (2, 3, 4, 5)),
    ("RReLU", (), {}, (2, 3, 4)),
    ("RReLU", (0.1, 0.3), dict(inplace=True), (2, 3, 4)),
    ("ELU", (), {}, (2, 3, 4)),
    ("ELU", (0.5, True), {}, (2, 3, 4)),
    ("SELU", (), {}, (2, 3, 4)),
    ("SELU", (True,), {}, (2, 3, 4)),
    ("CELU", (), {}, (2, 3, 4)),
    ("CELU", (2.0,), dict(inplace=True), (2, 3, 4)),
    ("Hardtanh", (), {}, (2, 3, 4)),
    ("Hardtanh", (-0.5, 2.0, True), {}, (2, 3, 4)),
    ("Sigmoid", (), {}, (2, 3, 4)),
    ("Tanh", (), {}, (2, 3, 4)),
    ("Hardswish", (), {}, (2, 3, 4)),
    ("Hardswish", (True,), {}, (2, 3, 4)),
    ("Hardsigmoid", (), dict(inplace=True), (2, 3, 4)),
    ("SiLU", (), {}, (2, 3, 4)),
    ("SiLU", (True,), {}, (2, 3, 4)),
    ("Mish", (), {}, (2, 3, 4)),
    ("Mish", (), dict(inplace=True), (2, 3, 4)),
    ("GELU", (), {}, (2, 3, 4)),
    ("GELU", ("tanh",), {}, (2, 3, 4)),
    ("Softplus", (), {}, (2, 3, 4)),
    ("Softplus", (2.0, 1.5), {}, (2, 3, 4)),
    ("Softmax", (1,), {}, (2, 3, 4)),
    ("Softmax", (), dict(dim=-1), (2, 3, 4)),
    ("LogSoftmax", (0,), {}, (2, 3, 4)),
    ("LogSoftmax", (), dict(dim=2), (2, 3, 4)),
    # shape and resampling
    ("PixelShuffle", (2,), {}, (2, 8, 3, 5)),
    ("PixelUnshuffle", (3,), {}, (2, 2, 6, 9)),
    ("ChannelShuffle", (3,), {}, (2, 6, 4, 5)),
    ("Upsample", (), dict(scale_factor=2), (2, 3, 4, 5)),
    ("Upsample", ((7, 9),), dict(mode="bilinear"), (2, 3, 4, 5)),
    ("Upsample", (), dict(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    ("Upsample", (), dict(scale_factor=1.7, mode="bicubic", recompute_scale_factor=True), (1, 2, 5, 4)),
    ("Upsample", (), dict(scale_factor=2, mode="trilinear"), (1, 2, 3, 4, 5)),
    ("Upsample", (11,), dict(mode="linear", align_corners=False), (2, 3, 5)),
    ("Upsample", (), dict(scale_factor=0.5, mode="nearest-exact"), (2, 3, 9, 8)),
    ("UpsamplingNearest2d", (), dict(scale_factor=3), (2, 3, 4, 5)),
    ("UpsamplingNearest2d", ((5, 6),), {}, (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", (), dict(scale_factor=2), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", ((7, 3),), {}, (2, 3, 4, 5)),
    ("Flatten", (), {}, (2, 3, 4, 5)),
    ("Flatten", (0, 2), {}, (2, 3, 4, 5)),
    ("Unflatten", (1, (2, 3)), {}, (2, 6, 4)),
    ("Unflatten", (-1, [2, -1, 2]), {}, (3, 12)),
    ("Identity", (), {}, (2, 3)),
    ("Identity", (54, "unused"), dict(unused=1), (2, 3)),
    # padding
    ("ZeroPad1d", (2,), {}, (2, 3, 5)),
    ("ZeroPad1d", ((1, -1),), {}, (3, 5)),
    ("ZeroPad2d", ((1, 2, 0, 3),), {}, (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), {}, (1, 2, 3, 4, 5)),
    ("ConstantPad1d", ((2, 1), 1.5), {}, (2, 3, 5)),
    ("ConstantPad2d", (1, -2.0), {}, (3, 4, 5)),
    ("ConstantPad3d", ((1, 0, 2, 1, 0, 1), 0.5), {}, (1, 2, 3, 4, 5)),
    ("ReflectionPad1d", ((2, 3),), {}, (2, 3, 5)),
    ("ReflectionPad2d", (2,), {}, (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, 0, 3, -1),), {}, (3, 4, 5)),
    ("ReflectionPad3d", ((1, 2, 0, 1, 2, 1),), {}, (1, 2, 3, 4, 5)),
    ("ReplicationPad1d", (3,), {}, (2, 3, 5)),
    ("ReplicationPad2d", ((1, 2, 3, 0),), {}, (2, 3, 4, 5)),
    ("ReplicationPad3d", (2,), {}, (2, 3, 4, 5)),
    ("CircularPad1d", ((1, 2),), {}, (2, 3, 5)),
    ("CircularPad2d", (2,), {}, (2, 3, 4, 5)),
    ("CircularPad2d", ((0, -1, 2, 1),), {}, (3, 4, 5)),
    ("CircularPad3d", (1,), {}, (1, 2, 3, 4, 5)),
]

# Layers with no parameters whose behaviour the cases above leave out of the forward comparison.
CONTAINERS = {"Module", "Parameter", "Sequential", "ModuleList", "ModuleDict"}
LAYERS = sorted(name for name in nn.__all__ if isinstance(getattr(nn, name), type) and name not in CONTAINERS)


def _case_id(case):
    name, args, kwargs, _ = case
    settings = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(settings)})"


def make_pair(name, args=(), kwargs=None, seed=0):
    """The torch layer (seeded, every floating parameter and buffer random) and its pyconv twin
    loaded through ``state_dict()``; both in eval mode."""
    kwargs = kwargs or {}
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_layer = getattr(torch.nn, name)(*args, **kwargs).eval()
        layer = getattr(nn, name)(*args, **kwargs).eval()
    with torch.no_grad():
        for key, value in torch_layer.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5 if key.endswith("running_var") else torch.randn_like(value))
    layer.load_state_dict({k: v.numpy() for k, v in torch_layer.state_dict().items()})
    return torch_layer, layer


def run_both(torch_layer, layer, x, *extra):
    """Outputs of both layers for numpy input ``x`` (copied, so in-place layers cannot interfere)."""
    with warnings.catch_warnings(record=True) as torch_warnings:
        warnings.simplefilter("always")
        expected = torch_layer(torch.from_numpy(x.copy()), *extra)
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        actual = layer(x.copy(), *extra)
    # torch's own performance notes ("Triggered internally at ...") have no counterpart
    torch_messages = [str(w.message) for w in torch_warnings if "Triggered internally" not in str(w.message)]
    assert len(our_warnings) == len(torch_messages), ([str(w.message) for w in our_warnings], torch_messages)
    return actual, expected


def assert_same_output(actual, expected):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same_output(a, e)
    elif expected.dtype == torch.int64:
        np.testing.assert_array_equal(actual, expected.numpy())
        assert actual.dtype == np.int64
    else:
        assert_close(actual, expected.detach().numpy())


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, shape = case
    torch_layer, layer = make_pair(name, args, kwargs)
    assert repr(layer) == repr(torch_layer)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    for (key, value), (torch_key, torch_value) in zip(layer.state_dict().items(), torch_layer.state_dict().items()):
        assert value.shape == tuple(torch_value.shape) and value.dtype == torch_value.numpy().dtype, key
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    actual, expected = run_both(torch_layer, layer, x)
    assert_same_output(actual, expected)


def test_every_layer_has_a_case():
    covered = {case[0] for case in CASES} | {"MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"}
    assert set(LAYERS) - covered == set()


def test_every_issue_layer_exists():
    wanted = ("Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d "
              + " ".join(f"{kind}{d}d" for kind in ("MaxPool", "AvgPool", "LPPool", "MaxUnpool", "AdaptiveAvgPool",
                                                     "AdaptiveMaxPool", "BatchNorm", "ReflectionPad", "ReplicationPad",
                                                     "ConstantPad", "CircularPad", "ZeroPad") for d in (1, 2, 3))
              + " Linear GroupNorm LayerNorm Dropout Dropout2d ReLU ReLU6 LeakyReLU PReLU RReLU ELU SELU CELU"
              " Hardtanh Sigmoid Tanh Hardswish Hardsigmoid SiLU Mish GELU Softplus Softmax LogSoftmax PixelShuffle"
              " PixelUnshuffle ChannelShuffle Upsample Sequential ModuleList ModuleDict Identity Flatten Unflatten")
    assert [n for n in wanted.split() if n not in nn.__all__] == []


@pytest.mark.parametrize("name", LAYERS + ["Sequential", "ModuleList", "ModuleDict"])
def test_constructor_signature_matches_torch(name):
    """Same parameter names, kinds and defaults as torch's constructor, in the same order."""
    ours = inspect.signature(getattr(nn, name)).parameters
    theirs = inspect.signature(getattr(torch.nn, name)).parameters
    describe = lambda params: [(p.name, p.kind, p.default) for p in params.values()]  # noqa: E731
    assert describe(ours) == describe(theirs)


@pytest.mark.parametrize("name", ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "MaxPool2d", "MaxUnpool2d",
                                  "BatchNorm2d", "Linear", "PReLU", "Upsample", "Softmax"])
def test_forward_signature_matches_torch(name):
    ours = inspect.signature(getattr(nn, name).forward).parameters
    theirs = inspect.signature(getattr(torch.nn, name).forward).parameters
    assert [(p.name, p.default) for p in ours.values()] == [(p.name, p.default) for p in theirs.values()]


# ---------------------------------------------------------------- layers needing more than one input

@pytest.mark.parametrize("dims, kwargs, shape, with_output_size", [
    (1, dict(kernel_size=3), (2, 3, 9), False),  # the default output size is the pooled input's
    (1, dict(kernel_size=3), (2, 3, 10), True),
    (2, dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1)), (2, 3, 7, 6), True),
    (2, dict(kernel_size=2), (3, 6, 4), False),
    (3, dict(kernel_size=2), (1, 2, 4, 5, 6), True),
])
def test_max_unpool_matches_torch(dims, kwargs, shape, with_output_size):
    pool_args = dict(kwargs, return_indices=True)
    x = torch.from_numpy(np.random.default_rng(2).standard_normal(shape).astype(np.float32))
    pooled, indices = getattr(torch.nn, f"MaxPool{dims}d")(**pool_args)(x)
    output_size = list(shape[-dims:]) if with_output_size else None
    torch_unpool = getattr(torch.nn, f"MaxUnpool{dims}d")(**kwargs)
    unpool = getattr(nn, f"MaxUnpool{dims}d")(**kwargs)
    assert repr(unpool) == repr(torch_unpool)
    expected = torch_unpool(pooled, indices, output_size)
    actual = unpool(pooled.numpy(), indices.numpy(), output_size)
    assert_close(actual, expected.numpy())


@pytest.mark.parametrize("dims, kwargs, shape, output_size", [
    (1, dict(kernel_size=3, stride=2), (2, 3, 5), [12]),
    (1, dict(kernel_size=3, stride=3, padding=1), (3, 5), (3, 14)),
    (2, dict(kernel_size=3, stride=2, padding=1), (1, 3, 4, 5), (1, 2, 8, 10)),
    (2, dict(kernel_size=(3, 2), stride=(3, 2), dilation=(1, 2)), (2, 3, 4, 5), [13, 11]),
    (3, dict(kernel_size=2, stride=2), (1, 3, 2, 3, 2), (5, 6, 5)),
])
def test_conv_transpose_output_size_matches_torch(dims, kwargs, shape, output_size):
    torch_layer, layer = make_pair(f"ConvTranspose{dims}d", (shape[-dims - 1], 2), kwargs)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    expected = torch_layer(torch.from_numpy(x), output_size)
    actual = layer(x, output_size=output_size)
    assert actual.shape == tuple(expected.shape)
    assert_close(actual, expected.detach().numpy())


@pytest.mark.parametrize("output_size, message", [
    ([20], "valid sizes range from"),
    ([1, 2, 3, 4], "output_size must have 1 or 3 elements"),
])
def test_conv_transpose_bad_output_size(output_size, message):
    layer = nn.ConvTranspose1d(3, 2, 3, stride=2)
    x = np.zeros((1, 3, 5), np.float32)
    with pytest.raises(ValueError, match=message):
        layer(x, output_size=output_size)
    with pytest.raises(ValueError, match=message):
        torch.nn.ConvTranspose1d(3, 2, 3, stride=2)(torch.from_numpy(x), output_size=output_size)


# ---------------------------------------------------------------- training mode and inplace

@pytest.mark.parametrize("layer", [nn.BatchNorm1d(3), nn.BatchNorm2d(3), nn.BatchNorm3d(3), nn.Dropout(),
                                   nn.Dropout1d(0.1), nn.Dropout2d(), nn.Dropout3d(), nn.RReLU()],
                         ids=lambda layer: type(layer).__name__)
def test_training_mode_is_refused_where_it_changes_results(layer):
    shape = {"BatchNorm1d": (2, 3), "BatchNorm3d": (2, 3, 2, 2, 2), "Dropout1d": (2, 3, 4),
             "Dropout3d": (2, 3, 2, 2, 2)}.get(
        type(layer).__name__, (2, 3, 4, 4))
    x = np.ones(shape, np.float32)
    assert layer.training
    with pytest.raises(RuntimeError, match=r"\.eval\(\)"):
        layer(x)
    layer.eval()
    assert layer(x).shape == shape


def test_training_mode_runs_where_results_are_the_same():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4)).astype(np.float32)
    for name, args in [("Dropout", (0.0,)), ("BatchNorm2d", (3, 1e-5, 0.1, True, False))]:
        torch_layer, layer = make_pair(name, args)
        torch_layer.train()
        layer.train()
        actual, expected = run_both(torch_layer, layer, x)
        assert_close(actual, expected.detach().numpy())


def test_batch_statistics_need_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3, track_running_stats=False)(np.ones((1, 3), np.float32))


@pytest.mark.parametrize("name, args", [("ReLU", (True,)), ("LeakyReLU", (0.1, True)), ("ELU", (1.0, True)),
                                        ("Hardtanh", (-1.0, 1.0, True)), ("SiLU", (True,))])
def test_inplace_activation_writes_into_its_input(name, args):
    x = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    expected = getattr(torch.nn, name)(*args)(torch.from_numpy(x.copy())).numpy()
    out = getattr(nn, name)(*args)(x)
    assert out is x
    assert_close(x, expected)


def test_softmax_without_dim_warns_like_torch():
    x = np.ones((2, 3), np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = nn.Softmax()(x)
    assert_close(y, np.full((2, 3), 1 / 3, np.float32))


# ---------------------------------------------------------------- constructor errors

@pytest.mark.parametrize("build, message", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), "out_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), "groups to be >= 1"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "Invalid padding string"),
    (lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2), "not supported for strided convolutions"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "kernel_size to be an int or a tuple of 2 ints"),
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size to be >= 1"),
    (lambda: nn.Conv1d(3, 4, 3, padding=-1), "padding to be >= 0"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), 'Only "zeros" padding mode'),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding="same"), "padding to be an int or a tuple"),
    (lambda: nn.Linear(3, 4, device="cuda"), "CPU"),
    (lambda: nn.BatchNorm2d(3, dtype=np.int32), "dtype"),
    (lambda: nn.GroupNorm(4, 6), "must be divisible by num_groups"),
    (lambda: nn.Dropout(1.5), "between 0 and 1"),
    (lambda: nn.Hardtanh(1.0, -1.0), "must be greater than min_val"),
    (lambda: nn.Unflatten(1, 6), "tuple of ints"),
])
def test_constructor_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_factory_dtype_float64():
    torch_layer, _ = make_pair("Conv2d", (3, 4, 3), dict(dtype=torch.float64))
    layer = nn.Conv2d(3, 4, 3, dtype=np.float64).eval()
    assert layer.weight.dtype == np.float64
    layer.load_state_dict({k: v.numpy() for k, v in torch_layer.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((1, 3, 6, 6))
    assert_close(layer(x), torch_layer(torch.from_numpy(x)).detach().numpy())


@pytest.mark.parametrize("name, args", [("Conv2d", (16, 32, 3)), ("Conv1d", (8, 4, 5)), ("Linear", (64, 32)),
                                        ("ConvTranspose2d", (16, 8, 3))])
def test_default_initialisation_has_torch_bounds(name, args):
    """kaiming-uniform(a=sqrt(5)): weight and bias in U(+-1/sqrt(fan_in)), with fan_in from weight dims 1:."""
    np.random.seed(0)
    layer = getattr(nn, name)(*args)
    torch_layer = getattr(torch.nn, name)(*args)
    bound = 1 / np.sqrt(np.prod(layer.weight.shape[1:]))
    for ours, theirs in [(layer.weight, torch_layer.weight), (layer.bias, torch_layer.bias)]:
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float32
        assert np.abs(ours).max() <= bound
        if ours.size >= 32:
            assert np.abs(ours).max() > 0.9 * bound  # uniform over the whole range, not zeros
        assert np.abs(theirs.detach().numpy()).max() <= bound


# ---------------------------------------------------------------- random convolution layers

@st.composite
def conv_layers(draw):
    """A valid Conv{1,2,3}d configuration over every constructor argument, and an input shape for it."""
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4 if dims < 3 else 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(*[st.integers(0, 2)] * dims)))
    stride = 1 if padding == "same" else tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding_mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    size = tuple(draw(st.integers(3, 9 if dims < 3 else 6)) for _ in range(dims))
    if padding == "same":
        pads = [d * (k - 1) - d * (k - 1) // 2 for d, k in zip(dilation, kernel)]  # the larger side
    elif padding == "valid":
        pads = [0] * dims
    else:
        pads = list(padding) if isinstance(padding, tuple) else [padding] * dims
    if padding_mode == "reflect":
        assume(all(p < s for p, s in zip(pads, size)))
    if padding_mode == "circular":
        assume(all(p <= s for p, s in zip(pads, size)))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    assume(all(span <= s + 2 * p for span, s, p in zip(spans, size, pads)))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  bias=draw(st.booleans()), padding_mode=padding_mode)
    shape = ((draw(st.integers(1, 2)),) if draw(st.booleans()) else ()) + (in_channels,) + size
    return f"Conv{dims}d", (in_channels, out_channels, kernel), kwargs, shape


@settings(max_examples=200, deadline=None)
@given(conv_layers(), st.integers(0, 2**16))
def test_random_conv_layers_match_torch(case, seed):
    name, args, kwargs, shape = case
    torch_layer, layer = make_pair(name, args, kwargs, seed=seed)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    actual, expected = run_both(torch_layer, layer, x)
    assert_close(actual, expected.detach().numpy())


def test_non_contiguous_and_empty_inputs_match_torch():
    torch_layer, layer = make_pair("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="reflect", stride=2))
    x = np.random.default_rng(7).standard_normal((2, 9, 8, 3)).astype(np.float32).transpose(0, 3, 2, 1)[:, :, ::-1]
    expected = torch_layer(torch.from_numpy(x.copy()))
    assert_close(layer(x), expected.detach().numpy())
    torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.MaxPool2d(2)).eval()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.MaxPool2d(2)).eval()
    empty = np.zeros((0, 3, 6, 6), np.float32)
    assert model(empty).shape == tuple(torch_model(torch.from_numpy(empty)).shape) == (0, 4, 2, 2)
