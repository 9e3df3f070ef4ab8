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
    "resnet18-cifar": ((3, 32, 32), 10, 11_173_962, (2, 10)),
    "mobilenetv2-cifar": ((3, 32, 32), 10, 2_236_682, (2, 10)),
    "vgg11-bn-cifar": ((3, 32, 32), 10, 9_231_114, (2, 10)),
    "inception-mini": ((3, 32, 32), 10, 108_450, (2, 10)),
    "unet": ((3, 64, 64), 4, 482_788, (2, 4, 64, 64)),
    "wavenet-tiny": ((1, 64), 256, 18_640, (2, 256, 64)),
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
    with pytest.raises(ArgumentError, match=r"unknown model 'lenet'; built-in models: inception-mini, keras-mnist"):
        build_model("lenet")
    with pytest.raises(ModelFormatError, match="no such model file"):
        build_model("missing/model.toml")
    with pytest.raises(ArgumentError):
        build_model(42)


def test_unet_is_a_saveable_module(tmp_path):
    model = UNet(in_channels=3, num_classes=4, base_channels=4)
    assert model.to_config() == {"type": "UNet", "in_channels": 3, "num_classes": 4, "base_channels": 4,
                                 "depth": 2, "upsampling": "nearest"}
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


def test_the_resnet_digits_example_is_resnet_cifar_with_a_one_channel_stem():
    """examples/models/resnet-digits.json (benchmarks/README.md's mixed-precision ResNet runs): the
    layers of resnet-cifar, its stem taking 1 channel instead of 3 (16 x 2 x 3 x 3 fewer weights), 28x28 in."""
    net = build_model(os.path.join(EXAMPLES, "resnet-digits.json"))
    ref = build_model("resnet-cifar")
    count = lambda m: sum(int(np.prod(p.shape)) for p in m.parameters())  # noqa: E731
    assert count(net) == count(ref) - 16 * 2 * 3 * 3 == 77_754
    assert [type(m).__name__ for m in net] == [type(m).__name__ for m in ref]
    assert net(gpucnn.zeros(2, 1, 28, 28)).shape == (2, 10)


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


# -- the model zoo against PyTorch models written here (same layer names, so weights copy by key) -------
import torch  # noqa: E402
from torch import nn as tnn  # noqa: E402


class TorchGlobalAvgPool(tnn.Module):
    """gpucnn's GlobalAvgPool2d in one module (AdaptiveAvgPool2d(1) + Flatten in torchvision)."""

    def forward(self, x):
        return x.mean((2, 3))


