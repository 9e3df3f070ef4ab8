"""Elementwise arithmetic, matmul and reductions: the ops behind Tensor's operators.

They are written once with ``self.xp`` and so run unchanged on NumPy and CuPy arrays. Binary ops
broadcast like NumPy; their backward sums the gradient back over the broadcast axes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ..function import Function
from ._layout import elementwise, matched, splittable


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which an input of ``shape`` was broadcast."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    return g.reshape(shape)


class _Binary(Function):
    #: the NumPy ufunc of ``compute``: same-shape float operands on the NumPy path run it split over threads
    ufunc: np.ufunc

    def forward(self, xs):
        a, b = xs
        if a.dtype != b.dtype and a.ndim and b.ndim:
            # Mixed float32/float64 would silently promote the whole network to float64.
            raise ShapeError(f"{self.name}: operands have different dtypes ({a.dtype} and {b.dtype}); "
                             f"convert one with .to(dtype=...)")
        b = matched(a, b)
        if splittable(a, b):
            return elementwise(self.ufunc, a, b)
        try:
            return self.compute(a, b)
        except ValueError as e:
            raise ShapeError(f"{self.name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from e


class Add(_Binary):
    name = "add"
    ufunc = np.add

    def compute(self, a, b):
        return a + b

    def backward(self, xs, gy):
        a, b = xs
        return unbroadcast(gy, a.shape), unbroadcast(gy, b.shape)


class Sub(_Binary):
    name = "sub"
    ufunc = np.subtract

    def compute(self, a, b):
        return a - b

    def backward(self, xs, gy):
        a, b = xs
        return unbroadcast(gy, a.shape), unbroadcast(-gy, b.shape)


class Mul(_Binary):
    name = "mul"
    ufunc = np.multiply

    def compute(self, a, b):
        return a * b

    def backward(self, xs, gy):
        a, b = xs
        ga = unbroadcast(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(_Binary):
    name = "div"
    ufunc = np.true_divide

    def compute(self, a, b):
        return a / b

    def backward(self, xs, gy):
        a, b = xs
        ga = unbroadcast(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class MatMul(Function):
    name = "matmul"

    def forward(self, xs):
        a, b = xs
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                             f"(the last axis of the first must equal the first axis of the second)")
        return a @ b

    def backward(self, xs, gy):
        a, b = xs
        xp = self.xp
        if a.ndim == 1 or b.ndim == 1:
            a2 = a.reshape(1, -1) if a.ndim == 1 else a
            b2 = b.reshape(-1, 1) if b.ndim == 1 else b
            gy2 = gy.reshape(a2.shape[:-1] + b2.shape[-1:])
            ga, gb = gy2 @ xp.swapaxes(b2, -1, -2), xp.swapaxes(a2, -1, -2) @ gy2
            return ga.reshape(a.shape) if a.ndim == 1 else unbroadcast(ga, a.shape), \
                gb.reshape(b.shape) if b.ndim == 1 else unbroadcast(gb, b.shape)
        ga = unbroadcast(gy @ xp.swapaxes(b, -1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(xp.swapaxes(a, -1, -2) @ gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    name = "neg"

    def forward(self, xs):
        return -xs[0]

    def backward(self, xs, gy):
        return (-gy,)


class PowScalar(Function):
    name = "pow"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, xs):
        x = xs[0]
        return x ** x.dtype.type(self.exponent)

    def backward(self, xs, gy):
        x = xs[0]
        p = x.dtype.type(self.exponent)
        return (gy * p * x ** (p - 1),)


class Exp(Function):
    name = "exp"

    def forward(self, xs):
        self.y = self.xp.exp(xs[0])
        return self.y

    def backward(self, xs, gy):
        return (gy * self.y,)


class Log(Function):
    name = "log"

    def forward(self, xs):
        return self.xp.log(xs[0])

    def backward(self, xs, gy):
        return (gy / xs[0],)


class Abs(Function):
    name = "abs"

    def forward(self, xs):
        return self.xp.abs(xs[0])

    def backward(self, xs, gy):
        return (gy * self.xp.sign(xs[0]),)


class Sum(Function):
    name = "sum"

    def __init__(self, axes: tuple[int, ...], keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, xs):
        return xs[0].sum(axis=self.axes, keepdims=self.keepdim)

    def backward(self, xs, gy):
        x = xs[0]
        if not self.keepdim:
            gy = gy.reshape(tuple(1 if i in self.axes else n for i, n in enumerate(x.shape)))
        # A writable array in x's memory layout (empty_like keeps it): the next backward combines it
        # elementwise with arrays laid out like x, ~3-10x slower across layouts (see _layout).
        gx = self.xp.empty_like(x, dtype=gy.dtype)
        gx[...] = gy
        return (gx,)


class Max(Function):
    """Maximum over axes; the gradient goes to the first maximum of each reduced slice, like PyTorch."""
    name = "max"

    def __init__(self, axes: tuple[int, ...], keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, xs):
        return xs[0].max(axis=self.axes, keepdims=self.keepdim)

    def backward(self, xs, gy):
        x, xp = xs[0], self.xp
        rest = tuple(i for i in range(x.ndim) if i not in self.axes)
        # Move the reduced axes last and flatten them, so argmax picks one winner per slice.
        xt = x.transpose(rest + self.axes).reshape(tuple(x.shape[i] for i in rest) + (-1,))
        winner = xt.argmax(axis=-1)
        g = xp.zeros_like(xt)
        xp.put_along_axis(g, winner[..., None], gy.reshape(winner.shape)[..., None], axis=-1)
        g = g.reshape(tuple(x.shape[i] for i in rest + self.axes))
        inverse = tuple(sorted(range(x.ndim), key=lambda i: (rest + self.axes)[i]))
        return (g.transpose(inverse),)
