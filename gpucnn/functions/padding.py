"""``F.pad``: constant, reflect, replicate and circular padding, as PyTorch's (``torch.nn.functional.pad``).

``pad`` is a flat sequence of (left, right) pairs starting from the last dim; a negative entry crops. Each
padded dim of size ``n`` with pads ``(l, r)`` is made of pieces: the kept input ``[max(-l, 0), n - max(-r, 0))``
at output offset ``max(l, 0)``, then a left and a right border whose sources are, in input indices,

- reflect:   ``l, l-1, ..., 1`` and ``n-2, n-3, ..., n-1-r`` (the edge itself is not repeated; pad < n);
- replicate: ``0`` and ``n-1`` (one element broadcast over the border);
- circular:  the last ``l`` and the first ``r`` elements of the kept input (PyTorch wraps the cropped input).

The forward copies each piece (one dim after another, the last dim first, as PyTorch, so corners come out
right); the backward adds each border's gradient back onto its sources, slice by slice: deterministic and
with no scatter (``np.add.at``). The code is ``xp`` (NumPy or CuPy) only, so it runs on every device.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor
from ._checks import require_tensor
from .creation import int_tuple

MODES = ("constant", "reflect", "replicate", "circular")

#: one piece of a padded dim: (output slice, input slice, the input slice is one element summed over the
#: output slice in the backward: replicate's borders)
Piece = tuple[slice, slice, bool]


def _pieces(mode: str, n: int, left: int, right: int) -> list[Piece]:
    """The pieces of one dim of size ``n`` padded by ``(left, right)``: the kept input first, then the
    borders (none for ``constant``, whose borders are the fill value)."""
    a, b = max(-left, 0), n - max(-right, 0)  # the input range kept
    lo, m = max(left, 0), n + left + right
    pieces = [(slice(lo, lo + b - a), slice(a, b), False)]
    if mode == "constant":
        return pieces
    if left > 0:
        src = {"reflect": slice(left, 0, -1), "replicate": slice(0, 1), "circular": slice(b - left, b)}[mode]
        pieces.append((slice(0, left), src, mode == "replicate"))
    if right > 0:
        stop = n - 2 - right
        src = {"reflect": slice(n - 2, stop if stop >= 0 else None, -1), "replicate": slice(n - 1, n),
               "circular": slice(a, a + right)}[mode]
        pieces.append((slice(m - right, m), src, mode == "replicate"))
    return pieces


def _at(axis: int, sl: slice) -> tuple:
    return (slice(None),) * axis + (sl,)


class Pad(Function):
    name = "pad"

    def __init__(self, mode: str, pads: Sequence[tuple[int, int, int]], value: float) -> None:
        self.mode = mode
        self.pads = pads  # (axis, left, right), the last dim first
        self.value = value

    def forward(self, xs):
        x, = xs
        self.plan = [(axis, x.shape[axis], _pieces(self.mode, x.shape[axis], lt, rt)) for axis, lt, rt in self.pads]
        if self.mode == "constant":  # the fill value, and the kept input in one copy
            shape = list(x.shape)
            for axis, n, _ in self.plan:
                shape[axis] = n + self._pad(axis)
            y = self.xp.full(shape, self.value, dtype=x.dtype)
            y[self._interior(0)] = x[self._interior(1)]
            return y
        for axis, n, pieces in self.plan:
            shape = list(x.shape)
            shape[axis] = n + self._pad(axis)
            y = self.xp.empty(shape, dtype=x.dtype)
            for out, src, _ in pieces:
                y[_at(axis, out)] = x[_at(axis, src)]
            x = y
        return x

    def backward(self, xs, gy):
        x, = xs
        if self.mode == "constant":
            gx = self.xp.zeros(x.shape, dtype=gy.dtype)
            gx[self._interior(1)] = gy[self._interior(0)]
            return (gx,)
        for axis, n, pieces in reversed(self.plan):
            shape = list(gy.shape)
            shape[axis] = n
            gx = self.xp.zeros(shape, dtype=gy.dtype)
            for out, src, summed in pieces:
                g = gy[_at(axis, out)]
                gx[_at(axis, src)] += g.sum(axis=axis, keepdims=True) if summed else g
            gy = gx
        return (gy,)

    def _pad(self, axis: int) -> int:
        return next(lt + rt for a, lt, rt in self.pads if a == axis)

    def _interior(self, which: int) -> tuple:
        """The kept input's index: in the output (``which=0``) or in the input (1)."""
        index: list[slice] = [slice(None)] * (max(a for a, _, _ in self.plan) + 1 if self.plan else 0)
        for axis, _, pieces in self.plan:
            index[axis] = pieces[0][which]
        return tuple(index)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: Optional[float] = None) -> Tensor:
    """Pad (or, with negative entries, crop) ``input``, like ``torch.nn.functional.pad``.

    ``pad`` holds (left, right) pairs for the last dims, the last dim first: ``(1, 1)`` pads the width,
    ``(1, 1, 2, 2)`` the width by 1 and the height by 2. ``mode`` is ``"constant"`` (any number of dims,
    filled with ``value``, default 0), ``"reflect"``, ``"replicate"`` or ``"circular"``; these three pad
    1, 2 or 3 trailing dims of an input with one or two leading (batch, channel) dims, as PyTorch's.
    """
    op = "pad"
    require_tensor(op, "input", input)
    pads = int_tuple(op, "pad", pad)
    if not isinstance(mode, str) or mode not in MODES:
        raise ArgumentError(f"{op}: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ArgumentError(f"{op}: value must be a number or None, got {type(value).__name__} {value!r}")
    if len(pads) % 2:
        raise ShapeError(f"{op}: the padding length must be divisible by 2 ((left, right) pairs), got pad={pads}")
    k, shape = len(pads) // 2, input.shape
    if k > input.ndim:
        raise ShapeError(f"{op}: pad={pads} pads {k} dims, but the input has only {input.ndim} "
                         f"(input shape {shape}); its length must be at most twice the input's rank")
    dims = [(input.ndim - 1 - i, pads[2 * i], pads[2 * i + 1]) for i in range(k)]
    if mode == "constant":
        for axis, lt, rt in dims:
            if shape[axis] + min(lt, 0) + min(rt, 0) < 0:
                raise ShapeError(f"{op}: the input size {shape[axis]} of dim {axis}, cropped by the negative "
                                 f"padding ({lt}, {rt}), is negative (input shape {shape}, pad={pads})")
        return Pad(mode, dims, 0 if value is None else value)(input)
    if value is not None and value != 0:
        raise ArgumentError(f"{op}: mode {mode!r} takes no value (only 'constant' does), got value={value!r}")
    _check_non_constant(op, mode, shape, dims, pads)
    return Pad(mode, dims, 0)(input)


def _check_non_constant(op: str, mode: str, shape: tuple[int, ...], dims: list[tuple[int, int, int]],
                        pads: tuple[int, ...]) -> None:
    """PyTorch's limits for reflect/replicate/circular: 1-3 padded dims after 1 or 2 leading ones, no empty
    dim (but the batch), reflect's pads less than the size, circular's at most the size."""
    k, ndim = len(dims), len(shape)
    if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
        raise ShapeError(f"{op}: mode {mode!r} pads the last 1, 2 or 3 dims of an input with a channel dim and an "
                         f"optional batch dim: a pad of length {2 * k} needs an input of rank {k + 1} or {k + 2}, "
                         f"got rank {ndim} (input shape {shape}, pad={pads})"
                         if k in (1, 2, 3) else
                         f"{op}: mode {mode!r} takes a pad of length 2, 4 or 6, got pad={pads}")
    first = 1 if ndim == k + 2 else 0  # (the batch dim may be empty)
    if mode != "circular" and 0 in shape[first:]:
        raise ShapeError(f"{op}: mode {mode!r} needs non-empty dims (only the batch may be empty), got input "
                         f"shape {shape}")
    for axis, lt, rt in dims:
        n, m = shape[axis], shape[axis] + lt + rt
        least = 0 if mode == "circular" else 1
        if m < least:
            raise ShapeError(f"{op}: the padding ({lt}, {rt}) of dim {axis} of size {n} gives an output size of {m}, "
                             f"expected at least {least} (input shape {shape})")
        if mode == "reflect" and (lt >= n or rt >= n):
            raise ShapeError(f"{op}: reflect padding must be less than the input size, got padding ({lt}, {rt}) "
                             f"for dim {axis} of size {n} (input shape {shape})")
        kept = n - max(-lt, 0) - max(-rt, 0)
        if mode == "circular" and (lt > n or rt > n or max(lt, rt) > kept):
            raise ShapeError(f"{op}: circular padding ({lt}, {rt}) of dim {axis} of size {n} wraps around the "
                             f"input (of {kept} elements once cropped) more than once (input shape {shape})")
