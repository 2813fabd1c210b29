"""Errors raised by pyconv.io."""

__all__ = ["CheckpointError", "UnsafeCheckpointError"]


class CheckpointError(ValueError):
    """A file is not a readable checkpoint: empty, truncated, corrupt or unsupported.

    The message names the file and says what is wrong with it.
    """


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint's pickle references a Python global outside pyconv's allowlist.

    Raised before any object of the file is built, so nothing of the file runs.
    """
