"""Losses, with PyTorch's arguments, defaults and numerics (``torch.nn.functional``).

- :func:`cross_entropy` (class indices or class probabilities, ``weight``, ``ignore_index``,
  ``label_smoothing``, inputs ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``) and :func:`nll_loss`: one fused
  op each (:class:`CrossEntropy`, :class:`NLLLoss`), the gradient written in closed form
  (``softmax * sum(q) - q`` for the per-class coefficients ``q``).
- The pointwise losses (:func:`mse_loss`, :func:`l1_loss`, :func:`smooth_l1_loss`, :func:`huber_loss`,
  :func:`binary_cross_entropy`, :func:`binary_cross_entropy_with_logits`, :func:`kl_div`): each one
  :class:`Pointwise` subclass with its value and its derivatives in x and in the target side by side;
  the reduction is shared.

``reduction`` is ``"none"``, ``"mean"`` or ``"sum"`` everywhere (``kl_div`` also ``"batchmean"``); the
deprecated ``size_average``/``reduce`` map onto it with PyTorch's rule and warning. A target of the
wrong shape or dtype, or a class index out of range, is an error naming the loss, never a broadcast.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Optional

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..amp.autocast_mode import autocast_function
from ._checks import require_float

REDUCTIONS = ("none", "mean", "sum")


# -- argument handling shared by every loss ----------------------------------------------------------
def legacy_reduction(size_average: Any, reduce: Any) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: None counts as True."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _reduction(op: str, reduction: Any, size_average: Any = None, reduce: Any = None,
               allowed: tuple[str, ...] = REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      f"instead.", UserWarning, stacklevel=3)
    if reduction not in allowed:
        raise ArgumentError(f"{op}: reduction must be {', '.join(map(repr, allowed[:-1]))} or {allowed[-1]!r}, "
                            f"got {reduction!r}")
    return reduction


def _as_tensor(x: Any, like: Any) -> Any:
    from ..tensor import Tensor, tensor

    if x is None or isinstance(x, Tensor):
        return x
    return tensor(x, device=like.device)  # (np.asarray would refuse a CuPy array)


def _float_like(op: str, name: str, t: Any, input: Any) -> Any:
    """``t`` (a tensor or array-like) as a float tensor of input's dtype and device."""
    t = _as_tensor(t, input)
    require_float(op, name, t, halves=True)
    if t.dtype != input.dtype:
        raise ArgumentError(f"{op}: {name} has dtype {t.dtype}, expected {input.dtype} like the input "
                            f"(convert one with .to(dtype=...))")
    if t.requires_grad and name in ("weight", "pos_weight"):
        raise ArgumentError(f"{op}: {name} requires grad, but gradients with respect to {name} are not "
                            f"computed; pass {name}.detach()")
    return t


def _same_shape(op: str, target: Any, input: Any) -> None:
    if target.shape != input.shape:
        raise ShapeError(f"{op}: target has shape {target.shape}, expected the input's shape {input.shape} "
                         f"(PyTorch would broadcast them, which is almost always a mistake)")


