"""pyconv.io on hostile, corrupt and non-checkpoint files: clear errors, no side effects.

Each code-running payload is first shown to work (torch.load(weights_only=False)
or numpy's pickle runs it and creates a marker file); then pyconv refuses the
same file and the marker does not appear.
"""
import io
import os
import pickle
import struct
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import pyconv
from pyconv.io import CheckpointError, UnsafeCheckpointError

torch = pytest.importorskip("torch")

FORMATS = ["zip", "legacy"]


# ---------------------------------------------------------------- payloads
class SystemCall:
    """Pickles as posix.system('touch <marker>')."""

    def __init__(self, marker):
        self.command = f"touch {marker}"

    def __reduce__(self):
        return os.system, (self.command,)


class Eval:
    """Pickles as builtins.eval("open(<marker>, 'w').close()")."""

    def __init__(self, marker):
        self.source = f"open({str(marker)!r}, 'w').close()"

    def __reduce__(self):
        return eval, (self.source,)


def save(obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


def replace_in_pickle(path, fmt, old, new):
    """Edit the checkpoint pickle's bytes (GLOBAL names are newline-terminated: lengths may change)."""
    if fmt == "legacy":
        data = path.read_bytes()
        assert old in data
        path.write_bytes(data.replace(old, new))
        return path
    edited = path.with_suffix(".edited")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                assert old in data
                data = data.replace(old, new)
            target.writestr(info, data)
    os.replace(edited, path)
    return path


def hostile_file(tmp_path, fmt, kind):
    marker = tmp_path / "pwned"
    payload = Eval(marker) if kind == "builtins.eval" else SystemCall(marker)
    path = save(OrderedDict(weight=torch.randn(3, 3), payload=payload, bias=torch.ones(3)),
                tmp_path / "hostile.pth", fmt)
    if kind == "os.system":
        replace_in_pickle(path, fmt, b"cposix\nsystem\n", b"cos\nsystem\n")
    return path, marker


def assert_payload_runs(path, marker):
    """The file really is an exploit: unrestricted torch.load runs it."""
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["posix.system", "os.system", "builtins.eval"])
def test_code_running_pickle_is_refused_before_it_runs(tmp_path, fmt, kind):
    path, marker = hostile_file(tmp_path, fmt, kind)
    assert_payload_runs(path, marker)
    refusal = rf"hostile\.pth.*refused global.*'{kind}'.*nothing of the file was run"
    with pytest.raises(UnsafeCheckpointError, match=refusal):
        pyconv.load_state_dict(path)
    with pytest.raises(UnsafeCheckpointError, match=kind):
        pyconv.load_checkpoint(path)
    assert not marker.exists()


def raw_zip(path, members, prefix="archive"):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{prefix}/{name}" if prefix else name, data)
    return path


def test_global_hidden_from_the_scan_is_refused_by_find_class(tmp_path):
    """STACK_GLOBAL with its strings separated by other opcodes: only find_class sees the name."""
    marker = tmp_path / "pwned"
    command = f"touch {marker}".encode()
    data = (b"\x80\x04" + b"\x8c\x05posix" + b"\x8c\x06system" + b")0"    # EMPTY_TUPLE, POP
            + b"\x93" + b"\x8c" + bytes([len(command)]) + command + b"\x85R.")
    pickle.loads(data)                                  # the payload works...
    assert marker.exists()
    marker.unlink()
    path = raw_zip(tmp_path / "hidden.pth", {"data.pkl": data, "version": b"3\n"})
    with pytest.raises(UnsafeCheckpointError, match="'posix.system'"):
        pyconv.load_checkpoint(path)
    assert not marker.exists()


def test_pickled_module_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.linear\.Linear.*state_dict\(\)"):
        pyconv.load_state_dict(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_is_refused(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(CheckpointError, match="TorchScript"):
        pyconv.load_state_dict(tmp_path / "scripted.pt")


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype, name", [(torch.float8_e4m3fn, "torch.float8_e4m3fn"),
                                         (torch.qint8, "torch.QInt8Storage")])
def test_unsupported_dtypes_are_named(tmp_path, fmt, dtype, name):
    tensor = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, dtype) if dtype == torch.qint8 \
        else torch.randn(4).to(dtype)
    path = save({"w": tensor}, tmp_path / "unsupported.pth", fmt)
    with pytest.raises(UnsafeCheckpointError, match=rf"'{name}'.*Tensors of that dtype are not supported; "
                                                    r"supported: float64, float32"):
        pyconv.load_state_dict(path)


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    with pytest.raises(CheckpointError, match=r"plain\.pkl.*not a torch\.save file"):
        pyconv.load_state_dict(path)


