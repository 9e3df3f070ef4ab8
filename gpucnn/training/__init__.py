"""Training: :class:`Trainer` and :func:`fit` (epochs, progress, metrics, checkpoints, exact resume,
early stopping, plots), and :class:`RunConfig`, a run described as data (what ``gpucnn train`` builds).

See :mod:`gpucnn.training.trainer` for what a run writes and how interruptions are handled.
"""
from __future__ import annotations

from .checkpoint import (CHECKPOINT_FILE, CONFUSION_FILE, CURVES_FILE, METRICS_FILE, MODEL_FILE,
                         load_checkpoint, save_checkpoint)
from .plots import confusion_matrix, format_confusion, plot_confusion, plot_curves
from .run import RunConfig, build_run
from .trainer import History, Trainer, TrainingInterrupted, check_output_dir, evaluate, fit

__all__ = [
    "Trainer", "fit", "evaluate", "History", "TrainingInterrupted", "RunConfig", "build_run",
    "check_output_dir", "load_checkpoint", "save_checkpoint", "confusion_matrix", "format_confusion",
    "plot_confusion", "plot_curves", "CHECKPOINT_FILE", "MODEL_FILE", "METRICS_FILE", "CURVES_FILE",
    "CONFUSION_FILE",
]
