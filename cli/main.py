"""The ``gpucnn`` command line: train, evaluate, predict, summary, info, bench, profile, kernels.

Errors a user can cause (:class:`gpucnn.errors.GpucnnError`) print ``Error: <message>`` on stderr and
exit with status 1; click's usage errors exit with 2; Ctrl-C exits with 130. A traceback is shown only
with ``gpucnn --debug ...`` (or ``GPUCNN_DEBUG=1``).
"""
from __future__ import annotations

import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

import click

from gpucnn.errors import GpucnnError

# Options that may accompany --resume (everything else is fixed by the saved run).
_RESUME_OPTIONS = {"resume", "epochs", "device", "confusion_matrix", "out"}


def _debug_requested(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.params or {}).get("debug")) or os.environ.get("GPUCNN_DEBUG", "") not in ("", "0")


class GpucnnGroup(click.Group):
    """A click group that turns gpucnn's errors into one-line messages (tracebacks with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as exc:
            if _debug_requested(ctx):
                traceback.print_exc()
            message = str(exc).strip()
            click.echo(f"\nInterrupted: {message}" if message else "\nInterrupted.", err=True)
            ctx.exit(130)
        except GpucnnError as exc:
            if _debug_requested(ctx):
                traceback.print_exc()
            click.echo(f"Error: {_rank_prefix()}{exc}", err=True)
            _end_job_on_error()
            ctx.exit(1)
        except MemoryError:
            if _debug_requested(ctx):
                traceback.print_exc()
            click.echo(f"Error: {_rank_prefix()}out of memory; try a smaller --batch-size (or --limit)", err=True)
            _end_job_on_error()
            ctx.exit(1)


@click.group(cls=GpucnnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="gpucnn", prog_name="gpucnn")
def cli(debug: bool) -> None:
    """gpucnn: train and run convolutional networks (CPU, CUDA, or the CUDA emulator)."""


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The console script's entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="gpucnn")


# -- train ------------------------------------------------------------------------------------------
_blas_limits: Any = None  # (kept alive: threadpoolctl's limits hold while this object lives)


def _join_mpi_job() -> Any:
    """Under mpiexec: join the job (gpucnn.distributed, MPI or NCCL) and give each rank its share of the
    node's cores; returns the World (a world of one otherwise)."""
    global _blas_limits
    from gpucnn.training import parallel

    if parallel.launched_by_mpi():
        import gpucnn.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group()
        if not os.environ.get("GPUCNN_NUMPY_THREADS"):
            from threadpoolctl import threadpool_limits

            from gpucnn import workspace
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            workspace.THREADS = max(1, cores // dist.get_local_world_size())
            _blas_limits = threadpool_limits(limits=workspace.THREADS)
    return parallel.world()


def _rank_prefix() -> str:
    """``"rank R of K: "`` in a distributed run (which process met the error), else nothing."""
    dist = sys.modules.get("gpucnn.distributed")
    if dist is not None and dist.is_initialized() and dist.get_world_size() > 1:
        return f"rank {dist.get_rank()} of {dist.get_world_size()}: "
    return ""


def _end_job_on_error() -> None:
    """After an error on one rank of a distributed run: end every rank (the others may be waiting in a
    collective for this one), not just this process."""
    import gpucnn.distributed as dist

    if dist.is_initialized() and dist.get_world_size() > 1:
        sys.stderr.flush()
        dist.abort(1)


def _free_out_dir(base: Path) -> Path:
    from gpucnn.training import CHECKPOINT_FILE

    if not (base / CHECKPOINT_FILE).exists():
        return base
    n = 2
    while (base.parent / f"{base.name}-{n}" / CHECKPOINT_FILE).exists():
        n += 1
    return base.parent / f"{base.name}-{n}"


def _remove_if_empty(path: Optional[Path], created: bool) -> None:
    """Remove an output directory this command created if a failure left it empty."""
    if created and path is not None:
        try:
            path.rmdir()
        except OSError:
            pass


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (click.core.ParameterSource.DEFAULT,
                                                  click.core.ParameterSource.DEFAULT_MAP)


def _optimizer_names() -> list[str]:
    from gpucnn.training.run import OPTIMIZERS
    return list(OPTIMIZERS)


def _schedule_names() -> list[str]:
    from gpucnn.training.run import SCHEDULES
    return list(SCHEDULES)


_AMP = click.option(
    "--amp", type=click.Choice(["fp16", "bf16"]), default=None,
    help="Mixed precision: run the forward passes under gpucnn.amp.autocast in float16 (with loss scaling, "
         "gpucnn.amp.GradScaler) or bfloat16; the weights stay float32. Default: off (float32).")
_PRECISION = click.option(
    "--precision", type=click.Choice(["highest", "high"]), default="highest", show_default=True,
    help="float32 conv/linear GEMMs: 'highest' = FP32; 'high' = TF32 operands with FP32 accumulation (the "
         "tensor cores' mode; PyTorch's cuDNN convs default to it). See gpucnn.set_float32_matmul_precision.")


@cli.command()
@click.option("--model", "model", default="keras-mnist", show_default=True, metavar="NAME|FILE",
              help="A built-in model (see `gpucnn info`) or a .json/.toml model file.")
@click.option("--dataset", default="digits", show_default=True, metavar="NAME|PATH",
              help="digits, mnist, fashion-mnist, cifar10, or a .npz / IDX / CIFAR / image folder path; with "
                   "--task segment: shapes, a folder with images/ and masks/, or a .npz with x and masks y.")
@click.option("--task", type=click.Choice(["classify", "segment"]), default="classify", show_default=True,
              help="segment: a class per pixel (a U-Net such as unet-tiny or unet, built for the data's channels "
                   "and classes); reports pixel accuracy and per-class / mean IoU.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              help="Learning rate.")
@click.option("--optimizer", type=click.Choice(_optimizer_names(), case_sensitive=False), default="momentum",
              show_default=True, help="momentum = SGD with momentum 0.9.")
@click.option("--momentum", type=click.FloatRange(min=0), default=None,
              help="Momentum (default: 0.9 for momentum/nesterov, the optimizer's own otherwise).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(_schedule_names(), case_sensitive=False), default="none",
              show_default=True, help="Learning-rate schedule, stepped once per epoch.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True, help="emu runs the CUDA kernels in the CPU emulator (slow).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seeds initialisation, dropout, shuffling, augmentation and the digits split.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: runs/<model>, or runs/<model>-2, ... if that holds a run].")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Continue the run saved in DIR from its last complete epoch (--epochs may raise the total).")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Early stopping: stop after N epochs without a lower validation loss; keep the best model. "
                   "Pair it with --val-fraction (stopping on the test split leaks the test set).")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random shifts (crops of padded images); plus mirror images for RGB data.")
