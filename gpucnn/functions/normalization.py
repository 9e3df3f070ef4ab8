"""Normalization over groups of elements: ``layer_norm``, ``group_norm``, ``instance_norm`` and
``local_response_norm``, with PyTorch's names, arguments, defaults and numerics.

The first three are one op, :class:`Normalize`: the input viewed as (R, M) rows (layer norm: the last
``len(normalized_shape)`` dims; group norm: (N * G, C / G * spatial); instance norm: (N * C, spatial)), each
row standardised with its mean and biased variance, ``xhat = (x - mean) / sqrt(var + eps)``, then an
optional per-element (layer norm) or per-channel (group and instance norm) ``weight`` and ``bias``. The
backward is the closed form ``gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))`` per row with
``gxhat = gy * weight``; ``gweight = sum(gy * xhat)``, ``gbias = sum(gy)`` over the other axes. float16 and
bfloat16 inputs are computed in float32 (statistics included, as PyTorch's) and rounded once. The ops are
array code (``xp``): the same on every device, with no kernel of their own.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..amp.autocast_mode import autocast_function
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor
from ._checks import require_float, require_input


class Normalize(Function):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the rows of ``x`` viewed as ``rows``
    (R, M); ``weight``/``bias`` (optional) broadcast to ``x`` as ``affine_shape``."""
    name = "normalize"
    halves_in_float32 = True  # (statistics in float32, one rounding at the end: PyTorch's)

    def __init__(self, name: str, rows: tuple[int, int], affine_shape: tuple[int, ...], eps: float) -> None:
        self.name, self.rows, self.affine_shape, self.eps = name, rows, affine_shape, eps

    def reads_inputs(self):
        return (1,)  # (the weight; x's part is the saved xhat)

    def forward(self, xs):
        x, w, b = xs
        xp = self.xp
        v = x.reshape(self.rows)
        self.mean = v.mean(axis=1, keepdims=True)
        centred = v - self.mean
        self.var = (centred * centred).mean(axis=1, keepdims=True)
        self.rstd = 1.0 / xp.sqrt(self.var + x.dtype.type(self.eps))
        self.xhat = (centred * self.rstd).reshape(x.shape)
        y = self.xhat
        if w is not None:
            y = y * w.reshape(self.affine_shape)
        if b is not None:
            y = y + b.reshape(self.affine_shape)
        return y

    def backward(self, xs, gy):
        x, w, b = xs
        reduce = tuple(i for i, n in enumerate(self.affine_shape) if n == 1)
        gw = None if w is None or not self.needs_input_grad[1] else \
            (gy * self.xhat).sum(axis=reduce).reshape(w.shape)
        gb = None if b is None or not self.needs_input_grad[2] else gy.sum(axis=reduce).reshape(b.shape)
        gx = None
        if self.needs_input_grad[0]:
            gh = (gy if w is None else gy * w.reshape(self.affine_shape)).reshape(self.rows)
            xh = self.xhat.reshape(self.rows)
            gx = self.rstd * (gh - gh.mean(axis=1, keepdims=True) - xh * (gh * xh).mean(axis=1, keepdims=True))
            gx = gx.reshape(x.shape)
        return gx, gw, gb


