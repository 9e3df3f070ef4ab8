"""NumPy ``.npz`` datasets: arrays ``x`` and ``y`` (or ``x_train``/``y_train``/``x_test``/``y_test``).

Always read with ``allow_pickle=False``; object arrays are refused. Image layouts accepted for ``x``:
(N, H, W), which becomes (N, 1, H, W), and (N, C, H, W). Channels-last (N, H, W, C) is not guessed:
an ``x`` whose last axis is 1 or 3 while axes 1 and 2 are larger than 4 is refused with a hint to
``x.transpose(0, 3, 1, 2)``. An optional string array ``classes`` names the classes.
"""
from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from gpucnn.errors import DataError

from ._io import GZIP_MAX_RATIO
from .dataset import ArrayDataset

# Everything a damaged zip or .npy header can make zipfile/numpy raise; turned into DataError.
_READ_ERRORS = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError, RuntimeError, SyntaxError,
    ArithmeticError, MemoryError, RecursionError, zipfile.BadZipFile, zipfile.LargeZipFile,
    zlib.error, struct.error,
)


class NpzArchive:
    """An ``.npz`` opened with ``np.load(path, allow_pickle=False)``, read one checked array at a time."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(4)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the file ({exc.strerror or exc})") from None
        # np.load would also accept a bare .npy (and allocate whatever its header claims) or try
        # pickle; only a zip archive is an .npz.
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(f"{self.path}: not an .npz archive (a .npz is a zip file; got {head!r} at the start)")
        try:
            self._npz = np.load(self.path, allow_pickle=False)
            self.members = list(self._npz.zip.namelist())
        except _READ_ERRORS as exc:
            raise DataError(f"{self.path}: not a readable .npz archive ({_why(exc)})") from None
        if not isinstance(self._npz, np.lib.npyio.NpzFile):
            raise DataError(f"{self.path}: not an .npz archive")

    @property
    def keys(self) -> list[str]:
        return [m[:-4] for m in self.members if m.endswith(".npy")]

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def array(self, key: str) -> np.ndarray:
        """The array ``key``; its header is checked against the archive before anything is allocated."""
        member = key + ".npy"
        if member not in self.members:
            raise DataError(
                f"{self.path}: no array {key!r} in the archive (it holds: {', '.join(self.keys) or 'nothing'})"
            )
        try:
            info = self._npz.zip.getinfo(member)
            if info.compress_type == zipfile.ZIP_STORED:
                limit = info.compress_size
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                limit = info.compress_size * GZIP_MAX_RATIO + 1024
            else:
                raise DataError(f"{self.path}: array {key!r} uses an unsupported zip compression method")
            limit = min(limit, info.file_size, self.size * GZIP_MAX_RATIO + 1024)
            with self._npz.zip.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                header_len = f.tell()
        except DataError:
            raise
        except _READ_ERRORS as exc:
            raise DataError(f"{self.path}: array {key!r} is not a readable .npy member ({_why(exc)})") from None
        if dtype.hasobject:
            raise DataError(
                f"{self.path}: array {key!r} is an object (pickled) array, which gpucnn never loads; "
                "save plain numeric arrays"
            )
        count = 1
        for d in shape:
            count *= int(d)
        needed = header_len + count * dtype.itemsize
        if needed > limit:
            raise DataError(
                f"{self.path}: truncated or corrupt: array {key!r} of shape {tuple(shape)} and dtype "
                f"{dtype} needs {needed:,} bytes, the archive holds at most {limit:,} for it"
            )
        try:
            arr = self._npz[key]
        except _READ_ERRORS as exc:
            raise DataError(f"{self.path}: cannot read array {key!r} ({_why(exc)})") from None
        if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape) or arr.dtype != dtype:
            raise DataError(f"{self.path}: array {key!r} does not match its own header")
        return arr


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def as_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    """``x`` as uint8 or float32 NCHW; refuses guessing at channels-last layouts."""
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        n, a, b, c = x.shape
        if c in (1, 3) and a > 4 and b > 4:
            raise DataError(
                f"{path}: {key} has shape {x.shape}, which looks channels-last (N, H, W, C); gpucnn wants "
                f"(N, C, H, W): save x.transpose(0, 3, 1, 2) instead"
            )
    else:
        raise DataError(f"{path}: {key} must have shape (N, H, W) or (N, C, H, W), got {x.shape}")
    if 0 in x.shape[1:]:
        raise DataError(f"{path}: {key} has an empty image shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: {key} holds NaN or Inf values (or values too large for float32)")
        return x
    if x.dtype.kind in "iub":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(
                f"{path}: {key} has dtype {x.dtype} with values outside 0..255; save uint8 pixels or float32"
            )
        return x.astype(np.uint8)
    raise DataError(f"{path}: {key} has dtype {x.dtype}; images must be numeric (uint8 or float32)")


def as_labels(y: np.ndarray, path: Path, key: str, n: int, num_classes: int | None) -> np.ndarray:
    """``y`` as int64 class indices, checked against the image count and class count."""
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: {key} must be a 1-D integer array, got {y.dtype} of shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: {len(y):,} labels in {key} but {n:,} images (the counts must match)")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"{path}: {key} holds the negative label {int(y.min())}")
    if num_classes is not None and y.size and y.max() >= num_classes:
        bad = int(np.argmax(y >= num_classes))
        raise DataError(f"{path}: label {int(y[bad])} at index {bad} of {key} is outside [0, {num_classes})")
    return y


def _classes(archive: NpzArchive) -> list[str] | None:
    if "classes" not in archive.keys:
        return None
    c = archive.array("classes")
    if c.ndim != 1 or c.dtype.kind not in "US" or len(c) == 0:
        raise DataError(f"{archive.path}: classes must be a 1-D array of strings, got {c.dtype} of shape {c.shape}")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in c.tolist()]


def npz_splits(path: str | os.PathLike) -> list[str]:
    """Which of ``"train"``/``"test"`` have both ``x_<split>`` and ``y_<split>`` in the archive."""
    with NpzArchive(path) as a:
        keys = set(a.keys)
    return [s for s in ("train", "test") if f"x_{s}" in keys and f"y_{s}" in keys]


def load_npz(
    path: str | os.PathLike, split: str | None = None, name: str = "", source: str = ""
) -> ArrayDataset:
    """Load ``x``/``y`` (or ``x_<split>``/``y_<split>``) from an ``.npz`` into an :class:`ArrayDataset`.

    See the module docstring for the layouts accepted. Integer images must lie in 0..255 (they
    become uint8); float images become float32.
    """
    path = Path(path)
    xk, yk = ("x", "y") if split is None else (f"x_{split}", f"y_{split}")
    with NpzArchive(path) as archive:
        missing = [k for k in (xk, yk) if k not in archive.keys]
        if missing:
            raise DataError(
                f"{path}: missing array {' and '.join(repr(k) for k in missing)} "
                f"(the archive holds: {', '.join(archive.keys) or 'nothing'}); save it with "
                f"np.savez(path, {xk}=images, {yk}=labels)"
            )
        classes = _classes(archive)
        x = as_images(archive.array(xk), path, xk)
        y = as_labels(archive.array(yk), path, yk, len(x), len(classes) if classes else None)
    if len(x) == 0:
        raise DataError(f"{path}: {xk} holds no images")
    return ArrayDataset(x, y, classes=classes, name=name or path.stem, source=source or f"arrays {xk}/{yk} of {path}")