@click.option("--normalize", type=click.Choice(["scale", "standardize"], case_sensitive=False), default="scale",
              show_default=True, help="scale: pixels/255; standardize: per-channel mean/std of the training set.")
@click.option("--val-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0,
              show_default=True, help="Hold out this share of the training split (stratified) for validation "
                                      "and early stopping; the test split is then evaluated only at the end "
                                      "(default 0: validate on the test split).")
@click.option("--confusion-matrix", is_flag=True, help="Print and plot the test confusion matrix at the end.")
@_PRECISION
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use only N training images (quick tries).")
@click.option("--clip-grad-norm", type=click.FloatRange(min=0, min_open=True), default=None, metavar="X",
              help="Clip the gradients' total 2-norm to X before each step (torch.nn.utils.clip_grad_norm_).")
@click.option("--label-smoothing", type=click.FloatRange(0, 1), default=0.0, show_default=True, metavar="X",
              help="Cross-entropy label smoothing (PyTorch's label_smoothing).")
@click.option("--warmup-epochs", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Warm the lr up linearly over the first N epochs, then run --schedule (SequentialLR).")
@_AMP
@click.option("--sync-bn", is_flag=True,
              help="Under mpiexec: batch norms with the statistics of every process's batch (nn.SyncBatchNorm).")
@click.pass_context
def train(ctx: click.Context, model: str, dataset: str, task: str, epochs: int, batch_size: int, lr: float,
          optimizer: str,
          momentum: Optional[float], weight_decay: float, schedule: str, device: str, seed: int, out: Optional[Path],
          resume: Optional[Path], patience: Optional[int], augment: bool, normalize: str, val_fraction: float,
          confusion_matrix: bool, precision: str, limit: Optional[int], clip_grad_norm: Optional[float],
          label_smoothing: float, warmup_epochs: int, amp: Optional[str], sync_bn: bool) -> None:
    """Train a model; writes checkpoint.npz, model.npz, metrics.json and curves.png into the output directory.

    With no options: keras-mnist on the 5,000 embedded MNIST digits, 5 epochs (about a minute on two cores).
    """
    from gpucnn.training import Trainer
    from gpucnn.training.run import RunConfig, model_name

    ranks = _join_mpi_job()
    echo = click.echo if ranks.writer else (lambda *args, **kwargs: None)  # (rank 0 alone speaks)

    started = time.perf_counter()
    created = False
    if resume is not None:
        extra = [p.opts[-1] for p in ctx.command.params
                 if p.name not in _RESUME_OPTIONS and _given(ctx, p.name)]
        if extra:
            raise click.UsageError(f"--resume continues the saved run with its own settings; it cannot be "
                                   f"combined with {', '.join(extra)} (only --epochs, --device and "
                                   f"--confusion-matrix may change)")
        if out is not None and out.resolve() != resume.resolve():
            raise click.UsageError("--resume DIR writes into DIR; leave out --out")
        echo(f"resuming the run in {resume}")
        trainer = Trainer.resume(resume, epochs=epochs if _given(ctx, "epochs") else None,
                                 device=device if _given(ctx, "device") else None, describe=echo,
                                 **({"confusion_matrix": True} if confusion_matrix else {}))
        if trainer.stopped_early:
            echo(f"checkpoint: the run stopped early after epoch {trainer.epoch} (early stopping)")
        elif trainer.epoch < trainer.epochs:
            echo(f"checkpoint: {trainer.epoch} of {trainer.epochs} epochs done; continuing with epoch "
                       f"{trainer.epoch + 1}")
        else:
            echo(f"checkpoint: all {trainer.epochs} epochs done (pass --epochs N to train further)")
    else:
        cfg = RunConfig(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                        optimizer=optimizer.lower(), momentum=momentum, weight_decay=weight_decay,
                        schedule=schedule.lower(), device=device.lower(), seed=seed, patience=patience,
                        augment=augment, normalize=normalize.lower(), limit=limit, val_fraction=val_fraction,
                        confusion_matrix=confusion_matrix, precision=precision, clip_grad_norm=clip_grad_norm,
                        label_smoothing=label_smoothing, warmup_epochs=warmup_epochs, amp=amp,
                        sync_bn=sync_bn, task=task)
        if out is None:
            base = Path("runs") / model_name(model)
            out = _free_out_dir(base)
            if out != base:
                echo(f"note: {base} already holds a run; writing to {out} "
                           f"(continue that one with: gpucnn train --resume {base})")
        else:
            from gpucnn.training import CHECKPOINT_FILE
            if (out / CHECKPOINT_FILE).exists():
                raise click.UsageError(f"{out} already holds a run ({CHECKPOINT_FILE}): continue it with "
                                       f"--resume {out}, or choose another --out")
        from gpucnn.training import check_output_dir
        created = not out.exists()
        check_output_dir(out)  # before loading data or building anything
        try:
            trainer = Trainer.from_config(cfg, out_dir=out, describe=echo)
        except BaseException:
            _remove_if_empty(out, created)
            raise
    echo(f"output: {trainer.out_dir}")
    try:
        trainer.fit()
    except BaseException:
        _remove_if_empty(trainer.out_dir, resume is None and created)
        raise
    if trainer.test_metrics is not None and trainer.task == "segment":
        echo(_segment_report("test", trainer.test_metrics, trainer.classes or []))
    elif trainer.test_metrics is not None:
        t = trainer.test_metrics
        echo(f"test accuracy: {t['accuracy'] * 100:.2f}% ({t['correct']:,}/{t['images']:,}), "
                   f"test loss {t['loss']:.4f}")
    if trainer.files:
        names = ", ".join(p.name for p in trainer.files if p.parent == trainer.out_dir)
        echo(f"wrote {names} to {trainer.out_dir}/")
    echo(f"done in {time.perf_counter() - started:.1f}s")


def _segment_report(what: str, result: dict, classes: Sequence[str]) -> str:
    """mIoU, pixel accuracy, loss and per-class IoU of a segmentation evaluation, in two lines."""
    import math

    def iou(v: float) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"

    names = list(classes) + [str(i) for i in range(len(classes), len(result["iou"]))]
    per_class = ", ".join(f"{n} {iou(v)}" for n, v in zip(names, result["iou"]))
    return (f"{what} mIoU {iou(result['mean_iou'])}, pixel accuracy {result['pixel_accuracy'] * 100:.2f}% "
            f"({result['correct']:,}/{result['pixels']:,} pixels of {result['images']:,} images), {what} loss "
            f"{result['loss']:.4f}\n{what} IoU per class: {per_class}")


# -- loading saved models ---------------------------------------------------------------------------------
def _load_model(path: Path, device: str) -> tuple[Any, dict]:
    """A saved model and what its file says about its input: ``input_shape``, ``classes``,
    ``input_dtype``, ``transform``, ``dataset`` (the training run's metadata, where present)."""
    from gpucnn.serialization import load_model

    model = load_model(path, device=device)  # (a state_dict file is a clear error here, not a dict)
    info = dict(getattr(model, "metadata", None) or {})
    if info.get("input_shape") is None and getattr(model, "input_shape", None) is not None:
        info["input_shape"] = list(model.input_shape)
    if not info.get("classes") and getattr(model, "classes", None):
        info["classes"] = list(model.classes)
    if not info.get("classes") and getattr(model, "num_classes", None):
        info["classes"] = [str(i) for i in range(int(model.num_classes))]
    return model, info


def _eval_transform(meta: dict) -> Any:
    from gpucnn.data import transform_from_config

    cfg = meta.get("transform")
    return transform_from_config(cfg) if cfg else None


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", default=None, metavar="NAME|PATH",
              help="[default: the dataset (and split seed) the model was trained on, else digits]")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True)