def _broadcastable(op: str, name: str, w: Any, shape: tuple[int, ...]) -> None:
    try:
        ok = np.broadcast_shapes(w.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's shape {shape}")


def _finite_number(op: str, name: str, v: Any, low: float, inclusive: bool) -> float:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(float(v)) and \
        (float(v) >= low if inclusive else float(v) > low)
    if not ok:
        raise ArgumentError(f"{op}: {name} must be a number {'>=' if inclusive else '>'} {low:g}, got {v!r}")
    return float(v)


# -- cross_entropy and nll_loss ------------------------------------------------------------------------
def _classes_last(a: Any, xp: Any) -> Any:
    """(N, C, d1, ...) -> (N * d1 * ..., C): one row per prediction."""
    return xp.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _classes_back(rows: Any, shape: tuple[int, ...], xp: Any) -> Any:
    """Inverse of :func:`_classes_last` for an array of ``shape``."""
    n, c, rest = shape[0], shape[1], shape[2:]
    return xp.moveaxis(rows.reshape((n,) + rest + (c,)), -1, 1)


def _reduce(loss: Any, reduction: str, divisor: Any) -> Any:
    if reduction == "none":
        return loss
    with np.errstate(invalid="ignore", divide="ignore"):  # (every target ignored: nan, as PyTorch)
        return loss.sum() if reduction == "sum" else loss.sum() / divisor


def _over(xp: Any, gy: Any, divisor: Any) -> Any:
    """``gy / divisor`` for a weighted mean's backward; 0 where every target was ignored (the loss is nan
    there, its gradient 0, as PyTorch's), decided on the device (no host sync)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(divisor != 0, gy / divisor, 0).astype(gy.dtype, copy=False)


class CrossEntropy(Function):
    """``-sum_c q[i, c] * log_softmax(x)[i, c]`` per prediction ``i``, with ``q`` from the target:

    - class indices: ``q = w[t] (1 - eps) onehot(t) + eps / C * w`` (0 for ``ignore_index``); ``mean``
      divides by ``sum(w[t])`` over the predictions not ignored (PyTorch's weighted mean, its
      label-smoothing term normalised the same way);
    - probabilities: ``q = w * (t (1 - eps) + eps / C)``; ``mean`` divides by the number of predictions.

    The gradient in x is ``softmax * sum_c q - q``; for probability targets also ``-(1 - eps) w log p``
    in the target.
    """
    halves_in_float32 = True  # (16-bit inputs: computed in float32, the loss rounded once)
    name = "cross_entropy"

    def __init__(self, reduction: str, ignore_index: int, label_smoothing: float, probabilities: bool) -> None:
        self.reduction, self.ignore_index = reduction, ignore_index
        self.eps, self.probabilities = label_smoothing, probabilities

    def reads_inputs(self):
        return (1, 2) if self.probabilities else (2,)  # (x enters through log_p, which it keeps)

    def forward(self, xs):
        x, t, w = xs
        xp = self.xp
        c = x.shape[1]
        rows = _classes_last(x, xp)
        shifted = rows - rows.max(axis=1, keepdims=True)
        self.log_p = log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        eps = self.eps
        if self.probabilities:
            q = _classes_last(t, xp) * (1 - eps) + eps / c
            if w is not None:
                q = q * w
            loss = -(log_p * q).sum(axis=1)
            divisor = loss.size
        else:
            t = t.reshape(-1)
            keep = t != self.ignore_index
            self.t_safe = xp.where(keep, t, 0)
            self.w_t = (w[self.t_safe] if w is not None else xp.ones(t.shape, x.dtype)) * keep
            picked = xp.take_along_axis(log_p, self.t_safe[:, None], axis=1)[:, 0]
            loss = -(1 - eps) * self.w_t * picked
            if eps:
                self.keep = keep
                smooth = -(log_p * w).sum(axis=1) if w is not None else -log_p.sum(axis=1)
                loss = loss + (eps / c) * smooth * keep
            divisor = self.w_t.sum()
        self.divisor = divisor
        out = _reduce(loss, self.reduction, divisor)
        return loss.reshape((x.shape[0],) + x.shape[2:]) if self.reduction == "none" else out

    def backward(self, xs, gy):
        x, t, w = xs
        xp = self.xp
        c, eps = x.shape[1], self.eps
        g_loss = gy.reshape(-1, 1) if self.reduction == "none" else \
            (gy if self.reduction == "sum" else _over(xp, gy, self.divisor))
        p = xp.exp(self.log_p)
        gt = None
        if self.probabilities:
            q = _classes_last(t, xp) * (1 - eps) + eps / c
            if w is not None:
                q = q * w
            g = p * q.sum(axis=1, keepdims=True) - q
            if self.needs_input_grad[1]:
                gt = -(1 - eps) * self.log_p * (w if w is not None else 1) * g_loss
                gt = _classes_back(gt, x.shape, xp)
        else:
            total = (1 - eps) * self.w_t
            if eps:
                w_sum = w.sum() if w is not None else c
                total = total + (eps / c) * w_sum * self.keep
                smooth = (eps / c) * (w[None, :] if w is not None else 1) * self.keep[:, None]
                g = p * total[:, None] - smooth
            else:
                g = p * total[:, None]
            rows = xp.arange(g.shape[0])
            g[rows, self.t_safe] -= (1 - eps) * self.w_t
        gx = _classes_back(g * g_loss, x.shape, xp) if self.needs_input_grad[0] else None
        return gx, gt, None


class NLLLoss(Function):
    """``-w[t] * x[i, t]`` per prediction (x: log-probabilities); ``mean`` divides by ``sum(w[t])`` over
    the predictions not ignored."""
    halves_in_float32 = True  # (16-bit inputs: computed in float32, the loss rounded once)
    name = "nll_loss"

    def __init__(self, reduction: str, ignore_index: int) -> None:
        self.reduction, self.ignore_index = reduction, ignore_index

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x, t, w = xs
        xp = self.xp
        rows = _classes_last(x, xp)
        t = t.reshape(-1)
        keep = t != self.ignore_index
        self.t_safe = xp.where(keep, t, 0)
        self.w_t = (w[self.t_safe] if w is not None else xp.ones(t.shape, x.dtype)) * keep
        loss = -self.w_t * xp.take_along_axis(rows, self.t_safe[:, None], axis=1)[:, 0]
        self.divisor = self.w_t.sum()
        out = _reduce(loss, self.reduction, self.divisor)
        return loss.reshape((x.shape[0],) + x.shape[2:]) if self.reduction == "none" else out

    def backward(self, xs, gy):
        x = xs[0]
        xp = self.xp
        g_loss = gy.reshape(-1) if self.reduction == "none" else \
            (gy if self.reduction == "sum" else _over(xp, gy, self.divisor))
        g = xp.zeros((self.t_safe.size, x.shape[1]), dtype=x.dtype)
        g[xp.arange(g.shape[0]), self.t_safe] = -self.w_t * g_loss
        return _classes_back(g, x.shape, xp), None, None


def _class_target(op: str, input: Any, target: Any, ignore_index: int) -> None:
    """Integer class indices of input's shape without the class dim, each in [0, C) or ignore_index;
    both bounds in one device-to-host transfer (on cuda each transfer waits for the queued kernels)."""
    n_classes = input.shape[1]
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ShapeError(f"{op}: target has shape {target.shape}, expected {expected} for input shape "
                         f"{input.shape} (class indices: the input's shape without the class dim 1)")
    if target.numel() == 0:
        return
    xp = target.device.xp
    t = target.data
    valid = xp.where(t == ignore_index, 0, t)
    lo, hi = xp.stack((valid.min(), valid.max())).tolist()
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise ArgumentError(f"{op}: target {bad} is outside [0, {n_classes}) for {n_classes} classes (and is "
                            f"not ignore_index={ignore_index})")


def _batched(op: str, input: Any, target: Any, probabilities: bool) -> tuple[Any, Any, bool]:
    """(C,) input (one unbatched prediction) as (1, C), its target as (1,) / (1, C)."""
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    if input.ndim > 1:
        return input, target, False
    if target.ndim != (1 if probabilities else 0):
        want = f"({input.shape[0]},) probabilities" if probabilities else "() a single class index"
        raise ShapeError(f"{op}: for an unbatched input of shape {input.shape}, target must be {want}, got "
                         f"shape {target.shape}")
    return input.reshape(1, -1), target.reshape((1,) + target.shape), True


def _class_weight(op: str, weight: Any, input: Any) -> Any:
    weight = _float_like(op, "weight", weight, input) if weight is not None else None
    if weight is not None and weight.shape != (input.shape[1],):
        raise ShapeError(f"{op}: weight has shape {weight.shape}, expected ({input.shape[1]},): one per class "
                         f"(input shape {input.shape})")
    return weight


def _ignore_index(op: str, ignore_index: Any) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (numbers.Integral, np.integer)):
        raise ArgumentError(f"{op}: ignore_index must be an integer, got {ignore_index!r}")
    return int(ignore_index)


@autocast_function("fp32")
def cross_entropy(input: Any, target: Any, weight: Any = None, size_average: Optional[bool] = None,
                  ignore_index: int = -100, reduce: Optional[bool] = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Any:
    """Softmax cross-entropy of logits ``input`` ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)`` against class
    indices (integers, the input's shape without dim 1) or class probabilities (floats, the input's
    shape), as ``torch.nn.functional.cross_entropy``: ``weight`` per class, ``ignore_index`` (class
    targets), ``label_smoothing`` in [0, 1]; ``reduction="mean"`` with class targets is PyTorch's
    weighted mean (divided by the summed weights of the targets not ignored)."""
    op = "cross_entropy"
    require_float(op, "input", input, halves=True)
    reduction = _reduction(op, reduction, size_average, reduce)
    ignore_index = _ignore_index(op, ignore_index)
    label_smoothing = _finite_number(op, "label_smoothing", label_smoothing, 0.0, True)
    if label_smoothing > 1:
        raise ArgumentError(f"{op}: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    target = _as_tensor(target, input)
    probabilities = target.dtype.kind == "f"
    if not probabilities and target.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: target must be integer class indices or float class probabilities, got "
                            f"dtype {target.dtype}")
    x, t, unbatched = _batched(op, input, target, probabilities)
    if x.shape[0] == 0:
        raise ShapeError(f"{op}: empty batch (input shape {input.shape})")
    w = _class_weight(op, weight, x)
    if probabilities:
        index_shape = (x.shape[0],) + x.shape[2:]
        if t.shape != x.shape and t.shape == index_shape:
            raise ArgumentError(f"{op}: target of shape {target.shape} has the shape of class indices, which must "
                                f"be integer class indices, got dtype {t.dtype} (float targets are class "
                                f"probabilities, of the input's shape {input.shape})")
        t = _float_like(op, "target", t, x)
        if t.shape != x.shape:
            raise ShapeError(f"{op}: target has shape {target.shape}, expected {input.shape} for input shape "
                             f"{input.shape} (class probabilities: the input's shape; class indices: without "
                             f"the class dim 1)")
    else:
        _class_target(op, x, t, ignore_index)
    out = CrossEntropy(reduction, ignore_index, label_smoothing, probabilities)(x, t, w)
    return out.reshape(()) if unbatched and reduction == "none" else out


@autocast_function("fp32")
def nll_loss(input: Any, target: Any, weight: Any = None, size_average: Optional[bool] = None,
             ignore_index: int = -100, reduce: Optional[bool] = None, reduction: str = "mean") -> Any:
    """Negative log-likelihood of log-probabilities ``input`` ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``
    (e.g. from ``log_softmax``) at class indices ``target``, as ``torch.nn.functional.nll_loss``
    (``weight`` per class, ``ignore_index``, PyTorch's weighted mean)."""
    op = "nll_loss"
    require_float(op, "input", input, halves=True)
    reduction = _reduction(op, reduction, size_average, reduce)
    ignore_index = _ignore_index(op, ignore_index)
    target = _as_tensor(target, input)
    if target.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: target must be integer class indices, got dtype {target.dtype}")
    x, t, unbatched = _batched(op, input, target, False)
    if x.shape[0] == 0:
        raise ShapeError(f"{op}: empty batch (input shape {input.shape})")
    w = _class_weight(op, weight, x)
    _class_target(op, x, t, ignore_index)
    out = NLLLoss(reduction, ignore_index)(x, t, w)
    return out.reshape(()) if unbatched and reduction == "none" else out


# -- pointwise losses ---------------------------------------------------------------------------------
class Pointwise(Function):
    """A loss ``l(x, t)`` per element, optionally times a ``weight`` (broadcast), then reduced.

    Subclasses define ``value(xp, x, t)`` and ``grads(xp, x, t)`` (dl/dx, dl/dt) side by side; ``extra``
    optional arrays (pos_weight) follow the weight among the inputs and reach both as ``self.extra``.
    ``weighted_mean``: ``"weights"`` divides a weighted mean by ``sum(weight)`` (PyTorch's mse/l1),
    ``"count"`` by the number of elements (the others).
    """
    halves_in_float32 = True  # (16-bit inputs: computed in float32, the loss rounded once)
    weighted_mean = "count"

    def __init__(self, reduction: str, **params: Any) -> None:
        self.reduction, self.params = reduction, params

    def forward(self, xs):
        x, t, w, *self.extra = xs
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            loss = self.value(self.xp, x, t, **self.params)
        if w is not None:
            loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "batchmean":
            return loss.sum() / x.shape[0] if x.ndim else loss.sum()
        if w is not None and self.weighted_mean == "weights":
            return loss.sum() / self.xp.broadcast_to(w, x.shape).sum()
        with np.errstate(invalid="ignore"):  # (an empty input: nan, as PyTorch)
            return loss.mean()

    def backward(self, xs, gy):
        x, t, w, *self.extra = xs
        xp = self.xp
        if self.reduction in ("none", "sum"):
            scale = gy
        elif self.reduction == "batchmean":
            scale = gy / x.shape[0] if x.ndim else gy
        elif w is not None and self.weighted_mean == "weights":
            scale = gy / xp.broadcast_to(w, x.shape).sum()
        else:
            scale = gy / max(x.size, 1)
        if w is not None:
            scale = scale * w
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gx, gt = self.grads(xp, x, t, **self.params)
        return (gx * scale if self.needs_input_grad[0] else None,
                gt * scale if self.needs_input_grad[1] and gt is not None else None,
                None, *(None for _ in self.extra))

    def value(self, xp: Any, x: Any, t: Any, **params: Any) -> Any:
        raise NotImplementedError

    def grads(self, xp: Any, x: Any, t: Any, **params: Any) -> tuple[Any, Any]:
        raise NotImplementedError


class MSE(Pointwise):
    name = "mse_loss"
    weighted_mean = "weights"

    def value(self, xp, x, t):
        d = x - t
        return d * d

    def grads(self, xp, x, t):
        g = 2 * (x - t)
        return g, -g


class L1(Pointwise):
    name = "l1_loss"
    weighted_mean = "weights"

    def value(self, xp, x, t):
        return xp.abs(x - t)

    def grads(self, xp, x, t):
        g = xp.sign(x - t)  # (0 where x == t, as PyTorch)
        return g, -g


class SmoothL1(Pointwise):
    """``0.5 d^2 / beta`` where ``|d| < beta``, ``|d| - beta / 2`` elsewhere (``beta = 0``: l1)."""
    name = "smooth_l1_loss"

    def value(self, xp, x, t, beta):
        d = xp.abs(x - t)
        return d - 0.5 * beta if beta == 0 else xp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)

    def grads(self, xp, x, t, beta):
        d = x - t
        g = xp.sign(d) if beta == 0 else xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))
        return g, -g


