"""pyconv.nn.Module mechanics against torch.nn.Module: registration, traversal, state dicts, modes,
containers, repr, prepared weights, dtype conversion, nn.init."""
import copy
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import pyconv.nn as nn
from tolerances import assert_close

torch = pytest.importorskip("torch")


def build_nested(nn, ones):
    """A model using every registration path; ``ones(*shape)`` makes the framework's float32 array."""

    class Block(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(channels)
            self.gamma = nn.Parameter(ones(channels, 1, 1))
            self.register_buffer("offset", ones(channels, 1, 1))
            self.register_buffer("scratch", ones(2), persistent=False)

        def forward(self, x):
            return self.bn(self.conv(x)) * self.gamma + self.offset

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 4, 3)), ("act", nn.ReLU())]))
            self.blocks = nn.ModuleList([Block(4), Block(4)])
            self.heads = nn.ModuleDict({"pool": nn.AdaptiveAvgPool2d(1), "flat": nn.Flatten()})
            self.fc = nn.Linear(4, 5)
            self.shared = self.blocks[0]  # the same module under two names
            self.empty = None

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.fc(self.heads["flat"](self.heads["pool"](x)))

    return Net()


def np_ones(*shape):
    return np.ones(shape, np.float32)


def make_nets(seed=0):
    torch.manual_seed(seed)
    theirs = build_nested(torch.nn, torch.ones).eval()
    with torch.no_grad():
        for key, value in theirs.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5)
    ours = build_nested(nn, np_ones).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


# ---------------------------------------------------------------- traversal and state dict

def test_state_dict_keys_order_shapes_and_dtypes_equal_torch():
    theirs, ours = make_nets()
    sd, torch_sd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(torch_sd)
    for key in sd:
        assert isinstance(sd[key], np.ndarray) and not isinstance(sd[key], nn.Parameter)
        assert sd[key].dtype == torch_sd[key].numpy().dtype and sd[key].shape == tuple(torch_sd[key].shape), key
        np.testing.assert_array_equal(sd[key], torch_sd[key].numpy())
    assert sd["blocks.0.bn.num_batches_tracked"].dtype == np.int64 and sd["blocks.0.bn.num_batches_tracked"].ndim == 0
    assert dict(sd._metadata) == dict(torch_sd._metadata)


def test_traversal_names_equal_torch():
    theirs, ours = make_nets()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    own = [n for n, _ in ours.named_parameters(recurse=False)]
    assert own == [n for n, _ in theirs.named_parameters(recurse=False)]
    assert all(isinstance(p, nn.Parameter) for p in ours.parameters())
    assert ours.get_submodule("blocks.1.bn") is ours.blocks[1].bn
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        ours.get_submodule("blocks.nope")


def test_forward_equals_torch():
    theirs, ours = make_nets()
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach().numpy())


def test_load_state_dict_returns_torch_result():
    theirs, ours = make_nets()
    result = ours.load_state_dict(ours.state_dict())
    assert result == ([], []) and repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []


def test_missing_and_unexpected_keys_like_torch():
    theirs, ours = make_nets()
    sd = {k: v.numpy() for k, v in theirs.state_dict().items()}
    del sd["fc.bias"], sd["blocks.1.bn.running_var"]
    sd["fc.extra"] = np.zeros(3, np.float32)
    sd["nothing.weight"] = np.zeros(3, np.float32)
    torch_sd = {k: torch.from_numpy(v) for k, v in sd.items()}
    expected = theirs.load_state_dict(torch_sd, strict=False)
    result = ours.load_state_dict(sd, strict=False)
    assert result.missing_keys == expected.missing_keys == ["blocks.1.bn.running_var", "fc.bias"]
    assert result.unexpected_keys == expected.unexpected_keys
    assert repr(result) == repr(expected)
    with pytest.raises(RuntimeError) as error:
        ours.load_state_dict(sd)
    with pytest.raises(RuntimeError) as torch_error:
        theirs.load_state_dict(torch_sd)
    assert str(error.value) == str(torch_error.value)
    assert 'Missing key(s) in state_dict: "blocks.1.bn.running_var", "fc.bias"' in str(error.value)
    assert 'Unexpected key(s) in state_dict: "nothing.weight", "fc.extra"' in str(error.value)