def _tbn_relu(cin, cout, k, relu=tnn.ReLU):
    return tnn.Sequential(tnn.Conv2d(cin, cout, k, padding=k // 2, bias=False), tnn.BatchNorm2d(cout), relu())


class TorchBasicBlock(tnn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.shortcut = (tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


def torch_resnet18_cifar():
    """kuangliu/pytorch-cifar's ResNet18 (its avg_pool2d(4) is the global pool at 32x32)."""
    layers = [tnn.Conv2d(3, 64, 3, padding=1, bias=False), tnn.BatchNorm2d(64), tnn.ReLU()]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        layers += [TorchBasicBlock(cin, cout, 1 if i == 0 else 2), TorchBasicBlock(cout, cout)]
        cin = cout
    return tnn.Sequential(*layers, TorchGlobalAvgPool(), tnn.Linear(512, 10))


class TorchInvertedResidual(tnn.Module):
    """torchvision.models.mobilenetv2.InvertedResidual."""

    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [tnn.Conv2d(cin, hidden, 1, bias=False), tnn.BatchNorm2d(hidden), tnn.ReLU6()] if t != 1 else []
        layers += [tnn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), tnn.BatchNorm2d(hidden),
                   tnn.ReLU6(), tnn.Conv2d(hidden, cout, 1, bias=False), tnn.BatchNorm2d(cout)]
        self.conv = tnn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def torch_mobilenetv2_cifar():
    """torchvision's mobilenet_v2(num_classes=10) with stride 1 in the stem and the 24-channel stage."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    layers = [tnn.Conv2d(3, 32, 3, 1, 1, bias=False), tnn.BatchNorm2d(32), tnn.ReLU6()]
    cin = 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(TorchInvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [tnn.Conv2d(320, 1280, 1, bias=False), tnn.BatchNorm2d(1280), tnn.ReLU6()]
    return tnn.Sequential(*layers, TorchGlobalAvgPool(), tnn.Dropout(0.2), tnn.Linear(1280, 10))


def torch_vgg11_bn_cifar():
    """kuangliu/pytorch-cifar's VGG('VGG11') (its AvgPool2d(1, 1) is a no-op)."""
    layers, cin = [], 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(tnn.MaxPool2d(2))
        else:
            layers += [tnn.Conv2d(cin, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
            cin = v
    return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(512, 10))


class TorchInception(tnn.Module):
    """torchvision.models.googlenet.Inception with a real 5x5 in the third branch (GoogLeNet's paper)."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = _tbn_relu(cin, c1, 1)
        self.branch2 = tnn.Sequential(_tbn_relu(cin, c3r, 1), _tbn_relu(c3r, c3, 3))
        self.branch3 = tnn.Sequential(_tbn_relu(cin, c5r, 1), _tbn_relu(c5r, c5, 5))
        self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), _tbn_relu(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def torch_inception_mini():
    return tnn.Sequential(_tbn_relu(3, 32, 3), TorchInception(32, 16, 16, 24, 8, 12, 12),
                          TorchInception(64, 24, 24, 40, 8, 16, 16), tnn.MaxPool2d(2),
                          TorchInception(96, 32, 32, 48, 12, 24, 24), TorchInception(128, 40, 40, 64, 16, 28, 28),
                          TorchGlobalAvgPool(), tnn.Linear(160, 10))


def _tdouble(cin, cout):
    return tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU(),
                          tnn.Conv2d(cout, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU())


class TorchUNet(tnn.Module):
    """The classic U-Net shape (Ronneberger et al.): up-convs (2x2 stride-2 transposed convs) halving the
    channels, concatenated with the encoder's output of the level."""

    def __init__(self, cin=3, classes=4, c=16, depth=3):
        super().__init__()
        self.depth = depth
        w = [c * 2 ** i for i in range(depth + 1)]
        prev = cin
        for i in range(1, depth + 1):
            setattr(self, f"enc{i}", _tdouble(prev, w[i - 1]))
            setattr(self, f"pool{i}", tnn.MaxPool2d(2))
            prev = w[i - 1]
        self.bottleneck = _tdouble(prev, w[-1])
        for i in range(depth, 0, -1):
            setattr(self, f"up{i}", tnn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2))
            setattr(self, f"dec{i}", _tdouble(2 * w[i - 1], w[i - 1]))
        self.head = tnn.Conv2d(c, classes, 1)

    def forward(self, x):
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.bottleneck(x)
        for i in range(self.depth, 0, -1):
            x = getattr(self, f"dec{i}")(torch.cat([getattr(self, f"up{i}")(x), skips[i - 1]], 1))
        return self.head(x)


class TorchCausalConv1d(tnn.Conv1d):
    """Conv1d that pads (kernel_size - 1) * dilation zeros on the left only."""

    def forward(self, x):
        return super().forward(tnn.functional.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0)))


class TorchWaveNet(tnn.Module):
    """WaveNet's residual stack (gated tanh x sigmoid units, 1x1 residual and skip convs)."""

    def __init__(self, cin=1, classes=256, r=16, s=32, k=2, dilations=(1, 2, 4, 8, 16)):
        super().__init__()
        self.causal = TorchCausalConv1d(cin, r, 2)
        self.filters = tnn.ModuleList(TorchCausalConv1d(r, r, k, dilation=d) for d in dilations)
        self.gates = tnn.ModuleList(TorchCausalConv1d(r, r, k, dilation=d) for d in dilations)
        self.residuals = tnn.ModuleList(tnn.Conv1d(r, r, 1) for _ in dilations[1:])
        self.skips = tnn.ModuleList(tnn.Conv1d(r, s, 1) for _ in dilations)
        self.relu = tnn.ReLU()
        self.post = tnn.Conv1d(s, s, 1)
        self.head = tnn.Conv1d(s, classes, 1)

    def forward(self, x):
        x = self.causal(x)
        skip = 0
        for i, (f, g, sk) in enumerate(zip(self.filters, self.gates, self.skips)):
            z = torch.tanh(f(x)) * torch.sigmoid(g(x))
            if i < len(self.residuals):
                x = x + self.residuals[i](z)
            skip = skip + sk(z)
        return self.head(self.relu(self.post(self.relu(skip))))


ZOO = {  # name: (torch reference, parameters (PyTorch's count), batch-2 input shape for the torch comparison)
    "resnet18-cifar": (torch_resnet18_cifar, 11_173_962, (3, 16, 16)),
    "mobilenetv2-cifar": (torch_mobilenetv2_cifar, 2_236_682, (3, 16, 16)),
    "vgg11-bn-cifar": (torch_vgg11_bn_cifar, 9_231_114, (3, 32, 32)),
    "inception-mini": (torch_inception_mini, None, (3, 16, 16)),
    "unet": (TorchUNet, None, (3, 32, 32)),
    "wavenet-tiny": (TorchWaveNet, None, (1, 64)),
}


def _randomise_bn(model, seed=0):
    """BatchNorm running statistics away from 0 / 1, so eval mode tests them too."""
    rng = np.random.default_rng(seed)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = rng.uniform(-0.2, 0.2, b.shape)
        elif name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 1.5, b.shape)


