"""CIFAR-10's binary version: ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``."""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpucnn.errors import DataError

from ._io import BinaryFile
from .dataset import ArrayDataset

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green, 1024 blue bytes
_BATCH_RE = re.compile(r"data_batch_(\d+)\.bin$")


def _cifar_dir(directory: Path) -> Path:
    """The folder holding the .bin files: ``directory`` itself or its ``cifar-10-batches-bin``."""
    inner = directory / "cifar-10-batches-bin"
    if not any(directory.glob("*.bin")) and inner.is_dir():
        return inner
    return directory


def cifar10_batch_files(directory: str | os.PathLike, train: bool = True) -> list[Path]:
    """The training batches (``data_batch_N.bin``, numerically sorted) or ``test_batch.bin`` in a folder."""
    folder = _cifar_dir(Path(directory))
    if train:
        found = sorted(
            (int(m.group(1)), p) for p in folder.glob("data_batch_*.bin") if (m := _BATCH_RE.search(p.name))
        )
        files = [p for _, p in found]
        if not files:
            raise DataError(f"{folder}: no CIFAR-10 training batches (data_batch_1.bin ...) found")
        return files
    test = folder / "test_batch.bin"
    if not test.is_file():
        raise DataError(f"{folder}: no CIFAR-10 test batch (test_batch.bin) found")
    return [test]


def read_cifar10_classes(meta_path: str | os.PathLike) -> list[str]:
    """The class names from ``batches.meta.txt`` (one per line, blank lines ignored)."""
    path = Path(meta_path)
    try:
        text = path.read_bytes()[:65536].decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CIFAR-10 class names ({exc})") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != len(CIFAR10_CLASSES):
        raise DataError(
            f"{path}: expected {len(CIFAR10_CLASSES)} class names (one per line), found {len(names)}"
        )
    return names


def _read_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    with BinaryFile(path) as f:
        if f.compressed:
            # Size checks below rely on the on-disk size; compressed batches are not a CIFAR format.
            raise DataError(f"{path}: gzip-compressed; extract the CIFAR-10 .bin files first")
        if f.size == 0 or f.size % RECORD_BYTES:
            records = f.size // RECORD_BYTES
            raise DataError(
                f"{path}: truncated or not a CIFAR-10 batch: {f.size:,} bytes is not a whole number of "
                f"{RECORD_BYTES}-byte records (expected {max(records, 1) * RECORD_BYTES:,} bytes)"
            )
        data = f.read(f.size)
    if len(data) != f.size:
        raise DataError(f"{path}: truncated file: expected {f.size:,} bytes, got {len(data):,}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{path}: label {int(labels[bad])} of record {bad} is outside [0, {num_classes})"
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def load_cifar10_batches(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    train: bool = True,
    name: str = "cifar10",
    source: str = "",
) -> ArrayDataset:
    """Load CIFAR-10 binary batches into a (N, 3, 32, 32) uint8 dataset.

    ``paths`` is a list of ``.bin`` files, one file, or a directory (or its parent holding
    ``cifar-10-batches-bin/``); for a directory ``train`` picks ``data_batch_*.bin`` (True) or
    ``test_batch.bin`` (False). Class names come from ``batches.meta.txt`` next to the first file
    when it exists, else the standard CIFAR-10 names.
    """
    if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
        files = cifar10_batch_files(paths, train)
    elif isinstance(paths, (str, os.PathLike)):
        files = [Path(paths)]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise DataError("load_cifar10_batches: no batch files given")
    meta = files[0].parent / "batches.meta.txt"
    classes = read_cifar10_classes(meta) if meta.is_file() else list(CIFAR10_CLASSES)
    parts = [_read_batch(p, len(classes)) for p in files]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return ArrayDataset(
        images, labels, classes=classes, name=name,
        source=source or f"CIFAR-10 binary batches {', '.join(p.name for p in files)} in {files[0].parent}",
    )
