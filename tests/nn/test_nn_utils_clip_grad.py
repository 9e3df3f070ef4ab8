"""gpucnn.nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils' on the same gradients: the
returned total norm, the clipped gradients (every norm type, clipping or not), on cpu and emu; errors."""
import math

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import ArgumentError, TrainingError
from gpucnn.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def params(dtype=np.float64, device="cpu", scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    grads = [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]
    ours = [gpucnn.tensor(np.zeros(s, dtype), device=device, requires_grad=True) for s in SHAPES]
    theirs = [torch.zeros(s, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
              for s in SHAPES]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = gpucnn.tensor(g, device=device), torch.tensor(g)
    ours.append(gpucnn.tensor(np.zeros(2, dtype), requires_grad=True))  # no gradient: skipped, as torch
    return ours, theirs


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3, 0.0])
def test_clip_grad_norm_matches_torch(max_norm, norm_type, dtype, device):
    ours, theirs = params(dtype, device)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    assert isinstance(total, gpucnn.Tensor) and total.shape == () and total.dtype == dtype
    assert total.device == device
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=rtol)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=1e-30)


def test_single_tensor_generator_and_no_grads():
    ours, theirs = params()
    assert clip_grad_norm_(ours[0], 0.1).item() == pytest.approx(torch.nn.utils.clip_grad_norm_(theirs[0], 0.1).item())
    model = gpucnn.nn.Linear(3, 2)
    assert clip_grad_norm_(model.parameters(), 1.0).item() == 0.0  # (no gradients yet: 0, as torch)


def test_nonfinite_norm():
    ours, theirs = params()
    ours[0].grad.data[0, 0] = np.nan
    theirs[0].grad[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="clip_grad_norm_: the total norm of order 2.0 of the gradients is "
                                            "non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert np.isnan(clip_grad_norm_(ours, 1.0).item())
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(np.isnan(ours[1].grad.numpy()), np.isnan(theirs[1].grad.numpy()))


@pytest.mark.parametrize("call,match", [
    (lambda p: clip_grad_norm_(p, -1.0), r"clip_grad_norm_: max_norm must be >= 0, got -1"),
    (lambda p: clip_grad_norm_(p, "1"), r"clip_grad_norm_: max_norm must be a number, got '1'"),
    (lambda p: clip_grad_norm_(p, 1.0, norm_type=0), r"norm_type must be a number > 0 or inf, got 0"),
    (lambda p: clip_grad_norm_([np.zeros(2)], 1.0), r"parameters must be tensors .* got ndarray at position 0"),
    (lambda p: clip_grad_value_(p, -0.5), r"clip_grad_value_: clip_value must be >= 0, got -0.5"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ArgumentError, match=match):
        call(params()[0])


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("clip", [0.3, 0.0, 10.0])
def test_clip_grad_value_matches_torch(clip, device):
    ours, theirs = params(np.float32, device, scale=2.0)
    assert clip_grad_value_(ours, clip) is None
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad.numpy(), t.grad.numpy())
        assert o.grad.dtype == np.float32
