"""gpucnn.optim optimizers against independent references (PyTorch's documented algorithms, written
here as element-by-element loops over Python floats), plus state dicts, validation and an end-to-end fit."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import optim
from gpucnn.errors import ArgumentError, ModelFormatError

SHAPE = (3, 4)
STEPS = 6


# -- references: one parameter element at a time, in Python floats (float64) ----------------------
def ref_sgd(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    theta = [float(v) for v in np.ravel(theta)]
    buf = [None] * len(theta)
    out = []
    for g_arr in grads:
        for i, g in enumerate(np.ravel(g_arr)):
            g = -float(g) if maximize else float(g)
            if weight_decay:
                g += weight_decay * theta[i]
            if momentum:
                buf[i] = g if buf[i] is None else momentum * buf[i] + (1 - dampening) * g
                g = g + momentum * buf[i] if nesterov else buf[i]
            theta[i] -= lr * g
        out.append(np.array(theta).reshape(np.shape(g_arr)))
    return out


def ref_adam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    theta = [float(v) for v in np.ravel(theta)]
    n = len(theta)
    m, v, vmax = [0.0] * n, [0.0] * n, [0.0] * n
    out = []
    for t, g_arr in enumerate(grads, start=1):
        for i, g in enumerate(np.ravel(g_arr)):
            g = -float(g) if maximize else float(g)
            if weight_decay and decoupled:
                theta[i] *= 1 - lr * weight_decay
            elif weight_decay:
                g += weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            if amsgrad:
                vmax[i] = max(vmax[i], v[i])
                v_use = vmax[i]
            else:
                v_use = v[i]
            theta[i] -= lr * m_hat / (math.sqrt(v_use) / math.sqrt(1 - b2 ** t) + eps)
        out.append(np.array(theta).reshape(np.shape(g_arr)))
    return out


def ref_rmsprop(theta, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    theta = [float(v) for v in np.ravel(theta)]
    n = len(theta)
    sq, gav, buf = [0.0] * n, [0.0] * n, [0.0] * n
    out = []
    for g_arr in grads:
        for i, g in enumerate(np.ravel(g_arr)):
            g = -float(g) if maximize else float(g)
            if weight_decay:
                g += weight_decay * theta[i]
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g
            var = sq[i]
            if centered:
                gav[i] = alpha * gav[i] + (1 - alpha) * g
                var = var - gav[i] ** 2
            denom = math.sqrt(var) + eps
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / denom
                theta[i] -= lr * buf[i]
            else:
                theta[i] -= lr * g / denom
        out.append(np.array(theta).reshape(np.shape(g_arr)))
    return out


# -- helpers ----------------------------------------------------------------------------------------
def problem(seed=0, steps=STEPS, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(steps)]


def run(make, theta, grads, dtype=np.float64):
    p = gpucnn.tensor(np.asarray(theta, dtype=dtype), requires_grad=True)
    opt = make([p])
    traj = []
    for g in grads:
        p.grad = gpucnn.tensor(np.asarray(g, dtype=dtype))
        opt.step()
        traj.append(p.numpy())
    return traj, p, opt


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.1, maximize=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.1, maximize=True),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
]
ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.05, weight_decay=0.1, amsgrad=True),
    dict(lr=0.01, betas=(0.5, 0.8), eps=1e-6),
    dict(lr=0.01, maximize=True),
]
ADAMW_CASES = [dict(lr=0.1), dict(lr=0.1, weight_decay=0.3), dict(lr=0.05, amsgrad=True, weight_decay=0.2)]
RMSPROP_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.01, centered=True),
    dict(lr=0.01, alpha=0.9, weight_decay=0.1),
    dict(lr=0.01, momentum=0.5, centered=True, maximize=True, eps=1e-6),
]
ALL_CASES = ([(optim.SGD, ref_sgd, kw) for kw in SGD_CASES]
             + [(optim.Adam, ref_adam, kw) for kw in ADAM_CASES]
             + [(optim.AdamW, lambda *a, **k: ref_adam(*a, decoupled=True, **{"weight_decay": 1e-2, **k}), kw)
                for kw in ADAMW_CASES]
             + [(optim.RMSprop, ref_rmsprop, kw) for kw in RMSPROP_CASES])
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, _, kw in ALL_CASES]


@pytest.mark.parametrize("cls,ref,kw", ALL_CASES, ids=IDS)
def test_matches_reference_float64(cls, ref, kw):
    theta, grads = problem()
    ours, _, _ = run(lambda ps: cls(ps, **kw), theta, grads)
    expected = ref(theta, grads, **kw)
    for t, (a, b) in enumerate(zip(ours, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {t + 1}")


@pytest.mark.parametrize("cls,ref,kw", ALL_CASES, ids=IDS)
def test_float32_stays_float32_and_close(cls, ref, kw):
    theta, grads = problem(seed=1)
    p = gpucnn.tensor(theta.astype(np.float32), requires_grad=True)
    array = p.data
    opt = cls([p], **kw)
    for g in grads:
        p.grad = gpucnn.tensor(g.astype(np.float32))
        opt.step()
    assert p.data is array, "the parameter's array must be updated in place"
    assert p.dtype == np.float32
    for name, value in opt.state[p].items():
        if name != "step":
            assert value.dtype == np.float32, name
    expected = ref(theta.astype(np.float32).astype(np.float64),
                   [g.astype(np.float32).astype(np.float64) for g in grads], **kw)[-1]
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_float32_with_numpy_float64_hyperparameters():
    p = gpucnn.tensor(np.ones(5, np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=np.float64(0.1), betas=(np.float64(0.9), np.float64(0.99)), eps=np.float64(1e-8),
                     weight_decay=np.float64(0.01))
    p.grad = gpucnn.tensor(np.ones(5, np.float32))
    opt.step()
    assert p.dtype == np.float32 and all(v.dtype == np.float32 for k, v in opt.state[p].items() if k != "step")


def test_grad_none_is_skipped():
    a = gpucnn.tensor(np.ones(3), requires_grad=True)
    b = gpucnn.tensor(np.ones(3), requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop):
        opt = cls([a, b], lr=0.1)
        a.grad, b.grad = gpucnn.tensor(np.ones(3)), None
        before = b.numpy()
        opt.step()
        np.testing.assert_array_equal(b.numpy(), before)
        assert b not in opt.state and a in opt.state
        assert not np.array_equal(a.numpy(), np.ones(3))
        assert opt.state_dict()["state"].keys() == {0}


def test_param_groups_with_different_lrs():
    theta, grads = problem(seed=2)
    theta2, grads2 = problem(seed=3, shape=(5,))
    p = gpucnn.tensor(theta, requires_grad=True)
    q = gpucnn.tensor(theta2, requires_grad=True)
    opt = optim.SGD([{"params": [p]}, {"params": q, "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"][0] is q and opt.param_groups[1]["momentum"] == 0.0
    for g, g2 in zip(grads, grads2):
        p.grad, q.grad = gpucnn.tensor(g), gpucnn.tensor(g2)
        opt.step()
    np.testing.assert_allclose(p.numpy(), ref_sgd(theta, grads, lr=0.1, momentum=0.9)[-1], rtol=1e-12)
    np.testing.assert_allclose(q.numpy(), ref_sgd(theta2, grads2, lr=0.5)[-1], rtol=1e-12)


def test_add_param_group_and_lr_change_take_effect():
    p = gpucnn.tensor([1.0], requires_grad=True)
    q = gpucnn.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.add_param_group({"params": [q], "lr": 0.2})
    opt.param_groups[0]["lr"] = 0.3
    p.grad, q.grad = gpucnn.tensor([1.0]), gpucnn.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([p.item(), q.item()], [0.7, 0.8], rtol=1e-6)
    with pytest.raises(ArgumentError, match="more than once"):
        opt.add_param_group({"params": [p]})


def test_zero_grad():
    p = gpucnn.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = gpucnn.tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_closure_and_autograd_gradients():
    p = gpucnn.tensor([3.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(9.0)
    assert p.item() == pytest.approx(3.0 - 0.25 * 6.0)


def test_emu_device_params():
    theta, grads = problem(seed=4)
    p = gpucnn.tensor(theta, device="emu", requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    for g in grads:
        p.grad = gpucnn.tensor(g, device="emu")
        opt.step()
    assert p.device == "emu"
    np.testing.assert_allclose(p.numpy(), ref_adam(theta, grads, lr=0.01)[-1], rtol=1e-10)


@pytest.mark.cuda
@pytest.mark.skipif(not gpucnn.cuda_available(), reason="needs a CUDA GPU (CuPy)")
@pytest.mark.parametrize("cls,ref,kw", [ALL_CASES[1], ALL_CASES[3], ALL_CASES[len(SGD_CASES) + 3],
                                        ALL_CASES[-1], ALL_CASES[len(SGD_CASES) + len(ADAM_CASES)]])
def test_cuda_matches_reference_and_state_round_trip(cls, ref, kw):
    theta, grads = problem(seed=5)
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        p = gpucnn.tensor(theta.astype(dtype), device="cuda", requires_grad=True)
        array = p.data
        opt = cls([p], **kw)
        for g in grads[:3]:
            p.grad = gpucnn.tensor(g.astype(dtype), device="cuda")
            opt.step()
        sd = host_round_trip(opt.state_dict())             # arrays come back to the host (npz) ...
        p2 = gpucnn.tensor(p.numpy(), device="cuda", requires_grad=True)
        opt2 = cls([p2], lr=1.0)
        opt2.load_state_dict(sd)                            # ... and go back to the GPU
        for name, value in opt2.state[p2].items():
            if name != "step":
                assert type(value) is type(p2.data) and value.dtype == dtype
        for g in grads[3:]:
            for q, o in ((p, opt), (p2, opt2)):
                q.grad = gpucnn.tensor(g.astype(dtype), device="cuda")
                o.step()
        assert p.data is array and p.dtype == dtype
        np.testing.assert_array_equal(p.numpy(), p2.numpy())
        np.testing.assert_allclose(p.numpy(), ref(theta.astype(dtype).astype(np.float64),
                                                  [g.astype(dtype).astype(np.float64) for g in grads], **kw)[-1],
                                   rtol=rtol, atol=1e-5 if dtype == np.float32 else 1e-12)


# -- state dicts --------------------------------------------------------------------------------------
def host_round_trip(sd):
    """What a pickle-free serializer does: JSON for the structure, an .npz for the arrays."""
    arrays, state = {}, {}
    for key, entry in sd["state"].items():
        state[str(key)] = {}
        for name, value in entry.items():
            if name == "step":
                state[str(key)][name] = value
            else:
                host = value if isinstance(value, np.ndarray) else value.get()
                arrays[f"{key}/{name}"] = host
                state[str(key)][name] = f"@{key}/{name}"
    meta = json.loads(json.dumps({"param_groups": sd["param_groups"], "state": state}))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    for entry in meta["state"].values():
        for name, value in entry.items():
            if isinstance(value, str) and value.startswith("@"):
                entry[name] = loaded[value[1:]]
    return meta


OPTIMIZER_FACTORIES = [
    ("sgd-nesterov", lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam-amsgrad", lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True)),
    ("adamw", lambda ps: optim.AdamW(ps, lr=0.01)),
    ("rmsprop-centered", lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True)),
]


@pytest.mark.parametrize("name,make", OPTIMIZER_FACTORIES, ids=[n for n, _ in OPTIMIZER_FACTORIES])
def test_state_dict_round_trip_continues_bit_identically(name, make):
    rng = np.random.default_rng(7)
    thetas = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    grads = [[rng.standard_normal(t.shape).astype(np.float32) for t in thetas] for _ in range(8)]

    def setup(values, lr2=0.003):
        ps = [gpucnn.tensor(v, requires_grad=True) for v in values]
        return ps, make([{"params": ps[:1]}, {"params": ps[1:], "lr": lr2}])

    def step(ps, opt, gs):
        for p, g in zip(ps, gs):
            p.grad = gpucnn.tensor(g)
        opt.step()

    ref_params, ref_opt = setup(thetas)              # uninterrupted
    for gs in grads:
        step(ref_params, ref_opt, gs)

    params, opt = setup(thetas)                      # interrupted after 4 steps
    for gs in grads[:4]:
        step(params, opt, gs)
    sd = opt.state_dict()
    json.dumps(sd["param_groups"])                   # the groups are JSON-able as they are
    saved = host_round_trip(sd)
    at_checkpoint = [p.numpy() for p in params]

    snapshot = {k: {n: (v if n == "step" else v.copy()) for n, v in e.items()} for k, e in sd["state"].items()}
    step(params, opt, grads[4])                      # a state dict is a snapshot: later steps leave it alone
    for k, e in sd["state"].items():
        for n, v in e.items():
            np.testing.assert_array_equal(v, snapshot[k][n])

    # resume: parameters as they were at the checkpoint, a fresh optimizer with other hyper-parameters
    resumed_params, resumed = setup(at_checkpoint, lr2=1.0)
    resumed.param_groups[0]["lr"] = 123.0
    resumed.load_state_dict(saved)
    assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    for gs in grads[4:]:
        step(resumed_params, resumed, gs)
    for a, b in zip(resumed_params, ref_params):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert resumed.state[resumed_params[0]]["step"] == 8


def test_state_dict_format():
    p = gpucnn.tensor(np.zeros((2, 2), np.float32), requires_grad=True)
    q = gpucnn.tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = optim.Adam([p, q], lr=0.1, betas=(0.8, 0.9))
    p.grad = gpucnn.tensor(np.ones((2, 2), np.float32))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"] == [{"lr": 0.1, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0,
                                   "amsgrad": False, "maximize": False, "params": [0, 1]}]
    assert list(sd["state"]) == [0]
    assert sd["state"][0]["step"] == 1 and type(sd["state"][0]["step"]) is int
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert isinstance(sd["state"][0]["exp_avg"], np.ndarray) and sd["state"][0]["exp_avg"].shape == (2, 2)
    opt.load_state_dict(json.loads(json.dumps({"param_groups": sd["param_groups"], "state": {}})))
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert [id(t) for t in opt.param_groups[0]["params"]] == [id(p), id(q)]
    assert len(opt.state) == 0


def _trained(cls=optim.SGD, **kw):
    p = gpucnn.tensor(np.ones((2, 3)), requires_grad=True)
    q = gpucnn.tensor(np.ones(4), requires_grad=True)
    opt = cls([p, q], lr=0.1, **kw)
    p.grad, q.grad = gpucnn.tensor(np.ones((2, 3))), gpucnn.tensor(np.ones(4))
    opt.step()
    return opt


@pytest.mark.parametrize("mutate,match", [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), r"2 parameter group\(s\), this optimizer has 1"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), r"group 0 has 1 parameter\(s\) in the state dict, 2 in this"),
    (lambda sd: sd["state"][0].update(momentum_buffer=np.zeros((3, 2))), r"momentum_buffer.*shape \(3, 2\).*\(2, 3\)"),
    (lambda sd: sd["state"][1].update(exp_avg=np.zeros(4)), r"unknown entry 'exp_avg'.*another optimizer"),
    (lambda sd: sd["state"].update({5: {"step": 1}}), r"parameter 5, which is in no parameter group"),
    (lambda sd: sd["state"][0].update(step=-1), r"'step' must be a non-negative integer"),
    (lambda sd: sd["state"][0].update(momentum_buffer="x"), r"must be an array"),
    (lambda sd: sd.pop("state"), r"lacks 'state'"),
    (lambda sd: sd["param_groups"][0].update(lr=-1.0), r"lr must be a number >= 0, got -1.0"),
])
def test_load_state_dict_mismatch_errors(mutate, match):
    opt = _trained(momentum=0.9)
    before = opt.state_dict()
    sd = opt.state_dict()
    mutate(sd)
    with pytest.raises(ModelFormatError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()  # nothing changed
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        np.testing.assert_array_equal(after["state"][k]["momentum_buffer"], before["state"][k]["momentum_buffer"])


def test_load_state_dict_from_another_optimizer_or_not_a_dict():
    adam = _trained(optim.Adam)
    sgd = _trained(optim.SGD, momentum=0.9)
    with pytest.raises(ModelFormatError, match="unknown entry 'momentum_buffer'"):
        adam.load_state_dict(sgd.state_dict())
    with pytest.raises(ModelFormatError, match="SGD.load_state_dict: expected a dict"):
        sgd.load_state_dict([1, 2])
    sd = adam.state_dict()
    del sd["state"][0]["exp_avg_sq"]
    with pytest.raises(ModelFormatError, match="lacks 'exp_avg_sq'"):
        adam.load_state_dict(sd)


def test_load_state_dict_accepts_string_keys_and_casts_to_param_dtype():
    opt = _trained(optim.Adam)
    sd = opt.state_dict()
    sd["state"] = {str(k): {n: (v.astype(np.float32) if n != "step" else np.int64(v)) for n, v in e.items()}
                   for k, e in sd["state"].items()}
    opt.load_state_dict(sd)
    p = opt.param_groups[0]["params"][0]
    assert opt.state[p]["exp_avg"].dtype == np.float64 and opt.state[p]["step"] == 1


# -- validation ---------------------------------------------------------------------------------------
def _p():
    return gpucnn.tensor(np.zeros(3), requires_grad=True)


@pytest.mark.parametrize("make,match", [
    (lambda: optim.SGD([_p()], lr=-0.1), r"^SGD: lr must be a number >= 0, got -0.1$"),
    (lambda: optim.SGD([_p()], lr="fast"), r"SGD: lr must be a number >= 0, got 'fast'"),
    (lambda: optim.SGD([_p()], momentum=-0.5), r"SGD: momentum must be a number >= 0, got -0.5"),
    (lambda: optim.SGD([_p()], weight_decay=-1), r"SGD: weight_decay must be a number >= 0, got -1"),
    (lambda: optim.SGD([_p()], nesterov=True), r"SGD: nesterov=True requires momentum > 0 and dampening == 0"),
    (lambda: optim.SGD([_p()], momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0.1"),
    (lambda: optim.Adam([_p()], betas=(1.0, 0.999)), r"Adam: betas\[0\] must be a number in \[0, 1\), got 1.0"),
    (lambda: optim.Adam([_p()], betas=(0.9, -0.1)), r"Adam: betas\[1\] must be a number in \[0, 1\), got -0.1"),
    (lambda: optim.Adam([_p()], betas=0.9), r"Adam: betas must be a pair"),
    (lambda: optim.AdamW([_p()], eps=0), r"AdamW: eps must be a number > 0, got 0"),
    (lambda: optim.Adam([_p()], eps=-1e-8), r"Adam: eps must be a number > 0"),
    (lambda: optim.Adam([_p()], lr=float("nan")), r"Adam: lr must be a number >= 0, got nan"),
    (lambda: optim.RMSprop([_p()], alpha=1.5), r"RMSprop: alpha must be a number in \[0, 1\], got 1.5"),
    (lambda: optim.RMSprop([_p()], momentum=-1), r"RMSprop: momentum must be a number >= 0"),
    (lambda: optim.SGD([], lr=0.1), r"SGD: got an empty parameter list"),
    (lambda: optim.Adam(iter(()), lr=0.1), r"Adam: got an empty parameter list"),
    (lambda: optim.SGD([_p(), 3], lr=0.1), r"SGD: params must be Tensors, got int at position 1"),
    (lambda: optim.SGD(_p(), lr=0.1), r"SGD: params must be .*got a single Tensor"),
    (lambda: optim.SGD(None, lr=0.1), r"SGD: params must be .*got NoneType"),
    (lambda: optim.SGD({_p()}, lr=0.1), r"SGD: params must be an ordered collection"),
    (lambda: optim.SGD([gpucnn.tensor([1, 2])], lr=0.1), r"SGD: can only optimize floating-point tensors"),
    (lambda: optim.SGD([_p() * 2], lr=0.1), r"SGD: can't optimize a non-leaf tensor"),
    (lambda: optim.SGD([{"params": [_p()]}, {"params": [_p()], "lr": -1}]),
     r"SGD \(parameter group 1\): lr must be a number >= 0, got -1"),
    (lambda: optim.SGD([{"lr": 0.1}]), r"SGD \(parameter group 0\): a parameter group needs a 'params' entry"),
    (lambda: optim.SGD([{"params": [_p()]}, _p()]), r"SGD: params mixes Tensors and parameter-group dicts"),
])
def test_validation_errors(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


def test_duplicate_params_rejected_and_generators_accepted():
    p = _p()
    with pytest.raises(ArgumentError, match="appears more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ArgumentError, match="appears more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    opt = optim.SGD((t for t in [p, _p()]), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2


def test_gradient_shape_mismatch_is_a_shape_error():
    p = _p()
    opt = optim.SGD([p], lr=0.1)
    p.grad = gpucnn.tensor(np.zeros(4))
    with pytest.raises(gpucnn.ShapeError, match=r"shape \(3,\) has a gradient of shape \(4,\)"):
        opt.step()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3).filter(lambda g: abs(g) > 1e-2), min_size=1, max_size=8),
       st.floats(1e-4, 1.0))
def test_adam_first_step_moves_each_element_by_lr(grads, lr):
    """Bias correction makes Adam's first step lr * sign(g) (up to eps), whatever the scale of g."""
    p = gpucnn.tensor(np.zeros(len(grads)), requires_grad=True)
    opt = optim.Adam([p], lr=lr, eps=1e-12)
    p.grad = gpucnn.tensor(np.array(grads))
    opt.step()
    np.testing.assert_allclose(p.numpy(), -lr * np.sign(grads), rtol=1e-8)