@click.option("--confusion-matrix", is_flag=True, help="Print the confusion matrix and plot it next to the model.")
def evaluate(model_path: Path, dataset: Optional[str], batch_size: int, device: str, confusion_matrix: bool) -> None:
    """Loss and accuracy of a saved model on a test split.

    MODEL is a model.npz written by `gpucnn train`; its input preprocessing, and by default its dataset
    and split seed, come from the file."""
    from gpucnn.data import DataLoader, resolve_dataset
    from gpucnn.errors import ShapeError
    from gpucnn.training import evaluate as run_evaluate
    from gpucnn.training.plots import confusion_matrix as make_cm, format_confusion, plot_confusion

    model, meta = _load_model(model_path, device)
    saved = meta.get("dataset") or {}
    spec = dataset or saved.get("spec") or "digits"
    seed = int(saved.get("seed", 0)) if (dataset is None or dataset == saved.get("spec")) else 0
    task = meta.get("task", "classify")
    _, test = resolve_dataset(spec, seed=seed, task=task)
    classes = meta.get("classes") or test.classes
    if len(classes) < test.num_classes:
        raise ShapeError(f"the model knows {len(classes)} classes but dataset {spec!r} has {test.num_classes}")
    transform = _eval_transform(meta)
    click.echo(f"model: {model_path} ({model.num_parameters():,} parameters)")
    click.echo(f"data: {spec} test split, {len(test):,} images — {test.source}")
    loader = DataLoader(test, batch_size=batch_size, transform=transform)
    result = run_evaluate(model, loader, predictions=confusion_matrix, task=task)
    if task == "segment":
        click.echo(_segment_report("test", result, classes))
        if confusion_matrix:
            click.echo("confusion matrix (pixels; rows: true class, columns: predicted):")
            click.echo(format_confusion(result["confusion"], classes))
        return
    click.echo(f"test loss {result['loss']:.4f}, accuracy {result['accuracy'] * 100:.2f}% "
               f"({result['correct']:,}/{result['images']:,})")
    if confusion_matrix:
        cm = make_cm(result["targets"], result["predictions"], len(classes))
        click.echo("confusion matrix (rows: true class, columns: predicted):")
        click.echo(format_confusion(cm, classes))
        target = model_path.parent / f"{model_path.stem}-confusion.png"
        try:
            plot_confusion(cm, classes, target, title=f"confusion matrix ({spec} test split)")
            click.echo(f"wrote {target}")
        except OSError as exc:
            click.echo(f"note: could not write {target} ({exc.strerror or exc})", err=True)


