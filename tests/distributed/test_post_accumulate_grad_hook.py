"""Tensor.register_post_accumulate_grad_hook (gpucnn/tensor.py, run by gpucnn/autograd.py), against PyTorch's."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn.errors import AutogradError


def _graph(lib, w, x):
    # w is used three times (through two branches), b once, c not at all
    y = (w * x).sum() + (w * w).sum() * 2 + lib.tensor(3.0) * (w.sum())
    return y


@pytest.mark.parametrize("retain", [False, True])
def test_hook_runs_once_per_backward_with_the_whole_gradient(retain):
    x = np.arange(4.0)
    seen, seen_torch = [], []
    w = gpucnn.tensor(np.ones(4), requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    tw = torch.ones(4, dtype=torch.float64, requires_grad=True)
    tw.register_post_accumulate_grad_hook(lambda t: seen_torch.append(t.grad.numpy().copy()))
    for _ in range(2):  # the second backward accumulates onto the first
        _graph(gpucnn, w, gpucnn.tensor(x)).backward(retain_graph=retain)
        _graph(torch, tw, torch.tensor(x)).backward(retain_graph=retain)
    assert len(seen) == len(seen_torch) == 2
    for a, b in zip(seen, seen_torch):
        np.testing.assert_allclose(a, b)


def test_hook_order_follows_backward_and_unused_leaves_are_not_called():
    calls = []
    a = gpucnn.tensor(np.ones(3), requires_grad=True)
    b = gpucnn.tensor(np.ones(3), requires_grad=True)
    c = gpucnn.tensor(np.ones(3), requires_grad=True)
    for name, t in (("a", a), ("b", b), ("c", c)):
        t.register_post_accumulate_grad_hook(lambda t, name=name: calls.append(name))
    h = (a * 2).exp()          # a is reached last (its op runs after b's)
    ((h * b).sum()).backward()
    assert calls == ["b", "a"]  # c took no part: no call


def test_root_leaf_and_handle_remove():
    calls = []
    a = gpucnn.tensor(2.0, requires_grad=True)
    handle = a.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.item()))
    a.backward()
    assert calls == [1.0]
    handle.remove()
    a.backward()
    assert calls == [1.0]


def test_refused_on_non_leaf_and_on_tensors_without_grad():
    a = gpucnn.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(AutogradError, match="non-leaf"):
        (a * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(AutogradError, match="doesn't require gradient"):
        gpucnn.tensor(np.ones(2)).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(gpucnn.ArgumentError, match="callable"):
        a.register_post_accumulate_grad_hook(3)
