"""``F.interpolate`` with ``mode="nearest"`` for (N, C, W) and (N, C, H, W) inputs, as PyTorch's.

PyTorch's index rule, reproduced to the bit: output index ``j`` of a dim reads input index
``min(floor(j * s), in - 1)`` with ``s`` a float32, ``1 / scale_factor`` when a scale factor was given (and
not recomputed), else ``in / out``. Its 2-D kernel takes two shortcuts that the 1-D one does not: ``out ==
in`` copies and ``out == 2 * in`` reads ``j // 2`` whatever the scale factor (they differ from the formula
for factors such as 2.0001). PyTorch's 1-D backward takes them too, so there its gradient is not its
forward's; ours always is.

The backward adds each output gradient onto its source: the sources of a dim are non-decreasing, so each
input index owns a run of outputs, summed run position by run position (gathers, no scatter); a whole
factor ``k`` is a reshape and a sum. Written with ``xp``, it runs on every device.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from ._checks import require_tensor
from .creation import as_int

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


def nearest_sources(n_in: int, n_out: int, scale: Optional[float], shortcuts: bool) -> np.ndarray:
    """The input index each of ``n_out`` outputs reads (PyTorch's ``nearest_idx``; see the module docstring)."""
    j = np.arange(n_out)
    if shortcuts and n_out == n_in:
        return j
    if shortcuts and n_out == 2 * n_in:
        return j >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(j.astype(np.float32) * s).astype(np.int64), n_in - 1)


def _axis_sum(xp: Any, gy: Any, axis: int, src: np.ndarray, n_in: int) -> Any:
    """The gradient w.r.t. a dim of size ``n_in`` whose outputs (``gy`` along ``axis``) read ``src``."""
    n_out = len(src)
    if n_out % n_in == 0 and np.array_equal(src, np.arange(n_out) // (n_out // n_in)):
        k = n_out // n_in  # whole factor: runs of k outputs
        return gy.reshape(gy.shape[:axis] + (n_in, k) + gy.shape[axis + 1:]).sum(axis=axis + 1)
    counts = np.bincount(src, minlength=n_in)
    starts = np.cumsum(counts) - counts
    gx = None
    for t in range(int(counts.max())):  # the t-th output of every input index's run
        index = xp.asarray(np.minimum(starts + t, n_out - 1))
        mask = xp.asarray(t < counts).reshape((n_in,) + (1,) * (gy.ndim - axis - 1))
        part = xp.where(mask, xp.take(gy, index, axis=axis), 0)  # (where, not *: a NaN elsewhere stays there)
        gx = part if gx is None else gx + part
    return gx


class InterpolateNearest(Function):
    name = "interpolate"
    halves_in_float32 = True  # (16 bits: the backward's sums over each dim in float32, rounded once)

    def __init__(self, sources: Sequence[np.ndarray]) -> None:
        self.sources = sources  # per spatial dim, host index arrays

    def forward(self, xs):
        x, = xs
        idx = [self.xp.asarray(s) for s in self.sources]
        if len(idx) == 1:
            return x[:, :, idx[0]]
        return x[:, :, idx[0][:, None], idx[1][None, :]]

    def backward(self, xs, gy):
        x, = xs
        for d in reversed(range(len(self.sources))):
            gy = _axis_sum(self.xp, gy, 2 + d, self.sources[d], x.shape[2 + d])
        return (gy,)


def _per_dim(op: str, name: str, value: Any, dim: int, spatial: tuple[int, ...], convert: Any) -> list:
    if isinstance(value, (tuple, list)):
        if len(value) != dim:
            raise ArgumentError(f"{op}: {name} must have one entry per spatial dim of the input ({dim}: input "
                                f"spatial shape {spatial}), got {name}={tuple(value)}")
        return [convert(v) for v in value]
    return [convert(value)] * dim


def _scale(op: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise DtypeError(f"{op}: scale_factor must be a number or a tuple of numbers, got {type(value).__name__} "
                         f"{value!r}")
    return float(value)


def interpolate(input: Tensor, size: Union[int, Sequence[int], None] = None,
                scale_factor: Union[float, Sequence[float], None] = None, mode: str = "nearest",
                align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None,
                antialias: bool = False) -> Tensor:
    """Resize (N, C, W) or (N, C, H, W) ``input`` to ``size``, or by ``scale_factor`` (output size
    ``floor(in * scale_factor)``), by nearest neighbour, like ``torch.nn.functional.interpolate``.

    Only ``mode="nearest"`` is implemented; ``align_corners`` and ``antialias`` do not apply to it (as in
    PyTorch). ``recompute_scale_factor=True`` maps indices by ``in / out`` instead of ``1 / scale_factor``.
    """
    op = "interpolate"
    require_tensor(op, "input", input)
    if mode != "nearest":
        known = "one of PyTorch's modes, " if mode in MODES else "not a mode of PyTorch's either, "
        raise ArgumentError(f"{op}: mode {mode!r} is not supported ({known}only 'nearest' is implemented)")
    if align_corners is not None:
        raise ArgumentError(f"{op}: align_corners can only be set with the interpolating modes (linear, bilinear, "
                            f"bicubic, trilinear), not mode {mode!r}; got align_corners={align_corners!r}")
    if antialias:
        raise ArgumentError(f"{op}: antialias applies to the bilinear and bicubic modes only, not mode {mode!r}")
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: input must have rank 3 (N, C, W) or 4 (N, C, H, W) for mode 'nearest' (1-D and "
                         f"2-D spatial dims; 3-D is not implemented), got rank {input.ndim} (input shape "
                         f"{input.shape})")
    dim, spatial = input.ndim - 2, input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ArgumentError(f"{op}: give exactly one of size and scale_factor, got size={size!r}, "
                            f"scale_factor={scale_factor!r}")
    if size is not None:
        if recompute_scale_factor:
            raise ArgumentError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        out = _per_dim(op, "size", size, dim, spatial, lambda v: as_int(op, "size", v))
        scales: list[Optional[float]] = [None] * dim
    else:
        factors = _per_dim(op, "scale_factor", scale_factor, dim, spatial, lambda v: _scale(op, v))
        out = [math.floor(n * f) if recompute_scale_factor else int(n * f) for n, f in zip(spatial, factors)]
        scales = [None] * dim if recompute_scale_factor else factors
    if any(n <= 0 for n in spatial) or any(o <= 0 for o in out):
        raise ShapeError(f"{op}: input and output sizes must be greater than 0, got input spatial shape {spatial} "
                         f"and output {tuple(out)} (input shape {input.shape})")
    if input.shape[1] == 0:
        raise ShapeError(f"{op}: input has no channels (input shape {input.shape})")
    sources = [nearest_sources(n, o, s, shortcuts=dim == 2) for n, o, s in zip(spatial, out, scales)]
    return InterpolateNearest(sources)(input)
