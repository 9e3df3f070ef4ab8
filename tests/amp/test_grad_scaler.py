"""gpucnn.amp.GradScaler against torch.amp.GradScaler: the same sequence of scales, skipped steps and
weights on the same gradient stream (with gradients that overflow and injected inf/NaN), its state_dict,
and the misuse PyTorch refuses."""
import json

import numpy as np
import pytest

import gpucnn
from gpucnn.amp import GradScaler, GradScalerError
from gpucnn.errors import ArgumentError

torch = pytest.importorskip("torch")
# The stream's overflowing gradients make NumPy warn; that is the point of the test.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

# Per step, the coefficients c of the loss sum(c * w): the gradient is c * scale. 1e36 * 2**k overflows
# float32 for the scales here (2**7 .. 2**16); inf and NaN are injected directly.
STREAM = ([1.0] * 4 + [1e36] + [1.0] * 3 + [np.inf] + [0.5] * 5 + [np.nan] + [1.0] * 6 + [-1e36, 1e36]
          + [2.0] * 7)


def _grad_stream(step):
    c = np.array([0.25, -1.0, 3.0], np.float32) * np.float32(1.0)
    special = STREAM[step]
    if special != 1.0:
        c[1] = special
    return c


def _run(framework, steps, start=0, state=None, w0=None, **kw):
    """Scales, skipped flags and the weights after each step, with plain SGD on w (3 values; lr a power of
    two: the weights are exact, so equal weights mean equal unscaled gradients)."""
    w0 = np.array([1.0, 2.0, -1.0], np.float32) if w0 is None else w0
    if framework == "torch":
        w = torch.tensor(w0, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.125)
        scaler = torch.amp.GradScaler("cpu", **kw)
        tensor = torch.tensor
    else:
        w = gpucnn.tensor(w0, requires_grad=True)
        opt = gpucnn.optim.SGD([w], lr=0.125)
        scaler = GradScaler("cpu", **kw)
        tensor = gpucnn.tensor
    if state is not None:
        scaler.load_state_dict(state)
    record = []
    for step in range(start, steps):
        opt.zero_grad()
        loss = (w * tensor(_grad_stream(step))).sum()
        scaler.scale(loss).backward()
        before = np.array(w.detach().numpy())
        scaler.step(opt)
        scaler.update()
        after = np.array(w.detach().numpy())
        record.append((scaler.get_scale(), bool(np.array_equal(before, after)), after))
    return record, scaler


@pytest.mark.parametrize("kw", [dict(growth_interval=3), dict(init_scale=2.0 ** 10, growth_factor=4.0,
                                                                backoff_factor=0.25, growth_interval=2),
                                 dict()])
def test_the_same_scales_skips_and_weights_as_pytorch(kw):
    ours, scaler = _run("gpucnn", len(STREAM), **kw)
    ref, tscaler = _run("torch", len(STREAM), **kw)
    for step, ((s, skipped, w), (ts, tskipped, tw)) in enumerate(zip(ours, ref)):
        assert s == ts, f"step {step}: scale {s} != PyTorch's {ts}"
        assert skipped == tskipped, f"step {step}: skipped {skipped}, PyTorch {tskipped}"
        np.testing.assert_array_equal(w, tw, err_msg=f"step {step}")
    assert sum(skipped for _, skipped, _ in ours) >= 4  # the stream's overflows and injected inf/NaN
    assert scaler.state_dict() == tscaler.state_dict()


def test_the_scale_grows_but_never_to_inf():
    scaler = GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1)
    w = gpucnn.tensor([1.0], requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=0.0)
    tscaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1)
    tw = torch.tensor([1.0], requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.0)
    for _ in range(2):
        scaler.scale(w.sum() * 0.0).backward()
        scaler.step(opt)
        scaler.update()
        tscaler.scale(tw.sum() * 0.0).backward()
        tscaler.step(topt)
        tscaler.update()
    assert scaler.get_scale() == tscaler.get_scale() == 2.0 ** 127


