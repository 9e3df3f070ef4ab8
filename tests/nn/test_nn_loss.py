"""Loss modules against torch.nn's: constructor arguments (names, order, defaults), forward and backward
for every reduction, PyTorch's legacy size_average/reduce, and a clear error for what the functional
does not support (never another loss computed silently)."""
import inspect
import warnings

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import ArgumentError, nn
from toydata import sgd_losses

LOSSES = [name for name in nn.__all__ if name.endswith("Loss") and name != "Loss"]


def logits_and_targets(n=6, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)), rng.integers(0, c, n)


def run(criterion, x, y, lib):
    """Loss value and input gradient of ``criterion`` (gpucnn's or torch's) in float64."""
    if lib is torch:
        xt = torch.tensor(x, requires_grad=True)
        out = criterion(xt, torch.tensor(y))
    else:
        xt = gpucnn.tensor(x, requires_grad=True)
        out = criterion(xt, gpucnn.tensor(y))
    weights = np.arange(1, out.numel() + 1, dtype=np.float64).reshape(tuple(out.shape))
    (out * (torch.tensor(weights) if lib is torch else gpucnn.tensor(weights))).sum().backward()
    value = out.detach().numpy() if lib is torch else out.numpy()
    return np.asarray(value), xt.grad.numpy()


def test_every_loss_module_has_torchs_constructor_arguments():
    assert "CrossEntropyLoss" in LOSSES
    for name in LOSSES:
        ours = inspect.signature(getattr(nn, name)).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert [(p.name, p.default) for p in ours.values()] == \
               [(p.name, p.default) for p in theirs.values() if p.name != "self"], name


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_loss_matches_torch(reduction):
    x, y = logits_and_targets()
    ours = run(nn.CrossEntropyLoss(reduction=reduction), x, y, gpucnn)
    theirs = run(torch.nn.CrossEntropyLoss(reduction=reduction), x, y, torch)
    assert ours[0].shape == theirs[0].shape
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_positional_arguments_and_attributes_follow_torch():
    c = nn.CrossEntropyLoss(None, None, -100, None, "sum")  # PyTorch's positional order
    assert c.reduction == "sum" and c.ignore_index == -100 and c.label_smoothing == 0.0
    assert list(c.state_dict()) == list(torch.nn.CrossEntropyLoss().state_dict()) == []
    assert repr(c) == repr(torch.nn.CrossEntropyLoss(reduction="sum")) == "CrossEntropyLoss()"
    x, y = logits_and_targets()
    c.reduction = "none"  # read on every call, as in PyTorch
    assert c(gpucnn.tensor(x), y).shape == (6,)
    with pytest.raises(TypeError, match="unexpected keyword argument 'reductions'"):
        nn.CrossEntropyLoss(reductions="sum")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None, None, -100, None, "mean", 0.0, "extra")
    with pytest.raises(ArgumentError, match=r"^CrossEntropyLoss: cross_entropy: reduction must be"):
        nn.CrossEntropyLoss(reduction="avg")(gpucnn.tensor(x), y)


@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, False)])
def test_legacy_size_average_and_reduce_as_torch(size_average, reduce):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce).reduction
    with pytest.warns(UserWarning, match=f"reduction='{expected}'"):
        ours = nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
    assert ours.reduction == expected


@pytest.mark.parametrize("arg, value", [("weight", "tensor"), ("ignore_index", 1), ("label_smoothing", 0.2)])
def test_other_arguments_match_torch_or_are_refused_by_name(arg, value):
    """Each of PyTorch's options either computes PyTorch's loss or raises naming the option: what
    gpucnn.functional.cross_entropy supports decides which."""
    x, y = logits_and_targets()
    ours_value = gpucnn.tensor([1.0, 2.0, 0.5, 1.5], dtype=gpucnn.float64) if value == "tensor" else value
    theirs_value = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64) if value == "tensor" else value
    supported = arg in inspect.signature(gpucnn.functional.cross_entropy).parameters
    if not supported:
        with pytest.raises(ArgumentError, match=f"CrossEntropyLoss: {arg}=.* is not supported"):
            nn.CrossEntropyLoss(**{arg: ours_value})
        nn.CrossEntropyLoss(**{arg: torch.nn.CrossEntropyLoss().__dict__.get(arg, None)})  # the default is fine
        return
    criterion = nn.CrossEntropyLoss(**{arg: ours_value})
    for a, b in zip(run(criterion, x, y, gpucnn), run(torch.nn.CrossEntropyLoss(**{arg: theirs_value}), x, y, torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if arg == "weight":  # a buffer, as in PyTorch
        assert list(criterion.state_dict()) == ["weight"]


def test_a_loss_module_trains_a_model():
    gpucnn.manual_seed(0)
    x, y = logits_and_targets(n=16, seed=3)
    losses = sgd_losses(nn.Linear(4, 4).double(), nn.CrossEntropyLoss(), x, y, lr=0.5)
    assert losses[-1] < 0.7 * losses[0]


def _pair(name, kw_ours, kw_torch):
    return getattr(nn, name)(**kw_ours), getattr(torch.nn, name)(**kw_torch)


def _both(kw):
    """Constructor arguments for gpucnn and torch: arrays become each library's tensor."""
    conv = lambda lib: {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    return conv(gpucnn), conv(torch)


MODULE_CASES = [
    ("CrossEntropyLoss", {"weight": np.array([1.0, 2.0, 0.5, 1.5]), "ignore_index": 1, "label_smoothing": 0.1}, "classes"),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, "probabilities"),
    ("NLLLoss", {"weight": np.array([1.0, 2.0, 0.5, 1.5]), "ignore_index": 2}, "classes"),
    ("MSELoss", {}, "values"), ("L1Loss", {}, "values"), ("SmoothL1Loss", {"beta": 0.5}, "values"),
    ("HuberLoss", {"delta": 0.3}, "values"), ("BCELoss", {"weight": np.array([0.5, 1.0, 2.0, 1.0])}, "probabilities"),
    ("BCEWithLogitsLoss", {"weight": np.array([0.5, 1.0, 2.0, 1.0]), "pos_weight": np.array([1.0, 3.0, 0.5, 2.0])},
     "values"),
    ("KLDivLoss", {"log_target": True}, "values"), ("KLDivLoss", {"reduction": "batchmean"}, "log_probabilities"),
]


@pytest.mark.parametrize("name,kw,target", MODULE_CASES, ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_loss_module_matches_torch(name, kw, target, reduction):
    kw = {"reduction": reduction, **kw}
    ours, theirs = _pair(name, *_both(kw))
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4))
    y = {"classes": rng.integers(0, 4, 6), "values": rng.uniform(0, 1, (6, 4)),
         "probabilities": rng.dirichlet(np.ones(4), 6), "log_probabilities": rng.dirichlet(np.ones(4), 6)}[target]
    if name == "BCELoss":
        x = rng.uniform(0.05, 0.95, (6, 4))
    if name == "KLDivLoss":
        x = np.log(rng.dirichlet(np.ones(4), 6))
    a, b = run(ours, x, y, gpucnn), run(theirs, x, y, torch)
    assert a[0].shape == b[0].shape
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())  # weight / pos_weight: buffers


def test_loss_module_weight_moves_with_to():
    criterion = nn.CrossEntropyLoss(weight=gpucnn.tensor([1.0, 2.0, 3.0])).to("emu")
    assert criterion.weight.device == "emu"
    x = gpucnn.tensor(np.zeros((2, 3), np.float32), device="emu")
    assert criterion(x, gpucnn.tensor([0, 2], device="emu")).item() == pytest.approx(np.log(3))