# ------------------------------------------------- hand-made torch zip files
class Storage:
    """Stands for a storage: pickled as torch's persistent id."""

    def __init__(self, key, numel, storage_type=None):
        self.key, self.numel = key, numel
        self.storage_type = storage_type or torch.FloatStorage


class Tensor:
    """Pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride, metadata=None, state=None):
        self.args = (storage, offset, size, stride, False, OrderedDict())
        self.args += (metadata,) if metadata is not None else ()
        self.state = state

    def __reduce__(self):
        if self.state is not None:
            return torch._utils._rebuild_tensor_v2, self.args, self.state
        return torch._utils._rebuild_tensor_v2, self.args


class PersistentId:
    def __init__(self, value):
        self.value = value


class CraftingPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return "storage", obj.storage_type, obj.key, "cpu", obj.numel
        if isinstance(obj, PersistentId):
            return obj.value
        return None


def crafted_zip(path, obj, storages, protocol=2):
    """A torch zip file whose pickle claims whatever ``obj`` says, with ``storages`` as records."""
    buffer = io.BytesIO()
    CraftingPickler(buffer, protocol=protocol).dump(obj)
    members = {"data.pkl": buffer.getvalue(), "byteorder": b"little", "version": b"3\n"}
    members.update({f"data/{key}": data for key, data in storages.items()})
    return raw_zip(path, members)


FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


def test_crafted_file_loads_like_torch(tmp_path):
    """The crafting helpers make valid files: the hostile variants below differ in one claim."""
    storage = Storage("0", 4)
    path = crafted_zip(tmp_path / "ok.pth", {"a": Tensor(storage, 1, (3,), (1,)),
                                            "b": Tensor(storage, 0, (2, 2), (1, 2))}, {"0": FOUR_FLOATS})
    loaded = pyconv.load_checkpoint(path)
    reference = torch.load(path)
    np.testing.assert_array_equal(loaded["a"], [1, 2, 3])
    np.testing.assert_array_equal(loaded["b"], reference["b"].numpy())


@pytest.mark.parametrize("offset, size, stride, message", [
    (0, (5,), (1,), r"shape \(5,\).*needs 20 bytes, but the storage holds 16"),
    (3, (2,), (1,), r"offset 3.*needs 20 bytes"),
    (0, (2, 2), (3, 1), r"needs 20 bytes"),
    (0, (10**12,), (1,), r"needs 4000000000000 bytes"),
    (0, (2**62, 2**62), (1, 1), r"tensor size \(4611686018427387904, 4611686018427387904\) is too large"),
    (0, (0, 2**62), (1, 1), r"is too large"),
    (0, (2**40, 2**40), (0, 0), r"is too large"),
    (4, (1,), (1,), r"needs 20 bytes"),
    (-1, (1,), (1,), r"storage offset must be an integer in \[0, 2\*\*63\)"),
    (0, (2,), (-1,), r"stride must be an integer"),
    (0, (2**63,), (1,), r"size must be an integer"),
    (0, (2.0,), (1,), r"size must be an integer"),
    (0, [2], [1], r"size must be a tuple"),
    (0, (2, 2), (1,), r"differ in length"),
    (0, (1,) * 65, (1,) * 65, r"65 dimensions"),
])
def test_tensor_claims_are_checked_against_the_storage(tmp_path, offset, size, stride, message):
    path = crafted_zip(tmp_path / "claims.pth", {"w": Tensor(Storage("0", 4), offset, size, stride)},
                       {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match=r"claims\.pth.*" + message):
        pyconv.load_checkpoint(path)


def test_expanded_tensor_is_a_read_only_view_not_an_allocation(tmp_path):
    """Stride 0 over 10**12 elements: loaded as torch does, a view of the 4 stored floats."""
    path = crafted_zip(tmp_path / "expanded.pth", {"w": Tensor(Storage("0", 4), 2, (10**12,), (0,))},
                       {"0": FOUR_FLOATS})
    loaded = pyconv.load_checkpoint(path)["w"]
    assert loaded.shape == (10**12,) and loaded.strides == (0,) and not loaded.flags.writeable
    assert loaded[123456789] == 2.0


@pytest.mark.parametrize("numel, record, message", [
    (4, FOUR_FLOATS[:8], r"record 'archive/data/0' holds 8 bytes, but the pickle claims .* 16 bytes"),
    (10**15, FOUR_FLOATS, r"holds 16 bytes, but the pickle claims .* 4000000000000000 bytes"),
])
def test_storage_size_is_checked_against_its_record(tmp_path, numel, record, message):
    path = crafted_zip(tmp_path / "short.pth", {"w": Tensor(Storage("0", numel), 0, (2,), (1,))},
                       {"0": record})
    with pytest.raises(CheckpointError, match=message):
        pyconv.load_checkpoint(path)


def test_missing_storage_record(tmp_path):
    path = crafted_zip(tmp_path / "missing.pth", {"w": Tensor(Storage("7", 4), 0, (4,), (1,))},
                       {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match=r"missing\.pth.*no record 'archive/data/7'"):
        pyconv.load_checkpoint(path)


@pytest.mark.parametrize("persistent_id, message", [
    ("0", r"refused persistent id '0': only storages"),
    (("module", "Linear", "linear.py", "source"), r"refused persistent id \('module'"),
    (("storage", "torch.FloatStorage", "0", "cpu", 4), r"has type 'torch.FloatStorage', expected a torch storage type"),
    (("storage", torch.FloatStorage, "../0", "cpu", 4), r"invalid storage key"),
    (("storage", torch.FloatStorage, "0", "cpu", -4), r"storage size must be an integer"),
    (("storage", torch.FloatStorage, "0", "cpu", 4, ("0", 0, 4)), r"storage views .* are not supported"),
])
def test_persistent_ids_other_than_storages_are_refused(tmp_path, persistent_id, message):
    path = crafted_zip(tmp_path / "pid.pth", {"x": PersistentId(persistent_id)}, {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match=message):
        pyconv.load_checkpoint(path)


def test_storage_claimed_with_two_dtypes(tmp_path):
    obj = {"a": Tensor(Storage("0", 4), 0, (4,), (1,)),
           "b": Tensor(Storage("0", 2, torch.LongStorage), 0, (2,), (1,))}
    path = crafted_zip(tmp_path / "two.pth", obj, {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match=r"storage '0' is claimed as .*float32.* and as 2 x int64"):
        pyconv.load_checkpoint(path)


def test_build_cannot_alter_a_validated_tensor(tmp_path):
    tensor = Tensor(Storage("0", 4), 0, (4,), (1,), state={"shape": (10**9,)})
    path = crafted_zip(tmp_path / "build.pth", {"w": tensor}, {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match=r"tries to set attributes on tensor.*\(BUILD\)"):
        pyconv.load_checkpoint(path)


def test_unknown_tensor_metadata_is_refused(tmp_path):
    tensor = Tensor(Storage("0", 4), 0, (4,), (1,), metadata={"zero": True})
    path = crafted_zip(tmp_path / "meta.pth", {"w": tensor}, {"0": FOUR_FLOATS})
    with pytest.raises(CheckpointError, match="unsupported tensor metadata"):
        pyconv.load_checkpoint(path)


@pytest.mark.parametrize("data, message", [
    (b"\x80\x04\x8e" + (2**60).to_bytes(8, "little") + b"abc.", r"not a valid pickle"),        # BINBYTES8
    (b"\x80\x04\x8d" + (2**60).to_bytes(8, "little") + b"abc.", r"not a valid pickle"),        # BINUNICODE8
    (b"\x80\x02Nr" + (2**31).to_bytes(4, "little") + b".", r"memo entry 2147483648"),          # LONG_BINPUT
    (b"\x80\x04\x95" + (2**40).to_bytes(8, "little") + b"N.", r"frame of 1099511627776 bytes"),
    (b"\x80\x02\x82\x01.", r"opcode EXT1"),
    (b"\x80\x02]]]a", r"not a valid pickle"),                                                   # no STOP
    (b"\x80\x09N.", r"protocol 9"),
    (b"\x80\x02\xffN.", r"not a valid pickle"),
])
def test_pickle_length_claims_are_checked_before_allocating(tmp_path, data, message):
    path = raw_zip(tmp_path / "bomb.pth", {"data.pkl": data, "version": b"3\n"})
    with pytest.raises(CheckpointError, match=message):
        pyconv.load_checkpoint(path)


def test_colliding_dict_keys_are_refused_not_a_hang(tmp_path):
    """Ints that are multiples of 2**61 - 1 all hash to 0: as dict keys, building the dict is quadratic."""
    keys = {i * (2**61 - 1): None for i in range(1, 1200)}
    path = raw_zip(tmp_path / "hash.pth", {"data.pkl": pickle.dumps(keys, protocol=2), "version": b"3\n"})
    with pytest.raises(CheckpointError, match="more than 1000 integers beyond 2..61"):
        pyconv.load_checkpoint(path)


def test_deep_nesting_is_an_error_not_a_crash(tmp_path):
    depth = 100_000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    path = raw_zip(tmp_path / "deep.pth", {"data.pkl": data, "version": b"3\n"})
    with pytest.raises(CheckpointError, match="nests containers too deeply"):
        pyconv.load_checkpoint(path)


def test_mutated_pickles_give_checkpoint_errors_only(tmp_path):
    """Random edits of a real data.pkl (CRC recomputed, so they reach the unpickler)."""
    rng = np.random.default_rng(1)
    tensors = OrderedDict(w=torch.randn(4, 3), t=torch.randn(3, 2).t(), h=torch.randn(2).bfloat16(),
                          e=torch.randn(3).expand(2, 3), n={"x": (1, 2.5, "a")})
    with zipfile.ZipFile(save(tensors, tmp_path / "base.pth", "zip")) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(200):
        data = bytearray(members["base/data.pkl"])
        for _ in range(rng.integers(1, 4)):
            at = rng.integers(len(data))
            data[at:at + rng.integers(0, 3)] = rng.integers(0, 256, rng.integers(0, 3), dtype=np.uint8).tobytes()
        with zipfile.ZipFile(tmp_path / "mutated.pth", "w") as archive:
            for name, content in members.items():
                archive.writestr(name, bytes(data) if name == "base/data.pkl" else content)
        try:
            pyconv.load_checkpoint(tmp_path / "mutated.pth")
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 150


# ------------------------------------------------------------ broken files
@pytest.fixture
def good_zip(tmp_path):
    return save(OrderedDict(weight=torch.randn(16, 8), bias=torch.randn(16)), tmp_path / "good.pth", "zip")


@pytest.mark.parametrize("member", ["../../pwned", "/tmp/pwned", "archive/../../pwned", "..\\pwned", "C:/pwned"])
def test_path_traversal_member_is_refused(tmp_path, good_zip, member):
    with zipfile.ZipFile(good_zip, "a") as archive:
        archive.writestr(member, b"payload")
    with pytest.raises(CheckpointError, match=r"good\.pth.*zip member name .* is unsafe"):
        pyconv.load_state_dict(good_zip)
    assert not (tmp_path.parent.parent / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_duplicate_member_is_refused(good_zip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # zipfile warns about the duplicate
        with zipfile.ZipFile(good_zip, "a") as archive:
            archive.writestr("good/data/0", b"\x00" * 512)
    with pytest.raises(CheckpointError, match=r"'good/data/0' appears twice"):
        pyconv.load_state_dict(good_zip)


@pytest.mark.parametrize("keep", [10, 0.5, -1, -22, -200])
def test_truncated_zip(tmp_path, good_zip, keep):
    data = good_zip.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[:keep] if isinstance(keep, int) else data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cut\.pth: .*(corrupt|truncated)"):
        pyconv.load_state_dict(cut)


@pytest.mark.parametrize("keep, message", [
    (10, "not a torch.save file"), (30, "the system information pickle is not a valid pickle"),
    (-3, "truncated"), (-70, "truncated")])
def test_truncated_legacy_file(tmp_path, keep, message):
    data = save({"w": torch.randn(16)}, tmp_path / "legacy.pth", "legacy").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[:keep])
    with pytest.raises(CheckpointError, match=rf"cut\.pth: .*{message}"):
        pyconv.load_state_dict(cut)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: empty file"):
        pyconv.load_state_dict(tmp_path / "empty.pth")


@pytest.mark.parametrize("first_byte", [b"\x00", b"\x80"])
def test_random_bytes(tmp_path, rng, first_byte):
    path = tmp_path / "random.pth"
    path.write_bytes(first_byte + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match=r"random\.pth: (unrecognised content|not a torch\.save file)"):
        pyconv.load_state_dict(path)


def test_tar_archive_is_refused(tmp_path):
    import tarfile
    (tmp_path / "a.txt").write_text("x")
    with tarfile.open(tmp_path / "old.pth", "w") as archive:
        archive.add(tmp_path / "a.txt", arcname="a.txt")
    with pytest.raises(CheckpointError, match="tar archive"):
        pyconv.load_state_dict(tmp_path / "old.pth")


def flip_byte(path, member, at, out):
    """Write ``path`` to ``out`` with one bit flipped ``at`` bytes into ``member``'s stored data."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        header = archive.getinfo(member).header_offset
    name_length, extra_length = struct.unpack_from("<2H", data, header + 26)
    data[header + 30 + name_length + extra_length + at] ^= 0x40
    out.write_bytes(bytes(data))
    return out


