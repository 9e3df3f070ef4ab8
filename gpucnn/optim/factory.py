"""Optimizers and schedules by name, for the CLI (``--optimizer`` / ``--schedule``)."""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Optional

from ..errors import ArgumentError
from .adam import Adam, AdamW
from .lr_scheduler import (CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, MultiStepLR, OneCycleLR,
                           StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

#: name -> (class, defaults that the name implies)
_OPTIMIZERS: dict[str, tuple[type, dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
    "rmsprop": (RMSprop, {}),
}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(_OPTIMIZERS)
SCHEDULER_NAMES: tuple[str, ...] = ("none", "step", "multistep", "exponential", "cosine", "linear", "onecycle")


def _normalise(name: Any, valid: tuple[str, ...], what: str) -> str:
    key = name.strip().lower().replace("_", "").replace("-", "") if isinstance(name, str) else None
    if key not in valid:
        raise ArgumentError(f"unknown {what} {name!r}; valid names: {', '.join(valid)}")
    return key


def _check_kwargs(label: str, cls: type, kw: dict[str, Any], taken: tuple[str, ...]) -> None:
    params = inspect.signature(cls.__init__).parameters
    allowed = [p for p in params if p not in ("self",) + taken]
    unknown = sorted(k for k in kw if k not in allowed)
    if unknown:
        raise ArgumentError(f"{label} does not take {', '.join(unknown)}; it takes {', '.join(allowed)}")


def create_optimizer(name: str, params: Any, lr: Optional[float] = None, **kw: Any) -> Optimizer:
    """The optimizer called ``name``: ``sgd``, ``momentum`` (SGD, momentum 0.9), ``nesterov`` (SGD,
    Nesterov momentum 0.9), ``adam``, ``adamw`` or ``rmsprop``.

    ``lr=None`` takes the optimizer's default learning rate. Keyword arguments go to the optimizer's
    constructor (``momentum=0.8``, ``weight_decay=5e-4``, ``betas=(0.9, 0.99)``, ...); those set to None are
    dropped, so a CLI can pass its unset options as they are.
    """
    key = _normalise(name, OPTIMIZER_NAMES, "optimizer")
    cls, implied = _OPTIMIZERS[key]
    kw = {k: v for k, v in kw.items() if v is not None}
    _check_kwargs(f"optimizer {key!r} ({cls.__name__})", cls, kw, ("params", "lr"))
    args = {**implied, **kw}
    if lr is not None:
        args["lr"] = lr
    return cls(params, **args)


def create_scheduler(name: str, optimizer: Optimizer, epochs: int, **kw: Any) -> Optional[LRScheduler]:
    """The schedule called ``name`` over ``epochs`` epochs (the caller steps it once an epoch), or None
    for ``"none"``:

    - ``step``: :class:`StepLR`, ``step_size`` (default ``max(1, epochs // 3)``), ``gamma`` (0.1)
    - ``multistep``: :class:`MultiStepLR`, ``milestones`` (default 50% and 75% of ``epochs``), ``gamma``
    - ``exponential``: :class:`ExponentialLR`, ``gamma`` (default 0.95)
    - ``cosine``: :class:`CosineAnnealingLR` with ``T_max=epochs``, ``eta_min`` (0)
    - ``linear``: :class:`LinearLR` warm-up, ``start_factor`` (0.1) to ``end_factor`` (1) over
      ``total_iters`` (default ``max(1, epochs // 10)``)
    - ``onecycle``: :class:`OneCycleLR`, ``max_lr`` (default: the optimizer's current lr),
      ``total_steps = epochs * steps_per_epoch`` (``steps_per_epoch`` default 1: pass the number of
      batches and step it once a batch)

    Keyword arguments set to None are dropped.
    """
    key = _normalise(name, SCHEDULER_NAMES, "learning-rate schedule")
    if key == "none":
        return None
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 1:
        raise ArgumentError(f"create_scheduler: epochs must be an integer >= 1, got {epochs!r}")
    kw = {k: v for k, v in kw.items() if v is not None}
    if key == "step":
        cls, args = StepLR, {"step_size": max(1, epochs // 3)}
    elif key == "multistep":
        cls, args = MultiStepLR, {"milestones": sorted({max(1, epochs // 2), max(1, epochs * 3 // 4)})}
    elif key == "exponential":
        cls, args = ExponentialLR, {"gamma": 0.95}
    elif key == "cosine":
        cls, args = CosineAnnealingLR, {"T_max": epochs}
    elif key == "linear":
        cls, args = LinearLR, {"start_factor": 0.1, "end_factor": 1.0, "total_iters": max(1, epochs // 10)}
    else:
        cls, args = OneCycleLR, {"max_lr": [float(g["lr"]) for g in optimizer.param_groups],
                                 "epochs": epochs, "steps_per_epoch": 1}
    taken = ("optimizer", "last_epoch") + (("T_max",) if key == "cosine" else ())
    if key == "onecycle":
        taken += ("epochs", "total_steps")
    _check_kwargs(f"schedule {key!r} ({cls.__name__})", cls, kw, taken)
    return cls(optimizer, **{**args, **kw})
