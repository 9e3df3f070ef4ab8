"""default_collate against torch.utils.data.default_collate."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate as torch_collate

import gpucnn
from gpucnn.data import default_collate
from gpucnn.errors import ArgumentError, ShapeError

Pair = namedtuple("Pair", "image label")


def _same(ours, theirs):
    """Same structure, container types, dtypes and values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gpucnn.Tensor), type(ours)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (ours.dtype, theirs.dtype)
        assert ours.shape == tuple(theirs.shape) and np.array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert type(ours) is dict and list(ours) == list(theirs)
        for key in theirs:
            _same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)) and not all(isinstance(v, str) for v in theirs):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    else:
        assert ours == theirs


CASES = {
    "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)],
    "uint8 arrays": [np.zeros((1, 2, 2), np.uint8), np.full((1, 2, 2), 7, np.uint8)],
    "python ints": [3, 1, 2],
    "python floats (float64)": [0.5, 1.5],
    "an int then a float": [1, 2.5],
    "bools": [True, False],
    "numpy scalars": [np.float32(1.5), np.float32(2.0)],
    "numpy int64 scalars": [np.int64(4), np.int64(-1)],
    "tuples -> list": [(np.zeros(2, np.float32), 1), (np.ones(2, np.float32), 0)],
    "lists": [[1, 2.0], [3, 4.0]],
    "strings": [(np.zeros(1, np.float32), "cat"), (np.ones(1, np.float32), "dog")],
    "dicts": [{"x": np.zeros(2, np.float64), "y": 1}, {"x": np.ones(2, np.float64), "y": 2}],
    "named tuples": [Pair(np.zeros(2, np.float32), 1), Pair(np.ones(2, np.float32), 2)],
    "nested": [{"a": (1, [0.5, np.int32(2)])}, {"a": (2, [1.5, np.int32(3)])}],
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_collate_matches_torch(name):
    items = CASES[name]
    _same(default_collate(items), torch_collate(items))


def test_tensors_are_stacked():
    items = [gpucnn.tensor([[1.0, 2.0]]), gpucnn.tensor([[3.0, 4.0]])]
    out = default_collate(items)
    ref = torch_collate([torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])])
    _same(out, ref)
    assert not out.requires_grad


@pytest.mark.parametrize("items, error, match", [
    ([np.zeros(2), np.zeros(3)], ShapeError, r"equal size, but got \[2\] at entry 0 and \[3\] at entry 1"),
    ([gpucnn.zeros(2), gpucnn.zeros(2, 1)], ShapeError, "equal size"),
    ([(1, 2), (1,)], ShapeError, "same number of fields"),
    ([object(), object()], ArgumentError, "batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                                          "found object"),
    ([np.array(["a"]), np.array(["b"])], ArgumentError, "dtype <U1"),
    ([np.zeros(2), [0, 0]], ArgumentError, "item 1 of the batch is a list"),
    ([1, "a"], ArgumentError, "str among numbers"),
    ([], ArgumentError, "empty"),
])
def test_default_collate_errors(items, error, match):
    with pytest.raises(error, match=match):
        default_collate(items)
