"""Built-in models and model files (JSON / TOML)."""
import json
import os
import textwrap

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, nn
from gpucnn.models import UNet, build_model, list_models, load_model_file, model_descriptions
from gpucnn.serialization import load, save

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "models")

EXPECTED = {  # name: (input shape, classes, parameters, output shape for a batch of 2)
    "keras-mnist": ((1, 28, 28), 10, 421_642, (2, 10)),
    "strided-42": ((3, 64, 64), 42, 89_418, (2, 42)),
    "resnet-cifar": ((3, 32, 32), 10, 78_042, (2, 10)),
    "vgg-cifar": ((3, 32, 32), 10, 307_946, (2, 10)),
    "unet-tiny": ((1, 28, 28), 2, 29_786, (2, 2, 28, 28)),
}


def test_list_models():
    assert list_models() == sorted(EXPECTED)
    assert set(model_descriptions()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_models(name):
    shape, classes, params, out_shape = EXPECTED[name]
    model = build_model(name)
    assert isinstance(model, nn.Module)
    assert model.input_shape == shape and model.num_classes == classes and model.name == name
    assert model.num_parameters() == params
    assert all(p.dtype == np.float32 for p in model.parameters())
    x = gpucnn.tensor(np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32))
    assert model(x).shape == out_shape


def test_keras_mnist_layer_counts():
    model = build_model("keras-mnist")
    counts = [m.num_parameters() for m in model if m.num_parameters()]
    assert counts == [320, 18_496, 401_536, 1_290]


def test_strided_42_layers():
    model = build_model("strided-42")
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride, c.padding) for c in convs] == [
        (3, 16, (2, 2), "same"), (16, 64, (2, 2), "same"), (64, 128, (2, 2), "same")]
    assert all(c.bias is not None for c in convs)  # Keras's default use_bias=True, kept before BN
    assert sum(b.numel() for n, b in model.named_buffers() if "running" in n) == 416


def test_build_model_names_and_errors():
    assert build_model("KERAS_MNIST").name == "keras-mnist"
    with pytest.raises(ArgumentError, match=r"unknown model 'lenet'; built-in models: keras-mnist"):
        build_model("lenet")
    with pytest.raises(ModelFormatError, match="no such model file"):
        build_model("missing/model.toml")
    with pytest.raises(ArgumentError):
        build_model(42)


def test_unet_is_a_saveable_module(tmp_path):
    model = UNet(in_channels=3, num_classes=4, base_channels=4)
    assert model.to_config() == {"type": "UNet", "in_channels": 3, "num_classes": 4, "base_channels": 4}
    assert model(gpucnn.zeros(1, 3, 8, 12)).shape == (1, 4, 8, 12)
    with pytest.raises(ArgumentError, match="multiples of 4"):
        model(gpucnn.zeros(1, 3, 10, 12))
    save(model, tmp_path / "u.npz")
    loaded = load(tmp_path / "u.npz")
    assert isinstance(loaded, UNet) and loaded.to_config() == model.to_config()


