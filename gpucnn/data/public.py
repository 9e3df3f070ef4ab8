"""Public datasets downloaded on first use: MNIST, Fashion-MNIST and CIFAR-10 (binary version).

Files are fetched from the canonical mirrors into :func:`cache_dir` (or ``root``), verified against
the published MD5 checksums (the ones torchvision uses; for CIFAR-10 the binary archive's MD5 from
the CIFAR page), and never re-downloaded once present. Base URLs can be overridden per call
(``base_url=``) or with the environment variables ``GPUCNN_MNIST_URL``, ``GPUCNN_FASHION_MNIST_URL``
and ``GPUCNN_CIFAR10_URL``.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from gpucnn.errors import DataError

from .cifar import load_cifar10_batches
from .dataset import ArrayDataset
from .download import cache_dir, download_file, file_md5
from .idx import load_idx

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_MEMBERS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

_SPECS = {
    "mnist": ("MNIST", "MNIST", MNIST_URL, "GPUCNN_MNIST_URL", MNIST_FILES, MNIST_CLASSES, "digits"),
    "fashion-mnist": ("Fashion-MNIST", "FashionMNIST", FASHION_MNIST_URL, "GPUCNN_FASHION_MNIST_URL",
                      FASHION_MNIST_FILES, FASHION_MNIST_CLASSES, "clothing images"),
}


def _base_url(base_url: str | None, env: str, default: str) -> str:
    url = base_url or os.environ.get(env) or default
    return url if url.endswith("/") else url + "/"


def _find(root: Path, stem: str, torch_name: str) -> Path | None:
    # Also accept torchvision's layout (root/MNIST/raw/...) so existing downloads are reused.
    for folder in (root, root / torch_name / "raw"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def _load_idx_dataset(
    key: str, root: str | os.PathLike | None, train: bool, download: bool, base_url: str | None
) -> ArrayDataset:
    title, torch_name, default_url, env, files, classes, what = _SPECS[key]
    root = Path(root).expanduser() if root is not None else cache_dir() / key
    url = _base_url(base_url, env, default_url)
    prefix = "train" if train else "t10k"
    paths, downloaded = [], False
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        found = _find(root, stem, torch_name)
        if found is None:
            if not download:
                raise DataError(
                    f"{title}: {stem}[.gz] not found in {root}; pass download=True or place the files there"
                )
            found = download_file(url + stem + ".gz", root / (stem + ".gz"), files[stem + ".gz"])
            downloaded = True
        paths.append(found)
    split = "training" if train else "test"
    origin = f"downloaded from {url}" if downloaded else "read"
    ds = load_idx(paths[0], paths[1], classes=classes, name=key)
    ds.source = f"{len(ds):,} {title} {split} {what} ({origin}; files in {paths[0].parent})"
    return ds


def load_mnist(
    root: str | os.PathLike | None = None, train: bool = True, download: bool = True, base_url: str | None = None
) -> ArrayDataset:
    """The MNIST training (60,000) or test (10,000) digits as (N, 1, 28, 28) uint8, downloaded on first use."""
    return _load_idx_dataset("mnist", root, train, download, base_url)


def load_fashion_mnist(
    root: str | os.PathLike | None = None, train: bool = True, download: bool = True, base_url: str | None = None
) -> ArrayDataset:
    """Fashion-MNIST training (60,000) or test (10,000) images as (N, 1, 28, 28) uint8, downloaded on first use."""
    return _load_idx_dataset("fashion-mnist", root, train, download, base_url)


def _cifar_ready(folder: Path) -> bool:
    return all((folder / m).is_file() for m in CIFAR10_MEMBERS if m.endswith(".bin"))


def _extract_cifar(archive: Path, target: Path) -> None:
    """Extract only the expected regular files of the archive, through a temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            wanted = {f"cifar-10-batches-bin/{m}": m for m in CIFAR10_MEMBERS}
            for member in tar:
                name = wanted.pop(member.name, None)
                if name is None:
                    continue
                if not member.isfile():
                    raise DataError(f"{archive}: {member.name} is not a regular file")
                with tar.extractfile(member) as src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        missing = [m for m in wanted.values() if m.endswith(".bin")]
        if missing:
            raise DataError(f"{archive}: the archive lacks {', '.join(missing)}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{archive}: cannot extract the CIFAR-10 archive ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_cifar10(
    root: str | os.PathLike | None = None, train: bool = True, download: bool = True, base_url: str | None = None
) -> ArrayDataset:
    """CIFAR-10 training (50,000) or test (10,000) images as (N, 3, 32, 32) uint8, downloaded on first use.

    ``root`` may already hold the ``.bin`` batches, directly or in ``cifar-10-batches-bin/``.
    """
    root = Path(root).expanduser() if root is not None else cache_dir() / "cifar10"
    folder = root / "cifar-10-batches-bin"
    origin = "read"
    if not (_cifar_ready(root) or _cifar_ready(folder)):
        archive = root / CIFAR10_ARCHIVE
        if archive.is_file():
            # Placed by hand or left by an interrupted extraction: check before trusting it.
            actual = file_md5(archive)
            if actual != CIFAR10_ARCHIVE_MD5:
                raise DataError(
                    f"{archive}: checksum mismatch: expected MD5 {CIFAR10_ARCHIVE_MD5}, got {actual}; "
                    "delete it to download again"
                )
        elif not download:
            raise DataError(
                f"CIFAR-10: no data_batch_*.bin files in {root} or {folder}; pass download=True or place "
                "the files there"
            )
        else:
            url = _base_url(base_url, "GPUCNN_CIFAR10_URL", CIFAR10_URL)
            download_file(url + CIFAR10_ARCHIVE, archive, CIFAR10_ARCHIVE_MD5)
            origin = f"downloaded from {url}{CIFAR10_ARCHIVE}"
        _extract_cifar(archive, folder)
        archive.unlink()  # the extracted batches are all that is needed; saves 170 MB
    source_dir = root if _cifar_ready(root) else folder
    ds = load_cifar10_batches(source_dir, train=train, name="cifar10")
    split = "training" if train else "test"
    ds.source = f"{len(ds):,} CIFAR-10 {split} images ({origin}; files in {source_dir})"
    return ds

