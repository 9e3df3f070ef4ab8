"""Adam and AdamW: PyTorch's ``torch.optim.Adam`` / ``torch.optim.AdamW`` algorithms."""
from __future__ import annotations

import math
from typing import Any

from ..tensor import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), exactly as ``torch.optim.Adam``::

        g = -grad if maximize else grad
        g = g + weight_decay * p                       # L2 penalty (Adam); AdamW decays p instead
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                          # amsgrad only; then v_max replaces v below
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad,
    ``max_exp_avg_sq``.
    """

    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _required_buffers = ("exp_avg", "exp_avg_sq")
    #: AdamW: weight decay multiplies the parameter by (1 - lr * weight_decay) instead of adding to g
    _decoupled = False

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any], where: str) -> None:
        self._check_real(group, where, "lr")
        betas = group["betas"]
        if isinstance(betas, list):
            betas = tuple(betas)
        if not isinstance(betas, tuple) or len(betas) != 2:
            self._fail(where, "betas", betas, "a pair (beta1, beta2) of numbers in [0, 1)")
        for i, b in enumerate(betas):
            self._check_real(group, where, "betas", value=b, label=f"betas[{i}]", high=1.0)
        group["betas"] = betas
        self._check_real(group, where, "eps", low_inclusive=False)
        self._check_real(group, where, "weight_decay")
        self._check_bool(group, where, "amsgrad")
        self._check_bool(group, where, "maximize")

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], hp: dict[str, Any]) -> None:
        xp = p.device.xp
        data = p.data
        lr, eps, weight_decay = hp["lr"], hp["eps"], hp["weight_decay"]
        beta1, beta2 = hp["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(data)
            state["exp_avg_sq"] = xp.zeros_like(data)
        if hp["amsgrad"] and state.get("max_exp_avg_sq") is None:
            state["max_exp_avg_sq"] = xp.zeros_like(data)
        step = state["step"] = state.get("step", 0) + 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

        g = -grad if hp["maximize"] else grad
        if weight_decay != 0:
            if self._decoupled:
                data *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * data
        exp_avg *= beta1
        exp_avg += (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (g * g)

        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        step_size = lr / bias_correction1
        if hp["amsgrad"]:
            v = state["max_exp_avg_sq"]
            xp.maximum(v, exp_avg_sq, out=v)
        else:
            v = exp_avg_sq
        denom = xp.sqrt(v)
        denom /= bias_correction2_sqrt
        denom += eps
        update = exp_avg / denom
        update *= step_size
        data -= update


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), exactly as ``torch.optim.AdamW``:
    each step first multiplies the parameter by ``1 - lr * weight_decay``, then takes the Adam step
    on the plain gradient. Note the default ``weight_decay=1e-2``."""

    _decoupled = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
