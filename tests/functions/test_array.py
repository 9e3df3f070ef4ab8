"""Shape ops (gpucnn/functions/array.py and Tensor's shape methods) against PyTorch, forward and backward."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import ShapeError
from torch_ref import same

RNG = np.random.default_rng(9)
X = RNG.standard_normal((2, 3, 4))


@pytest.mark.parametrize("f", [
    lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(2),
    lambda x: x.unsqueeze(1).squeeze(), lambda x: x[:, :1].squeeze(1), lambda x: x[:1, :, :1].squeeze((0, 2)),
    lambda x: x.squeeze(0), lambda x: x.view(6, 4), lambda x: x.view(-1), lambda x: x.reshape(4, -1),
    lambda x: x.permute(2, 0, 1), lambda x: x.permute((1, 2, 0)).contiguous(), lambda x: x.transpose(0, -1),
    lambda x: x.flatten(1), lambda x: x[:, :1].expand(2, 5, 4), lambda x: x[:1].expand(3, -1, -1, -1),
    lambda x: x.expand_as(x), lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 1, 2), lambda x: x[0].T,
    lambda x: x[0].t(), lambda x: x.clone() * 2, lambda x: x.view_as(x[0].reshape(-1).repeat(2)),
])
def test_shape_methods_match_torch(f):
    same(f, [X])


@pytest.mark.parametrize("f", [
    lambda x: x.chunk(2, 1), lambda x: x.chunk(3, -1), lambda x: x.chunk(5, 0), lambda x: x.split(2, 2),
    lambda x: x.split([1, 2], 1), lambda x: x.unbind(1), lambda x: x.unbind(),
])
def test_splitting_matches_torch(f):
    same(f, [X])


@pytest.mark.parametrize("dim", [0, 1, -1, 3])
def test_stack_and_cat_match_torch(dim):
    a, b = X, RNG.standard_normal(X.shape)
    same(lambda x, y: gpucnn.stack([x, y, x], dim), [a, b], g=lambda x, y: torch.stack([x, y, x], dim))
    if dim < 3:
        same(lambda x, y: gpucnn.cat((x, y), dim), [a, b], g=lambda x, y: torch.cat((x, y), dim))


def test_cat_promotes_dtypes_like_torch():
    out = gpucnn.cat([gpucnn.tensor([1, 2]), gpucnn.tensor([0.5])])
    ref = torch.cat([torch.tensor([1, 2]), torch.tensor([0.5])])
    assert out.dtype == np.float32 and out.tolist() == ref.tolist()


def test_bad_shapes_are_clear_errors():
    x = gpucnn.tensor(X)
    with pytest.raises(ShapeError, match="equal shape"):
        gpucnn.stack([x, x[0]])
    with pytest.raises(ShapeError, match="non-singleton"):
        x.expand(2, 5, 4)
    with pytest.raises(ShapeError, match="smaller"):
        x.repeat(2, 2)
    with pytest.raises(ShapeError, match="add up"):
        x.split([1, 1], 1)
    with pytest.raises(gpucnn.ArgumentError, match="dim"):
        x.unsqueeze(4)


def test_views_share_memory_like_torch():
    x = gpucnn.tensor(X.copy())
    x.view(-1)[0] = 100.0
    x.permute(2, 1, 0)[0, 0, 1] = 200.0
    x.unsqueeze(0)[0, 0, 0, 1] = 300.0
    assert x.tolist()[0][0][:2] == [100.0, 300.0] and x.tolist()[1][0][0] == 200.0
    c = x.clone()
    c[0] = 0.0
    assert x.tolist()[0][0][0] == 100.0  # clone copies


def test_contiguous_clone_detach_requires_grad():
    x = gpucnn.tensor(X, requires_grad=True)
    assert x.contiguous() is x
    p = x.permute(2, 0, 1)
    assert not p.data.flags.c_contiguous and p.contiguous().data.flags.c_contiguous
    c = x.clone()
    assert c.requires_grad and not c.is_leaf  # clone is in the graph, as torch's
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    y = gpucnn.tensor([1.0]).requires_grad_()
    assert y.requires_grad and y.is_leaf
    assert not x.is_cuda and x.is_floating_point()


@pytest.mark.parametrize("f", [
    lambda x: x.unsqueeze(1).squeeze(1) * x, lambda x: x[:, :1].expand(2, 3, 4), lambda x: x.repeat(1, 2, 2),
    lambda x: gpucnn.stack(x.chunk(2, 2), 0), lambda x: gpucnn.cat(x.split([1, 2], 1)[::-1], 1),
    lambda x: x.permute(2, 0, 1).contiguous().clone(),
])
def test_shape_backward_against_finite_differences(f):
    assert gpucnn.gradcheck(f, [gpucnn.tensor(X, requires_grad=True)])
