"""Loss scaling for float16 training: ``gpucnn.amp.GradScaler``, PyTorch's ``torch.amp.GradScaler``.

float16 has 5 exponent bits: gradients below ~6e-8 flush to zero. Multiplying the loss by a large scale S
before ``backward()`` shifts every gradient up by S; :meth:`GradScaler.unscale_` divides it out of the
(float32 master) gradients before the optimizer sees them. When S was too large some gradient overflows to
inf or NaN: then the step is skipped and S shrinks (``backoff_factor``); after ``growth_interval`` clean
steps in a row it grows again (``growth_factor``). bfloat16 has float32's exponent range and needs none
of this.

The usual loop, as in PyTorch::

    scaler = gpucnn.amp.GradScaler("cpu")
    for x, y in loader:
        optimizer.zero_grad()
        with gpucnn.amp.autocast("cpu", dtype=gpucnn.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)                  # optional: clip the true gradients here
        gpucnn.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)                      # skipped when a gradient is inf/NaN
        scaler.update()

The scale and the growth tracker live on the host as float32 and int (PyTorch keeps them in 0-d device
tensors). One host synchronisation per step remains, as in PyTorch: whether a gradient was non-finite
decides whether ``optimizer.step()`` runs. The arithmetic is PyTorch's, step for step: the scale is a
float32 multiplied by float32 factors, the inverse scale the float32 of the float64 reciprocal, the
non-finite check made on the gradients before they are unscaled.
"""
from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from ..backend import cuda_available
from ..errors import ArgumentError, GpucnnError
from ..function import no_grad
from ..tensor import Tensor


class GradScalerError(GpucnnError, RuntimeError):
    """A GradScaler method called out of order (``unscale_`` twice in a step, ``step`` twice, ...)."""


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