def _twins(name):
    """(gpucnn model, torch model with the same state, by name)."""
    gpucnn.manual_seed(0)
    ours = build_model(name)
    _randomise_bn(ours)
    ref = ZOO[name][0]()
    ours_state = ours.state_dict()
    ref_state = ref.state_dict()
    assert list(ours_state) == list(ref_state)  # same names (PyTorch's), same order
    ref.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours_state.items()})
    return ours, ref


def _summary_trainable(model):
    line = next(ln for ln in model.summary().splitlines() if ln.startswith("Trainable params:"))
    return int(line.split(":")[1].split("(")[0].replace(",", ""))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_parameter_counts_equal_the_reference(name):
    ours, ref = _twins(name)
    expected = sum(p.numel() for p in ref.parameters())
    if ZOO[name][1] is not None:
        assert expected == ZOO[name][1]  # the published count (torchvision / pytorch-cifar)
    assert ours.num_parameters() == expected
    assert _summary_trainable(ours) == expected


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_forward_and_backward_equal_pytorch_on_cpu(name):
    ours, ref = _twins(name)
    shape = ZOO[name][2]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2,) + shape)
    per_position = name in ("unet", "wavenet-tiny")  # logits per pixel / per time step
    y = rng.integers(0, ours.num_classes, (2,) + (shape[1:] if per_position else ()))
    # eval mode (the running statistics), float32: a few float32 roundings per layer
    ours.eval()
    ref.eval()
    x32 = x.astype(np.float32)
    with gpucnn.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(gpucnn.tensor(x32)).numpy(), ref(torch.tensor(x32)).numpy(),
                                   rtol=1e-4, atol=1e-4)
    # training mode (batch statistics), one loss and its gradients in float64, where the two libraries
    # agree to rounding: in float32 a batch of 2 through a dozen batch norms over 4x4 maps loses digits
    # in both. Dropout off in both (each library draws its own random numbers).
    ours.to(dtype=gpucnn.float64).train()
    ref.double().train()
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    for m in ref.modules():
        if isinstance(m, tnn.Dropout):
            m.eval()
    loss = gpucnn.nn.functional.cross_entropy(ours(gpucnn.tensor(x)), gpucnn.tensor(y))
    ref_loss = tnn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    ref_loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-10)
    ref_params = dict(ref.named_parameters())
    for key, p in ours.named_parameters():
        assert p.grad is not None, key
        g = ref_params[key].grad.numpy()
        # (atol: a bias before a batch norm has a gradient of exactly 0, computed as ~1e-16 by both)
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-7, atol=1e-10, err_msg=key)


