"""Datasets, file loaders, batching and augmentation for gpucnn (NumPy only).

Everything returns plain NumPy arrays: images uint8 or float32 in NCHW layout, labels int64.
Moving batches to a device is the caller's job. Errors a user can cause raise
:class:`gpucnn.errors.DataError` naming the file and what is wrong.
"""
from __future__ import annotations

from .cifar import CIFAR10_CLASSES, load_cifar10_batches
from .dataset import ArrayDataset, train_test_split
from .digits import load_digits
from .download import cache_dir, download_file, file_md5
from .idx import load_idx
from .image_folder import load_image_folder
from .loader import DataLoader
from .npz import load_npz
from .public import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
)
from .resolve import DATASET_NAMES, resolve_dataset
from .transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Standardize,
    ToFloat,
    Transform,
    transform_from_config,
)

__all__ = [
    "ArrayDataset", "train_test_split",
    "load_digits", "load_idx", "load_cifar10_batches", "load_npz", "load_image_folder",
    "load_mnist", "load_fashion_mnist", "load_cifar10", "resolve_dataset", "DATASET_NAMES",
    "cache_dir", "download_file", "file_md5",
    "CIFAR10_CLASSES", "MNIST_CLASSES", "FASHION_MNIST_CLASSES",
    "DataLoader",
    "Transform", "ToFloat", "Normalize", "Standardize", "RandomCrop", "RandomHorizontalFlip", "Compose",
    "transform_from_config",
]
