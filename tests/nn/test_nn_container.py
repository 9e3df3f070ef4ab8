"""Sequential's reordering of ReLU -> max pooling (pooling first): where it applies, and that outputs and
gradients equal the written order's exactly, on every device kind and pooling path."""
import numpy as np
import pytest

import gpucnn
from gpucnn import nn


def _ties_and_negatives(shape, seed):
    """Small integers, so windows hold exact ties, and windows with no positive value (ReLU's zeros)."""
    return np.random.default_rng(seed).integers(-3, 3, size=shape).astype(np.float64)


def _layers(pool):
    gpucnn.manual_seed(0)
    conv = nn.Conv1d(2, 3, 3, padding=1) if isinstance(pool, nn.MaxPool1d) else nn.Conv2d(2, 3, 3, padding=1)
    for p in conv.parameters():  # integer weights keep the conv's output integral: ties survive it
        p.data[...] = _ties_and_negatives(p.shape, 1)
    return [conv, nn.ReLU(), pool, nn.Flatten()]


def _run(forward, layers, x, gy, device):
    """Output and gradients (input, then every parameter) of ``forward`` on ``device``."""
    for layer in layers:
        layer.to(device)
    xt = gpucnn.tensor(x, device=device, requires_grad=True)
    out = forward(xt)
    (out * gpucnn.tensor(gy, device=device)).sum().backward()
    grads = [xt.grad] + [p.grad for layer in layers for p in layer.parameters()]
    return [np.asarray(t.numpy()) for t in [out, *grads]]


POOLS = [
    lambda: nn.MaxPool2d(2),  # tiles the input: the NumPy path's separable forward
    lambda: nn.MaxPool2d(3, stride=2, padding=1),  # overlapping windows over padding: the scan
    lambda: nn.MaxPool2d(2, ceil_mode=True),  # windows past the edge
    lambda: nn.MaxPool2d(2, stride=1, dilation=2),
    lambda: nn.MaxPool1d(2),
]


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make_pool", POOLS)
def test_pool_before_relu_equals_the_written_order(make_pool, dtype, device):
    pool = make_pool()
    shape = (3, 2, 9) if isinstance(pool, nn.MaxPool1d) else (3, 2, 7, 9)
    x = _ties_and_negatives(shape, 2).astype(dtype)
    layers = [layer.to(dtype=dtype) for layer in _layers(pool)]
    written = layers[0]
    for layer in layers[1:]:  # called one by one, outside any Sequential: the written order
        written = (lambda f, g: lambda t: g(f(t)))(written, layer)
    out_shape = nn.Sequential(*layers)(gpucnn.tensor(x)).shape
    gy = np.random.default_rng(3).standard_normal(out_shape).astype(dtype)
    expected = _run(written, layers, x, gy, device)
    for layer in layers:
        layer.zero_grad()
    got = _run(nn.Sequential(*layers), layers, x, gy, device)
    assert expected[0].size and (expected[0] == 0).any() and (expected[0] > 0).any()
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_relu_runs_on_the_pooled_tensor(monkeypatch):
    seen = []
    relu = gpucnn.functional.relu
    monkeypatch.setattr(gpucnn.functional, "relu", lambda t: seen.append(t.shape) or relu(t))
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())
    model(gpucnn.zeros(2, 1, 8, 8))
    assert seen == [(2, 4, 4, 4), (2, 4, 4, 4)]  # the first ReLU after the pool; the second as written


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 in both orders
def test_non_finite_values_and_gradients_match_the_written_order():
    x = np.array([[[[np.nan, -1, 2, -np.inf], [0, -2, np.inf, 1], [-1, -2, -3, -4], [-5, 0, 0, -1]]]])
    gy = np.array([[[[np.inf, -np.inf], [2.0, -np.inf]]]])
    relu, pool = nn.ReLU(), nn.MaxPool2d(2)
    expected = _run(lambda t: pool(relu(t)), [relu, pool], x, gy, "cpu")
    got = _run(nn.Sequential(relu, pool), [relu, pool], x, gy, "cpu")
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("hooked", [0, 1])
def test_a_forward_hook_keeps_the_written_order(hooked):
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    seen = []
    model[hooked].register_forward_hook(lambda m, args, out: seen.append((type(m).__name__, args[0].shape)))
    model(gpucnn.zeros(1, 1, 4, 4))
    assert seen == [("ReLU", (1, 1, 4, 4))] if hooked == 0 else [("MaxPool2d", (1, 1, 4, 4))]
    pre = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    pre[1].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    pre(gpucnn.zeros(1, 1, 4, 4))
    assert seen[-1] == (1, 1, 4, 4)  # the pool's input is ReLU's output, as written


def test_the_summary_shows_the_written_order():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    text = model.summary((1, 8, 8))
    lines = [line for line in text.splitlines() if "ReLU" in line or "MaxPool2d" in line]
    assert "(None, 4, 8, 8)" in lines[0] and "ReLU" in lines[0]
    assert "(None, 4, 4, 4)" in lines[1] and "MaxPool2d" in lines[1]


def test_relu_then_a_pool_returning_indices_runs_in_the_written_order():
    """The pool-before-ReLU swap would return the indices of the pre-ReLU maxima: it is off for
    return_indices (a tie of zeros after ReLU picks the first zero, not the pre-ReLU maximum)."""
    x = gpucnn.tensor(np.array([[[[-1.0, -3.0], [-2.0, 0.5]], [[-4.0, -1.0], [-2.0, -3.0]]]], np.float32))
    seq = gpucnn.nn.Sequential(gpucnn.nn.ReLU(), gpucnn.nn.MaxPool2d(2, return_indices=True))
    y, idx = seq(x)
    ry, ridx = gpucnn.nn.functional.max_pool2d(gpucnn.nn.functional.relu(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ry.numpy())
    np.testing.assert_array_equal(idx.numpy(), ridx.numpy())
    assert idx.numpy().ravel().tolist() == [3, 0]