def test_state_dict_round_trips_and_resumes_the_sequence():
    whole, _ = _run("gpucnn", len(STREAM), growth_interval=3)
    first, scaler = _run("gpucnn", 10, growth_interval=3)
    state = scaler.state_dict()
    assert set(state) == {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
    assert json.loads(json.dumps(state)) == state  # JSON-able: it goes into the training checkpoint
    rest, resumed = _run("gpucnn", len(STREAM), start=10, state=json.loads(json.dumps(state)), w0=first[-1][2])
    for (s, skipped, w), (s2, skipped2, w2) in zip(whole, first + rest):
        assert (s, skipped) == (s2, skipped2)
        np.testing.assert_array_equal(w, w2)
    assert resumed.get_growth_interval() == 3  # from the state, not the constructor's default


def test_unscale_once_then_step_sees_the_true_gradients():
    w = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu", init_scale=1024.0)
    scaler.scale((w * gpucnn.tensor([3.0, -0.5])).sum()).backward()
    assert w.grad.numpy().tolist() == [3072.0, -512.0]
    scaler.unscale_(opt)
    assert w.grad.numpy().tolist() == [3.0, -0.5]
    with pytest.raises(GradScalerError, match=r"unscale_\(\) has already been called on this optimizer"):
        scaler.unscale_(opt)
    scaler.step(opt)  # does not unscale again
    assert w.numpy().tolist() == [-2.0, 2.5]
    with pytest.raises(GradScalerError, match=r"step\(\) has already been called since the last update"):
        scaler.step(opt)
    with pytest.raises(GradScalerError, match=r"unscale_\(\) is being called after step"):
        scaler.unscale_(opt)
    scaler.update()
    scaler.unscale_(opt)  # a new step may unscale again


def test_float16_master_weights_are_refused():
    w = gpucnn.tensor([1.0, 2.0], dtype=gpucnn.float16, requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu")
    scaler.scale(w.sum()).backward()
    with pytest.raises(ArgumentError, match="parameter 0 of SGD has float16 gradients.*keep the master weights "
                                            "in float32.*Attempting to unscale FP16 gradients"):
        scaler.step(opt)


def test_bfloat16_gradients_are_unscaled_in_their_dtype():
    w = gpucnn.tensor([1.0, 3.0], dtype=gpucnn.bfloat16, requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu", init_scale=8.0)
    scaler.scale(w.sum()).backward()
    scaler.unscale_(opt)
    assert w.grad.dtype == gpucnn.bfloat16 and w.grad.numpy().astype(np.float32).tolist() == [1.0, 1.0]


def test_misuse_is_refused_with_pytorchs_reasons():
    w = gpucnn.tensor([1.0], requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu")
    with pytest.raises(GradScalerError, match=r"step\(\) before any scale\(\)"):
        scaler.step(opt)
    scaler.scale(w.sum()).backward()
    with pytest.raises(GradScalerError, match="no inf checks were recorded"):
        scaler.update()
    with pytest.raises(GradScalerError, match="closures are not supported"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(ArgumentError, match="outputs must be a Tensor or an iterable of Tensors, got float"):
        scaler.scale(1.0)
    with pytest.raises(ArgumentError, match="growth_factor must be > 1.0, got 1.0"):
        GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ArgumentError, match=r"backoff_factor must be in \(0, 1\), got 1.5"):
        GradScaler("cpu", backoff_factor=1.5)
    with pytest.raises(GradScalerError, match="state dict is empty"):
        scaler.load_state_dict({})


def test_scale_takes_nested_lists_and_tuples():
    scaler = GradScaler("cpu", init_scale=4.0)
    a, b = gpucnn.tensor([1.0]), gpucnn.tensor([2.0])
    out = scaler.scale([a, (b, a)])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    assert [out[0].item(), out[1][0].item(), out[1][1].item()] == [4.0, 8.0, 4.0]


def test_update_with_a_new_scale():
    scaler = GradScaler("cpu")
    scaler.scale(gpucnn.tensor([1.0]))
    scaler.update(128.0)
    assert scaler.get_scale() == 128.0
    scaler.update(gpucnn.tensor([32.0]))
    assert scaler.get_scale() == 32.0


def test_disabled_is_a_pass_through_and_cuda_without_a_gpu_disables_itself():
    w = gpucnn.tensor([1.0], requires_grad=True)
    opt = gpucnn.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu", enabled=False)
    loss = w.sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    assert w.item() == 0.0 and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    if not gpucnn.cuda_available():
        with pytest.warns(UserWarning, match="CUDA is not available. Disabling"):
            assert not GradScaler().is_enabled()
