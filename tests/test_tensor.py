"""Tensor basics and the autograd engine (graph shapes that break naive implementations)."""
import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, DeviceError, ShapeError


def t64(shape, seed=0, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape)
    return gpucnn.tensor(data, requires_grad=requires_grad)


def test_tensor_dtypes_follow_pytorch():
    assert gpucnn.tensor([1.0, 2.0]).dtype == np.float32
    assert gpucnn.tensor([1, 2]).dtype == np.int64
    assert gpucnn.tensor(np.zeros(3)).dtype == np.float64  # NumPy arrays keep their dtype
    assert gpucnn.tensor([1, 2], dtype=gpucnn.float32).dtype == np.float32


def test_tensor_copies_its_input():
    a = np.zeros(3, dtype=np.float32)
    t = gpucnn.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0
    n = t.numpy()
    n[1] = 7
    assert t.numpy()[1] == 0  # numpy() is a copy too


def test_attributes_and_item():
    t = gpucnn.tensor([[1.0, 2.0, 3.0]])
    assert t.shape == (1, 3) and t.ndim == 2 and t.device == "cpu" and str(t.device) == "cpu"
    assert t.sum().item() == 6.0
    with pytest.raises(ShapeError, match="one element"):
        t.item()


def test_python_scalars_keep_float32():
    t = gpucnn.tensor([1.0, 2.0])
    for out in (t * 2.5, 2.5 * t, t + 1, 1 - t, t / 3, 3 / t, t ** 2):
        assert out.dtype == np.float32


def test_mixed_float_dtypes_promote_like_pytorch():
    a = gpucnn.tensor([1.0], requires_grad=True)
    b = gpucnn.tensor(np.array([2.0]), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64  # each gradient in its leaf's dtype
    assert a.grad.item() == 2.0 and b.grad.item() == 1.0


def test_requires_grad_needs_float():
    with pytest.raises(RuntimeError, match="floating-point"):  # PyTorch's type
        gpucnn.tensor([1, 2], requires_grad=True)


def test_grad_accumulates_on_leaves_like_pytorch():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_subexpression_and_reuse():
    # y uses x through two paths and a layer-like weight is used twice: both contributions must add up.
    x, w = t64((3, 3), 1), t64((3, 3), 2)
    gpucnn.gradcheck(lambda x, w: (x @ w) @ w + x * (x @ w), [x, w])


def test_skip_connection_and_concat_graph():
    x, w = t64((2, 4), 3), t64((4, 4), 4)

    def block(x, w):
        h = (x @ w).relu()
        return gpucnn.cat([h + x, h], dim=1).sum(1)

    gpucnn.gradcheck(block, [x, w])


def test_deep_graph_does_not_recurse():
    x = gpucnn.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.numpy()[0] == pytest.approx(1.0001 ** 5000, rel=1e-3)


def test_no_grad_records_nothing():
    x = gpucnn.tensor([1.0], requires_grad=True)
    with gpucnn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert gpucnn.is_grad_enabled()


def test_backward_errors():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ShapeError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ArgumentError, match="does not require grad"):
        gpucnn.tensor([1.0]).backward()
    y = x * 2
    y.backward(gpucnn.tensor([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_graph_is_freed_after_backward():
    x = gpucnn.tensor([1.0], requires_grad=True)
    h = x.exp()
    y = h * 2
    y.backward()
    assert y._ctx.parents == () and not hasattr(h._ctx, "y")  # the edges and saved arrays are gone
    with pytest.raises(gpucnn.AutogradError, match="second time"):
        y.backward()  # (PyTorch's error, where a freed graph used to give no gradient silently)
    z = x.exp() * 2
    z.backward(retain_graph=True)
    z.backward()
    assert x.grad.item() == pytest.approx(np.exp(1.0) * 2 * 3)


def test_indexing_gradient_with_repeated_indices():
    x = t64((5,), 5)
    idx = np.array([0, 0, 3])
    gpucnn.gradcheck(lambda x: x[idx] * 2, [x])


@pytest.mark.parametrize("fn", [
    lambda a: a.reshape(3, 4).transpose(0, 1).sum(0),
    lambda a: a.permute(1, 0).flatten(),
    lambda a: a.mean(0) * a.mean(),
    lambda a: a.max(0).values + a.max(1, keepdim=True)[0].sum(),
    lambda a: (a.abs() + 1).log() + a.exp() / 10,
    lambda a: (a * a + 1).sqrt(),
    lambda a: a.T @ a,
    lambda a: a[1:, ::2] - a[:-1, 1::2],
])
def test_tensor_method_gradients(fn):
    gpucnn.gradcheck(fn, [t64((4, 3), 6)])


def test_broadcast_gradients():
    a, b, c = t64((2, 3, 4), 7), t64((3, 1), 8), t64((4,), 9)
    gpucnn.gradcheck(lambda a, b, c: a * b + c - b / (c * c + 1), [a, b, c])


def test_max_gradient_goes_to_first_maximum():
    x = gpucnn.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_to_device_and_dtype():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    e = x.to("emu")
    assert e.device == "emu" and isinstance(e.data, np.ndarray)
    d = x.double()
    assert d.dtype == np.float64
    (e.to("cpu").sum() + d.sum().float()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_mixed_devices_is_an_error_that_says_how_to_move():
    with pytest.raises(DeviceError, match=r"different devices .*\.to\("):
        gpucnn.tensor([1.0]) + gpucnn.tensor([1.0], device="emu")


def test_unknown_device():
    with pytest.raises(ArgumentError, match="cpu, cuda, emu"):
        gpucnn.tensor([1.0], device="tpu")


@pytest.mark.skipif(gpucnn.cuda_available(), reason="this machine has a GPU")
def test_cuda_unavailable_message():
    with pytest.raises(DeviceError, match="not available"):
        gpucnn.tensor([1.0], device="cuda")


def test_matmul_shape_error():
    with pytest.raises(ShapeError, match=r"\(2, 3\) and \(4, 5\)"):
        gpucnn.zeros(2, 3) @ gpucnn.zeros(4, 5)


def test_reshape_error_names_sizes():
    with pytest.raises(ShapeError, match="6 elements"):
        gpucnn.zeros(2, 3).reshape(4, 2)
