"""Segmentation metrics from a confusion matrix accumulated over batches: pixel accuracy, per-class IoU,
mean IoU.

``m[i, j]`` counts the pixels of true class ``i`` predicted as class ``j``. Each batch is counted where
its arrays live (``xp.bincount`` on NumPy or CuPy; only the K x K counts come back to the host), so the
same code serves every device. IoU of class ``c`` is ``m[c, c] / (row c + column c - m[c, c])``, NaN for a
class absent from both targets and predictions (it is left out of the mean, as an undefined ratio
should be, rather than counted as 0 or 1); mean IoU averages the defined ones.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .errors import ArgumentError, ShapeError


def _array(value: Any) -> Any:
    """A NumPy/CuPy array from a gpucnn Tensor or an array (no copy)."""
    from .tensor import Tensor

    return value.data if isinstance(value, Tensor) else value


def _xp(array: Any) -> Any:
    return np if isinstance(array, (np.ndarray, np.generic)) else __import__("cupy")


def _host(array: Any) -> np.ndarray:
    return np.asarray(array) if isinstance(array, (np.ndarray, np.generic)) else array.get()


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ArgumentError(f"num_classes must be an int >= 1, got {num_classes!r}")
    return int(num_classes)


def confusion_matrix(target: Any, prediction: Any, num_classes: int, ignore_index: Optional[int] = None) -> np.ndarray:
    """The (K, K) int64 confusion matrix of integer class maps ``target`` and ``prediction`` (same shape,
    any number of dims; gpucnn Tensors, NumPy or CuPy arrays). Pixels whose target is ``ignore_index``
    are not counted. A class id outside ``[0, num_classes)`` raises :class:`~gpucnn.errors.ArgumentError`."""
    k = _check_num_classes(num_classes)
    t, p = _array(target), _array(prediction)
    if tuple(t.shape) != tuple(p.shape):
        raise ShapeError(f"confusion_matrix: target has shape {tuple(t.shape)} but prediction {tuple(p.shape)}; "
                         f"they must match")
    for name, a in (("target", t), ("prediction", p)):
        if a.dtype.kind not in "iu":
            raise ArgumentError(f"confusion_matrix: {name} must hold integer class ids, got dtype {a.dtype}")
    xp = _xp(t)
    t = t.reshape(-1).astype(xp.int64)
    p = p.reshape(-1).astype(xp.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    if t.size:
        for name, a in (("target", t), ("prediction", p)):
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or hi >= k:
                bad = lo if lo < 0 else hi
                raise ArgumentError(f"confusion_matrix: {name} holds class id {bad}, outside [0, {k}) for "
                                    f"num_classes={k}" + ("" if ignore_index is None else
                                                          f" (ignore_index={ignore_index})"))
    counts = xp.bincount(t * k + p, minlength=k * k)
    return _host(counts).astype(np.int64).reshape(k, k)


def pixel_accuracy(matrix: np.ndarray) -> float:
    """The fraction of counted pixels predicted right (NaN when none were counted)."""
    m = np.asarray(matrix, dtype=np.float64)
    total = m.sum()
    return float(np.trace(m) / total) if total else float("nan")


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """Intersection over union per class (float64, length K); NaN where a class is in neither the targets
    nor the predictions."""
    m = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(m)
    union = m.sum(axis=0) + m.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """The mean of the defined per-class IoUs (NaN when no class is defined)."""
    iou = per_class_iou(matrix)
    defined = iou[~np.isnan(iou)]
    return float(defined.mean()) if defined.size else float("nan")


class ConfusionMatrix:
    """A confusion matrix accumulated over batches, with the segmentation metrics read from it.

    ``update(output, target)`` takes per-pixel logits/scores ``output`` (N, K, ...) with class maps
    ``target`` (N, ...), or predicted class maps ``output`` of the target's own shape. ``compute()``
    returns ``{"pixel_accuracy", "mean_iou", "iou"}`` (``iou`` a list, NaN for undefined classes).
    ``state_dict()``/``load_state_dict()`` hold the counts as plain lists (JSON-serialisable)."""

    def __init__(self, num_classes: int, ignore_index: Optional[int] = None) -> None:
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def reset(self) -> None:
        """Forget every counted pixel."""
        self.matrix[...] = 0

    def update(self, output: Any, target: Any) -> "ConfusionMatrix":
        """Count one batch (see the class docstring); returns ``self``."""
        out, tgt = _array(output), _array(target)
        if out.ndim == tgt.ndim + 1:
            if out.shape[1] != self.num_classes:
                raise ShapeError(f"ConfusionMatrix.update: output has {out.shape[1]} class scores per pixel "
                                 f"(shape {tuple(out.shape)}), expected num_classes={self.num_classes}")
            if (out.shape[0],) + tuple(out.shape[2:]) != tuple(tgt.shape):
                raise ShapeError(f"ConfusionMatrix.update: output shape {tuple(out.shape)} does not match target "
                                 f"shape {tuple(tgt.shape)} (expected (N, K, ...) and (N, ...))")
            out = out.argmax(axis=1)
        elif out.ndim != tgt.ndim:
            raise ShapeError(f"ConfusionMatrix.update: output shape {tuple(out.shape)} must be (N, K, ...) scores or "
                             f"class ids of the target's shape {tuple(tgt.shape)}")
        self.matrix += confusion_matrix(tgt, out, self.num_classes, self.ignore_index)
        return self

    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self.matrix)

    def iou(self) -> np.ndarray:
        return per_class_iou(self.matrix)

    def mean_iou(self) -> float:
        return mean_iou(self.matrix)

    def compute(self) -> dict[str, Any]:
        """``{"pixel_accuracy": float, "mean_iou": float, "iou": [float per class]}``."""
        return {"pixel_accuracy": self.pixel_accuracy(), "mean_iou": self.mean_iou(),
                "iou": [float(v) for v in self.iou()]}

    def state_dict(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index, "matrix": self.matrix.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        matrix = np.asarray(state.get("matrix"), dtype=np.int64)
        if state.get("num_classes") != self.num_classes or matrix.shape != (self.num_classes,) * 2:
            raise ArgumentError(f"ConfusionMatrix.load_state_dict: state is for {state.get('num_classes')!r} "
                                f"classes (matrix shape {matrix.shape}), this matrix has {self.num_classes}")
        self.matrix = matrix.copy()
        self.ignore_index = state.get("ignore_index")

    def __repr__(self) -> str:
        return (f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.matrix.sum())}, "
                f"mean_iou={self.mean_iou():.4f})")
