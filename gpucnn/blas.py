"""``gemm``: ``out = a @ b + beta * out`` on strided 2-D views, through the BLAS that NumPy itself uses.

Why not ``np.matmul``: it cannot accumulate into its output (BLAS's ``beta``), so a sum of products
needs a temporary and an extra pass over memory per term. The NumPy path's convolution sums one
product per kernel row into the same output block (see :mod:`gpucnn.functions.conv`), and its operands
are views with a row stride (``lda``) that BLAS takes as they are.

How: NumPy's wheels bundle OpenBLAS (``scipy-openblas``); threadpoolctl already finds that library, and
its ``cblas_sgemm``/``cblas_dgemm`` are called through ctypes (which releases the GIL, so the NumPy
path's threads run their GEMMs at once). Found once, checked against ``np.matmul`` on a small product
before it is trusted. Elsewhere (another BLAS, a symbol not found, ``GPUCNN_BLAS=numpy``) :func:`gemm`
falls back to ``np.matmul`` plus an add, with the same results up to rounding; :func:`accelerated` says
which one runs, so callers can pick an algorithm that does not need accumulation instead.
"""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Optional

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_lock = threading.Lock()
_resolved = False
_gemm: dict[np.dtype, Any] = {}  # dtype -> cblas_?gemm with argtypes set


def _candidates() -> list[str]:
    """Paths of the BLAS libraries loaded in this process (NumPy's first), via threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
        return [lib.filepath for lib in ThreadpoolController().select(user_api="blas").lib_controllers
                if lib.internal_api == "openblas"]
    except Exception:  # threadpoolctl missing or unable to inspect this process
        return []


def _bind(path: str) -> dict[np.dtype, Any]:
    """``{float32: cblas_sgemm, float64: cblas_dgemm}`` of the OpenBLAS at ``path``, or {}."""
    lib = ctypes.CDLL(path)
    # scipy-openblas names its symbols scipy_cblas_sgemm64_ (64-bit ints) or scipy_cblas_sgemm; a plain
    # OpenBLAS build has cblas_sgemm. The int width follows from the suffix or the build config.
    for prefix in ("scipy_", ""):
        for suffix in ("64_", ""):
            if not hasattr(lib, f"{prefix}cblas_sgemm{suffix}"):
                continue
            config = getattr(lib, f"{prefix}openblas_get_config{suffix}", None)
            if config is None:
                return {}
            config.restype = ctypes.c_char_p
            wide = suffix == "64_" or b"USE64BITINT" in (config() or b"")
            int_t = ctypes.c_int64 if wide else ctypes.c_int32
            found = {}
            for dtype, letter, real in ((np.dtype(np.float32), "s", ctypes.c_float),
                                        (np.dtype(np.float64), "d", ctypes.c_double)):
                fn = getattr(lib, f"{prefix}cblas_{letter}gemm{suffix}")
                ptr = ctypes.c_void_p
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, real,
                               ptr, int_t, ptr, int_t, real, ptr, int_t]
                fn.restype = None
                found[dtype] = fn
            return found
    return {}


def _self_test() -> bool:
    """A strided, transposed, accumulating product must match NumPy's (a wrong int width or calling
    convention would not)."""
    rng = np.random.default_rng(0)
    for dtype in _gemm:
        a = rng.standard_normal((7, 12)).astype(dtype)[:, 1:10]
        b = rng.standard_normal((5, 9)).astype(dtype).T
        out = rng.standard_normal((7, 8)).astype(dtype)[:, :5]
        expect = a @ b + 0.5 * out
        _call(a, b, out, 0.5)
        if not np.allclose(out, expect, rtol=1e-4, atol=1e-4):
            return False
    return True


def _resolve() -> None:
    global _resolved
    with _lock:
        if _resolved:
            return
        if os.environ.get("GPUCNN_BLAS", "").lower() != "numpy":
            for path in _candidates():
                try:
                    _gemm.update(_bind(path))
                except (OSError, AttributeError):
                    _gemm.clear()
                if _gemm:
                    break
            if _gemm and not _self_test():
                _gemm.clear()
        _resolved = True


def accelerated(dtype: Any = np.float32) -> bool:
    """Whether :func:`gemm` calls BLAS directly for ``dtype`` (else it is ``np.matmul`` plus an add)."""
    if not _resolved:
        _resolve()
    return np.dtype(dtype) in _gemm


def _layout(a: np.ndarray) -> Optional[tuple[int, int]]:
    """(transpose flag, leading dimension) of a row-major BLAS operand for the 2-D view ``a``, or None
    when no BLAS stride fits it."""
    rows, cols = a.shape
    s0, s1 = a.strides
    item = a.itemsize
    if s1 == item or cols == 1:
        ld = s0 // item if rows > 1 else cols
        if s0 % item == 0 and ld >= max(1, cols):
            return _NO_TRANS, ld
    if s0 == item or rows == 1:
        ld = s1 // item if cols > 1 else rows
        if s1 % item == 0 and ld >= max(1, rows):
            return _TRANS, ld
    return None


def _call(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float) -> bool:
    """cblas ``out = a @ b + beta * out``; False (nothing done) when a stride does not fit BLAS."""
    la, lb, lo = _layout(a), _layout(b), _layout(out)
    if la is None or lb is None or lo is None or lo[0] != _NO_TRANS:
        return False
    m, k = a.shape
    n = b.shape[1]
    _gemm[out.dtype](_ROW_MAJOR, la[0], lb[0], m, n, k, 1.0, a.ctypes.data, la[1], b.ctypes.data, lb[1],
                     beta, out.ctypes.data, lo[1])
    return True


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float = 0.0) -> np.ndarray:
    """``out[...] = a @ b + beta * out`` for 2-D arrays of one float dtype; returns ``out``.

    ``a``, ``b`` and ``out`` may be strided views (any view with a unit stride along one axis goes to
    BLAS as it is; anything else through NumPy). ``out`` must not overlap ``a`` or ``b``. With
    ``beta == 0`` the old contents of ``out`` are ignored (NaN included), as in BLAS."""
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2 or a.shape[1] != b.shape[0] \
            or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm: shapes {a.shape} @ {b.shape} -> {out.shape} do not match")
    if not (a.dtype == b.dtype == out.dtype):
        raise ValueError(f"gemm: dtypes differ: {a.dtype}, {b.dtype}, {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("gemm: out is read-only")
    if a.shape[1] == 0 or out.size == 0:  # BLAS's k = 0 is fine, but NumPy's fallback must match it
        if beta == 0:
            out[...] = 0
        elif beta != 1:
            out *= beta
        return out
    if accelerated(out.dtype) and _call(a, b, out, beta):
        return out
    if beta == 0:
        np.matmul(a, b, out=out)
    else:
        if beta != 1:
            out *= beta
        out += a @ b
    return out
