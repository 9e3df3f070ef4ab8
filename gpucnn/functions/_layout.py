"""Memory layouts of NumPy arrays. The NumPy path keeps activations as NCHW views of (C, H, W, N)
memory (see ``_conv_numpy``) while user inputs are plain NCHW; an elementwise op over operands of
different layouts walks one of them across pages, element by element (adding an NCHW input to a conv
output, as a ResNet skip connection does, took 29 ms instead of 3 at 64x64x32x32). One copy into the
other's layout first is ~10x cheaper."""
from __future__ import annotations

import numpy as np


def axis_order(a: np.ndarray) -> tuple[int, ...]:
    """The axes of ``a`` from the largest stride to the smallest (its memory layout)."""
    return tuple(sorted(range(a.ndim), key=lambda i: -abs(a.strides[i])))


def like(ref: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in the memory layout of ``ref`` (same shape)."""
    out = np.empty_like(ref, dtype=a.dtype)
    out[...] = a
    return out


def matched(ref: object, a: object) -> object:
    """``a``, copied into ``ref``'s layout when both are NumPy arrays of one shape (3-D or more) laid
    out differently; else ``a`` itself."""
    if (isinstance(ref, np.ndarray) and isinstance(a, np.ndarray) and a.ndim >= 3 and a.shape == ref.shape
            and axis_order(a) != axis_order(ref)):
        return like(ref, a)
    return a