class Huber(Pointwise):
    """``0.5 d^2`` where ``|d| < delta``, ``delta (|d| - delta / 2)`` elsewhere."""
    name = "huber_loss"

    def value(self, xp, x, t, delta):
        d = xp.abs(x - t)
        return xp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))

    def grads(self, xp, x, t, delta):
        g = xp.clip(x - t, x.dtype.type(-delta), x.dtype.type(delta))
        return g, -g


class BinaryCrossEntropy(Pointwise):
    """``-(t log x + (1 - t) log(1 - x))``, each log clamped at -100 as PyTorch's (so x = 0 or 1 give
    100, not inf); the x gradient divides by ``max(x (1 - x), 1e-12)``, as PyTorch's."""
    name = "binary_cross_entropy"

    def value(self, xp, x, t):
        log_x, log_1mx = xp.maximum(xp.log(x), -100), xp.maximum(xp.log1p(-x), -100)
        return -(t * log_x + (1 - t) * log_1mx)

    def grads(self, xp, x, t):
        gx = (x - t) / xp.maximum(x * (1 - x), 1e-12)
        gt = xp.maximum(xp.log1p(-x), -100) - xp.maximum(xp.log(x), -100)
        return gx, gt


class BinaryCrossEntropyWithLogits(Pointwise):
    """``pw t softplus(-x) + (1 - t) softplus(x)`` = ``-(pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``
    without overflow, ``pw`` the ``pos_weight`` (broadcast along the last dim)."""
    name = "binary_cross_entropy_with_logits"

    def _pos(self, x):
        return self.extra[0] if self.extra and self.extra[0] is not None else 1

    def value(self, xp, x, t):
        sp_pos = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(x)
        return self._pos(x) * t * (sp_pos - x) + (1 - t) * sp_pos  # (softplus(-x) = softplus(x) - x)

    def grads(self, xp, x, t):
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(x)
        sp_pos = xp.maximum(x, 0) + xp.log1p(e)
        pw = self._pos(x)
        return (1 - t) * s - pw * t * (1 - s), pw * (sp_pos - x) - sp_pos


