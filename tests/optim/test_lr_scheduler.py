"""gpucnn.optim.lr_scheduler: learning-rate sequences against closed forms, state round trips, errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import optim
from gpucnn.errors import ArgumentError, ModelFormatError
from gpucnn.optim import lr_scheduler as S


def sgd(lr=0.1, lr2=None, **kw):
    groups = [{"params": [gpucnn.tensor(np.zeros(2), requires_grad=True)]}]
    if lr2 is not None:
        groups.append({"params": [gpucnn.tensor(np.zeros(3), requires_grad=True)], "lr": lr2})
    return optim.SGD(groups, lr=lr, **kw)


def lrs(sched, n):
    """The learning rates of epochs 0..n-1 (each read from the optimizer, as training would use it)."""
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in sched.optimizer.param_groups])
        assert out[-1] == sched.get_last_lr()
        sched.optimizer.step()
        sched.step()
    return out


def test_steplr():
    opt = sgd(0.1, lr2=1.0)
    got = lrs(S.StepLR(opt, step_size=3), 10)
    assert [g[0] for g in got[:3]] == [0.1] * 3
    np.testing.assert_allclose([g[0] for g in got[3:6]], [0.01] * 3, rtol=1e-12)
    np.testing.assert_allclose([g[1] for g in got], [1.0 * 0.1 ** (e // 3) for e in range(10)], rtol=1e-12)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 1.0]


def test_multisteplr_counts_repeated_milestones():
    got = lrs(S.MultiStepLR(sgd(1.0), milestones=[5, 2, 5], gamma=0.5), 7)
    np.testing.assert_allclose([g[0] for g in got], [1, 1, 0.5, 0.5, 0.5, 0.125, 0.125], rtol=1e-12)


def test_exponentiallr():
    got = lrs(S.ExponentialLR(sgd(0.2), gamma=0.9), 6)
    np.testing.assert_allclose([g[0] for g in got], [0.2 * 0.9 ** e for e in range(6)], rtol=1e-12)


def test_cosine_endpoints_and_midpoint():
    sched = S.CosineAnnealingLR(sgd(0.1, lr2=0.5), T_max=10, eta_min=0.001)
    got = lrs(sched, 11)
    assert got[0] == [0.1, 0.5]
    np.testing.assert_allclose(got[5], [(0.1 + 0.001) / 2, (0.5 + 0.001) / 2], rtol=1e-12)
    np.testing.assert_allclose(got[10], [0.001, 0.001], rtol=1e-12)
    for e, (a, _) in enumerate(got):
        assert a == pytest.approx(0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2, rel=1e-12)
    assert all(x > y for (x, _), (y, _) in zip(got, got[1:]))


def test_linearlr_warmup():
    got = lrs(S.LinearLR(sgd(1.0), start_factor=0.25, end_factor=1.0, total_iters=3), 6)
    np.testing.assert_allclose([g[0] for g in got], [0.25, 0.5, 0.75, 1.0, 1.0, 1.0], rtol=1e-12)


def test_onecycle_lr_and_momentum():
    opt = sgd(0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=21, pct_start=0.5)
    lr, mom = [], []
    for _ in range(21):
        lr.append(opt.param_groups[0]["lr"])
        mom.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert lr[0] == pytest.approx(1.0 / 25) and mom[0] == pytest.approx(0.95)
    assert lr[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert mom[-1] == pytest.approx(0.95) and min(mom) < 0.86
    # the closed form (cosine annealing in two phases)
    for t in range(21):
        if t <= 9.5:
            pct, a, b = t / 9.5, 0.04, 1.0
        else:
            pct, a, b = (t - 9.5) / (20 - 9.5), 1.0, 0.04 / 1e4
        assert lr[t] == pytest.approx(b + (a - b) / 2 * (1 + math.cos(math.pi * pct)), rel=1e-12)
    with pytest.raises(ArgumentError, match="stepped 22 times, but total_steps is 21"):
        sched.step()


def test_onecycle_cycles_beta1_of_adam_and_needs_momentum():
    p = gpucnn.tensor(np.zeros(2), requires_grad=True)
    opt = optim.Adam([p], lr=0.1, betas=(0.9, 0.99))
    S.OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=5)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99) and opt.param_groups[0]["max_lr"] == 0.5
    with pytest.raises(ArgumentError, match="give total_steps, or both epochs and steps_per_epoch"):
        S.OneCycleLR(opt, max_lr=0.5, epochs=2)
    with pytest.raises(ArgumentError, match=r"max_lr must be one number or a list of 1"):
        S.OneCycleLR(opt, max_lr=[0.5, 0.6], total_steps=10)


def test_initial_lr_is_kept_and_resume_needs_it():
    opt = sgd(0.1)
    S.StepLR(opt, step_size=1)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    S.StepLR(opt, step_size=1)  # a second scheduler keeps the first's initial_lr
    assert opt.param_groups[0]["initial_lr"] == 0.1
    with pytest.raises(ArgumentError, match="parameter group 0 has no 'initial_lr'"):
        S.StepLR(sgd(0.1), step_size=1, last_epoch=4)
    sched = S.StepLR(opt, step_size=2, last_epoch=3)  # resumes at epoch 4 from initial_lr
    assert sched.last_epoch == 4 and sched.get_last_lr() == pytest.approx([0.1 * 0.1 ** 2])


SCHEDULERS = [
    ("step", lambda o: S.StepLR(o, 3, gamma=0.5)),
    ("multistep", lambda o: S.MultiStepLR(o, [2, 6], gamma=0.3)),
    ("exponential", lambda o: S.ExponentialLR(o, 0.8)),
    ("cosine", lambda o: S.CosineAnnealingLR(o, 9, eta_min=1e-3)),
    ("linear", lambda o: S.LinearLR(o, 0.1, 1.0, 5)),
    ("onecycle", lambda o: S.OneCycleLR(o, [1.0, 2.0], total_steps=12)),
]


@pytest.mark.parametrize("name,make", SCHEDULERS, ids=[n for n, _ in SCHEDULERS])
def test_state_round_trip(name, make):
    opt = sgd(0.1, lr2=0.3, momentum=0.9)
    sched = make(opt)
    uninterrupted = lrs(sched, 11)

    opt = sgd(0.1, lr2=0.3, momentum=0.9)
    sched = make(opt)
    first = lrs(sched, 4)
    opt_sd = json.loads(json.dumps(opt.state_dict()["param_groups"]))
    sched_sd = json.loads(json.dumps(sched.state_dict()))    # JSON-able
    assert sched_sd["type"] == type(sched).__name__ and sched_sd["last_epoch"] == 4

    opt2 = sgd(0.5, lr2=0.5, momentum=0.9)
    sched2 = make(opt2)
    sched2.load_state_dict(sched_sd)
    opt2.load_state_dict({"param_groups": opt_sd, "state": {}})
    rest = lrs(sched2, 7)
    assert first + rest == uninterrupted
    assert sched2.last_epoch == 11


def test_scheduler_load_state_dict_errors():
    sched = S.StepLR(sgd(0.1), step_size=3)
    with pytest.raises(ModelFormatError, match="state dict is of a CosineAnnealingLR, not a StepLR"):
        sched.load_state_dict(S.CosineAnnealingLR(sgd(0.1), T_max=3).state_dict())
    sd = S.StepLR(sgd(0.1, lr2=0.2), step_size=3).state_dict()
    with pytest.raises(ModelFormatError, match=r"2 learning rate\(s\), the optimizer has 1 parameter group"):
        sched.load_state_dict(sd)
    sd = sched.state_dict()
    sd["step_size"] = 0
    with pytest.raises(ModelFormatError, match="StepLR: step_size must be an integer >= 1, got 0"):
        sched.load_state_dict(sd)
    with pytest.raises(ModelFormatError, match="lacks 'last_epoch'"):
        sched.load_state_dict({"base_lrs": [0.1]})
    assert sched.step_size == 3 and sched.last_epoch == 0


@pytest.mark.parametrize("make,match", [
    (lambda o: S.StepLR(o, step_size=0), r"StepLR: step_size must be an integer >= 1, got 0"),
    (lambda o: S.StepLR(o, step_size=2, gamma=-1), r"StepLR: gamma must be a number > 0, got -1"),
    (lambda o: S.MultiStepLR(o, milestones=[1, -2]), r"MultiStepLR: milestones must be a list of non-negative"),
    (lambda o: S.ExponentialLR(o, gamma=0), r"ExponentialLR: gamma must be a number > 0, got 0"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), r"CosineAnnealingLR: T_max must be an integer >= 1"),
    (lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=-1), r"eta_min must be a number >= 0"),
    (lambda o: S.LinearLR(o, start_factor=0), r"LinearLR: start_factor must be a number in \(0, 1\]"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5), r"OneCycleLR: pct_start must be"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"), r"anneal_strategy must be 'cos'"),
    (lambda o: S.StepLR("opt", step_size=1), r"StepLR: optimizer must be a gpucnn.optim.Optimizer, got str"),
    (lambda o: S.StepLR(o, step_size=1, last_epoch=-2), r"StepLR: last_epoch must be an integer >= -1"),
])
def test_scheduler_validation(make, match):
    with pytest.raises(ArgumentError, match=match):
        make(sgd(0.1, momentum=0.9))


def test_onecycle_degenerate_first_phase():
    """pct_start * total_steps == 1 makes phase 1 zero steps long (PyTorch divides by zero there)."""
    opt = sgd(0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.1)
    assert sched.get_last_lr() == [1.0]


# -- LambdaLR against torch -----------------------------------------------------------------------
class Warmup:
    """A callable object: its attributes are what LambdaLR's state_dict keeps (as PyTorch's)."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


