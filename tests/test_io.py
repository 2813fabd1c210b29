"""pyconv.io on valid files: torch.save (zip and legacy), safetensors, npz, round trips."""
import io
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import pyconv
from pyconv.io import CheckpointError

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

FORMATS = ["zip", "legacy"]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128,
          torch.uint16, torch.uint32, torch.uint64]


def save(obj, path, fmt, **kwargs):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"), **kwargs)
    return path


def expected(tensor):
    """What pyconv returns for a torch tensor: bfloat16 widened to float32."""
    tensor = tensor.detach().resolve_neg().resolve_conj()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):     # no numpy() for these
        return tensor.to(torch.int64).numpy().astype(str(tensor.dtype).replace("torch.", ""))
    return tensor.numpy()


def assert_same(array, tensor):
    want = expected(tensor)
    assert isinstance(array, np.ndarray)
    assert array.dtype == want.dtype and array.shape == want.shape
    np.testing.assert_array_equal(array, want)


def random_tensor(dtype, shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype) if not dtype.is_complex \
            else torch.randn(shape, generator=generator, dtype=dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    low, high = (0, 256) if dtype == torch.uint8 else (-100, 100) if dtype.is_signed else (0, 60000)
    return torch.randint(low, high, shape, generator=generator).to(dtype)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype(tmp_path, fmt, dtype):
    tensors = {"a": random_tensor(dtype, (3, 5)), "scalar": random_tensor(dtype, (), seed=1),
               "empty": random_tensor(dtype, (0, 4))}
    loaded = pyconv.load_checkpoint(save(tensors, tmp_path / "t.pth", fmt))
    assert list(loaded) == list(tensors)
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)


def test_bfloat16_is_widened_exactly(tmp_path):
    values = torch.tensor([1.0, -2.5, 3.140625, 1e38, -0.0, float("inf"), float("nan")], dtype=torch.bfloat16)
    loaded = pyconv.load_state_dict(save({"b": values}, tmp_path / "b.pth", "zip"))["b"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.float().numpy())
    assert np.signbit(loaded[4])


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_and_shared_storages(tmp_path, fmt):
    base = torch.randn(5, 6)
    tensors = OrderedDict(
        base=base, transposed=base.t(), block=base[1:4, 2:5], strided=base[::2, 1::3], row=base[3],
        element=base[4, 5], flat_tail=base.view(-1)[7:], expanded=torch.randn(3).expand(4, 3),
        negated=base._neg_view(), conjugated=torch.randn(2, dtype=torch.complex64).conj(),
        permuted=torch.randn(2, 3, 4).permute(2, 0, 1))
    loaded = pyconv.load_checkpoint(save(tensors, tmp_path / "v.pth", fmt))
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)
    # views of one storage share memory, as after torch.load; writes show through
    assert np.shares_memory(loaded["base"], loaded["transposed"])
    assert np.shares_memory(loaded["base"], loaded["block"])
    assert loaded["transposed"].strides == (4, 24)
    loaded["base"][1, 2] = 123.0
    assert loaded["transposed"][2, 1] == 123.0 and loaded["block"][0, 0] == 123.0
    # an expanded (stride 0) tensor is a read-only view; the rest are writable
    assert not loaded["expanded"].flags.writeable
    assert loaded["block"].flags.writeable


