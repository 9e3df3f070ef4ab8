"""How a dtype reaches the element-wise kernel families (pooling, batch norm): their ``#define``s and the
array a kernel is handed. float32/float64 are ``T=float``/``T=double``; float16 and bfloat16 are
``T=gpucnn_u16`` plus ``GPUCNN_F16``/``GPUCNN_BF16`` with the arrays passed as their uint16 bit patterns
(kernels_cuda/common.cuh and lowp.cuh: NVRTC from the pip wheels has no cuda_fp16.h), computed in float
inside the kernel and rounded once on store."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..errors import ArgumentError

_DEFINES = {
    np.dtype(np.float32): {"T": "float"},
    np.dtype(np.float64): {"T": "double"},
    dtypes.float16: {"T": "gpucnn_u16", "GPUCNN_F16": 1},
    dtypes.bfloat16: {"T": "gpucnn_u16", "GPUCNN_BF16": 1},
}


def kernel_defines(op: str, dtype: Any) -> dict[str, Any]:
    """The ``device.kernel(...)`` defines for arrays of ``dtype``."""
    found = _DEFINES.get(np.dtype(dtype))
    if found is None:
        raise ArgumentError(f"{op}: the CUDA kernels support float16, bfloat16, float32 and float64, got "
                            f"{np.dtype(dtype)}")
    return found


def bits(a: Any) -> Any:
    """``a`` as a kernel argument: a 16-bit float array as a uint16 view of the same memory, else itself."""
    if a.dtype.itemsize == 2 and a.dtype.kind in "fV":
        return a.view(np.uint16)
    return a