EMU = {  # name: (input shape, the leading layers trained on emu (None: all))
    "resnet18-cifar": ((3, 8, 8), 6), "mobilenetv2-cifar": ((3, 8, 8), 6), "vgg11-bn-cifar": ((3, 32, 32), None),
    "inception-mini": ((3, 8, 8), None), "unet": ((3, 8, 8), None), "wavenet-tiny": ((1, 40), None)}


def _on(device, name, prefix=None):
    gpucnn.manual_seed(0)
    model = build_model(name)
    if prefix is not None:
        model = nn.Sequential(*list(model)[:prefix])
    _randomise_bn(model)
    return model.to(device)


@pytest.mark.parametrize("name", sorted(EMU))
def test_zoo_on_emu_equals_cpu(name):
    """Our CUDA kernels in the emulator against the NumPy path (float32, other summation orders), on a
    small input: the whole model's eval-mode forward, then one training-mode forward and backward.
    For resnet18 and mobilenetv2 the training step runs their first layers (the stem and blocks with
    and without a projection, strides 1 and 2): batch-statistics batch norm on the emulator costs
    ~0.25 s a layer, and an input small enough for the whole net leaves 1x1 maps whose batch of 2
    statistics turn rounding differences into large ones."""
    shape, prefix = EMU[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    outputs = []
    for device in ("cpu", "emu"):
        model = _on(device, name).eval()
        with gpucnn.no_grad():
            outputs.append(model(gpucnn.tensor(x, device=device)).numpy())
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-4)
    results = []
    for device in ("cpu", "emu"):
        model = _on(device, name, prefix)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        out = model(gpucnn.tensor(x, device=device))
        weights = gpucnn.tensor(np.random.default_rng(3).standard_normal(out.shape).astype(np.float32), device=device)
        (out * weights).sum().backward()
        results.append((out.numpy(), {k: p.grad.numpy() for k, p in model.named_parameters()}))
    (out_cpu, grads_cpu), (out_emu, grads_emu) = results
    np.testing.assert_allclose(out_emu, out_cpu, rtol=1e-4, atol=1e-4)
    for key, g in grads_cpu.items():
        np.testing.assert_allclose(grads_emu[key], g, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(g).max())),
                                   err_msg=key)


def test_build_model_for_other_data():
    model = build_model("unet-tiny", in_channels=3, num_classes=4)
    assert model.input_shape == (3, 28, 28) and model.num_classes == 4
    assert model(gpucnn.zeros(1, 3, 28, 28)).shape == (1, 4, 28, 28)
    assert build_model("resnet18-cifar", num_classes=100)(gpucnn.zeros(1, 3, 32, 32)).shape == (1, 100)
    wave = build_model("wavenet-tiny", num_classes=16)
    assert wave(gpucnn.zeros(2, 1, 10)).shape == (2, 16, 10)
    with pytest.raises(ArgumentError, match=r"model 'resnet18-cifar' takes 3 input channels; only unet, unet-tiny"):
        build_model("resnet18-cifar", in_channels=1)
    with pytest.raises(ArgumentError, match="num_classes must be an integer >= 1, got 0"):
        build_model("unet", num_classes=0)
    with pytest.raises(ArgumentError, match="is a model file"):
        build_model(os.path.join(EXAMPLES, "small-cnn.toml"), num_classes=3)


def test_unet_transposed_decoder():
    model = build_model("unet")
    assert model.to_config() == {"type": "UNet", "in_channels": 3, "num_classes": 4, "base_channels": 16,
                                 "depth": 3, "upsampling": "transposed"}
    ups = [model.up3, model.up2, model.up1]
    assert all(isinstance(u, nn.ConvTranspose2d) for u in ups)
    assert [(u.in_channels, u.out_channels) for u in ups] == [(128, 64), (64, 32), (32, 16)]
    with pytest.raises(ArgumentError, match="multiples of 8"):
        model(gpucnn.zeros(1, 3, 12, 16))
    with pytest.raises(ArgumentError, match="upsampling must be one of nearest, transposed, got 'bilinear'"):
        UNet(upsampling="bilinear")


