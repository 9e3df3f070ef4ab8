"""F.one_hot against torch: values, shapes, inferred num_classes, devices; bad indices and arguments."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import functional as F
from gpucnn.errors import ArgumentError, DtypeError


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("values, num_classes", [([0, 2], -1), ([0, 2], 4), ([[1, 0], [3, 3]], -1), (1, 3),
                                                 ([], 3), ([[2]], 5)])
def test_one_hot_matches_torch(values, num_classes, device):
    t = torch.tensor(values, dtype=torch.long)
    ours = F.one_hot(gpucnn.tensor(t.numpy(), device=device), num_classes)
    theirs = torch.nn.functional.one_hot(t, num_classes)
    assert ours.device == device and ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_one_hot_takes_any_integer_dtype():
    labels = np.array([3, 0, 255], dtype=np.uint8)  # (PyTorch: int64 only)
    out = F.one_hot(gpucnn.tensor(labels), 300).numpy()
    assert out.shape == (3, 300) and out.dtype == np.int64
    np.testing.assert_array_equal(out.argmax(1), labels)
    np.testing.assert_array_equal(out.sum(1), 1)


@pytest.mark.parametrize("tensor, num_classes, error, match", [
    (torch.tensor([0, -1]), -1, ArgumentError, r"class values must be non-negative, got -1"),
    (torch.tensor([0, 3]), 3, ArgumentError, r"class values must be smaller than num_classes=3, got 3"),
    (torch.tensor([1]), 0, ArgumentError, r"smaller than num_classes=0, got 1"),
    (torch.tensor([], dtype=torch.long), -1, ArgumentError, r"cannot infer the number of classes from an empty"),
    (torch.tensor([1]), -2, ArgumentError, r"num_classes must be -1 \(the largest index \+ 1\) or a count >= 0"),
    (torch.tensor([1]), 3.0, DtypeError, r"num_classes must be an int, got float 3.0"),
    (torch.tensor([0.0, 2.0]), -1, DtypeError, r"tensor must hold integer class indices, got dtype float32"),
    (torch.tensor([True]), 3, DtypeError, r"got dtype bool"),
])
def test_one_hot_errors(tensor, num_classes, error, match):
    with pytest.raises(error, match=match):
        F.one_hot(gpucnn.tensor(tensor.numpy()), num_classes)
    with pytest.raises((RuntimeError, TypeError)):  # torch rejects each of them too
        torch.nn.functional.one_hot(tensor, num_classes)
    with pytest.raises(ArgumentError, match="one_hot: tensor must be a gpucnn Tensor, got list"):
        F.one_hot([1], 3)
