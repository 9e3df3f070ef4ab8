"""Builders of tiny dataset files (IDX, CIFAR-10 batches, image folders) and a loopback HTTP server."""
from __future__ import annotations

import functools
import gzip
import http.server
import struct
import threading
import types
from pathlib import Path

import numpy as np
import pytest


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    images = np.asarray(images, dtype=np.uint8).reshape(len(labels), -1)
    records = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], images], axis=1)
    return records.tobytes()


def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_mnist_like(folder: Path, n_train: int = 12, n_test: int = 6, compress: bool = True, seed: int = 0):
    """IDX files with MNIST's names; returns {split: (images (N,28,28), labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, compress)
        out[prefix] = (x, y)
    return out


def write_cifar_dir(folder: Path, per_batch: int = 4, batches: int = 2, seed: int = 0, meta: bool = True):
    """data_batch_N.bin (N = 1..batches) and test_batch.bin; returns {file name: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    names = [f"data_batch_{i}.bin" for i in range(1, batches + 1)] + ["test_batch.bin"]
    for name in names:
        x = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, size=per_batch).astype(np.uint8)
        (folder / name).write_bytes(cifar_bytes(x, y))
        out[name] = (x, y)
    if meta:
        (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n\n")
    return out


def write_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, size=(6, 5), mode: str = "L",
                       fmt: str = "png", seed: int = 0):
    """root/<class>/<i>.<fmt>; returns {path: array (H, W) or (H, W, 3)}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = size if mode == "L" else (*size, 3)
            arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
            path = root / cls / f"{i}.{fmt}"
            Image.fromarray(arr, mode=mode).save(path)
            out[path] = arr
    return out


@pytest.fixture
def build():
    """The file builders above, as one namespace."""
    return types.SimpleNamespace(
        idx_bytes=idx_bytes, write_idx=write_idx, cifar_bytes=cifar_bytes, random_images=random_images,
        write_mnist_like=write_mnist_like, write_cifar_dir=write_cifar_dir,
        write_image_folder=write_image_folder,
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """(base URL, folder) of a static HTTP server on 127.0.0.1 serving that folder; loopback only."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own dataset cache, so nothing touches ~/.cache or a real download."""
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("GPUCNN_MNIST_URL", "GPUCNN_FASHION_MNIST_URL", "GPUCNN_CIFAR10_URL"):
        monkeypatch.delenv(var, raising=False)
