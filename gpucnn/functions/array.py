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
    view_of_input = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, xs):
        x = xs[0]
        try:
            return x.reshape(self.shape)
        except ValueError as e:
            raise ShapeError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) to {self.shape}") from e

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        return (gy.reshape(xs[0].shape),)


class Transpose(Function):
    name = "permute"
    view_of_input = True

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, xs):
        x = xs[0]
        if sorted(a % max(x.ndim, 1) for a in self.axes) != list(range(x.ndim)):
            raise ArgumentError(f"permute: {self.axes} is not a permutation of the {x.ndim} dims of shape "
                                f"{tuple(x.shape)}")
        return x.transpose(self.axes)

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        return (gy.transpose(tuple(np.argsort(self.axes))),)


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

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(self.xp.split(gy, cuts, axis=require_dim("cat", self.dim, tuple(gy.shape))))


def cat(tensors: Sequence, dim: int = 0):
    """Concatenate tensors along ``dim`` (e.g. U-Net skip connections along channels, ``dim=1``);
    their dtypes are promoted to a common one, as in PyTorch."""
    from ..dtypes import result_type
    from .math import as_tensor

    tensors = list(tensors)
    if not tensors:
        raise ArgumentError("cat: needs at least one tensor")
    dtype = result_type(*tensors)
    return Concat(dim)(*(as_tensor(t, dtype, t.device) for t in tensors))


def stack(tensors: Sequence, dim: int = 0):
    """Join same-shape tensors along a new dim ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ArgumentError("stack: needs at least one tensor")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise ShapeError(f"stack: expects each tensor to be of equal shape, but tensor 0 has shape {shape} "
                             f"and tensor {i} has shape {t.shape}")
    d = require_dim("stack", dim, shape + (1,))
    return cat([t.unsqueeze(d) for t in tensors], d)


def unsqueeze(x, dim: int):
    """``x`` with a new dim of size 1 at ``dim`` (a view)."""
    d = require_dim("unsqueeze", dim, x.shape + (1,))
    return x.reshape(x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim: Any = None):
    """``x`` without its size-1 dims (all of them, or those of ``dim``, an int or a tuple: a view)."""
    dims = range(x.ndim) if dim is None else (dim,) if isinstance(dim, int) else dim
    drop = {require_dim("squeeze", d, x.shape) for d in dims}
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if not (i in drop and n == 1)))


class Expand(Function):
    """``x`` broadcast to a larger shape without copying (read-only, like PyTorch's expanded tensors)."""
    name = "expand"
    view_of_input = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        return self.xp.broadcast_to(xs[0], self.shape)

    def backward(self, xs, gy):
        from .math import unbroadcast
        return (unbroadcast(gy, tuple(xs[0].shape)),)


def expand(x, *sizes: Any):
    """``x`` expanded to ``sizes`` (-1 keeps a dim; new leading dims may be added), without copying."""
    sizes = _sizes(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's "
                         f"number of dims ({x.ndim}, shape {x.shape})")
    shape = []
    for i, n in enumerate(sizes):
        have = x.shape[i - lead] if i >= lead else None
        if n == -1:
            if have is None:
                raise ShapeError(f"expand: -1 is not allowed for the new leading dim {i}")
            n = have
        if have is not None and have != 1 and have != n:
            raise ShapeError(f"expand: the expanded size {n} must match the existing size {have} at "
                             f"non-singleton dim {i} (shape {x.shape}, sizes {tuple(sizes)})")
        shape.append(int(n))
    return Expand(tuple(shape))(x)


class Repeat(Function):
    name = "repeat"

    def __init__(self, reps: tuple[int, ...]) -> None:
        self.reps = reps

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        return self.xp.tile(x.reshape((1,) * (len(self.reps) - x.ndim) + x.shape), self.reps)

    def backward(self, xs, gy):
        x = xs[0]
        shape = (1,) * (len(self.reps) - x.ndim) + tuple(x.shape)
        # gy's dim i is reps[i] blocks of shape[i]: split each dim in two and sum over the block axes.
        split = gy.reshape(tuple(v for r, n in zip(self.reps, shape) for v in (r, n)))
        return (split.sum(axis=tuple(range(0, split.ndim, 2))).reshape(x.shape),)


def repeat(x, *sizes: Any):
    """``x`` tiled ``sizes[i]`` times along dim i (``torch.Tensor.repeat``; copies)."""
    reps = _sizes(sizes)
    if len(reps) < x.ndim:
        raise ShapeError(f"repeat: the number of repeat dims ({len(reps)}) can not be smaller than the "
                         f"tensor's number of dims ({x.ndim}, shape {x.shape})")
    if any(r < 0 for r in reps):
        raise ArgumentError(f"repeat: repeats must be non-negative, got {tuple(reps)}")
    return Repeat(tuple(int(r) for r in reps))(x)


def split(x, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Views of ``x`` along ``dim``: pieces of ``split_size`` (the last may be smaller) or of the given
    section sizes (which must add up to the dim's size)."""
    d = require_dim("split", dim, x.shape)
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and n:
            raise ArgumentError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = [int(v) for v in split_size_or_sections]
        if sum(sizes) != n:
            raise ShapeError(f"split: sections {sizes} add up to {sum(sizes)}, expected the size {n} of dim {dim}")
    starts = np.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * d
    return tuple(x[lead + (slice(int(s), int(s) + k),)] for s, k in zip(starts, sizes))


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """``x`` split into ``chunks`` views of ``ceil(size / chunks)`` along ``dim`` (fewer if it divides so)."""
    if int(chunks) < 1:
        raise ArgumentError(f"chunk: chunks must be at least 1, got {chunks}")
    n = x.shape[require_dim("chunk", dim, x.shape)]
    return split(x, max(-(-n // int(chunks)), 1), dim)


def _sizes(sizes: tuple) -> list[int]:
    """Sizes given as varargs or as one sequence, like PyTorch's ``expand(2, 3)`` / ``expand((2, 3))``."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return [int(v) for v in sizes]


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

    def reads_inputs(self):
        return ()

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

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        return self.target.asarray(xs[0])

    def backward(self, xs, gy):
        return (self.source.asarray(gy),)


class Copy(Function):
    """A copy of the input (``clone()``; ``contiguous()`` of a strided view), differentiable."""
    name = "clone"

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        return self.xp.array(xs[0], copy=True, order="C")

    def backward(self, xs, gy):
        return (gy,)
