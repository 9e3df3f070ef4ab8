"""Module mechanics: registration, traversal, state_dict / load_state_dict, modes, devices, dtypes, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, ModelFormatError, nn
from gpucnn.models import build_model


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.register_buffer("step", gpucnn.zeros(1))
        self.head = nn.Linear(4 * 5 * 5, 3)
        self.plain = 42

    def forward(self, x):
        return self.head(self.features(x).flatten(1)) * self.scale


def test_parameter_is_a_tensor_requiring_grad():
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    assert isinstance(p, gpucnn.Tensor) and p.requires_grad and p.shape == (2, 3)
    assert p.device == "cpu"
    q = nn.Parameter(gpucnn.ones(4), requires_grad=False)
    assert not q.requires_grad and q.shape == (4,)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    with pytest.raises(AttributeError):
        p.anything = 1  # Tensor's __slots__ are kept: no per-instance dict


def test_registration_and_traversal():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "step", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Sequential", "Conv2d", "BatchNorm2d", "ReLU", "Linear"]
    assert net.plain == 42 and "plain" not in net._parameters
    # BatchNorm's running statistics are buffers, never parameters
    bn = net.features[1]
    assert not any(p is bn.running_mean for p in net.parameters())
    assert net.num_parameters() == 4 * 9 + 4 + 8 + 100 * 3 + 3 + 1
    # reassigning a registered name
    net.head = nn.Linear(100, 5)
    assert net.head.out_features == 5
    with pytest.raises(ArgumentError):
        net.scale = np.ones(1)
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    del net.head
    assert "head" not in dict(net.named_children())
    with pytest.raises(AttributeError):
        net.nonexistent


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_keys_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "4.weight", "4.bias"]
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].shape == ()
    # the values share memory with the model and are detached
    assert sd["0.weight"].data is model[0].weight.data and not sd["0.weight"].requires_grad
    assert model.state_dict(keep_vars=True)["0.weight"] is model[0].weight


def test_non_persistent_buffers_are_not_saved():
    m = nn.Module()
    m.register_buffer("a", gpucnn.zeros(2))
    m.register_buffer("b", gpucnn.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["a"]
    assert [n for n, _ in m.named_buffers()] == ["a", "b"]


def test_load_state_dict_round_trip_in_place():
    gpucnn.manual_seed(0)
    a = build_model("strided-42")
    gpucnn.manual_seed(1)
    b = build_model("strided-42")
    w = b[0].weight
    b.load_state_dict({k: v.numpy() for k, v in a.state_dict().items()})
    assert b[0].weight is w  # same Parameter objects (optimizers keep working)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_load_state_dict_errors_list_everything_and_copy_nothing():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    before = model[0].weight.numpy()
    bad = dict(state)
    del bad["0.bias"]
    bad["extra.weight"] = np.zeros(3, np.float32)
    bad["1.weight"] = np.zeros(5, np.float32)
    bad["0.weight"] = before + 1
    with pytest.raises(ModelFormatError) as e:
        model.load_state_dict(bad)
    msg = str(e.value)
    assert "missing 1 key: 0.bias" in msg
    assert "unexpected 1 key: extra.weight" in msg
    assert "1.weight: shape (5,) in the state dict, (2,) in the model" in msg
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    # strict=False ignores missing/unexpected keys but never shape mismatches
    bad["1.weight"] = state["1.weight"]
    result = model.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model[0].weight.numpy(), before + 1)
    with pytest.raises(ModelFormatError):
        model.load_state_dict([1, 2, 3])


def test_train_eval_flags_reach_every_module():
    model = build_model("resnet-cifar")
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ArgumentError):
        model.train("yes")


def test_dropout_respects_mode():
    d = nn.Dropout(0.5)
    x = gpucnn.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())


def test_to_emu_moves_in_place():
    model = Net()
    params = list(model.parameters())
    bufs = list(model.buffers())
    assert model.to("emu") is model
    assert all(p is q for p, q in zip(params, model.parameters()))
    for t in list(model.parameters()) + list(model.buffers()):
        assert t.device == "emu" and isinstance(t.data, np.ndarray)
    assert all(b is c for b, c in zip(bufs, model.buffers()))
    assert model.device == "emu"
    model.to("cpu")
    assert all(t.device == "cpu" for t in model.parameters())
    with pytest.raises(ArgumentError):
        model.to("tpu")


def test_double_and_float_cast_in_place_but_keep_int_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    p = model[0].weight
    model.double()
    assert model[0].weight is p and p.dtype == np.float64 and model.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    model.float()
    assert p.dtype == np.float32
    with pytest.raises(ArgumentError):
        model.to(dtype=np.int32)


def test_zero_grad_and_requires_grad_and_trainable_count():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    out = model(gpucnn.ones(4, 3)).sum()
    out.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model[0].requires_grad_(False)
    assert model.num_parameters() == 11
    assert model.num_parameters(trainable_only=True) == 3


def test_forward_hooks_and_removal():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    seen = []
    h = model[0].register_forward_hook(lambda m, inp, out: seen.append(out.shape))
    model(gpucnn.ones(5, 3))
    h.remove()
    model(gpucnn.ones(5, 3))
    assert seen == [(5, 2)]
    pre = model.register_forward_pre_hook(lambda m, inp: (inp[0] * 0,))
    expected = np.maximum(model[0].bias.numpy(), 0)  # the input was zeroed: only the bias is left
    np.testing.assert_array_equal(model(gpucnn.ones(5, 3)).numpy(), np.tile(expected, (5, 1)))
    pre.remove()


def test_sequential_container_protocol():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2
    with pytest.raises(IndexError):
        seq[7]
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 1, 1), act=nn.ReLU()))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    with pytest.raises(ArgumentError):
        nn.Sequential(nn.ReLU(), "relu")


def test_repr_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(10, 2, bias=False), nn.BatchNorm2d(4))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=same)\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=10, out_features=2, bias=False)\n"
        "  (5): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        ")")
    assert repr(nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), bias=False)) == \
        "Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), bias=False)"
    nested = repr(build_model("resnet-cifar"))
    assert "  (3): BasicBlock(\n    (conv1): Conv2d(16, 16" in nested


def test_setattr_before_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_deepcopy_copies_parameters_and_shares_devices():
    import copy

    model = build_model("strided-42")
    model(gpucnn.zeros(2, 3, 64, 64)).sum().backward()
    twin = copy.deepcopy(model)
    assert twin.input_shape == model.input_shape and isinstance(twin[0].weight, nn.Parameter)
    assert twin[0].weight is not model[0].weight and twin[0].weight.data is not model[0].weight.data
    assert twin[0].weight.device is model[0].weight.device
    np.testing.assert_array_equal(twin[0].weight.numpy(), model[0].weight.numpy())
    twin[0].weight.data[...] = 0
    assert model[0].weight.numpy().any()
    twin.to("emu")
    assert model.device == "cpu" and twin.device == "emu"
