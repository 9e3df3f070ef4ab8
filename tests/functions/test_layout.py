"""Binary elementwise ops over operands laid out differently (a skip connection adding an NCHW input to
a conv output laid out (C, H, W, N)): same values, one layout."""
import numpy as np
import pytest

import gpucnn
from gpucnn.functions._layout import axis_order, matched


def _channel_major(a):
    """An NCHW view of ``a`` stored (C, H, W, N), like the NumPy path's conv outputs."""
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


@pytest.mark.parametrize("op", ["__add__", "__sub__", "__mul__", "__truediv__"])
def test_mixed_layouts_give_the_plain_result(op):
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 2, (3, 4, 5, 6))
    b = rng.uniform(1, 2, (3, 4, 5, 6))
    ta = gpucnn.Tensor(_channel_major(a), requires_grad=True)  # (Tensor wraps the array; tensor() copies)
    tb = gpucnn.tensor(b, requires_grad=True)
    assert axis_order(ta.data) != axis_order(tb.data)
    out = getattr(ta, op)(tb)
    np.testing.assert_allclose(out.numpy(), getattr(a, op)(b), rtol=1e-15)
    assert axis_order(out.data) == axis_order(ta.data)  # the result follows the first operand
    assert gpucnn.gradcheck(lambda x, y: getattr(x, op)(y), (ta, tb))


def test_matched_copies_only_when_layouts_differ():
    a = np.zeros((2, 3, 4, 5))
    same = np.ones((2, 3, 4, 5))
    assert matched(a, same) is same
    other = _channel_major(np.ones((2, 3, 4, 5)))
    m = matched(a, other)
    assert m is not other and m.flags.c_contiguous and np.array_equal(m, other)
    fortran = np.asfortranarray(np.ones((3, 4)))
    assert matched(np.zeros((3, 4)), fortran) is fortran  # 2-D (dense layers): left alone
    broadcast = np.ones((1, 3, 1, 1))
    assert matched(a, broadcast) is broadcast  # different shapes: NumPy broadcasts as it is


def test_gradients_follow_the_layout_of_what_they_meet():
    """mean() of a conv-laid-out activation hands ReLU's backward a gradient in the activation's layout,
    and ReLU's backward takes a gradient of another layout too: same values, y's layout (the loss of a
    benchmark, out.mean(), made ReLU's backward 6x slower before)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 3, 5, 6))
    x = gpucnn.tensor(_channel_major(a), requires_grad=True)
    y = gpucnn.functional.relu(x)
    loss = y.mean()
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), (a > 0) / a.size)
    assert axis_order(x.grad.data) == axis_order(x.data)
    s = gpucnn.tensor(_channel_major(a), requires_grad=True)
    s.sum().backward()
    assert axis_order(s.grad.data) == axis_order(s.data) and np.all(s.grad.numpy() == 1)

    big = rng.standard_normal((8, 16, 32, 32))  # large enough for ReLU's split NumPy path
    xb = gpucnn.tensor(_channel_major(big), requires_grad=True)
    gy = rng.standard_normal(big.shape)  # plain NCHW
    gpucnn.functional.relu(xb).backward(gpucnn.tensor(gy))
    np.testing.assert_array_equal(xb.grad.numpy(), gy * (big > 0))
    assert axis_order(xb.grad.data) == axis_order(xb.data)


@pytest.mark.parametrize("batch", [1, 7])  # (batch 1: the plain path; 7: the split NumPy path)
def test_flatten_then_linear_hands_back_the_activations_layout(batch):
    """Flatten of a channel-major activation is a column-major (N, C*H*W) view; linear's input gradient
    comes back laid out the same, so the layers below need no transposing copy. Same values as NCHW."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((batch, 4, 3, 5))
    w = gpucnn.tensor(rng.standard_normal((6, 60)), requires_grad=True)
    x = gpucnn.tensor(_channel_major(a), requires_grad=True)
    out = gpucnn.functional.linear(x.flatten(1), w)
    gy = rng.standard_normal(out.shape)
    out.backward(gpucnn.tensor(gy))
    np.testing.assert_allclose(x.grad.numpy(), (gy @ w.numpy()).reshape(a.shape), rtol=1e-13)
    np.testing.assert_allclose(w.grad.numpy(), gy.T @ a.reshape(batch, -1), rtol=1e-13)
    if batch > 1:
        assert axis_order(x.grad.data) == axis_order(x.data)
    xc = gpucnn.tensor(a, requires_grad=True)  # plain NCHW: a plain gradient
    gpucnn.functional.linear(xc.flatten(1), w).backward(gpucnn.tensor(gy))
    np.testing.assert_allclose(xc.grad.numpy(), x.grad.numpy(), rtol=1e-13)
    assert xc.grad.data.flags.c_contiguous
    assert gpucnn.gradcheck(lambda x, w: gpucnn.functional.linear(x.flatten(1), w), (x, w))


@pytest.mark.parametrize("op", ["__add__", "__sub__", "__mul__", "__truediv__"])
def test_binary_ops_split_over_threads_give_the_same_bits(monkeypatch, op):
    """Large same-shape operands run split over the NumPy path's threads (the layout copy too): the
    values are those of NumPy's own operator, whatever the number of threads."""
    from gpucnn import workspace

    if not workspace._blas_controllers():
        pytest.skip("splitting needs threadpoolctl")
    monkeypatch.setattr(workspace, "MIN_PIECE", 1)
    runs = []
    real_run = workspace._run
    monkeypatch.setattr(workspace, "_run", lambda fn, ranges: runs.append(len(ranges)) or real_run(fn, ranges))
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 2, (3, 4, 5, 6)).astype(np.float32)
    b = rng.uniform(1, 2, (3, 4, 5, 6)).astype(np.float32)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(workspace, "THREADS", threads)
        out = getattr(gpucnn.Tensor(_channel_major(a)), op)(gpucnn.tensor(b))
        assert axis_order(out.data) == (1, 2, 3, 0)
        results.append(out.numpy())
    assert runs == [2, 2]  # with two threads: the copy of b into a's layout, then the op, each in 2 pieces
    np.testing.assert_array_equal(results[0], getattr(a, op)(b))
    np.testing.assert_array_equal(results[1], results[0])
