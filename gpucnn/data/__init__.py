"""Datasets, file loaders, batching and augmentation for gpucnn.

The file loaders and :class:`ArrayDataset` hold plain NumPy arrays: images uint8 or float32 in NCHW
layout, labels int64; a :class:`DataLoader` over an ArrayDataset yields NumPy batches (moving them to
a device is the caller's job). PyTorch's pieces are here under their names (also importable as
``gpucnn.utils.data``): :class:`Dataset`, :class:`TensorDataset`, :class:`Subset`, :func:`random_split`,
:func:`default_collate`, and a :class:`DataLoader` that takes any map-style dataset and a ``collate_fn``
(batches of gpucnn Tensors by default). Errors a user can cause raise :class:`gpucnn.errors.DataError`
naming the file and what is wrong (:class:`~gpucnn.errors.ArgumentError` for a bad argument).
"""
from __future__ import annotations

from .cifar import CIFAR10_CLASSES, load_cifar10_batches
from .collate import default_collate
from .dataset import ArrayDataset, Dataset, Subset, TensorDataset, random_split, train_test_split
from .digits import load_digits
from .distributed import DistributedSampler
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
from .segmentation import (SegmentationDataset, colorize_mask, load_segmentation_folder, load_segmentation_npz,
                           save_mask_png)
from .shapes import SHAPES_CLASSES, ShapesDataset
from .signals import NextSampleDataset, mu_law_decode, mu_law_encode, persistence_baseline, sine_mixture
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
    "Dataset", "ArrayDataset", "TensorDataset", "Subset", "random_split", "train_test_split", "default_collate",
    "load_digits", "load_idx", "load_cifar10_batches", "load_npz", "load_image_folder",
    "load_mnist", "load_fashion_mnist", "load_cifar10", "resolve_dataset", "DATASET_NAMES",
    "cache_dir", "download_file", "file_md5",
    "CIFAR10_CLASSES", "MNIST_CLASSES", "FASHION_MNIST_CLASSES",
    "DataLoader", "DistributedSampler",
    "Transform", "ToFloat", "Normalize", "Standardize", "RandomCrop", "RandomHorizontalFlip", "Compose",
    "transform_from_config",
    "SegmentationDataset", "load_segmentation_folder", "load_segmentation_npz", "colorize_mask", "save_mask_png",
    "ShapesDataset", "SHAPES_CLASSES",
    "sine_mixture", "mu_law_encode", "mu_law_decode", "NextSampleDataset", "persistence_baseline",
]
