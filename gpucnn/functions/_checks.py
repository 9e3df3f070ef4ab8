"""Argument checks shared by the ops' public functions (messages: op, argument, expected, actual)."""
from __future__ import annotations

import numbers
from typing import Any, Optional

import ml_dtypes
import numpy as np

from ..errors import ArgumentError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: with the 16-bit types, for the ops that take them (``require_float(..., halves=True)``)
ALL_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)) + FLOAT_DTYPES


def require_tensor(op: str, name: str, x: Any) -> None:
    from ..tensor import Tensor

    if not isinstance(x, Tensor):
        raise ArgumentError(f"{op}: {name} must be a gpucnn Tensor, got {type(x).__name__} "
                            f"(wrap arrays with gpucnn.tensor(...))")


def require_float(op: str, name: str, x: Any, like: Any = None, halves: bool = False) -> None:
    """``x`` is a float32/float64 tensor (also float16/bfloat16 with ``halves``; of ``like``'s dtype, when
    given: no silent promotion)."""
    require_tensor(op, name, x)
    if x.dtype not in (ALL_FLOAT_DTYPES if halves else FLOAT_DTYPES):
        kinds = "float16, bfloat16, float32 or float64" if halves else "float32 or float64"
        raise ArgumentError(f"{op}: {name} must have a floating-point dtype ({kinds}), got {x.dtype}")
    if like is not None and x.dtype != like.dtype:
        raise ArgumentError(f"{op}: {name} has dtype {x.dtype}, expected {like.dtype} like the input "
                            f"(convert one with .to(dtype=...))")


def require_dim(op: str, dim: Any, shape: tuple[int, ...], name: str = "dim") -> int:
    """``dim`` (the argument ``name``) as a non-negative axis of ``shape``; out of range is an error,
    never wrapped a second time."""
    ndim = max(len(shape), 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -ndim <= dim < ndim:
        raise ArgumentError(f"{op}: {name} must be an integer in [{-ndim}, {ndim - 1}] for input of shape "
                            f"{shape}, got {dim!r}")
    return int(dim) % ndim


def require_input(op: str, x: Any, min_rank: int, max_rank: Optional[int], layout: str,
                  halves: bool = False) -> None:
    """``x`` is a float tensor (float16/bfloat16 too with ``halves``) of rank ``min_rank``..``max_rank``
    (None: any above) with a non-empty batch and no empty dimension; ``layout`` names the shapes in
    messages, e.g. "N, C, H, W"."""
    require_tensor(op, "input", x)
    if x.ndim < min_rank or max_rank is not None and x.ndim > max_rank:
        ranks = f"{min_rank} or more" if max_rank is None else str(min_rank) if min_rank == max_rank else \
            ", ".join(map(str, range(min_rank, max_rank))) + f" or {max_rank}"
        raise ShapeError(f"{op}: input must have rank {ranks} ({layout}), got rank {x.ndim} "
                         f"(input shape {x.shape})")
    if x.dtype not in (ALL_FLOAT_DTYPES if halves else FLOAT_DTYPES):
        kinds = "float16, bfloat16, float32 or float64" if halves else "float32 or float64"
        raise ArgumentError(f"{op}: input must have a floating-point dtype ({kinds}), got {x.dtype}")
    if x.shape[0] == 0:
        raise ShapeError(f"{op}: the input batch is empty (input shape {x.shape}); expected at least one sample")
    if 0 in x.shape:
        raise ShapeError(f"{op}: input has an empty dimension (input shape {x.shape})")
