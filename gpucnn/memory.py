"""Out-of-memory errors that say what ran out: the op, the pass, the allocation and a batch size to try.

:meth:`gpucnn.function.Function._guarded` runs every op's forward and backward through
:func:`is_out_of_memory` / :func:`out_of_memory_error`.
"""
from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np

from .errors import GpucnnError, OutOfMemoryError

#: The exceptions that mean "the device ran out of memory". NumPy raises a ``MemoryError``; CuPy's
#: ``cupy.cuda.memory.OutOfMemoryError`` (a ``MemoryError`` too) is added the first time an op runs on a
#: CuPy device (CuPy is imported only then). Tests add stand-ins.
OOM_ERRORS: tuple[type[BaseException], ...] = (MemoryError,)
_cupy_oom_registered = False
#: CUDA out-of-memory errors that CuPy raises as its own (non-MemoryError) types: cudaMalloc inside
#: cuBLAS/cuRAND, a kernel launch, a handle creation.
_CUDA_OOM_MARKERS = ("cudaErrorMemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY", "STATUS_ALLOC_FAILED",
                     "out of memory")


def _register_cupy_oom() -> None:
    global OOM_ERRORS, _cupy_oom_registered
    _cupy_oom_registered = True
    try:
        from cupy.cuda.memory import OutOfMemoryError as CupyOutOfMemoryError
    except Exception:  # CuPy missing or broken: nothing to register
        return
    if CupyOutOfMemoryError not in OOM_ERRORS:
        OOM_ERRORS = OOM_ERRORS + (CupyOutOfMemoryError,)


def is_out_of_memory(exc: BaseException, xp: Any = np) -> bool:
    """Whether ``exc``, raised by an op working with array module ``xp``, means memory ran out."""
    if not _cupy_oom_registered and xp is not np:
        _register_cupy_oom()
    if isinstance(exc, GpucnnError):
        return False  # ours already (e.g. an OutOfMemoryError from a nested op)
    if isinstance(exc, OOM_ERRORS):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("cupy", "cupy_backends")) and any(m in str(exc) for m in _CUDA_OOM_MARKERS)


def _nbytes(n: int) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.1f} {unit})"
    return f"{n:,} bytes"


def _allocation(exc: BaseException) -> str:
    """What the failed allocation was, from what the exception knows: NumPy's ``_ArrayMemoryError`` has
    ``shape``/``dtype``; CuPy's ``OutOfMemoryError`` the requested and the allocated bytes."""
    shape, dtype = getattr(exc, "shape", None), getattr(exc, "dtype", None)
    size = getattr(exc, "_size", None)
    if size is None:
        found = re.search(r"allocating ([\d,]+) bytes", str(exc))
        size = int(found.group(1).replace(",", "")) if found else None
    if size is None and shape is not None and dtype is not None:
        try:
            size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        except (TypeError, ValueError):
            size = None
    parts = []
    if size is not None:
        parts.append(_nbytes(int(size)))
    if shape is not None and dtype is not None:
        parts.append(f"for an array of shape {tuple(shape)} {np.dtype(dtype)}")
    what = " ".join(parts) if parts else "an array"
    total = getattr(exc, "_total", None)
    if total:
        what += f", with {_nbytes(int(total))} already allocated"
    return what


def out_of_memory_error(op: str, device: Any, exc: BaseException, xs: tuple, phase: str) -> OutOfMemoryError:
    """The :class:`OutOfMemoryError` for ``exc``, raised while op ``op`` ran its ``phase`` ("forward" or
    "backward") on input arrays ``xs``: the device, what was being allocated, the inputs' shapes and
    dtypes, and a smaller batch to try."""
    shapes = ", ".join(f"{tuple(x.shape)} {x.dtype}" for x in xs if x is not None and hasattr(x, "shape"))
    batch = next((int(x.shape[0]) for x in xs if x is not None and getattr(x, "ndim", 0) >= 1), 0)
    if batch > 1:
        hint = (f"the batch has {batch} samples: try a smaller batch size (e.g. --batch-size "
                f"{max(1, batch // 2)}), a smaller model or smaller inputs")
    elif batch == 1:
        hint = "the batch has 1 sample: try a smaller model or smaller inputs"
    else:
        hint = "try a smaller batch size, a smaller model or smaller inputs"
    where = f" on {device}" if device is not None else ""
    return OutOfMemoryError(
        f"{op}: out of memory{where} in the {phase} pass while allocating {_allocation(exc)} "
        f"(inputs: {shapes or 'none'}); {hint} [{type(exc).__name__}: {str(exc).strip()[:200]}]")


def rss_mib() -> tuple[float, float]:
    """(current RSS, RSS high-water mark) of this process in MiB.

    Linux: VmRSS/VmHWM of /proc/self/status. Not ``getrusage``'s ``ru_maxrss`` there: Linux folds the
    high-water mark of the pre-exec address space into it, so a child started by a process that had
    imported PyTorch would report at least the parent's RSS. Elsewhere: ``ru_maxrss`` (both values).
    """
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024.0, int(fields["VmHWM"].split()[0]) / 1024.0
    except (OSError, KeyError, ValueError):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024.0
        return peak, peak
