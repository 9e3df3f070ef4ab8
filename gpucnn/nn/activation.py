"""Activation modules, like ``torch.nn``'s: ``nn.ELU(alpha=1.0)``, ``nn.GELU(approximate="tanh")``, ...

Each module is made from its functional's definition (:data:`gpucnn.functions.activation.ACTIVATIONS`):
the constructor takes the functional's arguments after ``input`` (PyTorch's names, order and defaults),
keeps them as attributes (``act.negative_slope``; changing one later takes effect, as in PyTorch),
``forward(x)`` is ``functional(x, **arguments)``, ``config()`` returns them, and the class is in the
layer registry, so ``{"type": "GELU", "approximate": "tanh"}`` names it in a JSON/TOML model spec. A
new activation is one :class:`~gpucnn.functions.activation.Elementwise` definition; nothing here changes.

:class:`PReLU` holds a learnable parameter and is written out. ReLU, Softmax, LogSoftmax and Dropout are
in :mod:`gpucnn.nn.layers`.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable

import numpy as np

from ..errors import ArgumentError
from ..functions.activation import ACTIVATIONS, prelu
from ..tensor import Tensor
from . import init
from .module import Module, Parameter
from .registry import register_layer

#: the model-spec kind of an argument, from the type of its default
_KIND = {bool: "bool", float: "number", int: "number", str: "str"}


class Activation(Module):
    """Base of the generated activation modules: ``forward(x) = functional(x, **arguments)``."""

    _functional: Callable[..., Any]
    _arguments: inspect.Signature = inspect.Signature()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        name = type(self).__name__
        try:
            bound = self._arguments.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}: {e} (arguments: {', '.join(self._arguments.parameters) or 'none'})") from None
        bound.apply_defaults()
        for arg, value in bound.arguments.items():
            setattr(self, arg, value)
        if self._arguments.parameters:  # (bad values fail here, naming the layer, not at the first forward)
            self._checked_call(None)

    def _checked_call(self, x: Any) -> Any:
        """The functional on ``x`` (None: only check the arguments, on a one-element probe)."""
        probe = x is None
        if probe:
            from ..tensor import tensor
            x = tensor([0.0])
        try:
            return self._functional(x, **self.arguments())
        except ArgumentError as e:
            if probe:
                raise ArgumentError(f"{type(self).__name__}: {str(e).split(': ', 1)[-1]}") from None
            raise

    def arguments(self) -> dict[str, Any]:
        """The functional's arguments, as this module holds them now."""
        return {k: getattr(self, k) for k in self._arguments.parameters}

    def forward(self, x: Tensor) -> Tensor:
        return self._checked_call(x)

    def extra_repr(self) -> str:
        # PyTorch's: the arguments, and inplace only when it is on
        return ", ".join(f"{k}={v!r}" for k, v in self.arguments().items() if k != "inplace" or v)

    def config(self) -> dict:
        return {k: (float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else v)
                for k, v in self.arguments().items()}


def _module_class(name: str, functional: Callable[..., Any]) -> type:
    parameters = list(inspect.signature(functional).parameters.values())[1:]
    arguments = inspect.Signature([p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters])
    doc = (functional.__doc__ or "").strip().split("\n\n")[0]
    cls = type(name, (Activation,), {
        "__module__": __name__, "__qualname__": name,
        "__doc__": f"{doc}\n\nThe module of :func:`gpucnn.nn.functional.{functional.__name__}` "
                   f"(``torch.nn.{name}``); arguments: {', '.join(map(str, parameters)) or 'none'}.",
        "_functional": staticmethod(functional), "_arguments": arguments,
        "config_schema": {p.name: _KIND.get(type(p.default), "any") for p in parameters},
    })
    cls.__signature__ = arguments  # type: ignore[attr-defined]  (what help() and the registry see)
    return register_layer(cls)


_GENERATED = {name: _module_class(name, functional) for name, functional in ACTIVATIONS.items()}
globals().update(_GENERATED)


@register_layer
class PReLU(Module):
    """``max(0, x) + weight * min(0, x)`` with a learned ``weight``: one slope (``num_parameters=1``) or one
    per channel (dim 1 of the input), initialised to ``init`` (``torch.nn.PReLU``)."""
    config_schema = {"num_parameters": "int", "init": "number"}

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (numbers.Integral, np.integer)) \
                or num_parameters < 1:
            raise ArgumentError(f"PReLU: num_parameters must be an integer >= 1, got {num_parameters!r}")
        if isinstance(init, bool) or not isinstance(init, numbers.Real) or not math.isfinite(float(init)):
            raise ArgumentError(f"PReLU: init must be a finite number, got {init!r}")
        self.num_parameters, self.init = int(num_parameters), float(init)
        self.weight = Parameter(np.full((self.num_parameters,), self.init, dtype=dtype or np.float32))
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return prelu(x, self.weight)

    def short_description(self) -> str:
        return f"{self.num_parameters} parameter{'s' if self.num_parameters != 1 else ''}"

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    def config(self) -> dict:
        return {"num_parameters": self.num_parameters, "init": self.init}


__all__ = ["Activation", "PReLU", *_GENERATED]