def test_wavenet_is_causal_and_reports_its_receptive_field():
    from gpucnn.models import WaveNet

    gpucnn.manual_seed(0)
    model = build_model("wavenet-tiny")
    assert model.receptive_field == 2 + 1 + 2 + 4 + 8 + 16 == 33
    assert model.dilations == [1, 2, 4, 8, 16]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert all(c.padding == "causal" for c in convs if c.kernel_size != (1,))
    x = np.random.default_rng(0).standard_normal((1, 1, 80)).astype(np.float32)
    with gpucnn.no_grad():
        base = model(gpucnn.tensor(x)).numpy()
        changed = x.copy()
        changed[0, 0, 50] += 1.0  # a change at t = 50 reaches outputs 50 .. 50 + 32 only
        moved = np.abs(model(gpucnn.tensor(changed)).numpy() - base).max(axis=1)[0]
    assert not moved[:50].any()
    assert (moved[50:50 + 33] > 0).all() and not moved[50 + 33:].any()
    cfg = model.to_config()
    assert cfg == {"type": "WaveNet", "in_channels": 1, "num_classes": 256, "residual_channels": 16,
                   "skip_channels": 32, "kernel_size": 2, "dilations": [1, 2, 4, 8, 16]}
    assert WaveNet(dilations=[1, 3], kernel_size=3).receptive_field == 2 + 2 * 4
    with pytest.raises(ArgumentError, match="dilations must be a non-empty list"):
        WaveNet(dilations=[])
    with pytest.raises(ArgumentError, match="WaveNet: kernel_size must be an integer >= 2, got 1"):
        WaveNet(kernel_size=1)


def test_inception_module_concatenates_its_branches():
    from gpucnn.models import InceptionModule

    block = InceptionModule(8, 2, 3, 4, 1, 5, 6)
    assert block.out_channels == 2 + 4 + 5 + 6
    assert block(gpucnn.zeros(2, 8, 5, 7)).shape == (2, 17, 5, 7)
    assert nn.layer_from_config(block.to_config()).to_config() == block.to_config()
    with pytest.raises(ArgumentError, match="InceptionModule: ch5x5 must be an integer >= 1, got 0"):
        InceptionModule(8, 2, 3, 4, 1, 0, 6)


def test_inverted_residual_shortcut_and_errors():
    from gpucnn.models import InvertedResidual

    assert InvertedResidual(16, 16, 1, 6).use_residual
    assert not InvertedResidual(16, 24, 1, 6).use_residual and not InvertedResidual(16, 16, 2, 6).use_residual
    depthwise = InvertedResidual(4, 8, 2, 3).conv[3]
    assert depthwise.groups == depthwise.in_channels == 12 and depthwise.stride == (2, 2)
    with pytest.raises(ArgumentError, match="stride must be 1 or 2, got 3"):
        InvertedResidual(4, 4, 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18-cifar"])
def test_zoo_whole_training_step_on_emu_equals_cpu(name):
    """The issue's "one training step on emu" for resnet18-cifar whole, at CIFAR's 32x32 (the final maps
    are then 4x4, so a batch of 2 has statistics to normalise with): every parameter's gradient of the
    emulated CUDA kernels against the NumPy path (~20 s: batch norm on the emulator). Not mobilenetv2-cifar:
    with this test's random batch-norm parameters and a batch of 2, its whole-net float32 gradient is
    ill-conditioned on any device (the cpu's float32 and float64 gradients differ by ~60 %, emu's float32
    agrees with the cpu's to ~3 %), so the comparison would test nothing; its blocks are compared above."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    results = []
    for device in ("cpu", "emu"):
        model = _on(device, name)
        out = model(gpucnn.tensor(x, device=device))
        weights = gpucnn.tensor(np.random.default_rng(3).standard_normal(out.shape).astype(np.float32), device=device)
        (out * weights).sum().backward()
        results.append((out.numpy(), {k: p.grad.numpy() for k, p in model.named_parameters()}))
    (out_cpu, grads_cpu), (out_emu, grads_emu) = results
    np.testing.assert_allclose(out_emu, out_cpu, rtol=1e-3, atol=1e-3)
    for key, g in grads_cpu.items():
        np.testing.assert_allclose(grads_emu[key], g, rtol=1e-2, atol=1e-3 * max(1.0, float(np.abs(g).max())),
                                   err_msg=key)
