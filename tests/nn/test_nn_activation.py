"""Activation modules (gpucnn/nn/activation.py) against torch.nn's: constructor arguments (names, order,
defaults), forward and backward, repr, attributes that take effect when changed, model specs (config
round trip, JSON/TOML), PReLU's parameter (state dict, training, per-channel), errors naming the layer."""
import inspect
import json

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, ShapeError, nn
from gpucnn.functions.activation import ACTIVATIONS
from gpucnn.nn.registry import layer_from_config, layer_to_config
from torch_ref import same
from toydata import sgd_losses

NAMES = sorted(ACTIVATIONS) + ["PReLU"]
DEPRECATED = ("min_value", "max_value")  # (torch.nn.Hardtanh's old spellings of min_val, max_val)


def x_with_kinks(shape=(2, 3, 4), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x.flat[:6] = [-3.0, -1.0, 0.0, 1.0, 3.0, 6.0]
    return x


@pytest.mark.parametrize("name", NAMES)
def test_constructor_arguments_are_torchs(name):
    ours = inspect.signature(getattr(nn, name)).parameters
    theirs = inspect.signature(getattr(torch.nn, name)).parameters
    assert [(k, p.default) for k, p in ours.items()] == \
        [(k, p.default) for k, p in theirs.items()
         if k not in DEPRECATED and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]  # (Sigmoid: Module's)


@pytest.mark.parametrize("name,kw", [(n, {}) for n in NAMES] + [
    ("LeakyReLU", {"negative_slope": 0.3}), ("ELU", {"alpha": 2.0}), ("GELU", {"approximate": "tanh"}),
    ("Softplus", {"beta": 0.5, "threshold": 1.0}), ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("PReLU", {"num_parameters": 3, "init": 0.1})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_and_repr_match_torch(name, kw, dtype):
    ours, theirs = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    assert repr(ours) == repr(theirs)
    tol = 2e-6 if dtype == np.float32 else 1e-7  # (torch's float64 hardsigmoid backward uses float32 1/6)
    same(ours, [x_with_kinks().astype(dtype)], g=theirs, rtol=tol, atol=tol)
    if name == "PReLU":
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=tol, atol=tol)


def test_changed_attribute_takes_effect_and_bad_values_name_the_layer():
    act = nn.LeakyReLU()
    x = gpucnn.tensor([-1.0, 2.0])
    act.negative_slope = 0.5
    np.testing.assert_allclose(act(x).numpy(), [-0.5, 2.0])
    with pytest.raises(ArgumentError, match=r"GELU: approximate must be one of 'none', 'tanh', got 'exact'"):
        nn.GELU(approximate="exact")
    with pytest.raises(ArgumentError, match=r"Hardtanh: min_val \(2\) must not be greater than max_val \(1\)"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(TypeError, match=r"ELU: .*\(arguments: alpha, inplace\)"):
        nn.ELU(1.0, False, 3)
    act.negative_slope = "steep"
    with pytest.raises(ArgumentError, match=r"LeakyReLU #\d+.*negative_slope must be a finite number"):
        nn.Sequential(act)(x)


def test_inplace_module():
    act = nn.SiLU(inplace=True)
    x = gpucnn.tensor([-1.0, 0.0, 2.0])
    assert act(x) is x
    np.testing.assert_allclose(x.numpy(), torch.nn.functional.silu(torch.tensor([-1.0, 0.0, 2.0])).numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    layer = getattr(nn, name)()
    cfg = json.loads(json.dumps(layer_to_config(layer)))
    assert cfg["type"] == name
    again = layer_from_config(cfg)
    assert type(again) is type(layer) and again.config() == layer.config()


def test_model_spec_with_activations_trains():
    spec = {"type": "Sequential", "layers": [
        {"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 16},
        {"type": "GELU", "approximate": "tanh"}, {"type": "Linear", "in_features": 16, "out_features": 16},
        {"type": "PReLU", "num_parameters": 16, "init": 0.1}, {"type": "Linear", "in_features": 16, "out_features": 16},
        {"type": "Hardswish"}, {"type": "Linear", "in_features": 16, "out_features": 3}]}
    gpucnn.manual_seed(0)
    model = layer_from_config(spec)
    from toydata import make_images
    x, y = make_images(48)
    losses = sgd_losses(model, gpucnn.nn.functional.cross_entropy, x.astype(np.float32) / 255, y, steps=30,
                        lr=0.1, momentum=0.9)
    assert losses[-1] < 0.5 * losses[0]
    assert layer_from_config(layer_to_config(model)).config() == model.config()


@pytest.mark.parametrize("cfg,match", [
    ({"type": "ELU", "alpha": "big"}, r"model \(ELU\): argument 'alpha' must be a number, got string"),
    ({"type": "GELU", "approximate": "erf"}, r"model \(GELU\): GELU: approximate must be one of"),
    ({"type": "SiLU", "beta": 1}, r"model \(SiLU\): unknown argument 'beta' \(arguments: inplace\)"),
    ({"type": "PReLU", "num_parameters": 0}, r"model \(PReLU\): PReLU: num_parameters must be an integer >= 1"),
])
def test_bad_specs(cfg, match):
    with pytest.raises(ModelFormatError, match=match):
        layer_from_config(cfg)


def test_prelu_parameter_state_dict_and_channel_error():
    layer = nn.PReLU(4, init=0.2)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    np.testing.assert_array_equal(layer.state_dict()["weight"].numpy(), np.full(4, 0.2, np.float32))
    other = nn.PReLU(4)
    other.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(other.weight.numpy(), layer.weight.numpy())
    assert nn.PReLU(2, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(ShapeError, match=r"PReLU #\d+ \(4 parameters\): prelu: weight has shape \(4,\); expected "
                                         r"1 value or 3"):
        nn.Sequential(layer)(gpucnn.zeros(2, 3, 5))


def test_prelu_on_emu_matches_cpu():
    x = x_with_kinks((2, 3, 2, 2))
    outs = []
    for device in ("cpu", "emu"):
        layer = nn.PReLU(3, 0.3).double().to(device)
        xt = gpucnn.tensor(x, device=device, requires_grad=True)
        layer(xt).sum().backward()
        outs.append((xt.grad.numpy(), layer.weight.grad.numpy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
