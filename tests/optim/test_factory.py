"""create_optimizer / create_scheduler: the names the CLI offers."""
from __future__ import annotations

import numpy as np
import pytest

import gpucnn
from gpucnn import optim
from gpucnn.errors import ArgumentError


def params():
    return [gpucnn.tensor(np.zeros(3), requires_grad=True)]


@pytest.mark.parametrize("name,cls,expect", [
    ("sgd", optim.SGD, {"momentum": 0.0, "nesterov": False}),
    ("momentum", optim.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("Adam", optim.Adam, {"betas": (0.9, 0.999), "weight_decay": 0.0}),
    ("adamw", optim.AdamW, {"weight_decay": 1e-2}),
    (" RMSprop ", optim.RMSprop, {"alpha": 0.99}),
])
def test_create_optimizer(name, cls, expect):
    opt = optim.create_optimizer(name, params(), lr=0.05)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.05
    for k, v in expect.items():
        assert group[k] == v


def test_create_optimizer_options():
    opt = optim.create_optimizer("momentum", params(), lr=0.1, momentum=0.8, weight_decay=5e-4, betas=None)
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["weight_decay"] == 5e-4
    assert optim.create_optimizer("adam", params()).param_groups[0]["lr"] == 1e-3   # the default lr
    with pytest.raises(ArgumentError, match=r"unknown optimizer 'lbfgs'; valid names: sgd, momentum, nesterov, "
                                            r"adam, adamw, rmsprop"):
        optim.create_optimizer("lbfgs", params(), lr=0.1)
    with pytest.raises(ArgumentError, match=r"optimizer 'adam' \(Adam\) does not take momentum; it takes betas"):
        optim.create_optimizer("adam", params(), lr=0.1, momentum=0.9)
    with pytest.raises(ArgumentError, match="SGD: lr must be a number >= 0, got -1"):
        optim.create_optimizer("sgd", params(), lr=-1)


def test_create_scheduler():
    assert optim.create_scheduler("none", optim.SGD(params(), lr=0.1), epochs=10) is None
    s = optim.create_scheduler("cosine", optim.SGD(params(), lr=0.1), epochs=10)
    assert isinstance(s, optim.CosineAnnealingLR) and s.T_max == 10 and s.eta_min == 0
    s = optim.create_scheduler("step", optim.SGD(params(), lr=0.1), epochs=30)
    assert isinstance(s, optim.StepLR) and s.step_size == 10 and s.gamma == 0.1
    s = optim.create_scheduler("step", optim.SGD(params(), lr=0.1), epochs=2, step_size=5, gamma=None)
    assert s.step_size == 5 and s.gamma == 0.1
    s = optim.create_scheduler("multistep", optim.SGD(params(), lr=0.1), epochs=20)
    assert s.milestones == [10, 15]
    s = optim.create_scheduler("exponential", optim.SGD(params(), lr=0.1), epochs=5, gamma=0.5)
    assert s.gamma == 0.5
    s = optim.create_scheduler("linear", optim.SGD(params(), lr=0.1), epochs=20)
    assert s.total_iters == 2
    opt = optim.SGD(params(), lr=0.1, momentum=0.9)
    s = optim.create_scheduler("onecycle", opt, epochs=3, steps_per_epoch=4)
    assert s.total_steps == 12 and opt.param_groups[0]["max_lr"] == 0.1
    for _ in range(11):
        s.step()
    assert s.get_last_lr()[0] == pytest.approx(0.1 / 25 / 1e4)


def test_create_scheduler_errors():
    opt = optim.SGD(params(), lr=0.1)
    with pytest.raises(ArgumentError, match=r"unknown learning-rate schedule 'poly'; valid names: none, step, "):
        optim.create_scheduler("poly", opt, epochs=3)
    with pytest.raises(ArgumentError, match=r"epochs must be an integer >= 1, got 0"):
        optim.create_scheduler("cosine", opt, epochs=0)
    with pytest.raises(ArgumentError, match=r"schedule 'cosine' \(CosineAnnealingLR\) does not take gamma"):
        optim.create_scheduler("cosine", opt, epochs=3, gamma=0.1)
    assert set(optim.SCHEDULER_NAMES) >= {"none", "step", "cosine"}
    assert optim.OPTIMIZER_NAMES == ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
