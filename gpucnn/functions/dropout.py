"""Channel dropout: ``dropout1d`` and ``dropout2d`` zero whole channels (feature maps), like PyTorch's.

One mask entry per (sample, channel), drawn as ``dropout`` draws its elements (the host generator on the
NumPy devices, so ``gpucnn.manual_seed`` repeats a run; CuPy's generator on cuda), broadcast over the
spatial dims; kept channels are scaled by 1 / (1 - p), so evaluation needs no rescaling.
"""
from __future__ import annotations

import numbers
from typing import Any

from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..random import host_generator
from ..tensor import Tensor
from ._checks import require_float


class ChannelDropout(Function):
    """``y = x * mask`` with ``mask`` of shape (N, C, 1, ...) (inverted dropout per channel)."""
    name = "dropout2d"
    halves_in_float32 = True  # (the same random numbers as float32; NumPy draws no float16)

    def __init__(self, name: str, p: float) -> None:
        self.name, self.p = name, p

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x, = xs
        shape = x.shape[:2] + (1,) * (x.ndim - 2)
        if self.xp.__name__ == "numpy":
            keep = host_generator().random(shape, dtype=x.dtype) >= self.p
        else:
            keep = self.xp.random.random(shape, dtype=x.dtype) >= self.p
        self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.mask

    def backward(self, xs, gy):
        return (gy * self.mask,)


def _channel_dropout(op: str, x: Any, p: Any, training: bool, inplace: bool, ranks: tuple[int, int],
                     layout: str) -> Tensor:
    require_float(op, "input", x, halves=True)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"{op}: p must be a number in [0, 1], got {p!r}")
    if x.ndim not in ranks:
        raise ShapeError(f"{op}: input must have rank {ranks[0]} or {ranks[1]} ({layout}), got rank {x.ndim} "
                         f"(input shape {x.shape})")
    if not training or p == 0.0:
        return x
    if inplace:
        from ..autograd import assign
        return assign(x, lambda old: _channel_dropout(op, old, p, training, False, ranks, layout),
                      reads_old=False, op=op)
    unbatched = x.ndim == ranks[0] and op == "dropout1d"  # (dropout2d takes 3-D as (N, C, L), as PyTorch)
    t = x.unsqueeze(0) if unbatched else x
    y = t * 0.0 if p == 1.0 else ChannelDropout(op, float(p))(t)
    return y.squeeze(0) if unbatched else y


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, L) or unbatched (C, L) input with probability ``p`` while training
    (scaling the rest by 1/(1-p)), like ``torch.nn.functional.dropout1d``."""
    return _channel_dropout("dropout1d", input, p, training, inplace, (2, 3), "(C, L) or (N, C, L)")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability ``p`` while training (scaling the rest
    by 1/(1-p)), like ``torch.nn.functional.dropout2d``; a 3-D input is (N, C, L), as PyTorch takes it."""
    return _channel_dropout("dropout2d", input, p, training, inplace, (3, 4), "(N, C, L) or (N, C, H, W)")
