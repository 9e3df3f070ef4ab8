"""Layers: initialisation, forward against the functional ops, BatchNorm buffers, Upsample, Residual and
BasicBlock, gradients through a Module, and error labelling."""
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, ShapeError, nn
from gpucnn.functions.batch_norm import batch_norm
from gpucnn.functions.conv import conv1d, conv2d
from gpucnn.functions.pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from gpucnn.models import build_model


def randn(*shape, seed=0, dtype=np.float32):
    return gpucnn.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# -- initialisation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(16, 64, 3), 16 * 9),
    (lambda: nn.Conv1d(8, 32, 5), 8 * 5),
    # fan_in per group, as PyTorch (enough bias values for the mean check)
    (lambda: nn.Conv2d(16, 2048, 3, groups=4), 4 * 9),
    (lambda: nn.Conv2d(64, 2048, 3, groups=64), 9),               # depthwise, multiplier 32
    (lambda: nn.ConvTranspose2d(8, 2048, 2, groups=2), 1024 * 4),  # weight (8, 2048/2, 2, 2): fan_in from dim 1
    (lambda: nn.Linear(400, 300), 400),
])
def test_default_init_is_pytorch_kaiming_uniform(make, fan_in):
    gpucnn.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    for t in (layer.weight, layer.bias):
        v = t.numpy()
        assert t.dtype == np.float32 and t.requires_grad
        assert np.abs(v).max() <= bound
        assert np.abs(v).max() > 0.9 * bound  # fills the interval
    w = layer.weight.numpy().ravel()
    assert abs(w.mean()) < 0.05 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-b, b) is b/sqrt(3)


def test_batchnorm_init_and_buffers():
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(5))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(5))
    assert int(bn.num_batches_tracked.item()) == 0
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert not bn.running_mean.requires_grad


def test_init_helpers():
    t = gpucnn.zeros(30, 20)
    nn.init.xavier_uniform_(t)
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / 50)
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 20)) < 0.03
    nn.init.constant_(t, 0.5)
    assert (t.numpy() == 0.5).all() and t.dtype == np.float32
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    with pytest.raises(ArgumentError):
        nn.init.calculate_gain("swish")


def test_manual_seed_makes_models_reproducible():
    def weights(seed):
        gpucnn.manual_seed(seed)
        return [p.numpy() for p in build_model("keras-mnist").parameters()]

    a, b, c = weights(3), weights(3), weights(4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


# -- forward matches the functional ops --------------------------------------------------------------
def test_conv_layers_call_the_ops():
    x = randn(2, 3, 9, 9)
    for kw in ({}, {"stride": 2, "padding": "same"}, {"padding": (1, 2), "dilation": 2},
               {"padding": 1, "padding_mode": "reflect", "bias": False}):
        layer = nn.Conv2d(3, 4, 3, **kw)
        expected = conv2d(x, layer.weight, layer.bias, stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                          dilation=kw.get("dilation", 1), padding_mode=kw.get("padding_mode", "zeros"))
        np.testing.assert_array_equal(layer(x).numpy(), expected.numpy())
    x1 = randn(2, 3, 11)
    layer = nn.Conv1d(3, 5, 3, stride=2, padding=1)
    np.testing.assert_array_equal(layer(x1).numpy(), conv1d(x1, layer.weight, layer.bias, 2, 1).numpy())
    assert layer.weight.shape == (5, 3, 3)


def test_pool_layers_call_the_ops():
    x = randn(2, 3, 8, 8)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy(), max_pool2d(x, 2).numpy())
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1)(x).numpy(), max_pool2d(x, 3, 2, 1).numpy())
    np.testing.assert_array_equal(nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x).numpy(),
                                  avg_pool2d(x, 3, 2, 1, count_include_pad=False).numpy())
    assert nn.AdaptiveAvgPool2d((2, None))(x).shape == (2, 3, 2, 8)
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(x).numpy(), x.numpy().mean(axis=(2, 3)), rtol=1e-6)
    x1 = randn(2, 3, 10)
    np.testing.assert_array_equal(nn.MaxPool1d(2)(x1).numpy(), max_pool1d(x1, 2).numpy())
    np.testing.assert_array_equal(nn.AvgPool1d(4, 2)(x1).numpy(), avg_pool1d(x1, 4, 2).numpy())


def test_batchnorm_layer_training_updates_running_stats_and_eval_uses_them():
    x = randn(8, 3, 4, 4) * 2.0 + 1.0
    bn = nn.BatchNorm2d(3, momentum=0.5)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    expected = batch_norm(x, rm, rv, bn.weight, bn.bias, training=True, momentum=0.5)
    np.testing.assert_allclose(bn(x).numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    before = bn.running_mean.numpy()
    y = bn(x).numpy()
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    ref = (x.numpy() - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    # momentum=None: cumulative average over batches
    cum = nn.BatchNorm1d(3, momentum=None)
    a, b = randn(5, 3, seed=1), randn(5, 3, seed=2)
    cum(a)
    cum(b)
    np.testing.assert_allclose(cum.running_mean.numpy(), (a.numpy().mean(0) + b.numpy().mean(0)) / 2, rtol=1e-5)
    # without running statistics: batch statistics in both modes, no buffers
    free = nn.BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    assert list(free.state_dict()) == [] and free(x).shape == x.shape
    assert nn.BatchNorm1d(3)(randn(4, 3, 7)).shape == (4, 3, 7)


def test_activation_shape_layers():
    x = randn(2, 3, 4)
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).numpy().sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax()(x).numpy()).sum(axis=-1), 1, rtol=1e-6)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Identity(54, unused="x")(x) is x
    lin = nn.Linear(4, 5)
    np.testing.assert_allclose(lin(x).numpy(), x.numpy() @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-6)


