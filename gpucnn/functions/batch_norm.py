"""Batch normalization, with PyTorch's ``torch.nn.functional.batch_norm`` signature and semantics.

Statistics are per channel (axis 1) over every other axis, so one op serves (N, C), (N, C, L) and
(N, C, H, W). Training normalises with the batch mean and the biased batch variance and updates the
running statistics in place (the running variance with the unbiased n/(n-1) estimate, as PyTorch does);
eval normalises with the running statistics. The variance is computed in two passes (the mean, then the
mean of squared deviations): E[x^2] - E[x]^2 cancels catastrophically in float32 when |mean| >> std.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ..backend import array_device
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor


class BatchNorm(Function):
    """Inputs: (x, weight, bias, running_mean, running_var); weight, bias and the running statistics may
    be None. The running statistics are not differentiable; in training they are updated in place."""

    name = "batch_norm"

    def __init__(self, training: bool, momentum: float, eps: float) -> None:
        self.training, self.momentum, self.eps = training, momentum, eps

    @staticmethod
    def _layout(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(the axes statistics reduce over, the shape that broadcasts a per-channel vector against x)."""
        return (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)

    def forward_cpu(self, xs):
        x, w, b, running_mean, running_var = xs
        axes, shape = self._layout(x)
        if self.training:
            n = x.size // x.shape[1]
            # Two passes (mean, then mean of squared deviations), with float64 accumulators (cheap
            # on the CPU; the results are cast back): the mean is then right to float32 rounding
            # even when |mean| >> std, where float32 accumulation drifts by several ulps.
            mean = x.mean(axis=axes, keepdims=True, dtype=np.float64).astype(x.dtype)
            xc = x - mean
            var = np.square(xc).mean(axis=axes, keepdims=True, dtype=np.float64).astype(x.dtype)  # biased
            if running_mean is not None:
                m = self.momentum
                running_mean[...] = (1 - m) * running_mean + m * mean.reshape(-1)
                running_var[...] = (1 - m) * running_var + m * (var.reshape(-1) * (n / (n - 1)))
        else:
            # Copies in the input's dtype: a later in-place update of the running statistics must not
            # change what backward sees, and float64 statistics must not promote a float32 input.
            mean = np.array(running_mean, dtype=x.dtype).reshape(shape)
            var = np.array(running_var, dtype=x.dtype).reshape(shape)
            xc = x - mean
        self.mean = mean
        self.inv_std = 1 / np.sqrt(var + self.eps)
        y = xc
        y *= self.inv_std  # x_hat
        if w is not None:
            y *= w.reshape(shape)
        if b is not None:
            y += b.reshape(shape)
        return y

    def backward_cpu(self, xs, gy):
        x, w, b = xs[:3]
        axes, shape = self._layout(x)
        need_x, need_w, need_b = self.needs_input_grad[:3]
        xhat = (x - self.mean) * self.inv_std
        sum_gy = gy.sum(axis=axes, keepdims=True) if need_b or (need_x and self.training) else None
        sum_gy_xhat = (gy * xhat).sum(axis=axes, keepdims=True) \
            if need_w or (need_x and self.training) else None
        gx = None
        if need_x:
            scale = self.inv_std if w is None else w.reshape(shape) * self.inv_std
            if self.training:
                # d/dx of gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta, through mean and var:
                # gx = gamma * inv_std * (gy - mean(gy) - x_hat * mean(gy * x_hat))
                n = x.size // x.shape[1]
                gx = scale * (gy - sum_gy / n - xhat * (sum_gy_xhat / n))
            else:
                gx = gy * scale
        gw = sum_gy_xhat.reshape(-1) if need_w and w is not None else None
        gb = sum_gy.reshape(-1) if need_b and b is not None else None
        return gx, gw, gb, None, None


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _as_tensor(value: Any, arg: str, x: Tensor) -> Optional[Tensor]:
    """A Tensor for a Tensor, NumPy or CuPy array (wrapping, not copying: running statistics are
    updated in place), or None."""
    if value is None or isinstance(value, Tensor):
        return value
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise ArgumentError(f"batch_norm: {arg} must be a Tensor, an array or None, got {type(value).__name__}")
    device = x.device if isinstance(value, type(x.data)) else array_device(value)
    return Tensor._wrap(value, device)