class GradScaler:
    """Dynamic loss scaling with PyTorch's defaults and semantics (see the module docstring).

    ``device``: the device type the scaled losses live on (PyTorch's argument; as there, a ``"cuda"``
    scaler on a machine without a GPU warns and disables itself). ``enabled=False`` makes every method a
    pass-through, so one training loop serves float32, bfloat16 and float16 runs.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device.split(":")[0] == "cuda" and not cuda_available():
            warnings.warn("gpucnn.amp.GradScaler is enabled for device 'cuda', but CUDA is not available. "
                          "Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            if not growth_factor > 1.0:
                raise ArgumentError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor!r}")
            if not 0.0 < backoff_factor < 1.0:
                raise ArgumentError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor!r}")
            if isinstance(growth_interval, bool) or not isinstance(growth_interval, (int, np.integer)) \
                    or growth_interval < 1:
                raise ArgumentError(f"GradScaler: growth_interval must be an integer >= 1, got {growth_interval!r}")
            if not (np.isfinite(init_scale) and init_scale > 0):
                raise ArgumentError(f"GradScaler: init_scale must be a positive finite number, got {init_scale!r}")
        self._scale = np.float32(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._started = False  # PyTorch creates its scale tensor at the first scale(): the same checks
        self._stages: dict[int, _Stage] = {}
        self._found_inf: dict[int, bool] = {}

    # -- the three calls of a step ------------------------------------------------------------------
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a Tensor, or a list/tuple/iterable of them, nested) multiplied by the scale."""
        if not self._enabled:
            return outputs
        self._started = True
        if isinstance(outputs, Tensor):
            return outputs * self._scale_tensor(outputs)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(v) for v in outputs)
        if isinstance(outputs, Iterable) and not isinstance(outputs, (str, bytes)):
            return map(self.scale, outputs)
        raise ArgumentError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, "
                            f"got {type(outputs).__name__}")

    def unscale_(self, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is inf/NaN.

        At most once per optimizer between two :meth:`update` calls, and before :meth:`step`; call it
        to see true gradients (clipping) before stepping."""
        if not self._enabled:
            return
        self._require_started("unscale_")
        stage = self._stages.get(id(optimizer), _Stage.READY)
        if stage is _Stage.UNSCALED:
            raise GradScalerError("GradScaler.unscale_() has already been called on this optimizer since the "
                                  "last update()")
        if stage is _Stage.STEPPED:
            raise GradScalerError("GradScaler.unscale_() is being called after step() (call update() first)")
        inv_scale = np.float32(1.0 / np.float64(self._scale))
        flags = []
        with no_grad():
            for g, (gi, p) in self._gradients(optimizer):
                if p.grad.dtype == np.float16:
                    raise ArgumentError(
                        f"GradScaler.unscale_: parameter {gi} of {type(optimizer).__name__} has float16 "
                        f"gradients (shape {p.shape}); keep the master weights in float32 and let autocast "
                        f"run the ops in float16 (PyTorch refuses this too: 'Attempting to unscale FP16 "
                        f"gradients.')")
                xp = p.device.xp
                data = g.data
                flags.append(xp.logical_not(xp.isfinite(data)).any())  # (before unscaling, as PyTorch)
                # A new array (a gradient may be a read-only view); bfloat16 is multiplied in float32 and
                # rounded once, as PyTorch's kernel does.
                g.data = (data * inv_scale).astype(data.dtype, copy=False)
        # One host sync per optimizer (PyTorch's .item() in step): the flags stay on the device until here.
        self._found_inf[id(optimizer)] = any(bool(f) for f in flags)
        self._stages[id(optimizer)] = _Stage.UNSCALED

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``unscale_(optimizer)`` unless done, then ``optimizer.step(*args, **kwargs)`` unless a gradient
        was inf/NaN; returns what ``optimizer.step`` returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise GradScalerError("GradScaler.step: closures are not supported while the scaler is enabled "
                                  "(as in PyTorch)")
        self._require_started("step")
        stage = self._stages.get(id(optimizer), _Stage.READY)
        if stage is _Stage.STEPPED:
            raise GradScalerError("GradScaler.step() has already been called since the last update()")
        if stage is _Stage.READY:
            self.unscale_(optimizer)
        retval = None
        if not self._found_inf[id(optimizer)]:
            retval = optimizer.step(*args, **kwargs)
        self._stages[id(optimizer)] = _Stage.STEPPED
        return retval

    def update(self, new_scale: Optional[Any] = None) -> None:
        """End the step: back the scale off if any optimizer saw inf/NaN, grow it after
        ``growth_interval`` clean steps in a row; or set it to ``new_scale`` (a float or 1-element tensor)."""
        if not self._enabled:
            return
        self._require_started("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise ArgumentError("GradScaler.update: new_scale must be a float or a 1-element tensor "
                                        f"that does not require grad, got shape {new_scale.shape}")
                new_scale = new_scale.item()
            if isinstance(new_scale, bool) or not isinstance(new_scale, (float, int, np.floating)):
                raise ArgumentError(f"GradScaler.update: new_scale must be a float or a 1-element tensor, "
                                    f"got {type(new_scale).__name__}")
            self._scale = np.float32(new_scale)
        else:
            if not self._found_inf:
                raise GradScalerError("GradScaler.update: no inf checks were recorded before update() "
                                      "(call step(optimizer) or unscale_(optimizer) first)")
            if any(self._found_inf.values()):  # PyTorch's _amp_update_scale_, in float32
                self._scale = np.float32(self._scale * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    grown = np.float32(self._scale * np.float32(self._growth_factor))
                    if np.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._stages.clear()
        self._found_inf.clear()

    # -- state ------------------------------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled)."""
        return float(self._scale) if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's five entries (JSON-able): scale, growth_factor, backoff_factor, growth_interval,
        _growth_tracker; empty when disabled. Take it after :meth:`update`."""
        if not self._enabled:
            return {}
        return {"scale": float(self._scale), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s entries (a no-op when disabled)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise GradScalerError("GradScaler.load_state_dict: the state dict is empty, possibly because it was "
                                  "saved from a disabled GradScaler")
        missing = [k for k in ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
                   if k not in state_dict]
        if missing:
            raise ArgumentError(f"GradScaler.load_state_dict: missing {', '.join(missing)} "
                                f"(got {', '.join(sorted(state_dict)) or 'nothing'})")
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    def __repr__(self) -> str:
        if not self._enabled:
            return "GradScaler(enabled=False)"
        return (f"GradScaler(device={self._device!r}, scale={float(self._scale):g}, growth_factor="
                f"{self._growth_factor:g}, backoff_factor={self._backoff_factor:g}, "
                f"growth_interval={self._growth_interval})")

    # -- helpers ------------------------------------------------------------------------------------------
    def _scale_tensor(self, like: Tensor) -> Tensor:
        return Tensor._wrap(like.device.asarray(np.asarray(self._scale)), like.device)

    def _require_started(self, method: str) -> None:
        if not self._started:
            raise GradScalerError(f"GradScaler.{method}() before any scale(): scale the loss first "
                                  f"(scaler.scale(loss).backward())")

    @staticmethod
    def _gradients(optimizer: Any) -> Iterable[tuple[Tensor, tuple[int, Tensor]]]:
        """(gradient tensor, (index, parameter)) for each parameter of ``optimizer`` with a gradient."""
        i = 0
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield p.grad, (i, p)
                i += 1