# -- model files ---------------------------------------------------------------------------------------
def test_example_files_build_the_same_network():
    gpucnn.manual_seed(0)
    a = build_model(os.path.join(EXAMPLES, "small-cnn.toml"))
    gpucnn.manual_seed(0)
    b = build_model(os.path.join(EXAMPLES, "small-cnn.json"))
    assert a.to_config() == b.to_config()
    assert a.name == b.name == "small-cnn" and a.input_shape == (1, 28, 28) and a.num_classes == 10
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert a(gpucnn.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert a.training  # building ran a check forward in eval mode and restored the mode


def test_every_example_file_builds():
    files = [f for f in os.listdir(EXAMPLES) if f.endswith((".json", ".toml"))]
    assert files
    for f in files:
        model = load_model_file(os.path.join(EXAMPLES, f))
        assert model.num_classes and model.input_shape


def test_keras_mnist_as_a_toml_file_equals_the_builtin(tmp_path):
    spec = textwrap.dedent("""
        format = "gpucnn-model-spec"
        version = 1
        name = "mnist-from-file"
        input_shape = [1, 28, 28]
        classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        [[layers]]
        type = "Conv2d"
        in_channels = 1
        out_channels = 32
        kernel_size = 3
        padding = "same"
        [[layers]]
        type = "ReLU"
        [[layers]]
        type = "MaxPool2d"
        kernel_size = 2
        [[layers]]
        type = "Conv2d"
        in_channels = 32
        out_channels = 64
        kernel_size = [3, 3]
        padding = "same"
        [[layers]]
        type = "ReLU"
        [[layers]]
        type = "MaxPool2d"
        kernel_size = 2
        [[layers]]
        type = "Flatten"
        [[layers]]
        type = "Linear"
        in_features = 3136
        out_features = 128
        [[layers]]
        type = "ReLU"
        [[layers]]
        type = "Linear"
        in_features = 128
        out_features = 10
    """)
    path = tmp_path / "mnist.toml"
    path.write_text(spec)
    gpucnn.manual_seed(1)
    from_file = build_model(str(path))
    gpucnn.manual_seed(1)
    builtin = build_model("keras-mnist")
    assert from_file.to_config() == builtin.to_config()
    assert from_file.classes == [str(i) for i in range(10)] and from_file.name == "mnist-from-file"
    for va, vb in zip(from_file.parameters(), builtin.parameters()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_nested_residual_and_architecture_tables(tmp_path):
    toml = textwrap.dedent("""
        input_shape = [2, 8, 8]
        [[layers]]
        type = "Residual"
        [layers.body]
        type = "Sequential"
        [[layers.body.layers]]
        type = "Conv2d"
        in_channels = 2
        out_channels = 2
        kernel_size = 3
        padding = 1
        [[layers.body.layers]]
        type = "ReLU"
        [[layers]]
        type = "GlobalAvgPool2d"
    """)
    (tmp_path / "res.toml").write_text(toml)
    model = build_model(str(tmp_path / "res.toml"))
    assert isinstance(model[0], nn.Residual) and model.num_classes == 2 and model.name == "res"
    (tmp_path / "unet.json").write_text(json.dumps(
        {"input_shape": [1, 16, 16], "architecture": {"type": "UNet", "in_channels": 1, "num_classes": 3}}))
    unet = build_model(str(tmp_path / "unet.json"))
    assert isinstance(unet, UNet) and unet.num_classes == 3


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(p)


LAYERS = [{"type": "Flatten"}, {"type": "Linear", "in_features": 4, "out_features": 2}]


@pytest.mark.parametrize("content, message", [
    ({"input_shape": [1, 2, 2], "layers": LAYERS + [{"type": "Conv3d"}]},
     r"bad\.json: layers\[2\]: unknown layer type 'Conv3d'"),
    ({"input_shape": [1, 2, 2], "layers": [{"type": "Linear", "in_features": 4, "out_featurs": 2}]},
     r"bad\.json: layers\[0\] \(Linear\): unknown argument 'out_featurs'; did you mean 'out_features'\?"),
    ({"layers": LAYERS}, r"bad\.json: missing 'input_shape'"),
    ({"input_shape": [1, 2, 2]}, r"bad\.json: give either 'layers'"),
    ({"input_shape": [1, 2, 2], "layers": []}, r"'layers' must be a non-empty list"),
    ({"input_shape": [1, 2, 2], "layer": LAYERS}, r"bad\.json: unknown key 'layer'"),
    ({"input_shape": [1, 2, 2], "layers": LAYERS, "version": 3},
     r"bad\.json was written for a newer gpucnn \(model spec version 3; this gpucnn reads up to 1\)"),
    ({"input_shape": [1, 2, 2], "layers": LAYERS, "format": "gpucnn-model"}, r"format must be 'gpucnn-model-spec'"),
    ({"input_shape": [1, 3, 3], "layers": LAYERS},
     r"bad\.json: the layers do not fit input_shape \[1, 3, 3\]: Linear #1 \(4->2\): linear: input has 9 features"),
    ({"input_shape": [1, 2, 2], "layers": LAYERS, "classes": ["a"]}, r"1 class names for 2 classes"),
    ({"input_shape": "1x2x2", "layers": LAYERS}, r"input_shape must be a list"),
    ([1, 2], r"bad\.json: expected a table/object at the top level"),
    ("{not json", r"bad\.json: invalid JSON"),
])
def test_bad_json_model_files(tmp_path, content, message):
    with pytest.raises(ModelFormatError, match=message):
        build_model(write(tmp_path, "bad.json", content))


def test_bad_toml_model_files(tmp_path):
    with pytest.raises(ModelFormatError, match=r"bad\.toml: invalid TOML"):
        build_model(write(tmp_path, "bad.toml", "input_shape = [1, 2\n[[layers]\n"))
    typo = ('input_shape = [1, 28, 28]\n[[layers]]\ntype = "Conv2d"\nin_channels = 1\nout_channels = 4\n'
            'kernal_size = 3\n')
    with pytest.raises(ModelFormatError, match=r"bad2\.toml: layers\[0\] \(Conv2d\): unknown argument 'kernal_size'"):
        build_model(write(tmp_path, "bad2.toml", typo))
    with pytest.raises(ModelFormatError, match="must end in .json or .toml"):
        build_model(write(tmp_path, "model.yaml", "layers: []"))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ModelFormatError, match="not UTF-8"):
        build_model(str(tmp_path / "binary.json"))
