"""Shape and placement ops: reshape, transpose, indexing, concatenation, casts and device moves."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import Device
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ._checks import require_dim


class Reshape(Function):
    name = "reshape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, xs):
        x = xs[0]
        try:
            return x.reshape(self.shape)
        except ValueError as e:
            raise ShapeError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) to {self.shape}") from e

    def backward(self, xs, gy):
        return (gy.reshape(xs[0].shape),)


class Transpose(Function):
    name = "permute"

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, xs):
        x = xs[0]
        if sorted(a % max(x.ndim, 1) for a in self.axes) != list(range(x.ndim)):
            raise ArgumentError(f"permute: {self.axes} is not a permutation of the {x.ndim} dims of shape "
                                f"{tuple(x.shape)}")
        return x.transpose(self.axes)

    def backward(self, xs, gy):
        return (gy.transpose(tuple(np.argsort(self.axes))),)


class GetItem(Function):
    name = "getitem"

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, xs):
        try:
            return xs[0][self.index]
        except IndexError as e:
            raise ShapeError(f"indexing a tensor of shape {tuple(xs[0].shape)}: {e}") from e

    def backward(self, xs, gy):
        g = self.xp.zeros_like(xs[0])
        # add.at, not +=: an index that selects an element twice must add both gradients.
        self.xp.add.at(g, self.index, gy)
        return (g,)


class Concat(Function):
    name = "cat"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, xs):
        ref = xs[0]
        dim = require_dim("cat", self.dim, tuple(ref.shape))
        for i, x in enumerate(xs):
            if x.ndim != ref.ndim or any(a != b for d, (a, b) in enumerate(zip(x.shape, ref.shape)) if d != dim):
                raise ShapeError(f"cat: tensor {i} has shape {tuple(x.shape)}, which does not match tensor 0's "
                                 f"{tuple(ref.shape)} outside dim {self.dim}")
        self.sizes = [x.shape[dim] for x in xs]
        return self.xp.concatenate(xs, axis=dim)

    def backward(self, xs, gy):
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(self.xp.split(gy, cuts, axis=require_dim("cat", self.dim, tuple(gy.shape))))


def cat(tensors: Sequence, dim: int = 0):
    """Concatenate tensors along ``dim`` (e.g. U-Net skip connections along channels, ``dim=1``)."""
    if not tensors:
        raise ArgumentError("cat: needs at least one tensor")
    return Concat(dim)(*tensors)


def flatten(x, start_dim: int = 1, end_dim: int = -1):
    """Merge dims ``start_dim..end_dim`` into one (``start_dim=1`` keeps the batch dim, as nn.Flatten)."""
    shape = x.shape
    if not shape:
        return x.reshape(1)
    s, e = require_dim("flatten", start_dim, shape, "start_dim"), require_dim("flatten", end_dim, shape, "end_dim")
    if s > e:
        raise ArgumentError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {shape}")
    return x.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])


class Cast(Function):
    name = "to(dtype)"

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def forward(self, xs):
        return xs[0].astype(self.dtype)

    def backward(self, xs, gy):
        return (gy.astype(xs[0].dtype),)


class ToDevice(Function):
    name = "to(device)"

    def __init__(self, target: Device) -> None:
        self.target = target

    def __call__(self, x):
        self.source = x.device
        out = super().__call__(x)
        out.device = self.target
        return out

    def forward(self, xs):
        return self.target.asarray(xs[0])

    def backward(self, xs, gy):
        return (self.source.asarray(gy),)
