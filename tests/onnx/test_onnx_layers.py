"""Each layer's ONNX form (gpucnn/onnx/layers.py) against gpucnn's inference output, through ONNX
Runtime, at two batch sizes: every padding mode, stride, dilation, bias, ceil_mode, count_include_pad."""
import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from onnx_testing import check_export, op_types, randomise_running_stats


def _seeded(module):
    gpucnn.manual_seed(0)
    return module()


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("opset", [13, 17, 19])
@pytest.mark.parametrize("padding,stride,dilation", [
    (1, 1, 1), ("same", 1, 1), ("same", 2, 1), ((2, 1), (2, 1), (1, 2)), ("valid", 1, 1), ("same", 1, 2)])
def test_conv2d(tmp_path, mode, opset, padding, stride, dilation):
    m = _seeded(lambda: nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding, dilation=dilation,
                                  padding_mode=mode))
    proto = check_export(m, (3, 9, 8), tmp_path, opset=opset)
    ops = op_types(proto)
    has_padding = padding != "valid"
    if mode == "zeros" or not has_padding:
        assert ops == ["Conv"]
    elif mode == "circular" and opset < 19:
        assert "Slice" in ops and "Concat" in ops and "Pad" not in ops
    else:
        assert ops == ["Pad", "Conv"]
        pad = next(n for n in proto.graph.node if n.op_type == "Pad")
        want = {"reflect": b"reflect", "replicate": b"edge", "circular": b"wrap"}[mode]
        assert next(a.s for a in pad.attribute if a.name == "mode") == want
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert list(conv.input[1:]) == ["weight", "bias"]  # initializers under their state_dict names


def test_conv_pads_are_begins_then_ends(tmp_path):
    # Keras "same" with stride 2 on 8x9: total padding (0+1, 1+1 -> 1 and 2 split 0/1 and 1/1)
    m = _seeded(lambda: nn.Conv2d(2, 3, 3, stride=2, padding="same"))
    proto = check_export(m, (2, 8, 9), tmp_path)
    conv = proto.graph.node[0]
    pads = next(list(a.ints) for a in conv.attribute if a.name == "pads")
    assert pads == [0, 1, 1, 1]  # [h_begin, w_begin, h_end, w_end]


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d(tmp_path, mode, bias):
    m = _seeded(lambda: nn.Conv1d(2, 5, 3, stride=2, padding=2, dilation=2, bias=bias, padding_mode=mode))
    proto = check_export(m, (2, 11), tmp_path, opset=17)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert len(conv.input) == (3 if bias else 2)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), dict(kernel_size=2, stride=1, dilation=3)])
def test_max_pool2d(tmp_path, kwargs):
    check_export(nn.MaxPool2d(**kwargs), (2, 10, 9), tmp_path)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
    dict(kernel_size=2, divisor_override=3), dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=4)])
def test_avg_pool2d(tmp_path, kwargs):
    check_export(nn.AvgPool2d(**kwargs), (2, 10, 9), tmp_path)


@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), lambda: nn.MaxPool1d(2, dilation=2),
    lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True),
    lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
    lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, divisor_override=2)])
def test_pool1d(tmp_path, layer):
    check_export(layer(), (3, 12), tmp_path)


@pytest.mark.parametrize("output_size,expect", [(1, "GlobalAveragePool"), ((2, 3), "AveragePool"),
                                                 ((3, 4), "MatMul"), ((None, 2), "MatMul")])
def test_adaptive_avg_pool2d(tmp_path, output_size, expect):
    proto = check_export(nn.AdaptiveAvgPool2d(output_size), (2, 8, 9), tmp_path)
    assert expect in op_types(proto)


def test_global_avg_pool2d(tmp_path):
    proto = check_export(nn.GlobalAvgPool2d(), (3, 5, 4), tmp_path)
    assert op_types(proto) == ["GlobalAveragePool", "Flatten"]


@pytest.mark.parametrize("layer,shape", [
    (lambda: nn.BatchNorm2d(3), (3, 4, 5)), (lambda: nn.BatchNorm2d(3, affine=False, eps=1e-3), (3, 4, 5)),
    (lambda: nn.BatchNorm1d(4), (4,)), (lambda: nn.BatchNorm1d(4), (4, 6))])
def test_batch_norm_in_inference_form(tmp_path, layer, shape):
    m = layer()
    randomise_running_stats(m)
    if m.affine:
        m.weight.data[...] = np.linspace(0.5, 2, m.num_features)
        m.bias.data[...] = np.linspace(-1, 1, m.num_features)
    m.train()  # exported in eval form regardless, and left in training mode
    gpucnn.onnx.export(m, np.ones((2,) + shape, np.float32), None)
    assert m.training
    proto = check_export(m, shape, tmp_path)
    bn, = proto.graph.node
    assert bn.op_type == "BatchNormalization" and len(bn.output) == 1


