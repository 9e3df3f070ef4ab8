"""GroupNorm, LayerNorm, InstanceNorm1d/2d, LocalResponseNorm, Dropout1d/2d against torch.nn: outputs and
gradients (parameters included) in train and eval mode, running statistics, reprs, state_dict names,
configs (architecture as data) and argument errors."""
import numpy as np
import pytest
import torch

import gpucnn
import gpucnn.nn as nn
from gpucnn.errors import ArgumentError, ShapeError

TOL = dict(rtol=1e-5, atol=1e-5)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _pair(make):
    """The gpucnn and torch layers from ``make(lib)``, torch's parameters and buffers copied into ours."""
    ours, theirs = make(nn), make(torch.nn)
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    rng = np.random.default_rng(9)
    for k, v in theirs.named_parameters():  # (non-trivial affine parameters)
        state[k] = (v.detach().numpy() + rng.standard_normal(v.shape)).astype(np.float32)
        v.data = torch.tensor(state[k])
    ours.load_state_dict(state)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    return ours, theirs


def _compare(ours, theirs, x, device):
    ours.to(device)
    xo = gpucnn.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), **TOL)
    w = _x(yo.shape, 5)
    (yo * gpucnn.tensor(w, device=device)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), **TOL)
    params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), params[name].grad.numpy(), **TOL)
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name].numpy(), b.numpy(), **TOL)


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("make, shape", [
    (lambda lib: lib.GroupNorm(3, 6), (2, 6, 4, 5)), (lambda lib: lib.GroupNorm(2, 4, affine=False), (3, 4, 7)),
    (lambda lib: lib.GroupNorm(2, 4, bias=False), (2, 4, 3)),
    (lambda lib: lib.LayerNorm(5), (2, 3, 5)), (lambda lib: lib.LayerNorm((3, 5), eps=1e-3), (2, 3, 5)),
    (lambda lib: lib.LayerNorm(5, elementwise_affine=False), (4, 5)), (lambda lib: lib.LayerNorm([5], bias=False), (4, 5)),
    (lambda lib: lib.InstanceNorm2d(3), (2, 3, 4, 5)), (lambda lib: lib.InstanceNorm2d(3, affine=True), (2, 3, 4, 5)),
    (lambda lib: lib.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3), (2, 3, 4, 5)),
    (lambda lib: lib.InstanceNorm2d(3, affine=True), (3, 4, 5)),  # unbatched
    (lambda lib: lib.InstanceNorm1d(4, affine=True, track_running_stats=True), (2, 4, 6)),
    (lambda lib: lib.InstanceNorm1d(4), (4, 6)),
    (lambda lib: lib.LocalResponseNorm(3), (2, 5, 3, 3)), (lambda lib: lib.LocalResponseNorm(2, 0.5, 1.0, 2.0), (2, 4, 6)),
])
def test_layers_match_torch_in_train_and_eval_mode(device, make, shape):
    ours, theirs = _pair(make)
    _compare(ours, theirs, _x(shape), device)
    _compare(ours.eval(), theirs.eval(), _x(shape, 1), device)


def test_dropout_layers():
    gpucnn.manual_seed(1)
    x = gpucnn.ones(8, 16, 3, 3)
    y = nn.Dropout2d(0.5)(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and np.all(y == y[:, :, :1, :1])
    y1 = nn.Dropout1d(0.5)(gpucnn.ones(8, 16, 5)).numpy()
    assert np.all(y1 == y1[:, :, :1])
    layer = nn.Dropout2d(0.5).eval()
    assert layer(x) is x
    assert repr(nn.Dropout2d(0.3)) == repr(torch.nn.Dropout2d(0.3))
    assert repr(nn.Dropout1d(0.3, True)) == repr(torch.nn.Dropout1d(0.3, True))


@pytest.mark.parametrize("layer", [nn.GroupNorm(2, 4, eps=1e-3), nn.GroupNorm(1, 3, affine=False), nn.GroupNorm(2, 4, bias=False),
                                   nn.LayerNorm((3, 4)), nn.LayerNorm(7, elementwise_affine=False), nn.LayerNorm(7, bias=False),
                                   nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=None),
                                   nn.InstanceNorm1d(5), nn.LocalResponseNorm(5, k=2.0), nn.Dropout2d(0.2),
                                   nn.Dropout1d(0.4)])
def test_configs_round_trip(layer):
    config = nn.layer_to_config(layer)
    nn.validate_config(config)
    rebuilt = nn.layer_from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config() and repr(rebuilt) == repr(layer)
    assert sorted(rebuilt.state_dict()) == sorted(layer.state_dict())


def test_a_sequential_with_the_new_layers_trains():
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.Dropout2d(0.1),
                          nn.InstanceNorm2d(8, affine=True), nn.LocalResponseNorm(3), nn.Flatten(),
                          nn.LayerNorm(8 * 16), nn.Linear(8 * 16, 2))
    opt = gpucnn.optim.SGD(model.parameters(), lr=0.1)
    x, target = gpucnn.randn(4, 3, 4, 4), gpucnn.tensor(np.array([0, 1, 0, 1]))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("build, facts", [
    (lambda: nn.GroupNorm(4, 6), ["GroupNorm", "num_channels 6", "num_groups 4"]),
    (lambda: nn.GroupNorm(0, 6), ["GroupNorm", "num_groups", ">= 1", "0"]),
    (lambda: nn.LayerNorm(0), ["LayerNorm", "normalized_shape", "0"]),
    (lambda: nn.LayerNorm([]), ["LayerNorm", "normalized_shape", "[]"]),
    (lambda: nn.InstanceNorm2d(3, momentum=2), ["InstanceNorm2d", "momentum", "2"]),
    (lambda: nn.LocalResponseNorm(0), ["LocalResponseNorm", "size", "0"]),
    (lambda: nn.Dropout2d(1.5), ["Dropout2d", "p", "1.5"]),
])
def test_argument_errors(build, facts):
    with pytest.raises(ArgumentError) as info:
        build()
    assert all(f in str(info.value) for f in facts), str(info.value)


def test_input_errors_name_the_layer():
    seq = nn.Sequential(nn.GroupNorm(2, 4))
    with pytest.raises(ShapeError, match=r"GroupNorm #0.*group_norm: input has 3 channels, expected 4"):
        seq(gpucnn.randn(2, 3, 5))
    with pytest.raises(ShapeError, match=r"instance_norm2d: expected a \(C, H, W\) or \(N, C, H, W\) input, got rank 2"):
        nn.InstanceNorm2d(3)(gpucnn.randn(3, 4))
    with pytest.raises(ShapeError, match=r"instance_norm1d: input has 5 channels, expected num_features 4"):
        nn.InstanceNorm1d(4, affine=True)(gpucnn.randn(2, 5, 3))
