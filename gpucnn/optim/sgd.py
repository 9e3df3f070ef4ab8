"""Stochastic gradient descent with (Nesterov) momentum: PyTorch's ``torch.optim.SGD`` algorithm."""
from __future__ import annotations

from typing import Any

from ..errors import ArgumentError
from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum, exactly as ``torch.optim.SGD``::

        g = -grad if maximize else grad
        g = g + weight_decay * p                         # if weight_decay != 0
        if momentum != 0:
            buf = g  (first step)   |   buf = momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g

    Nesterov momentum needs ``momentum > 0`` and ``dampening == 0``.
    """

    _buffers = ("momentum_buffer",)

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any], where: str) -> None:
        self._check_real(group, where, "lr")
        self._check_real(group, where, "momentum")
        self._check_real(group, where, "dampening")
        self._check_real(group, where, "weight_decay")
        self._check_bool(group, where, "nesterov")
        self._check_bool(group, where, "maximize")
        if group["nesterov"] and (float(group["momentum"]) <= 0 or float(group["dampening"]) != 0):
            raise ArgumentError(f"{where}: nesterov=True requires momentum > 0 and dampening == 0, got "
                                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], hp: dict[str, Any]) -> None:
        lr, momentum, dampening, weight_decay = hp["lr"], hp["momentum"], hp["dampening"], hp["weight_decay"]
        data = p.data
        state["step"] = state.get("step", 0) + 1
        g = -grad if hp["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += g if dampening == 0 else (1 - dampening) * g  # (1 - 0) * g is g: no temporary
            g = g + momentum * buf if hp["nesterov"] else buf
        data -= lr * g