class KLDiv(Pointwise):
    """``t (log t - x)`` (``xlogy(t, t) - t x``: 0 where t = 0, nan where t < 0), or with ``log_target``
    ``exp(t) (t - x)``; x holds log-probabilities. The target gradient where t <= 0 is nan, as PyTorch's."""
    name = "kl_div"

    def value(self, xp, x, t, log_target):
        if log_target:
            return xp.exp(t) * (t - x)
        t_log_t = xp.where(t > 0, t * xp.log(xp.where(t > 0, t, 1)), xp.where(t == 0, 0, xp.nan))
        return t_log_t - t * x

    def grads(self, xp, x, t, log_target):
        if log_target:
            e = xp.exp(t)
            return -e, e * (t - x + 1)
        log_t = xp.where(t > 0, xp.log(xp.where(t > 0, t, 1)), xp.nan)
        return -t, (log_t + 1 - x).astype(x.dtype, copy=False)


def _pointwise(cls: type, input: Any, target: Any, reduction: str, weight: Any = None, *extra: Any,
               weight_shape: str = "broadcast", **params: Any) -> Any:
    op = cls.name
    require_float(op, "input", input, halves=True)
    target = _float_like(op, "target", target, input)
    _same_shape(op, target, input)
    if weight is not None:
        weight = _float_like(op, "weight", weight, input)
        if weight_shape == "same" and weight.shape != input.shape:
            raise ShapeError(f"{op}: weight has shape {weight.shape}, expected the input's shape {input.shape}")
        _broadcastable(op, "weight", weight, input.shape)
    return cls(reduction, **params)(input, target, weight, *extra)


