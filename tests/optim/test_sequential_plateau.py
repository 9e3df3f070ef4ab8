"""SequentialLR and ReduceLROnPlateau against torch's, epoch by epoch; their state dicts (JSON round trip,
resume mid-schedule); bad arguments by name. Adam/AdamW amsgrad step by step against torch on the same
gradients, with max_exp_avg_sq in the state dict."""
import json

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, optim


def pair(lr=0.1, groups=1):
    ours = [gpucnn.tensor(np.zeros(2), requires_grad=True) for _ in range(groups)]
    theirs = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    mk = lambda ps: [{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)]
    return optim.SGD(mk(ours), lr=lr), torch.optim.SGD(mk(theirs), lr=lr)


SEQUENCES = {
    "warmup-cosine": lambda o, L: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=3),
                                                     L.CosineAnnealingLR(o, T_max=7)], milestones=[3]),
    "warmup-step-exp": lambda o, L: L.SequentialLR(o, [L.LinearLR(o, 0.25, 1.0, 4), L.StepLR(o, 2, 0.5),
                                                       L.ExponentialLR(o, 0.9)], milestones=[4, 8]),
    "constant-then-multistep": lambda o, L: L.SequentialLR(o, [L.LinearLR(o, 0.5, 0.5, 2),
                                                               L.MultiStepLR(o, [1, 3], 0.1)], milestones=[2]),
}


@pytest.mark.parametrize("name", SEQUENCES)
def test_sequential_lr_matches_torch(name):
    (o, t), make = pair(groups=2), SEQUENCES[name]
    ours, theirs = make(o, optim.lr_scheduler), make(t, torch.optim.lr_scheduler)
    for epoch in range(14):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, err_msg=f"epoch {epoch}")
        np.testing.assert_allclose([g["lr"] for g in o.param_groups], [g["lr"] for g in t.param_groups], rtol=1e-12)
        o.step()
        t.step()
        ours.step()
        theirs.step()


def test_sequential_lr_state_dict_resumes():
    o, _ = pair()
    s = SEQUENCES["warmup-cosine"](o, optim.lr_scheduler)
    for _ in range(4):
        s.step()
    sd = json.loads(json.dumps(s.state_dict()))
    opt_sd = o.state_dict()
    expected = []
    for _ in range(5):
        s.step()
        expected.append(s.get_last_lr())
    o2, _ = pair()
    s2 = SEQUENCES["warmup-cosine"](o2, optim.lr_scheduler)
    o2.load_state_dict(opt_sd)
    s2.load_state_dict(sd)
    got = []
    for _ in range(5):
        s2.step()
        got.append(s2.get_last_lr())
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    with pytest.raises(ModelFormatError, match="milestones"):
        SEQUENCES["warmup-cosine"](pair()[0], optim.lr_scheduler).load_state_dict({**sd, "milestones": [4]})


