"""``F.interpolate`` for (N, C, W) and (N, C, H, W) inputs, as PyTorch's: ``mode="nearest"`` and the linear
modes (``"linear"`` for 3-D, ``"bilinear"`` for 4-D inputs) with ``align_corners``.

Nearest: PyTorch's index rule, reproduced to the bit: output index ``j`` of a dim reads input index
``min(floor(j * s), in - 1)`` with ``s`` a float32, ``1 / scale_factor`` when a scale factor was given (and
not recomputed), else ``in / out``. Its 2-D kernel takes two shortcuts that the 1-D one does not: ``out ==
in`` copies and ``out == 2 * in`` reads ``j // 2`` whatever the scale factor (they differ from the formula
for factors such as 2.0001). PyTorch's 1-D backward takes them too, so there its gradient is not its
forward's; ours always is.

The backward adds each output gradient onto its source: the sources of a dim are non-decreasing, so each
input index owns a run of outputs, summed run position by run position (gathers, no scatter); a whole
factor ``k`` is a reshape and a sum. Written with ``xp``, it runs on every device.

Linear modes: PyTorch's source-index rule (``area_pixel_compute_source_index``), in float32 (float64 for
float64 inputs, PyTorch's opmath): ``align_corners=True`` maps output ``j`` to ``j * (in - 1) / (out - 1)``
(0 for one output); otherwise to ``max((j + 0.5) * s - 0.5, 0)`` with ``s = 1 / scale_factor`` when a scale
factor was given (and not recomputed), else ``in / out``. Output ``j`` reads ``i0 = floor(src)`` and
``i1 = min(i0 + 1, in - 1)`` with weights ``1 - l`` and ``l = src - i0``. The op is separable: one pass per
spatial dim (the last first: ``l0h * (l0w * x00 + l1w * x01) + l1h * (...)``, PyTorch's order); each
pass's backward is the transposed (out, in) weight matrix applied along that dim (a GEMM: deterministic).
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


def linear_sources(n_in: int, n_out: int, scale: Optional[float], align_corners: bool,
                   dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, lambda1) of each of ``n_out`` outputs of a linear resize (see the module docstring), the
    weights in ``dtype`` (float32, or float64 for float64 inputs)."""
    t = np.dtype(dtype).type
    j = np.arange(n_out).astype(dtype)
    if align_corners:
        s = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        src = s * j
    else:
        s = t(1.0 / scale) if scale is not None and scale > 0 else t(n_in) / t(n_out)
        src = np.maximum(s * (j + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)  # (src >= 0: truncation is the floor)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0.astype(dtype)).astype(dtype)
    return i0, i1, lam


class InterpolateLinear(Function):
    """Linear / bilinear resize: one separable pass per spatial dim (see the module docstring)."""
    name = "interpolate"
    halves_in_float32 = True  # (16 bits: weights and sums in float32, rounded once)

    def __init__(self, sizes: Sequence[int], scales: Sequence[Optional[float]], align_corners: bool) -> None:
        self.sizes, self.scales, self.align_corners = list(sizes), list(scales), align_corners

    def reads_inputs(self):
        return ()  # (the backward uses the weights only)

    def _sources(self, x: Any) -> list:
        dt = np.float64 if x.dtype == np.float64 else np.float32
        return [linear_sources(x.shape[2 + d], o, sc, self.align_corners, dt)
                for d, (o, sc) in enumerate(zip(self.sizes, self.scales))]

    def forward(self, xs):
        x, = xs
        xp = self.xp
        self.sources = self._sources(x)
        y = x
        for d in reversed(range(len(self.sizes))):  # the last dim first (PyTorch's order of products)
            i0, i1, lam = self.sources[d]
            axis = 2 + d
            shape = (-1,) + (1,) * (x.ndim - axis - 1)
            l1 = xp.asarray(lam.astype(x.dtype)).reshape(shape)
            l0 = xp.asarray((1 - lam).astype(x.dtype)).reshape(shape)
            y = l0 * xp.take(y, xp.asarray(i0), axis=axis) + l1 * xp.take(y, xp.asarray(i1), axis=axis)
        return y

    def backward(self, xs, gy):
        x, = xs
        xp = self.xp
        for d in range(len(self.sizes)):  # the passes in reverse order
            i0, i1, lam = self.sources[d]
            n_in, axis = x.shape[2 + d], 2 + d
            m = np.zeros((len(i0), n_in), dtype=gy.dtype)  # m[j, i]: the weight of input i in output j
            rows = np.arange(len(i0))
            np.add.at(m, (rows, i0), (1 - lam).astype(gy.dtype))
            np.add.at(m, (rows, i1), lam.astype(gy.dtype))
            gy = xp.moveaxis(xp.tensordot(gy, xp.asarray(m), axes=([axis], [0])), -1, axis)
        return (xp.ascontiguousarray(gy),)


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
    ``floor(in * scale_factor)``), like ``torch.nn.functional.interpolate``.

    Modes: ``"nearest"``, ``"linear"`` (3-D input) and ``"bilinear"`` (4-D input), whose ``align_corners``
    (default False) maps the corner pixels' centres onto each other. ``recompute_scale_factor=True`` maps
    indices by ``in / out`` instead of ``1 / scale_factor``. ``antialias`` is not implemented.
    """
    op = "interpolate"
    require_tensor(op, "input", input)
    linear = {"linear": 3, "bilinear": 4}
    if mode != "nearest" and mode not in linear:
        known = "one of PyTorch's modes, " if mode in MODES else "not a mode of PyTorch's either, "
        raise ArgumentError(f"{op}: mode {mode!r} is not supported ({known}the modes implemented are 'nearest', "
                            f"'linear' and 'bilinear')")
    if mode == "nearest" and align_corners is not None:
        raise ArgumentError(f"{op}: align_corners can only be set with the interpolating modes (linear, bilinear, "
                            f"bicubic, trilinear), not mode {mode!r}; got align_corners={align_corners!r}")
    if align_corners is not None and not isinstance(align_corners, (bool, np.bool_)):
        raise ArgumentError(f"{op}: align_corners must be None, True or False, got {align_corners!r}")
    if antialias:
        if mode == "nearest":
            raise ArgumentError(f"{op}: antialias applies to the bilinear and bicubic modes only, not mode {mode!r}")
        raise ArgumentError(f"{op}: antialias=True is not implemented (mode {mode!r})")
    if mode == "nearest" and input.ndim not in (3, 4):
        raise ShapeError(f"{op}: input must have rank 3 (N, C, W) or 4 (N, C, H, W) for mode 'nearest' (1-D and "
                         f"2-D spatial dims; 3-D is not implemented), got rank {input.ndim} (input shape "
                         f"{input.shape})")
    if mode in linear and input.ndim != linear[mode]:
        layout = "(N, C, W)" if mode == "linear" else "(N, C, H, W)"
        other = {3: " (use mode 'linear' for 3-D inputs)", 4: " (use mode 'bilinear' for 4-D inputs)"}
        raise ShapeError(f"{op}: mode {mode!r} needs a rank-{linear[mode]} {layout} input, got rank {input.ndim} "
                         f"(input shape {input.shape}){other.get(input.ndim, '')}")
    if mode in linear:
        from ._checks import require_float
        require_float(op, "input", input, halves=True)
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
    if mode in linear:
        return InterpolateLinear(out, scales, bool(align_corners))(input)
    sources = [nearest_sources(n, o, s, shortcuts=dim == 2) for n, o, s in zip(spatial, out, scales)]
    return InterpolateNearest(sources)(input)