# -- predict ---------------------------------------------------------------------------------------------
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def _read_image(path: Path, shape: tuple[int, ...], invert: bool) -> tuple[Any, list[str]]:
    """One image file as uint8 (1, C, H, W) for a model taking ``shape`` = (C, H, W); plus notes."""
    import numpy as np

    from gpucnn.errors import DataError

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("reading image files needs Pillow: pip install pillow (or pass .npy arrays)") from None
    c, h, w = shape
    notes = []
    try:
        with Image.open(path) as img:
            img.load()
            mode = "L" if c == 1 else "RGB"
            if c not in (1, 3):
                raise DataError(f"{path}: the model takes {c}-channel input; only 1 (grayscale) or 3 (RGB) "
                                f"channels can come from an image file")
            if img.mode != mode:
                notes.append(f"converted from {img.mode} to {'grayscale' if mode == 'L' else 'RGB'}")
                img = img.convert(mode)
            if img.size != (w, h):
                notes.append(f"resized from {img.size[0]}x{img.size[1]} to {w}x{h}")
                img = img.resize((w, h), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: cannot read the image ({exc})") from None
    arr = arr[None, None] if arr.ndim == 2 else arr.transpose(2, 0, 1)[None]
    if invert:
        arr = 255 - arr
        notes.append("inverted")
    return np.ascontiguousarray(arr), notes


def _read_array(path: Path, shape: tuple[int, ...], input_dtype: str) -> tuple[Any, list[str]]:
    """A .npy/.npz of one image or a batch, as a (N, C, H, W) array in the training data's pixel range."""
    import numpy as np

    from gpucnn.errors import DataError, ShapeError

    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = next((k for k in ("x", "x_test", "images", "x_train") if k in keys), None)
                if key is None and len(keys) == 1:
                    key = keys[0]
                if key is None:
                    raise DataError(f"{path}: no array named x, x_test or images (it holds {', '.join(keys)})")
                arr = z[key]
        else:
            arr = np.load(path, allow_pickle=False)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path}: the array has dtype {arr.dtype}; images must be numeric")
    if arr.size == 0:
        raise DataError(f"{path}: the array holds no images (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise DataError(f"{path}: the array holds {bad:,} NaN or infinite value{'s' if bad != 1 else ''} "
                        f"(of {arr.size:,}); pixel values must be finite numbers")
    notes = []
    c, rest = shape[0], tuple(shape[1:])
    if arr.shape == tuple(rest) and c == 1:
        arr = arr[None, None]
    elif arr.shape == tuple(shape):
        arr = arr[None]
    elif arr.ndim == len(shape) and arr.shape[1:] == tuple(rest) and c == 1:
        arr = arr[:, None]
    elif arr.ndim == len(shape) + 1 and arr.shape[1:] == tuple(shape):
        pass
    else:
        raise ShapeError(f"{path}: array of shape {arr.shape} does not fit the model's input shape "
                         f"{tuple(shape)} (give one image {tuple(shape)} or a batch (N, {', '.join(map(str, shape))}))")
    if input_dtype == "uint8":
        if arr.dtype.kind == "f":
            if arr.size and float(np.nanmax(arr)) <= 1.0:
                notes.append("float values in 0..1: taken as pixel intensities and scaled to 0..255 like the "
                             "training images")
                arr = arr * 255.0
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        else:
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise DataError(f"{path}: integer pixel values must lie in 0..255")
            arr = arr.astype(np.uint8)
    else:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr), notes


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True)
@click.option("--invert", is_flag=True, help="Invert image files (dark digits on white paper -> MNIST style).")
@click.option("--task", type=click.Choice(["classify", "segment"]), default=None,
              help="[default: the task the model was trained for (its file records it)]")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="segment: where the mask PNG goes (a file for one image, else a directory) [default: "
                   "<image>-mask.png beside each image]")
