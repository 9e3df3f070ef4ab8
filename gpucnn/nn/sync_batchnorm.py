"""SyncBatchNorm: batch normalisation whose batch statistics are taken over every rank's batch.

Training over a process group of more than one rank: the per-channel sums and the element count are
all-reduced (then the sums of squared deviations from the global mean: the two-pass variance of
:func:`gpucnn.functional.batch_norm`, in float64), so each rank normalises with the statistics of the
concatenated batch; backward all-reduces the per-channel sums of dy and dy * (x - mean), as PyTorch's
SyncBatchNorm does, giving each rank the input gradient of the sum of all ranks' losses. The weight and
bias gradients are each rank's own (DistributedDataParallel averages them). Outside a process group, with
one rank, or in eval mode it is :class:`BatchNorm2d`'s computation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import distributed as dist
from ..errors import ArgumentError
from ..function import Function
from ..tensor import Tensor
from .layers import _BatchNorm, _check_rank, _require_tensor
from .module import Module
from .registry import register_layer


def _stats_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype.itemsize == 2 else dtype  # 16-bit inputs: float32 statistics


class SyncBatchNormFunction(Function):
    """The op: inputs (x, weight or None, bias or None); the running statistics are updated in place."""

    name = "sync_batch_norm"

    def __init__(self, backend: Any, eps: float, momentum: float, running_mean: Any, running_var: Any) -> None:
        self.backend, self.eps, self.momentum = backend, eps, momentum
        self.running_mean, self.running_var = running_mean, running_var

    def _view(self, v: Any, ndim: int) -> Any:
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, xs: tuple) -> Any:
        x, w, b = xs
        xp, st = self.xp, _stats_dtype(x.dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        xf = x.astype(st, copy=False)
        channels = x.shape[1]
        sums = xp.empty(channels + 1, dtype=np.float64)
        sums[:channels] = xf.sum(axis=axes, dtype=np.float64)
        sums[channels] = x.size // channels
        self.backend.all_reduce(sums, "sum")
        count = float(sums[channels])
        if count <= 1:
            raise ArgumentError(f"sync_batch_norm: expected more than 1 value per channel over all ranks when "
                                f"training, got {int(count)} (input shape {x.shape} on this rank)")
        mean = sums[:channels] / count
        d = xf - self._view(mean.astype(st), x.ndim)
        sq = (d * d).sum(axis=axes, dtype=np.float64)
        self.backend.all_reduce(sq, "sum")
        var = sq / count
        invstd = 1.0 / xp.sqrt(var + self.eps)
        scale = invstd if w is None else invstd * w.astype(np.float64)
        y = d * self._view(scale.astype(st), x.ndim)
        if b is not None:
            y += self._view(b.astype(st), x.ndim)
        if self.running_mean is not None:
            m = self.momentum
            for buf, value in ((self.running_mean, mean), (self.running_var, var * (count / (count - 1)))):
                buf[...] = ((1 - m) * buf.astype(np.float64) + m * value).astype(buf.dtype)
        self.mean, self.invstd, self.count = mean.astype(st), invstd.astype(st), count
        return y.astype(x.dtype, copy=False)

    def backward(self, xs: tuple, gy: Any) -> tuple:
        x, w, b = xs
        xp, st = self.xp, _stats_dtype(x.dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        channels = x.shape[1]
        g = gy.astype(st, copy=False)
        d = x.astype(st, copy=False) - self._view(self.mean, x.ndim)
        sums = xp.empty(2 * channels, dtype=np.float64)
        sums[:channels] = g.sum(axis=axes, dtype=np.float64)           # sum dy
        sums[channels:] = (g * d).sum(axis=axes, dtype=np.float64)     # sum dy * (x - mean)
        invstd = self.invstd.astype(np.float64)
        gw = (sums[channels:] * invstd).astype(w.dtype) if w is not None and self.needs_input_grad[1] else None
        gb = sums[:channels].astype(b.dtype) if b is not None and self.needs_input_grad[2] else None
        gx = None
        if self.needs_input_grad[0]:
            self.backend.all_reduce(sums, "sum")
            mean_dy = sums[:channels] / self.count
            mean_dy_xmu = sums[channels:] / self.count
            scale = invstd if w is None else invstd * w.astype(np.float64)
            gx = (g - self._view(mean_dy.astype(st), x.ndim)
                  - d * self._view((invstd * invstd * mean_dy_xmu).astype(st), x.ndim)) \
                * self._view(scale.astype(st), x.ndim)
            gx = gx.astype(x.dtype, copy=False)
        return gx, gw, gb


@register_layer
class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over (N, C, ...) inputs whose training statistics cover every rank's batch
    (``torch.nn.SyncBatchNorm``; see the module docstring). Same arguments, buffers and state dict as
    :class:`BatchNorm2d`; :meth:`convert_sync_batchnorm` turns a model's batch norms into these."""

    _op = "sync_batch_norm"
    _ranks = (2, 3, 4, 5)
    _layout = "(N, C, ...) (at least 2-D)"

    def forward(self, x: Tensor) -> Tensor:
        backend = dist._default_backend()
        if not (self.training and backend is not None and backend.world_size > 1):
            return super().forward(x)
        x = _require_tensor(self._op, x)
        _check_rank(self._op, x, self._ranks, self._layout)
        if x.shape[1] != self.num_features:
            from ..errors import ShapeError
            raise ShapeError(f"{self._op}: input has {x.shape[1]} channels, expected {self.num_features} "
                             f"(input shape {x.shape})")
        momentum = 0.0 if self.momentum is None else self.momentum
        running = (None, None)
        if self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
            running = (self.running_mean.data, self.running_var.data)
        if self.weight is not None and self.weight.dtype not in (x.dtype, np.dtype(np.float32)):
            raise ArgumentError(f"{self._op}: weight has dtype {self.weight.dtype}, expected {x.dtype} (the input's)")
        op = SyncBatchNormFunction(backend, self.eps, momentum, *running)
        return op(x, self.weight, self.bias)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every BatchNorm1d/BatchNorm2d replaced by a SyncBatchNorm holding the same
        parameters and buffers (the same tensor objects, so an optimizer built before still holds them)
        and training mode; ``module`` itself is returned where it is one. As PyTorch's."""
        if process_group is not None:
            raise ArgumentError("convert_sync_batchnorm: process groups other than the default one are not "
                                "supported (pass process_group=None)")
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            if module.track_running_stats:
                for name in ("running_mean", "running_var", "num_batches_tracked"):
                    out.register_buffer(name, getattr(module, name))
            out.train(module.training)
        for name, child in list(module._modules.items()):
            if child is not None:
                new = cls.convert_sync_batchnorm(child)
                if new is not child:
                    out.add_module(name, new)
        return out