def test_flipped_byte_in_tensor_data_is_caught_by_crc(tmp_path, good_zip):
    flipped = flip_byte(good_zip, "good/data/0", 100, tmp_path / "flipped.pth")
    original, silently_wrong = torch.load(good_zip)["weight"], torch.load(flipped)["weight"]
    assert not torch.equal(original, silently_wrong)        # torch loads it without a word
    with pytest.raises(CheckpointError, match=r"flipped\.pth: zip member 'good/data/0' is corrupt: its CRC-32"):
        pyconv.load_state_dict(flipped)


def test_flipped_byte_in_the_pickle_is_caught_by_crc(tmp_path, good_zip):
    flipped = flip_byte(good_zip, "good/data.pkl", 20, tmp_path / "flipped.pth")
    with pytest.raises(CheckpointError, match=r"'good/data.pkl' is corrupt: its CRC-32"):
        pyconv.load_state_dict(flipped)


def test_zip_without_data_pkl(tmp_path):
    path = raw_zip(tmp_path / "other.zip", {"readme.txt": b"hello"}, prefix=None)
    with pytest.raises(CheckpointError, match=r"other\.zip: a zip archive without '<archive>/data.pkl'"):
        pyconv.load_state_dict(path)


def test_zip_with_two_data_pkl(tmp_path, good_zip):
    with zipfile.ZipFile(good_zip) as archive:
        data = archive.read("good/data.pkl")
    with zipfile.ZipFile(good_zip, "a") as archive:
        archive.writestr("other/data.pkl", data)
    with pytest.raises(CheckpointError, match=r"with 2 '<archive>/data.pkl' records"):
        pyconv.load_state_dict(good_zip)