def predict(model_path: Path, images: Sequence[Path], top_k: int, device: str, invert: bool, task: Optional[str],
            out: Optional[Path]) -> None:
    """Classify images with a saved model (prints the top classes), or segment them (--task segment, or
    a model trained with it: writes each image's colourised class mask as a PNG and prints the share of
    each class).

    IMAGES are image files (PNG, JPEG, ...: converted to the model's grayscale/RGB input and resized,
    with a note) or .npy/.npz arrays of one image or a batch."""
    import numpy as np

    import gpucnn
    from gpucnn import functional as F
    from gpucnn.errors import DataError

    model, meta = _load_model(model_path, device)
    trained_for = meta.get("task", "classify")
    task = task or trained_for
    if task != trained_for:
        raise DataError(f"{model_path}: the model was trained for --task {trained_for}, not {task}")
    if task == "segment":
        _predict_masks(model, meta, model_path, images, device, invert, out)
        return
    shape = tuple(meta.get("input_shape") or getattr(model, "input_shape", None) or ())
    if len(shape) != 3:
        raise DataError(f"{model_path}: the model file does not record its input shape (C, H, W); "
                        f"cannot prepare images for it")
    classes = list(meta.get("classes") or [])
    input_dtype = str(meta.get("input_dtype", "uint8"))
    transform = _eval_transform(meta)
    model.eval()
    for path in images:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix in (".npy", ".npz"):
            batch, notes = _read_array(path, shape, input_dtype)
            names = [str(path)] if len(batch) == 1 else [f"{path}[{i}]" for i in range(len(batch))]
        elif suffix in _IMAGE_SUFFIXES:
            batch, notes = _read_image(path, shape, invert)
            names = [str(path)]
        else:
            raise DataError(f"{path}: unsupported file type {suffix or '(none)'} (image files: PNG, JPEG, ...; "
                            f"arrays: .npy, .npz)")
        for note in notes:
            click.echo(f"note: {path}: {note}", err=True)
        x = transform(batch, np.random.default_rng(0)) if transform is not None else batch
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        with gpucnn.no_grad():
            logits = model(gpucnn.tensor(np.ascontiguousarray(x), device=device))
            probs = F.softmax(logits, dim=1).numpy()
        k = min(top_k, probs.shape[1])
        for name, p in zip(names, probs):
            order = np.argsort(-p, kind="stable")[:k]
            label = lambda i: classes[i] if i < len(classes) else str(i)  # noqa: E731
            ranked = ", ".join(f"{label(i)} ({p[i] * 100:.1f}%)" for i in order)
            click.echo(f"{name}: {ranked}")


def _predict_masks(model: Any, meta: dict, model_path: Path, images: Sequence[Path], device: str, invert: bool,
                   out: Optional[Path]) -> None:
    """``predict`` for a segmentation model: one colourised mask PNG per image, at the image's size."""
    import numpy as np

    import gpucnn
    from gpucnn.data.segmentation import save_mask_png
    from gpucnn.errors import DataError

    shape = tuple(meta.get("input_shape") or getattr(model, "input_shape", None) or ())
    if len(shape) != 3:
        raise DataError(f"{model_path}: the model file does not record its input shape (C, H, W); "
                        f"cannot prepare images for it")
    if out is not None and len(images) > 1 and out.suffix.lower() == ".png":
        raise click.UsageError(f"--out {out} names one file, but {len(images)} images were given: give a directory")
    classes = list(meta.get("classes") or [])
    model.eval()
    for path in images:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if path.suffix.lower() not in _IMAGE_SUFFIXES:
            raise DataError(f"{path}: not an image file (PNG, JPEG, ...); --task segment reads image files")
        from PIL import Image

        with Image.open(path) as img:
            size = img.size  # (width, height) of the original, for the mask
        batch, notes = _read_image(path, shape, invert)
        for note in notes:
            click.echo(f"note: {path}: {note}", err=True)
        x = batch.astype(np.float32) / 255.0  # (as the segmentation dataset scales its images)
        with gpucnn.no_grad():
            logits = model(gpucnn.tensor(np.ascontiguousarray(x), device=device))
        mask = logits.numpy().argmax(axis=1)[0].astype(np.uint8)
        if mask.shape != (size[1], size[0]):  # back to the image's own size: nearest keeps class ids
            mask = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
        if out is None:
            target = path.with_name(f"{path.stem}-mask.png")
        elif out.suffix.lower() == ".png":
            target = out
        else:
            out.mkdir(parents=True, exist_ok=True)
            target = out / f"{path.stem}-mask.png"
        try:
            save_mask_png(target, mask)
        except OSError as exc:
            raise DataError(f"{target}: cannot write the mask ({exc.strerror or exc})") from None
        counts = np.bincount(mask.reshape(-1), minlength=max(len(classes), 1))
        label = lambda i: classes[i] if i < len(classes) else str(i)  # noqa: E731
        shares = ", ".join(f"{label(i)} {c / mask.size * 100:.1f}%" for i, c in enumerate(counts) if c)
        click.echo(f"{path}: wrote {target} ({mask.shape[1]}x{mask.shape[0]}; {shares})")


