"""MNIST-style IDX files (``train-images-idx3-ubyte[.gz]`` and friends)."""
from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpucnn.errors import DataError

from ._io import BinaryFile, require_content
from .dataset import ArrayDataset

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, H, W)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read one uint8 IDX file (gzip-compressed or not) whose magic number must be ``expected_magic``.

    The magic number's low byte is the number of dimensions; dimensions are big-endian uint32.
    The file must hold exactly the bytes the header promises.
    """
    ndim = expected_magic & 0xFF
    with BinaryFile(path) as f:
        head = f.read(4)
        if len(head) < 4:
            raise DataError(f"{f.path}: truncated file: expected a 4-byte IDX magic number, got {len(head)} bytes")
        magic = int.from_bytes(head, "big")
        if magic != expected_magic:
            kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
            raise DataError(
                f"{f.path}: bad magic number 0x{magic:08X} (expected 0x{expected_magic:08X}, "
                f"an IDX file of uint8 {kind})"
            )
        raw_dims = f.read(4 * ndim)
        if len(raw_dims) < 4 * ndim:
            raise DataError(
                f"{f.path}: truncated file: expected {4 + 4 * ndim} header bytes, got {4 + len(raw_dims)}"
            )
        dims = struct.unpack(f">{ndim}I", raw_dims)
        header = 4 + 4 * ndim
        count = 1
        for d in dims:
            count *= d
        require_content(f, header + count, f"{'x'.join(map(str, dims))} uint8 values plus the header")
        data = f.read(count + 1)  # one byte more than promised reveals trailing garbage
        if len(data) < count:
            raise DataError(
                f"{f.path}: truncated file: expected {header + count:,} bytes "
                f"({f.describe_size()}), got {header + len(data):,}"
            )
        if len(data) > count:
            raise DataError(
                f"{f.path}: extra data after the {header + count:,} bytes the header describes "
                "(wrong file or wrong format?)"
            )
    # A writable copy, like every other loader returns.
    return np.frombuffer(data, dtype=np.uint8, count=count).reshape(dims).copy()


def load_idx(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    classes: Sequence[str] | None = None,
    name: str = "",
    source: str = "",
) -> ArrayDataset:
    """Load an IDX image file and its IDX label file (MNIST / Fashion-MNIST format, ``.gz`` or not).

    Images (magic 0x00000803, N x H x W uint8) become an (N, 1, H, W) uint8 dataset. With
    ``classes`` every label must be below ``len(classes)``; without, the classes are ``"0"`` up to
    the largest label.
    """
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: the file holds no images")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{images_path}: images of size {images.shape[1]}x{images.shape[2]} are empty")
    if len(labels) != len(images):
        raise DataError(
            f"{labels_path}: {len(labels):,} labels but {images_path} holds {len(images):,} images "
            "(the counts must match)"
        )
    if classes is not None and labels.size and int(labels.max()) >= len(classes):
        bad = int(np.argmax(labels >= len(classes)))
        raise DataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside [0, {len(classes)})"
        )
    return ArrayDataset(
        images.reshape(images.shape[0], 1, images.shape[1], images.shape[2]),
        labels.astype(np.int64),
        classes=classes,
        name=name,
        source=source or f"IDX files {Path(images_path).name} and {Path(labels_path).name}",
    )
