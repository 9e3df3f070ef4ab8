"""A training run described as data: :class:`RunConfig` and :func:`build_run`.

The CLI's ``gpucnn train`` options map one to one onto :class:`RunConfig`; :func:`build_run` turns a
config into the objects a :class:`~gpucnn.training.Trainer` needs, always in the same order and from the
same seed. A checkpoint stores the config, so ``gpucnn train --resume DIR`` (``Trainer.resume``) rebuilds
the identical run and then restores its state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..amp.autocast_mode import AMP_NAMES
from ..errors import ArgumentError
from . import parallel

#: the tasks a run config builds data for (Trainer(task="sequence") is driven from Python:
#: examples/wavenet_sine.py)
TASKS = ("classify", "segment")
from ..optim.factory import OPTIMIZER_NAMES, SCHEDULER_NAMES
from ..precision import PRECISIONS, set_float32_matmul_precision

OPTIMIZERS = tuple(OPTIMIZER_NAMES)     # sgd, momentum, nesterov, adam, adamw, rmsprop
SCHEDULES = tuple(SCHEDULER_NAMES)      # none, step, cosine, and more
NORMALIZATIONS = ("scale", "standardize")


@dataclass
class RunConfig:
    """Everything that defines a training run (the options of ``gpucnn train``)."""

    model: str = "keras-mnist"
    dataset: str = "digits"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "momentum"
    momentum: Optional[float] = None        # None: the optimizer's default (0.9 for momentum/nesterov)
    weight_decay: float = 0.0
    schedule: str = "none"
    device: str = "cpu"
    seed: int = 0
    patience: Optional[int] = None
    augment: bool = False
    normalize: str = "scale"
    limit: Optional[int] = None             # use only this many training images
    val_fraction: float = 0.0               # >0: hold out this share of the training split for validation
    confusion_matrix: bool = False
    #: float32 GEMM precision (gpucnn.set_float32_matmul_precision): "highest" (FP32) or "high" (TF32)
    precision: str = "highest"
    #: clip the gradients' total 2-norm to this before each step (gpucnn.nn.utils.clip_grad_norm_)
    clip_grad_norm: Optional[float] = None
    #: cross_entropy's label_smoothing (training, validation and test losses)
    label_smoothing: float = 0.0
    #: mixed precision: "fp16" (autocast float16 + loss scaling), "bf16" (autocast bfloat16), or None
    amp: Optional[str] = None
    #: data-parallel runs: batch norms synchronised over the processes (nn.SyncBatchNorm)
    sync_bn: bool = False
    #: linear warm-up of the lr over the first N epochs (LinearLR), then the schedule (SequentialLR)
    warmup_epochs: int = 0
    #: the text of a .json/.toml model file, kept so a resumed run does not depend on the file
    model_file: Optional[dict[str, str]] = None
    #: "classify" (a class per image) or "segment" (a class per pixel: masks, pixel accuracy and IoU)
    task: str = "classify"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def positive(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ArgumentError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")

        for name in ("epochs", "batch_size"):
            positive(name)
        if self.limit is not None:
            positive("limit")
        if self.patience is not None:
            positive("patience")
        if not float(self.lr) > 0:
            raise ArgumentError(f"lr must be positive, got {self.lr!r}")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ArgumentError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule.lower() not in SCHEDULES:
            raise ArgumentError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.normalize.lower() not in NORMALIZATIONS:
            raise ArgumentError(f"unknown normalization {self.normalize!r}; choose one of "
                                f"{', '.join(NORMALIZATIONS)}")
        if self.precision not in PRECISIONS:
            raise ArgumentError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ArgumentError(f"val-fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.clip_grad_norm is not None and not float(self.clip_grad_norm) > 0:
            raise ArgumentError(f"clip-grad-norm must be a positive number, got {self.clip_grad_norm!r}")
        if self.amp is not None and self.amp not in AMP_NAMES:
            raise ArgumentError(f"unknown amp {self.amp!r}; choose one of {', '.join(AMP_NAMES)} (or none)")
        if not 0.0 <= float(self.label_smoothing) <= 1.0:
            raise ArgumentError(f"label-smoothing must be in [0, 1], got {self.label_smoothing!r}")
        w = self.warmup_epochs
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0:
            raise ArgumentError(f"warmup-epochs must be a non-negative integer, got {w!r}")
        if w and w >= self.epochs:
            raise ArgumentError(f"warmup-epochs ({w}) must be fewer than the epochs ({self.epochs})")
        if self.task not in TASKS:
            raise ArgumentError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.task == "segment" and self.augment:
            raise ArgumentError("--augment is for classification: its crops and flips move the images, not their "
                                "masks; train --task segment without it")
        if self.task == "segment" and self.normalize != "scale":
            raise ArgumentError("--normalize standardize is for classification datasets; a segmentation dataset "
                                "gives its images scaled to 0..1 (--normalize scale)")
        if w and self.schedule.lower() == "onecycle":
            raise ArgumentError("warmup-epochs cannot be combined with the onecycle schedule, which warms up itself")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in names})


@dataclass
class RunParts:
    """What :func:`build_run` builds."""

    model: Any
    optimizer: Any
    scheduler: Any
    train_loader: Any
    val_loader: Any
    test_loader: Any
    eval_transform: Any
    train_transform: Any
    classes: list[str]
    train: Any
    val: Any
    test: Any
    metadata: dict[str, Any]


def is_model_file(spec: str) -> bool:
    return Path(str(spec)).suffix.lower() in (".json", ".toml")


def model_name(spec: str) -> str:
    """A short name for a model spec: the name itself, or the stem of a model file."""
    return Path(str(spec)).stem if is_model_file(spec) or "/" in str(spec) else str(spec)


def read_model_file(spec: str) -> Optional[dict[str, str]]:
    """``{"name": ..., "text": ...}`` of a model description file (None for a built-in name)."""
    if not is_model_file(spec):
        return None
    path = Path(spec).expanduser()
    if not path.is_file():
        return None  # build_model reports the missing file
    try:
        return {"name": path.name, "text": path.read_text(encoding="utf-8")}
    except (OSError, UnicodeDecodeError):
        return None


def build_model_from_config(cfg: RunConfig, data: Any = None) -> Any:
    """The model of ``cfg``: a built-in name, a model file, or the model file text saved in ``cfg`` (used
    when the file has moved or changed since the run started, so a resumed run gets the same model).

    ``data`` (a segmentation run's training data): a built-in model that adapts to its input
    (:data:`gpucnn.models.ADAPTS_TO_INPUT`, e.g. ``unet-tiny``) is built for its channels and classes."""
    from ..errors import ModelFormatError
    from ..models import build_model, model_from_spec

    saved = cfg.model_file
    if saved and saved.get("text") is not None:
        current = read_model_file(cfg.model)
        if current is not None and current["text"] == saved["text"]:
            return build_model(str(Path(cfg.model).expanduser()))
        name = saved.get("name") or str(cfg.model)
        try:
            if name.lower().endswith(".toml"):
                try:
                    import tomllib
                except ImportError:  # Python 3.10
                    import tomli as tomllib  # type: ignore[no-redef]
                spec = tomllib.loads(saved["text"])
            else:
                import json
                spec = json.loads(saved["text"])
        except ValueError as exc:
            raise ModelFormatError(f"the saved copy of model file {name} cannot be parsed: {exc}") from None
        model = model_from_spec(spec, f"{name} (saved copy)")
        if model.name is None:
            model.name = Path(name).stem
        return model
    from ..models import ADAPTS_TO_INPUT

    if data is not None and not is_model_file(cfg.model) and str(cfg.model).strip().lower() in ADAPTS_TO_INPUT:
        model = build_model(cfg.model, in_channels=data.input_shape[0], num_classes=data.num_classes)
        model.input_shape = tuple(data.input_shape)  # (a U-Net takes any multiple of 2**depth)
        return model
    return build_model(cfg.model)


def _augmentation(input_shape: tuple[int, ...]) -> list[Any]:
    from ..data import RandomCrop, RandomHorizontalFlip

    if len(input_shape) != 3:
        raise ArgumentError(f"--augment needs images (C, H, W); this dataset's items have shape {input_shape}")
    c, h, w = input_shape
    if c == 3:  # natural images (CIFAR-style): shifted crops and mirror images
        return [RandomCrop((h, w), padding=4), RandomHorizontalFlip(0.5)]
    # digits and other grayscale data: small shifts only (a mirrored digit is another symbol)
    return [RandomCrop((h, w), padding=2)]


def _describe_transform(t: Any) -> str:
    if t is None:
        return "none (float images used as they are)"
    cfg = t.config()
    if cfg["type"] == "Compose":
        return ", then ".join(_describe_transform_one(c) for c in cfg["transforms"])
    return _describe_transform_one(cfg)


def _describe_transform_one(cfg: Mapping[str, Any]) -> str:
    kind = cfg["type"]
    if kind == "ToFloat":
        return "pixels / 255" if abs(cfg["scale"] - 1 / 255) < 1e-12 else f"x * {cfg['scale']:g}"
    if kind == "Normalize":
        mean = ", ".join(f"{m:.4f}" for m in cfg["mean"])
        std = ", ".join(f"{s:.4f}" for s in cfg["std"])
        return f"standardize (mean {mean}, std {std}; fitted on the training images)"
    if kind == "RandomCrop":
        return f"random {cfg['size'][0]}x{cfg['size'][1]} crops of {cfg['padding']}-pixel zero-padded images"
    if kind == "RandomHorizontalFlip":
        return f"random horizontal flips (p={cfg['p']:g})"
    return kind


def _schedule(cfg: RunConfig, optimizer: Any) -> Any:
    """The run's lr scheduler (stepped once an epoch): ``cfg.schedule``, after ``cfg.warmup_epochs`` of
    linear warm-up from lr / (warmup + 1) (SequentialLR(LinearLR, schedule); LinearLR alone without a
    schedule: it stays at the lr once warm)."""
    from ..optim import LinearLR, SequentialLR, create_scheduler

    w = int(cfg.warmup_epochs)
    if not w:
        return None if cfg.schedule == "none" else create_scheduler(cfg.schedule, optimizer, cfg.epochs)
    warmup = LinearLR(optimizer, start_factor=1.0 / (w + 1), end_factor=1.0, total_iters=w)
    if cfg.schedule == "none":
        return warmup
    main = create_scheduler(cfg.schedule, optimizer, cfg.epochs - w)
    return SequentialLR(optimizer, [warmup, main], milestones=[w])


def _hold_out_images(train: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """(rest, held out): ``fraction`` of the images chosen at random (segmentation data: masks have no
    single label to stratify by)."""
    from ..errors import DataError

    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(train))
    n_val = int(round(len(train) * fraction))
    if not 1 <= n_val < len(train):
        raise DataError(f"--val-fraction {fraction:g} of {len(train)} training images leaves no validation or no "
                        f"training images")
    return train.subset(np.sort(order[n_val:])), train.subset(np.sort(order[:n_val]))


def _fingerprint(train: Any, test: Any) -> dict[str, Any]:
    """What the ranks of a distributed run must agree on about the data: sizes, shapes and a hash of the
    labels (and of the first images) of both splits."""
    import hashlib

    out: dict[str, Any] = {}
    for name, ds in (("train", train), ("test", test)):
        h = hashlib.sha256()
        for attr in ("images", "labels", "masks"):
            a = getattr(ds, attr, None)
            if a is not None:
                h.update(np.ascontiguousarray(np.asarray(a[:64] if attr == "images" else a)).tobytes())
        out[name] = [len(ds), h.hexdigest()[:16]]
    return out


def build_run(cfg: RunConfig, describe: Optional[Callable[[str], None]] = None) -> RunParts:
    """Seed gpucnn with ``cfg.seed``, load and split the data, build transforms, the model (on
    ``cfg.device``), optimizer, scheduler and the loaders. ``describe`` gets human-readable lines."""
    from ..backend import get_device
    from ..data import Compose, DataLoader, Standardize, ToFloat, resolve_dataset, train_test_split
    from ..optim import create_optimizer, create_scheduler
    from ..random import manual_seed

    say = describe or (lambda line: None)
    device = get_device(cfg.device)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        # The data split, the loader and augmentation seed NumPy generators, which need seeds >= 0.
        raise ArgumentError(f"seed must be an integer in [0, 2**32), got {cfg.seed!r}")
    manual_seed(cfg.seed)
    set_float32_matmul_precision(cfg.precision)  # (for the process: the run's GEMMs, resumed ones too)

    # -- the model first: a bad name fails before any data is loaded (loading data draws no global
    # random numbers, so the initial weights do not depend on this order). A segmentation model is
    # built for the data's channels and classes, so the data comes first there.
    segment = cfg.task == "segment"
    if cfg.model_file is None:
        cfg.model_file = read_model_file(cfg.model)
    if segment:
        train, test = resolve_dataset(cfg.dataset, seed=cfg.seed, task=cfg.task)
    model = build_model_from_config(cfg, data=train if segment else None)
    ranks = parallel.world()
    ranks.check_same("run configuration", cfg.to_dict())
    if cfg.sync_bn:
        from ..nn import SyncBatchNorm
        model = SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    if ranks.size > 1:  # rank 0's weights everywhere; gradients averaged over the ranks in backward
        from ..nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model)

    # -- data ------------------------------------------------------------------------------------
    if not segment:
        train, test = resolve_dataset(cfg.dataset, seed=cfg.seed)
    full_source = train.source.split("; training part of")[0]
    say(f"dataset: {cfg.dataset} — {full_source}")
    if cfg.limit is not None and cfg.limit < len(train):
        order = np.random.Generator(np.random.PCG64(cfg.seed)).permutation(len(train))[:cfg.limit]
        train = train.subset(np.sort(order))
        limited = f" (--limit: {len(train):,} of them used)"
    else:
        limited = ""
    val = test
    val_note = "validation: the test split"
    if cfg.val_fraction > 0 and segment:
        train, val = _hold_out_images(train, cfg.val_fraction, seed=cfg.seed + 1)
        val_note = f"validation: {len(val):,} images held out of the training split ({cfg.val_fraction:g})"
    elif cfg.val_fraction > 0:
        train, val = train_test_split(train, test_fraction=cfg.val_fraction, seed=cfg.seed + 1, stratify=True)
        val_note = f"validation: {len(val):,} images held out of the training split ({cfg.val_fraction:g})"
    ranks.check_same("data", _fingerprint(train, test))
    shape = "x".join(str(d) for d in train.input_shape)
    say(f"  {len(train):,} train{limited} / {len(test):,} test images "
        f"({shape} {train.images.dtype}, {train.num_classes} classes); {val_note}")

    # -- preprocessing and augmentation --------------------------------------------------------------
    steps: list[Any] = []
    if segment:
        pass  # (a SegmentationDataset gives float 0..1 images itself; transforms would not move the masks)
    elif train.images.dtype == np.uint8:
        steps.append(ToFloat(1.0 / 255.0))
    if cfg.normalize == "standardize":
        steps.append(Standardize.fit(train))
    eval_transform = None if not steps else steps[0] if len(steps) == 1 else Compose(steps)
    say("preprocessing: pixels / 255 (by the segmentation dataset)" if segment and train.images.dtype == np.uint8
        else f"preprocessing: {_describe_transform(eval_transform)}")
    train_transform = eval_transform
    if cfg.augment:
        aug = _augmentation(train.input_shape)
        train_transform = Compose(aug + steps)
        say(f"augmentation: {', '.join(_describe_transform_one(a.config()) for a in aug)}")
    takes = getattr(model, "input_shape", None)
    takes = f"takes {'x'.join(map(str, takes))}" if takes else ""
    outputs = getattr(model, "num_classes", None)
    extra = ", ".join(t for t in (takes, f"{outputs} classes" if outputs else "") if t)
    say(f"model: {cfg.model} — {n_params:,} parameters" + (f" ({extra})" if extra else ""))

    # -- optimizer, schedule ---------------------------------------------------------------------------
    opt_kw: dict[str, Any] = {}
    if cfg.momentum is not None:
        opt_kw["momentum"] = float(cfg.momentum)
    if cfg.weight_decay:
        opt_kw["weight_decay"] = float(cfg.weight_decay)
    optimizer = create_optimizer(cfg.optimizer.lower(), model.parameters(), lr=float(cfg.lr), **opt_kw)
    scheduler = _schedule(cfg, optimizer)
    mom = optimizer.param_groups[0].get("momentum")
    opt_text = f"{cfg.optimizer}" + (f" (momentum {mom:g})" if mom else "")
    say(f"training: {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, batch {cfg.batch_size}, "
        f"optimizer {opt_text}, lr {cfg.lr:g}"
        + (f", weight decay {cfg.weight_decay:g}" if cfg.weight_decay else "")
        + f", schedule {cfg.schedule}"
        + (f" after a {cfg.warmup_epochs}-epoch linear warm-up" if cfg.warmup_epochs else "")
        + (f", gradient norm clipped at {cfg.clip_grad_norm:g}" if cfg.clip_grad_norm else "")
        + (f", label smoothing {cfg.label_smoothing:g}" if cfg.label_smoothing else "")
        + f", seed {cfg.seed}, device {device}"
        + (f", precision {cfg.precision} (TF32 GEMM operands)" if cfg.precision == "high" else "")
        + ({"fp16": ", amp fp16 (autocast float16, loss scaling)", "bf16": ", amp bf16 (autocast bfloat16)"}
           .get(cfg.amp or "", ""))
        + (f", early stopping patience {cfg.patience}" if cfg.patience else ""))
    if cfg.patience and not cfg.val_fraction > 0:
        say("warning: early stopping watches the validation loss, and validation is the test split: the epoch "
            "kept is chosen on the test images, so the final test accuracy is optimistic (the test set leaks "
            "into training); hold out part of the training split instead with --val-fraction (e.g. 0.1)")

    eval_batch = max(cfg.batch_size, 256)
    if ranks.distributed:
        # The single-process loader's permutation of each epoch, rank r taking every K-th image: the
        # images of global step i are the same for every K (and for a run without mpiexec).
        # --batch-size is per process, as in DDP.
        train_loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                                  shard=(ranks.rank, ranks.size), transform=train_transform)
        # Each rank evaluates every K-th image; the sums are added over the ranks (parallel.World).
        val_loader, test_loader = (DataLoader(d, batch_size=eval_batch, transform=eval_transform,
                                              sampler=parallel.ShardSampler(len(d), ranks.rank, ranks.size))
                                   for d in (val, test))
        say(f"data-parallel: {ranks.describe()}, batch {cfg.batch_size} per process ({cfg.batch_size * ranks.size} "
            f"per step){', synchronised batch norm' if cfg.sync_bn else ''}")
    else:
        train_loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                                  transform=train_transform)
        val_loader = DataLoader(val, batch_size=eval_batch, transform=eval_transform)
        test_loader = DataLoader(test, batch_size=eval_batch, transform=eval_transform)
    metadata = {"dataset": {"spec": cfg.dataset, "seed": cfg.seed, "name": train.name},
                "model_spec": cfg.model}
    if segment:
        say(f"task: segment (per-pixel cross-entropy; pixel accuracy and IoU of {', '.join(train.classes)})")
    return RunParts(model=model, optimizer=optimizer, scheduler=scheduler, train_loader=train_loader,
                    val_loader=val_loader, test_loader=test_loader, eval_transform=eval_transform,
                    train_transform=train_transform, classes=list(train.classes), train=train, val=val,
                    test=test, metadata=metadata)
