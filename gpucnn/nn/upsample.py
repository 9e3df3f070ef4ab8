"""Nearest-neighbour upsampling by an integer factor (the decoder side of a U-Net) as a layer.

``y[n, c, i, j] = x[n, c, i // sh, j // sw]``: ``F.interpolate(mode="nearest")`` (functions/interpolate.py)
with whole factors, which the layer's config (architecture as data) keeps to.
"""
from __future__ import annotations

import numbers
from typing import Any, Union

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..functions.interpolate import interpolate
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


@register_layer
class Upsample(Module):
    """Nearest-neighbour upsampling of (N, C, H, W) inputs by an integer ``scale_factor`` (or pair).

    Only ``mode="nearest"`` is implemented (PyTorch's default)."""
    config_schema = {"scale_factor": "int|ints", "mode": "str"}

    def __init__(self, scale_factor: Union[int, tuple[int, int]] = 2, mode: str = "nearest") -> None:
        super().__init__()
        self._factor = _factor(scale_factor, "Upsample")
        if mode != "nearest":
            raise ArgumentError(f"Upsample: mode must be 'nearest' (the only mode implemented), got {mode!r}")
        self.mode = mode
        self.scale_factor = self._factor[0] if self._factor[0] == self._factor[1] else list(self._factor)

    def forward(self, x: Tensor) -> Tensor:
        return upsample_nearest2d(x, self._factor)

    def short_description(self) -> str:
        return f"x{self._factor[0]}" if self._factor[0] == self._factor[1] else f"x{self._factor}"

    def extra_repr(self) -> str:
        sf = float(self.scale_factor) if isinstance(self.scale_factor, int) else tuple(map(float, self._factor))
        return f"scale_factor={sf}, mode='{self.mode}'"

    def config(self) -> dict:
        return {"scale_factor": self.scale_factor, "mode": self.mode}
