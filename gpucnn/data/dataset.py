"""Datasets: :class:`Dataset` (the map-style base, as ``torch.utils.data.Dataset``), :class:`ArrayDataset`
(images and labels as NumPy arrays), :class:`TensorDataset`, :class:`Subset`, and the splits
:func:`random_split` and :func:`train_test_split`."""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from gpucnn.errors import ArgumentError, DataError, ShapeError

_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


class Dataset:
    """The base of map-style datasets, as ``torch.utils.data.Dataset``: a subclass defines ``__len__`` and
    ``__getitem__(i)`` returning one item (a tuple of arrays, tensors or numbers), and
    :class:`~gpucnn.data.DataLoader` batches the items with its ``collate_fn``. Subclassing is optional:
    the loader takes any object with ``__len__`` and ``__getitem__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class ArrayDataset(Dataset):
    """Images and integer labels held as NumPy arrays.

    ``images`` is uint8 or float32 of shape (N, C, H, W) (NCHW always) or (N, C, L) for 1-D data;
    ``labels`` is an int64 vector of length N with values in ``[0, len(classes))``.
    ``classes`` defaults to ``["0", "1", ...]`` up to the largest label; ``name`` is a short id
    (``"digits"``, ``"mnist"``) and ``source`` says in words where the data came from.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        classes: Sequence[str] | None = None,
        name: str = "",
        source: str = "",
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype not in _IMAGE_DTYPES:
            raise DataError(f"{_who(name)}images must be uint8 or float32, got {images.dtype}")
        if images.ndim not in (3, 4):
            raise DataError(
                f"{_who(name)}images must have shape (N, C, H, W) or (N, C, L), got {images.shape}"
            )
        if labels.ndim != 1 or not (labels.dtype.kind in "iu" or labels.size == 0):
            raise DataError(
                f"{_who(name)}labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}"
            )
        if len(labels) != len(images):
            raise DataError(
                f"{_who(name)}{len(images)} images but {len(labels)} labels (the counts must match)"
            )
        labels = labels.astype(np.int64, copy=False)
        if labels.size and labels.min() < 0:
            raise DataError(f"{_who(name)}label {int(labels.min())} is negative")
        if classes is None:
            count = int(labels.max()) + 1 if labels.size else 0
            classes = [str(i) for i in range(count)]
        classes = [str(c) for c in classes]
        if labels.size and labels.max() >= len(classes):
            raise DataError(
                f"{_who(name)}label {int(labels.max())} is outside [0, {len(classes)}) "
                f"for the {len(classes)} classes"
            )
        self.images = images
        self.labels = labels
        self.classes = classes
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]):
        """``ds[i]`` gives ``(image, label)``; a slice or an index array gives a sub-dataset."""
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.subset(index)

    def subset(self, indices) -> "ArrayDataset":
        """A new dataset holding the given items (a slice, index array or boolean mask), same classes."""
        if isinstance(indices, slice):
            sel = indices
        else:
            sel = np.asarray(indices)
            if sel.dtype != np.bool_:
                sel = sel.astype(np.int64, copy=False)
        return ArrayDataset(self.images[sel], self.labels[sel], self.classes, self.name, self.source)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one item: (C, H, W), or (C, L) for 1-D data."""
        return tuple(int(d) for d in self.images.shape[1:])

    def class_counts(self) -> np.ndarray:
        """How many items each class has (length ``num_classes``)."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, n={len(self)}, input_shape={self.input_shape}, "
            f"dtype={self.images.dtype}, classes={self.num_classes})"
        )


def _who(name: str) -> str:
    return f"dataset {name!r}: " if name else ""