@pytest.mark.parametrize("make,match", [
    (lambda o, L: L.SequentialLR(o, [L.LinearLR(o)], milestones=[2]), r"milestones must be a sorted list of 0"),
    (lambda o, L: L.SequentialLR(o, [L.LinearLR(o), L.StepLR(o, 2)], milestones=[0]), r"milestones"),
    (lambda o, L: L.SequentialLR(o, [], milestones=[]), r"schedulers must be a non-empty list"),
    (lambda o, L: L.SequentialLR(o, [L.LinearLR(o), L.StepLR(pair()[0], 2)], milestones=[2]),
     r"schedulers\[1\] \(StepLR\) schedules another optimizer"),
    (lambda o, L: L.ReduceLROnPlateau(o, mode="lowest"), r"ReduceLROnPlateau: mode must be 'min' or 'max'"),
    (lambda o, L: L.ReduceLROnPlateau(o, factor=1.0), r"factor must be a number in \[0, 1\)"),
    (lambda o, L: L.ReduceLROnPlateau(o, patience=-1), r"patience must be an integer >= 0"),
    (lambda o, L: L.ReduceLROnPlateau(o, threshold_mode="pct"), r"threshold_mode must be 'rel' or 'abs'"),
    (lambda o, L: L.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), r"expected 1 min_lrs"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ArgumentError, match=match):
        make(pair()[0], optim.lr_scheduler)


#: a loss curve with improvements, plateaus, tiny (sub-threshold) gains and a rise
METRICS = [1.0, 0.9, 0.9, 0.89995, 0.95, 0.95, 0.7, 0.7, 0.7, 0.7, 0.71, 0.69999, 0.72, 0.5, 0.5, 0.5, 0.5, 0.5,
           0.5, 0.5, 0.5, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("kw", [
    {}, {"patience": 1}, {"patience": 2, "cooldown": 2}, {"patience": 0, "factor": 0.5, "min_lr": 0.02},
    {"mode": "max", "patience": 1}, {"threshold_mode": "abs", "threshold": 0.05, "patience": 1},
    {"patience": 1, "min_lr": [0.001, 0.05], "eps": 0.01}, {"patience": 0, "factor": 0.0},
])
def test_reduce_lr_on_plateau_matches_torch(kw):
    o, t = pair(groups=2)
    ours, theirs = optim.lr_scheduler.ReduceLROnPlateau(o, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(t, **kw)
    for m in METRICS:
        ours.step(m)
        theirs.step(m)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)
        assert (ours.num_bad_epochs, ours.cooldown_counter, ours.best) == \
            (theirs.num_bad_epochs, theirs.cooldown_counter, theirs.best)


def test_reduce_lr_on_plateau_state_dict_and_tensor_metric():
    o, _ = pair()
    s = optim.lr_scheduler.ReduceLROnPlateau(o, patience=1)
    sd0 = json.loads(json.dumps(s.state_dict()))  # (best is still inf: saved as null)
    assert sd0["best"] is None
    for m in METRICS[:6]:
        s.step(gpucnn.tensor(m))
    sd = json.loads(json.dumps(s.state_dict()))
    o2, _ = pair()
    o2.load_state_dict(o.state_dict())
    s2 = optim.lr_scheduler.ReduceLROnPlateau(o2, patience=1)
    s2.load_state_dict(sd)
    for m in METRICS[6:]:
        s.step(m)
        s2.step(m)
        assert s2.get_last_lr() == s.get_last_lr() and o2.param_groups[0]["lr"] == o.param_groups[0]["lr"]
    s3 = optim.lr_scheduler.ReduceLROnPlateau(pair()[0])
    s3.load_state_dict(sd0)
    assert s3.best == float("inf")
    with pytest.raises(ArgumentError, match=r"step needs the metric to watch"):
        s.step()


# -- amsgrad -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", [("Adam", {"lr": 0.05, "amsgrad": True}),
                                     ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
                                     ("AdamW", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.3}),
                                     ("AdamW", {"lr": 0.05, "amsgrad": True, "betas": (0.5, 0.9), "maximize": True})])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_amsgrad_matches_torch_step_by_step(name, kw, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4)).astype(dtype)
    ours, theirs = gpucnn.tensor(p0.copy(), requires_grad=True), torch.tensor(p0.copy(), requires_grad=True)
    o, t = getattr(optim, name)([ours], **kw), getattr(torch.optim, name)([theirs], **kw)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    for step in range(12):
        g = (rng.standard_normal((3, 4)) * (3.0 if step % 4 == 0 else 0.1)).astype(dtype)  # v falls: max kept
        ours.grad, theirs.grad = gpucnn.tensor(g), torch.tensor(g)
        o.step()
        t.step()
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=rtol, atol=rtol, err_msg=f"step {step}")
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            # (float32: exp_avg sums terms of both signs, so its small entries carry O(1e-7) absolute error)
            np.testing.assert_allclose(o.state[ours][key], t.state[theirs][key].numpy(), rtol=rtol,
                                       atol=1e-30 if dtype == np.float64 else 1e-6)
    sd = o.state_dict()
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    again = gpucnn.tensor(ours.numpy(), requires_grad=True)
    o2 = getattr(optim, name)([again], **kw)
    o2.load_state_dict(sd)
    g = rng.standard_normal((3, 4)).astype(dtype)
    for p, opt in ((ours, o), (again, o2)):
        p.grad = gpucnn.tensor(g)
        opt.step()
    np.testing.assert_array_equal(again.numpy(), ours.numpy())
