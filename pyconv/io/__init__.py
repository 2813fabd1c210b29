"""Reading and writing weights and model files, without torch.

``load_state_dict`` / ``load_checkpoint`` read torch ``.pt``/``.pth`` files
(zip and legacy formats) through a restricted unpickler, ``.safetensors``
and ``.npz``; ``save_state_dict`` writes safetensors.  See ``checkpoint``
for the entry points and ``torch_pickle`` for how torch files are read.
"""
from .checkpoint import load_checkpoint, load_state_dict, save_state_dict
from .errors import CheckpointError, UnsafeCheckpointError

__all__ = ["load_checkpoint", "load_state_dict", "save_state_dict", "CheckpointError",
           "UnsafeCheckpointError"]
