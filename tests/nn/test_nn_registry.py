"""The layer registry: config() round trips, schema validation before building, user layers."""
import json

import numpy as np
import pytest

import gpucnn
from gpucnn import ModelFormatError, nn
from gpucnn.models import build_model, list_models

LAYERS = [
    nn.Conv2d(1, 32, 3, padding="same"),
    nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=2, bias=False, padding_mode="reflect"),
    nn.Conv1d(2, 4, 5, stride=2, padding="valid"),
    nn.MaxPool2d(2),
    nn.MaxPool2d((3, 2), stride=1, padding=(1, 0), ceil_mode=True),
    nn.MaxPool1d(3, 2, 1),
    nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    nn.AvgPool1d(2),
    nn.AdaptiveAvgPool2d((3, None)),
    nn.GlobalAvgPool2d(),
    nn.BatchNorm2d(16, eps=1e-3, momentum=None),
    nn.BatchNorm1d(7, affine=False, track_running_stats=False),
    nn.ReLU(),
    nn.Softmax(1),
    nn.LogSoftmax(),
    nn.Flatten(2, 3),
    nn.Linear(5, 3, bias=False),
    nn.Dropout(0.25),
    nn.Identity(),
    nn.Upsample(scale_factor=(2, 3)),
    nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()),
    nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1)), shortcut=nn.Identity()),
    nn.Residual(nn.ReLU()),
    nn.BasicBlock(8, 16, stride=2),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda m: type(m).__name__)
def test_config_round_trip(layer):
    cfg = layer.to_config()
    text = json.dumps(cfg)  # JSON-serialisable
    rebuilt = nn.layer_from_config(json.loads(text))
    assert type(rebuilt) is type(layer)
    assert rebuilt.to_config() == cfg
    assert repr(rebuilt) == repr(layer)
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == \
        [(k, v.shape) for k, v in layer.state_dict().items()]


@pytest.mark.parametrize("name", list_models())
def test_builtin_models_round_trip_through_config(name):
    model = build_model(name)
    cfg = model.to_config()
    rebuilt = nn.layer_from_config(json.loads(json.dumps(cfg)))
    assert repr(rebuilt) == repr(model)
    assert list(rebuilt.state_dict()) == list(model.state_dict())


def test_named_sequential_keeps_names():
    from collections import OrderedDict
    seq = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU()))
    cfg = seq.to_config()
    assert cfg["names"] == ["conv", "act"]
    assert list(nn.layer_from_config(cfg).state_dict()) == ["conv.weight", "conv.bias"]


def seq(*layers):
    return {"type": "Sequential", "layers": list(layers)}


CONV = {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3}


@pytest.mark.parametrize("config, message", [
    (seq(CONV, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Conv3d"}),
     r"^layers\[3\]: unknown layer type 'Conv3d'; did you mean 'Conv2d'\? \(known: .*BatchNorm2d.*\)"),
    (seq({"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernal_size": 3}),
     r"^layers\[0\] \(Conv2d\): unknown argument 'kernal_size'; did you mean 'kernel_size'\?"),
    (seq({"type": "Conv2d", "in_channels": 1, "out_channels": 4}),
     r"^layers\[0\] \(Conv2d\): missing argument 'kernel_size'"),
    (seq({**CONV, "padding": 1.5}),
     r"^layers\[0\] \(Conv2d\): argument 'padding' must be an integer or a list of integers or a string, "
     r"got number 1\.5"),
    (seq({**CONV, "bias": 1}), r"^layers\[0\] \(Conv2d\): argument 'bias' must be true or false, got integer 1"),
    (seq({"type": "Linear", "in_features": True, "out_features": 2}),
     r"argument 'in_features' must be an integer, got boolean True"),
    (seq(["Conv2d"]), r"^layers\[0\]: expected a layer table with a 'type', got list"),
    (seq({"kernel_size": 3}), r"^layers\[0\]: missing 'type'"),
    (seq({"type": 3}), r"^layers\[0\]: 'type' must be a string"),
    ({"type": "Residual", "body": seq(CONV, {"type": "Nope"})},
     r"^body\.layers\[1\]: unknown layer type 'Nope'"),
    ({"type": "Residual", "body": {"type": "ReLU"}, "shortcut": {"type": "Linear", "in_features": 1}},
     r"^shortcut \(Linear\): missing argument 'out_features'"),
    (seq({**CONV, "in_channels": 0}), r"^layers\[0\] \(Conv2d\): Conv2d: in_channels must be an integer >= 1, got 0"),
    (seq({"type": "MaxPool2d", "kernel_size": 2, "padding": 2}), r"^layers\[0\] \(MaxPool2d\): MaxPool2d: padding 2 "),
    ({"type": "Sequential", "layers": seq()}, r"argument 'layers' must be a list of layer tables"),
    ("Conv2d", r"^model: expected a layer table"),
])
def test_invalid_configs_name_the_entry(config, message):
    with pytest.raises(ModelFormatError, match=message):
        nn.layer_from_config(config)


def test_validation_happens_before_building(monkeypatch):
    built = []
    original = nn.Conv2d.__init__

    def spy(self, *a, **k):
        built.append(1)
        original(self, *a, **k)

    monkeypatch.setattr(nn.Conv2d, "__init__", spy)
    with pytest.raises(ModelFormatError):
        nn.layer_from_config(seq(CONV, CONV, {"type": "Conv3d"}))
    assert built == []


def test_deep_nesting_is_a_format_error():
    cfg: dict = {"type": "ReLU"}
    for _ in range(5000):
        cfg = {"type": "Residual", "body": cfg}
    with pytest.raises(ModelFormatError, match="nested too deeply"):
        nn.layer_from_config(cfg)


def test_register_user_layer():
    @nn.register_layer
    class Scale(nn.Module):
        config_schema = {"factor": "number"}

        def __init__(self, factor=1.0):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

        def config(self):
            return {"factor": self.factor}

    assert "Scale" in nn.known_layers()
    m = nn.layer_from_config(seq({"type": "Scale", "factor": 2.5}))
    np.testing.assert_array_equal(m(gpucnn.ones(2)).numpy(), [2.5, 2.5])
    assert m.to_config() == seq({"type": "Scale", "factor": 2.5})
    with pytest.raises(ModelFormatError, match="argument 'factor' must be a number"):
        nn.layer_from_config({"type": "Scale", "factor": "2"})

    @nn.register_layer(name="Shift")
    class ShiftLayer(nn.Module):  # no schema: names come from the signature
        def __init__(self, amount, extra=None):
            super().__init__()
            self.amount = amount

        def forward(self, x):
            return x + self.amount

        def config(self):
            return {"amount": self.amount}

    assert nn.layer_from_config({"type": "Shift", "amount": 1}).amount == 1
    with pytest.raises(ModelFormatError, match=r"^model \(Shift\): missing argument 'amount'"):
        nn.layer_from_config({"type": "Shift"})
    with pytest.raises(ModelFormatError, match=r"unknown argument 'amout'"):
        nn.layer_from_config({"type": "Shift", "amout": 1})


def test_unregistered_module_cannot_be_described():
    class Mine(nn.Module):
        def __init__(self, k):
            super().__init__()

    with pytest.raises(gpucnn.ArgumentError, match="register_layer"):
        Mine(3).to_config()
