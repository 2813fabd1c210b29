"""Validated, read-only access to the members of a zip file mapped in memory.

Every member name is checked when the archive is opened (no absolute paths,
no ``..``, no backslashes or NUL bytes, no duplicates, no encryption).  A
member is read by copying its bytes once from the memory map into a fresh
numpy buffer -- torch stores its records uncompressed, so nothing is
decompressed -- and its CRC-32 is checked against the central directory
before the bytes are used.  Deflated members (an archive re-zipped by a
tool) are read through ``zipfile``, after their claimed size is checked
against what the compressed bytes can expand to.
"""
import mmap
import struct
import zipfile
import zlib

import numpy as np

from .errors import CheckpointError

__all__ = ["ZipMembers"]

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")     # signature ... name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"
_MAX_DEFLATE_RATIO = 1032                      # deflate expands a byte to at most 1032 bytes


def _check_name(name):
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or "\x00" in name or ".." in parts or ":" in parts[0]:
        raise CheckpointError(f"zip member name {name!r} is unsafe (absolute, or leaves the archive)")


class ZipMembers:
    """The members of the zip file ``file`` (opened in binary mode), by name."""

    def __init__(self, file, size):
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError, OSError,
                NotImplementedError) as error:
            raise CheckpointError(f"corrupt or truncated zip archive: {error}") from None
        self._archive = archive
        self._size = size
        self.infos = {}
        for info in archive.infolist():
            _check_name(info.orig_filename)
            if info.filename in self.infos:
                raise CheckpointError(f"zip member {info.filename!r} appears twice")
            if info.flag_bits & 0x1:
                raise CheckpointError(f"zip member {info.filename!r} is encrypted")
            self.infos[info.filename] = info
        self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self):
        self._map.close()
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def names(self):
        """Member names in the order of the central directory."""
        return list(self.infos)

    def size(self, name):
        """The uncompressed size the archive claims for ``name``."""
        return self.infos[name].file_size

    def read(self, name):
        """The bytes of member ``name`` as a fresh uint8 array, CRC-32 verified."""
        info = self.infos[name]
        if info.compress_type == zipfile.ZIP_STORED:
            data = self._read_stored(info)
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            data = self._read_deflated(info)
        else:
            raise CheckpointError(f"zip member {name!r} uses unsupported compression {info.compress_type}")
        crc = zlib.crc32(data)
        if crc != info.CRC:
            raise CheckpointError(f"zip member {name!r} is corrupt: its CRC-32 is {crc:#010x}, "
                                  f"the archive records {info.CRC:#010x}")
        return data

    def read_bytes(self, name):
        """A small member (a pickle, a text record) as bytes, CRC-32 verified."""
        return self.read(name).tobytes()

    def _read_stored(self, info):
        name = info.filename
        start = info.header_offset
        if not 0 <= start <= self._size - _LOCAL_HEADER.size:
            raise CheckpointError(f"zip member {name!r}: local header outside the file (truncated?)")
        fields = _LOCAL_HEADER.unpack_from(self._map, start)
        name_length, extra_length = fields[-2:]
        raw_name = self._map[start + _LOCAL_HEADER.size:start + _LOCAL_HEADER.size + name_length]
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if fields[0] != _LOCAL_SIGNATURE or raw_name.decode(encoding, "replace") != info.orig_filename:
            raise CheckpointError(f"zip member {name!r}: local header does not match the central directory")
        if info.file_size != info.compress_size:
            raise CheckpointError(f"zip member {name!r} is stored but claims {info.file_size} bytes "
                                  f"uncompressed and {info.compress_size} stored")
        begin = start + _LOCAL_HEADER.size + name_length + extra_length
        if begin + info.file_size > self._size:
            raise CheckpointError(f"zip member {name!r} claims {info.file_size} bytes, past the end of "
                                  f"the file (truncated?)")
        data = np.empty(info.file_size, np.uint8)
        source = np.frombuffer(self._map, np.uint8, info.file_size, begin)
        data[:] = source
        del source                      # release the map's buffer before it may be closed
        return data

    def _read_deflated(self, info):
        name = info.filename
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 64:
            raise CheckpointError(f"zip member {name!r} claims {info.file_size} bytes from "
                                  f"{info.compress_size} compressed bytes, more than deflate can hold")
        try:
            with self._archive.open(info) as member:
                data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as error:
            raise CheckpointError(f"zip member {name!r} is corrupt: {error}") from None
        if len(data) != info.file_size:
            raise CheckpointError(f"zip member {name!r} holds {len(data)} bytes, the archive records "
                                  f"{info.file_size}")
        return np.frombuffer(data, np.uint8).copy()
