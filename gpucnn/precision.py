"""Float32 GEMM precision: ``set_float32_matmul_precision("highest" | "high")``, PyTorch's names.

- ``"highest"`` (the default): float32 convolutions and ``linear`` are exact FP32 GEMMs.
- ``"high"``: both operands of every float32 convolution GEMM and of ``linear`` are rounded to TF32
  (10 mantissa bits, round to nearest with ties away from zero: PTX's ``cvt.rna.tf32.f32``) and the
  products accumulate in FP32 — the forward rounds x and w, the backward-data gy and w, the
  backward-filter x and gy. That is what the GPU's tensor cores compute; the NumPy path (``cpu``) and
  the kernels on ``emu`` round the same way, so all devices agree to float32 accuracy.

Unlike PyTorch, whose cuDNN convolutions default to TF32 (``torch.backends.cudnn.allow_tf32 = True``;
2.9+: ``torch.backends.cudnn.conv.fp32_precision``) while its matmuls default to ``"highest"``, one
setting here covers both, and the default is exact.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ArgumentError

PRECISIONS = ("highest", "high")
_precision = "highest"


def set_float32_matmul_precision(precision: str) -> None:
    """Choose how float32 convolutions and ``linear`` multiply: ``"highest"`` (FP32) or ``"high"`` (TF32
    operands, FP32 accumulation)."""
    global _precision
    if precision not in PRECISIONS:
        raise ArgumentError(f"set_float32_matmul_precision: precision must be one of {', '.join(PRECISIONS)}, "
                            f"got {precision!r}" + (" (bfloat16 GEMMs are not implemented)"
                                                    if precision == "medium" else ""))
    _precision = precision


def get_float32_matmul_precision() -> str:
    """The current float32 GEMM precision (``"highest"`` unless changed)."""
    return _precision


def tf32_operands(dtype: Any) -> bool:
    """Whether GEMM operands of ``dtype`` are rounded to TF32 now (float32 under ``"high"``)."""
    return _precision == "high" and np.dtype(dtype) == np.float32


def round_tf32(xp: Any, a: Any) -> Any:
    """``a`` (float32, NumPy or CuPy) rounded to TF32 as ``cvt.rna.tf32.f32``: add half of the 13
    dropped bits' weight and truncate, so ties round away from zero; Inf and NaN pass unchanged (a
    NaN's payload in the dropped bits would otherwise carry into the exponent). A new array in a's
    memory layout (the NumPy conv path keeps activations channel-major)."""
    out = a.copy(order="K")
    bits = out.view(np.uint32)
    special = (bits & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    bits += np.uint32(0x1000)
    bits &= np.uint32(0xFFFFE000)
    xp.copyto(bits, a.view(np.uint32), where=special)
    return out


def rounded(xp: Any, arrays: tuple, on: bool) -> tuple:
    """``arrays`` with each (not None) rounded to TF32 when ``on``, else as they are."""
    return tuple(round_tf32(xp, a) if on and a is not None else a for a in arrays)
