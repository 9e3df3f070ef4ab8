"""Reductions: sum, max/min (with indices), sort/topk, norm, cumsum, logsumexp, any/all.

PyTorch's conventions: ``max(dim)``/``min(dim)``/``sort``/``topk`` give ``(values, indices)`` named
tuples and the gradient goes to the returned indices; ``max()``/``amax`` over several elements share
the gradient evenly among equal maxima; integer sums are int64.
"""
from __future__ import annotations

import collections
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ArgumentError
from ..function import Function
from ._checks import require_dim
from ..dtypes import is_floating_point

#: the named tuples of PyTorch's ``torch.return_types``
MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])
SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])


def axes_of(dim: Union[int, Sequence[int], None], shape: tuple[int, ...], op: str = "reduction") -> tuple[int, ...]:
    """``dim`` (None: all, an int, or a sequence) as sorted non-negative axes of ``shape``."""
    if dim is None:
        return tuple(range(len(shape)))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    return tuple(sorted({require_dim(op, d, shape) for d in dims}))


def _keep(gy: Any, axes: tuple[int, ...], shape: tuple[int, ...], keepdim: bool) -> Any:
    """``gy`` with the reduced axes back as size-1 dims (so it broadcasts against the input)."""
    return gy if keepdim else gy.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


class Sum(Function):
    name = "sum"
    autocast = "fp32"
    halves_in_float32 = True  # (NumPy sums float16 in float16)

    def __init__(self, axes: tuple[int, ...], keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        dtype = np.int64 if x.dtype.kind in "biu" else None  # PyTorch sums integers and bools as int64
        return x.sum(axis=self.axes, keepdims=self.keepdim, dtype=dtype)

    def backward(self, xs, gy):
        x = xs[0]
        gy = _keep(gy, self.axes, x.shape, self.keepdim)
        # A writable array in x's memory layout (empty_like keeps it): the next backward combines it
        # elementwise with arrays laid out like x, ~3-10x slower across layouts (see _layout).
        gx = self.xp.empty_like(x, dtype=gy.dtype)
        gx[...] = gy
        return (gx,)


class Amax(Function):
    """Maximum (or minimum) over axes; equal extremes share the gradient evenly (``torch.amax``)."""
    saves_output = True

    def __init__(self, axes: tuple[int, ...], keepdim: bool, largest: bool) -> None:
        self.axes, self.keepdim, self.largest = axes, keepdim, largest
        self.name = "amax" if largest else "amin"

    def forward(self, xs):
        x = xs[0]
        if x.size == 0:
            raise ArgumentError(f"{self.name}: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        reduce = x.max if self.largest else x.min
        self.y = reduce(axis=self.axes, keepdims=self.keepdim)
        return self.y

    def backward(self, xs, gy):
        x = xs[0]
        hit = x == _keep(self.y, self.axes, x.shape, self.keepdim)
        share = hit / hit.sum(axis=self.axes, keepdims=True)
        return (share.astype(gy.dtype) * _keep(gy, self.axes, x.shape, self.keepdim),)


class ExtremumDim(Function):
    """Maximum (or minimum) along one dim, with the index of the first extreme (``torch.max(x, dim)``);
    the gradient goes to that index."""

    def __init__(self, dim: int, keepdim: bool, largest: bool) -> None:
        self.dim, self.keepdim, self.largest = dim, keepdim, largest
        self.name = "max" if largest else "min"

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        if x.shape[self.dim] == 0:
            raise ArgumentError(f"{self.name}: cannot reduce dim {self.dim} of size 0 (shape {tuple(x.shape)})")
        pick = x.argmax if self.largest else x.argmin
        self.indices = self.xp.expand_dims(pick(axis=self.dim), self.dim)
        nan = self.xp.isnan(x).any(axis=self.dim, keepdims=True) if is_floating_point(x.dtype) else None
        if nan is not None and bool(nan.any()):  # NaN propagates, and its index is returned, as in PyTorch
            first_nan = self.xp.isnan(x).argmax(axis=self.dim)
            self.indices = self.xp.where(nan, self.xp.expand_dims(first_nan, self.dim), self.indices)
        y = self.xp.take_along_axis(x, self.indices, axis=self.dim)
        if not self.keepdim:
            y, self.indices = y.squeeze(self.dim), self.indices.squeeze(self.dim)
        return y

    def backward(self, xs, gy):
        x = xs[0]
        g = self.xp.zeros(x.shape, dtype=gy.dtype)
        idx = self.indices if self.keepdim else self.xp.expand_dims(self.indices, self.dim)
        gy = gy if self.keepdim else self.xp.expand_dims(gy, self.dim)
        self.xp.put_along_axis(g, idx, gy, axis=self.dim)
        return (g,)


def _extremum(x, dim: Optional[int], keepdim: bool, largest: bool, result: type):
    from ..tensor import Tensor

    if dim is None:
        return Amax(axes_of(None, x.shape), False, largest)(x)
    fn = ExtremumDim(require_dim("max" if largest else "min", dim, x.shape), keepdim, largest)
    values = fn(x)
    return result(values, Tensor._wrap(fn.indices.astype(np.int64, copy=False), x.device))


def max(input, dim: Optional[int] = None, keepdim: bool = False):
    """The maximum of all elements (a 0-d tensor) or, with ``dim``, the named tuple ``(values, indices)``."""
    return _extremum(input, dim, keepdim, True, MaxResult)


def min(input, dim: Optional[int] = None, keepdim: bool = False):
    """The minimum of all elements (a 0-d tensor) or, with ``dim``, the named tuple ``(values, indices)``."""
    return _extremum(input, dim, keepdim, False, MinResult)


def arg_extremum(input, dim: Optional[int], keepdim: bool, largest: bool):
    """``argmax``/``argmin``: over the flattened tensor (0-d) when ``dim`` is None, like PyTorch."""
    from ..tensor import Tensor

    x = input.data
    pick = x.argmax if largest else x.argmin
    if dim is None:
        idx = input.device.xp.asarray(pick())
        return Tensor._wrap(idx.reshape((1,) * x.ndim) if keepdim else idx.astype(np.int64), input.device)
    d = require_dim("argmax" if largest else "argmin", dim, input.shape)
    return Tensor._wrap(pick(axis=d, keepdims=keepdim).astype(np.int64), input.device)


class Sort(Function):
    """Sorted values along ``dim`` (the first ``k`` of them), with their indices; the gradient goes back
    to where each value came from."""
    name = "sort"

    def __init__(self, dim: int, descending: bool, k: Optional[int] = None) -> None:
        self.dim, self.descending, self.k = dim, descending, k

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x, xp, d = xs[0], self.xp, self.dim
        if self.descending:
            # Stable descending order: sort the reversed array ascending and reverse back, so equal values
            # keep their original order (negating would break on unsigned ints).
            n = x.shape[d]
            idx = n - 1 - xp.flip(xp.argsort(xp.flip(x, d), axis=d, kind="stable"), d)
        else:
            idx = xp.argsort(x, axis=d, kind="stable")
        if self.k is not None:
            idx = xp.take(idx, xp.arange(self.k), axis=d)
        self.indices = idx
        return xp.take_along_axis(x, idx, axis=d)

    def backward(self, xs, gy):
        g = self.xp.zeros(xs[0].shape, dtype=gy.dtype)
        self.xp.put_along_axis(g, self.indices, gy, axis=self.dim)
        return (g,)


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` sorted along ``dim`` (always stable here: equal values keep their order)."""
    from ..tensor import Tensor

    fn = Sort(require_dim("sort", dim, input.shape), descending)
    values = fn(input)
    return SortResult(values, Tensor._wrap(fn.indices.astype(np.int64, copy=False), input.device))


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) elements along ``dim`` as ``(values, indices)``, in sorted order."""
    from ..tensor import Tensor

    d = require_dim("topk", dim, input.shape)
    n = input.shape[d] if input.ndim else 1
    if not 0 <= int(k) <= n:
        raise ArgumentError(f"topk: k must be in [0, {n}] for dim {dim} of shape {input.shape}, got {k}")
    fn = Sort(d, largest, int(k))
    values = fn(input)
    return TopkResult(values, Tensor._wrap(fn.indices.astype(np.int64, copy=False), input.device))


class Norm(Function):
    """The p-norm over axes (p >= 1 or inf); the gradient at a zero norm is 0, as in PyTorch."""
    name = "norm"
    autocast = "fp32"
    halves_in_float32 = True
    saves_output = True

    def __init__(self, p: float, axes: tuple[int, ...], keepdim: bool) -> None:
        self.p, self.axes, self.keepdim = p, axes, keepdim

    def forward(self, xs):
        a = self.xp.abs(xs[0])
        if self.p == np.inf:
            self.y = a.max(axis=self.axes, keepdims=self.keepdim)
        elif self.p == 1:
            self.y = a.sum(axis=self.axes, keepdims=self.keepdim)
        elif self.p == 2:
            self.y = self.xp.sqrt((a * a).sum(axis=self.axes, keepdims=self.keepdim))
        else:
            self.y = (a ** self.p).sum(axis=self.axes, keepdims=self.keepdim) ** (1 / self.p)
        return self.y

    def backward(self, xs, gy):
        x, xp = xs[0], self.xp
        norm = _keep(self.y, self.axes, x.shape, self.keepdim)
        gy = _keep(gy, self.axes, x.shape, self.keepdim)
        a, sign = xp.abs(x), xp.sign(x)
        zero = gy.dtype.type(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.p == np.inf:
                hit = a == norm
                scale = sign * hit / hit.sum(axis=self.axes, keepdims=True)
            elif self.p == 1:
                scale = sign
            else:
                scale = sign * a ** (self.p - 1) / norm ** (self.p - 1)
            scale = xp.where(norm == 0, zero, scale)
        return (gy * scale.astype(gy.dtype),)


def norm(input, p: Any = "fro", dim: Any = None, keepdim: bool = False):
    """The ``p``-norm over ``dim`` (all elements by default): ``p`` a number >= 1, ``inf`` or ``"fro"``
    (= 2), like ``torch.norm`` for vectors and Frobenius norms."""
    if p == "fro":
        p = 2
    if isinstance(p, str) or not (p == np.inf or p >= 1):
        raise ArgumentError(f"norm: p must be a number >= 1, inf or 'fro', got {p!r}")
    from .math import floating

    x = floating(input)
    return Norm(float(p), axes_of(dim, x.shape, "norm"), keepdim)(x)


class CumSum(Function):
    name = "cumsum"
    autocast = "fp32"
    halves_in_float32 = True

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        return x.cumsum(axis=self.dim, dtype=np.int64 if x.dtype.kind in "biu" else None)

    def backward(self, xs, gy):
        xp, d = self.xp, self.dim
        return (xp.flip(xp.flip(gy, d).cumsum(axis=d), d),)


class LogSumExp(Function):
    """``log(sum(exp(x)))`` over axes without overflow; its gradient is the softmax."""
    name = "logsumexp"
    autocast = "fp32"
    halves_in_float32 = True
    saves_output = True

    def __init__(self, axes: tuple[int, ...], keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, xs):
        x, xp = xs[0], self.xp
        m = x.max(axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, x.dtype.type(0))  # all -inf (or an inf): no shift
        with np.errstate(divide="ignore"):
            y = xp.log(xp.exp(x - m).sum(axis=self.axes, keepdims=True)) + m
        self.y = y if self.keepdim else y.squeeze(self.axes)
        return self.y

    def backward(self, xs, gy):
        x = xs[0]
        y = _keep(self.y, self.axes, x.shape, self.keepdim)
        return (self.xp.exp(x - y) * _keep(gy, self.axes, x.shape, self.keepdim),)
