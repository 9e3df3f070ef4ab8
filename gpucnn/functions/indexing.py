"""Indexing: ``x[index]``, ``x[index] = v``, gather, scatter and where/masked_fill, with PyTorch's rules.

An index may mix ints, slices, ``None``, ``...``, integer and bool tensors (or arrays/lists), e.g.
``logp[arange(n), y]``. Indices with only ints, slices, ``None`` and ``...`` are *basic*: the result is a
view of the input (it shares memory and the version counter), as in PyTorch; any index tensor makes a
copy. Gradients of selections add up where an element was selected twice.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..dtypes import result_type
from ..errors import ShapeError, TensorIndexError
from ..function import Function
from ._checks import require_dim
from .math import unbroadcast


def normalize_index(index: Any, device: Any) -> tuple[tuple, bool]:
    """``index`` as a tuple NumPy/CuPy understand on ``device``, and whether it is basic (a view).

    Index tensors must be integer or bool (PyTorch's IndexError otherwise). A basic index always ends
    with ``...``, so that all-int indices give a 0-d view rather than a copied scalar."""
    from ..tensor import Tensor

    parts = index if isinstance(index, tuple) else (index,)
    out, basic = [], True
    for p in parts:
        if p is None or p is Ellipsis or isinstance(p, slice):
            out.append(p)
            continue
        if isinstance(p, (bool, np.bool_)):
            p = [bool(p)]  # x[True] is a bool mask over a new dim in NumPy and PyTorch alike
        if isinstance(p, numbers.Integral) and not isinstance(p, np.ndarray):
            out.append(int(p))
            continue
        arr = p.data if isinstance(p, Tensor) else p
        arr = device.asarray(arr)
        if arr.dtype.kind not in "biu":
            raise TensorIndexError(f"tensors used as indices must be integer or bool, got dtype {arr.dtype}"
                                   + (" (an empty list indexes as float: pass an int tensor)" if arr.size == 0
                                      else ""))
        out.append(arr)
        basic = False
    if basic and Ellipsis not in out:
        out.append(Ellipsis)
    return tuple(out), basic


def _index_error(e: Exception, shape: tuple) -> TensorIndexError:
    return TensorIndexError(f"indexing a tensor of shape {shape}: {e}")


def _assign_into(y: Any, index: tuple, v: Any) -> None:
    """``y[index] = v`` with gpucnn's errors (IndexError, and a ShapeError where v does not broadcast)."""
    try:
        y[index] = v
    except IndexError as e:
        raise _index_error(e, tuple(y.shape)) from e
    except ValueError as e:
        raise ShapeError(f"setitem: the value of shape {tuple(v.shape)} does not broadcast to the indexed "
                         f"part of the tensor of shape {tuple(y.shape)} ({e})") from e


class GetItem(Function):
    name = "getitem"
    view_of_input = True

    def __init__(self, index: tuple, basic: bool = True) -> None:
        self.index, self.basic = index, basic

    def reads_inputs(self):
        return ()

    def view_index(self):
        return self.index if self.basic else None

    def forward(self, xs):
        x = xs[0]
        try:
            return x[self.index]
        except IndexError as e:
            raise _index_error(e, tuple(x.shape)) from e

    def backward(self, xs, gy):
        x = xs[0]
        g = self.xp.zeros(x.shape, dtype=gy.dtype)
        if self.basic:
            g[self.index] = gy  # a basic index selects each element once
        else:
            # add.at, not +=: an index that selects an element twice must add both gradients.
            _add_at(self.xp, g, self.index, gy)
        return (g,)


def _add_at(xp: Any, g: Any, index: Any, values: Any) -> None:
    if xp is np:
        np.add.at(g, index, values)
    else:
        import cupyx

        cupyx.scatter_add(g, index, values)


class SetItem(Function):
    """``y = x.copy(); y[index] = v`` (the graph of ``x[index] = v``; v already has x's dtype)."""
    name = "setitem"

    def __init__(self, index: tuple) -> None:
        self.index = index

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x, v = xs
        y = x.copy()
        _assign_into(y, self.index, v)
        return y

    def backward(self, xs, gy):
        x, v = xs
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            gx[self.index] = 0
        if self.needs_input_grad[1]:
            gv = unbroadcast(gy[self.index], tuple(v.shape))
        return gx, gv


def setitem(x, index: Any, value: Any) -> None:
    """``x[index] = value`` in place: value (a number, array or tensor) is broadcast to the indexed part
    and cast to x's dtype, as in PyTorch (where an index tensor repeats an element, which write wins,
    and so value's gradient there, is unspecified, as in PyTorch)."""
    from ..autograd import assign
    from ..tensor import Tensor

    idx, _ = normalize_index(index, x.device)
    if not isinstance(value, Tensor):
        value = Tensor._wrap(x.device.asarray(value, dtype=x.dtype), x.device)
    elif value.dtype != x.dtype:
        value = value.to(dtype=x.dtype)

    assign(x, lambda old: SetItem(idx)(old, value), reads_old=False, op="setitem",
           others_require_grad=value.requires_grad, direct=lambda: _assign_into(x.data, idx, value.data))


def _grid(xp: Any, index: Any, dim: int) -> tuple:
    """The full index of ``gather``/``scatter``: ``index`` along ``dim``, each position's own
    coordinate along every other dim."""
    grids = list(xp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _check_gather_index(op: str, x: Any, dim: int, index: Any) -> int:
    d = require_dim(op, dim, x.shape)
    if index.dtype.kind not in "iu":
        raise TensorIndexError(f"{op}: index must be an integer tensor, got dtype {index.dtype}")
    if index.ndim != x.ndim:
        raise ShapeError(f"{op}: index has {index.ndim} dims, expected {x.ndim} like the input of shape {x.shape}")
    return d


class Gather(Function):
    name = "gather"

    def __init__(self, dim: int, index: Any) -> None:
        self.dim, self.index = dim, index

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        try:
            return x[_grid(self.xp, self.index, self.dim)]
        except IndexError as e:
            raise _index_error(e, tuple(x.shape)) from e

    def backward(self, xs, gy):
        g = self.xp.zeros(xs[0].shape, dtype=gy.dtype)
        _add_at(self.xp, g, _grid(self.xp, self.index, self.dim), gy)
        return (g,)


def gather(input, dim: int, index):
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` for ``dim=1`` (``torch.gather``)."""
    d = _check_gather_index("gather", input, dim, index)
    for k in range(input.ndim):
        if k != d and index.shape[k] > input.shape[k]:
            raise ShapeError(f"gather: index has size {index.shape[k]} in dim {k}, more than the input's "
                             f"{input.shape[k]} (input {input.shape}, index {index.shape})")
    return Gather(d, index.data)(input)


class Scatter(Function):
    """``y = x.copy(); y[grid(index)] = src[:index.shape]`` (``torch.scatter``)."""
    name = "scatter"

    def __init__(self, dim: int, index: Any) -> None:
        self.dim, self.index = dim, index

    def reads_inputs(self):
        return ()

    def _src_part(self, src):
        return src[tuple(slice(0, n) for n in self.index.shape)]

    def forward(self, xs):
        x, src = xs
        y = x.copy()
        try:
            y[_grid(self.xp, self.index, self.dim)] = self._src_part(src)
        except IndexError as e:
            raise _index_error(e, tuple(x.shape)) from e
        return y

    def backward(self, xs, gy):
        x, src = xs
        grid = _grid(self.xp, self.index, self.dim)
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            gx[grid] = 0
        if self.needs_input_grad[1]:
            gsrc = self.xp.zeros(src.shape, dtype=gy.dtype)
            gsrc[tuple(slice(0, n) for n in self.index.shape)] = gy[grid]
        return gx, gsrc


def scatter(input, dim: int, index, src=None, value=None):
    """``input`` with ``src`` (a tensor) or ``value`` (a number) written at ``index`` along ``dim``
    (``torch.scatter``; where an index repeats, which write wins is unspecified, as in PyTorch)."""
    from ..tensor import Tensor

    d = _check_gather_index("scatter", input, dim, index)
    if (src is None) == (value is None):
        raise TypeError("scatter: pass exactly one of src (a tensor) and value (a number)")
    if src is None or not isinstance(src, Tensor):
        src = Tensor._wrap(input.device.xp.full(index.shape, src if value is None else value, dtype=input.dtype),
                           input.device)
    elif src.dtype != input.dtype:
        raise ShapeError(f"scatter: src has dtype {src.dtype}, expected {input.dtype} like the input")
    for k in range(input.ndim):
        if index.shape[k] > src.shape[k] or (k != d and index.shape[k] > input.shape[k]):
            raise ShapeError(f"scatter: index of shape {index.shape} is larger than src {src.shape} or "
                             f"(outside dim {d}) the input {input.shape}")
    return Scatter(d, index.data)(input, src)


class Where(Function):
    name = "where"

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        a, b = xs
        return self.xp.where(self.condition, a, b)

    def backward(self, xs, gy):
        a, b = xs
        zero = gy.dtype.type(0)
        ga = unbroadcast(self.xp.where(self.condition, gy, zero), tuple(a.shape)) if self.needs_input_grad[0] else None
        gb = unbroadcast(self.xp.where(self.condition, zero, gy), tuple(b.shape)) if self.needs_input_grad[1] else None
        return ga, gb


def where(condition, input, other):
    """Elements of ``input`` where ``condition`` is true, else of ``other`` (tensors or numbers,
    broadcast together and promoted like ``torch.where``)."""
    from ..tensor import Tensor
    from .math import as_operands

    cond = condition.data if isinstance(condition, Tensor) else condition
    dev = next(t.device for t in (condition, input, other) if isinstance(t, Tensor))
    cond = dev.asarray(cond)
    if cond.dtype.kind != "b":
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    a, b = as_operands(input, other, result_type(input, other), dev)
    try:
        return Where(cond)(a, b)
    except ValueError as e:
        raise ShapeError(f"where: shapes {tuple(cond.shape)}, {a.shape} and {b.shape} do not broadcast") from e