def torch_lrs(make_sched, lrs_, n):
    import torch

    params = [torch.zeros(2, requires_grad=True) for _ in lrs_]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs_)], lr=lrs_[0])
    sched = make_sched(torch.optim.lr_scheduler, opt)
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("make", [
    lambda S_, opt: S_.LambdaLR(opt, lambda e: 0.95 ** e),
    lambda S_, opt: S_.LambdaLR(opt, [lambda e: 1.0 / (e + 1), Warmup(4)]),
    lambda S_, opt: S_.LambdaLR(opt, lr_lambda=Warmup(3), last_epoch=-1),
])
def test_lambdalr_matches_torch(make):
    got = lrs(make(S, sgd(0.1, lr2=0.5)), 8)
    expected = torch_lrs(make, [0.1, 0.5], 8)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert got[0] != got[-1]


def test_lambdalr_state_dict_keeps_callable_objects_state_and_resumes():
    warm = Warmup(5)
    opt = sgd(0.1, lr2=0.5)
    sched = S.LambdaLR(opt, [lambda e: 0.9 ** e, warm])
    lrs(sched, 3)
    sd, opt_sd = sched.state_dict(), opt.state_dict()
    assert sd["lr_lambdas"] == [None, {"epochs": 5}] and sd["last_epoch"] == 3
    json.dumps(sd)  # JSON-able here (a callable object's attributes are whatever it holds)
    warm.epochs = 2  # the saved copy does not change with the object
    assert sched.state_dict()["lr_lambdas"][1] == {"epochs": 2} and sd["lr_lambdas"][1] == {"epochs": 5}
    warm.epochs = 5
    rest = lrs(sched, 4)
    fresh_warm = Warmup(99)
    opt2 = sgd(0.1, lr2=0.5)
    resumed = S.LambdaLR(opt2, [lambda e: 0.9 ** e, fresh_warm])
    opt2.load_state_dict(opt_sd)
    resumed.load_state_dict(sd)
    assert fresh_warm.epochs == 5 and resumed.last_epoch == 3
    assert lrs(resumed, 4) == rest


def test_lambdalr_errors():
    with pytest.raises(ArgumentError, match="expected 2 lr_lambdas .* but got 1"):
        S.LambdaLR(sgd(0.1, lr2=0.5), [lambda e: 1.0])
    with pytest.raises(ArgumentError, match="lr_lambda must be a function"):
        S.LambdaLR(sgd(), 0.5)
    with pytest.raises(ArgumentError, match=r"returned 'x' for epoch 0, expected a number"):
        S.LambdaLR(sgd(), lambda e: "x")
    sched = S.LambdaLR(sgd(), lambda e: 1.0)
    with pytest.raises(ModelFormatError, match="lr_lambdas must be a list of 1"):
        sched.load_state_dict({**sched.state_dict(), "lr_lambdas": [None, None]})
