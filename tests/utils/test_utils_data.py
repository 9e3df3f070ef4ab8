"""gpucnn.utils.data: torch.utils.data's names, for code written against PyTorch."""
from __future__ import annotations

import numpy as np
import torch.utils.data

import gpucnn.data
import gpucnn.utils.data


def test_torch_names_are_gpucnn_data_objects():
    for name in ("Dataset", "TensorDataset", "Subset", "DataLoader", "random_split", "default_collate"):
        assert hasattr(torch.utils.data, name)
        assert getattr(gpucnn.utils.data, name) is getattr(gpucnn.data, name), name


def test_a_pytorch_style_loop():
    from gpucnn.utils.data import DataLoader, TensorDataset, random_split

    ds = TensorDataset(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10))
    train, val = random_split(ds, [0.8, 0.2], generator=0)
    seen = [int(v) for _, y in DataLoader(train, batch_size=3, shuffle=True) for v in y.numpy()]
    seen += [int(v) for _, y in DataLoader(val, batch_size=3) for v in y.numpy()]
    assert sorted(seen) == list(range(10))
