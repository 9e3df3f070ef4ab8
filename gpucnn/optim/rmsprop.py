"""RMSprop: PyTorch's ``torch.optim.RMSprop`` algorithm."""
from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from .optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), exactly as ``torch.optim.RMSprop``::

        g = -grad if maximize else grad
        g = g + weight_decay * p                       # if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - gbar**2) + eps  with gbar = alpha * gbar + (1 - alpha) * g   (centered)
        avg = sqrt(v) + eps                                                          (otherwise)
        buf = momentum * buf + g / avg; p -= lr * buf    (momentum > 0)
        p -= lr * g / avg                                (otherwise)

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg``
    (centered).
    """

    _buffers = ("square_avg", "momentum_buffer", "grad_avg")
    _required_buffers = ("square_avg",)

    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any], where: str) -> None:
        self._check_real(group, where, "lr")
        self._check_real(group, where, "alpha", high=1.0, high_inclusive=True)
        self._check_real(group, where, "eps", low_inclusive=False)
        self._check_real(group, where, "weight_decay")
        self._check_real(group, where, "momentum")
        self._check_bool(group, where, "centered")
        self._check_bool(group, where, "maximize")

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], hp: dict[str, Any]) -> None:
        xp = p.device.xp
        data = p.data
        lr, alpha, eps, weight_decay, momentum = (hp["lr"], hp["alpha"], hp["eps"], hp["weight_decay"],
                                                  hp["momentum"])
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(data)
        if momentum > 0 and state.get("momentum_buffer") is None:
            state["momentum_buffer"] = xp.zeros_like(data)
        if hp["centered"] and state.get("grad_avg") is None:
            state["grad_avg"] = xp.zeros_like(data)
        state["step"] = state.get("step", 0) + 1
        square_avg = state["square_avg"]

        g = -grad if hp["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * data
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        if hp["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = square_avg - grad_avg * grad_avg
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            data -= lr * buf
        else:
            data -= lr * (g / avg)