@pytest.mark.parametrize("version, message", [(None, "no archive/version record"), (b"99\n", "format version")])
def test_version_record(tmp_path, version, message):
    members = {"data.pkl": pickle.dumps({}, protocol=2)}
    if version is not None:
        members["version"] = version
    path = raw_zip(tmp_path / "v.pth", members)
    with pytest.raises(CheckpointError, match=message):
        pyconv.load_state_dict(path)


def test_byteorder_record(tmp_path):
    path = raw_zip(tmp_path / "b.pth", {"data.pkl": pickle.dumps({}, protocol=2), "version": b"3",
                                        "byteorder": b"middle"})
    with pytest.raises(CheckpointError, match="expected 'little' or 'big'"):
        pyconv.load_state_dict(path)


def test_legacy_file_with_a_foreign_magic_number(tmp_path):
    path = tmp_path / "magic.pth"
    path.write_bytes(pickle.dumps(12345, protocol=2) + pickle.dumps(1001, protocol=2))
    with pytest.raises(CheckpointError, match="no torch magic number"):
        pyconv.load_state_dict(path)


# ------------------------------------------------------------ npz and safetensors
def npz_member(header, data):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


def test_npz_shape_claim_is_checked_before_allocating(tmp_path):
    member = npz_member({"descr": "<f4", "fortran_order": False, "shape": (10**12,)}, b"\x00" * 16)
    path = raw_zip(tmp_path / "bomb.npz", {"w.npy": member}, prefix=None)
    with pytest.raises(CheckpointError, match=r"claims shape \(1000000000000,\) .* but holds 16 bytes"):
        pyconv.load_state_dict(path)