def test_upsample_nearest_values_and_gradient():
    x = gpucnn.tensor(np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2))
    y = nn.Upsample(scale_factor=2)(x).numpy()
    np.testing.assert_array_equal(y, x.numpy().repeat(2, axis=2).repeat(2, axis=3))
    assert nn.Upsample(scale_factor=(1, 3))(x).shape == (1, 2, 2, 6)
    x64 = gpucnn.tensor(np.random.default_rng(0).standard_normal((2, 3, 3, 2)), requires_grad=True)
    gpucnn.gradcheck(lambda t: nn.functional.upsample_nearest2d(t, (2, 3)), [x64])
    with pytest.raises(ArgumentError):
        nn.Upsample(scale_factor=0)
    with pytest.raises(ArgumentError):
        nn.Upsample(mode="bilinear")


def test_residual_and_basic_block():
    x = randn(2, 4, 6, 6)
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    res = nn.Residual(body)
    np.testing.assert_allclose(res(x).numpy(), body(x).numpy() + x.numpy(), rtol=1e-6)
    proj = nn.Residual(nn.Conv2d(4, 8, 3, padding=1), shortcut=nn.Conv2d(4, 8, 1))
    assert proj(x).shape == (2, 8, 6, 6)
    with pytest.raises(ShapeError, match=r"^Residual: residual: body output shape \(2, 8, 6, 6\) differs from the "
                                         r"input \(identity shortcut\) shape \(2, 4, 6, 6\)"):
        nn.Residual(nn.Conv2d(4, 8, 3, padding=1))(x)

    block = nn.BasicBlock(4, 4).eval()
    assert block.shortcut is None
    ref = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))) + x)
    np.testing.assert_allclose(block(x).numpy(), ref.numpy(), rtol=1e-6)
    down = nn.BasicBlock(4, 8, stride=2)
    assert down(x).shape == (2, 8, 3, 3)
    assert [n for n, _ in down.named_parameters()] == [
        "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
        "shortcut.0.weight", "shortcut.1.weight", "shortcut.1.bias"]


def test_constructor_arguments_are_checked():
    for bad in (lambda: nn.Conv2d(0, 4, 3), lambda: nn.Conv2d(1, 4, (3, 3, 3)),
                lambda: nn.Conv2d(1, 4, 3, padding="full"), lambda: nn.Conv2d(1, 4, 3, padding_mode="wrap"),
                lambda: nn.Linear(3, 2.5), lambda: nn.BatchNorm2d(3, momentum=2.0), lambda: nn.Dropout(1.5),
                lambda: nn.MaxPool2d(0), lambda: nn.MaxPool2d(4, padding=3),
                lambda: nn.Linear(2, 2, bias="yes"), lambda: nn.AdaptiveAvgPool2d(0)):
        with pytest.raises(ArgumentError):
            bad()


# -- gradients through a Module ---------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_through_a_small_sequential(training):
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3 * 2 * 2, 4)).double()
    model.train(training)
    if not training:
        model[1].running_mean.data[...] = [0.1, -0.2, 0.3]
        model[1].running_var.data[...] = [0.5, 1.5, 2.0]
    x = gpucnn.tensor(np.random.default_rng(1).standard_normal((2, 2, 4, 4)), requires_grad=True)
    params = list(model.parameters())
    assert all(p.dtype == np.float64 for p in params)
    gpucnn.gradcheck(lambda x, *ps: model(x), [x, *params])


def test_backward_reaches_every_parameter_of_the_builtin_models():
    for name in ("resnet-cifar", "unet-tiny"):
        model = build_model(name)
        x = randn(2, *model.input_shape)
        model(x).sum().backward()
        assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters()), name


# -- error labelling ----------------------------------------------------------------------------------
def test_wrong_channels_names_the_layer_by_its_index():
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(32, 64, 3))
    with pytest.raises(ShapeError) as e:
        model(gpucnn.zeros(8, 1, 16, 16))
    assert str(e.value) == ("Conv2d #2 (32->64, 3x3): conv2d: input has 16 channels, expected 32 "
                            "(input shape (8, 16, 14, 14), weight shape (64, 32, 3, 3))")
    # re-raised once, keeping the type, chained to the op's own error
    assert isinstance(e.value.__cause__, ShapeError)
    assert str(e.value.__cause__).startswith("conv2d: input has 16 channels")


