"""Training curves and confusion matrices as PNG files (matplotlib, Agg backend, imported lazily)
plus a plain-text confusion matrix for terminals and logs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..atomic import atomic_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed; must precede importing pyplot
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    """Save atomically: a reader never sees a half-written PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch, training vs validation, side by side, into ``path``; a segmentation
    history (with ``miou``) gets a third panel, mean IoU, and its accuracy is pixel accuracy."""
    plt = _pyplot()
    path = Path(path)
    epochs = list(history.get("epoch") or range(1, len(history.get("loss", [])) + 1))
    panels = [("loss", "loss"), ("accuracy", "accuracy")]
    if "miou" in history:
        panels = [("loss", "loss"), ("accuracy", "pixel accuracy"), ("miou", "mean IoU")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    try:
        for ax, (key, title) in zip(axes, panels):
            train = list(history.get(key, []))
            val = [v for v in history.get("val_" + key, [])]
            if train:
                ax.plot(epochs[:len(train)], [np.nan if v is None else v for v in train], "o-", label="train")
            if val and any(v is not None for v in val):
                ax.plot(epochs[:len(val)], [np.nan if v is None else v for v in val], "s-", label="validation")
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            if epochs:
                ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(len(epochs) // 10, 1)])
            ax.legend()
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``m[i, j]`` = how many items of true class ``i`` were predicted as class ``j``."""
    targets = np.asarray(targets, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    k = max(int(num_classes), int(targets.max(initial=-1)) + 1, int(predictions.max(initial=-1)) + 1)
    return np.bincount(targets * k + predictions, minlength=k * k).reshape(k, k)


def format_confusion(matrix: np.ndarray, classes: Sequence[str]) -> str:
    """A text table: rows are the true classes, columns the predictions, plus per-class recall."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = [str(c) for c in classes][:k] + [str(i) for i in range(len(classes), k)]
    name_w = max([len(n) for n in names] + [len("true \\ pred")])
    cell_w = max([len(n) for n in names] + [len(str(int(matrix.max(initial=0))))]) + 1
    lines = ["true \\ pred".ljust(name_w) + "".join(n.rjust(cell_w) for n in names) + "   recall"]
    for i, name in enumerate(names):
        row = matrix[i]
        total = int(row.sum())
        recall = f"{row[i] / total * 100:6.1f}%" if total else "     - "
        lines.append(name.ljust(name_w) + "".join(str(int(v)).rjust(cell_w) for v in row) + "  " + recall)
    return "\n".join(lines)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike,
                   title: str = "confusion matrix") -> Path:
    """The confusion matrix as a heat map with counts in the cells."""
    plt = _pyplot()
    path = Path(path)
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = [str(c) for c in classes][:k] + [str(i) for i in range(len(classes), k)]
    size = min(max(4.0, 0.5 * k + 2), 16.0)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    try:
        im = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(im, ax=ax)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(names, rotation=45 if max(len(n) for n in names) > 3 else 0, ha="right")
        ax.set_yticklabels(names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if k <= 30:
            threshold = matrix.max(initial=0) / 2
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > threshold else "black")
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def plot_signal_prediction(signal: Sequence[float], prediction: Sequence[float], path: str | os.PathLike, *,
                           start: int = 0, title: str = "next-sample prediction",
                           baseline: Sequence[float] | None = None) -> Path:
    """A signal and a model's one-step-ahead prediction of it (both in the signal's units, the
    prediction of sample ``t`` made from samples before ``t``) over sample indices from ``start``,
    with the prediction error below; optionally the persistence baseline (previous sample). Atomic."""
    plt = _pyplot()
    path = Path(path)
    signal, prediction = np.asarray(signal, dtype=float), np.asarray(prediction, dtype=float)
    t = np.arange(start, start + len(signal))
    fig, (ax, ax_err) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    try:
        ax.plot(t, signal, "-", color="0.3", lw=1.2, label="signal (mu-law decoded)")
        ax.plot(t, prediction, "-", color="tab:red", lw=1.0, label="prediction")
        ax_err.plot(t, prediction - signal, "-", color="tab:red", lw=0.8, label="prediction error")
        if baseline is not None:
            ax_err.plot(t, np.asarray(baseline, dtype=float) - signal, "-", color="tab:blue", lw=0.6, alpha=0.6,
                        label="persistence error")
        ax.set_title(title)
        ax.legend(loc="upper right")
        ax.grid(True, alpha=0.3)
        ax_err.set_xlabel("sample")
        ax_err.legend(loc="upper right")
        ax_err.grid(True, alpha=0.3)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path
