"""``torch.utils.data``'s names, for code written against PyTorch: ``from gpucnn.utils.data import
DataLoader, TensorDataset, random_split``. The implementations live in :mod:`gpucnn.data`."""
from __future__ import annotations

from gpucnn.data import (ArrayDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
                         train_test_split)

__all__ = ["Dataset", "ArrayDataset", "TensorDataset", "Subset", "DataLoader", "random_split", "default_collate",
           "train_test_split"]
