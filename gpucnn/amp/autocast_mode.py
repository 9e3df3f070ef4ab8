"""``gpucnn.amp.autocast``: run each op in the dtype PyTorch's autocast would pick for it.

Inside ``with autocast("cpu", dtype=gpucnn.bfloat16):`` (or ``"cuda"``/``"emu"``, ``float16``), every op
declares a policy (``Function.autocast``, or :func:`cast_inputs` in a functional that routes before its
Function runs) and its floating-point inputs on that device type are cast first, as in PyTorch:

- ``"lower"``: to the autocast dtype. The GEMMs: convolutions, ``linear``, ``matmul`` - the ops the tensor
  cores speed up and whose FP32 accumulation keeps them accurate.
- ``"fp32"``: to float32. Ops whose result needs float32's range or precision: ``exp``, ``log``, ``pow``,
  ``sum``, norms, softmax/log_softmax, the losses.
- no policy: the op runs in its inputs' dtype, and binary ops promote to the widest input (PyTorch's type
  promotion, which gpucnn's ops already follow), so a float16 activation plus a float32 bias is float32.

float64 tensors and non-floating ones are never cast (PyTorch's eligibility rule). The casts are ops of the
graph: the gradients of float32 master weights come back in float32. Nested regions and
``enabled=False`` inside one work; the state is per thread, as in PyTorch.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar

import numpy as np

from .. import dtypes
from ..errors import ArgumentError

DEVICE_TYPES = ("cpu", "cuda", "emu")
#: PyTorch's defaults: float16 on CUDA (and our emulator of it), bfloat16 on the CPU
DEFAULT_DTYPES = {"cpu": dtypes.bfloat16, "cuda": dtypes.float16, "emu": dtypes.float16}
LOW_DTYPES = (dtypes.float16, dtypes.bfloat16)
#: the short names of the CLI's ``--amp`` and ``Trainer(amp=...)``
AMP_NAMES = {"fp16": dtypes.float16, "bf16": dtypes.bfloat16}
POLICIES = ("lower", "fp32")

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    def __init__(self) -> None:
        self.dtypes: dict[str, Optional[np.dtype]] = {}  # device type -> active dtype (None: disabled)
        self.cache: dict[tuple, tuple[Any, int, Any]] = {}  # (id(leaf), dtype, grad mode) -> (leaf, version, cast)
        self.cache_on = True  # the innermost region's cache_enabled
        self.depth = 0


_state = _State()
#: any region entered in any thread (a cheap first test for Function.__call__; the thread-local state decides)
active = False


def _check_device_type(device_type: Any, where: str) -> str:
    name = str(device_type).split(":")[0].lower() if isinstance(device_type, str) else None
    if name not in DEVICE_TYPES:
        raise ArgumentError(f"{where}: device_type must be one of {', '.join(map(repr, DEVICE_TYPES))}, "
                            f"got {device_type!r}")
    return name


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether an autocast region for ``device_type`` is active in this thread."""
    return _state.dtypes.get(_check_device_type(device_type, "is_autocast_enabled")) is not None


def get_autocast_dtype(device_type: str) -> np.dtype:
    """The dtype autocast uses for ``device_type`` now (its default outside a region)."""
    name = _check_device_type(device_type, "get_autocast_dtype")
    return _state.dtypes.get(name) or DEFAULT_DTYPES[name]


