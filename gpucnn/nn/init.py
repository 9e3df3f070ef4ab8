"""Parameter initialisation, as ``torch.nn.init`` (in place, on the host generator).

Every draw uses :func:`gpucnn.random.host_generator`, so ``gpucnn.manual_seed(s)`` followed by building
a model gives the same weights on every device. Values are drawn in float64 and cast to the tensor's
dtype (float32 by default).

Layers' defaults are PyTorch's: Conv/Linear weights ``kaiming_uniform_(w, a=sqrt(5))`` (uniform in
``+-1/sqrt(fan_in)``), biases uniform in ``+-1/sqrt(fan_in)``, BatchNorm weight 1 and bias 0.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import ArgumentError, ModelFormatError
from ..random import host_generator
from ..tensor import Tensor


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    tensor.data = tensor.device.asarray(values.astype(tensor.dtype, copy=False))
    return tensor


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Linear (out, in); Conv (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ArgumentError(f"fan in and fan out need a tensor of rank >= 2, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ArgumentError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(tensor, host_generator().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, host_generator().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, np.full(tensor.shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """Uniform in +-gain*sqrt(3/fan) (He et al.); ``a=sqrt(5)`` gives PyTorch's layer default 1/sqrt(fan_in)."""
    fan = _fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(max(fan, 1))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    fan = _fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(max(fan, 1)))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)))


# -- building without initialising (how gpucnn.load builds a model before loading its weights) ------
_skip = threading.local()


@contextlib.contextmanager
def skip_init(max_elements: Optional[int] = None, source: str = "") -> Iterator[None]:
    """Build modules with zero-filled parameters and no random draws (the weights are loaded next).

    With ``max_elements``, creating parameters holding more values than that in all raises
    :class:`ModelFormatError` before allocating them: a saved file's architecture cannot make ``load``
    allocate more than the file stores.
    """
    previous = getattr(_skip, "state", None)
    _skip.state = {"left": max_elements, "source": source}
    try:
        yield
    finally:
        _skip.state = previous


def initializing() -> bool:
    """False inside :func:`skip_init` (layers then skip ``reset_parameters``)."""
    return getattr(_skip, "state", None) is None


def empty(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """A zero-filled array for a new parameter (counted against :func:`skip_init`'s budget)."""
    shape = tuple(int(s) for s in shape)
    state = getattr(_skip, "state", None)
    if state is not None and state["left"] is not None:
        n = 1
        for s in shape:
            n *= s
        if n > state["left"]:
            where = f"{state['source']}: " if state["source"] else ""
            raise ModelFormatError(f"{where}the architecture needs more parameter values than the file "
                                   f"stores (a parameter of shape {shape} does not fit)")
        state["left"] -= n
    return np.zeros(shape, dtype=dtype)
