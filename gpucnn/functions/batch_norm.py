"""Batch normalization, with PyTorch's ``torch.nn.functional.batch_norm`` signature and semantics.

Statistics are per channel (axis 1) over every other axis, so one op serves (N, C), (N, C, L) and
(N, C, H, W). Training normalises with the batch mean and the biased batch variance and updates the
running statistics in place (the running variance with the unbiased n/(n-1) estimate, as PyTorch does);
eval normalises with the running statistics. The variance is computed in two passes (the mean, then the
mean of squared deviations): E[x^2] - E[x]^2 cancels catastrophically in float32 when |mean| >> std.

On the kernel devices (cuda, emu) the op runs ``kernels_cuda/batch_norm.cu``: one block per channel for
the statistics (the same two passes, accumulated in double like this NumPy path, and the running
statistics updated in the kernel with the same rounding) and for the backward's per-channel sums, and
elementwise kernels for y and dx that repeat this path's operations in its order. Fixed reduction order,
no atomics: deterministic.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ..backend import array_device
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor

# -- the CUDA kernel launches (kernels_cuda/batch_norm.cu; devices cuda and emu) --------------------
#: threads per block of the per-channel reductions (BN_THREADS) and of the elementwise kernels
#: (BN_APPLY_THREADS): the kernels' __launch_bounds__
_THREADS = 256
_APPLY_THREADS = 256
#: most blocks along grid-y (CUDA's limit); the elementwise kernels stride over the rest
_MAX_GRID_Y = 65535
_INT32_MAX = 2**31 - 1


def _ctype(dtype: Any) -> str:
    """The kernels' -DT for ``dtype``."""
    if dtype == np.float32:
        return "float"
    if dtype == np.float64:
        return "double"
    raise ArgumentError(f"batch_norm: the CUDA kernels support float32 and float64, got {np.dtype(dtype)}")


def _check_int32(x: Any) -> None:
    """The kernels index with 32-bit ints; a channel cursor may also run one grid stride (< 2^24
    elements) past the batch size before it stops."""
    n = x.shape[0]
    if x.size > _INT32_MAX or n + 2**24 > _INT32_MAX:
        raise ShapeError(f"batch_norm: the input has {x.size} elements (shape {x.shape}), more than the CUDA "
                         f"kernels' 32-bit indexing allows ({_INT32_MAX}); split the batch")


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

    # -- CUDA kernels: the same algorithm, per channel (see kernels_cuda/batch_norm.cu) -------------
    def _gpu_layout(self, x: Any) -> tuple[int, int, int]:
        """(N, C, L) of the (N, C, L) view the kernels take (L = product of the spatial sizes)."""
        n, c = x.shape[:2]
        return n, c, x.size // (n * c)

    def _apply_grid(self, n: int, c: int, length: int) -> tuple[int, int]:
        return c, min(max(1, -(-(n * length) // _APPLY_THREADS)), _MAX_GRID_Y)

    def forward_gpu(self, xs):
        x, w, b, running_mean, running_var = xs
        xp = self.xp
        x = xp.ascontiguousarray(x)
        _check_int32(x)
        n, c, length = self._gpu_layout(x)
        T = self.ctype = _ctype(x.dtype)
        scalar = np.float32 if T == "float" else np.float64
        self.mean = mean = xp.empty(c, dtype=x.dtype)
        self.inv_std = invstd = xp.empty(c, dtype=x.dtype)
        if self.training:
            count = n * length
            var = xp.empty(c, dtype=x.dtype)
            # Running statistics of the input's dtype, contiguous, are updated in place by the kernel;
            # others (e.g. float64 buffers for a float32 input) by the NumPy path's formula below.
            stats = (running_mean, running_var)
            in_kernel = running_mean is not None and all(
                a.dtype == x.dtype and a.flags.c_contiguous for a in stats)
            m = self.momentum
            kernel = self.device.kernel("batch_norm", "batch_norm_forward_stats", T=T)
            kernel((c,), (_THREADS,),
                   (x, np.int32(n), np.int32(c), np.int32(length), scalar(self.eps), np.int32(in_kernel),
                    scalar(m), scalar(1 - m), scalar(count / (count - 1)), mean, var, invstd,
                    *(stats if in_kernel else (var, var))))  # (not touched when in_kernel is 0)
            if running_mean is not None and not in_kernel:
                running_mean[...] = (1 - m) * running_mean + m * mean
                running_var[...] = (1 - m) * running_var + m * (var * (count / (count - 1)))
        else:
            # Copies in the input's dtype (as the NumPy path): later in-place updates of the running
            # statistics must not change what backward sees.
            mean[...] = running_mean
            var = xp.array(running_var, dtype=x.dtype)
            kernel = self.device.kernel("batch_norm", "batch_norm_invstd", T=T)
            kernel((max(1, -(-c // _APPLY_THREADS)),), (_APPLY_THREADS,),
                   (var, np.int32(c), scalar(self.eps), invstd))
        y = xp.empty_like(x)
        kernel = self.device.kernel("batch_norm", "batch_norm_forward_apply", T=T)
        kernel(self._apply_grid(n, c, length), (_APPLY_THREADS,),
               (x, mean, invstd, mean if w is None else xp.ascontiguousarray(w), np.int32(w is not None),
                mean if b is None else xp.ascontiguousarray(b), np.int32(b is not None),
                np.int32(n), np.int32(c), np.int32(length), y))
        return y

    def backward_gpu(self, xs, gy):
        x, w = xs[:2]
        xp = self.xp
        x = xp.ascontiguousarray(x)
        gy = xp.ascontiguousarray(gy, dtype=x.dtype)
        w = None if w is None else xp.ascontiguousarray(w)
        n, c, length = self._gpu_layout(x)
        T = self.ctype
        need_x, need_w, need_b = self.needs_input_grad[:3]
        sum_gy = sum_gy_xhat = None
        if need_w or need_b or (need_x and self.training):
            sum_gy, sum_gy_xhat = xp.empty(c, dtype=x.dtype), xp.empty(c, dtype=x.dtype)
            kernel = self.device.kernel("batch_norm", "batch_norm_backward_reduce", T=T)
            kernel((c,), (_THREADS,), (x, gy, self.mean, self.inv_std, np.int32(n), np.int32(c),
                                       np.int32(length), sum_gy, sum_gy_xhat))
        gx = None
        if need_x:
            gx = xp.empty_like(x)
            sums = (sum_gy, sum_gy_xhat) if self.training else (self.mean, self.mean)  # (not read in eval)
            scalar = np.float32 if T == "float" else np.float64
            kernel = self.device.kernel("batch_norm", "batch_norm_backward_dx", T=T)
            kernel(self._apply_grid(n, c, length), (_APPLY_THREADS,),
                   (x, gy, self.mean, self.inv_std, self.mean if w is None else w, np.int32(w is not None),
                    *sums, np.int32(self.training), scalar(n * length), np.int32(n), np.int32(c),
                    np.int32(length), gx))
        gw = sum_gy_xhat if need_w and w is not None else None
        gb = sum_gy if need_b and xs[2] is not None else None
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
    if input.dtype not in (np.float32, np.float64):
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