@pytest.mark.parametrize("strict", [True, False])
def test_shape_mismatch_names_key_and_both_shapes(strict):
    _, ours = make_nets()
    sd = ours.state_dict()
    sd["fc.weight"] = np.zeros((5, 3), np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc\.weight: copying a param with shape \(5, 3\) "
                                           r"from checkpoint, the shape in current model is \(5, 4\)"):
        ours.load_state_dict(sd, strict=strict)


def test_non_array_value_is_refused():
    conv = nn.Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError, match='While copying the parameter named "weight"'):
        conv.load_state_dict({"weight": "oops", "bias": np.zeros(1, np.float32)})


def test_missing_num_batches_tracked_is_accepted_without_metadata_as_in_torch():
    """A plain dict (e.g. from .npz or .safetensors) may lack num_batches_tracked; torch fills it in."""
    torch_bn, bn = torch.nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    assert bn.load_state_dict(sd) == torch_bn.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    with_metadata = OrderedDict(sd)
    with_metadata._metadata = OrderedDict([("", {"version": 2})])
    assert bn.load_state_dict(with_metadata, strict=False).missing_keys == ["num_batches_tracked"]


def test_load_accepts_torch_tensors_and_casts_to_the_parameter_dtype():
    theirs, ours = make_nets(seed=3)
    ours.load_state_dict(theirs.state_dict())  # CPU tensors convert through numpy
    np.testing.assert_array_equal(ours.fc.weight, theirs.fc.weight.detach().numpy())
    sd = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in ours.state_dict().items()}
    weight = ours.fc.weight
    ours.load_state_dict(sd)
    assert ours.fc.weight is weight and weight.dtype == np.float32  # copied in place, as torch's copy_


def test_assign_keeps_the_given_arrays():
    conv = nn.Conv2d(2, 3, 1)
    weight = np.ones((3, 2, 1, 1), np.float64)
    conv.load_state_dict({"weight": weight, "bias": np.zeros(3)}, assign=True)
    assert conv.weight.dtype == np.float64 and np.shares_memory(conv.weight, weight)
    assert isinstance(conv.weight, nn.Parameter)


def test_zero_dim_parameter_takes_a_one_element_value_as_torch():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(np.array(1.0, np.float32))

    module = Scale()
    module.load_state_dict({"s": np.array([3.0], np.float32)})
    assert module.s.shape == () and module.s == 3.0


# ---------------------------------------------------------------- registration

def test_attribute_registration():
    m = nn.Module()
    m.weight = nn.Parameter(np.zeros(3, np.float32))
    m.child = nn.ReLU()
    m.register_buffer("stat", np.ones(2, np.float32))
    m.plain = np.zeros(2)  # a plain array attribute is neither parameter nor buffer (as a tensor in torch)
    assert list(m.state_dict()) == ["weight", "stat"]
    assert list(m._modules) == ["child"]
    m.weight = np.ones(3, np.float32)  # reassigning a parameter with an array keeps it a parameter
    assert isinstance(m.weight, nn.Parameter) and list(m.state_dict()) == ["weight", "stat"]
    m.weight = None
    assert list(m.state_dict()) == ["stat"] and m.weight is None
    m.stat = np.zeros(2, np.float32)
    np.testing.assert_array_equal(m.state_dict()["stat"], 0)
    del m.stat, m.child
    assert list(m.state_dict()) == [] and not hasattr(m, "child")
    m.child = nn.ReLU()
    m.child = nn.Parameter(np.zeros(1, np.float32))  # a new kind replaces the old registration, as torch
    assert list(m._modules) == [] and list(m._parameters) == ["weight", "child"]


