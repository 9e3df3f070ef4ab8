"""resolve_dataset: the CLI's --dataset NAME|PATH."""
from __future__ import annotations

import numpy as np
import pytest

from gpucnn.data import resolve_dataset
from gpucnn.errors import DataError


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(DataError, match="unknown dataset 'imagenet': not one of digits, mnist, fashion-mnist, cifar10"):
        resolve_dataset("imagenet")


def test_npz_with_and_without_splits(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x_train=rng.integers(0, 256, (8, 4, 4), dtype=np.uint8), y_train=np.arange(8) % 2,
             x_test=rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), y_test=np.array([0, 1, 2]))
    train, test = resolve_dataset(str(tmp_path / "s.npz"))
    assert (len(train), len(test)) == (8, 3) and train.num_classes == test.num_classes == 3
    np.savez(tmp_path / "one.npz", x=rng.integers(0, 256, (20, 4, 4), dtype=np.uint8), y=np.arange(20) % 2)
    train, test = resolve_dataset(str(tmp_path / "one.npz"), seed=1)
    assert (len(train), len(test)) == (16, 4) and test.class_counts().tolist() == [2, 2]


def test_idx_directory(tmp_path, build):
    build.write_mnist_like(tmp_path / "idx", n_train=10, n_test=5, compress=False)
    train, test = resolve_dataset(str(tmp_path / "idx"))
    assert (len(train), len(test)) == (10, 5) and train.input_shape == (1, 28, 28)


def test_cifar_directory(tmp_path, build):
    build.write_cifar_dir(tmp_path / "cif", per_batch=3, batches=2)
    train, test = resolve_dataset(str(tmp_path / "cif"))
    assert (len(train), len(test)) == (6, 3) and train.input_shape == (3, 32, 32)


def test_image_folders(tmp_path, build):
    build.write_image_folder(tmp_path / "imgs" / "train", per_class=3)
    build.write_image_folder(tmp_path / "imgs" / "test", per_class=1, seed=1)
    train, test = resolve_dataset(str(tmp_path / "imgs"))
    assert (len(train), len(test)) == (6, 2) and train.classes == test.classes == ["cat", "dog"]
    build.write_image_folder(tmp_path / "flat", per_class=5)
    train, test = resolve_dataset(str(tmp_path / "flat"))
    assert (len(train), len(test)) == (8, 2) and test.class_counts().tolist() == [1, 1]


def test_unsupported_file(tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(DataError, match="data.csv: unsupported dataset file"):
        resolve_dataset(str(tmp_path / "data.csv"))
