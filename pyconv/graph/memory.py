"""Buffer reuse by liveness: offsets of intermediate values in one arena per call.

A value lives from the step that defines it to the last step that reads it
or any view of it (a reshape shares its input's buffer, so the buffer lives
as long as the longest-lived view).  Values live at the same time never
overlap; the outputs of a step never overlap its inputs, since a value read
by a step is live during it.  Offsets are found first-fit, in the order the
values are defined.
"""
from dataclasses import dataclass

from .._aligned import ALIGNMENT

__all__ = ["Buffer", "assign_offsets", "ALIGNMENT"]


@dataclass
class Buffer:
    """One arena-held value: its size in bytes and the steps from its definition to its last use."""
    size: int
    first: int
    last: int
    offset: int = 0


def _aligned(size):
    return -(-size // ALIGNMENT) * ALIGNMENT


def assign_offsets(buffers):
    """Set ``offset`` on every Buffer so that buffers live at the same step do not overlap; returns the
    arena size in bytes (the planned peak of activation memory)."""
    live = []  # buffers holding memory, sorted by offset
    peak = 0
    for buffer in sorted(buffers, key=lambda b: (b.first, -b.size)):
        live = [b for b in live if b.last >= buffer.first]
        size, offset = _aligned(buffer.size), 0
        for other in live:
            if other.offset - offset >= size:
                break
            offset = max(offset, other.offset + _aligned(other.size))
        buffer.offset = offset
        live.append(buffer)
        live.sort(key=lambda b: b.offset)
        peak = max(peak, offset + size)
    return peak
