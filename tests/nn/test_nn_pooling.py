"""The pooling layers' new arguments and layers against torch.nn: MaxPool return_indices + MaxUnpool,
AdaptiveMaxPool2d, AvgPool divisor_override; their configs (architecture as data) and argument errors."""
import numpy as np
import pytest
import torch

import gpucnn
import gpucnn.nn as nn
from gpucnn.errors import ArgumentError

from tests.torch_ref import same


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_maxpool_indices_and_unpool_layers_match_torch(device):
    def net(lib):
        pool = lib.MaxPool2d(3, 2, 1, return_indices=True)
        unpool = lib.MaxUnpool2d(3, 2, 1)

        def f(t):
            y, i = pool(t)
            return y, i, unpool(y, i, output_size=t.shape)
        return f

    same(net(nn), [_x((2, 3, 8, 7))], device=device, g=net(torch.nn))
    same(lambda t: nn.MaxUnpool1d(2)(*nn.MaxPool1d(2, return_indices=True)(t)), [_x((2, 3, 8))], device=device,
         g=lambda t: torch.nn.MaxUnpool1d(2)(*torch.nn.MaxPool1d(2, return_indices=True)(t)))


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("out", [3, (2, 5), (None, 2)])
def test_adaptive_max_pool_layer_matches_torch(device, out):
    same(lambda t: nn.AdaptiveMaxPool2d(out)(t), [_x((2, 3, 7, 6))], device=device,
         g=lambda t: torch.nn.AdaptiveMaxPool2d(out)(t))
    same(lambda t: nn.AdaptiveMaxPool2d(out, return_indices=True)(t), [_x((1, 2, 5, 9))], device=device,
         g=lambda t: torch.nn.AdaptiveMaxPool2d(out, return_indices=True)(t))


def test_avg_pool_divisor_override_layer_matches_torch():
    same(lambda t: nn.AvgPool2d(3, 2, 1, divisor_override=4)(t), [_x((2, 3, 7, 6))],
         g=lambda t: torch.nn.AvgPool2d(3, 2, 1, divisor_override=4)(t))


@pytest.mark.parametrize("layer", [nn.MaxPool2d(3, 2, 1, return_indices=True), nn.MaxPool1d(2, return_indices=True),
                                   nn.AvgPool2d(2, divisor_override=3), nn.AvgPool1d(3, 1, 1, divisor_override=2),
                                   nn.AdaptiveMaxPool2d((None, 3), return_indices=True), nn.AdaptiveMaxPool2d(4),
                                   nn.MaxUnpool2d((2, 3), 2, 1), nn.MaxUnpool1d(3)])
def test_configs_round_trip(layer):
    config = nn.layer_to_config(layer)
    nn.validate_config(config)
    rebuilt = nn.layer_from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config() and repr(rebuilt) == repr(layer)


def test_layer_argument_errors():
    for build, facts in [(lambda: nn.AvgPool2d(2, divisor_override=0), ["AvgPool2d", "divisor_override", "0"]),
                         (lambda: nn.MaxPool2d(2, return_indices=1), ["MaxPool2d", "return_indices"]),
                         (lambda: nn.AdaptiveMaxPool2d(0), ["AdaptiveMaxPool2d", "output_size", "got 0"]),
                         (lambda: nn.MaxUnpool2d(0), ["MaxUnpool2d", "kernel_size", ">= 1"])]:
        with pytest.raises(ArgumentError) as info:
            build()
        assert all(f in str(info.value) for f in facts), str(info.value)


def test_unpool_without_return_indices_output_is_refused_clearly():
    x = gpucnn.tensor(_x((1, 1, 4, 4)))
    with pytest.raises(ArgumentError, match="max_unpool2d: indices must be a gpucnn Tensor"):
        nn.MaxUnpool2d(2)(nn.MaxPool2d(2)(x), None)