def test_batch_norm_without_running_stats_has_no_onnx_form(tmp_path):
    with pytest.raises(gpucnn.ArgumentError, match=r"BatchNorm2d \(the model\): has track_running_stats=False"):
        gpucnn.onnx.export(nn.BatchNorm2d(3, track_running_stats=False), np.zeros((2, 3, 4, 4), np.float32), None)


@pytest.mark.parametrize("shape,bias,expect", [((7,), True, "Gemm"), ((7,), False, "Gemm"), ((3, 7), True, "MatMul"),
                                               ((2, 3, 7), False, "MatMul")])
def test_linear(tmp_path, shape, bias, expect):
    m = _seeded(lambda: nn.Linear(7, 4, bias=bias))
    assert expect in op_types(check_export(m, shape, tmp_path))


@pytest.mark.parametrize("start,end", [(1, -1), (2, -1), (1, 2), (0, 1), (0, -1)])
def test_flatten(tmp_path, start, end):
    check_export(nn.Flatten(start, end), (3, 4, 5), tmp_path)


@pytest.mark.parametrize("layer", [lambda: nn.Softmax(1), lambda: nn.Softmax(-1), lambda: nn.LogSoftmax(1),
                                   lambda: nn.ReLU(), lambda: nn.Dropout(0.3), lambda: nn.Identity()])
def test_activations_and_identities(tmp_path, layer):
    proto = check_export(layer(), (4, 3), tmp_path)
    if isinstance(layer(), (nn.Dropout, nn.Identity)):
        assert op_types(proto) == ["Identity"]  # (only because the model is nothing else)


@pytest.mark.parametrize("factor", [2, (1, 3)])
def test_upsample_nearest(tmp_path, factor):
    proto = check_export(nn.Upsample(scale_factor=factor), (2, 3, 4), tmp_path)
    assert op_types(proto) == ["Resize"]


def test_dropout_is_removed_from_a_network(tmp_path):
    m = _seeded(lambda: nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.5), nn.ReLU(), nn.Linear(5, 2)))
    m.train()
    assert op_types(check_export(m, (6,), tmp_path)) == ["Gemm", "Relu", "Gemm"]


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_conv2d(tmp_path, groups):
    m = _seeded(lambda: nn.Conv2d(4, 8, 3, padding=1, groups=groups, padding_mode="reflect"))
    proto = check_export(m, (4, 6, 7), tmp_path)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert next(a.i for a in conv.attribute if a.name == "group") == groups


@pytest.mark.parametrize("kwargs", [
    dict(), dict(stride=2), dict(stride=2, padding=1), dict(stride=2, padding=1, output_padding=1),
    dict(stride=3, padding=2, output_padding=2), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2)),
    dict(dilation=2, padding=1), dict(stride=2, padding=3, dilation=3, output_padding=2), dict(stride=2, groups=2),
    dict(stride=2, padding=1, output_padding=1, groups=4, bias=False), dict(kernel_size=(2, 4), stride=(2, 1))])
def test_conv_transpose2d(tmp_path, kwargs):
    kwargs = {"kernel_size": 3, **kwargs}
    m = _seeded(lambda: nn.ConvTranspose2d(4, 8, **kwargs))
    proto = check_export(m, (4, 5, 6), tmp_path)
    assert op_types(proto) == ["ConvTranspose"]
    node, = proto.graph.node
    group = next(a.i for a in node.attribute if a.name == "group")
    assert group == kwargs.get("groups", 1)


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=3, dilation=2, padding=3, output_padding=2, groups=3)])
def test_conv_transpose1d(tmp_path, kwargs):
    m = _seeded(lambda: nn.ConvTranspose1d(3, 6, 4, **kwargs))
    assert op_types(check_export(m, (3, 9), tmp_path)) == ["ConvTranspose"]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [1, 2])
def test_conv_transpose_output_padding_past_the_stride(tmp_path, bias, n):
    """PyTorch takes output_padding < max(stride, dilation); ONNX Runtime refuses one >= the stride, so
    those zero (+ bias) positions past the full output are a Pad, then the bias."""
    cls = nn.ConvTranspose2d if n == 2 else nn.ConvTranspose1d
    m = _seeded(lambda: cls(2, 4, 3, stride=2, dilation=3, output_padding=2, groups=2, bias=bias))
    proto = check_export(m, (2, 5, 4)[:n + 1], tmp_path)
    assert op_types(proto) == ["ConvTranspose", "Pad"] + (["Reshape", "Add"] if bias else [])


