"""The normalisation layers (gpucnn/onnx/normalization.py) through ONNX Runtime at two batch sizes
against gpucnn's eval output, at opsets below and above each operator (LayerNormalization 17,
GroupNormalization 21): the operator or its composition."""
import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from onnx_testing import check_export, op_types, randomise_running_stats


def _affine(m, seed=0):
    """Weights and biases away from their ones/zeros start, so a dropped one is seen."""
    rng = np.random.default_rng(seed)
    for name, p in m.named_parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape) if name.endswith("weight") else rng.standard_normal(p.shape)
    return m


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("layer,shape", [
    (lambda: nn.LayerNorm(6), (4, 6)), (lambda: nn.LayerNorm((5, 6)), (3, 5, 6)),
    (lambda: nn.LayerNorm([3, 5, 6], eps=1e-3), (3, 5, 6)), (lambda: nn.LayerNorm(6, elementwise_affine=False), (5, 6)),
    (lambda: nn.LayerNorm(6, bias=False), (2, 6))])
def test_layer_norm(tmp_path, opset, layer, shape):
    m = _affine(layer())
    ops = op_types(check_export(m, shape, tmp_path, opset=opset))
    assert ("LayerNormalization" in ops) == (opset >= 17)


@pytest.mark.parametrize("opset", [13, 18, 21])
@pytest.mark.parametrize("layer,shape", [
    (lambda: nn.GroupNorm(3, 6), (6, 4, 5)), (lambda: nn.GroupNorm(1, 4), (4, 3, 3)),
    (lambda: nn.GroupNorm(4, 4, eps=1e-3), (4, 7)), (lambda: nn.GroupNorm(2, 6, affine=False), (6, 5, 4)),
    (lambda: nn.GroupNorm(2, 4, bias=False), (4, 3, 3)), (lambda: nn.GroupNorm(2, 4), (4,))])
def test_group_norm(tmp_path, opset, layer, shape):
    m = _affine(layer())
    ops = op_types(check_export(m, shape, tmp_path, opset=opset))
    assert ("GroupNormalization" in ops) == (opset >= 21)
    assert ("InstanceNormalization" in ops) == (opset < 21)


@pytest.mark.parametrize("layer,shape,expect", [
    (lambda: nn.InstanceNorm2d(3), (3, 5, 4), "InstanceNormalization"),
    (lambda: nn.InstanceNorm2d(3, affine=True), (3, 5, 4), "InstanceNormalization"),
    (lambda: nn.InstanceNorm1d(4, affine=True, eps=1e-3), (4, 9), "InstanceNormalization"),
    (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (3, 5, 4), "BatchNormalization"),
    (lambda: nn.InstanceNorm1d(4, track_running_stats=True), (4, 9), "BatchNormalization")])
def test_instance_norm(tmp_path, layer, shape, expect):
    m = randomise_running_stats(_affine(layer()))
    assert op_types(check_export(m, shape, tmp_path)) == [expect]


def test_instance_norm_of_an_unbatched_input_is_named():
    with pytest.raises(gpucnn.ArgumentError, match=r"InstanceNorm2d \(the model\): has an unbatched 3-D input"):
        gpucnn.onnx.export(nn.InstanceNorm2d(3), np.zeros((3, 4, 4), np.float32), None)


@pytest.mark.parametrize("layer,shape,lrn", [
    (lambda: nn.LocalResponseNorm(3), (6, 4, 5), True),
    (lambda: nn.LocalResponseNorm(5, 1e-2, 0.5, 2.0), (7, 3, 4), True),
    (lambda: nn.LocalResponseNorm(4, 1e-2, 0.75, 1.0), (6, 4, 5), False),  # even: ONNX centres the window the other way
    (lambda: nn.LocalResponseNorm(2), (5, 8), False), (lambda: nn.LocalResponseNorm(3), (5, 8), False)])
def test_local_response_norm(tmp_path, layer, shape, lrn):
    # (inputs scaled up so that the normaliser is far from k and a shifted window shows)
    ops = op_types(check_export(_Scaled(layer()), shape, tmp_path))
    assert ("LRN" in ops) == lrn


class _Scaled(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x * 10.0)


def test_a_network_of_them(tmp_path):
    gpucnn.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.SiLU(), nn.Dropout2d(0.3),
                      nn.Conv2d(8, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True), nn.GELU(),
                      nn.Flatten(), nn.LayerNorm(8 * 6 * 5), nn.Linear(8 * 6 * 5, 4))
    m.train()  # (exported in eval form: Dropout2d removed)
    for opset in (13, 21):
        ops = op_types(check_export(m, (3, 6, 5), tmp_path, opset=opset, name=f"net{opset}"))
        assert "Dropout" not in ops
