"""Fully connected layer: y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""
from __future__ import annotations

from ..errors import ShapeError
from ..function import Function


class Linear(Function):
    name = "linear"

    def forward(self, xs):
        x, w, b = xs
        if x.ndim < 1 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
            raise ShapeError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (input shape "
                             f"{tuple(x.shape)}), expected {w.shape[1]} (weight shape {tuple(w.shape)})")
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise ShapeError(f"linear: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
        y = x @ w.T
        return y + b if b is not None else y

    def backward(self, xs, gy):
        x, w, b = xs
        gx = gy @ w if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            gw = gy.reshape(-1, gy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if b is not None and self.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """x @ weight.T + bias; ``weight`` is (out_features, in_features)."""
    return Linear()(x, weight, bias)
