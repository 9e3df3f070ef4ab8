"""Memory layouts of NumPy arrays. The NumPy path keeps activations as NCHW views of (C, H, W, N)
memory (see ``_conv_numpy``) while user inputs are plain NCHW; an elementwise op over operands of
different layouts walks one of them across pages, element by element (adding an NCHW input to a conv
output, as a ResNet skip connection does, took 29 ms instead of 3 at 64x64x32x32). One copy into the
other's layout first is ~10x cheaper. Both the copy and the elementwise ops over large arrays split over
the NumPy path's threads (:func:`gpucnn.workspace.map_outer`)."""
from __future__ import annotations

import numpy as np

from .. import workspace
from ..dtypes import is_floating_point


def axis_order(a: np.ndarray) -> tuple[int, ...]:
    """The axes of ``a`` from the largest stride to the smallest (its memory layout)."""
    return tuple(sorted(range(a.ndim), key=lambda i: -abs(a.strides[i])))


def like(ref: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in the memory layout of ``ref`` (same shape)."""
    out = np.empty_like(ref, dtype=a.dtype)
    workspace.map_outer(lambda s: np.copyto(out[s], a[s]), out)
    return out


def splittable(a: object, b: object) -> bool:
    """Whether :func:`elementwise` applies: NumPy float arrays of one shape and dtype (at least 1-D)."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim > 0 and a.shape == b.shape
            and a.dtype == b.dtype and is_floating_point(a.dtype))


def elementwise(ufunc: np.ufunc, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``ufunc(a, b)`` in ``a``'s layout (``b`` laid out the same, see :func:`matched`), split over the
    threads when large."""
    out = np.empty_like(a)
    workspace.map_outer(lambda s: ufunc(a[s], b[s], out=out[s]), out)
    return out


def matched(ref: object, a: object) -> object:
    """``a``, copied into ``ref``'s layout when both are NumPy arrays of one shape (3-D or more) laid
    out differently; else ``a`` itself."""
    if (isinstance(ref, np.ndarray) and isinstance(a, np.ndarray) and a.ndim >= 3 and a.shape == ref.shape
            and axis_order(a) != axis_order(ref)):
        return like(ref, a)
    return a
