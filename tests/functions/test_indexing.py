"""Indexing, the sequence protocol, gather/scatter/where/masked_fill: forward and backward against PyTorch."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import TensorIndexError, ShapeError
from torch_ref import same

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 5, 3))
IDX = np.array([2, 0, 2])
IDX2 = np.array([1, 4, 1])
MASK = X[:, :, 0] > 0


def both(index):
    """The same index for gpucnn (index tensors as gpucnn tensors) and torch (as torch tensors)."""
    def conv(part, lib):
        if isinstance(part, np.ndarray):
            return gpucnn.tensor(part) if lib == "g" else torch.tensor(part)
        return part
    parts = index if isinstance(index, tuple) else (index,)
    return tuple(conv(p, "g") for p in parts), tuple(conv(p, "t") for p in parts)


@pytest.mark.parametrize("index", [
    1, -1, (1, 2), (1, 2, 0), slice(1, 3), (slice(None), 2), (Ellipsis, 1), (None, 1), (slice(None, None, 2), None),
    (1, slice(1, None), Ellipsis), IDX, (IDX, IDX2), (slice(None), IDX2), (IDX, slice(None), 0), MASK, (MASK, 1),
    X > 0, (np.array([[0, 1], [3, 3]]),), (1, IDX2, IDX[:1]),
])
def test_getitem_forward_and_backward_match_torch(index):
    ours, ref = both(index)
    same(lambda x: x[ours], [X], g=lambda x: x[ref])


def test_logp_of_the_targets():
    logp = np.log(RNG.dirichlet(np.ones(5), size=4))
    y = np.array([3, 0, 4, 4])
    same(lambda lp: lp[gpucnn.arange(4), gpucnn.tensor(y)],
         [logp], g=lambda lp: lp[torch.arange(4), torch.tensor(y)])


def test_list_index_and_repeated_indices_add_gradients():
    same(lambda x: x[[0, 0, 3]], [X], g=lambda x: x[[0, 0, 3]])


def test_index_past_the_end_is_an_index_error():
    t = gpucnn.tensor(X)
    for bad in (4, -5, (0, 5), (0, 0, 3)):
        with pytest.raises(IndexError, match="out of bounds"):
            t[bad]
    with pytest.raises(TensorIndexError):
        t[gpucnn.tensor([0, 7])]


def test_float_index_tensor_is_an_index_error():
    t = gpucnn.tensor(X)
    with pytest.raises(IndexError, match="integer or bool"):
        t[gpucnn.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="integer or bool"):
        t[np.array([1.5])]


def test_all_int_index_is_a_view():
    t = gpucnn.tensor(np.zeros((2, 2)))
    t[1, 1].add_(5)
    t[0][1] = 3
    assert t.tolist() == [[0.0, 3.0], [0.0, 5.0]]


def test_sequence_protocol():
    t = gpucnn.tensor([[1, 2], [3, 4], [5, 6]])
    assert len(t) == 3
    rows = [r.tolist() for r in t]  # for row in x
    assert rows == [[1, 2], [3, 4], [5, 6]]
    a, b, c = t  # tuple unpacking
    assert c.tolist() == [5, 6]
    assert np.asarray(t).tolist() == t.tolist() and np.asarray(t, dtype=np.float32).dtype == np.float32
    assert np.array(gpucnn.tensor([1.5])) + 1 == 2.5
    scalar = gpucnn.tensor(2.0)
    with pytest.raises(TypeError, match="0-d"):
        len(scalar)
    with pytest.raises(TypeError, match="0-d"):
        iter(scalar)
    assert [0, 10, 20][gpucnn.tensor(1)] == 10  # __index__
    assert f"{gpucnn.tensor(0.12345):.2f}" == "0.12"  # __format__ of a 0-d tensor


def test_iteration_carries_gradients():
    x = gpucnn.tensor(X[0], requires_grad=True)
    total = sum(row.sum() * (i + 1) for i, row in enumerate(x))
    total.backward()
    assert x.grad.numpy()[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("index,value", [
    ((slice(1, 3),), 5.0), ((0, 1), np.array([1.0, 2.0, 3.0])), ((IDX,), 0.0), ((MASK,), -1.0),
    ((slice(None), IDX2), np.arange(12.0).reshape(4, 3, 1)), ((Ellipsis, 0), 2),
])
def test_setitem_matches_torch(index, value):
    ours_ix, ref_ix = both(index)
    v = gpucnn.tensor(value) if isinstance(value, np.ndarray) else value
    rv = torch.tensor(value) if isinstance(value, np.ndarray) else value
    t, r = gpucnn.tensor(X.copy()), torch.tensor(X.copy())
    t[ours_ix] = v
    r[ref_ix] = rv
    np.testing.assert_array_equal(t.numpy(), r.numpy())


def test_setitem_value_gradient_matches_torch():
    def f(x, v):
        out = x * 1
        out[1:3, 0] = v[0] * 2
        return out
    same(f, [X, RNG.standard_normal((1, 3))])


def test_setitem_shape_mismatch_is_a_runtime_error():
    t = gpucnn.zeros(3)
    with pytest.raises(ShapeError, match="broadcast"):
        t[0:2] = gpucnn.ones(3)
    with pytest.raises(RuntimeError):  # PyTorch's type
        t[0:2] = gpucnn.ones(3)


def test_setitem_casts_to_the_tensor_dtype_like_torch():
    t, r = gpucnn.tensor([1, 2]), torch.tensor([1, 2])
    t[0], r[0] = 2.7, 2.7
    assert t.tolist() == r.tolist() == [2, 2]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_matches_torch(dim):
    x = RNG.standard_normal((3, 4))
    shape = [3, 4]
    shape[dim] = 5
    idx = RNG.integers(0, x.shape[dim], size=shape)
    idx_small = idx[:2, :2]
    for ix in (idx, idx_small):
        same(lambda t: t.gather(dim, gpucnn.tensor(ix)), [x], g=lambda t: t.gather(dim, torch.tensor(ix)))


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_matches_torch(dim):
    x = RNG.standard_normal((3, 4))
    idx = np.array([[0, 1, 2, 0], [2, 0, 1, 1]]) if dim == 0 else np.array([[3, 0], [1, 2], [0, 3]])
    for src, grad in ((RNG.standard_normal(idx.shape), True), (RNG.standard_normal((3, 4)), False)):
        # (torch's backward needs src of index's shape; a larger src is checked forward only)
        same(lambda t, s: t.scatter(dim, gpucnn.tensor(idx), s), [x, src], grad=grad,
             g=lambda t, s: t.scatter(dim, torch.tensor(idx), s))
    ours = gpucnn.tensor(x).scatter(dim, gpucnn.tensor(idx), value=9.0)
    ref = torch.tensor(x).scatter(dim, torch.tensor(idx), 9.0)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_where_and_masked_fill_match_torch():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4,))
    cond = a > 0
    same(lambda x, y: gpucnn.where(gpucnn.tensor(cond), x, y), [a, b],
         g=lambda x, y: torch.where(torch.tensor(cond), x, y))
    same(lambda x: gpucnn.where(gpucnn.tensor(cond), x, 0.0), [a], g=lambda x: torch.where(torch.tensor(cond), x, 0.0))
    same(lambda x: x.masked_fill(gpucnn.tensor(cond), -1.5), [a], g=lambda x: x.masked_fill(torch.tensor(cond), -1.5))
    i = gpucnn.where(gpucnn.tensor([True, False]), gpucnn.tensor([1, 2]), 2.5)
    assert i.dtype == np.float32 and i.tolist() == [1.0, 2.5]  # promoted like torch.where


def test_gather_index_must_be_integer():
    with pytest.raises(IndexError, match="integer"):
        gpucnn.tensor(X).gather(0, gpucnn.tensor(np.zeros((4, 5, 3))))


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_indexing_runs_on_every_numpy_device(device):
    t = gpucnn.tensor(X, device=device, requires_grad=True)
    y = t[gpucnn.tensor(IDX, device=device), 1:]
    y.sum().backward()
    assert t.grad.device == device and t.grad.numpy()[2].sum() == 2 * 4 * 3


@pytest.mark.parametrize("f", [
    lambda x: x[gpucnn.tensor(IDX), 1:, None], lambda x: x[gpucnn.tensor(MASK)], lambda x: x[..., -1],
    lambda x: x.gather(1, gpucnn.tensor(np.zeros((4, 2, 3), dtype=np.int64))),
    lambda x: x.scatter(0, gpucnn.tensor(np.array([[[3, 0, 1]]])), x[:1, :1] * 2),
    lambda x: gpucnn.where(x > 0, x, x * x), lambda x: _set_part(x),
])
def test_indexing_backward_against_finite_differences(f):
    assert gpucnn.gradcheck(f, [gpucnn.tensor(X, requires_grad=True)])


def _set_part(x):
    y = x * 1
    y[gpucnn.tensor(IDX2[:2] - 1), 0] = x[0, 0] * 3  # (no repeated index: which write wins is unspecified)
    return y