def _eps(op: str, eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not float(eps) >= 0:
        raise ArgumentError(f"{op}: eps must be a number >= 0, got {eps!r}")
    return float(eps)


def _affine(op: str, input: Tensor, weight: Any, bias: Any, shape: tuple[int, ...], what: str) -> None:
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        require_float(op, name, t, like=input, halves=True)
        if tuple(t.shape) != shape:
            raise ShapeError(f"{op}: {name} has shape {tuple(t.shape)}, expected {shape} ({what}; input shape "
                             f"{input.shape})")


@autocast_function("fp32")
def layer_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims (which must equal ``normalized_shape``), then
    ``* weight + bias`` (each of shape ``normalized_shape``, optional), like ``torch.nn.functional.layer_norm``."""
    op = "layer_norm"
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
    if not isinstance(shape, (tuple, list)) or not shape or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ArgumentError(f"{op}: normalized_shape must be an integer >= 1 or a non-empty sequence of them, got "
                            f"{normalized_shape!r}")
    shape = tuple(int(n) for n in shape)
    require_input(op, input, len(shape), None, "*, " + ", ".join(map(str, shape)), halves=True)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"{op}: the input's last {len(shape)} dims must be normalized_shape {shape}, got input "
                         f"shape {input.shape}")
    _affine(op, input, weight, bias, shape, "normalized_shape")
    eps = _eps(op, eps)
    m = int(np.prod(shape))
    lead = (1,) * (input.ndim - len(shape))
    return Normalize(op, (input.numel() // m, m), lead + shape, eps)(input, weight, bias)


@autocast_function("fp32")
def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise each of ``num_groups`` groups of channels of an (N, C, *) input over its channels and
    spatial positions, then ``* weight + bias`` per channel (shape (C,), optional), like
    ``torch.nn.functional.group_norm``."""
    op = "group_norm"
    require_input(op, input, 2, None, "N, C, *", halves=True)
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1:
        raise ArgumentError(f"{op}: num_groups must be an integer >= 1, got {num_groups!r}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise ShapeError(f"{op}: the input's {c} channels are not divisible by num_groups {num_groups} "
                         f"(input shape {input.shape})")
    _affine(op, input, weight, bias, (c,), "one per channel")
    eps = _eps(op, eps)
    affine = (1, c) + (1,) * (input.ndim - 2)
    return Normalize(op, (n * int(num_groups), input.numel() // (n * int(num_groups))), affine, eps)(
        input, weight, bias)


def instance_norm(input: Tensor, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None,
                  weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (n, c) plane of an (N, C, *) input over its spatial positions, then ``* weight + bias``
    per channel, like ``torch.nn.functional.instance_norm``.

    With ``use_input_stats`` and running statistics given, they are updated IN PLACE as PyTorch does:
    ``running = (1 - momentum) * running + momentum * stat`` with ``stat`` the batch mean of the planes'
    means and of their unbiased variances. ``use_input_stats=False`` normalises with the running statistics.
    """
    op = "instance_norm"
    require_input(op, input, 3, None, "N, C, *", halves=True)
    n, c = input.shape[:2]
    if (running_mean is None) != (running_var is None):
        raise ArgumentError(f"{op}: pass both running_mean and running_var, or neither")
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None:
            if not isinstance(t, Tensor):
                raise ArgumentError(f"{op}: {name} must be a gpucnn Tensor, got {type(t).__name__}")
            if tuple(t.shape) != (c,):
                raise ShapeError(f"{op}: {name} has shape {tuple(t.shape)}, expected ({c},) (one per channel; "
                                 f"input shape {input.shape})")
    _affine(op, input, weight, bias, (c,), "one per channel")
    eps = _eps(op, eps)
    if not isinstance(use_input_stats, (bool, np.bool_)):
        raise ArgumentError(f"{op}: use_input_stats must be True or False, got {use_input_stats!r}")
    if not use_input_stats:
        if running_mean is None:
            raise ArgumentError(f"{op}: use_input_stats=False needs running_mean and running_var")
        from .batch_norm import batch_norm
        return batch_norm(input, running_mean, running_var, weight, bias, training=False, eps=eps)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise ArgumentError(f"{op}: momentum must be a number, got {momentum!r}")
    spatial = input.numel() // (n * c)
    if spatial < 2 and running_mean is not None:
        raise ShapeError(f"{op}: expected more than 1 spatial element per channel when training, got input shape "
                         f"{input.shape}")
    norm = Normalize(op, (n * c, spatial), (1, c) + (1,) * (input.ndim - 2), eps)
    y = norm(input, weight, bias)
    if running_mean is not None:
        m = float(momentum)
        for t, stat in ((running_mean, norm.mean), (running_var, norm.var * (spatial / (spatial - 1)))):
            acc = np.float32 if t.dtype.itemsize == 2 else t.dtype  # (16-bit statistics: in float32)
            batch = stat.reshape(n, c).mean(axis=0).astype(acc)
            t.data[...] = ((1 - m) * t.data.astype(acc) + m * batch).astype(t.dtype)
            t._vc.value += 1  # (an in-place change, like batch_norm's)
    return y


class LocalResponseNorm(Function):
    """``y = x / (k + alpha / size * sum_{c' in window(c)} x_c'^2) ** beta`` over channel windows
    ``c - size // 2 .. c + (size - 1) // 2`` (zero beyond the channels): PyTorch's ``local_response_norm``."""
    name = "local_response_norm"
    halves_in_float32 = True
    # PyTorch composes it of ops of which pow is on CUDA autocast's float32 list: its result is float32.
    autocast = "fp32"

    def __init__(self, size: int, alpha: float, beta: float, k: float) -> None:
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def _window_sum(self, a: Any, lo: int, hi: int) -> Any:
        """``out[:, c] = sum of a[:, c + o]`` for o in lo..hi that land inside the channels."""
        out = self.xp.zeros_like(a)
        c = a.shape[1]
        for o in range(lo, hi + 1):
            if o >= 0:
                out[:, :c - o] += a[:, o:] if o else a
            else:
                out[:, -o:] += a[:, :c + o]
        return out

    def forward(self, xs):
        x, = xs
        t = x.dtype.type
        s = self._window_sum(x * x, -(self.size // 2), (self.size - 1) // 2)
        self.div = s / t(self.size) * t(self.alpha) + t(self.k)
        self.scale = self.div ** t(-self.beta)
        return x * self.scale

    def backward(self, xs, gy):
        x, = xs
        t = x.dtype.type
        # d y_c / d x_j = [c == j] scale_c - 2 beta alpha / size * x_c * x_j * scale_c / div_c, j in window(c)
        inner = gy * x * self.scale / self.div
        spread = self._window_sum(inner, -((self.size - 1) // 2), self.size // 2)  # (the transposed window)
        return (gy * self.scale - t(2 * self.beta * self.alpha / self.size) * x * spread,)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalisation across channels of an (N, C, *) input (AlexNet's), like
    ``torch.nn.functional.local_response_norm``."""
    op = "local_response_norm"
    require_input(op, input, 3, None, "N, C, *", halves=True)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ArgumentError(f"{op}: size must be an integer >= 1, got {size!r}")
    for name, v in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)):
            raise ArgumentError(f"{op}: {name} must be a finite number, got {v!r}")
    return LocalResponseNorm(int(size), float(alpha), float(beta), float(k))(input)
