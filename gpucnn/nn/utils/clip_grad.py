"""Gradient clipping with ``torch.nn.utils``' semantics: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both work on the gradients' raw arrays with their own array module (NumPy or CuPy), so they run on
every device without a host transfer; the norm comes back as a 0-d tensor on the gradients' device.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional, Union

from ...errors import ArgumentError, DeviceError, TrainingError
from ...tensor import Tensor

Parameters = Union[Tensor, Iterable[Tensor]]


def _grads(op: str, parameters: Parameters) -> list[Tensor]:
    """The gradient tensors of ``parameters`` (a tensor or an iterable of them) that have one."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise ArgumentError(f"{op}: parameters must be tensors (e.g. model.parameters()), got "
                                f"{type(p).__name__} at position {i}")
    grads = [p.grad for p in params if p.grad is not None]
    if len({g.device for g in grads}) > 1:
        raise DeviceError(f"{op}: the gradients are on several devices ({', '.join(sorted({str(g.device) for g in grads}))}); "
                          f"move the model to one device")
    return grads


def _number(op: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise ArgumentError(f"{op}: {name} must be a number, got {value!r}")
    return float(value)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: Union[float, str] = 2.0,
                    error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``-norm (over all of
    them together, as if concatenated) is at most ``max_norm``; returns that total norm (before clipping)
    as a 0-d tensor, as ``torch.nn.utils.clip_grad_norm_``.

    The scale is ``min(1, max_norm / (total_norm + 1e-6))``. ``norm_type`` may be ``inf`` (or ``"inf"``):
    the largest absolute value. A non-finite total norm raises :class:`~gpucnn.errors.TrainingError`
    with ``error_if_nonfinite=True`` (one host transfer), else the gradients become nan/inf, as PyTorch's.
    ``foreach`` is accepted for PyTorch compatibility (the arrays are updated one by one).
    """
    op = "clip_grad_norm_"
    max_norm = _number(op, "max_norm", max_norm)
    if max_norm < 0:
        raise ArgumentError(f"{op}: max_norm must be >= 0, got {max_norm:g}")
    p = math.inf if norm_type in ("inf", "Inf") else _number(op, "norm_type", norm_type)
    if not p > 0:
        raise ArgumentError(f"{op}: norm_type must be a number > 0 or inf, got {norm_type!r}")
    grads = _grads(op, parameters)
    if not grads:
        from ...functions.creation import zeros
        return zeros(())
    xp, dtype = grads[0].device.xp, grads[0].dtype
    if p == math.inf:
        norms = xp.stack([xp.abs(g.data).max().astype(dtype) if g.data.size else xp.zeros((), dtype) for g in grads])
        total = norms.max()
    else:
        norms = xp.stack([(xp.abs(g.data.astype(dtype, copy=False)) ** p).sum() ** (1 / p) for g in grads])
        total = (norms ** p).sum() ** (1 / p)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise TrainingError(f"{op}: the total norm of order {norm_type} of the gradients is non-finite "
                            f"({float(total)}), so it cannot be clipped; set error_if_nonfinite=False to clip "
                            f"anyway (the gradients then become nan)")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(dtype)
    for g in grads:
        # a new array: a gradient may be a read-only or shared view (e.g. of an expand's backward)
        g.data = xp.asarray(g.data * coef.astype(g.dtype))  # (asarray: 0-d stays an array)
    return Tensor._wrap(xp.asarray(total), grads[0].device)


def clip_grad_value_(parameters: Parameters, clip_value: float, foreach: Optional[bool] = None) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``)."""
    op = "clip_grad_value_"
    clip_value = _number(op, "clip_value", clip_value)
    if clip_value < 0:
        raise ArgumentError(f"{op}: clip_value must be >= 0, got {clip_value:g}")
    for g in _grads(op, parameters):
        xp = g.device.xp
        g.data = xp.asarray(xp.clip(g.data, g.dtype.type(-clip_value), g.dtype.type(clip_value)))