# -- summary and info -------------------------------------------------------------------------------------
def _parse_shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise click.BadParameter(f"expected C,H,W (positive integers), got {text!r}", param_hint="--input-shape")
    return dims


@cli.command()
@click.option("--model", "model_spec", default="keras-mnist", show_default=True, metavar="NAME|FILE|SAVED.npz")
@click.option("--input-shape", default=None, metavar="C,H,W", help="[default: the model's own]")
def summary(model_spec: str, input_shape: Optional[str]) -> None:
    """Print a Keras-style table of a model's layers, output shapes and parameter counts."""
    shape = _parse_shape(input_shape)
    if model_spec.lower().endswith(".npz"):
        model, _ = _load_model(Path(model_spec), "cpu")
    else:
        from gpucnn.models import build_model
        model = build_model(model_spec)
    click.echo(model.summary(shape))


def _devices() -> list[str]:
    import shutil

    from gpucnn.backend import _cupy, cuda_available

    found = ["cpu (NumPy)"]
    gxx = shutil.which("g++")
    found.append(f"emu (CUDA emulator, g++ at {gxx})" if gxx else "emu: not available (needs g++)")
    if cuda_available():
        try:
            cp = _cupy()
            props = cp.cuda.runtime.getDeviceProperties(0)
            name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
            count = cp.cuda.runtime.getDeviceCount()
            found.append(f"cuda ({name}{f', {count} GPUs' if count > 1 else ''})")
        except Exception as exc:  # pragma: no cover - depends on the machine
            found.append(f"cuda (a GPU was found but could not be queried: {exc})")
    else:
        found.append("cuda: not available (" + ("CuPy is not installed" if _cupy() is None
                                                else "CuPy finds no CUDA GPU") + ")")
    return found


@cli.command()
def info() -> None:
    """Versions, the devices found, the built-in models and datasets."""
    import platform

    import numpy as np

    import gpucnn
    from gpucnn.backend import _cupy
    from gpucnn.data import DATASET_NAMES
    from gpucnn.models import list_models

    cp = _cupy()
    click.echo(f"gpucnn {gpucnn.__version__}")
    click.echo(f"python {platform.python_version()} ({sys.executable})")
    click.echo(f"numpy {np.__version__}, click {_version('click')}, cupy {cp.__version__ if cp else 'not installed'}")
    click.echo("devices:")
    for d in _devices():
        click.echo(f"  {d}")
    try:
        from gpucnn.models import model_descriptions
        described = model_descriptions()
    except ImportError:
        described = {name: "" for name in _model_names(list_models())}
    click.echo("models:")
    for name, text in described.items():
        click.echo(f"  {name:<14} {text}".rstrip())
    click.echo("datasets: " + ", ".join(DATASET_NAMES) + " (or a path: .npz, IDX folder, CIFAR-10 batches, "
               "image folder)")


@cli.command()
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True, help="emu runs the CUDA kernels in the CPU emulator (use --quick).")
@click.option("--batch-size", "batch_sizes", type=click.IntRange(min=1), multiple=True,
              help="Batch size of the keras-mnist training step (repeatable) [default: 64 and 256].")
@click.option("--layer-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="Batch size of the keras-mnist per-layer rows.")
@click.option("--inference-batch", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--block-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Batch size of the ResNet basic block rows (64 channels, 32x32).")
@click.option("--only", "groups", multiple=True, type=click.Choice(["layers", "train", "inference"]),
              help="Run only these groups of rows (repeatable) [default: all].")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Interleaved timing samples per row; the median is reported [default: 15; 3 with --quick].")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Untimed runs of each variant first [default: 3; 1 with --quick].")
@click.option("--torch/--no-torch", "with_torch", default=True, show_default=True,
              help="Compare with PyTorch (when installed: pip install 'gpucnn[bench]').")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Peak RSS of the training steps, each in a fresh process.")
@click.option("--quick", is_flag=True, help="Tiny shapes and few runs: checks the harness (numbers mean nothing).")
@_PRECISION
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
              help="float16/bfloat16: the convolution rows only, both frameworks in that dtype.")
