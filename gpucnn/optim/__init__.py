"""Optimizers and learning-rate schedules with PyTorch's semantics (``torch.optim``).

::

    from gpucnn import optim
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
        sched.step()

State dicts (``opt.state_dict()``, ``sched.state_dict()``) hold only JSON-able values and arrays: no
pickle. ``create_optimizer`` / ``create_scheduler`` build them by name for the CLI.
"""
from __future__ import annotations

from . import lr_scheduler
from .adam import Adam, AdamW
from .factory import OPTIMIZER_NAMES, SCHEDULER_NAMES, create_optimizer, create_scheduler
from .lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, LRScheduler, MultiStepLR,
                           OneCycleLR, ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop",
    "lr_scheduler", "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "OneCycleLR", "LambdaLR", "SequentialLR", "ReduceLROnPlateau",
    "create_optimizer", "create_scheduler", "OPTIMIZER_NAMES", "SCHEDULER_NAMES",
]
