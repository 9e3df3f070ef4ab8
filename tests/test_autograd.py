"""In-place ops, item assignment and version counters (gpucnn.autograd), against PyTorch's rules."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import AutogradError, ShapeError
from torch_ref import same

RNG = np.random.default_rng(0)


def arr(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# -- the silent wrong answer of the issue ------------------------------------------------------------
def test_sgd_by_hand_updates_the_weights_in_place():
    w = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    storage = w.data
    (w * w).sum().backward()
    with gpucnn.no_grad():
        w -= 0.1 * w.grad  # used to build a new tensor and leave the weights unchanged
    assert w.data is storage and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.numpy(), [0.8, 1.6], rtol=1e-6)
    w.grad.zero_()
    assert w.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
def test_inplace_methods_keep_the_object_and_storage(op):
    a = gpucnn.tensor([1.0, 2.0, 4.0])
    ref = torch.tensor([1.0, 2.0, 4.0])
    storage, version = a.data, a._version
    assert getattr(a, op)(2.0) is a
    getattr(ref, op)(2.0)
    assert a.data is storage and a._version == version + 1
    np.testing.assert_allclose(a.numpy(), ref.numpy())


def test_operators_in_place():
    a, ref = gpucnn.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    alias = a
    for step in (lambda t: t.__iadd__(1), lambda t: t.__isub__(0.5), lambda t: t.__imul__(3),
                 lambda t: t.__itruediv__(2), lambda t: t.__ipow__(2)):
        step(a), step(ref)
    assert alias is a
    np.testing.assert_allclose(a.numpy(), ref.numpy(), rtol=1e-6)
    b = gpucnn.tensor([7, 8])
    b //= 3
    b %= 2
    assert b.tolist() == [0, 0]


def test_inplace_with_broadcasting_and_alpha():
    a = gpucnn.zeros(2, 3)
    a.add_(gpucnn.tensor([1.0, 2.0, 3.0]), alpha=2)
    assert a.tolist() == [[2.0, 4.0, 6.0]] * 2
    with pytest.raises(ShapeError, match="broadcast shape"):
        gpucnn.zeros(3).add_(gpucnn.zeros(2, 3))  # the result would not fit the tensor, as in torch


def test_inplace_dtype_rules():
    i = gpucnn.tensor([1, 2])
    with pytest.raises(gpucnn.DtypeError, match="can't be cast"):
        i += 2.5  # torch: result type Float can't be cast to Long
    i += 2
    assert i.tolist() == [3, 4] and i.dtype == np.int64
    f = gpucnn.tensor([1.0], dtype=gpucnn.float32)
    f += gpucnn.tensor([0.5], dtype=gpucnn.float64)  # computed in float64, stored as float32
    assert f.dtype == np.float32 and f.item() == 1.5


def test_fill_zero_clamp_copy_neg_pow():
    a = gpucnn.tensor([-2.0, 0.5, 3.0])
    assert a.clamp_(-1, 1).tolist() == [-1.0, 0.5, 1.0]
    assert a.neg_().tolist() == [1.0, -0.5, -1.0]
    assert a.pow_(2).tolist() == [1.0, 0.25, 1.0]
    assert a.fill_(7).tolist() == [7.0] * 3
    assert a.copy_(gpucnn.tensor([1, 2, 3])).tolist() == [1.0, 2.0, 3.0]  # cast to a's dtype
    assert a.copy_(gpucnn.tensor(5.0)).tolist() == [5.0] * 3  # broadcast
    assert a.zero_().tolist() == [0.0] * 3
    assert a.dtype == np.float32


# -- autograd through in-place ops --------------------------------------------------------------------
def test_inplace_on_a_leaf_that_requires_grad_is_an_error():
    w = gpucnn.tensor([1.0], requires_grad=True)
    for change in (lambda: w.add_(1), lambda: w.__setitem__(0, 2.0), lambda: w.zero_(), lambda: w.mul_(2)):
        with pytest.raises(AutogradError, match="leaf"):
            change()
    with pytest.raises(RuntimeError):  # the type PyTorch raises
        w.add_(1)
    with pytest.raises(AutogradError, match="leaf"):
        w[0:1].add_(1)  # a view of the leaf
    with gpucnn.no_grad():
        w.add_(1)  # fine: optimizer-style update
    assert w.item() == 2.0


@pytest.mark.parametrize("name,f", [
    ("add_", lambda x, z: (x * 1).add_(z, alpha=2)),
    ("mul_ by a tensor that requires grad", lambda x, z: (x * 1).mul_(z)),
    ("mul_ by a number", lambda x, z: (x * 2).mul_(3) * z),
    ("div_", lambda x, z: (x * 1).div_(z + 3)),
    ("clamp_", lambda x, z: (x * 1).clamp_(-0.5, 0.5) * z),
    ("pow_", lambda x, z: (x * 1).pow_(2) + z),
    ("relu_ then exp", lambda x, z: (x * z).relu_().exp()),
    ("setitem of a part", lambda x, z: _set(x * 1, (slice(0, 2), 1), z[0, :1] * 2)),
    ("setitem with an index tensor", lambda x, z: _set(x * 1, (np.array([0, 2]),), z[:2])),
    ("setitem with a mask", lambda x, z: _set(x * 1, (x > 0,), 0.0) + z),
    ("in-place on a view", lambda x, z: _view_mul(x * 1, z)),
    ("masked_fill_", lambda x, z: (x * z).masked_fill_(x < 0, 0.5)),
    ("copy_ into a buffer", lambda x, z: _copy_into_zeros(x, z)),
])
def test_gradients_through_inplace_ops_match_torch(name, f):
    same(f, [arr(3, 4), arr(3, 4)], g=f)


def _set(t, index, value):
    if isinstance(t, torch.Tensor):  # (index arrays as torch tensors for torch)
        index = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    t[index] = value
    return t


def _view_mul(t, z):
    row = t[1]          # a view of t (basic indexing), as in torch
    row.mul_(z[1])      # changes t too, and t's gradient must know
    return t * 2


def _copy_into_zeros(x, z):
    lib = torch if isinstance(x, torch.Tensor) else gpucnn
    buf = lib.zeros(3, 4, dtype=x.dtype)
    buf.copy_(x * z)
    buf[0] = 1.0
    return buf


def test_modified_saved_tensor_raises_at_backward():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    w = y * y  # saves y
    y.add_(1)
    with pytest.raises(AutogradError, match="modified by an in-place operation") as e:
        w.sum().backward()
    assert "version 1; expected version 0" in str(e.value) and "input" in str(e.value)
    # a saved output (exp keeps its result) is checked too
    e2 = (x * 1).exp()
    e2.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        e2.sum().backward()


def test_inplace_change_of_an_unsaved_input_is_fine():
    # add does not keep its inputs' values, so changing one afterwards is allowed (as in torch)
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y + 1
    y.mul_(3)
    (z + y).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]  # 1 through z (the old y), 3 through the new y


def test_views_share_the_version_counter():
    x = gpucnn.tensor(np.arange(6.0).reshape(2, 3))
    v, r, d = x[0], x.reshape(6), x.detach()
    v.add_(1)
    assert x._version == r._version == d._version == v._version == 1
    assert x.tolist()[0] == [1.0, 2.0, 3.0] and r.tolist()[:3] == [1.0, 2.0, 3.0]
    copy = x[np.array([0])]  # advanced indexing copies
    copy.add_(1)
    assert x._version == 1 and x.tolist()[0] == [1.0, 2.0, 3.0]
    x[1, 2] += 10
    assert x.tolist()[1] == [3.0, 4.0, 15.0]


def test_expanded_tensors_cannot_be_written():
    e = gpucnn.tensor([1.0]).expand(3)
    with pytest.raises(AutogradError, match="expand"):
        e.add_(1)


def test_inplace_on_a_reshaped_view_in_a_graph_is_refused_not_wrong():
    x = gpucnn.tensor(arr(2, 3), requires_grad=True)
    y = x * 1
    with pytest.raises(AutogradError, match="view"):
        y.reshape(6).mul_(2)


def test_backward_with_gradient_argument():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(gradient=gpucnn.tensor([1.0, 0.5]))
    assert x.grad.tolist() == [3.0, 1.5]


def test_each_leaf_owns_its_gradient():
    a = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    b = gpucnn.tensor([3.0, 4.0], requires_grad=True)
    c = gpucnn.tensor([[5.0, 6.0]], requires_grad=True)
    (a + b + c.reshape(2)).sum().backward()  # add hands one gradient array to both of its inputs
    a.grad.mul_(10)
    assert b.grad.tolist() == [1.0, 1.0] and c.grad.tolist() == [[1.0, 1.0]]