class autocast:
    """Context manager and decorator: ops on ``device_type`` tensors run in autocast's dtypes.

    ``autocast(device_type, dtype=None, enabled=True, cache_enabled=True)``, PyTorch's signature: ``dtype``
    is float16 or bfloat16 (default: float16 for cuda/emu, bfloat16 for cpu). ``cache_enabled`` keeps one
    cast of each leaf tensor (a weight) per outermost region, so a weight used twice is cast once.
    """

    def __init__(self, device_type: str, dtype: Any = None, enabled: bool = True,
                 cache_enabled: Optional[bool] = True) -> None:
        self.device_type = _check_device_type(device_type, "autocast")
        if dtype is None:
            dtype = DEFAULT_DTYPES[self.device_type]
        try:
            low = dtypes.as_dtype(dtype, "autocast dtype")
        except Exception:
            low = None
        if low not in LOW_DTYPES:
            raise ArgumentError(f"autocast: dtype must be gpucnn.float16 or gpucnn.bfloat16, got {dtype!r}")
        if not isinstance(enabled, (bool, np.bool_)):
            raise ArgumentError(f"autocast: enabled must be True or False, got {enabled!r}")
        self.fast_dtype = low
        self.enabled = bool(enabled)
        self.cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._saved: list[tuple[Optional[np.dtype], bool]] = []

    def __enter__(self) -> "autocast":
        global active
        self._saved.append((_state.dtypes.get(self.device_type), _state.cache_on))
        _state.dtypes[self.device_type] = self.fast_dtype if self.enabled else None
        _state.cache_on = self.cache_enabled
        _state.depth += 1
        active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.dtypes[self.device_type], _state.cache_on = self._saved.pop()
        _state.depth -= 1
        if _state.depth == 0:
            _state.cache.clear()  # casts of weights must not outlive the region (the weights change)

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device_type, self.fast_dtype, self.enabled, self.cache_enabled):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"autocast({self.device_type!r}, dtype={self.fast_dtype}, enabled={self.enabled})"


class AutocastError(ArgumentError):
    """An op that autocast refuses to run (PyTorch's list of ops unsafe to autocast)."""


def autocast_function(policy: str) -> Callable[[F], F]:
    """Decorator for a public function whose tensor arguments are cast by ``policy`` before it runs
    (``"lower"``, ``"fp32"``, or ``"banned"``: refused inside a region, as PyTorch refuses
    binary_cross_entropy). For functionals that check or combine their arguments before any op
    (convolutions, the losses); an op that is one Function declares ``Function.autocast`` instead."""
    if policy not in POLICIES + ("banned",):
        raise ValueError(f"autocast_function: unknown policy {policy!r}")

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if active:
                if policy == "banned":
                    _refuse(fn.__name__, list(args) + list(kwargs.values()))
                else:
                    args = cast_inputs(policy, args)
                    kwargs = dict(zip(kwargs, cast_inputs(policy, tuple(kwargs.values()))))
            return fn(*args, **kwargs)
        wrapper.autocast = policy  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]
    return deco


def _refuse(name: str, args: Sequence[Any]) -> None:
    from ..tensor import Tensor

    for t in args:
        if isinstance(t, Tensor) and _state.dtypes.get(t.device.name) is not None:
            raise AutocastError(
                f"{name} is unsafe to autocast (as in PyTorch): a sigmoid before it in 16 bits loses the "
                f"probabilities near 0 and 1; use binary_cross_entropy_with_logits (nn.BCEWithLogitsLoss) on the "
                f"logits, which autocast runs in float32, or leave the autocast region for this loss")


def _eligible(t: Any) -> bool:
    """PyTorch's rule: floating-point, and not float64."""
    return t is not None and hasattr(t, "dtype") and dtypes.is_floating_point(t.dtype) \
        and t.dtype != np.float64


def cast_inputs(policy: Optional[str], inputs: Sequence[Any]) -> tuple:
    """``inputs`` cast as ``policy`` says for the autocast region active for their device (unchanged
    outside one, or for tensors on another device type). Differentiable: the casts are graph ops."""
    if policy is None or not active:
        return tuple(inputs)
    from ..function import is_grad_enabled
    from ..tensor import Tensor

    out = []
    cache = _state.cache
    for t in inputs:
        if not isinstance(t, Tensor) or not _eligible(t):
            out.append(t)
            continue
        low = _state.dtypes.get(t.device.name)
        if low is None:
            out.append(t)
            continue
        target = low if policy == "lower" else np.dtype(np.float32)
        if t.dtype == target:
            out.append(t)
            continue
        # A leaf that requires grad (a weight): cast once per region (and grad mode: a cast made under
        # no_grad has no graph); anything else every time. The version check sees in-place updates.
        if _state.cache_on and t._ctx is None and t.requires_grad and policy == "lower":
            key = (id(t), target, is_grad_enabled())
            hit = cache.get(key)
            if hit is not None and hit[0] is t and hit[1] == t._version:
                out.append(hit[2])
                continue
            cast = t.to(target)
            cache[key] = (t, t._version, cast)
            out.append(cast)
            continue
        out.append(t.to(target))
    return tuple(out)