@autocast_function("fp32")
def mse_loss(input: Any, target: Any, size_average: Optional[bool] = None, reduce: Optional[bool] = None,
             reduction: str = "mean", weight: Any = None) -> Any:
    """Mean squared error ``(input - target)^2`` (``torch.nn.functional.mse_loss``); ``weight`` (the
    input's shape) multiplies each element, and ``mean`` then divides by ``sum(weight)``, as PyTorch's."""
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    return _pointwise(MSE, input, target, reduction, weight, weight_shape="same")


@autocast_function("fp32")
def l1_loss(input: Any, target: Any, size_average: Optional[bool] = None, reduce: Optional[bool] = None,
            reduction: str = "mean", weight: Any = None) -> Any:
    """Mean absolute error ``|input - target|`` (``torch.nn.functional.l1_loss``); ``weight`` as in
    :func:`mse_loss`."""
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    return _pointwise(L1, input, target, reduction, weight, weight_shape="same")


@autocast_function("fp32")
def smooth_l1_loss(input: Any, target: Any, size_average: Optional[bool] = None, reduce: Optional[bool] = None,
                   reduction: str = "mean", beta: float = 1.0) -> Any:
    """Quadratic below ``beta``, linear above (``torch.nn.functional.smooth_l1_loss``; ``beta >= 0``)."""
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    beta = _finite_number("smooth_l1_loss", "beta", beta, 0.0, True)
    return _pointwise(SmoothL1, input, target, reduction, beta=beta)


