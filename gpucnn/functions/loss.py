"""Softmax cross-entropy with integer class targets, fused so its gradient is softmax - one_hot."""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..function import Function


class CrossEntropy(Function):
    name = "cross_entropy"

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def forward(self, xs):
        x, t = xs
        xp = self.xp
        shifted = x - x.max(axis=1, keepdims=True)
        self.log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        nll = -self.log_p[xp.arange(x.shape[0]), t]
        if self.reduction == "none":
            return nll
        return nll.sum() if self.reduction == "sum" else nll.mean()

    def backward(self, xs, gy):
        x, t = xs
        xp = self.xp
        g = xp.exp(self.log_p)
        g[xp.arange(x.shape[0]), t] -= 1
        if self.reduction == "none":
            return g * gy[:, None], None
        scale = gy if self.reduction == "sum" else gy / x.shape[0]
        return g * scale, None


def cross_entropy(input, target, reduction: str = "mean"):
    """Softmax cross-entropy between logits ``input`` (N, C) and integer class indices ``target`` (N,)."""
    from ..tensor import Tensor, tensor

    if reduction not in ("mean", "sum", "none"):
        raise ArgumentError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(target, Tensor):
        target = tensor(target, device=input.device)  # (np.asarray would refuse a CuPy array)
    if input.ndim != 2:
        raise ShapeError(f"cross_entropy: input must be logits of shape (N, C), got shape {input.shape}")
    if target.dtype.kind not in "iu":
        raise ArgumentError(f"cross_entropy: targets must be integer class indices, got dtype {target.dtype}")
    n, c = input.shape
    if target.shape != (n,):
        raise ShapeError(f"cross_entropy: target has shape {target.shape}, expected ({n},) for input shape "
                         f"{input.shape}")
    if n == 0:
        raise ShapeError(f"cross_entropy: empty batch (input shape {input.shape})")
    # (both bounds in one device-to-host transfer: on cuda each transfer waits for the queued kernels)
    lo, hi = target.device.xp.stack((target.data.min(), target.data.max())).tolist()
    if lo < 0 or hi >= c:
        bad = lo if lo < 0 else hi
        raise ArgumentError(f"cross_entropy: target {bad} is outside [0, {c}) for {c} classes")
    return CrossEntropy(reduction)(input, target)