# -- end to end: minimise ||W x - b||^2 ---------------------------------------------------------------
@pytest.mark.parametrize("make,steps", [
    (lambda ps: optim.SGD(ps, lr=0.01), 150),
    (lambda ps: optim.SGD(ps, lr=0.005, momentum=0.9), 150),
    (lambda ps: optim.SGD(ps, lr=0.005, momentum=0.9, nesterov=True), 150),
    (lambda ps: optim.Adam(ps, lr=0.05), 150),
    (lambda ps: optim.AdamW(ps, lr=0.05), 150),
    (lambda ps: optim.RMSprop(ps, lr=0.01), 150),
    (lambda ps: optim.create_optimizer("momentum", ps, lr=0.005), 150),
], ids=["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "factory-momentum"])
def test_minimises_a_quadratic(make, steps):
    rng = np.random.default_rng(11)
    x = gpucnn.tensor(rng.standard_normal((6, 10)).astype(np.float32))
    b = gpucnn.tensor(rng.standard_normal((4, 10)).astype(np.float32))
    W = gpucnn.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    opt = make([W])

    def loss_fn():
        return ((W @ x - b) ** 2).sum()

    first = loss_fn().item()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    last = loss_fn().item()
    assert W.dtype == np.float32
    assert last < first / 10, (first, last)
