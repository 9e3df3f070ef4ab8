"""Loss modules, like ``torch.nn``'s: ``criterion = nn.CrossEntropyLoss(); loss = criterion(logits, y)``.

Each is one class statement naming its functional and PyTorch's constructor arguments (in PyTorch's
order, with PyTorch's defaults); :class:`Loss` does the rest::

    class MSELoss(Loss, functional=F.mse_loss, size_average=None, reduce=None, reduction="mean"):
        \"\"\"Mean squared error (``torch.nn.MSELoss``).\"\"\"

- The arguments the functional takes are kept as attributes (``criterion.reduction``) and passed to it
  on every call, so changing ``criterion.reduction`` later takes effect, as in PyTorch.
- An argument the functional does not take (yet) is accepted at its default value only: any other value
  raises :class:`ArgumentError` naming it, never silently computing another loss.
- ``weight`` and ``pos_weight`` are buffers, as in PyTorch (in ``state_dict()`` when given, moved by
  ``to()``).
- PyTorch's deprecated ``size_average``/``reduce`` are mapped to ``reduction`` with PyTorch's rule and
  warning.
"""
from __future__ import annotations

import inspect
import numbers
import warnings
from typing import Any, Callable

from ..errors import ArgumentError
from ..functions import loss as F
from ..functions.loss import legacy_reduction as _legacy_reduction
from ..tensor import Tensor
from .module import Module

#: the arguments PyTorch registers as buffers
_BUFFERS = ("weight", "pos_weight")
#: PyTorch's deprecated arguments, folded into ``reduction``
_LEGACY = ("size_average", "reduce")


def _is_default(value: Any, default: Any) -> bool:
    """Whether ``value`` is PyTorch's default (``-100`` and ``0`` are; ``True`` is not ``1``)."""
    if default is None or isinstance(value, Tensor):
        return value is default
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    return isinstance(value, (numbers.Real, str)) and value == default


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {value.shape}"
    return repr(value)


class Loss(Module):
    """Base of the loss modules: ``forward(input, target)`` is ``functional(input, target, **arguments)``.

    A subclass names its functional and PyTorch's constructor arguments with their defaults as class
    keywords (see the module docstring); the constructor then takes exactly those arguments.
    """

    _functional: Callable[..., Any]
    _arguments: inspect.Signature = inspect.Signature()
    _passed: tuple[str, ...] = ()  # the arguments the functional takes

    def __init_subclass__(cls, functional: Callable[..., Any] = None, **arguments: Any) -> None:  # type: ignore[assignment]
        super().__init_subclass__()
        if functional is None:
            return  # a subclass of a loss: inherits its functional and arguments
        cls._functional = staticmethod(functional)  # type: ignore[assignment]
        cls._arguments = inspect.Signature([inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
                                            for k, v in arguments.items()])
        cls.__signature__ = cls._arguments  # type: ignore[attr-defined]  (what help() and inspect show)
        takes = inspect.signature(functional).parameters
        cls._passed = tuple(k for k in arguments if k in takes and k not in _LEGACY)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        name = type(self).__name__
        try:
            bound = self._arguments.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}: {e} (arguments: {', '.join(self._arguments.parameters)})") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        legacy = [values.pop(k, None) for k in _LEGACY]
        if any(v is not None for v in legacy):
            values["reduction"] = _legacy_reduction(*legacy)
            warnings.warn(f"size_average and reduce args will be deprecated, please use "
                          f"reduction='{values['reduction']}' instead.", UserWarning, stacklevel=2)
        functional = f"gpucnn.functional.{self._functional.__name__}"
        for arg, value in values.items():
            default = self._arguments.parameters[arg].default
            if arg not in self._passed and not _is_default(value, default):
                supported = ", ".join(self._passed) or "no arguments"
                raise ArgumentError(f"{name}: {arg}={_describe(value)} is not supported ({functional} takes "
                                    f"{supported}); leave {arg} at PyTorch's default {default!r}")
            if arg in _BUFFERS:
                self.register_buffer(arg, value)
            else:
                setattr(self, arg, value)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return self._functional(input, target, **{k: getattr(self, k) for k in self._passed})


class CrossEntropyLoss(Loss, functional=F.cross_entropy, weight=None, size_average=None, ignore_index=-100,
                       reduce=None, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits ``(N, C)`` / ``(N, C, d1, ...)`` against class indices or class
    probabilities (``torch.nn.CrossEntropyLoss``; :func:`gpucnn.nn.functional.cross_entropy`)."""


class NLLLoss(Loss, functional=F.nll_loss, weight=None, size_average=None, ignore_index=-100, reduce=None,
              reduction="mean"):
    """Negative log-likelihood of log-probabilities (``torch.nn.NLLLoss``; :func:`gpucnn.nn.functional.nll_loss`)."""


class MSELoss(Loss, functional=F.mse_loss, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error (``torch.nn.MSELoss``; :func:`gpucnn.nn.functional.mse_loss`)."""


class L1Loss(Loss, functional=F.l1_loss, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error (``torch.nn.L1Loss``; :func:`gpucnn.nn.functional.l1_loss`)."""


class SmoothL1Loss(Loss, functional=F.smooth_l1_loss, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Quadratic below ``beta``, linear above (``torch.nn.SmoothL1Loss``; :func:`gpucnn.nn.functional.smooth_l1_loss`)."""


class HuberLoss(Loss, functional=F.huber_loss, reduction="mean", delta=1.0):
    """Quadratic below ``delta``, linear above (``torch.nn.HuberLoss``; :func:`gpucnn.nn.functional.huber_loss`)."""


class BCELoss(Loss, functional=F.binary_cross_entropy, weight=None, size_average=None, reduce=None,
              reduction="mean"):
    """Binary cross-entropy of probabilities (``torch.nn.BCELoss``;
    :func:`gpucnn.nn.functional.binary_cross_entropy`)."""


class BCEWithLogitsLoss(Loss, functional=F.binary_cross_entropy_with_logits, weight=None, size_average=None,
                        reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid and binary cross-entropy in one stable step (``torch.nn.BCEWithLogitsLoss``;
    :func:`gpucnn.nn.functional.binary_cross_entropy_with_logits`)."""


class KLDivLoss(Loss, functional=F.kl_div, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of log-probabilities (``torch.nn.KLDivLoss``; :func:`gpucnn.nn.functional.kl_div`)."""


__all__ = ["Loss", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss"]