def test_conv_transpose_sizes_agree_with_pytorch(tmp_path):
    """ONNX's ConvTranspose output size (pads at both ends, output_padding at the end) is PyTorch's:
    the exported graph against torch itself, same weights."""
    torch = pytest.importorskip("torch")
    from onnx_testing import run_onnx
    for i, (k, s, p, op, d, g) in enumerate([(3, 2, 1, 1, 1, 1), (4, 3, 2, 2, 1, 2), (3, 2, 0, 1, 2, 1),
                                             (5, 4, 3, 3, 1, 1), (2, 1, 0, 0, 3, 2), (3, 2, 0, 2, 3, 1),
                                             (3, 2, 1, 2, 3, 2)]):
        m = _seeded(lambda: nn.ConvTranspose2d(2, 4, k, stride=s, padding=p, output_padding=op, dilation=d, groups=g))
        path = tmp_path / f"t{i}.onnx"
        gpucnn.onnx.export(m, np.zeros((1, 2, 5, 7), np.float32), path)
        x = np.random.default_rng(i).standard_normal((3, 2, 5, 7)).astype(np.float32)
        got, = run_onnx(path, x)
        ref = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(m.weight.numpy()),
                                                   torch.tensor(m.bias.numpy()), s, p, op, g, d).numpy()
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_conv_transpose_called_with_output_size(tmp_path):
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)

        def forward(self, x):
            return self.up(x, output_size=(2 * x.shape[2], 2 * x.shape[3]))  # output_padding 1: even sizes

    m = _seeded(Decoder)
    proto = check_export(m, (3, 4, 5), tmp_path)
    node, = proto.graph.node
    # padding 1 cropped at the start only: output_padding 1 gives the end crop back
    assert next(list(a.ints) for a in node.attribute if a.name == "pads") == [1, 1, 0, 0]


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (1, 3), (2, 2)])
def test_conv1d_causal(tmp_path, mode, stride, dilation):
    m = _seeded(lambda: nn.Conv1d(2, 3, 3, stride=stride, padding="causal", dilation=dilation, padding_mode=mode))
    proto = check_export(m, (2, 13), tmp_path)
    left = dilation * 2
    if mode == "zeros":
        conv, = proto.graph.node
        assert next(list(a.ints) for a in conv.attribute if a.name == "pads") == [left, 0]  # begin-only
    else:
        assert op_types(proto)[-1] == "Conv" and len(op_types(proto)) > 1


def test_causal_output_t_sees_inputs_up_to_t(tmp_path):
    """A change at input position t changes no exported output before t."""
    from onnx_testing import run_onnx
    m = _seeded(lambda: nn.Sequential(nn.Conv1d(1, 2, 3, padding="causal", dilation=2), nn.ReLU(),
                                      nn.Conv1d(2, 1, 2, padding="causal", dilation=4)))
    path = tmp_path / "causal.onnx"
    gpucnn.onnx.export(m, np.zeros((1, 1, 16), np.float32), path)
    x = np.random.default_rng(0).standard_normal((1, 1, 16)).astype(np.float32)
    y = x.copy()
    y[..., 9] += 5.0
    a, = run_onnx(path, x)
    b, = run_onnx(path, y)
    assert a.shape == (1, 1, 16)
    np.testing.assert_array_equal(a[..., :9], b[..., :9])
    assert not np.allclose(a[..., 9:], b[..., 9:])


@pytest.mark.parametrize("layer,shape", [
    (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (4, 6, 7)),              # depthwise
    (lambda: nn.Conv2d(3, 6, 3, stride=2, padding="same", groups=3), (3, 7, 8)),  # depthwise, multiplier 2
    (lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4, padding_mode="replicate"), (4, 6, 7)),
    (lambda: nn.Conv1d(6, 4, 3, padding=1, groups=2), (6, 10)),
    (lambda: nn.Conv1d(4, 4, 5, padding="causal", groups=4, bias=False), (4, 10))])
def test_depthwise_and_grouped_convs(tmp_path, layer, shape):
    m = _seeded(layer)
    proto = check_export(m, shape, tmp_path)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    assert next(a.i for a in conv.attribute if a.name == "group") == m.groups


def test_sync_batch_norm_exports_as_batch_norm(tmp_path):
    gpucnn.manual_seed(0)
    m = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)))
    assert type(m[1]) is nn.SyncBatchNorm
    randomise_running_stats(m)
    assert op_types(check_export(m, (2, 5, 5), tmp_path)) == ["Conv", "BatchNormalization"]


def test_max_unpool_has_no_onnx_form_here():
    """PyTorch's per-plane indices are not ONNX MaxPool's: the indices are named, not mis-exported."""
    class Unpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)

        def forward(self, x):
            y, i = self.pool(x)
            return self.unpool(y, i)

    with pytest.raises(gpucnn.ArgumentError, match=r"MaxPool2d 'pool': returns a tuple"):
        gpucnn.onnx.export(Unpool(), np.zeros((2, 3, 4, 4), np.float32), None)
