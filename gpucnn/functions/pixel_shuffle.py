"""``F.pixel_shuffle`` / ``F.pixel_unshuffle``: sub-pixel rearrangement (ESPCN upsampling), as PyTorch's.

``pixel_shuffle``: (*, C * r * r, H, W) -> (*, C, H * r, W * r) with
``y[..., c, h * r + i, w * r + j] = x[..., c * r * r + i * r + j, h, w]``; ``pixel_unshuffle`` is its inverse.
Both are a reshape, a permutation and a reshape of existing differentiable ops (array.py), so they run on
every device and dtype (16 bits included: pure copies), and their gradients are the inverse permutation.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor
from ._checks import require_tensor


def _factor(op: str, name: str, value: Any) -> int:
    if not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ArgumentError(f"{op}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check(op: str, input: Any) -> None:
    require_tensor(op, "input", input)
    if input.ndim < 3:
        raise ShapeError(f"{op}: input must have rank 3 or more (*, C, H, W), got rank {input.ndim} "
                         f"(input shape {input.shape})")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r), like ``torch.nn.functional.pixel_shuffle``."""
    op = "pixel_shuffle"
    _check(op, input)
    r = _factor(op, "upscale_factor", upscale_factor)
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"{op}: input has {c} channels, expected a multiple of upscale_factor**2 = {r * r} "
                         f"(input shape {input.shape})")
    k = len(lead)
    y = input.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), like ``torch.nn.functional.pixel_unshuffle``."""
    op = "pixel_unshuffle"
    _check(op, input)
    r = _factor(op, "downscale_factor", downscale_factor)
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ShapeError(f"{op}: input height and width must be multiples of downscale_factor {r}, got {h}x{w} "
                         f"(input shape {input.shape})")
    k = len(lead)
    y = input.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H, W)
    return y.reshape(*lead, c * r * r, h // r, w // r)