@pytest.mark.parametrize("action, error, message", [
    (lambda m: setattr(m, "conv", 3), TypeError, "as child module 'conv'"),
    (lambda m: setattr(m.conv, "weight", "w"), TypeError, "as parameter 'weight'"),
    (lambda m: setattr(m.bn, "running_mean", [1.0]), TypeError, "as buffer 'running_mean'"),
    (lambda m: m.register_buffer("a.b", np.zeros(1)), KeyError, "contain"),
    (lambda m: m.register_buffer("conv", np.zeros(1)), KeyError, "already exists"),
    (lambda m: m.register_buffer("x", 3), TypeError, "numpy array or None"),
    (lambda m: m.register_parameter("p", np.zeros(1)), TypeError, "Parameter or None"),
    (lambda m: m.add_module("", nn.ReLU()), KeyError, "empty string"),
    (lambda m: m.add_module("x", 3), TypeError, "is not a Module subclass"),
    (lambda m: m.nothing, AttributeError, "has no attribute 'nothing'"),
    (lambda m: m.train("yes"), ValueError, "training mode is expected to be boolean"),
    (lambda m: m.to(device="cuda"), ValueError, "CPU"),
    (lambda m: m.to(np.int32), TypeError, "dtype"),
])
def test_registration_errors(action, error, message):
    m = nn.Module()
    m.conv = nn.Conv2d(1, 1, 1)
    m.bn = nn.BatchNorm2d(1)
    with pytest.raises(error, match=message):
        action(m)


def test_assigning_before_init_is_an_error():
    class Early(nn.Module):
        def __init__(self):
            self.p = nn.Parameter(np.zeros(1))
            super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_missing_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)
    with pytest.raises(NotImplementedError):
        nn.ModuleList([nn.ReLU()])(1)


def test_shared_parameters_are_listed_once_like_torch():
    def tied(nn):
        model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        model[1].weight = model[0].weight
        return model

    ours, theirs = tied(nn), tied(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_parameter_is_an_array_whose_arithmetic_gives_arrays():
    p = nn.Parameter(np.arange(3, dtype=np.float32))
    assert isinstance(p, np.ndarray) and isinstance(p, nn.Parameter)
    assert type(p * 2) is np.ndarray and type(p + p) is np.ndarray and type(np.exp(p)) is np.ndarray
    assert type(p.sum()) is np.float32
    assert repr(p).startswith("Parameter containing:\narray([0., 1., 2.]")
    assert np.shares_memory(p, nn.Parameter(p)) and nn.Parameter().shape == (0,)
    assert type(pickle.loads(pickle.dumps(p))) is nn.Parameter


# ---------------------------------------------------------------- modes, dtypes, copies

def test_train_and_eval_propagate():
    _, ours = make_nets()
    assert ours.train() is ours and all(m.training for m in ours.modules())
    assert ours.eval() is ours and not any(m.training for m in ours.modules())
    ours.train(False)
    assert not ours.blocks[1].bn.training


def test_double_converts_floating_state_and_matches_torch():
    theirs, ours = make_nets()
    assert ours.double() is ours and theirs.double() is theirs
    for key, value in ours.state_dict().items():
        assert value.dtype == theirs.state_dict()[key].numpy().dtype, key
    assert ours.blocks[0].bn.num_batches_tracked.dtype == np.int64
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6))
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach().numpy())
    assert ours.float().fc.weight.dtype == np.float32
    assert ours.to("cpu") is ours and ours.cpu() is ours and ours.to(dtype=np.float64).fc.bias.dtype == np.float64


def test_float32_model_refuses_float64_input_with_a_clear_error():
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2d(1, 1, 1)(np.zeros((1, 1, 2, 2)))