@autocast_function("fp32")
def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None) -> Any:
    """Quadratic below ``delta``, ``delta``-scaled linear above (``torch.nn.functional.huber_loss``;
    ``delta > 0``); ``weight`` (the input's shape) multiplies each element, ``mean`` stays the plain mean
    (PyTorch's)."""
    reduction = _reduction("huber_loss", reduction)
    delta = _finite_number("huber_loss", "delta", delta, 0.0, False)
    return _pointwise(Huber, input, target, reduction, weight, weight_shape="same", delta=delta)


@autocast_function("banned")
def binary_cross_entropy(input: Any, target: Any, weight: Any = None, size_average: Optional[bool] = None,
                         reduce: Optional[bool] = None, reduction: str = "mean") -> Any:
    """Binary cross-entropy of probabilities ``input`` in [0, 1] (``torch.nn.functional.binary_cross_entropy``;
    logs clamped at -100); ``weight`` broadcasts to the input. Prefer
    :func:`binary_cross_entropy_with_logits` on logits (stable)."""
    op = "binary_cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    require_float(op, "input", input, halves=True)
    if input.numel():
        lo, hi = input.device.xp.stack((input.data.min(), input.data.max())).tolist()  # (one host transfer)
        if not (lo >= 0 and hi <= 1):
            raise ArgumentError(f"{op}: all elements of input must be probabilities in [0, 1], got values in "
                                f"[{lo:g}, {hi:g}] (logits? use binary_cross_entropy_with_logits)")
    return _pointwise(BinaryCrossEntropy, input, target, reduction, weight)


