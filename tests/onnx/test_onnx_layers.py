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
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)])
def test_avg_pool2d(tmp_path, kwargs):
    check_export(nn.AvgPool2d(**kwargs), (2, 10, 9), tmp_path)


@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), lambda: nn.MaxPool1d(2, dilation=2),
    lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True),
    lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False)])
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