@_AMP
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as JSON to this file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Write <date>-<device>-<host>.json and .md into DIR (e.g. benchmarks/results).")
def bench(device: str, batch_sizes: Sequence[int], layer_batch: int, inference_batch: int, block_batch: int,
          groups: Sequence[str], rounds: Optional[int], warmup: Optional[int], with_torch: bool, memory: bool, quick: bool,
          precision: str, dtype: str, amp: Optional[str], json_path: Optional[Path], out_dir: Optional[Path]) -> None:
    """Time gpucnn against PyTorch, interleaved in one process: per-layer forward and forward+backward,
    training steps and inference; images/s and ratios (PyTorch time / gpucnn time: > 1 = gpucnn faster).

    See benchmarks/README.md."""
    from gpucnn import bench as gbench

    chosen: dict[str, Any] = dict(device=device.lower(), torch=with_torch, memory=memory, precision=precision,
                                  dtype=dtype, amp=amp)
    if rounds is not None:
        chosen["rounds"] = rounds
    if warmup is not None:
        chosen["warmup"] = warmup
    if groups:
        chosen["groups"] = tuple(dict.fromkeys(groups))
    if quick:
        settings = gbench.Settings.quick(**chosen)
    else:
        settings = gbench.Settings(layer_batch=layer_batch, inference_batch=inference_batch,
                                   block_batch=block_batch, **chosen)
    if batch_sizes:
        settings.batch_sizes = tuple(batch_sizes)
    results = gbench.run(settings, progress=lambda msg: click.echo(msg, err=True))
    click.echo(gbench.format_table(results))
    if json_path is not None:
        click.echo(f"wrote {gbench.write_json(results, json_path)}")
    if out_dir is not None:
        for path in gbench.write_results(results, out_dir):
            click.echo(f"wrote {path}")


@cli.command()
@click.option("--model", "model_spec", default="keras-mnist", show_default=True, metavar="NAME|FILE|SAVED.npz")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="Profiled steps.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed steps first.")
@click.option("--inference", is_flag=True, help="Forward passes in eval mode under no_grad, not training steps.")
@click.option("--by", type=click.Choice(["layer", "op", "shape"]), default="layer", show_default=True,
              help="Group the times by layer, by op, or by op and input shape.")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N", help="Show the N slowest rows.")
@_PRECISION
@_AMP
def profile(model_spec: str, batch_size: int, device: str, steps: int, warmup: int, inference: bool, by: str,
            top: Optional[int], precision: str, amp: Optional[str]) -> None:
    """Time each layer's forward and backward in training steps (or inference) of a model on random
    data: where the time of a step goes. (On cuda the device is synchronised around every op: use the
    rows to find hot spots, `gpucnn bench` for throughput.)"""
    import gpucnn
    from gpucnn.profiler import profile_model

    dev = gpucnn.get_device(device.lower())
    gpucnn.set_float32_matmul_precision(precision)
    if model_spec.lower().endswith(".npz"):
        model, info = _load_model(Path(model_spec), dev.name)
        model.input_shape = tuple(info["input_shape"])
    else:
        from gpucnn.models import build_model
        model = build_model(model_spec).to(dev)
    prof = profile_model(model, batch_size, steps=steps, warmup=warmup, train=not inference, by=by, amp=amp)
    per_step = prof.wall_seconds / steps
    what = "forward passes (eval, no_grad)" if inference else "training steps (SGD, momentum 0.9)"
    click.echo(f"gpucnn profile: {getattr(model, 'name', model_spec)}, batch {batch_size}, device {dev.name}"
               f"{f', amp {amp}' if amp else ''}: {steps} {what} after {warmup} untimed: {per_step * 1e3:,.2f} ms "
               f"a step, {batch_size / per_step:,.0f} images/s")
    click.echo(prof.table(limit=top))
    if amp and not model_spec.lower().endswith(".npz"):
        from gpucnn.profiler import step_peak_memory

        kw = dict(device=dev.name, steps=min(steps, 3), train=not inference)
        low, full = (step_peak_memory(model_spec, batch_size, amp=a, **kw) for a in (amp, None))
        click.echo(f"peak RSS (MiB, a fresh process each, {kw['steps']} steps): amp {amp} {low['peak_rss_mib']:,.0f}, "
                   f"float32 {full['peak_rss_mib']:,.0f} (after setup {low['setup_rss_mib']:,.0f} / "
                   f"{full['setup_rss_mib']:,.0f})")


@cli.command()
@click.option("--arch", "archs", multiple=True, metavar="sm_XX",
              help="Architecture to compile for (repeatable) [default: sm_75, sm_80, sm_86, sm_89, sm_90].")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float", "double", "half", "bfloat16"]),
              help="Element type T (repeatable) [default: every one a family is compiled for].")
@click.option("--family", "family_names", multiple=True, metavar="NAME",
              help="Kernel family, kernels_cuda/NAME.cu (repeatable) [default: all].")
@click.option("--compiler", type=click.Choice(["nvrtc", "nvcc"]), default="nvrtc", show_default=True,
              help="nvrtc: what the runtime uses (the nvidia-cuda-nvrtc-cu12 wheel, no GPU needed).")
@click.option("--all-tiles", is_flag=True,
              help="Every tile the autotuner may pick (conv), not only the default one.")
@click.option("--cubin-dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Write one .cubin per compiled variant to DIR (family-dtype[-precision][-tile]-arch.cubin), "
                   "for cuobjdump -sass.")
@click.option("--sass", is_flag=True,
              help="Disassemble (cuobjdump -sass): count HMMA (mma.sync), LDSM (ldmatrix) and LDGSTS (cp.async) "
                   "per kernel, and fail a tensor-core variant whose SASS lacks them.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Compiles at once [default: the CPUs, at most 4].")