@pytest.mark.parametrize("fmt", FORMATS)
def test_module_state_dict(tmp_path, fmt):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4))
    model(torch.randn(2, 3, 3, 3))                  # moves the running statistics
    state_dict = model.state_dict()
    loaded = pyconv.load_state_dict(save(state_dict, tmp_path / "m.pth", fmt))
    assert isinstance(loaded, OrderedDict)
    assert list(loaded) == list(state_dict)
    for key, tensor in state_dict.items():
        assert_same(loaded[key], tensor)
    assert loaded["1.num_batches_tracked"].shape == () and loaded["1.num_batches_tracked"] == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_and_tensors_with_attributes(tmp_path, fmt):
    weight = torch.nn.Parameter(torch.randn(3, 2))
    frozen = torch.nn.Parameter(torch.randn(2), requires_grad=False)
    tagged = torch.randn(4)
    tagged.note = "python attribute"               # pickled through _rebuild_from_type_v2
    loaded = pyconv.load_checkpoint(save({"w": weight, "f": frozen, "t": tagged}, tmp_path / "p.pth", fmt))
    assert_same(loaded["w"], weight)
    assert_same(loaded["f"], frozen)
    assert_same(loaded["t"], tagged)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nested_checkpoint(tmp_path, fmt):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3,
                  "best": 0.25, "name": "run-7", "shape": torch.Size([2, 3]), "dtype": torch.float16,
                  "device": torch.device("cuda", 1), "tags": {"a", "b"}, "frozen": frozenset([1]),
                  "raw": b"\x00\xffbytes", "pair": (1, [2.5, None]), "complex": 1 + 2j, "flag": True}
    path = save(checkpoint, tmp_path / "c.pth", fmt)
    loaded = pyconv.load_checkpoint(path)
    assert type(loaded) is dict and list(loaded) == list(checkpoint)
    for key in ("epoch", "best", "name", "tags", "frozen", "raw", "pair", "complex", "flag"):
        assert loaded[key] == checkpoint[key] and type(loaded[key]) is type(checkpoint[key])
    assert loaded["shape"] == (2, 3) and type(loaded["shape"]) is tuple
    assert loaded["dtype"] == "torch.float16" and loaded["device"] == "cuda:1"
    state = loaded["optimizer"]["state"][0]
    assert_same(state["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    state_dict = pyconv.load_state_dict(path)
    assert list(state_dict) == ["weight", "bias"]
    assert_same(state_dict["bias"], model.bias)


def test_state_dict_is_found_in_a_checkpoint(tmp_path):
    sd = {"w": torch.ones(2)}
    for key in ("state_dict", "model_state_dict", "net", "anything"):
        path = save({key: sd, "epoch": 1, "optimizer": {"state": {}, "param_groups": []}},
                    tmp_path / f"{key}.pth", "zip")
        assert list(pyconv.load_state_dict(path)) == ["w"]
    # a named key wins over another state dict
    path = save({"ema": {"w": torch.zeros(2)}, "model": sd}, tmp_path / "two.pth", "zip")
    np.testing.assert_array_equal(pyconv.load_state_dict(path)["w"], [1, 1])


def test_state_dict_errors_name_the_file(tmp_path):
    ambiguous = save({"a": {"w": torch.ones(1)}, "b": {"w": torch.ones(1)}}, tmp_path / "amb.pth", "zip")
    with pytest.raises(CheckpointError, match=r"amb\.pth.*several state dicts.*'a', 'b'"):
        pyconv.load_state_dict(ambiguous)
    none = save({"epoch": 3, "losses": [1.0]}, tmp_path / "none.pth", "zip")
    with pytest.raises(CheckpointError, match=r"none\.pth.*no state dict.*'epoch', 'losses'"):
        pyconv.load_state_dict(none)
    a_list = save([torch.ones(1)], tmp_path / "list.pth", "zip")
    with pytest.raises(CheckpointError, match=r"list\.pth.*holds a list"):
        pyconv.load_state_dict(a_list)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_protocols(tmp_path, fmt, protocol):
    tensors = OrderedDict((f"layer{i}.weight", torch.randn(i + 1, 2)) for i in range(4))
    tensors["shared"] = tensors["layer3.weight"][1:]
    loaded = pyconv.load_state_dict(save(tensors, tmp_path / "p.pth", fmt, pickle_protocol=protocol))
    assert list(loaded) == list(tensors)
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)


def test_archive_folder_name_varies(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buffer)              # folder 'archive'
    (tmp_path / "renamed.pt").write_bytes(buffer.getvalue())
    torch.save({"w": torch.arange(3.0)}, tmp_path / "weights.bin")   # folder 'weights'
    for name, folder in (("renamed.pt", "archive/"), ("weights.bin", "weights/")):
        assert zipfile.ZipFile(tmp_path / name).namelist()[0].startswith(folder)
        np.testing.assert_array_equal(pyconv.load_state_dict(tmp_path / name)["w"], [0, 1, 2])


def rewrite_zip(path, out, change):
    """Copy the zip ``path`` to ``out``, passing each member through ``change(name, data)``."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                target.writestr(info.filename, data, compress_type=info.compress_type)
    return out


def test_big_endian_archive(tmp_path):
    tensors = {"f": torch.randn(3, 2), "h": torch.randn(4).half(), "b": torch.randn(3).bfloat16(),
               "i": torch.arange(-3, 3), "t": torch.randn(2, 3).t()}
    path = save(tensors, tmp_path / "le.pth", "zip")
    storage_itemsize = {"0": 4, "1": 2, "2": 2, "3": 8, "4": 4}   # one storage per tensor, in order

    def to_big_endian(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        key = name.rsplit("/data/", 1)[-1] if "/data/" in name else None
        if key in storage_itemsize:
            return np.frombuffer(data, f"<u{storage_itemsize[key]}").byteswap().tobytes()
        return data

    loaded = pyconv.load_checkpoint(rewrite_zip(path, tmp_path / "be.pth", to_big_endian))
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)


def test_deflated_archive(tmp_path):
    tensors = {"w": torch.randn(64, 64), "b": torch.zeros(1000)}
    path = save(tensors, tmp_path / "stored.pth", "zip")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp_path / "deflated.pth", "w",
                                                          zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    assert zipfile.ZipFile(tmp_path / "deflated.pth").infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    loaded = pyconv.load_state_dict(tmp_path / "deflated.pth")
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)


def test_large_state_dict_reads_storages_in_parallel(tmp_path, num_threads):
    num_threads(2)
    tensors = OrderedDict((f"w{i}", torch.randn(300, 1000)) for i in range(8))   # 9.6 MB
    loaded = pyconv.load_state_dict(save(tensors, tmp_path / "big.pth", "zip"))
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)


def test_safetensors_from_torch(tmp_path):
    tensors = OrderedDict(z=torch.randn(3, 4), a=torch.randn(5).bfloat16(), h=torch.randn(2).half(),
                          i=torch.arange(5), m=torch.tensor([True, False]), s=torch.tensor(7.0))
    safetensors_torch.save_file(tensors, tmp_path / "t.safetensors")
    loaded = pyconv.load_state_dict(tmp_path / "t.safetensors")
    assert sorted(loaded) == sorted(tensors)
    for key, tensor in tensors.items():
        assert_same(loaded[key], tensor)
        assert loaded[key].flags.writeable


def test_save_state_dict_round_trip(tmp_path, rng):
    state_dict = OrderedDict(
        [("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
         ("bn.num_batches_tracked", np.array(5, np.int64)),
         ("z.transposed", rng.standard_normal((3, 5)).T),               # not contiguous
         ("a.reversed", np.arange(10, dtype=np.int16)[::-2]),           # negative stride
         ("mask", rng.random(7) > 0.5), ("half", rng.standard_normal(3).astype(np.float16)),
         ("big_endian", np.arange(4, dtype=">i4")), ("bytes", np.arange(256, dtype=np.uint8))])
    path = tmp_path / "sd.safetensors"
    pyconv.save_state_dict(state_dict, path)
    loaded = pyconv.load_state_dict(path)
    assert list(loaded) == list(state_dict)                 # order kept (safetensors sorts)
    for key, array in state_dict.items():
        assert loaded[key].dtype == array.dtype.newbyteorder("=") and loaded[key].shape == array.shape
        np.testing.assert_array_equal(loaded[key], array)
    # and torch reads it too
    from_torch = safetensors_torch.load_file(path)
    np.testing.assert_array_equal(from_torch["conv.weight"].numpy(), state_dict["conv.weight"])


def test_save_state_dict_round_trip_from_torch_file(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4))
    pyconv.save_state_dict(pyconv.load_state_dict(save(model.state_dict(), tmp_path / "m.pth", "zip")),
                           tmp_path / "m.safetensors")
    loaded = pyconv.load_state_dict(tmp_path / "m.safetensors")
    assert list(loaded) == list(model.state_dict())
    for key, tensor in model.state_dict().items():
        assert_same(loaded[key], tensor)


@pytest.mark.parametrize("value, message", [
    (3.0, r"value of 'bad' is float, expected a numpy array"),
    (torch.ones(2), r"value of 'bad' is Tensor, expected a numpy array"),
    (np.array(["x"]), r"value of 'bad' has dtype <U1"),
    (np.array([object()]), r"value of 'bad' has dtype object"),
    (np.ones(2, np.complex128), r"value of 'bad' has dtype complex128"),
])
def test_save_state_dict_refuses_non_arrays(tmp_path, value, message):
    with pytest.raises(TypeError, match=message):
        pyconv.save_state_dict({"ok": np.ones(2), "bad": value}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_save_state_dict_refuses_non_mappings_and_keys(tmp_path):
    with pytest.raises(TypeError, match="expected a mapping"):
        pyconv.save_state_dict([np.ones(2)], tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"key 3 is int, expected str"):
        pyconv.save_state_dict({3: np.ones(2)}, tmp_path / "x.safetensors")


def test_npz(tmp_path, rng):
    arrays = OrderedDict(w=rng.standard_normal((3, 4)).astype(np.float32), b=np.arange(5),
                         f=np.asfortranarray(rng.standard_normal((3, 2))), m=np.array([True, False]),
                         s=np.array(2.5), e=np.zeros((0, 3)), big=np.arange(6, dtype=">f8"))
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    for name in ("a.npz", "c.npz"):
        loaded = pyconv.load_state_dict(tmp_path / name)
        assert list(loaded) == list(arrays)
        for key, array in arrays.items():
            assert loaded[key].shape == array.shape and loaded[key].dtype == array.dtype.newbyteorder("=")
            np.testing.assert_array_equal(loaded[key], array)


def test_format_is_picked_by_content_not_extension(tmp_path):
    tensors = {"w": torch.randn(2, 3)}
    torch.save(tensors, tmp_path / "zip.safetensors")
    torch.save(tensors, tmp_path / "legacy.npz", _use_new_zipfile_serialization=False)
    safetensors_torch.save_file(tensors, tmp_path / "st.pth")
    with open(tmp_path / "np.pt", "wb") as file:       # (np.savez appends .npz to a name)
        np.savez(file, w=tensors["w"].numpy())
    for name in ("zip.safetensors", "legacy.npz", "st.pth", "np.pt"):
        assert_same(pyconv.load_state_dict(tmp_path / name)["w"], tensors["w"])


def test_public_names():
    assert pyconv.load_state_dict is pyconv.io.load_state_dict
    assert {"load_state_dict", "load_checkpoint", "save_state_dict"} <= set(pyconv.__all__)
    assert issubclass(pyconv.io.UnsafeCheckpointError, CheckpointError)
    assert issubclass(CheckpointError, ValueError)


NO_TORCH_SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None              # any 'import torch' now raises ImportError
    import numpy as np
    import pyconv
    reference = np.load("reference.npz")
    for name in ("zip.pth", "legacy.pth", "weights.safetensors", "roundtrip.safetensors"):
        state_dict = pyconv.load_state_dict(name)
        if name != "weights.safetensors":    # safetensors.torch sorts the tensors it writes
            assert list(state_dict) == list(reference.files), (name, list(state_dict))
        assert sorted(state_dict) == sorted(reference.files), name
        for key in reference.files:
            assert state_dict[key].dtype == reference[key].dtype, (name, key)
            np.testing.assert_array_equal(state_dict[key], reference[key])
    checkpoint = pyconv.load_checkpoint("checkpoint.pth")
    assert checkpoint["epoch"] == 3 and list(checkpoint["model"]) == list(reference.files)
    assert "torch" not in sys.modules or sys.modules["torch"] is None
    print("loaded without torch")
""")


def test_loading_without_torch(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    state_dict = model.state_dict()
    torch.save(state_dict, tmp_path / "zip.pth")
    torch.save(state_dict, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"model": state_dict, "epoch": 3}, tmp_path / "checkpoint.pth")
    safetensors_torch.save_file(state_dict, tmp_path / "weights.safetensors")
    pyconv.save_state_dict(pyconv.load_state_dict(tmp_path / "zip.pth"), tmp_path / "roundtrip.safetensors")
    np.savez(tmp_path / "reference.npz", **{k: v.numpy() for k, v in state_dict.items()})
    (tmp_path / "script.py").write_text(NO_TORCH_SCRIPT)
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "loaded without torch" in result.stdout