def batch_norm(input: Tensor, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization of an (N, C, ...) tensor, like ``torch.nn.functional.batch_norm``.

    ``training=True``: normalise each channel with the batch mean and biased variance, and, when
    ``running_mean``/``running_var`` (tensors or arrays of length C) are given, update them IN PLACE:
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the unbiased variance for
    ``running_var``). ``training=False``: normalise with the running statistics. Then
    ``y = x_hat * weight + bias`` per channel where ``weight``/``bias`` are given.
    """
    op = "batch_norm"
    if not isinstance(input, Tensor):
        raise ArgumentError(f"{op}: input must be a gpucnn Tensor, got {type(input).__name__}")
    shape = input.shape
    if input.ndim < 2:
        raise ShapeError(f"{op}: input must have rank 2, 3 or 4 ((N, C), (N, C, L) or (N, C, H, W)), "
                         f"got rank {input.ndim} (input shape {shape})")
    if input.dtype.kind != "f":
        raise ArgumentError(f"{op}: input must have a floating-point dtype (float32 or float64), got {input.dtype}")
    if shape[0] == 0:
        raise ShapeError(f"{op}: the input batch is empty (input shape {shape}); expected at least one sample")
    if 0 in shape:
        raise ShapeError(f"{op}: input has an empty dimension (input shape {shape})")
    if not isinstance(training, (bool, np.bool_)):
        raise ArgumentError(f"{op}: training must be True or False, got {training!r}")
    if not _is_number(momentum) or not 0.0 <= momentum <= 1.0:
        raise ArgumentError(f"{op}: momentum must be a number in [0, 1], got {momentum!r}")
    if not _is_number(eps) or not eps > 0.0:
        raise ArgumentError(f"{op}: eps must be a number > 0, got {eps!r}")

    channels = shape[1]
    args = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    tensors = {name: _as_tensor(value, name, input) for name, value in args.items()}
    for name, t in tensors.items():
        if t is None:
            continue
        if t.ndim != 1:
            raise ShapeError(f"{op}: {name} must be 1-D with one value per channel, got shape {t.shape} "
                             f"(input shape {shape})")
        if t.shape[0] != channels:
            raise ShapeError(f"{op}: input has {channels} channels, expected {t.shape[0]} "
                             f"(input shape {shape}, {name} shape {t.shape})")
        if t.dtype.kind != "f":
            raise ArgumentError(f"{op}: {name} must have a floating-point dtype, got {t.dtype}")
    for name in ("weight", "bias"):
        t = tensors[name]
        if t is not None and t.dtype != input.dtype:
            raise ArgumentError(f"{op}: {name} has dtype {t.dtype}, expected {input.dtype} (the input's dtype); "
                                f"convert one with .to(dtype=...)")
    rm, rv = tensors["running_mean"], tensors["running_var"]
    if (rm is None) != (rv is None):
        raise ArgumentError(f"{op}: pass both running_mean and running_var, or neither "
                            f"(got running_mean={'None' if rm is None else 'given'}, "
                            f"running_var={'None' if rv is None else 'given'})")
    for name, t in (("running_mean", rm), ("running_var", rv)):
        if t is not None and t.requires_grad:
            raise ArgumentError(f"{op}: {name} must not require grad (running statistics are buffers, "
                                f"not parameters)")
        if training and t is not None and isinstance(t.data, np.ndarray) and not t.data.flags.writeable:
            raise ArgumentError(f"{op}: {name} is read-only, but training updates it in place")
    if not training and rm is None:
        raise ArgumentError(f"{op}: running_mean and running_var are required when training=False "
                            f"(eval mode normalises with them); pass them, or training=True")
    if training and input.numel() // channels == 1:
        raise ArgumentError(f"{op}: expected more than 1 value per channel when training, got input "
                            f"shape {shape}")
    return BatchNorm(bool(training), float(momentum), float(eps))(input, tensors["weight"], tensors["bias"], rm, rv)
