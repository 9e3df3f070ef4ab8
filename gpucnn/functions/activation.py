"""Activations and the softmax family. Elementwise glue: one ``xp`` implementation for every device
(ReLU on NumPy splits large arrays over threads, see :mod:`gpucnn.workspace`)."""
from __future__ import annotations

import numbers

import numpy as np

from .. import workspace
from ..errors import ArgumentError
from ..function import Function
from ..random import host_generator
from ._checks import require_dim, require_float
from ._layout import matched


class ReLU(Function):
    name = "relu"
    saves_output = True  # backward reads y (its mask), not x

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        if self.xp is not np or x.ndim == 0 or x.size < 2 * workspace.MIN_PIECE:
            self.y = self.xp.maximum(x, 0)
            return self.y
        y = np.empty_like(x)  # (in x's memory layout)
        workspace.map_outer(lambda s: np.maximum(x[s], 0, out=y[s]), x)
        self.y = y
        return y

    def backward(self, xs, gy):
        y = self.y
        if self.xp is not np or y.ndim == 0 or y.size < 2 * workspace.MIN_PIECE:
            return (gy * (y > 0),)
        gy = matched(y, gy)  # (a gradient laid out unlike y would make both passes ~3x slower)
        gx = np.empty_like(y, dtype=gy.dtype)

        def mask(s: tuple) -> None:
            # The mask straight into the output's float buffer, then one in-place multiply: ~1.5x faster
            # than gy * (y > 0), which multiplies by a bool array through a cast.
            np.greater(y[s], 0, out=gx[s])
            gx[s] *= gy[s]

        workspace.map_outer(mask, y)
        return (gx,)


class LogSoftmax(Function):
    name = "log_softmax"
    saves_output = True

    def reads_inputs(self):
        return ()

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, xs):
        x = xs[0]
        shifted = x - x.max(axis=self.dim, keepdims=True)  # exp cannot overflow
        self.y = shifted - self.xp.log(self.xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        return self.y

    def backward(self, xs, gy):
        return (gy - self.xp.exp(self.y) * gy.sum(axis=self.dim, keepdims=True),)


class Softmax(Function):
    name = "softmax"
    saves_output = True

    def reads_inputs(self):
        return ()

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, xs):
        x = xs[0]
        e = self.xp.exp(x - x.max(axis=self.dim, keepdims=True))
        self.y = e / e.sum(axis=self.dim, keepdims=True)
        return self.y

    def backward(self, xs, gy):
        y = self.y
        return (y * (gy - (gy * y).sum(axis=self.dim, keepdims=True)),)


class Dropout(Function):
    """Inverted dropout: kept activations are scaled by 1/(1-p) so eval needs no rescaling."""
    name = "dropout"

    def __init__(self, p: float) -> None:
        self.p = p

    def forward(self, xs):
        x = xs[0]
        if self.xp.__name__ == "numpy":
            keep = host_generator().random(x.shape, dtype=x.dtype) >= self.p
        else:
            keep = self.xp.random.random(x.shape, dtype=x.dtype) >= self.p
        self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.mask

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        return (gy * self.mask,)


def relu(x, inplace: bool = False):
    """max(x, 0) elementwise (``inplace=True``: into x's own storage, as ``x.relu_()``)."""
    return x.relu_() if inplace else ReLU()(x)


def _softmax_dim(op, x, dim):
    require_float(op, "input", x)
    return require_dim(op, dim, x.shape)


def softmax(x, dim: int = -1):
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably)."""
    return Softmax(_softmax_dim("softmax", x, dim))(x)


def log_softmax(x, dim: int = -1):
    """log(softmax(x)) along ``dim``, computed without overflow."""
    return LogSoftmax(_softmax_dim("log_softmax", x, dim))(x)


def dropout(x, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1-p));
    ``inplace=True`` writes the result into x's storage."""
    require_float("dropout", "input", x)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    if inplace:
        from ..autograd import assign
        return assign(x, lambda old: dropout(old, p, training), reads_old=False, op="dropout")
    if p == 1.0:
        return x * 0.0
    return Dropout(p)(x)