@click.option("--build-cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Instead: build the runtime kernel cache in DIR (every variant the runtime may "
                                  "use, for --arch [default: sm_80, sm_90]); run with GPUCNN_KERNEL_CACHE=DIR on "
                                  "the GPU machine and nothing is compiled there at first use.")
@click.pass_context
def kernels(ctx: click.Context, archs: Sequence[str], dtypes: Sequence[str], family_names: Sequence[str],
            compiler: str, all_tiles: bool, cubin_dir: Optional[Path], sass: bool, jobs: Optional[int],
            cache_dir: Optional[Path]) -> None:
    """Compile the CUDA kernels without a GPU: registers, shared memory, spills per kernel.

    Fails (exit status 1) on a compile error, any compiler warning, register spills or local memory, and
    with --sass on a tensor-core variant whose SASS lacks its HMMA, LDSM or LDGSTS instructions."""
    from gpucnn import kernel_check, nvrtc
    from kernels_cuda import families

    if cache_dir is not None:
        from gpucnn import kernel_cache

        try:
            paths = kernel_cache.build(cache_dir, tuple(archs) or kernel_cache.DEFAULT_ARCHS, family_names or None,
                                       jobs=jobs or kernel_check.default_jobs())
        except nvrtc.NvrtcNotFound as exc:
            raise click.ClickException(str(exc)) from exc
        size = sum(p.stat().st_size for p in paths)
        click.echo(f"wrote {len(paths)} cubins ({size / 2 ** 20:.1f} MiB) to {cache_dir}; on the GPU machine set "
                   f"{kernel_cache.ENV}={cache_dir}")
        return

    known = families()
    absent = kernel_check.missing_families(known)  # declared, source not written yet (e.g. conv_tc)
    unknown = [f for f in family_names if f not in known and f not in absent]
    if unknown:
        raise click.BadParameter(f"no kernel family {', '.join(unknown)} (have: {', '.join(known) or 'none'})",
                                 param_hint="--family")
    bad_arch = [a for a in archs if not re.fullmatch(r"sm_\d+[a-z]?", a)]
    if bad_arch:
        raise click.BadParameter(f"expected sm_XX (e.g. sm_80), got {', '.join(bad_arch)}", param_hint="--arch")
    archs = tuple(archs) or kernel_check.ARCHS
    names = list(family_names) or known + absent
    notes = [f"{f}: skipped: kernels_cuda/{f}.cu does not exist (yet)" for f in names if f in absent]
    names = [f for f in names if f not in absent]
    cases = kernel_check.cases_for(names, archs, dtypes or None, compiler, all_tiles)
    for f in names:
        unbuilt = [a for a in archs if not any(c[0] == f and c[1] == a for c in cases)]
        if unbuilt:
            labels = ", ".join(v.label + (f" (sm_{v.min_sm}+)" if v.min_sm else "")
                               for v in kernel_check.variants(f, all_tiles))
            notes.append(f"{f}: nothing to build for {', '.join(unbuilt)} (its variants: {labels})")
    if not cases:
        click.echo("\n".join(notes) or "no kernel families (kernels_cuda/*.cu) to check")
        return
    try:
        if compiler == "nvrtc":
            major, minor = nvrtc.version()
            click.echo(f"NVRTC {major}.{minor} ({nvrtc.load().path})")
        else:
            click.echo(f"nvcc ({kernel_check.find_nvcc() or 'not found'})")
        jobs = jobs or kernel_check.default_jobs()
        reports = kernel_check.check_cases(cases, jobs=jobs)
        if sass:
            kernel_check.inspect_sass(reports, jobs=jobs)
    except (nvrtc.NvrtcNotFound, kernel_check.NvccNotFound, kernel_check.SassToolsNotFound) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(kernel_check.format_table(reports))
    for note in notes:
        click.echo(note)
    if cubin_dir is not None:
        paths = kernel_check.write_cubins(reports, cubin_dir)
        click.echo(f"wrote {len(paths)} cubin(s) to {cubin_dir} (read one with: cuobjdump -sass "
                   f"{paths[0] if paths else cubin_dir / 'NAME.cubin'})")
    failures = [msg for r in reports for msg in r.failures()]
    if failures:
        click.echo(f"\n{len(failures)} problem(s):", err=True)
        for msg in failures:
            click.echo(f"  {msg}", err=True)
        ctx.exit(1)
    click.echo(f"\nall {sum(len(r.kernels) for r in reports)} kernel builds pass "
               f"(no warnings, no spills, no local memory{', SASS as required' if sass else ''})")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _model_names(models: Any) -> list[str]:
    if isinstance(models, dict):
        return [str(k) for k in models]
    return [m if isinstance(m, str) else str(getattr(m, "name", m)) for m in models]


# -- commands kept in their own modules (cli/<command>.py); one line each -------------------------------
from cli.filter import filter_command; cli.add_command(filter_command)  # noqa: E402, E702
from cli.export import export as _export; cli.add_command(_export)  # noqa: E402, E702


if __name__ == "__main__":  # pragma: no cover
    main()