def test_pickle_and_deepcopy_keep_outputs():
    _, nested = make_nets()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(36, 2)).eval()
    x = np.random.default_rng(2).standard_normal((1, 3, 5, 5)).astype(np.float32)
    for original, clone in [(model, pickle.loads(pickle.dumps(model))), (model, copy.deepcopy(model)),
                            (nested, copy.deepcopy(nested))]:
        np.testing.assert_array_equal(clone(x), original(x))
        assert not np.shares_memory(next(clone.parameters()), next(original.parameters()))


def test_apply_visits_children_first():
    _, ours = make_nets()
    seen = []
    ours.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Conv2d"


# ---------------------------------------------------------------- prepared weights

def test_prepared_weights_are_built_once_and_rebuilt_after_changes():
    conv = nn.Conv2d(2, 3, 3, padding=1).eval()
    calls = []
    original = type(conv)._prepare

    def counting_prepare(self):
        calls.append(1)
        return original(self)

    conv._prepare = counting_prepare.__get__(conv)
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 5)).astype(np.float32)
    first = conv(x)
    conv(x)
    assert len(calls) == 1
    conv.weight = np.zeros((3, 2, 3, 3), np.float32)  # reassigned: rebuilt
    np.testing.assert_array_equal(conv(x), np.broadcast_to(conv.bias.reshape(1, 3, 1, 1), first.shape))
    assert len(calls) == 2
    conv.load_state_dict({"weight": np.ones((3, 2, 3, 3), np.float32), "bias": np.zeros(3, np.float32)})
    conv(x)
    assert len(calls) == 3
    conv.weight[...] = 2  # edited in place: the documented reset
    conv._reset_prepared()
    conv(x)
    assert len(calls) == 4
    conv.double()
    conv(x.astype(np.float64))
    assert len(calls) == 5


# ---------------------------------------------------------------- containers

def test_sequential_indexing_slicing_and_editing_like_torch():
    def make(nn):
        return nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity())

    ours, theirs = make(nn), make(torch.nn)
    assert len(ours) == 4 and type(ours[1]).__name__ == "Tanh" and type(ours[-1]).__name__ == "Identity"
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert repr(ours[1:3]) == repr(theirs[1:3]) and isinstance(ours[1:3], nn.Sequential)
    assert list(ours[::2]._modules) == list(theirs[::2]._modules) == ["0", "2"]
    with pytest.raises(IndexError):
        ours[4]
    for seq, lib in ((ours, nn), (theirs, torch.nn)):
        seq.append(lib.ReLU6())
        seq.insert(1, lib.ELU())
        seq.extend([lib.SiLU()])
        del seq[0]
        seq.pop(2)
        seq[0] = lib.GELU()
    assert repr(ours) == repr(theirs)
    assert repr(ours + ours[:1]) == repr(theirs + theirs[:1])
    assert repr(ours[:2] * 2) == repr(theirs[:2] * 2)


def test_sequential_ordered_dict_form_and_forward():
    def make(nn):
        return nn.Sequential(OrderedDict([("conv", nn.Conv2d(2, 3, 3)), ("bn", nn.BatchNorm2d(3)), ("act", nn.ReLU())]))

    torch.manual_seed(0)
    theirs = make(torch.nn).eval()
    ours = make(nn).eval()
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs) and ours.conv is ours[0]
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 5)).astype(np.float32)
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach().numpy())