def test_npz_object_array_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    np.savez(tmp_path / "objects.npz", w=np.array([SystemCall(marker)], dtype=object))
    np.load(tmp_path / "objects.npz", allow_pickle=True)["w"]       # numpy's pickle runs the payload
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=r"npz member 'w.npy' has dtype object"):
        pyconv.load_state_dict(tmp_path / "objects.npz")
    assert not marker.exists()


def test_npz_with_a_bad_header(tmp_path):
    path = raw_zip(tmp_path / "bad.npz", {"w.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    \n"}, prefix=None)
    with pytest.raises(CheckpointError, match="invalid .npy header"):
        pyconv.load_state_dict(path)


def test_safetensors_dtype_numpy_cannot_hold(tmp_path):
    import safetensors.torch
    safetensors.torch.save_file({"w": torch.randn(4).to(torch.float8_e4m3fn)}, tmp_path / "f8.safetensors")
    with pytest.raises(CheckpointError, match=r"f8\.safetensors: tensor 'w' has dtype F8_E4M3"):
        pyconv.load_state_dict(tmp_path / "f8.safetensors")


def test_corrupt_safetensors(tmp_path):
    import safetensors.numpy
    safetensors.numpy.save_file({"w": np.ones(100, np.float32)}, tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-50])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: invalid safetensors file"):
        pyconv.load_state_dict(tmp_path / "cut.safetensors")
