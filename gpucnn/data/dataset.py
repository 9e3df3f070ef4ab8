"""In-memory datasets: :class:`ArrayDataset` and :func:`train_test_split`."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gpucnn.errors import ArgumentError, DataError

_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


class ArrayDataset:
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
    dataset: ArrayDataset, test_fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``dataset`` into (train, test) with ``round(N * test_fraction)`` test items.

    With ``stratify`` every class keeps (as nearly as integers allow) the same share in both parts.
    The result is a function of ``seed`` only, and both parts come back in a shuffled order, so
    files sorted by label (like the embedded digits) are safe to split.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ArgumentError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = len(dataset)
    n_test = int(round(n * float(test_fraction)))
    if n_test < 1 or n_test > n - 1:
        raise DataError(
            f"cannot split {n} items with test_fraction={test_fraction}: both parts need at least one item"
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