def test_module_list_like_torch():
    def make(nn):
        layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        layers.append(nn.ReLU())
        layers.extend([nn.ReLU(), nn.Tanh()])
        layers += [nn.Linear(2, 2)]
        layers.insert(0, nn.Tanh())
        del layers[1]
        return layers

    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)  # includes torch's "(1-2): 2 x Linear(...)" compression
    assert len(ours) == len(theirs) == 7 and type(ours[-1]).__name__ == "Linear"
    assert repr(ours[1:4]) == repr(theirs[1:4]) and repr(ours + ours) == repr(theirs + theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    with pytest.raises(IndexError, match="out of range"):
        ours[7]


def test_module_dict_like_torch():
    def make(nn):
        heads = nn.ModuleDict({"a": nn.Linear(2, 3)})
        heads.update([("b", nn.ReLU()), ("c", nn.Conv2d(1, 1, 1))])
        heads["d"] = nn.Tanh()
        heads.pop("b")
        return heads

    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs) and list(ours) == list(theirs) == ["a", "c", "d"]
    assert "c" in ours and "b" not in ours and len(ours) == 3
    assert list(ours.keys()) == list(theirs.keys()) and list(ours.state_dict()) == list(theirs.state_dict())
    assert [type(v).__name__ for v in ours.values()] == [type(v).__name__ for _, v in theirs.items()]
    with pytest.raises(ValueError, match="has length 3"):
        ours.update([("x", nn.ReLU(), 1)])


def test_nested_repr_equals_torch():
    theirs, ours = make_nets()
    assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------- nn.init

def test_calculate_gain_matches_torch():
    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "selu"):
        assert nn.init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)


@pytest.mark.parametrize("name, kwargs, expected_std", [
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2 / (32 * 9))),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), 1 / math.sqrt(16 * 9) / math.sqrt(3)),
    ("xavier_uniform_", {}, math.sqrt(2 / (16 * 9 + 32 * 9))),
    ("xavier_normal_", dict(gain=2.0), 2 * math.sqrt(2 / (16 * 9 + 32 * 9))),
    ("normal_", dict(mean=0.0, std=0.01), 0.01),
    ("trunc_normal_", {}, 0.8796),  # std of N(0, 1) truncated to [a, b] = [-2, 2]
])
def test_init_distributions(name, kwargs, expected_std):
    np.random.seed(0)
    weight = nn.Parameter(np.zeros((32, 16, 3, 3), np.float32))
    assert getattr(nn.init, name)(weight, **kwargs) is weight
    assert abs(weight.std() - expected_std) < 0.05 * expected_std
    if name == "trunc_normal_":
        assert np.abs(weight).max() <= 2.0


def test_init_constant_fills():
    w = np.zeros(4, np.float32)
    nn.init.constant_(w, 3)
    np.testing.assert_array_equal(w, 3)
    np.testing.assert_array_equal(nn.init.ones_(w), 1)
    np.testing.assert_array_equal(nn.init.zeros_(w), 0)
    np.testing.assert_array_equal(nn.init.uniform_(w, 2, 2), 2)


# ---------------------------------------------------------------- odds and ends

def test_functional_alias_is_pyconv_functional():
    import pyconv
    import pyconv.nn.functional as F

    assert F is pyconv.functional and nn.functional is pyconv.functional
    from pyconv.nn.functional import conv2d
    assert conv2d is pyconv.functional.conv2d


def test_state_dict_keep_vars_returns_the_parameters():
    conv = nn.Conv2d(1, 2, 1)
    sd = conv.state_dict(keep_vars=True)
    assert sd["weight"] is conv.weight and isinstance(sd["weight"], nn.Parameter)
    plain = conv.state_dict()
    assert type(plain["weight"]) is np.ndarray and np.shares_memory(plain["weight"], conv.weight)


def test_read_only_parameters_are_replaced_when_loading():
    conv = nn.Conv2d(1, 2, 1)
    frozen = np.zeros((2, 1, 1, 1), np.float32)
    frozen.flags.writeable = False
    conv.load_state_dict({"weight": frozen, "bias": np.zeros(2, np.float32)}, assign=True)
    conv.load_state_dict({"weight": np.ones((2, 1, 1, 1)), "bias": np.ones(2)})
    assert conv.weight.dtype == np.float32 and (conv.weight == 1).all() and (frozen == 0).all()


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="dict-like"):
        nn.Linear(2, 2).load_state_dict([("weight", np.zeros((2, 2)))])
