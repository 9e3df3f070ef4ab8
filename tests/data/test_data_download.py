"""Downloads against a static HTTP server on 127.0.0.1 (never the real mirrors)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile

import numpy as np
import pytest

from gpucnn.data import download_file, load_cifar10, load_fashion_mnist, load_mnist
from gpucnn.data import public
from gpucnn.errors import DataError


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _refused_url() -> str:
    # A port nobody listens on: bind, note the port, close.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_success(http_root, tmp_path):
    url, served = http_root
    payload = bytes(range(256)) * 100
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    assert download_file(url + "blob.bin", dest, _md5(payload)) == dest
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]  # no temporary left behind


def test_download_bad_checksum_deletes_the_file(http_root, tmp_path):
    url, served = http_root
    (served / "blob.bin").write_bytes(b"not what was published")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DataError, match=r"checksum mismatch for .*blob.bin: expected MD5 0{32}.*deleted"):
        download_file(url + "blob.bin", dest, "0" * 32, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_download_connection_refused_says_offline(tmp_path):
    dest = tmp_path / "out" / "x.gz"
    offline = r"could not download .*x.gz .*\(offline\?\); place the files in .*out or pass a path"
    with pytest.raises(DataError, match=offline):
        download_file(_refused_url() + "x.gz", dest, None, progress=False)
    assert not dest.exists()


def test_download_http_404(http_root, tmp_path):
    url, _ = http_root
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(url + "missing.gz", tmp_path / "missing.gz", None, progress=False)


def test_load_mnist_downloads_once_and_verifies(http_root, tmp_path, build, monkeypatch):
    url, served = http_root
    made = build.write_mnist_like(served, n_train=10, n_test=4)
    for name in public.MNIST_FILES:
        monkeypatch.setitem(public.MNIST_FILES, name, _md5((served / name).read_bytes()))
    root = tmp_path / "mnist-cache"
    train = load_mnist(root=root, train=True, base_url=url)
    assert train.images.shape == (10, 1, 28, 28) and np.array_equal(train.images[:, 0], made["train"][0])
    assert "downloaded from" in train.source and train.num_classes == 10
    test = load_mnist(root=root, train=False, base_url=url)
    assert np.array_equal(test.labels, made["t10k"][1])
    # Present now: a second load needs no server at all.
    again = load_mnist(root=root, train=True, base_url=_refused_url())
    assert np.array_equal(again.images, train.images) and "downloaded" not in again.source


def test_load_mnist_env_url_and_default_cache(http_root, build, monkeypatch, tmp_path):
    url, served = http_root
    build.write_mnist_like(served)
    for name in public.FASHION_MNIST_FILES:
        monkeypatch.setitem(public.FASHION_MNIST_FILES, name, _md5((served / name).read_bytes()))
    monkeypatch.setenv("GPUCNN_FASHION_MNIST_URL", url.rstrip("/"))
    ds = load_fashion_mnist(train=False)
    assert len(ds) == 6 and ds.classes[0] == "T-shirt/top"
    assert (tmp_path / "cache" / "datasets" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_load_mnist_checksum_failure_and_offline(http_root, tmp_path, build):
    url, served = http_root
    build.write_mnist_like(served)  # real MNIST checksums will not match these tiny files
    root = tmp_path / "m"
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist(root=root, base_url=url)
    assert not any(root.glob("*.gz"))
    with pytest.raises(DataError, match=r"\(offline\?\); place the files in .*m or pass a path"):
        load_mnist(root=root, base_url=_refused_url())
    with pytest.raises(DataError, match="pass download=True or place the files"):
        load_mnist(root=root, download=False)


def test_load_mnist_uses_files_placed_by_hand(tmp_path, build):
    made = build.write_mnist_like(tmp_path / "MNIST" / "raw", compress=False)  # torchvision's layout
    ds = load_mnist(root=tmp_path, download=False)
    assert np.array_equal(ds.images[:, 0], made["train"][0])


def _cifar_archive(build, tmp_path) -> tuple[bytes, dict]:
    made = build.write_cifar_dir(tmp_path / "src" / "cifar-10-batches-bin", per_batch=2, batches=5)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    return buf.getvalue(), made


def test_load_cifar10_downloads_and_extracts(http_root, tmp_path, build, monkeypatch):
    url, served = http_root
    archive, made = _cifar_archive(build, tmp_path)
    (served / "cifar-10-binary.tar.gz").write_bytes(archive)
    monkeypatch.setattr(public, "CIFAR10_ARCHIVE_MD5", _md5(archive))
    root = tmp_path / "c"
    train = load_cifar10(root=root, base_url=url)
    assert train.images.shape == (10, 3, 32, 32)
    assert np.array_equal(train.images[:2], made["data_batch_1.bin"][0])
    assert not (root / "cifar-10-binary.tar.gz").exists()  # extracted, then removed
    test = load_cifar10(root=root, train=False, download=False)
    assert np.array_equal(test.labels, made["test_batch.bin"][1])


def test_load_cifar10_bad_checksum(http_root, tmp_path, build):
    url, served = http_root
    archive, _ = _cifar_archive(build, tmp_path)
    (served / "cifar-10-binary.tar.gz").write_bytes(archive)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_cifar10(root=tmp_path / "c", base_url=url)
    assert not (tmp_path / "c" / "cifar-10-binary.tar.gz").exists()
