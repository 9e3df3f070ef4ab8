"""The losses (gpucnn/functions/loss.py) against PyTorch: values and gradients (input, and probability /
regression targets) for every reduction and option, float32 and float64, cpu and emu; float64
gradcheck; PyTorch's weighted-mean and ignore_index rules; stability at extreme logits; bad input."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
from gpucnn import ArgumentError, ShapeError
from gpucnn.nn import functional as F
from torch_ref import same

REDUCTIONS = ["none", "mean", "sum"]
RNG = np.random.default_rng(0)


def tol(dtype):
    return (2e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)


def indices(shape, c, ignore=None, seed=1):
    t = np.random.default_rng(seed).integers(0, c, shape)
    if ignore is not None:
        t.flat[::3] = ignore
    return t


def weights(w, device="cpu"):
    """The same weight array as a gpucnn and a torch tensor (None: None)."""
    return (None, None) if w is None else (gpucnn.tensor(w, device=device), torch.tensor(w))


# -- cross_entropy / nll_loss -------------------------------------------------------------------------
CE_SHAPES = [((6, 4), (6,)), ((3, 5, 2, 3), (3, 2, 3)), ((2, 3, 7), (2, 7)), ((4,), ()), ((1, 3), (1,))]


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ignore,smoothing", [
    (False, None, 0.0), (True, None, 0.0), (False, 2, 0.0), (True, 1, 0.0),
    (False, None, 0.2), (True, None, 0.3), (True, 0, 0.1), (False, -100, 1.0)])
def test_cross_entropy_class_targets(weighted, ignore, smoothing, reduction, shapes, dtype, device):
    xs, ts = shapes
    c = xs[1] if len(xs) > 1 else xs[0]
    x = RNG.standard_normal(xs).astype(dtype) * 2
    t = np.asarray(indices(ts, c, ignore if ignore not in (None, -100) and ts else None))
    w = np.random.default_rng(2).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if ignore is not None:
        kw["ignore_index"] = ignore
    rtol, atol = tol(dtype)
    wo, wt = weights(w, device)  # (not differentiable, in either library)
    same(lambda x, t: F.cross_entropy(x, t, wo, **kw), [x, t],
         g=lambda x, t: TF.cross_entropy(x, t, wt, **kw), device=device, rtol=rtol, atol=atol)


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs", [(5, 4), (2, 3, 4, 2), (3,)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (False, 0.25), (True, 0.1)])
def test_cross_entropy_probability_targets_with_target_grads(weighted, smoothing, reduction, xs, dtype, device):
    c = xs[1] if len(xs) > 1 else xs[0]
    x = RNG.standard_normal(xs).astype(dtype)
    p = np.random.default_rng(3).uniform(size=xs)
    p = (p / p.sum(axis=1 if len(xs) > 1 else 0, keepdims=True)).astype(dtype)
    w = np.random.default_rng(4).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    rtol, atol = tol(dtype)
    wt_ours, wt_torch = weights(w, device)  # (p gets a gradient, the weight none)
    same(lambda x, p: F.cross_entropy(x, p, wt_ours, **kw), [x, p],
         g=lambda x, p: TF.cross_entropy(x, p, wt_torch, **kw), device=device, rtol=rtol, atol=atol)


def test_cross_entropy_weighted_mean_is_torchs_rule():
    """mean = sum(w[t] * nll) / sum(w[t]) over the targets not ignored (not a plain mean)."""
    x = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    t = np.array([0, 1, -100])
    w = np.array([2.0, 1.0, 5.0])
    nll = -np.array([np.log(0.5), np.log(0.8)])
    expected = (2 * nll[0] + 1 * nll[1]) / 3
    got = F.cross_entropy(gpucnn.tensor(x), gpucnn.tensor(t), gpucnn.tensor(w)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    assert F.nll_loss(gpucnn.tensor(x), gpucnn.tensor(t), gpucnn.tensor(w)).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_all_ignored_is_nan_as_torch():
    x = gpucnn.tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(x, gpucnn.tensor([-100, -100]))
    assert np.isnan(loss.item()) and np.isnan(TF.cross_entropy(torch.zeros(2, 3), torch.tensor([-100, -100])).item())
    assert F.cross_entropy(x, gpucnn.tensor([-100, -100]), reduction="sum").item() == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_gradcheck(smoothing):
    x = gpucnn.tensor(RNG.standard_normal((3, 4, 2)), requires_grad=True)
    t = gpucnn.tensor(np.array([[0, 3], [1, -100], [2, 2]]))
    w = gpucnn.tensor([0.5, 1.0, 2.0, 1.5], dtype=gpucnn.float64)
    for reduction in REDUCTIONS:
        assert gpucnn.gradcheck(lambda x: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=smoothing), [x])
    p = gpucnn.tensor(np.random.default_rng(5).dirichlet(np.ones(4), 6).reshape(3, 2, 4).transpose(0, 2, 1).copy(),
                      requires_grad=True)
    assert gpucnn.gradcheck(lambda x, p: F.cross_entropy(x, p, w, label_smoothing=smoothing), [x, p])


def test_cross_entropy_extreme_logits_are_finite():
    x = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 0.0]], dtype=np.float32)
    out = same(lambda x: F.cross_entropy(x, gpucnn.tensor([1, 0]), reduction="none"), [x],
               g=lambda x: TF.cross_entropy(x, torch.tensor([1, 0]), reduction="none"), rtol=1e-6)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ignore", [(False, None), (True, None), (True, 1), (False, 0)])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=str)
def test_nll_loss(shapes, weighted, ignore, reduction, dtype, device):
    xs, ts = shapes
    c = xs[1] if len(xs) > 1 else xs[0]
    x = RNG.standard_normal(xs).astype(dtype)
    t = np.asarray(indices(ts, c, ignore if ts else None))
    w = np.random.default_rng(2).uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    kw = dict(reduction=reduction) if ignore is None else dict(reduction=reduction, ignore_index=ignore)
    rtol, atol = tol(dtype)
    wo, wt = weights(w, device)
    same(lambda x, t: F.nll_loss(x, t, wo, **kw), [x, t], g=lambda x, t: TF.nll_loss(x, t, wt, **kw),
         device=device, rtol=rtol, atol=atol)


def test_nll_loss_gradcheck():
    x = gpucnn.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    t = gpucnn.tensor([0, 2, -100, 1])
    for reduction in REDUCTIONS:
        assert gpucnn.gradcheck(lambda x: F.nll_loss(x, t, gpucnn.tensor([1.0, 2.0, 3.0], dtype=gpucnn.float64),
                                                     reduction=reduction), [x])


@pytest.mark.parametrize("call,error,match", [
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1, 4])), ArgumentError,
     r"cross_entropy: target 4 is outside \[0, 3\) for 3 classes \(and is not ignore_index=-100\)"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, -1, 2])), ArgumentError, r"target -1 is outside \[0, 3\)"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 5, 2]), ignore_index=5), None, None),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1])), ShapeError,
     r"cross_entropy: target has shape \(2,\), expected \(3,\) for input shape \(3, 3\)"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([[0.5, 0.5]])), ShapeError,
     r"cross_entropy: target has shape \(1, 2\), expected \(3, 3\)"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([True, False, True])), ArgumentError,
     r"target must be integer class indices or float class probabilities, got dtype bool"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1, 2]), weight=gpucnn.ones(2)), ShapeError,
     r"weight has shape \(2,\), expected \(3,\): one per class"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1, 2]), label_smoothing=1.5), ArgumentError,
     r"label_smoothing must be a number in \[0, 1\], got 1.5"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1, 2]), reduction="avg"), ArgumentError,
     r"cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'avg'"),
    (lambda x: F.cross_entropy(x, gpucnn.tensor([0, 1, 2]), ignore_index=0.5), ArgumentError,
     r"ignore_index must be an integer, got 0.5"),
    (lambda x: F.nll_loss(x, gpucnn.tensor([0, 3, 1])), ArgumentError, r"nll_loss: target 3 is outside \[0, 3\)"),
    (lambda x: F.cross_entropy(gpucnn.zeros(3), gpucnn.tensor([1])), ShapeError,
     r"unbatched input of shape \(3,\), target must be \(\) a single class index"),
])
def test_cross_entropy_bad_input(call, error, match):
    x = gpucnn.zeros(3, 3)
    if error is None:
        call(x)
        return
    with pytest.raises(error, match=match):
        call(x)


def test_legacy_arguments_in_the_functional():
    x, t = gpucnn.tensor(RNG.standard_normal((4, 3))), gpucnn.tensor([0, 1, 2, 0])
    with pytest.warns(UserWarning, match="reduction='sum'"):
        a = F.cross_entropy(x, t, None, False)
    assert a.item() == pytest.approx(F.cross_entropy(x, t, reduction="sum").item())
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert F.mse_loss(x, x, reduce=False).shape == (4, 3)


# -- pointwise losses ---------------------------------------------------------------------------------
def regression(shape=(3, 4), dtype=np.float64, seed=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape).astype(dtype)
    t.flat[::5] = x.flat[::5]  # exact ties: l1/smooth_l1 take 0 there, as torch
    t.flat[1::7] = x.flat[1::7] + 0.5  # |d| = beta / delta: the seam between the two pieces
    return x, t


def probabilities(shape=(3, 4), dtype=np.float64, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.02, 0.98, shape).astype(dtype)
    x.flat[:3] = [0.0, 1.0, 0.5]  # log(0): clamped at -100, as torch
    t = rng.uniform(0, 1, shape).astype(dtype)
    t.flat[:3] = [0.0, 1.0, 1.0]
    return x, t


POINTWISE = [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 0.5}),
    ("binary_cross_entropy_with_logits", {}), ("kl_div", {"log_target": True}),
]


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", POINTWISE, ids=lambda v: str(v))
def test_pointwise_losses_with_target_grads(name, kw, reduction, dtype, device):
    x, t = regression(dtype=dtype)
    rtol, atol = tol(dtype)
    same(lambda x, t: getattr(F, name)(x, t, reduction=reduction, **kw), [x, t],
         g=lambda x, t: getattr(TF, name)(x, t, reduction=reduction, **kw), device=device, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weight(name, reduction):
    """mse/l1: a weighted mean divides by sum(weight); huber's stays the plain mean (torch's own rules)."""
    x, t = regression()
    w = np.random.default_rng(8).uniform(0, 2, x.shape)
    same(lambda x, t: getattr(F, name)(x, t, reduction=reduction, weight=gpucnn.tensor(w)), [x, t],
         g=lambda x, t: getattr(TF, name)(x, t, reduction=reduction, weight=torch.tensor(w)), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "full", "row"])
def test_binary_cross_entropy(weight, reduction, dtype):
    x, t = probabilities(dtype=dtype)
    w = {None: None, "full": np.linspace(0.1, 2, 12).reshape(3, 4), "row": np.linspace(0.5, 1.5, 4)}[weight]
    wo = None if w is None else gpucnn.tensor(w.astype(dtype))
    wt = None if w is None else torch.tensor(w.astype(dtype))
    rtol, atol = tol(dtype)
    # x = 0 and 1: the logs clamped at -100 (the target is not differentiated there: torch's target
    # gradient is the unclamped log ratio, +-inf; ours is the clamped loss's derivative, +-100)
    out = same(lambda x: F.binary_cross_entropy(x, gpucnn.tensor(t), wo, reduction=reduction), [x],
               g=lambda x: TF.binary_cross_entropy(x, torch.tensor(t), wt, reduction=reduction), rtol=rtol, atol=atol)
    assert np.isfinite(out.numpy()).all()
    x[0, :3] = [0.01, 0.99, 0.5]
    same(lambda x, t: F.binary_cross_entropy(x, t, wo, reduction=reduction), [x, t],
         g=lambda x, t: TF.binary_cross_entropy(x, t, wt, reduction=reduction), rtol=rtol, atol=atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_weight_and_pos_weight(weighted, reduction, dtype):
    x, t = regression((5, 3), dtype)
    x[0] = [-200.0, 200.0, 90.0]  # (log(sigmoid(x)) directly would be -inf / nan here)
    t = np.abs(t) / np.abs(t).max()
    pw = np.array([0.5, 2.0, 3.0], dtype=dtype)
    w = np.linspace(0.5, 1.5, 5, dtype=dtype)[:, None] if weighted else None
    kw_o = dict(weight=None if w is None else gpucnn.tensor(w), pos_weight=gpucnn.tensor(pw), reduction=reduction)
    kw_t = dict(weight=None if w is None else torch.tensor(w), pos_weight=torch.tensor(pw), reduction=reduction)
    rtol, atol = tol(dtype)
    out = same(lambda x, t: F.binary_cross_entropy_with_logits(x, t, **kw_o), [x, t],
               g=lambda x, t: TF.binary_cross_entropy_with_logits(x, t, **kw_t), rtol=rtol, atol=atol)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
def test_kl_div(reduction):
    x = np.log(np.random.default_rng(9).dirichlet(np.ones(4), 3))
    t = np.random.default_rng(10).dirichlet(np.ones(4), 3)
    t[0, 1] = 0.0  # 0 * log 0 = 0 (the target gradient there is nan in both: compared on x only)
    same(lambda x: F.kl_div(x, gpucnn.tensor(t), reduction=reduction), [x],
         g=lambda x: TF.kl_div(x, torch.tensor(t), reduction=reduction), rtol=1e-12, atol=1e-13)
    same(lambda x, t: F.kl_div(x, t, reduction=reduction), [x, np.clip(t, 0.01, None)],
         g=lambda x, t: TF.kl_div(x, t, reduction=reduction), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name,kw,data", [
    ("mse_loss", {}, regression), ("l1_loss", {}, regression), ("smooth_l1_loss", {"beta": 0.7}, regression),
    ("huber_loss", {"delta": 0.7}, regression), ("binary_cross_entropy_with_logits", {}, regression),
    ("binary_cross_entropy", {}, probabilities), ("kl_div", {}, probabilities),
    ("kl_div", {"log_target": True}, regression)])
def test_pointwise_gradcheck(name, kw, data):
    x, t = data(seed=11)
    if data is probabilities:  # away from the clamp and t = 0
        x, t = np.clip(x, 0.05, 0.95), np.clip(t, 0.05, 0.95)
    else:
        t = x + np.random.default_rng(12).uniform(0.1, 0.4, x.shape) * np.sign(t - x + 1e-9)  # off the kinks
    xs = [gpucnn.tensor(a, requires_grad=True) for a in (x, t)]
    assert gpucnn.gradcheck(lambda x, t: getattr(F, name)(x, t, **kw), xs)


@pytest.mark.parametrize("call,error,match", [
    (lambda x: F.mse_loss(x, gpucnn.zeros(3)), ShapeError,
     r"mse_loss: target has shape \(3,\), expected the input's shape \(2, 3\)"),
    (lambda x: F.l1_loss(x, gpucnn.zeros(2, 3, dtype=gpucnn.float64)), ArgumentError,
     r"l1_loss: target has dtype float64, expected float32"),
    (lambda x: F.mse_loss(x, gpucnn.tensor([[1, 2, 3], [4, 5, 6]])), ArgumentError,
     r"mse_loss: target must have a floating-point dtype"),
    (lambda x: F.mse_loss(x, x, weight=gpucnn.ones(3)), ShapeError,
     r"mse_loss: weight has shape \(3,\), expected the input's shape \(2, 3\)"),
    (lambda x: F.binary_cross_entropy(x + 2, x), ArgumentError,
     r"binary_cross_entropy: all elements of input must be probabilities in \[0, 1\], got values in \[2, 2\]"),
    (lambda x: F.binary_cross_entropy(x, x, weight=gpucnn.ones(4)), ShapeError,
     r"weight of shape \(4,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda x: F.binary_cross_entropy_with_logits(x, x, pos_weight=gpucnn.ones(2)), ShapeError,
     r"pos_weight of shape \(2,\) does not broadcast"),
    (lambda x: F.binary_cross_entropy_with_logits(x, x, pos_weight=gpucnn.ones(3, requires_grad=True)),
     ArgumentError, r"pos_weight requires grad, but gradients with respect to pos_weight are not computed"),
    (lambda x: F.smooth_l1_loss(x, x, beta=-1), ArgumentError, r"smooth_l1_loss: beta must be a number >= 0, got -1"),
    (lambda x: F.huber_loss(x, x, delta=0), ArgumentError, r"huber_loss: delta must be a number > 0, got 0"),
    (lambda x: F.kl_div(x, x, reduction="batch"), ArgumentError,
     r"kl_div: reduction must be 'none', 'batchmean', 'sum' or 'mean', got 'batch'"),
])
def test_pointwise_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(gpucnn.zeros(2, 3))


def test_float32_stays_float32():
    x, t = regression(dtype=np.float32)
    xo, to = gpucnn.tensor(x, requires_grad=True), gpucnn.tensor(t)
    for name, kw in POINTWISE:
        loss = getattr(F, name)(xo, to, **kw)
        loss.backward()
        assert loss.dtype == np.float32 and xo.grad.dtype == np.float32, name
        xo.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert F.cross_entropy(xo, gpucnn.tensor([0, 1, 2]), label_smoothing=0.1).dtype == np.float32
