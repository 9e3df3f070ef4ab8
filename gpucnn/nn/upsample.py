"""Resampling layers: :class:`Upsample` (``F.interpolate``: nearest, linear, bilinear; the decoder side of
a U-Net), :class:`PixelShuffle` and :class:`PixelUnshuffle` (sub-pixel convolution), with PyTorch's names,
argument order and defaults; and ``upsample_nearest2d`` (nearest by whole factors).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..functions.interpolate import interpolate
from ..functions.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from ..tensor import Tensor
from .module import Module
from .registry import register_layer


def _factor(scale_factor: Any, op: str) -> tuple[int, int]:
    def ok(v: Any) -> bool:
        return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) and v >= 1

    if ok(scale_factor):
        return int(scale_factor), int(scale_factor)
    if isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2 and all(ok(v) for v in scale_factor):
        return int(scale_factor[0]), int(scale_factor[1])
    raise ArgumentError(f"{op}: scale_factor must be an integer >= 1 or a pair of them "
                        f"(nearest upsampling by whole factors), got {scale_factor!r}")


def upsample_nearest2d(input: Tensor, scale_factor: Union[int, tuple[int, int]] = 2) -> Tensor:
    """Repeat each pixel of an (N, C, H, W) tensor ``scale_factor`` times along H and W."""
    op = "upsample_nearest2d"
    if not isinstance(input, Tensor):
        raise ArgumentError(f"{op}: input must be a gpucnn Tensor, got {type(input).__name__}")
    if input.ndim != 4:
        raise ShapeError(f"{op}: input must have rank 4 (N, C, H, W), got rank {input.ndim} "
                         f"(input shape {input.shape})")
    return interpolate(input, scale_factor=_factor(scale_factor, op), mode="nearest")


def _positive_ints(value: Any) -> bool:
    ok = lambda v: isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 1
    return ok(value) or (isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(ok(v) for v in value))


def _positive_numbers(value: Any) -> bool:
    ok = lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and 0 < float(v) < math.inf
    return ok(value) or (isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(ok(v) for v in value))


def _plain(value: Any, kind: type) -> Any:
    return kind(value) if not isinstance(value, (tuple, list)) else [kind(v) for v in value]


@register_layer
class Upsample(Module):
    """Resize (N, C, W) or (N, C, H, W) inputs to ``size`` or by ``scale_factor`` with ``F.interpolate``
    (``mode`` "nearest", "linear" for 3-D or "bilinear" for 4-D inputs; ``align_corners`` for the linear
    modes), like ``torch.nn.Upsample`` (the same argument order: ``size`` comes first)."""
    config_schema = {"size": "int|ints|null", "scale_factor": "number|any", "mode": "str",
                     "align_corners": "bool|null", "recompute_scale_factor": "bool|null"}
    _MODES = ("nearest", "linear", "bilinear")

    def __init__(self, size: Union[int, Sequence[int], None] = None,
                 scale_factor: Union[float, Sequence[float], None] = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        if size is not None and not _positive_ints(size):
            raise ArgumentError(f"Upsample: size (the first argument: the output size) must be an integer >= 1 "
                                f"or a pair of them, got {size!r}; for a factor give scale_factor=...")
        if scale_factor is not None and not _positive_numbers(scale_factor):
            raise ArgumentError(f"Upsample: scale_factor must be a number > 0 (output sizes floor(in * factor) "
                                f">= 1) or a pair of them, got {scale_factor!r}")
        if (size is None) == (scale_factor is None):
            raise ArgumentError(f"Upsample: give exactly one of size and scale_factor, got size={size!r}, "
                                f"scale_factor={scale_factor!r}")
        if mode not in self._MODES:
            raise ArgumentError(f"Upsample: mode must be one of {', '.join(map(repr, self._MODES))}, got {mode!r}")
        for name, v in (("align_corners", align_corners), ("recompute_scale_factor", recompute_scale_factor)):
            if v is not None and not isinstance(v, (bool, np.bool_)):
                raise ArgumentError(f"Upsample: {name} must be None, true or false, got {v!r}")
        if mode == "nearest" and align_corners is not None:
            raise ArgumentError(f"Upsample: align_corners applies to the linear modes only, not mode 'nearest'; "
                                f"got align_corners={align_corners!r}")
        self.size = None if size is None else _plain(size, int)
        self.scale_factor = None if scale_factor is None else _plain(scale_factor, float)
        self.mode = mode
        self.align_corners = None if align_corners is None else bool(align_corners)
        self.recompute_scale_factor = None if recompute_scale_factor is None else bool(recompute_scale_factor)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise ArgumentError(f"Upsample: input must be a gpucnn Tensor, got {type(x).__name__}")
        tup = lambda v: tuple(v) if isinstance(v, list) else v
        return interpolate(x, tup(self.size), tup(self.scale_factor), self.mode, self.align_corners,
                           self.recompute_scale_factor)

    @property
    def _factor(self) -> tuple[int, int]:
        """The whole (H, W) factors of nearest upsampling (what the ONNX converter exports as a Resize); any
        other resampling has no ONNX form here."""
        sf = self.scale_factor
        pair = None if sf is None else (sf, sf) if not isinstance(sf, list) else tuple(sf) * (2 // len(sf))
        if self.mode != "nearest" or pair is None or any(v != int(v) for v in pair) or self.recompute_scale_factor:
            from ..onnx.graph import ExportError
            raise ExportError(f"Upsample({self.extra_repr()}): only nearest upsampling by whole scale factors "
                              f"has an ONNX form here")
        return int(pair[0]), int(pair[1])

    def short_description(self) -> str:
        what = "" if self.mode == "nearest" else f" {self.mode}"
        if self.scale_factor is not None:
            sf = self.scale_factor
            fmt = lambda v: str(int(v)) if v == int(v) else str(v)
            return (f"x{fmt(sf)}" if not isinstance(sf, list) else f"x({', '.join(map(fmt, sf))})") + what
        return f"to {self.size if not isinstance(self.size, list) else 'x'.join(map(str, self.size))}" + what

    def extra_repr(self) -> str:
        tup = lambda v: tuple(v) if isinstance(v, list) else v
        info = f"scale_factor={tup(self.scale_factor)!r}" if self.scale_factor is not None else \
            f"size={tup(self.size)!r}"
        return info + f", mode={self.mode!r}"

    def config(self) -> dict:
        return {"size": self.size, "scale_factor": self.scale_factor, "mode": self.mode,
                "align_corners": self.align_corners, "recompute_scale_factor": self.recompute_scale_factor}


@register_layer
class PixelShuffle(Module):
    """(N, C * r^2, H, W) -> (N, C, H * r, W * r) (sub-pixel upsampling), like ``torch.nn.PixelShuffle``."""
    config_schema = {"upscale_factor": "int"}

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        if not isinstance(upscale_factor, (numbers.Integral, np.integer)) or isinstance(upscale_factor, bool) \
                or upscale_factor < 1:
            raise ArgumentError(f"PixelShuffle: upscale_factor must be an integer >= 1, got {upscale_factor!r}")
        self.upscale_factor = int(upscale_factor)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_shuffle(x, self.upscale_factor)

    def short_description(self) -> str:
        return f"x{self.upscale_factor}"

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"

    def config(self) -> dict:
        return {"upscale_factor": self.upscale_factor}


@register_layer
class PixelUnshuffle(Module):
    """(N, C, H * r, W * r) -> (N, C * r^2, H, W), the inverse of :class:`PixelShuffle`."""
    config_schema = {"downscale_factor": "int"}

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        if not isinstance(downscale_factor, (numbers.Integral, np.integer)) or isinstance(downscale_factor, bool) \
                or downscale_factor < 1:
            raise ArgumentError(f"PixelUnshuffle: downscale_factor must be an integer >= 1, got {downscale_factor!r}")
        self.downscale_factor = int(downscale_factor)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_unshuffle(x, self.downscale_factor)

    def short_description(self) -> str:
        return f"/{self.downscale_factor}"

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"

    def config(self) -> dict:
        return {"downscale_factor": self.downscale_factor}
