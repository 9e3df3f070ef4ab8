"""Learning-rate schedules with PyTorch's semantics (``torch.optim.lr_scheduler``).

Constructing a scheduler records each group's starting learning rate as ``group["initial_lr"]`` (unless a
scheduler already did) and sets the learning rate for epoch 0; every :meth:`LRScheduler.step` (call it
after ``optimizer.step()``, once an epoch, or once a batch for :class:`OneCycleLR`) moves to the next
epoch. The learning rates are computed in closed form from ``initial_lr`` and ``last_epoch``, so a
schedule resumes exactly from its :meth:`~LRScheduler.state_dict` (JSON-able).

Resuming (like PyTorch)::

    opt = SGD(model.parameters(), lr=0.1); sched = StepLR(opt, step_size=30)
    opt.load_state_dict(ckpt["optimizer"]); sched.load_state_dict(ckpt["scheduler"])
"""
from __future__ import annotations

import bisect
import math
import numbers
import types
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence, Union

from ..errors import ArgumentError, ModelFormatError
from .optimizer import Optimizer


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(float(v))


def _py(v: Any) -> Any:
    """Plain Python numbers (JSON-able)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    return v


class LRScheduler:
    """Base class. Subclasses list their settings in :attr:`_settings`, check them in :meth:`_check`
    and compute the learning rates for ``self.last_epoch`` in :meth:`get_lr`."""

    #: names of the constructor settings kept in (and restored from) the state dict
    _settings: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"{name}: optimizer must be a gpucnn.optim.Optimizer, got "
                                f"{type(optimizer).__name__}")
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ArgumentError(f"{name}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ArgumentError(f"{name}: last_epoch={last_epoch} resumes a schedule, but parameter "
                                        f"group {i} has no 'initial_lr' (load the optimizer's state dict "
                                        f"first, or use last_epoch=-1)")
        self.base_lrs: list[float] = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self._last_lr: list[float] = []
        self.step()

    @property
    def name(self) -> str:
        return type(self).__name__

    def _check(self, settings: Mapping[str, Any]) -> None:
        """Raise :class:`ArgumentError` naming the scheduler, the setting and its value."""

    def _bad(self, arg: str, value: Any, expected: str) -> None:
        raise ArgumentError(f"{self.name}: {arg} must be {expected}, got {value!r}")

    def get_lr(self) -> list[float]:
        """The learning rates of the groups at epoch ``self.last_epoch``."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last :meth:`step` set (one per parameter group)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and set each group's ``lr``."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the scheduler's type, settings, ``last_epoch``, ``base_lrs``, ``last_lr``."""
        sd: dict[str, Any] = {"type": self.name, "last_epoch": self.last_epoch,
                              "base_lrs": [float(x) for x in self.base_lrs],
                              "last_lr": [float(x) for x in self._last_lr], "step_count": self._step_count}
        for k in self._settings:
            sd[k] = _py(getattr(self, k))
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (checked first; :class:`ModelFormatError` on a mismatch). The
        optimizer's learning rates come back with the optimizer's own state dict."""
        what = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ModelFormatError(f"{what}: expected a dict, got {type(state_dict).__name__}")
        kind = state_dict.get("type", self.name)
        if kind != self.name:
            raise ModelFormatError(f"{what}: the state dict is of a {kind}, not a {self.name}")
        missing = [k for k in ("last_epoch", "base_lrs") if k not in state_dict]
        if missing:
            raise ModelFormatError(f"{what}: the state dict lacks {', '.join(map(repr, missing))}")
        last_epoch, base_lrs = state_dict["last_epoch"], state_dict["base_lrs"]
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ModelFormatError(f"{what}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        n = len(self.optimizer.param_groups)
        if not isinstance(base_lrs, (list, tuple)) or not all(_is_real(x) for x in base_lrs):
            raise ModelFormatError(f"{what}: base_lrs must be a list of numbers, got {base_lrs!r}")
        if len(base_lrs) != n:
            raise ModelFormatError(f"{what}: the state dict has {len(base_lrs)} learning rate(s), the "
                                   f"optimizer has {n} parameter group(s)")
        last_lr = state_dict.get("last_lr", [])
        if not isinstance(last_lr, (list, tuple)) or not all(_is_real(x) for x in last_lr):
            raise ModelFormatError(f"{what}: last_lr must be a list of numbers, got {last_lr!r}")
        settings = {k: state_dict.get(k, getattr(self, k)) for k in self._settings}
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
        try:
            self._check(settings)
        except ArgumentError as e:
            raise ModelFormatError(f"{what}: {e}") from None
        for k, v in settings.items():
            setattr(self, k, v)
        self.last_epoch = int(last_epoch)
        self.base_lrs = [float(x) for x in base_lrs]
        self._last_lr = [float(x) for x in last_lr]
        step_count = state_dict.get("step_count", self.last_epoch + 1)
        self._step_count = int(step_count) if _is_int(step_count) else self.last_epoch + 1
        self._after_load()

    def _after_load(self) -> None:
        pass

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._settings)
        return f"{self.name}({settings}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (epoch // step_size)``."""

    _settings = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self._check({"step_size": step_size, "gamma": gamma})
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def _check(self, s: Mapping[str, Any]) -> None:
        if not _is_int(s["step_size"]) or s["step_size"] < 1:
            self._bad("step_size", s["step_size"], "an integer >= 1")
        if not _is_real(s["gamma"]) or s["gamma"] <= 0:
            self._bad("gamma", s["gamma"], "a number > 0")

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (number of milestones <= epoch)`` (a milestone listed twice counts
    twice, as in PyTorch)."""

    _settings = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(milestones, (list, tuple)):
            milestones = list(milestones)
        self._check({"milestones": milestones, "gamma": gamma})
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def _check(self, s: Mapping[str, Any]) -> None:
        ms = s["milestones"]
        if not isinstance(ms, list) or not all(_is_int(m) and m >= 0 for m in ms):
            self._bad("milestones", ms, "a list of non-negative integers (epochs)")
        if not _is_real(s["gamma"]) or s["gamma"] <= 0:
            self._bad("gamma", s["gamma"], "a number > 0")

    def _after_load(self) -> None:
        self.milestones = sorted(int(m) for m in self.milestones)

    def get_lr(self) -> list[float]:
        n = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma ** n for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = initial_lr * gamma ** epoch``."""

    _settings = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self._check({"gamma": gamma})
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _check(self, s: Mapping[str, Any]) -> None:
        if not _is_real(s["gamma"]) or s["gamma"] <= 0:
            self._bad("gamma", s["gamma"], "a number > 0")

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` (PyTorch's closed
    form): ``initial_lr`` at epoch 0, ``eta_min`` at epoch ``T_max`` (and back up after it, like PyTorch)."""

    _settings = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self._check({"T_max": T_max, "eta_min": eta_min})
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def _check(self, s: Mapping[str, Any]) -> None:
        if not _is_int(s["T_max"]) or s["T_max"] < 1:
            self._bad("T_max", s["T_max"], "an integer >= 1 (epochs)")
        if not _is_real(s["eta_min"]) or s["eta_min"] < 0:
            self._bad("eta_min", s["eta_min"], "a number >= 0")

    def get_lr(self) -> list[float]:
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of a factor: ``lr = initial_lr * (start_factor + (end_factor -
    start_factor) * min(epoch, total_iters) / total_iters)``; constant after ``total_iters``."""

    _settings = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self._check({"start_factor": start_factor, "end_factor": end_factor, "total_iters": total_iters})
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def _check(self, s: Mapping[str, Any]) -> None:
        if not _is_real(s["start_factor"]) or not 0 < s["start_factor"] <= 1:
            self._bad("start_factor", s["start_factor"], "a number in (0, 1]")
        if not _is_real(s["end_factor"]) or not 0 <= s["end_factor"] <= 1:
            self._bad("end_factor", s["end_factor"], "a number in [0, 1]")
        if not _is_int(s["total_iters"]) or s["total_iters"] < 1:
            self._bad("total_iters", s["total_iters"], "an integer >= 1")

    def get_lr(self) -> list[float]:
        t = min(self.last_epoch, self.total_iters)
        f = self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters
        return [base * f for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (``torch.optim.lr_scheduler.LambdaLR``): ``lr_lambda`` is a
    function of the epoch, or a list of them, one per parameter group.

    Like PyTorch's, :meth:`state_dict` cannot hold the functions: it holds ``last_epoch`` and the other
    state, and for each ``lr_lambda`` that is a callable object (not a function or lambda) a copy of its
    ``__dict__`` (else None). Build the scheduler with the same functions before loading the state.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Union[Callable[[int], float], Sequence[Callable[[int], float]]],
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"{self.name}: optimizer must be a gpucnn.optim.Optimizer, got "
                                f"{type(optimizer).__name__}")
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ArgumentError(f"{self.name}: expected {n} lr_lambdas (one per parameter group), "
                                    f"but got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for fn in lambdas:
            if not callable(fn):
                self._bad("lr_lambda", fn, "a function of the epoch returning a factor, or a list of them")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lrs = []
        for i, (base, fn) in enumerate(zip(self.base_lrs, self.lr_lambdas)):
            factor = fn(self.last_epoch)
            if not _is_real(factor):
                raise ArgumentError(f"{self.name}: lr_lambda of parameter group {i} returned {factor!r} for "
                                    f"epoch {self.last_epoch}, expected a number (the factor of the initial lr)")
            lrs.append(base * factor)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        """The base state plus ``lr_lambdas``: per group, a copy of a callable object's ``__dict__``, or
        None for a function (which cannot be saved)."""
        sd = super().state_dict()
        sd["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) or not hasattr(fn, "__dict__")
                            else dict(vars(fn)) for fn in self.lr_lambdas]
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; each saved ``__dict__`` updates the matching callable object."""
        saved = state_dict.get("lr_lambdas") if isinstance(state_dict, Mapping) else None
        if saved is not None and (not isinstance(saved, (list, tuple)) or len(saved) != len(self.lr_lambdas)
                                  or not all(s is None or isinstance(s, Mapping) for s in saved)):
            raise ModelFormatError(f"{self.name}.load_state_dict: lr_lambdas must be a list of "
                                   f"{len(self.lr_lambdas)} dicts or nulls, got {saved!r}")
        super().load_state_dict(state_dict)
        for fn, attrs in zip(self.lr_lambdas, saved or []):
            if attrs is not None:
                vars(fn).update(attrs)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), as ``torch.optim.lr_scheduler.OneCycleLR``: the learning rate
    rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then
    anneals to ``max_lr / div_factor / final_div_factor`` (three phases with ``three_phase=True``). With
    ``cycle_momentum`` the momentum (SGD, RMSprop) or beta1 (Adam) cycles inversely between
    ``max_momentum`` and ``base_momentum``. Step it once per batch: ``total_steps = epochs *
    steps_per_epoch``; stepping past ``total_steps`` raises :class:`ArgumentError`.

    ``max_lr`` (and the momenta) may be one value or one per parameter group; they are kept in the
    groups (``max_lr``, ``min_lr``, ``initial_lr``, ``max_momentum``, ``base_momentum``), so they travel
    with the optimizer's state dict.
    """

    _settings = ("total_steps", "pct_start", "anneal_strategy", "cycle_momentum", "three_phase", "use_beta1")

    def __init__(self, optimizer: Optimizer, max_lr: Union[float, Sequence[float]],
                 total_steps: Optional[int] = None, epochs: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: Union[float, Sequence[float]] = 0.85,
                 max_momentum: Union[float, Sequence[float]] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"{self.name}: optimizer must be a gpucnn.optim.Optimizer, got "
                                f"{type(optimizer).__name__}")
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ArgumentError(f"{self.name}: give total_steps, or both epochs and steps_per_epoch")
            for arg, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not _is_int(v) or v < 1:
                    self._bad(arg, v, "an integer >= 1")
            total_steps = int(epochs) * int(steps_per_epoch)
        groups = optimizer.param_groups
        use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and not use_beta1 and "momentum" not in optimizer.defaults:
            raise ArgumentError(f"{self.name}: cycle_momentum=True needs an optimizer with momentum or betas, "
                                f"{optimizer.name} has neither (pass cycle_momentum=False)")
        self._check({"total_steps": total_steps, "pct_start": pct_start, "anneal_strategy": anneal_strategy,
                     "cycle_momentum": cycle_momentum, "three_phase": three_phase, "use_beta1": use_beta1})
        for arg, v in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not _is_real(v) or v <= 0:
                self._bad(arg, v, "a number > 0")
        max_lrs = self._per_group("max_lr", max_lr, len(groups))
        self.total_steps, self.pct_start = int(total_steps), float(pct_start)
        self.anneal_strategy, self.three_phase = anneal_strategy, bool(three_phase)
        self.cycle_momentum, self.use_beta1 = bool(cycle_momentum), use_beta1
        if last_epoch == -1:
            for group, lr in zip(groups, max_lrs):
                group["initial_lr"] = lr / float(div_factor)
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / float(final_div_factor)
        if self.cycle_momentum:
            base_ms = self._per_group("base_momentum", base_momentum, len(groups), high=1.0)
            max_ms = self._per_group("max_momentum", max_momentum, len(groups), high=1.0)
            if last_epoch == -1:
                for group, lo, hi in zip(groups, base_ms, max_ms):
                    if self.use_beta1:
                        group["betas"] = (hi, *tuple(group["betas"])[1:])
                    else:
                        group["momentum"] = hi
                    group["max_momentum"], group["base_momentum"] = hi, lo
        super().__init__(optimizer, last_epoch)

    def _per_group(self, arg: str, value: Any, n: int, high: Optional[float] = None) -> list[float]:
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n:
            self._bad(arg, value, f"one number or a list of {n} (one per parameter group)")
        for v in values:
            if not _is_real(v) or v < 0 or (high is not None and v >= high):
                self._bad(arg, value, "numbers >= 0" if high is None else f"numbers in [0, {high:g})")
        return [float(v) for v in values]

    def _check(self, s: Mapping[str, Any]) -> None:
        if not _is_int(s["total_steps"]) or s["total_steps"] < 1:
            self._bad("total_steps", s["total_steps"], "an integer >= 1")
        if not _is_real(s["pct_start"]) or not 0 < s["pct_start"] < 1:
            self._bad("pct_start", s["pct_start"], "a number in (0, 1)")
        if s["anneal_strategy"] not in ("cos", "linear"):
            self._bad("anneal_strategy", s["anneal_strategy"], "'cos' or 'linear'")
        for k in ("cycle_momentum", "three_phase", "use_beta1"):
            if not isinstance(s[k], bool):
                self._bad(k, s[k], "True or False")

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """(end_step, start_lr, end_lr, start_momentum, end_momentum) with group keys, as PyTorch."""
        total, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [(pct * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (2 * pct * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(pct * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ArgumentError(f"{self.name}: stepped {t} times, but total_steps is {self.total_steps} "
                                f"(step once per batch; total_steps = epochs * steps_per_epoch)")
        phases = self._phases()
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, s_lr, e_lr, s_m, e_m) in enumerate(phases):
                if t <= end_step or i == len(phases) - 1:
                    # a phase of no length (e.g. pct_start * total_steps == 1) is already over
                    pct = (t - start_step) / (end_step - start_step) if end_step > start_step else 1.0
                    lr = self._anneal(float(group[s_lr]), float(group[e_lr]), pct)
                    if self.cycle_momentum:
                        m = self._anneal(float(group[s_m]), float(group[e_m]), pct)
                        if self.use_beta1:
                            group["betas"] = (m, *tuple(group["betas"])[1:])
                        else:
                            group["momentum"] = m
                    break
                start_step = end_step
            lrs.append(lr)
        return lrs


class SequentialLR(LRScheduler):
    """Runs ``schedulers`` one after another, switching at the ``milestones`` (epochs), as
    ``torch.optim.lr_scheduler.SequentialLR``: e.g. a warm-up then a decay::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=epochs - 5)
        sched = SequentialLR(opt, [warmup, decay], milestones=[5])

    Each scheduler starts its own schedule (epoch 0) at its milestone. The state dict holds each
    scheduler's own state dict.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"{self.name}: optimizer must be a gpucnn.optim.Optimizer, got "
                                f"{type(optimizer).__name__}")
        schedulers = list(schedulers) if isinstance(schedulers, (list, tuple)) else schedulers
        if not isinstance(schedulers, list) or not schedulers:
            self._bad("schedulers", schedulers, "a non-empty list of schedulers")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, (ReduceLROnPlateau, SequentialLR)):
                self._bad(f"schedulers[{i}]", s, "a scheduler with a schedule of its own (not ReduceLROnPlateau "
                                                 "or SequentialLR)")
            if s.optimizer is not optimizer:
                raise ArgumentError(f"{self.name}: schedulers[{i}] ({s.name}) schedules another optimizer than "
                                    f"the one given")
        milestones = list(milestones) if isinstance(milestones, (list, tuple)) else milestones
        if not isinstance(milestones, list) or len(milestones) != len(schedulers) - 1 or \
                not all(_is_int(m) and m >= 1 for m in milestones) or milestones != sorted(milestones):
            self._bad("milestones", milestones, f"a sorted list of {len(schedulers) - 1} epoch(s) >= 1, one "
                                                f"fewer than the schedulers")
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ArgumentError(f"{self.name}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        self.optimizer, self._schedulers, self._milestones = optimizer, schedulers, [int(m) for m in milestones]
        self.last_epoch = int(last_epoch) + 1
        self._step_count = 1
        # As PyTorch: back to the initial rates, undo each scheduler's construction step, then epoch 0 of
        # the first one.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        schedulers[0].step()
        self.base_lrs = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self._last_lr = schedulers[0].get_last_lr()

    def step(self) -> None:
        """Advance one epoch: the scheduler in charge steps; at its milestone it starts at its epoch 0."""
        self._step_count += 1
        self.last_epoch += 1
        i = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            scheduler.last_epoch = -1  # (step(0) in PyTorch: epoch 0 of its closed form)
        scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def get_lr(self) -> list[float]:
        return self.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "last_epoch", "milestones", "last_lr", "schedulers": [each one's state dict]}``."""
        return {"type": self.name, "last_epoch": self.last_epoch, "milestones": list(self._milestones),
                "last_lr": [float(x) for x in self._last_lr], "step_count": self._step_count,
                "schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        what = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, Mapping) or state_dict.get("type", self.name) != self.name:
            raise ModelFormatError(f"{what}: expected the state dict of a SequentialLR, got "
                                   f"{state_dict.get('type') if isinstance(state_dict, Mapping) else type(state_dict).__name__}")
        subs, milestones = state_dict.get("schedulers"), state_dict.get("milestones")
        if not isinstance(subs, (list, tuple)) or len(subs) != len(self._schedulers):
            raise ModelFormatError(f"{what}: expected {len(self._schedulers)} scheduler state dicts, got {subs!r}")
        if list(milestones or []) != self._milestones:
            raise ModelFormatError(f"{what}: the state dict's milestones {milestones!r} differ from this "
                                   f"scheduler's {self._milestones}")
        last_epoch = state_dict.get("last_epoch")
        if not _is_int(last_epoch) or last_epoch < 0:
            raise ModelFormatError(f"{what}: last_epoch must be an integer >= 0, got {last_epoch!r}")
        for s, sd in zip(self._schedulers, subs):
            s.load_state_dict(sd)
        self.last_epoch = int(last_epoch)
        self._last_lr = [float(x) for x in state_dict.get("last_lr", [])]
        self._step_count = int(state_dict.get("step_count", self.last_epoch + 1))

    def __repr__(self) -> str:
        return f"{self.name}({self._schedulers!r}, milestones={self._milestones}, last_epoch={self.last_epoch})"


class ReduceLROnPlateau(LRScheduler):
    """Lower the learning rate by ``factor`` when a metric stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``: call ``step(metric)`` once an epoch (e.g. with the
    validation loss). After more than ``patience`` epochs without an improvement (``mode`` "min": lower by
    more than ``threshold``, relative (``threshold_mode="rel"``) or absolute ("abs"); "max": higher), every
    group's lr becomes ``max(lr * factor, min_lr)`` (a change smaller than ``eps`` is skipped), then
    ``cooldown`` epochs pass before counting again. Its state dict is JSON-able.
    """

    _settings = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lrs", "eps")

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: Union[float, Sequence[float]] = 0, eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"{self.name}: optimizer must be a gpucnn.optim.Optimizer, got "
                                f"{type(optimizer).__name__}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ArgumentError(f"{self.name}: expected {n} min_lrs (one per parameter group), got {len(min_lr)}")
            min_lrs = list(min_lr)
        else:
            min_lrs = [min_lr] * n
        settings = {"mode": mode, "factor": factor, "patience": patience, "threshold": threshold,
                    "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lrs": min_lrs, "eps": eps}
        self._check(settings)
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode, self.cooldown = float(threshold), threshold_mode, int(cooldown)
        self.min_lrs, self.eps = [float(m) for m in min_lrs], float(eps)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0
        self._step_count = 0
        self._last_lr = [float(g["lr"]) for g in optimizer.param_groups]
        self.best = self._worse()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _check(self, s: Mapping[str, Any]) -> None:
        if s["mode"] not in ("min", "max"):
            self._bad("mode", s["mode"], "'min' or 'max'")
        if s["threshold_mode"] not in ("rel", "abs"):
            self._bad("threshold_mode", s["threshold_mode"], "'rel' or 'abs'")
        if not _is_real(s["factor"]) or not 0 <= s["factor"] < 1:
            self._bad("factor", s["factor"], "a number in [0, 1) (the lr is multiplied by it)")
        for k in ("patience", "cooldown"):
            if not _is_int(s[k]) or s[k] < 0:
                self._bad(k, s[k], "an integer >= 0 (epochs)")
        for k in ("threshold", "eps"):
            if not _is_real(s[k]) or s[k] < 0:
                self._bad(k, s[k], "a number >= 0")
        if not isinstance(s["min_lrs"], list) or not all(_is_real(m) and m >= 0 for m in s["min_lrs"]):
            self._bad("min_lr", s["min_lrs"], "a number >= 0 or a list of them (one per parameter group)")

    def _worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def is_better(self, a: float, best: float) -> bool:
        """Whether ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return a < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        """Record this epoch's ``metrics`` (a number, or a 0-d tensor) and lower the lr if it stalled."""
        if metrics is None:
            raise ArgumentError(f"{self.name}.step needs the metric to watch, e.g. scheduler.step(val_loss)")
        if hasattr(metrics, "item"):
            metrics = metrics.item()
        if isinstance(metrics, bool) or not isinstance(metrics, numbers.Real):
            raise ArgumentError(f"{self.name}.step: metrics must be a number, got {metrics!r}")
        current = float(metrics)
        self._step_count += 1
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        return self.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """The settings and the counters; ``best`` is None while no metric was seen (JSON has no inf)."""
        sd = super().state_dict()
        sd.update(best=None if math.isinf(self.best) else self.best, num_bad_epochs=self.num_bad_epochs,
                  cooldown_counter=self.cooldown_counter)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        what = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ModelFormatError(f"{what}: expected a dict, got {type(state_dict).__name__}")
        saved = dict(state_dict)
        saved.setdefault("base_lrs", self.base_lrs)
        best = saved.get("best")
        counters = [saved.get(k, 0) for k in ("num_bad_epochs", "cooldown_counter")]
        if not (best is None or _is_real(best)) or not all(_is_int(c) and c >= 0 for c in counters):
            raise ModelFormatError(f"{what}: best must be a number or null and num_bad_epochs, cooldown_counter "
                                   f"integers >= 0, got {best!r}, {counters}")
        super().load_state_dict(saved)
        self.mode = str(self.mode)
        self.factor, self.threshold, self.eps = float(self.factor), float(self.threshold), float(self.eps)
        self.min_lrs = [float(m) for m in self.min_lrs]
        self.best = self._worse() if best is None else float(best)
        self.num_bad_epochs, self.cooldown_counter = int(counters[0]), int(counters[1])
