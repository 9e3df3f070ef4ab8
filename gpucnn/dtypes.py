"""Dtypes and PyTorch's type promotion (``torch.result_type``), for NumPy and CuPy arrays alike.

gpucnn's dtypes are NumPy dtypes (``gpucnn.float32 is np.dtype("float32")``). Promotion follows PyTorch,
not NumPy, which differ where it matters for a network:

- an int tensor with a Python float gives the default float dtype (float32), not int (truncation) nor
  float64; a float32 tensor with a Python float stays float32;
- int32 with float32 gives float32 (NumPy: float64); int64 with float16 gives float16;
- operands are ranked: tensors with dims, then 0-d tensors, then Python numbers; a lower-ranked operand
  changes the result only when it is of a higher category (bool < integer < float), e.g.
  ``uint8 tensor + 1000`` stays uint8 and ``float16 tensor + 0-d float64 tensor`` stays float16.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import ml_dtypes
import numpy as np

from .errors import DtypeError

bool_ = np.dtype(np.bool_)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
#: Google's bfloat16 for NumPy (ml_dtypes): float32's exponent with 7 mantissa bits
bfloat16 = np.dtype(ml_dtypes.bfloat16)

#: the dtypes a tensor may have
SUPPORTED = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
#: the floating-point ones (NumPy's ``kind`` of bfloat16 is "V", not "f": ask :func:`is_floating_point`)
FLOATING = (float16, bfloat16, float32, float64)
#: PyTorch's spellings (``torch.long``, ``torch.half``...) and Python's types, as ``x.to(float)`` means float64
_ALIASES = {
    "bool": bool_, "uint8": uint8, "int8": int8, "int16": int16, "short": int16, "int32": int32, "int": int32,
    "int64": int64, "long": int64, "float16": float16, "half": float16, "bfloat16": bfloat16, "float32": float32,
    "float": float32,
    "float64": float64, "double": float64,
}
_PYTHON_TYPES = {bool: bool_, int: int64, float: float64}

_default_float = float32


def get_default_dtype() -> np.dtype:
    """The dtype of floating-point tensors made from Python floats (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating-point dtype (float32 or float64, like ``torch.set_default_dtype``)."""
    global _default_float
    d = as_dtype(dtype, "set_default_dtype")
    if d not in FLOATING:
        raise DtypeError(f"set_default_dtype: only floating-point dtypes are supported as the default, got {d}")
    _default_float = d


def as_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """``dtype`` (a NumPy dtype or type, a name such as ``"float32"`` or ``"long"``, or Python's
    ``bool``/``int``/``float``) as one of the :data:`SUPPORTED` NumPy dtypes; anything else is a
    :class:`~gpucnn.errors.DtypeError` (a TypeError, as in PyTorch)."""
    if isinstance(dtype, type) and dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype]
    if isinstance(dtype, str) and dtype in _ALIASES:
        return _ALIASES[dtype]
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d not in SUPPORTED:
        names = ", ".join(str(s) for s in SUPPORTED)
        raise DtypeError(f"{what}: unknown or unsupported dtype {dtype!r}; expected one of {names}")
    return d


def is_floating_point(dtype: Any) -> bool:
    """Whether ``dtype`` is float16, bfloat16, float32 or float64."""
    return np.dtype(dtype) in FLOATING


def _category(dtype: np.dtype) -> int:
    return 2 if is_floating_point(dtype) else {"b": 0, "u": 1, "i": 1}[dtype.kind]


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's ``torch.promote_types``: the smallest dtype both ``a`` and ``b`` convert to, where a
    float always wins over an integer (int64 + float16 is float16, int32 + float32 is float32)."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if {a, b} == {float16, bfloat16}:
        return float32  # neither holds the other (as torch.promote_types)
    return np.promote_types(a, b)  # same category: NumPy and PyTorch agree (uint8 + int8 = int16)


def _scalar_dtype(value: Any) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, numbers.Integral):
        return int64
    if isinstance(value, numbers.Real):
        return _default_float
    raise DtypeError(f"expected a tensor or a Python number, got {type(value).__name__}")


def _combine(higher: Optional[np.dtype], lower: Optional[np.dtype]) -> Optional[np.dtype]:
    """c10's combine_categories: the higher-priority result, unless ``lower`` is of a higher category."""
    if higher is None:
        return lower
    if lower is None or is_floating_point(higher):
        return higher
    if higher.kind == "b" or is_floating_point(lower):
        return promote_types(higher, lower)
    return higher


def result_type(*operands: Any) -> np.dtype:
    """The dtype an elementwise op on ``operands`` computes in (``torch.result_type``): each operand is a
    tensor (anything with ``.dtype`` and ``.ndim``, a NumPy/CuPy array too) or a Python number."""
    results: list[Optional[np.dtype]] = [None, None, None]  # tensors with dims, 0-d tensors, numbers
    for x in operands:
        if hasattr(x, "dtype") and hasattr(x, "ndim"):
            rank, d = (0 if x.ndim else 1), np.dtype(x.dtype)
        else:
            rank, d = 2, _scalar_dtype(x)
        results[rank] = d if results[rank] is None else promote_types(results[rank], d)
    out = _combine(results[0], _combine(results[1], results[2]))
    assert out is not None, "result_type() needs at least one operand"
    return out


def can_cast(from_: np.dtype, to: np.dtype) -> bool:
    """PyTorch's ``torch.can_cast`` for in-place results: no float into an integer tensor and nothing but
    bool into a bool tensor (``int_tensor += 0.5`` is an error, not a truncation)."""
    return _category(from_) <= _category(to)
