"""`Trainer` and `fit()`: the training loop, with metrics, checkpoints, exact resume and early stopping.

::

    from gpucnn.training import Trainer
    trainer = Trainer(model, optimizer, train_loader, val_loader, epochs=5, out_dir="runs/mine")
    history = trainer.fit()                  # {"loss": [...], "accuracy": [...], "val_loss": [...], ...}

    # later, or after a crash / Ctrl-C: rebuild the same objects, then
    trainer.load_checkpoint("runs/mine")     # or Trainer.resume("runs/mine") for runs built from a RunConfig
    trainer.fit()                            # continues with the next epoch

What happens per epoch: the model trains on the training loader's batches (moved to the model's device),
a progress bar shows the running loss and accuracy when stderr is a terminal, then the model is
evaluated on the validation data (eval mode, ``no_grad``, in batches), the learning-rate scheduler steps,
early stopping is updated, and -- with an ``out_dir`` -- the files below are (re)written atomically:

==================  ================================================================================
``checkpoint.npz``  everything needed to resume exactly (see :mod:`gpucnn.training.checkpoint`)
``model.npz``       the model (:func:`gpucnn.serialization.save`) with class names, input shape and the
                    input transform in its metadata: the final model, or with early stopping the best
``metrics.json``    the history, and at the end the test metrics
``curves.png``      loss and accuracy per epoch (at the end, or every epoch with ``plot_every_epoch``)
``confusion.png``   with ``confusion_matrix=True`` (plus ``confusion.txt``)
==================  ================================================================================

Interruptions. Checkpoints are written only at epoch ends. Ctrl-C (SIGINT) during an epoch abandons
that epoch: the checkpoint of the last complete epoch stays as it was, and :class:`TrainingInterrupted`
(a ``KeyboardInterrupt``) is raised with a message saying how to resume. A SIGINT that arrives while the
files are being written is held until they are complete. A resumed run restores the model, optimizer,
scheduler, the loader's shuffle RNG and gpucnn's global RNG, so on device ``cpu`` it finishes with
weights bit-identical to an uninterrupted run with the same seed.

A NaN or Inf training loss raises :class:`~gpucnn.errors.TrainingError` naming the epoch and step,
before the bad step is applied and without touching the last good checkpoint.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from ..atomic import write_text
from ..errors import ArgumentError, ModelFormatError, ShapeError, TrainingError
from . import checkpoint as ckpt
from .parallel import is_sharded, world
from .progress import ProgressBar, format_duration

HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec",
                "skipped_steps")
#: what a segmentation run records besides: the mean IoU of training and validation, and per class
#: ``iou_<class>`` / ``val_iou_<class>`` (one number per epoch each, as a checkpoint's history holds)
SEGMENT_HISTORY_KEYS = ("miou", "val_miou")
#: ``classify``: one class per input (logits (N, classes)); ``segment``: one class per pixel (logits
#: (N, classes, H, W) against masks (N, H, W)), where accuracy is pixel accuracy and IoU is measured;
#: ``sequence``: one class per time step (logits (N, classes, T) against (N, T), e.g. WaveNet's next
#: samples), where accuracy counts time steps
TASKS = ("classify", "segment", "sequence")


class History(dict):
    """The per-epoch metrics: a dict of lists (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``lr``, ``time``, ``images_per_sec``, ``epoch``, and ``skipped_steps``: optimizer steps the float16
    loss scaler skipped for inf/NaN gradients). A segmentation run's ``accuracy`` is pixel accuracy, and
    it also has ``miou``/``val_miou`` (mean IoU) and ``iou_<class>``/``val_iou_<class>`` per class (None
    for a class in neither the targets nor the predictions). Like Keras's ``History``, ``.history`` is the dict
    and ``.epoch`` the list of epoch numbers."""

    @property
    def history(self) -> "History":
        return self

    @property
    def epoch(self) -> list[int]:  # type: ignore[override]
        return list(self.get("epoch", []))

    @classmethod
    def empty(cls, task: str = "classify") -> "History":
        return cls({k: [] for k in HISTORY_KEYS + (SEGMENT_HISTORY_KEYS if task == "segment" else ())})


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C/SIGINT; the message says what was kept and how to resume."""

    def __init__(self, message: str, out_dir: Optional[Path] = None, epoch: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.out_dir = out_dir
        self.epoch = epoch

    def __str__(self) -> str:
        return self.message


# -- helpers -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold SIGINT while files are written; raise KeyboardInterrupt afterwards if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except (ValueError, OSError):  # not allowed here (embedded interpreter, ...)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if received:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Put every module of ``model`` in eval mode, then restore each module's own flag (a submodule a
    user froze in eval mode stays so)."""
    modules = list(model.modules()) if hasattr(model, "modules") else [model]
    flags = [(m, bool(getattr(m, "training", True))) for m in modules]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)


def _amp_dtype(amp: Any) -> Optional[np.dtype]:
    """``amp`` ("fp16", "bf16", a 16-bit dtype or its name, or None) as the autocast dtype."""
    from .. import dtypes
    from ..amp.autocast_mode import AMP_NAMES, LOW_DTYPES

    if amp is None:
        return None
    name = AMP_NAMES.get(amp, amp) if isinstance(amp, str) else amp
    try:
        dt = dtypes.as_dtype(name)
    except Exception:
        dt = None
    if dt not in LOW_DTYPES:
        raise ArgumentError(f"amp must be one of {', '.join(AMP_NAMES)} (or gpucnn.float16 / gpucnn.bfloat16) or "
                            f"None, got {amp!r}")
    return dt


def _model_device(model: Any) -> Any:
    from ..backend import get_device

    for p in model.parameters():
        return p.device
    return get_device("cpu")


def _num_params(model: Any) -> int:
    return int(sum(int(np.prod(p.shape)) for p in model.parameters()))


def _warn_if_optimizer_misses_the_model(model: Any, optimizer: Any) -> None:
    """A UserWarning when ``optimizer`` holds none of ``model``'s parameters: every step would leave the
    model as it is (an optimizer built for another model, or before the model was rebuilt)."""
    groups = getattr(optimizer, "param_groups", None)
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if groups is None or not params:
        return
    held = {id(p) for group in groups for p in group.get("params", [])}
    if not any(id(p) in held for p in params):
        warnings.warn(f"the optimizer ({type(optimizer).__name__}, {len(held)} parameters) holds none of the "
                      f"model's {len(params)} parameters, so training will not change the model; build it "
                      f"from this model's parameters: optimizer = {type(optimizer).__name__}(model.parameters(), "
                      f"...)", UserWarning, stacklevel=_caller_outside_this_package())


def _caller_outside_this_package() -> int:
    """The ``stacklevel`` (for a warning raised by this module's caller) of the first frame outside
    gpucnn.training, so the warning names the user's line whether it came through fit() or Trainer()."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


def _as_host(array: Any) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else np.asarray(array.get())


def check_output_dir(path: Union[str, os.PathLike]) -> Path:
    """Create ``path`` if needed and prove it is writable (write and delete a small file), else raise
    :class:`TrainingError` naming it. Done before training so a run never fails at its first save."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create the output directory {path}: {exc.strerror or exc}; "
                            f"choose another one (--out DIR)") from None
    if not path.is_dir():
        raise TrainingError(f"the output path {path} exists and is not a directory; choose another (--out DIR)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        try:
            os.write(fd, b"gpucnn")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise TrainingError(f"the output directory {path} is not writable ({exc.strerror or exc}); "
                            f"choose another one (--out DIR)") from None
    return path


def _loader(data: Any, *, batch_size: int, shuffle: bool, seed: int, transform: Any) -> Any:
    """A DataLoader for ``data``: a DataLoader (kept), an ``(images, labels)`` pair (made an ArrayDataset),
    or a map-style dataset (an ArrayDataset, a TensorDataset, a Subset, your own), whose items are
    ``(input, label)`` (``transform`` applies to ArrayDataset images only)."""
    from ..data import ArrayDataset, DataLoader
    from ..data.dataset import unwrap_subsets

    if data is None or isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data = ArrayDataset(np.asarray(data[0]), np.asarray(data[1]))
    if not (callable(getattr(data, "__len__", None)) and callable(getattr(data, "__getitem__", None))):
        raise ArgumentError(f"training/validation data must be a DataLoader, a map-style dataset (such as an "
                            f"ArrayDataset or a TensorDataset) or an (images, labels) pair, got {type(data).__name__}")
    if not isinstance(unwrap_subsets(data)[0], ArrayDataset):
        transform = None
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=transform)


def _array_dataset(loader: Any) -> Any:
    """The ArrayDataset under ``loader`` (through Subsets), or None for other datasets."""
    from ..data import ArrayDataset
    from ..data.dataset import unwrap_subsets

    root = unwrap_subsets(getattr(loader, "dataset", None))[0]
    return root if isinstance(root, ArrayDataset) else None


def _on_device(x: Any, y: Any, device: Any) -> tuple[Any, Any, np.ndarray]:
    """A batch ``(x, y)`` (NumPy arrays or gpucnn Tensors) as ``(x tensor, y int64 tensor, y on the host)``."""
    from ..tensor import Tensor, tensor

    y_host = np.asarray(_as_host(y.data) if isinstance(y, Tensor) else y, dtype=np.int64)
    xb = x if isinstance(x, Tensor) and x.device == device and not x.requires_grad else tensor(x, device=device)
    return xb, tensor(y_host, device=device), y_host


def deterministic_part(transform: Any) -> Any:
    """``transform`` without its random augmentations (RandomCrop, RandomHorizontalFlip): the
    preprocessing to use for evaluation when none is given (None if nothing is left)."""
    from ..data import Compose, RandomCrop, RandomHorizontalFlip

    random_kinds = (RandomCrop, RandomHorizontalFlip)
    if transform is None or isinstance(transform, random_kinds):
        return None
    if isinstance(transform, Compose):
        kept = [t for t in transform.transforms if not isinstance(t, random_kinds)]
        kept = [k for k in (deterministic_part(t) if isinstance(t, Compose) else t for t in kept) if k is not None]
        return None if not kept else kept[0] if len(kept) == 1 else Compose(kept)
    return transform


def _check_task(task: Any) -> str:
    if task not in TASKS:
        raise ArgumentError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return str(task)


def _segment_metrics(matrix: np.ndarray) -> dict[str, Any]:
    """Pixel accuracy, mean IoU and per-class IoU (NaN: a class absent from targets and predictions)."""
    from ..metrics import mean_iou, per_class_iou, pixel_accuracy

    return {"pixel_accuracy": pixel_accuracy(matrix), "mean_iou": mean_iou(matrix),
            "iou": [float(v) for v in per_class_iou(matrix)]}


def _json_number(v: float) -> Optional[float]:
    """NaN (an undefined IoU) as None: JSON has no NaN."""
    return None if v is None or not math.isfinite(v) else float(v)


def _epoch_batches(loader: Any) -> Iterator[Any]:
    """The loader's batches for one whole epoch, from its first batch."""
    if hasattr(loader, "iter_from"):
        return loader.iter_from(0)
    return iter(loader)


def evaluate(model: Any, data: Any, *, device: Any = None, loss_fn: Optional[Callable] = None,
             batch_size: int = 256, transform: Any = None, predictions: bool = False,
             amp: Any = None, task: str = "classify", num_classes: Optional[int] = None) -> dict[str, Any]:
    """Mean loss and accuracy of ``model`` over ``data`` (a DataLoader, an ArrayDataset or an
    ``(images, labels)`` pair), in eval mode under ``no_grad``, batch by batch. The model's train/eval
    mode is restored afterwards. With ``predictions=True`` the result also holds ``targets`` and
    ``predictions`` (NumPy int64 arrays) for a confusion matrix. ``amp``: run the model under
    :class:`gpucnn.amp.autocast` with that dtype ("fp16", "bf16"), as the training did.

    ``task="segment"``: the targets are masks (N, H, W) and the logits (N, classes, H, W);
    ``accuracy`` is then pixel accuracy (``correct`` and ``pixels`` count pixels, ``images`` images) and
    the result adds ``pixel_accuracy``, ``mean_iou``, ``iou`` (per class) and ``confusion`` (the
    (classes, classes) pixel counts, rows the true class; ``num_classes`` defaults to the logits')."""
    from .. import functional as F
    from ..amp import autocast
    from ..backend import get_device
    from ..function import no_grad

    loader = _loader(data, batch_size=batch_size, shuffle=False, seed=0, transform=transform)
    loss_fn = loss_fn or F.cross_entropy
    device = device if device is not None else _model_device(model)
    amp_dtype = _amp_dtype(amp)
    segment = _check_task(task) == "segment"
    confusion: Optional[np.ndarray] = None
    total_loss, correct, seen, targets = 0.0, 0, 0, 0
    all_targets: list[np.ndarray] = []
    all_preds: list[np.ndarray] = []
    with _eval_mode(model):
        with no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for x, y in _epoch_batches(loader):
                xb, yt, y = _on_device(x, y, device)
                with autocast(get_device(device).name, dtype=amp_dtype or np.float16, enabled=amp_dtype is not None):
                    logits = model(xb)
                    batch_loss = loss_fn(logits, yt)
                total_loss += float(batch_loss.item()) * len(y)
                if segment:
                    from ..metrics import confusion_matrix

                    k = num_classes or logits.shape[1]
                    # (counted where the logits live; only the k x k counts come to the host)
                    batch_cm = confusion_matrix(yt.data, logits.data.argmax(axis=1), k)
                    confusion = batch_cm if confusion is None else confusion + batch_cm
                    correct += int(np.trace(batch_cm))
                else:
                    pred = _as_host(logits.data.argmax(axis=1))
                    correct += int((pred == y).sum())
                seen += len(y)
                targets += y.size
                if predictions and not segment:
                    all_targets.append(y)
                    all_preds.append(pred.astype(np.int64))
    if is_sharded(loader):  # (one rank's shard of a distributed run: the totals are every rank's)
        ranks = world()
        total_loss, correct, seen, targets = ranks.sum([total_loss, correct, seen, targets])
        correct, seen, targets = int(correct), int(seen), int(targets)
        if confusion is not None:
            confusion = ranks.sum_array(confusion)
        if predictions and not segment:  # (the same condition on every rank: all join the gathers)
            local = [np.concatenate(a) if a else np.zeros(0, np.int64) for a in (all_targets, all_preds)]
            all_targets, all_preds = [ranks.gather(local[0])], [ranks.gather(local[1])]
    if seen == 0:
        raise ArgumentError("evaluate: the data holds no images")
    out: dict[str, Any] = {"loss": total_loss / seen, "accuracy": correct / targets, "correct": correct,
                           "images": seen}
    if segment:
        assert confusion is not None
        out.update(_segment_metrics(confusion), pixels=targets, confusion=confusion)
    elif predictions:
        out["targets"] = np.concatenate(all_targets)
        out["predictions"] = np.concatenate(all_preds)
    return out


# -- the trainer ---------------------------------------------------------------------------------
class Trainer:
    """Trains a classifier: ``Trainer(model, optimizer, train_data, val_data, epochs=..., ...).fit()``.

    Arguments:
        model: a :class:`gpucnn.nn.Module` producing logits (N, classes).
        optimizer: a :mod:`gpucnn.optim` optimizer over ``model.parameters()``.
        train_data: a :class:`gpucnn.data.DataLoader` (use ``shuffle=True`` and a ``seed``), or an
            ArrayDataset / ``(images, labels)`` pair, wrapped in a shuffling loader with ``batch_size``,
            ``seed`` and ``transform``.
        val_data, test_data: optional; evaluated after every epoch (validation) and once at the end (test).
            Datasets are wrapped in loaders with ``eval_batch_size`` and ``eval_transform``.
        epochs: the total number of epochs (a resumed run continues up to it).
        scheduler: a learning-rate scheduler, stepped once per epoch (a ReduceLROnPlateau with the
            validation loss, or the training loss without validation data).
        device: move the model there first (default: where its parameters are).
        out_dir: where checkpoints, the model, metrics and plots go (None: keep nothing on disk).
        patience: early stopping: stop after this many epochs without a lower validation loss (training
            loss without validation data), then restore the best weights (``model.npz`` holds them).
        min_delta: the smallest decrease that counts as an improvement.
        eval_transform: the deterministic input preprocessing (e.g. ``ToFloat()`` or ``Compose([ToFloat(),
            Normalize(...)])``) for validation/test data, stored in ``model.npz`` so ``evaluate``/``predict``
            reproduce it. Default: the training loader's transform without its RandomCrop/RandomHorizontalFlip
            steps (uint8 images with no transform at all are scaled to 0..1, as the DataLoader does).
        classes: class names for the model file and confusion matrix (default: the dataset's).
        config: the run's configuration (JSON-able dict) kept in checkpoints and metrics; runs built by
            :meth:`from_config` put their :class:`~gpucnn.training.run.RunConfig` here, which is what
            :meth:`resume` rebuilds from.
        confusion_matrix: at the end, write ``confusion.png``/``confusion.txt`` and print the matrix.
        plot_every_epoch: redraw ``curves.png`` after every epoch (default: at the end only).
        verbose: 0 silent, 1 epoch lines plus a progress bar on a terminal, 2 epoch lines only.
        loss_fn: ``loss_fn(logits, targets) -> scalar tensor`` (default: cross entropy).
        clip_grad_norm: clip the gradients' total 2-norm to this before every step
            (:func:`gpucnn.nn.utils.clip_grad_norm_`; None: no clipping).
        amp: mixed precision: ``"fp16"`` or ``"bf16"`` (or the dtype): the forward passes and the loss
            run under :class:`gpucnn.amp.autocast` with that dtype, the weights stay float32; float16
            also scales the loss with a :class:`gpucnn.amp.GradScaler` (its state is checkpointed).
            None: float32 throughout.
        task: ``"classify"`` (logits (N, classes)) or ``"segment"`` (logits (N, classes, H, W) against
            masks (N, H, W), e.g. a :class:`~gpucnn.data.SegmentationDataset`): accuracy counts pixels,
            and every epoch also records the mean and per-class IoU (training and validation); or
            ``"sequence"`` (logits (N, classes, T) against (N, T): accuracy counts time steps). The
            task is kept in ``model.npz``'s metadata for ``gpucnn evaluate``/``predict``.
    """

    def __init__(self, model: Any, optimizer: Any, train_data: Any, val_data: Any = None, *, epochs: int = 1,
                 scheduler: Any = None, device: Any = None, out_dir: Union[str, os.PathLike, None] = None,
                 patience: Optional[int] = None, min_delta: float = 0.0, test_data: Any = None,
                 batch_size: int = 64, eval_batch_size: int = 256, seed: int = 0, transform: Any = None,
                 eval_transform: Any = None, classes: Optional[Sequence[str]] = None,
                 config: Optional[Mapping[str, Any]] = None, confusion_matrix: bool = False,
                 plot_every_epoch: bool = False, verbose: int = 1, loss_fn: Optional[Callable] = None,
                 metadata: Optional[Mapping[str, Any]] = None, clip_grad_norm: Optional[float] = None,
                 amp: Any = None, task: str = "classify") -> None:
        from .. import functional as F
        from ..amp import GradScaler
        from ..backend import get_device

        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or int(epochs) < 1:
            raise ArgumentError(f"epochs must be a positive integer, got {epochs!r}")
        if patience is not None and (isinstance(patience, bool) or int(patience) < 1):
            raise ArgumentError(f"patience must be a positive integer (or None), got {patience!r}")
        self.task = _check_task(task)
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.epochs = int(epochs)
        self.patience = None if patience is None else int(patience)
        self.min_delta = float(min_delta)
        self.seed = int(seed)
        self.train_loader = _loader(train_data, batch_size=batch_size, shuffle=True, seed=self.seed,
                                    transform=transform)
        if self.train_loader is None:
            raise ArgumentError("Trainer needs training data")
        if eval_transform is None:
            eval_transform = deterministic_part(getattr(self.train_loader, "transform", None))
        self.eval_transform = eval_transform
        self.val_loader = _loader(val_data, batch_size=eval_batch_size, shuffle=False, seed=0,
                                  transform=eval_transform)
        self.test_loader = _loader(test_data, batch_size=eval_batch_size, shuffle=False, seed=0,
                                   transform=eval_transform)
        root = _array_dataset(self.train_loader)
        if classes is None:
            classes = root.classes if root is not None else getattr(self.train_loader.dataset, "classes", None)
        # None until the preflight pass counts the model's outputs (a dataset that names no classes)
        self.classes: Optional[list[str]] = None if classes is None else [str(c) for c in classes]
        self.device = get_device(device) if device is not None else _model_device(model)
        if device is not None:
            model.to(self.device)
        _warn_if_optimizer_misses_the_model(model, optimizer)
        self.out_dir = None if out_dir is None else Path(out_dir).expanduser()
        self.config = dict(config or {})
        self.metadata = dict(metadata or {})
        self.confusion_matrix = bool(confusion_matrix)
        self.plot_every_epoch = bool(plot_every_epoch)
        #: this process's place in a distributed run (rank 0 alone prints and writes the run's files)
        self.world = world()
        self.verbose = int(verbose) if self.world.writer else 0
        self.loss_fn = loss_fn or F.cross_entropy
        if clip_grad_norm is not None and (isinstance(clip_grad_norm, bool) or not float(clip_grad_norm) > 0):
            raise ArgumentError(f"clip_grad_norm must be a positive number (or None), got {clip_grad_norm!r}")
        self.clip_grad_norm = None if clip_grad_norm is None else float(clip_grad_norm)
        self.amp_dtype = _amp_dtype(amp)
        # Loss scaling for float16 only: bfloat16 has float32's exponent range (PyTorch's practice too).
        self.scaler = GradScaler(self.device.name, enabled=self.amp_dtype == np.float16)

        self.epoch = 0                    # epochs completed
        self.history = History.empty(self.task)
        self.best_value = math.inf        # early stopping: the best monitored value so far
        self.best_epoch = 0
        self.wait = 0                     # epochs since the best one
        self.stopped_early = False
        self._best_state: Optional[dict[str, Any]] = None
        self.test_metrics: Optional[dict[str, Any]] = None
        self.confusion: Optional[np.ndarray] = None
        self.files: list[Path] = []       # files written by the last fit()

    # -- construction from a run configuration (the CLI's way) ----------------------------------
    @classmethod
    def from_config(cls, config: Any, *, out_dir: Union[str, os.PathLike, None] = None, verbose: int = 1,
                    describe: Optional[Callable[[str], None]] = None, **overrides: Any) -> "Trainer":
        """Build the whole run (data, transforms, model, optimizer, scheduler) from a
        :class:`~gpucnn.training.run.RunConfig` (or its dict), seeded by ``config.seed``.
        ``describe`` receives lines saying what was built (the CLI prints them)."""
        from .run import RunConfig, build_run

        cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
        parts = build_run(cfg, describe=describe)
        kwargs = dict(epochs=cfg.epochs, scheduler=parts.scheduler, out_dir=out_dir, patience=cfg.patience,
                      test_data=parts.test_loader, seed=cfg.seed, eval_transform=parts.eval_transform,
                      classes=parts.classes, config={"run_config": cfg.to_dict()},
                      confusion_matrix=cfg.confusion_matrix, verbose=verbose, metadata=parts.metadata,
                      clip_grad_norm=cfg.clip_grad_norm, amp=cfg.amp, task=cfg.task)
        if cfg.label_smoothing:
            from .. import functional as F
            kwargs["loss_fn"] = functools.partial(F.cross_entropy, label_smoothing=float(cfg.label_smoothing))
        kwargs.update(overrides)
        return cls(parts.model, parts.optimizer, parts.train_loader, parts.val_loader, **kwargs)

    @classmethod
    def resume(cls, out_dir: Union[str, os.PathLike], *, epochs: Optional[int] = None, device: Any = None,
               verbose: int = 1, describe: Optional[Callable[[str], None]] = None, **overrides: Any) -> "Trainer":
        """Rebuild the run saved in ``out_dir`` from its configuration and restore its checkpoint, ready
        to :meth:`fit` from the next epoch. ``epochs`` raises (or lowers) the total; ``device`` moves it.

        This works for runs built by :meth:`from_config` (and the CLI). A Trainer built from Python
        objects is resumed by rebuilding those objects and calling :meth:`load_checkpoint`.
        """
        from .run import RunConfig

        out = Path(out_dir).expanduser()
        state = ckpt.load_checkpoint(out)
        saved = (state.get("config") or {}).get("run_config")
        if not isinstance(saved, dict) or not saved.get("dataset"):
            raise TrainingError(
                f"{out / ckpt.CHECKPOINT_FILE} was written by a Trainer built from Python objects, so it "
                f"cannot be rebuilt from its configuration: rebuild the model, optimizer and loaders as before "
                f"and call trainer.load_checkpoint({str(out)!r})")
        cfg = RunConfig.from_dict(saved)
        if epochs is not None:
            cfg.epochs = int(epochs)
        if device is not None:
            cfg.device = str(device)
        trainer = cls.from_config(cfg, out_dir=out, verbose=verbose, describe=describe, **overrides)
        trainer._restore(state, source=out / ckpt.CHECKPOINT_FILE)
        return trainer

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The checkpoint contents for the current (epoch-end) state."""
        from ..random import get_rng_state

        state: dict[str, Any] = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loader": self.train_loader.state_dict(),
            "rng": get_rng_state(),
            "history": dict(self.history),
            "early_stopping": {"best": self.best_value, "best_epoch": self.best_epoch, "wait": self.wait,
                               "stopped": self.stopped_early, "patience": self.patience},
            "config": self.config,
            "extra": {"device": str(self.device), "time": time.time(), "epochs": self.epochs,
                      "world_size": self.world.size},
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.scaler.is_enabled():
            state["grad_scaler"] = self.scaler.state_dict()
        if self._best_state is not None:
            state["best_model"] = self._best_state
        return state

    def save_checkpoint(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Write the checkpoint (atomically) to ``path`` (default ``out_dir/checkpoint.npz``)."""
        if path is None:
            if self.out_dir is None:
                raise ArgumentError("save_checkpoint: no path given and the Trainer has no out_dir")
            path = self.out_dir / ckpt.CHECKPOINT_FILE
        path = Path(path)
        ckpt.save_checkpoint(path, self.state())
        return path

    def load_checkpoint(self, path: Union[str, os.PathLike]) -> "Trainer":
        """Restore a checkpoint (a file, or a run directory holding ``checkpoint.npz``) into this
        trainer's model, optimizer, scheduler and loader, plus the global RNG, history and early-stopping
        state; the next :meth:`fit` continues with the following epoch."""
        path = Path(path).expanduser()
        state = ckpt.load_checkpoint(path)
        self._restore(state, source=path)
        return self

    def _restore(self, state: Mapping[str, Any], source: Path) -> None:
        from ..random import set_rng_state

        try:
            saved_world = int((state.get("extra") or {}).get("world_size", 1))
            if saved_world != self.world.size:
                raise ModelFormatError(
                    f"the run was trained by {saved_world} process{'es' if saved_world != 1 else ''} and this is "
                    f"{self.world.size}: resume it with the same number (mpiexec -n {saved_world} gpucnn train "
                    f"--resume ...{'' if saved_world > 1 else ', or without mpiexec'}); the data shards and the "
                    f"loader's position depend on it")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                if "scheduler" not in state:
                    raise ModelFormatError("the checkpoint has no scheduler state but this run has a scheduler")
                self.scheduler.load_state_dict(state["scheduler"])
            self.train_loader.load_state_dict(state["loader"])
            if self.scaler.is_enabled():
                if "grad_scaler" not in state:
                    raise ModelFormatError("the checkpoint has no loss-scaler state but this run trains with "
                                           "float16 autocast (--amp fp16): resume it with the precision it "
                                           "was started with")
                self.scaler.load_state_dict(state["grad_scaler"])
        except (ModelFormatError, ArgumentError, ShapeError) as exc:
            raise ModelFormatError(f"{source}: cannot restore the checkpoint into this run: {exc}") from None
        set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        history = History.empty(self.task)
        for key, values in (state.get("history") or {}).items():
            history[key] = list(values)
        if len(history["skipped_steps"]) != len(history["epoch"]):  # (a checkpoint from before the key)
            history["skipped_steps"] = [0] * len(history["epoch"])
        self.history = history
        es = state.get("early_stopping") or {}
        self.best_value = float(es.get("best", math.inf))
        self.best_epoch = int(es.get("best_epoch", 0))
        self.wait = int(es.get("wait", 0))
        self.stopped_early = bool(es.get("stopped", False))
        self._best_state = state.get("best_model")
        saved_total = (state.get("extra") or {}).get("epochs")
        if self.stopped_early and isinstance(saved_total, int) and self.epochs > saved_total:
            # more epochs asked for after early stopping: give the run a fresh patience window
            self.stopped_early = False
            self.wait = 0

    # -- output ---------------------------------------------------------------------------------
    def _echo(self, message: str, err: bool = False) -> None:
        if self.verbose > 0:
            import click

            click.echo(message, err=err)

    def _lr(self) -> float:
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else float("nan")

    def _model_metadata(self) -> dict[str, Any]:
        root = _array_dataset(self.train_loader)
        if root is not None:
            shape, dtype = root.input_shape, root.images.dtype
        else:
            x = self._sample_input()
            shape, dtype = x.shape[1:], x.dtype
        meta: dict[str, Any] = {
            "classes": list(self.classes or []),
            "input_shape": [int(d) for d in shape],
            "input_dtype": str(dtype),
            "transform": self._transform_config(),
            "epochs_trained": self.epoch,
        }
        if self.best_epoch and self.patience is not None:
            meta["best_epoch"] = self.best_epoch
        epochs = self.history.get("epoch") or []
        at = epochs.index(self.best_epoch) if self.patience is not None and self.best_epoch in epochs else -1
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            values = self.history.get(key) or []
            if values and values[at] is not None:
                meta[key] = values[at]
        if self.task != "classify":
            meta["task"] = self.task
            for key in ("miou", "val_miou"):
                values = self.history.get(key) or []
                if values and values[at] is not None:
                    meta[key] = values[at]
        if self.test_metrics is not None:
            meta["test_loss"] = self.test_metrics["loss"]
            meta["test_accuracy"] = self.test_metrics["accuracy"]
            if self.task == "segment":
                meta["test_miou"] = _json_number(self.test_metrics["mean_iou"])
        meta.update(self.metadata)
        if self.config.get("run_config"):
            meta["run_config"] = self.config["run_config"]
        return meta

    def _transform_config(self) -> Optional[dict[str, Any]]:
        if self.eval_transform is not None:
            return self.eval_transform.config()
        # DataLoader turns uint8 batches of an ArrayDataset into 0..1 floats when no transform is given
        root = _array_dataset(self.train_loader)
        if root is not None and root.images.dtype == np.uint8:
            return {"type": "ToFloat", "scale": 1.0 / 255.0}
        return None

    def save_model(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Save the model with :func:`gpucnn.serialization.save` and this run's metadata."""
        from ..serialization import save

        if path is None:
            if self.out_dir is None:
                raise ArgumentError("save_model: no path given and the Trainer has no out_dir")
            path = self.out_dir / ckpt.MODEL_FILE
        save(getattr(self.model, "module", self.model), path, metadata=self._model_metadata())  # (DDP: the module)
        return Path(path)

    def _metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"history": dict(self.history), "epochs_completed": self.epoch,
                               "epochs": self.epochs, "stopped_early": self.stopped_early,
                               "classes": list(self.classes or [])}
        if self.patience is not None:
            out["best_epoch"] = self.best_epoch
            out["best_" + self._monitor()] = self.best_value if math.isfinite(self.best_value) else None
        if self.test_metrics is not None:
            out["test"] = {k: self.test_metrics[k] for k in ("loss", "accuracy", "correct", "images")}
            if self.task == "segment":
                t = self.test_metrics
                out["test"].update(pixels=t["pixels"], pixel_accuracy=t["pixel_accuracy"],
                                   mean_iou=_json_number(t["mean_iou"]), iou=[_json_number(v) for v in t["iou"]])
        if self.task != "classify":
            out["task"] = self.task
        if self.confusion is not None:
            out["confusion_matrix"] = self.confusion.tolist()
        if self.config:
            out["config"] = self.config
        if self.amp_dtype is not None:
            out["amp"] = {"dtype": str(self.amp_dtype), "loss_scaling": self.scaler.is_enabled(),
                          "skipped_steps": int(sum(self.history["skipped_steps"])),
                          "loss_scale": self.scaler.get_scale() if self.scaler.is_enabled() else None}
        return out

    def _monitor(self) -> str:
        return "val_loss" if self.val_loader is not None else "loss"

    # -- training -------------------------------------------------------------------------------
    def _preflight(self) -> None:
        """One eval-mode forward pass on two training images: shape errors surface before any epoch
        starts, with the layer's own message. Leaves every RNG and buffer as it was."""
        from ..function import no_grad
        from ..random import get_rng_state, set_rng_state
        from ..tensor import tensor

        root = _array_dataset(self.train_loader)
        x = self._sample_input()
        rng = get_rng_state()
        try:
            with _eval_mode(self.model), no_grad():
                logits = self.model(tensor(x, device=self.device))
        except ShapeError as exc:
            takes = getattr(self.model, "input_shape", None)
            name = getattr(self.model, "name", None)
            model_text = f"model {name!r}" if name else "the model"
            takes_text = f" takes {'x'.join(map(str, takes))}" if takes else ""
            data = f"dataset {root.name!r}" if root is not None and root.name else "the data"
            raise ShapeError(f"{exc}; {data} has {'x'.join(map(str, x.shape[1:]))} "
                             f"{'images' if root is not None else 'inputs'} and "
                             f"{model_text}{takes_text or ' does not accept them'}") from exc
        finally:
            set_rng_state(rng)
        if self.task == "segment":
            if logits.ndim != 4 or logits.shape[2:] != tuple(x.shape[2:]):
                raise ShapeError(f"the model outputs shape {logits.shape} for input shape {tuple(x.shape)}; a "
                                 f"segmentation model (--task segment) must output per-pixel logits (N, classes, "
                                 f"{', '.join(map(str, x.shape[2:]))}) of its input's height and width")
        elif self.task == "sequence":
            if logits.ndim != 3 or logits.shape[2] != x.shape[-1]:
                raise ShapeError(f"the model outputs shape {logits.shape} for input shape {tuple(x.shape)}; a "
                                 f"sequence model must output logits (N, classes, {x.shape[-1]}): one per time step")
        elif logits.ndim != 2:
            raise ShapeError(f"the model outputs shape {logits.shape} for input shape {tuple(x.shape)}; a "
                             f"classifier must output logits of shape (N, classes)"
                             + ("; for per-pixel logits train with --task segment" if logits.ndim == 4 else ""))
        if self.classes is None:
            self.classes = [str(i) for i in range(logits.shape[1])]
        outputs, wanted = logits.shape[1], root.num_classes if root is not None else len(self.classes)
        if outputs < wanted:
            name = f"dataset {root.name!r}" if root is not None and root.name else "the dataset"
            raise ShapeError(f"the model outputs {outputs} classes but {name} has {wanted} classes "
                             f"({', '.join(self.classes[:12])}{', ...' if wanted > 12 else ''}); use a model "
                             f"with {wanted} outputs")

    def _sample_input(self) -> Any:
        """Two training inputs as the model gets them in evaluation: an ArrayDataset's first images through
        ``eval_transform`` (uint8 scaled to 0..1, as the DataLoader does), or the inputs of the first two
        items of another dataset, collated by the loader's ``collate_fn``."""
        from ..data import default_collate
        from ..tensor import Tensor

        root = _array_dataset(self.train_loader)
        if root is None:
            dataset = self.train_loader.dataset
            if len(dataset) == 0:
                raise TrainingError("the training data holds no items")
            collate = getattr(self.train_loader, "collate_fn", None) or default_collate
            x = collate([dataset[i] for i in range(min(2, len(dataset)))])[0]
            return x if isinstance(x, Tensor) else np.asarray(x)
        x = root.images[:2]
        if self.eval_transform is not None:
            x = self.eval_transform(x, np.random.default_rng(0))
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        return np.ascontiguousarray(x)

    def _train_epoch(self, epoch: int) -> tuple[float, float, int, float]:
        model, optimizer, loader = self.model, self.optimizer, self.train_loader
        model.train()
        sampler = getattr(loader, "sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(epoch - 1)  # (DistributedSampler: the permutation of seed + epoch, on every rank)
        total = len(loader)
        bar = ProgressBar(total, f"epoch {epoch}/{self.epochs}",
                          enabled=None if self.verbose == 1 else False)
        total_loss, correct, seen, targets, skipped = 0.0, 0, 0, 0, 0
        segment = self.task == "segment"
        confusion: Optional[np.ndarray] = None  # (segment: pixel counts over the model's outputs)
        scaler = self.scaler
        start = time.perf_counter()
        quiet = contextlib.ExitStack()
        try:
            # Overflow warnings from the ops are silenced: a non-finite loss is detected and reported below.
            quiet.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
            for step, (x, y) in enumerate(_epoch_batches(loader), 1):
                xb, yb, y = _on_device(x, y, self.device)
                with self._autocast():
                    logits = model(xb)
                    loss = self.loss_fn(logits, yb)
                # The loss and the batch's correct count in one device-to-host transfer (on cuda each
                # transfer waits for every queued kernel).
                xp = self.device.xp
                if segment:
                    from ..metrics import confusion_matrix

                    # (counted on the device: only the classes x classes counts come back)
                    batch_cm = confusion_matrix(yb.data, logits.data.argmax(axis=1), logits.shape[1])
                    confusion = batch_cm if confusion is None else confusion + batch_cm
                    value, hit = float(loss.item()), int(np.trace(batch_cm))
                else:
                    hits = (logits.data.argmax(axis=1) == yb.data).sum()
                    value, hit = xp.stack((loss.data.astype(np.float64), hits.astype(np.float64))).tolist()
                if not math.isfinite(value):
                    lr = self._lr()
                    kept = (f"the checkpoint of epoch {self.epoch} in {self.out_dir} was kept"
                            if self.out_dir is not None and self.epoch > 0 else "no checkpoint was written")
                    raise TrainingError(
                        f"the training loss became {value} at epoch {epoch}, step {step}/{total}: training "
                        f"diverged, usually because the learning rate ({lr:g}) is too high; try a lower one "
                        f"(e.g. --lr {lr / 10:g}) or check the data for huge values ({kept})")
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                if self.clip_grad_norm is not None:
                    from ..nn.utils import clip_grad_norm_
                    scaler.unscale_(optimizer)  # (clip the true gradients)
                    clip_grad_norm_(model.parameters(), self.clip_grad_norm)
                scale = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                skipped += scaler.get_scale() < scale  # (the scale backs off exactly when a step is skipped)
                n = len(y)
                total_loss += value * n
                correct += int(hit)
                seen += n
                targets += y.size  # (images, or pixels for per-pixel targets)
                bar.update(step, total_loss / seen, correct / targets, seen)
        finally:
            quiet.close()
            bar.close()
        elapsed = time.perf_counter() - start
        if seen == 0:
            raise TrainingError("the training loader yielded no batches (is the dataset smaller than one batch "
                                "with drop_last=True?)")
        if self.world.size > 1:  # the epoch's figures over every rank's share
            total_loss, correct, seen, targets, skipped = self.world.sum([total_loss, correct, seen, targets, skipped])
            if confusion is not None:
                confusion = self.world.sum_array(confusion)
        self._skipped = int(skipped)
        self._train_confusion = confusion
        return total_loss / seen, correct / targets, int(seen), elapsed

    def _autocast(self) -> Any:
        from ..amp import autocast

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return autocast(self.device.name, dtype=self.amp_dtype)

    def _update_early_stopping(self, value: float, epoch: int) -> bool:
        """Record ``value``; True when it is the best so far."""
        improved = math.isfinite(value) and value < self.best_value - self.min_delta
        if improved:
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            if self.patience is not None:
                from .checkpoint import to_host
                self._best_state = to_host(self.model.state_dict())
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.stopped_early = True
        return improved

    @property
    def _writes(self) -> bool:
        """Whether this process writes the run's files: it has an out_dir and is rank 0 (of a distributed
        run; every other rank reads the same files on --resume, and writes none)."""
        return self.out_dir is not None and self.world.writer

    def _write_epoch_files(self, improved: bool) -> None:
        assert self.out_dir is not None
        with _sigint_deferred():
            if self.patience is None or improved:
                self.save_model()
            self.save_checkpoint()
            ckpt.write_json_atomic(self.out_dir / ckpt.METRICS_FILE, self._metrics())
        if self.plot_every_epoch:
            self._plot_curves()

    def _plot_curves(self) -> Optional[Path]:
        if self.out_dir is None or not self.history["epoch"]:
            return None
        from .plots import plot_curves

        return plot_curves(self.history, self.out_dir / ckpt.CURVES_FILE)

    def _epoch_line(self, epoch: int) -> str:
        h = self.history
        if self.task == "segment":
            return self._segment_epoch_line(epoch)
        parts = [f"epoch {epoch}/{self.epochs}", f"loss {h['loss'][-1]:.4f}", f"acc {h['accuracy'][-1] * 100:6.2f}%"]
        if h["val_loss"] and h["val_loss"][-1] is not None:
            parts += [f"val_loss {h['val_loss'][-1]:.4f}", f"val_acc {h['val_accuracy'][-1] * 100:6.2f}%"]
        parts += [f"lr {h['lr'][-1]:.3g}", format_duration(h["time"][-1]), f"{h['images_per_sec'][-1]:,.0f} img/s"]
        if self.scaler.is_enabled():
            parts.append(f"{h['skipped_steps'][-1]} steps skipped (loss scale {self.scaler.get_scale():g})")
        return "  ".join(parts)

    def _iou_keys(self, prefix: str) -> list[str]:
        return [f"{prefix}iou_{name}" for name in self.classes or []]

    def _record_iou(self, train: Mapping[str, Any], val: Optional[Mapping[str, Any]], epochs: int) -> None:
        """Append this epoch's mean and per-class IoU (a key per class, created at the first epoch)."""
        h = self.history
        for prefix, result in (("", train), ("val_", val)):
            h[prefix + "miou"].append(None if result is None else _json_number(result["mean_iou"]))
            for i, key in enumerate(self._iou_keys(prefix)):
                values = h.setdefault(key, [None] * (epochs - 1))
                ious = [] if result is None else result["iou"]
                values.append(_json_number(ious[i]) if i < len(ious) else None)

    def _segment_epoch_line(self, epoch: int) -> str:
        """Loss, pixel accuracy and mean IoU (training, validation), then the per-class IoU of the
        validation data (else the training data)."""
        h = self.history

        def iou(v: Optional[float]) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        parts = [f"epoch {epoch}/{self.epochs}", f"loss {h['loss'][-1]:.4f}",
                 f"pix_acc {h['accuracy'][-1] * 100:6.2f}%", f"mIoU {iou(h['miou'][-1])}"]
        prefix = ""
        if h["val_loss"] and h["val_loss"][-1] is not None:
            parts += [f"val_loss {h['val_loss'][-1]:.4f}", f"val_pix_acc {h['val_accuracy'][-1] * 100:6.2f}%",
                      f"val_mIoU {iou(h['val_miou'][-1])}"]
            prefix = "val_"
        per_class = [h[key][-1] for key in self._iou_keys(prefix)]
        parts.append(f"{prefix}IoU " + " ".join(f"{n} {iou(v)}" for n, v in zip(self.classes or [], per_class)))
        parts += [f"lr {h['lr'][-1]:.3g}", format_duration(h["time"][-1]), f"{h['images_per_sec'][-1]:,.0f} img/s"]
        if self.scaler.is_enabled():
            parts.append(f"{h['skipped_steps'][-1]} steps skipped (loss scale {self.scaler.get_scale():g})")
        return "  ".join(parts)

    def fit(self, until_epoch: Optional[int] = None) -> History:
        """Train from the epoch after the last completed one up to ``epochs`` (or only up to epoch
        ``until_epoch`` in this call: a later ``fit()`` continues exactly); returns the history."""
        last = self.epochs if until_epoch is None else min(int(until_epoch), self.epochs)
        if self._writes:
            check_output_dir(self.out_dir)
        self._preflight()
        epoch = self.epoch
        stopped_before = self.stopped_early
        self.files = []
        if self.stopped_early or self.epoch >= self.epochs:
            why = "stopped early" if self.stopped_early else f"completed {self.epoch} of {self.epochs} epochs"
            self._echo(f"nothing to train: the run {why}" +
                       ("" if self.stopped_early else " (raise the number of epochs to train further)"))
        try:
            while not self.stopped_early and self.epoch < last:
                epoch = self.epoch + 1
                epoch_start = time.perf_counter()
                lr = self._lr()
                loss, acc, seen, train_time = self._train_epoch(epoch)
                val = evaluate(self.model, self.val_loader, device=self.device, loss_fn=self.loss_fn,
                               amp=self.amp_dtype, task=self.task) if self.val_loader is not None else None
                if self.scheduler is not None:
                    from ..optim.lr_scheduler import ReduceLROnPlateau
                    if isinstance(self.scheduler, ReduceLROnPlateau):  # (watches what early stopping watches)
                        self.scheduler.step(loss if val is None else val["loss"])
                    else:
                        self.scheduler.step()
                h = self.history
                h["epoch"].append(epoch)
                h["loss"].append(loss)
                h["accuracy"].append(acc)
                h["val_loss"].append(None if val is None else val["loss"])
                h["val_accuracy"].append(None if val is None else val["accuracy"])
                h["lr"].append(lr)
                h["images_per_sec"].append(seen / train_time if train_time > 0 else 0.0)
                h["time"].append(time.perf_counter() - epoch_start)
                h["skipped_steps"].append(int(self._skipped))
                if self.task == "segment":
                    self._record_iou(_segment_metrics(self._train_confusion), val, len(h["epoch"]))
                improved = self._update_early_stopping(loss if val is None else val["loss"], epoch)
                self.epoch = epoch
                if self._writes:
                    self._write_epoch_files(improved)
                self._echo(self._epoch_line(epoch))
            if self.stopped_early and not stopped_before and self.patience is not None:
                self._echo(f"early stopping: {self._monitor()} has not improved for {self.wait} epochs "
                           f"(best {self.best_value:.4f} at epoch {self.best_epoch})")
            if self.epoch >= self.epochs or self.stopped_early:
                self._finish()
        except KeyboardInterrupt as exc:
            if isinstance(exc, TrainingInterrupted):
                raise
            raise self._interrupted(epoch) from None
        return self.history

    def _interrupted(self, epoch: int) -> TrainingInterrupted:
        if self.out_dir is None:
            msg = f"training interrupted during epoch {epoch} ({self.epoch} epochs completed; no out_dir, so " \
                  f"nothing was saved)"
        elif self.epoch == 0:
            msg = f"training interrupted during epoch {epoch}, before any epoch finished: no checkpoint was " \
                  f"written in {self.out_dir}; start the run again"
        else:
            how = f"gpucnn train --resume {self.out_dir}" if self.config.get("run_config") else \
                f"trainer.load_checkpoint({str(self.out_dir)!r}) then trainer.fit()"
            if epoch > self.epoch:
                when = f"during epoch {epoch}: the unfinished epoch {epoch} was discarded; "
            elif self.epoch < self.epochs:
                when = f"just after epoch {epoch} finished; "
            else:
                when = "after the last epoch (before the final evaluation and plots); "
            msg = (f"training interrupted {when}{self.out_dir / ckpt.CHECKPOINT_FILE} holds epoch {self.epoch} "
                   f"of {self.epochs}. Resume with: {how}")
        return TrainingInterrupted(msg, self.out_dir, self.epoch)

    def _finish(self) -> None:
        """After the last epoch: restore the best weights (early stopping), test, plots, metrics."""
        from ..random import get_rng_state, set_rng_state

        rng = get_rng_state()
        if self.patience is not None and self._best_state is not None and self.best_epoch != self.epoch:
            self.model.load_state_dict(self._best_state)
            self._echo(f"restored the best model (epoch {self.best_epoch}, {self._monitor()} "
                       f"{self.best_value:.4f})")
        kinds = dict(amp=self.amp_dtype, task=self.task)
        if self.test_loader is not None:
            self.test_metrics = evaluate(self.model, self.test_loader, device=self.device, loss_fn=self.loss_fn,
                                         predictions=self.confusion_matrix, **kinds)
        cm_source = self.test_metrics if self.test_loader is not None else None
        if self.confusion_matrix and cm_source is None and self.val_loader is not None:
            cm_source = evaluate(self.model, self.val_loader, device=self.device, loss_fn=self.loss_fn,
                                 predictions=True, **kinds)
        if self.confusion_matrix and cm_source is not None:
            from .plots import confusion_matrix, format_confusion

            # (a segmentation evaluation counts the pixels itself: no per-pixel arrays kept)
            self.confusion = cm_source["confusion"] if "confusion" in cm_source else \
                confusion_matrix(cm_source["targets"], cm_source["predictions"], len(self.classes))
            text = format_confusion(self.confusion, self.classes)
            which = "test" if self.test_loader is not None else "validation"
            self._echo(f"confusion matrix ({which} data; rows: true class, columns: predicted):\n{text}")
        if self._writes and self.epoch > 0:
            with _sigint_deferred():
                if self.patience is not None and self._best_state is None:
                    pass  # no finite monitored value ever: keep whatever model.npz holds
                else:
                    self.files.append(self.save_model())
                ckpt.write_json_atomic(self.out_dir / ckpt.METRICS_FILE, self._metrics())
                self.files += [self.out_dir / ckpt.CHECKPOINT_FILE, self.out_dir / ckpt.METRICS_FILE]
            path = self._plot_curves()
            if path is not None:
                self.files.append(path)
            if self.confusion is not None:
                from .plots import format_confusion, plot_confusion

                which = "test" if self.test_loader is not None else "validation"
                self.files.append(plot_confusion(self.confusion, self.classes, self.out_dir / ckpt.CONFUSION_FILE,
                                                 title=f"confusion matrix ({which} data)"))
                write_text(self.out_dir / ckpt.CONFUSION_TEXT_FILE,
                           format_confusion(self.confusion, self.classes) + "\n")
                self.files.append(self.out_dir / ckpt.CONFUSION_TEXT_FILE)
        set_rng_state(rng)


def fit(model: Any, train_data: Any, val_data: Any = None, *, epochs: int, optimizer: Any = "momentum",
        lr: Optional[float] = None, scheduler: Any = None, batch_size: int = 64, seed: Optional[int] = None,
        device: Any = None, out_dir: Union[str, os.PathLike, None] = None, patience: Optional[int] = None,
        test_data: Any = None, verbose: int = 1, **kwargs: Any) -> History:
    """Train ``model`` like Keras's ``model.fit``; returns the :class:`History` (a dict of lists).

    ``optimizer`` is an optimizer object or a name (``sgd``, ``momentum``, ``nesterov``, ``adam``,
    ``adamw``, ``rmsprop``; ``lr`` defaults to 0.05 for the SGD family and 0.001 otherwise);
    ``scheduler`` an object or a name (``step``, ``cosine``). ``seed`` seeds gpucnn's RNG (dropout) and
    the shuffling. Other keyword arguments go to :class:`Trainer`.
    """
    from ..random import manual_seed

    if seed is not None:
        manual_seed(seed)
    if device is not None:
        model.to(device)
    if isinstance(optimizer, str):
        from ..optim import create_optimizer

        name = optimizer.lower()
        if lr is None:
            lr = 0.05 if name in ("sgd", "momentum", "nesterov") else 1e-3
        optimizer = create_optimizer(name, model.parameters(), lr=lr)
    elif lr is not None:
        raise ArgumentError("fit: lr= is for an optimizer given by name; set it on the optimizer object")
    if isinstance(scheduler, str):
        from ..optim import create_scheduler

        scheduler = create_scheduler(scheduler, optimizer, epochs)
    trainer = Trainer(model, optimizer, train_data, val_data, epochs=epochs, scheduler=scheduler, device=device,
                      out_dir=out_dir, patience=patience, test_data=test_data, batch_size=batch_size,
                      seed=0 if seed is None else seed, verbose=verbose, **kwargs)
    return trainer.fit()
