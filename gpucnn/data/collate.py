"""``default_collate``: a list of dataset items -> one batch, as ``torch.utils.data.default_collate``."""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gpucnn.errors import ArgumentError, DeviceError, ShapeError

_SUPPORTED = "tensors, numpy arrays, numbers, dicts or lists"


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of items into a batch with PyTorch's rules (``torch.utils.data.default_collate``):

    - gpucnn Tensors are stacked along a new first dimension (same device; the result does not require grad);
    - NumPy arrays and NumPy scalars become a stacked cpu Tensor of the same dtype;
    - Python floats a float64 Tensor, Python ints an int64 Tensor (a float among them: the default float
      dtype), bools a bool Tensor;
    - strings and bytes are returned as they are (the sequence of them);
    - dicts are collated key by key, named tuples field by field (same type), other tuples and lists
      position by position into a **list** (so ``x, y = batch`` works for ``(x, y)`` items).

    Items whose arrays differ in shape raise :class:`~gpucnn.errors.ShapeError`, nested sequences of
    different lengths too; anything else raises :class:`~gpucnn.errors.ArgumentError`.
    """
    from gpucnn.tensor import Tensor, tensor

    given, batch = batch, list(batch)
    if not batch:
        raise ArgumentError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        _check_same(batch, Tensor, lambda t: t.shape, "tensor")
        devices = {str(t.device) for t in batch}
        if len(devices) > 1:
            raise DeviceError(f"default_collate: the tensors are on different devices ({', '.join(sorted(devices))})")
        return Tensor(elem.device.xp.stack([t.data for t in batch]), elem.device)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind in "OUSV":
            raise ArgumentError(f"default_collate: batch must contain {_SUPPORTED}; found a NumPy array of "
                                f"dtype {elem.dtype}")
        _check_same(batch, (np.ndarray, np.generic), np.shape, "array")
        return tensor(np.stack([np.asarray(a) for a in batch]))
    if isinstance(elem, numbers.Number) and not isinstance(elem, complex):
        return _numbers(batch)
    if isinstance(elem, (str, bytes)):
        return given
    if isinstance(elem, Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, Sequence):
        sizes = {len(item) for item in batch}
        if len(sizes) != 1:
            raise ShapeError(f"default_collate: each item of the batch must have the same number of fields; "
                             f"found lengths {sorted(sizes)}")
        return [default_collate(samples) for samples in zip(*batch)]
    raise ArgumentError(f"default_collate: batch must contain {_SUPPORTED}; found {type(elem).__name__}")


def _check_same(batch: list[Any], kind: Any, shape_of: Any, what: str) -> None:
    """Every item is of ``kind`` and has the first item's shape (PyTorch: 'stack expects each tensor to be
    equal size')."""
    first = shape_of(batch[0])
    for i, item in enumerate(batch):
        if not isinstance(item, kind):
            raise ArgumentError(f"default_collate: item {i} of the batch is a {type(item).__name__}, item 0 a "
                                f"{type(batch[0]).__name__}; the items of one field must be of one kind")
        if shape_of(item) != first:
            raise ShapeError(f"default_collate: stack expects each {what} to be equal size, but got "
                             f"{list(first)} at entry 0 and {list(shape_of(item))} at entry {i}")


def _numbers(batch: list[Any]) -> Any:
    from gpucnn.tensor import tensor

    if any(isinstance(v, (complex, np.complexfloating)) or not isinstance(v, numbers.Number) for v in batch):
        bad = next(v for v in batch if not isinstance(v, numbers.Number) or isinstance(v, complex))
        raise ArgumentError(f"default_collate: item of type {type(bad).__name__} among numbers; batch must "
                            f"contain {_SUPPORTED}")
    if isinstance(batch[0], float):
        return tensor(batch, dtype=np.float64)  # PyTorch's rule for Python floats
    # ints (and bools): int64 (bool), or the default float dtype when a float is among them
    return tensor(batch)
