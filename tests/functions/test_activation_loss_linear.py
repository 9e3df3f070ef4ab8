"""relu, softmax, log_softmax, dropout, linear and cross_entropy: values, gradients, errors."""
import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, ShapeError
from gpucnn import functional as F


def t64(shape, seed=0, scale=1.0):
    return gpucnn.tensor(np.random.default_rng(seed).standard_normal(shape) * scale, requires_grad=True)


def test_relu_values_and_grad():
    x = gpucnn.tensor([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(F.relu(x).numpy(), [0, 0.5, 2])
    # Away from the kink at 0, finite differences are exact for the piecewise-linear relu.
    gpucnn.gradcheck(F.relu, [t64((3, 4), 1)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family(dim):
    x = t64((3, 4), 2)
    p = F.softmax(x, dim).numpy()
    e = np.exp(x.numpy() - x.numpy().max(axis=dim, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=dim, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, dim).numpy(), np.log(p), rtol=1e-12, atol=1e-14)
    gpucnn.gradcheck(lambda x: F.softmax(x, dim), [x])
    gpucnn.gradcheck(lambda x: F.log_softmax(x, dim), [x])


def test_softmax_is_stable_for_large_logits():
    x = gpucnn.tensor([[1000.0, 0.0], [-1000.0, 0.0]])
    assert np.all(np.isfinite(F.log_softmax(x).numpy()))


def test_dropout_train_and_eval():
    gpucnn.manual_seed(0)
    x = gpucnn.ones(1000)
    y = F.dropout(x, 0.25).numpy()
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # inverted dropout scaling
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ArgumentError, match=r"p must be a number in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_gradient_uses_the_same_mask():
    gpucnn.manual_seed(1)
    x = gpucnn.tensor(np.ones(50), requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())


def test_linear_values_and_grads():
    x, w, b = t64((5, 3), 3), t64((4, 3), 4), t64((4,), 5)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x.numpy() @ w.numpy().T + b.numpy())
    gpucnn.gradcheck(F.linear, [x, w, b])
    gpucnn.gradcheck(lambda x, w: F.linear(x, w), [x, w])


@pytest.mark.parametrize("column_major", [False, True])  # (True: a Flatten of a channel-major activation)
def test_linear_split_over_threads(monkeypatch, column_major):
    """Large enough to split over threads by features (forward: output features; backward: input
    features): float32 results equal a float64 reference and one thread's results to rounding. (Not
    bit for bit: OpenBLAS may round a column block's edge columns differently from the whole.)"""
    from gpucnn import workspace
    from gpucnn.functions import linear as linear_module

    if not workspace._blas_controllers():
        pytest.skip("splitting needs threadpoolctl")
    monkeypatch.setattr(linear_module, "_min_features", lambda batch, other: 1)
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((7, 37)).astype(np.float32)
    wa = rng.standard_normal((11, 37)).astype(np.float32)
    ba = rng.standard_normal(11).astype(np.float32)
    gya = rng.standard_normal((7, 11)).astype(np.float32)

    def run(threads):
        monkeypatch.setattr(workspace, "THREADS", threads)
        w, b = gpucnn.tensor(wa, requires_grad=True), gpucnn.tensor(ba, requires_grad=True)
        if column_major:  # a column-major (7, 37) view, as a Flatten of a channel-major activation is
            leaf = gpucnn.tensor(np.ascontiguousarray(xa.T), requires_grad=True)
            x = leaf.permute(1, 0)
            assert x.data.flags.f_contiguous and not x.data.flags.c_contiguous
        else:
            leaf = x = gpucnn.tensor(xa, requires_grad=True)
        y = F.linear(x, w, b)
        y.backward(gpucnn.tensor(gya))
        gx = leaf.grad.numpy().T if column_major else leaf.grad.numpy()
        return [y.numpy(), gx, w.grad.numpy(), b.grad.numpy()]

    one, two = run(1), run(2)
    for a, c in zip(one, two):
        np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-6)
    x64, w64, gy64 = (a.astype(np.float64) for a in (xa, wa, gya))
    for got, want in zip(two, [x64 @ w64.T + ba, gy64 @ w64, gy64.T @ x64, gy64.sum(axis=0)]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_linear_wrong_features():
    with pytest.raises(ShapeError, match=r"input has 5 features .* expected 3"):
        F.linear(gpucnn.zeros(2, 5), gpucnn.zeros(4, 3))


def test_cross_entropy_value():
    logits = gpucnn.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], dtype=gpucnn.float64)
    target = gpucnn.tensor([0, 1])
    x = logits.numpy()
    log_p = x - np.log(np.exp(x).sum(1, keepdims=True))
    expected = -(log_p[0, 0] + log_p[1, 1]) / 2
    assert F.cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-12)
    assert F.cross_entropy(logits, target, reduction="sum").item() == pytest.approx(2 * expected, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_grad(reduction):
    x = t64((6, 4), 6, scale=2.0)
    target = gpucnn.tensor([0, 3, 1, 1, 2, 0])
    gpucnn.gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), [x])


def test_cross_entropy_bad_labels():
    logits = gpucnn.zeros(2, 3)
    with pytest.raises(ArgumentError, match="integer class indices, got dtype float32"):
        F.cross_entropy(logits, gpucnn.tensor([0.0, 1.0]))
    with pytest.raises(ArgumentError, match=r"target 3 is outside \[0, 3\)"):
        F.cross_entropy(logits, gpucnn.tensor([0, 3]))
    with pytest.raises(ArgumentError, match=r"target -1"):
        F.cross_entropy(logits, gpucnn.tensor([-1, 0]))
    with pytest.raises(ShapeError, match=r"expected \(2,\)"):
        F.cross_entropy(logits, gpucnn.tensor([0, 1, 2]))
    with pytest.raises(ShapeError, match=r"target has shape \(2,\), expected \(2, 4\) for input shape \(2, 3, 4\)"):
        F.cross_entropy(gpucnn.zeros(2, 3, 4), gpucnn.tensor([0, 1]))  # (N-d: the target is (N, d1))