@autocast_function("fp32")
def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None,
                                     size_average: Optional[bool] = None, reduce: Optional[bool] = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Any:
    """Sigmoid + binary cross-entropy in one stable expression
    (``torch.nn.functional.binary_cross_entropy_with_logits``): ``weight`` broadcasts to the input,
    ``pos_weight`` (e.g. one per class, the last dim) weighs the positive term."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, reduction, size_average, reduce)
    require_float(op, "input", input, halves=True)
    if pos_weight is not None:
        pos_weight = _float_like(op, "pos_weight", pos_weight, input)
        _broadcastable(op, "pos_weight", pos_weight, input.shape)
    return _pointwise(BinaryCrossEntropyWithLogits, input, target, reduction, weight, pos_weight)


@autocast_function("fp32")
def kl_div(input: Any, target: Any, size_average: Optional[bool] = None, reduce: Optional[bool] = None,
           reduction: str = "mean", log_target: bool = False) -> Any:
    """Kullback-Leibler divergence ``target * (log target - input)`` for log-probabilities ``input``
    (``torch.nn.functional.kl_div``; ``log_target``: target holds log-probabilities too).
    ``reduction="batchmean"`` (sum / batch size) is the mathematical KL divergence; ``"mean"`` divides by
    the number of elements, as PyTorch's."""
    op = "kl_div"
    reduction = _reduction(op, reduction, size_average, reduce, allowed=("none", "batchmean", "sum", "mean"))
    if not isinstance(log_target, (bool, np.bool_)):
        raise ArgumentError(f"{op}: log_target must be True or False, got {log_target!r}")
    return _pointwise(KLDiv, input, target, reduction, log_target=bool(log_target))


#: the public functionals (gpucnn.nn.functional's names)
FUNCTIONALS = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
               "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]
__all__ = FUNCTIONALS + ["legacy_reduction", "Pointwise", "REDUCTIONS"]
