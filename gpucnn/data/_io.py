"""Bounded reading of (optionally gzip-compressed) binary files for the format loaders.

Every loader checks what a header promises against what the file can hold *before* it allocates,
so a corrupt or hostile file costs at most about its own (decompressed) size in memory.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from gpucnn.errors import DataError

# Deflate cannot expand data by more than about 1032:1, so a .gz file of S bytes holds at most this
# many bytes per byte; a header promising more is lying and is refused before any allocation.
GZIP_MAX_RATIO = 1032
_CHUNK = 1 << 24


class BinaryFile:
    """A file opened for bounded reads; transparently gunzips files that start with the gzip magic."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.size = self.path.stat().st_size
            raw = open(self.path, "rb")
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the file ({exc.strerror or exc})") from None
        try:
            magic = raw.read(2)
            raw.seek(0)
        except OSError as exc:
            raw.close()
            raise DataError(f"{self.path}: cannot read the file ({exc})") from None
        self.compressed = magic == b"\x1f\x8b"
        self._raw = raw
        self._stream = gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw
        self.offset = 0  # bytes of (decompressed) content consumed so far

    @property
    def max_content_size(self) -> int:
        """An upper bound on the decompressed size of the content."""
        return self.size * GZIP_MAX_RATIO + 1024 if self.compressed else self.size

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the content), read in bounded chunks."""
        parts = []
        left = n
        try:
            while left > 0:
                chunk = self._stream.read(min(left, _CHUNK))
                if not chunk:
                    break
                parts.append(chunk)
                left -= len(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            # A damaged gzip stream: say so rather than leak a zlib or gzip exception.
            raise DataError(f"{self.path}: corrupt gzip data ({exc or type(exc).__name__})") from None
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.offset += len(data)
        return data

    def close(self) -> None:
        try:
            if self.compressed:
                self._stream.close()
        finally:
            self._raw.close()

    def __enter__(self) -> "BinaryFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe_size(self) -> str:
        return "decompressed content" if self.compressed else "file"


def require_content(f: BinaryFile, needed: int, what: str) -> None:
    """Refuse (before allocating) a header whose promised size cannot fit in the file."""
    if needed > f.max_content_size:
        if f.compressed:
            raise DataError(
                f"{f.path}: truncated or corrupt: the header promises {what} of {needed:,} bytes, "
                f"more than a {f.size:,}-byte gzip file can hold"
            )
        raise DataError(
            f"{f.path}: truncated file: expected {needed:,} bytes for {what}, got {f.size:,}"
        )
