"""The public entry points: read any supported weights file, picking its format by content."""
import mmap
import os
from collections import OrderedDict

import numpy as np

from .errors import CheckpointError
from .npz import is_npz, load_npz
from .safetensors_io import is_safetensors, load_safetensors, save_safetensors
from .torch_legacy import load_torch_legacy
from .torch_zip import is_torch_zip, load_torch_zip
from .zip_members import ZipMembers

__all__ = ["load_checkpoint", "load_state_dict", "save_state_dict"]

# Where training scripts commonly keep the model's state dict inside a checkpoint dict.
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module")


def _load(file, size, path):
    if size == 0:
        raise CheckpointError("empty file")
    head = file.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        with ZipMembers(file, size) as members:
            if is_torch_zip(members):
                return load_torch_zip(members)
            if is_npz(members):
                return load_npz(members)
        raise CheckpointError("a zip archive without '<archive>/data.pkl' (not a torch.save file) "
                              "and not an .npz either")
    if is_safetensors(head, size):
        return load_safetensors(path)
    if head.startswith(b"\x80"):        # a pickle: torch's legacy format starts with one
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return load_torch_legacy(buffer)
    if head[257:262] == b"ustar":
        raise CheckpointError("a tar archive: torch's tar checkpoint format (torch < 0.4) is not supported")
    raise CheckpointError(f"unrecognised content (starts with {head[:16]!r}): expected a torch.save "
                          f"file (.pt/.pth, zip or legacy), a .safetensors or an .npz file")


def load_checkpoint(path):
    """Everything a weights file holds, without torch.

    torch ``.pt``/``.pth`` files (zip and legacy formats), ``.safetensors``
    and ``.npz``, recognised by content.  Tensors become numpy arrays
    (bfloat16 widened to float32); dicts, OrderedDicts, lists, tuples, sets,
    numbers and strings stay as they are; ``torch.Size`` becomes a tuple,
    ``torch.device`` and dtypes become strings.  The file's bytes are copied
    once into memory (the file is not kept open); torch tensors that shared a
    storage share memory, a transposed or sliced tensor stays a strided view
    and an expanded one is a read-only view, as after ``torch.load``.  A
    zip member's CRC-32 is checked before its bytes are used.  A pickle may
    name only the globals a state dict needs: anything else is refused
    before any of it runs (``UnsafeCheckpointError``).  A truncated, corrupt
    or unsupported file raises ``CheckpointError`` (a ``ValueError``) naming
    the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        try:
            return _load(file, os.fstat(file.fileno()).st_size, path)
        except CheckpointError as error:
            raise type(error)(f"{path}: {error}") from None


def _is_state_dict(obj):
    return isinstance(obj, dict) and all(type(k) is str and isinstance(v, np.ndarray) for k, v in obj.items())


def _find_state_dict(checkpoint):
    if _is_state_dict(checkpoint):
        return checkpoint
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"no state dict: the file holds a {type(checkpoint).__name__}")
    for key in _STATE_DICT_KEYS:
        if _is_state_dict(checkpoint.get(key)) and checkpoint[key]:
            return checkpoint[key]
    found = [key for key, value in checkpoint.items() if _is_state_dict(value) and value]
    if len(found) == 1:
        return checkpoint[found[0]]
    keys = list(checkpoint)
    if found:
        raise CheckpointError(f"several state dicts in the checkpoint, under {found}: pick one with "
                              f"pyconv.load_checkpoint(path)[key]")
    raise CheckpointError(f"no state dict (a mapping of names to tensors) in the checkpoint dict; "
                          f"its keys are {keys[:20]}{' ...' if len(keys) > 20 else ''}")


def load_state_dict(path):
    """The state dict a weights file holds: an OrderedDict of numpy arrays, in file order.

    If the file holds a checkpoint dict (``{'model': state_dict, 'optimizer':
    ..., 'epoch': 3}``), the state dict is taken from ``'state_dict'``,
    ``'model_state_dict'``, ``'model'``, ``'net'``, ``'network'`` or
    ``'module'``, else from the only value that is a state dict; otherwise
    ``CheckpointError``.  See ``load_checkpoint`` for formats and errors.
    """
    checkpoint = load_checkpoint(path)
    try:
        return OrderedDict(_find_state_dict(checkpoint))
    except CheckpointError as error:
        raise CheckpointError(f"{os.fspath(path)}: {error}") from None


def save_state_dict(state_dict, path):
    """Write ``state_dict`` (names -> numpy arrays) as a ``.safetensors`` file at ``path``.

    Arrays are written C-contiguous, in the given key order (restored by
    ``load_state_dict``).  A value that is not a numpy array of a dtype
    safetensors stores (bool, integers, float16/32/64, complex64) is refused
    with ``TypeError``.
    """
    save_safetensors(state_dict, os.fspath(path))
