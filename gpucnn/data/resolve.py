"""``--dataset NAME|PATH``: turn a dataset name or a path into (train, test) datasets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gpucnn.errors import DataError

from .cifar import _cifar_dir, load_cifar10_batches
from .dataset import ArrayDataset, train_test_split
from .digits import load_digits
from .idx import load_idx
from .image_folder import load_image_folder
from .npz import load_npz, npz_splits
from .public import load_cifar10, load_fashion_mnist, load_mnist
from .segmentation import SegmentationDataset, load_segmentation_folder, load_segmentation_npz

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10")
#: datasets of ``--task segment`` (images with a class id per pixel)
SEGMENTATION_NAMES = ("shapes",)
TASKS = ("classify", "segment")
#: the built-in ``shapes`` dataset: 64x64 images; the test images come from another seed
SHAPES_TRAIN, SHAPES_TEST, SHAPES_SIZE = 1000, 200, 64
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar_10": "cifar10"}
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _split(ds: ArrayDataset, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    train, test = train_test_split(ds, test_fraction=0.2, seed=seed, stratify=True)
    how = f"stratified 80/20 split with seed {seed}"
    train.source = f"{ds.source}; training part of a {how}"
    test.source = f"{ds.source}; test part of a {how}"
    return train, test


def _same_classes(train: ArrayDataset, test: ArrayDataset) -> tuple[ArrayDataset, ArrayDataset]:
    """Give both parts the longer class list, so a class missing from one part still counts."""
    classes = train.classes if train.num_classes >= test.num_classes else test.classes
    shorter = test.classes if classes is train.classes else train.classes
    if classes[: len(shorter)] != shorter:
        raise DataError(
            f"the training and test parts name their classes differently: {train.classes} vs {test.classes}"
        )
    return (ArrayDataset(train.images, train.labels, classes, train.name, train.source),
            ArrayDataset(test.images, test.labels, classes, test.name, test.source))


def _idx_file(folder: Path, stem: str) -> Path | None:
    # Also the dotted spelling some mirrors use (train-images.idx3-ubyte).
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _from_directory(path: Path, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    name = path.name
    idx = {split: [_idx_file(path, s) for s in stems] for split, stems in _IDX_NAMES.items()}
    if all(idx["train"]):
        train = load_idx(*idx["train"], name=name, source=f"IDX training files in {path}")
        if all(idx["test"]):
            test = load_idx(*idx["test"], name=name, source=f"IDX test files in {path}")
            return _same_classes(train, test)
        return _split(train, seed)
    if any(_cifar_dir(path).glob("data_batch_*.bin")):
        train = load_cifar10_batches(path, train=True, name=name)
        if (_cifar_dir(path) / "test_batch.bin").is_file():
            return train, load_cifar10_batches(path, train=False, name=name)
        return _split(train, seed)
    if (path / "train").is_dir() and (path / "test").is_dir():
        train = load_image_folder(path / "train", name=name)
        # Same size and mode as the training images, so the network input matches.
        size = train.input_shape[1:]
        mode = "L" if train.input_shape[0] == 1 else "RGB"
        test = load_image_folder(path / "test", size=size, mode=mode, classes=train.classes, name=name)
        return train, test
    return _split(load_image_folder(path, name=name), seed)


def _split_segmentation(ds: SegmentationDataset, seed: int) -> tuple[SegmentationDataset, SegmentationDataset]:
    """A random 80/20 split (masks have no single label to stratify by)."""
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(ds))
    cut = len(ds) - max(1, int(round(len(ds) * 0.2))) if len(ds) > 1 else len(ds)
    if cut < 1 or cut >= len(ds):
        raise DataError(f"dataset {ds.name!r} holds {len(ds)} image(s): too few to split into training and test "
                        f"parts (give train/ and test/ folders, or an .npz with x_train/x_test)")
    how = f"random 80/20 split with seed {seed}"
    train, test = ds.subset(np.sort(order[:cut])), ds.subset(np.sort(order[cut:]))
    train.source = f"{ds.source}; training part of a {how}"
    test.source = f"{ds.source}; test part of a {how}"
    return train, test


def _same_segmentation_classes(train: SegmentationDataset, test: SegmentationDataset,
                               where: Path) -> tuple[SegmentationDataset, SegmentationDataset]:
    """Both parts with the larger class count (a class missing from one part still counts)."""
    k = max(train.num_classes, test.num_classes)
    named = train if train.num_classes == k else test
    return tuple(SegmentationDataset(d.images, d.masks, named.classes, k, name=d.name or where.name,
                                     source=d.source) for d in (train, test))  # type: ignore[return-value]


def resolve_segmentation_dataset(spec: str, *, seed: int = 0) -> tuple[SegmentationDataset, SegmentationDataset]:
    """(train, test) segmentation datasets for ``--task segment --dataset``: ``shapes`` (generated: 1,000
    training images from ``seed`` and 200 test images from ``seed + 1``, 64x64, 4 classes), a folder with
    ``images/`` and ``masks/`` (split 80/20 at random with ``seed``) or with ``train/`` and ``test/``
    folders of that layout, or an ``.npz`` with ``x``/``y`` (split 80/20) or ``x_train``/``y_train``/
    ``x_test``/``y_test``."""
    from .shapes import ShapesDataset

    key = str(spec).strip()
    if key.lower() == "shapes":
        return (ShapesDataset(SHAPES_TRAIN, SHAPES_SIZE, seed=seed).to_dataset(),
                ShapesDataset(SHAPES_TEST, SHAPES_SIZE, seed=seed + 1).to_dataset())
    path = Path(key).expanduser()
    if not path.exists():
        raise DataError(f"unknown segmentation dataset {key!r}: not one of {', '.join(SEGMENTATION_NAMES)} and no "
                        f"such file or directory")
    if path.is_dir():
        if (path / "train").is_dir() and (path / "test").is_dir():
            return _same_segmentation_classes(load_segmentation_folder(path / "train", name=path.name),
                                              load_segmentation_folder(path / "test", name=path.name), path)
        return _split_segmentation(load_segmentation_folder(path), seed)
    if path.suffix.lower() == ".npz":
        if npz_splits(path) == ["train", "test"]:
            return _same_segmentation_classes(load_segmentation_npz(path, split="train"),
                                              load_segmentation_npz(path, split="test"), path)
        return _split_segmentation(load_segmentation_npz(path), seed)
    raise DataError(f"{path}: unsupported segmentation dataset (expected a folder with images/ and masks/, or an "
                    f".npz with x and y); the built-in one is {', '.join(SEGMENTATION_NAMES)}")


def resolve_dataset(spec: str, *, seed: int = 0, task: str = "classify") -> tuple[Any, Any]:
    """(train, test) for the CLI's ``--dataset``: a name or a path.

    Names: ``digits`` (the embedded 5,000 MNIST digits, stratified 4,000/1,000 split with ``seed``),
    ``mnist``, ``fashion-mnist``, ``cifar10`` (downloaded on first use). Paths: an ``.npz`` (with
    ``x_train``/``y_train``/``x_test``/``y_test``, or ``x``/``y`` split 80/20), a folder of IDX files,
    a folder of CIFAR-10 ``.bin`` batches, or an image folder (with ``train/`` and ``test/``
    sub-folders, or one folder per class, split 80/20). ``task="segment"``:
    :func:`resolve_segmentation_dataset` (``shapes``, segmentation folders and archives).
    """
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task == "segment":
        return resolve_segmentation_dataset(spec, seed=seed)
    key = str(spec).strip()
    if key.lower() in SEGMENTATION_NAMES:
        raise DataError(f"{key!r} is a segmentation dataset (a class id per pixel): train on it with --task segment")
    name = _ALIASES.get(key.lower(), key.lower())
    if name == "digits":
        return _split(load_digits(), seed)
    if name == "mnist":
        return load_mnist(train=True), load_mnist(train=False)
    if name == "fashion-mnist":
        return load_fashion_mnist(train=True), load_fashion_mnist(train=False)
    if name == "cifar10":
        return load_cifar10(train=True), load_cifar10(train=False)
    path = Path(key).expanduser()
    if not path.exists():
        raise DataError(
            f"unknown dataset {key!r}: not one of {', '.join(DATASET_NAMES)} and no such file or directory"
        )
    if path.is_dir():
        return _from_directory(path, seed)
    if path.suffix.lower() == ".npz":
        splits = npz_splits(path)
        if splits == ["train", "test"]:
            return _same_classes(load_npz(path, "train"), load_npz(path, "test"))
        return _split(load_npz(path), seed)
    raise DataError(
        f"{path}: unsupported dataset file (expected a .npz, or a folder of IDX files, CIFAR-10 batches "
        f"or images); dataset names are {', '.join(DATASET_NAMES)}"
    )
