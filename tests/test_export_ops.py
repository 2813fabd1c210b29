"""Export of the ops ordinary CNNs produce (one model using them all, compared output by output with torch
at two batch sizes), and export errors: unsupported ops listed with their source lines, batch-dependent
code, bad arguments."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

import pyconv  # noqa: E402
from pyconv.export import ExportError  # noqa: E402


class OpZoo(nn.Module):
    """x: (N, 4, 8, 8), v: (N, 4, 16), w: (N, 2, 4, 4, 4); returns one output per op (or op variant)."""

    def __init__(self):
        super().__init__()
        self.conv1d, self.conv3d = nn.Conv1d(4, 6, 3, padding=1), nn.Conv3d(2, 3, 3, padding=1)
        self.up1d, self.up3d = nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1), nn.ConvTranspose3d(3, 2, 2, stride=2)
        self.grouped, self.depthwise = nn.Conv2d(4, 6, 3, groups=2, bias=False), nn.Conv2d(4, 4, 3, groups=4)
        self.dilated, self.up2d = nn.Conv2d(4, 4, 3, dilation=2, padding=2), nn.ConvTranspose2d(4, 2, 3, 2, 1, 1)
        self.bn, self.gn, self.ln = nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.LayerNorm([8])
        self.linear, self.bn1d, self.prelu = nn.Linear(8, 5), nn.BatchNorm1d(5), nn.PReLU(4)
        with torch.no_grad():
            self.bn.running_mean.normal_(0, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x, v, w):
        out = [self.up1d(self.conv1d(v)), F.avg_pool3d(self.up3d(F.max_pool3d(self.conv3d(w), 2)), 2)]
        out += [F.relu(self.bn(self.grouped(x)[:, :4] + self.depthwise(x))), self.dilated(x) + x, self.up2d(x)]
        pooled, indices = F.max_pool2d(x, 2, return_indices=True)
        out += [F.max_unpool2d(pooled, indices, 2), F.adaptive_avg_pool2d(x, (3, 5)), F.adaptive_max_pool2d(x, 3),
                F.avg_pool1d(v, 3, 2, 1), F.max_pool1d(v, 2), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                F.max_pool2d(x, 3, 2, 1, ceil_mode=True)]
        out += [self.gn(x), self.ln(x), self.linear(x), self.bn1d(self.linear(x.mean([2])[:, :, :8].flatten(1)[:, :8])),
                self.prelu(x), x @ x.transpose(2, 3), torch.addmm(x[:, 0, 1], x[:, 0, 0], x[0, 0].t())]
        for f in (F.relu, F.relu6, F.elu, F.selu, F.celu, F.leaky_relu, F.gelu, torch.sigmoid, torch.tanh,
                  F.hardswish, F.hardsigmoid, F.silu, F.mish, F.softplus, F.hardtanh,
                  lambda t: F.gelu(t, approximate="tanh"), lambda t: F.log_softmax(t, 1), lambda t: F.softmax(t, -1),
                  lambda t: t.clamp(-0.5, 0.5), lambda t: t.clamp(min=0.1), lambda t: F.dropout(t, 0.3, False),
                  torch.exp, torch.abs, torch.neg, lambda t: torch.sqrt(t.abs()), lambda t: torch.rsqrt(t.abs() + 1),
                  lambda t: torch.log(t.abs() + 1), torch.reciprocal, lambda t: t ** 2):
            out.append(f(x))
        se = torch.sigmoid(x.mean((2, 3), keepdim=True))   # squeeze-and-excitation scaling
        out += [x * se, x - 1.5, x / se, 2 - x, x + se, torch.maximum(x, se), torch.minimum(x, 0.5 * x), 3 * x]
        x1, x2 = x.chunk(2, dim=1)
        parts = torch.split(x, [1, 3], dim=1)
        out += [torch.cat([x2, x1], 1), parts[1] - parts[0], x.flatten(1), x.permute(0, 2, 3, 1), x.transpose(2, 3),
                x[:, :1].squeeze(1), x.unsqueeze(2), x[:, :1].expand(-1, 4, -1, -1), x[:, 1], x[..., 2:7:2],
                x.view(x.shape[0], 2, 2, 8, 8).transpose(1, 2).reshape(x.shape[0], -1, 8, 8)]
        out += [x.sum(1), x.mean((2, 3)), x.amax((2, 3)), x.amin(1, keepdim=True), x.std(1), x.sum()]
        out += [F.pixel_shuffle(x, 2), F.pixel_unshuffle(x, 2), F.channel_shuffle(x, 2),
                F.interpolate(x, scale_factor=2, mode="nearest"), F.interpolate(x, size=(5, 7), mode="bilinear"),
                F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
                F.interpolate(v, scale_factor=1.5, mode="linear"), F.interpolate(w, scale_factor=2, mode="trilinear")]
        out += [F.pad(x, (1, 2, 2, 1), mode=mode) for mode in ("constant", "reflect", "replicate", "circular")]
        out += [F.pad(x, (1, 1), value=0.5), F.pad(v, (2, 1), mode="reflect")]
        return tuple(out)


def _inputs(batch, seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((batch,) + shape).astype(np.float32) for shape in ((4, 8, 8), (4, 16),
                                                                                         (2, 4, 4, 4)))


def test_ordinary_cnn_ops_equal_torch(tmp_path):
    torch.manual_seed(0)
    zoo = OpZoo().eval()
    pyconv.export(zoo, tuple(torch.from_numpy(a) for a in _inputs(1, 0)), tmp_path / "zoo.pyconv")
    model = pyconv.load(tmp_path / "zoo.pyconv", debug=True)
    for batch in (1, 3):
        arrays = _inputs(batch, batch)
        with torch.no_grad():
            expected = [t.numpy() for t in zoo(*(torch.from_numpy(a) for a in arrays))]
        actual = model(*arrays)
        assert len(actual) == len(expected)
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert a.shape == e.shape, f"output {index}: shape {a.shape} != {e.shape}"
            np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(e).max()),
                                       err_msg=f"output {index}")


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        z = torch.cumsum(y, 1)
        return torch.where(y > 0, y, z).sort(1)[0] + torch.erf(y)


def test_unsupported_ops_listed_in_one_error_with_source_lines():
    with pytest.raises(ExportError) as error:
        pyconv.from_torch(Unsupported().eval(), torch.randn(1, 3, 8, 8))
    message = str(error.value)
    assert "5 operation(s) of the model are not supported" in message
    for op, line in (("cumsum", "z = torch.cumsum(y, 1)"), ("gt.Scalar", "return torch.where(y > 0, y, z)"),
                     ("where.self", "torch.where"), ("sort", ".sort(1)"), ("erf", "torch.erf(y)")):
        assert any(op in row and "test_export_ops.py:" in row and line in row for row in message.splitlines()), op


class BatchFixed(nn.Module):
    def forward(self, x):
        return x.reshape(2, -1)


def test_batch_dependent_model():
    with pytest.raises(ExportError, match="depends on the batch size.*dynamic_batch=False"):
        pyconv.from_torch(BatchFixed().eval(), torch.randn(2, 3))
    model = pyconv.from_torch(BatchFixed().eval(), torch.randn(2, 3), dynamic_batch=False)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(model(x), x.reshape(2, -1))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        model(np.zeros((4, 3), np.float32))


def test_export_arguments_checked(tmp_path):
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="training mode.*eval"):
        pyconv.export(conv.train(), torch.randn(1, 3, 8, 8), tmp_path / "m.pyconv")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pyconv.export(lambda x: x, torch.randn(1, 3, 8, 8), tmp_path / "m.pyconv")
    with pytest.raises(TypeError, match="float32 tensors"):
        pyconv.from_torch(conv.eval(), torch.zeros(1, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="same batch size"):
        pyconv.from_torch(conv.eval(), (torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)))
    model = pyconv.from_torch(conv, np.ones((1, 3, 8, 8), np.float32))   # numpy examples are accepted
    assert model.input_names == ("input",) and model(np.ones((2, 3, 8, 8), np.float32)).shape == (2, 4, 6, 6)


class NotTensorOutputs(nn.Module):
    def forward(self, x):
        return x + 1, x.shape[0]


def test_outputs_must_be_tensors():
    with pytest.raises(ExportError, match=r"output 1 \(a size or number computed at run time, not a tensor\)"):
        pyconv.from_torch(NotTensorOutputs().eval(), torch.randn(2, 3))


class Linears(nn.Module):
    """Linear layers on (N, in) and (N, L, in) inputs, fc's weights used by both calls."""

    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(6, 5), nn.Linear(5, 3, bias=False)

    def forward(self, x, seq):
        return self.head(F.relu(self.fc(x))), self.fc(seq)


def test_linear_runs_as_one_image_convolution():
    torch.manual_seed(0)
    module = Linears().eval()
    model = pyconv.from_torch(module, (torch.randn(1, 6), torch.randn(1, 4, 6)))
    ops = [node.op for node in model.graph.nodes]
    assert ops.count("conv") == 3 and "linear" not in ops
    assert {name: array.shape for name, array in model.graph.constants.items()} == {
        "fc.weight": (5, 6, 1, 1), "fc.bias": (5,), "head.weight": (3, 5, 1, 1)}  # each once, as conv weights
    assert "fc.weight" in model.graph.parameters
    for batch in (1, 5):
        x, seq = torch.randn(batch, 6), torch.randn(batch, 4, 6)
        with torch.no_grad():
            expected = module(x, seq)
        for actual, wanted in zip(model(x.numpy(), seq.numpy()), expected):
            np.testing.assert_allclose(actual, wanted.numpy(), rtol=1e-5, atol=1e-6)