def train_test_split(
    dataset: ArrayDataset, test_fraction: float | None = None, seed: int = 0, stratify: bool = True, *,
    test_size: float | int | None = None,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``dataset`` into (train, test) with ``round(N * test_fraction)`` test items (default 0.2).

    ``test_size`` is scikit-learn's name: a float in (0, 1) is a fraction, an int a number of items;
    give it or ``test_fraction``, not both. With ``stratify`` every class keeps (as nearly as integers
    allow) the same share in both parts. The result is a function of ``seed`` only, and both parts come
    back in a shuffled order, so files sorted by label (like the embedded digits) are safe to split.
    Any other map-style dataset is split with :func:`random_split`.
    """
    if not isinstance(dataset, ArrayDataset):
        raise ArgumentError(f"train_test_split: dataset must be an ArrayDataset (it stratifies by its labels), "
                            f"got {type(dataset).__name__}; split other datasets with random_split")
    n = len(dataset)
    if test_size is not None and test_fraction is not None:
        raise ArgumentError(f"train_test_split: give test_size or test_fraction, not both "
                            f"(got test_size={test_size!r}, test_fraction={test_fraction!r})")
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        name, value, n_test = "test_size", test_size, int(test_size)
    else:
        name, value = ("test_size", test_size) if test_size is not None else ("test_fraction", test_fraction)
        value = 0.2 if value is None else value
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
            raise ArgumentError(f"{name} must be in (0, 1)" + (" or a number of items" if name == "test_size" else "")
                                + f", got {value!r}")
        n_test = int(round(n * float(value)))
    if n_test < 1 or n_test > n - 1:
        raise DataError(
            f"cannot split {n} items with {name}={value}: both parts need at least one item"
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    if not stratify:
        order = rng.permutation(n)
        return dataset.subset(order[n_test:]), dataset.subset(order[:n_test])

    counts = dataset.class_counts()
    # Largest-remainder rounding: per-class shares that add up to exactly n_test.
    exact = counts * (n_test / n)
    per_class = np.floor(exact).astype(np.int64)
    short = n_test - int(per_class.sum())
    if short > 0:
        by_remainder = np.argsort(-(exact - per_class), kind="stable")
        per_class[by_remainder[:short]] += 1
    test_parts, train_parts = [], []
    for c in range(dataset.num_classes):
        members = np.flatnonzero(dataset.labels == c)
        members = members[rng.permutation(len(members))]
        test_parts.append(members[: per_class[c]])
        train_parts.append(members[per_class[c]:])
    train_idx = np.concatenate(train_parts) if train_parts else np.zeros(0, np.int64)
    test_idx = np.concatenate(test_parts) if test_parts else np.zeros(0, np.int64)
    train_idx = train_idx[rng.permutation(len(train_idx))]
    test_idx = test_idx[rng.permutation(len(test_idx))]
    return dataset.subset(train_idx), dataset.subset(test_idx)


class TensorDataset(Dataset):
    """Items are rows of tensors, as ``torch.utils.data.TensorDataset``: ``ds[i]`` is
    ``(tensors[0][i], tensors[1][i], ...)``. The tensors (gpucnn Tensors, or NumPy arrays, which are
    copied into cpu tensors) must have the same size in their first dimension. A
    :class:`~gpucnn.data.DataLoader` over it gathers each batch with one indexing per tensor."""

    def __init__(self, *tensors: Any) -> None:
        from gpucnn.tensor import Tensor, tensor

        if not tensors:
            raise ArgumentError("TensorDataset needs at least one tensor")
        held = []
        for i, t in enumerate(tensors):
            if isinstance(t, np.ndarray):
                t = tensor(t)
            if not isinstance(t, Tensor):
                raise ArgumentError(f"TensorDataset: argument {i} must be a gpucnn Tensor or a NumPy array, "
                                    f"got {type(t).__name__}")
            if t.ndim == 0:
                raise ShapeError(f"TensorDataset: argument {i} is a 0-d tensor; each tensor needs a first "
                                 f"dimension of one row per item")
            held.append(t)
        sizes = [t.shape[0] for t in held]
        if len(set(sizes)) != 1:
            raise ShapeError(f"TensorDataset: size mismatch between tensors: first dimensions {sizes} "
                             f"(shapes {[t.shape for t in held]}); every tensor needs one row per item")
        self.tensors: tuple[Any, ...] = tuple(held)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        """The ``index``-th row of each tensor (new tensors, without gradient history)."""
        from gpucnn.tensor import Tensor

        if isinstance(index, Tensor):
            index = index.data
        # (index, ...) keeps a row of a 1-D tensor a 0-d array rather than a NumPy scalar
        return tuple(Tensor(t.data[index, ...], t.device) for t in self.tensors)

    def _batch(self, indices: np.ndarray) -> list[Any]:
        """The batch ``default_collate`` makes of the items at ``indices``, gathered in one go."""
        from gpucnn.tensor import Tensor

        return [Tensor(t.data[t.device.asarray(indices)], t.device) for t in self.tensors]


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, as ``torch.utils.data.Subset``: ``Subset(ds, idx)[i]`` is
    ``ds[idx[i]]``. A loader over a Subset of an :class:`ArrayDataset` or :class:`TensorDataset` keeps
    that dataset's batched path (the indices are composed, nothing is copied up front)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        check_map_style(dataset, "Subset")
        self.dataset = dataset
        self.indices = indices

    def _index_array(self) -> np.ndarray:
        return np.asarray(self.indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The items at ``indices`` (the ``__getitems__`` protocol of PyTorch's loader), through the inner
        dataset's own ``__getitems__`` where it has one."""
        inner = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return list(self.dataset.__getitems__(inner))
        return [self.dataset[i] for i in inner]


def unwrap_subsets(dataset: Any) -> tuple[Any, np.ndarray | None]:
    """``(root, indices)``: the dataset under a chain of :class:`Subset` s and the composed indices into it
    (None when ``dataset`` is no Subset)."""
    indices = None
    while isinstance(dataset, Subset):
        own = dataset._index_array()
        indices = own if indices is None else own[indices]
        dataset = dataset.dataset
    return dataset, indices


def check_map_style(dataset: Any, who: str) -> None:
    """ArgumentError unless ``dataset`` has ``__len__`` and ``__getitem__``."""
    if not (callable(getattr(dataset, "__len__", None)) and callable(getattr(dataset, "__getitem__", None))):
        raise ArgumentError(f"{who}: dataset must be map-style (define __len__ and __getitem__), got "
                            f"{type(dataset).__name__}")


def _generator(generator: Union[int, np.random.Generator, None], who: str) -> np.random.Generator:
    """A NumPy generator from ``generator``: itself, a seed, or None for gpucnn's global one (seeded by
    :func:`gpucnn.manual_seed`, as PyTorch's ``default_generator`` by ``torch.manual_seed``)."""
    if generator is None:
        from gpucnn.random import host_generator

        return host_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool) and generator >= 0:
        return np.random.Generator(np.random.PCG64(int(generator)))
    raise ArgumentError(f"{who}: generator must be a seed (an integer >= 0), a numpy.random.Generator or None, "
                        f"got {generator!r}")


