"""Activations and the softmax family. Elementwise glue: one ``xp`` implementation for every device."""
from __future__ import annotations

from ..errors import ArgumentError
from ..function import Function
from ..random import host_generator


class ReLU(Function):
    name = "relu"

    def forward(self, xs):
        self.y = self.xp.maximum(xs[0], 0)
        return self.y

    def backward(self, xs, gy):
        return (gy * (self.y > 0),)


class LogSoftmax(Function):
    name = "log_softmax"

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

    def backward(self, xs, gy):
        return (gy * self.mask,)


def relu(x):
    """max(x, 0) elementwise."""
    return ReLU()(x)


def _dim(x, dim):
    if not -x.ndim <= dim < x.ndim:
        raise ArgumentError(f"dim {dim} is out of range for input of shape {x.shape}")
    return dim % x.ndim


def softmax(x, dim: int = -1):
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably)."""
    return Softmax(_dim(x, dim))(x)


def log_softmax(x, dim: int = -1):
    """log(softmax(x)) along ``dim``, computed without overflow."""
    return LogSoftmax(_dim(x, dim))(x)


def dropout(x, p: float = 0.5, training: bool = True):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1-p))."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout(p)(x)