def test_wrong_rank_and_wrong_features():
    model = build_model("keras-mnist")
    with pytest.raises(ShapeError) as e:
        model(gpucnn.zeros(1, 28, 28))
    assert str(e.value).startswith("Conv2d #0 (1->32, 3x3): conv2d: expected a 4-D (N, C, H, W) input, got rank 3 "
                                   "(input shape (1, 28, 28)); add a batch dimension")
    with pytest.raises(ShapeError) as e:
        model(gpucnn.zeros(2, 1, 32, 32))
    msg = str(e.value)
    assert msg.startswith("Linear #7 (3136->128): linear: input has 4096 features (input shape (2, 4096)), "
                          "expected 3136 (weight shape (128, 3136))")
    assert msg.count("Linear") == 1


def test_nested_layers_are_named_by_their_path():
    model = build_model("unet-tiny")
    with pytest.raises(ShapeError, match=r"^Conv2d 'enc1\.0' \(1->8, 3x3\): conv2d: input has 3 channels, "
                                         r"expected 1"):
        model(gpucnn.zeros(1, 3, 28, 28))
    resnet = build_model("resnet-cifar")
    resnet[4].conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    with pytest.raises(ShapeError, match=r"^Conv2d '4\.conv2' \(16->32, 3x3\): conv2d: input has 32 channels"):
        resnet(gpucnn.zeros(1, 3, 32, 32))
    # called directly: no index
    with pytest.raises(ShapeError, match=r"^BatchNorm2d \(4\): batch_norm2d: input has 3 channels, expected 4"):
        nn.BatchNorm2d(4)(gpucnn.zeros(2, 3, 2, 2))


def test_errors_of_ops_inside_layers_and_non_tensor_inputs():
    with pytest.raises(ShapeError, match=r"^MaxPool2d #1 \(4x4\): max_pool2d: kernel 4x4 is larger than the padded "
                                         r"input 3x3"):
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(4))(gpucnn.zeros(1, 1, 3, 3))
    with pytest.raises(ArgumentError, match=r"^Linear #0 \(3->2\): linear: input has dtype float32, the layer's "
                                            r"weight float64"):
        nn.Sequential(nn.Linear(3, 2)).double()(gpucnn.zeros(2, 3))
    with pytest.raises(ArgumentError, match=r"^Linear \(3->2\): linear: input must be a gpucnn Tensor, got ndarray"):
        nn.Linear(3, 2)(np.zeros((1, 3)))


def test_user_layer_errors_are_labelled_once():
    class Inner(nn.Module):
        def forward(self, x):
            raise gpucnn.DataError("boom")

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Identity(), Inner())

        def forward(self, x):
            return self.block(x)

    with pytest.raises(gpucnn.DataError) as e:
        Outer()(gpucnn.zeros(1))
    assert str(e.value) == "Inner 'block.1': boom"
    # other exceptions (bugs) pass through untouched
    class Buggy(nn.Module):
        def forward(self, x):
            raise KeyError("k")

    with pytest.raises(KeyError):
        nn.Sequential(Buggy())(gpucnn.zeros(1))


def test_nn_functional_is_gpucnn_functional():
    import gpucnn.nn.functional as NF
    from gpucnn import functional

    for name in functional.__all__:
        assert getattr(NF, name) is getattr(functional, name)
    assert set(functional.__all__) <= set(NF.__all__) and "upsample_nearest2d" in NF.__all__
    with pytest.raises(AttributeError):
        NF.no_such_op


# -- grouped / transposed conv layers -------------------------------------------------------------------
@pytest.mark.parametrize("make, torch_make", [
    (lambda: nn.Conv2d(8, 16, 3, groups=4), "Conv2d(8, 16, 3, groups=4)"),
    (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), "Conv2d(8, 8, 3, padding=1, groups=8, bias=False)"),
    (lambda: nn.Conv1d(6, 12, 3, groups=3), "Conv1d(6, 12, 3, groups=3)"),
    (lambda: nn.ConvTranspose2d(8, 4, 2, stride=2, groups=2), "ConvTranspose2d(8, 4, 2, stride=2, groups=2)"),
    (lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, output_padding=1), "ConvTranspose1d(4, 6, 3, stride=2, output_padding=1)"),
])
def test_conv_family_shapes_and_config_match_pytorch(make, torch_make):
    torch = pytest.importorskip("torch")
    layer, ref = make(), eval("torch.nn." + torch_make)
    assert [tuple(p.shape) for p in layer.parameters()] == [tuple(p.shape) for p in ref.parameters()]
    back = nn.layer_from_config(nn.layer_to_config(layer))
    assert type(back) is type(layer) and back.config() == layer.config()
    assert back.weight.shape == layer.weight.shape


def test_depthwise_separable_block_summary():
    """MobileNet's depthwise-separable block: parameter counts as PyTorch's."""
    block = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.Conv2d(32, 64, 1, bias=False))
    text = block.summary((32, 16, 16))
    assert "Trainable params: 2,400" in text  # 32*9 + 2*32 + 32*64
    assert "(None, 64, 16, 16)" in text