def random_split(dataset: Any, lengths: Sequence[Union[int, float]],
                 generator: Union[int, np.random.Generator, None] = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping :class:`Subset` s of the given ``lengths``, as
    ``torch.utils.data.random_split``: item counts that add up to ``len(dataset)``, or fractions that add up
    to 1 (each part gets ``floor(N * fraction)`` items, then the remaining items go one each to the parts
    in order; a part of length 0 warns). The items are a random permutation drawn from ``generator``: a
    seed, a ``numpy.random.Generator``, or None for gpucnn's global generator (:func:`gpucnn.manual_seed`).
    """
    check_map_style(dataset, "random_split")
    n = len(dataset)
    lengths = list(lengths)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in lengths):
        raise ArgumentError(f"random_split: lengths must be numbers (item counts or fractions), got {lengths!r}")
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:  # fractions (PyTorch's test, so [1, 0] is fractions too)
        counts = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ArgumentError(f"random_split: fraction at index {i} is not between 0 and 1: {frac!r}")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: the split at index {i} has length 0 (an empty dataset)",
                              UserWarning, stacklevel=2)
    else:
        if any(float(v) != int(v) or v < 0 for v in lengths):
            raise ArgumentError(f"random_split: lengths must be item counts (integers >= 0) or fractions that "
                                f"add up to 1, got {lengths!r}")
        counts = [int(v) for v in lengths]
    if sum(counts) != n:
        raise ArgumentError(f"random_split: the lengths {lengths!r} add up to {sum(counts)} but the dataset has "
                            f"{n} items")
    order = _generator(generator, "random_split").permutation(n)
    ends = np.cumsum(counts)
    return [Subset(dataset, order[end - count:end].tolist()) for end, count in zip(ends, counts)]
