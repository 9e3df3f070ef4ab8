"""Resampling and the newer pooling through ONNX Runtime at two batch sizes against gpucnn
(gpucnn/onnx/resample.py, ops.py): Upsample / F.interpolate nearest and (bi)linear with and without
align_corners, by sizes and scale factors; PixelShuffle as DepthToSpace (CRD), PixelUnshuffle traced;
AdaptiveMaxPool2d over PyTorch's bins."""
import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from onnx_testing import check_export, op_types

F = gpucnn.functional


@pytest.mark.parametrize("kwargs,shape,expect", [
    (dict(scale_factor=2), (2, 3, 4), "Resize"),
    (dict(scale_factor=(1, 3)), (2, 3, 4), "Resize"),
    (dict(size=(6, 12)), (2, 3, 4), "Resize"),
    (dict(scale_factor=1.5), (2, 5, 7), "Gather"),          # 7 -> 10: floor(j / 1.5)
    (dict(size=(7, 5)), (2, 3, 4), "Gather"),               # in / out = 3/7, 4/5
    (dict(scale_factor=0.5), (2, 6, 8), "Gather"),          # downsampling
    (dict(scale_factor=2.5, recompute_scale_factor=True), (2, 3, 4), "Gather"),
    (dict(scale_factor=3), (2, 9), "Resize"),               # 1-D (N, C, W)
    (dict(size=7), (2, 9), "Gather"),
])
def test_upsample_nearest(tmp_path, kwargs, shape, expect):
    proto = check_export(nn.Upsample(**kwargs), shape, tmp_path)
    assert expect in op_types(proto)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kwargs,shape", [
    (dict(scale_factor=2, mode="bilinear"), (2, 3, 4)),
    (dict(scale_factor=(1.5, 2.5), mode="bilinear"), (2, 5, 6)),
    (dict(scale_factor=2.3, mode="bilinear"), (2, 10, 7)),   # float32(2.3) * 10 < 23: the scale is nudged
    (dict(scale_factor=0.6, mode="bilinear"), (2, 10, 7)),
    (dict(size=(7, 1), mode="bilinear"), (2, 3, 4)),         # one output column: the centre, not 0
    (dict(size=(5, 9), mode="bilinear"), (2, 3, 4)),
    (dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True), (2, 5, 6)),
    (dict(scale_factor=3, mode="linear"), (2, 7)),
    (dict(size=4, mode="linear"), (2, 9)),
])
def test_upsample_linear(tmp_path, kwargs, shape, align_corners):
    proto = check_export(nn.Upsample(**kwargs, align_corners=align_corners), shape, tmp_path)
    resize = next(n for n in proto.graph.node if n.op_type == "Resize")
    attrs = {a.name: a.s.decode() for a in resize.attribute if a.s}
    assert attrs["mode"] == "linear"
    assert attrs["coordinate_transformation_mode"] == ("align_corners" if align_corners else "half_pixel")


def test_interpolate_between_layers(tmp_path):
    """F.interpolate in a model's own forward (the op converters), to the skip connection's size."""
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(2, 4, 3, stride=2, padding=1)
            self.fuse = nn.Conv2d(6, 3, 3, padding=1)
            self.skip = nn.Conv2d(4, 3, 1)

        def forward(self, x):
            y = self.down(x)  # 9x7 -> 5x4
            up = F.interpolate(y, size=tuple(x.shape[2:]), mode="bilinear", align_corners=True)
            near = F.interpolate(self.skip(y), size=tuple(x.shape[2:]), mode="nearest")
            return self.fuse(gpucnn.cat([up, x], dim=1)) + near

    gpucnn.manual_seed(0)
    ops = op_types(check_export(Decoder(), (2, 9, 7), tmp_path))
    assert "Resize" in ops and "Gather" in ops


@pytest.mark.parametrize("r,shape", [(2, (8, 3, 4)), (3, (9, 2, 5)), (1, (3, 4, 4))])
def test_pixel_shuffle_is_depth_to_space_crd(tmp_path, r, shape):
    proto = check_export(nn.PixelShuffle(r), shape, tmp_path)
    node, = proto.graph.node
    assert node.op_type == "DepthToSpace"
    assert {a.name: a for a in node.attribute}["mode"].s == b"CRD"


def test_pixel_unshuffle_and_a_sub_pixel_network(tmp_path):
    gpucnn.manual_seed(0)
    m = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 1),
                      nn.PixelShuffle(2))
    ops = op_types(check_export(m, (3, 6, 8), tmp_path))
    assert ops[:3] == ["Reshape", "Transpose", "Reshape"] and ops[-1] == "DepthToSpace"


def test_pixel_shuffle_of_an_unbatched_input_is_named():
    with pytest.raises(gpucnn.ArgumentError, match=r"PixelShuffle \(the model\): has a 3-D input"):
        gpucnn.onnx.export(nn.PixelShuffle(2), np.zeros((4, 3, 3), np.float32), None)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("output_size,expect", [
    (1, ["GlobalMaxPool"]), ((2, 3), ["MaxPool"]), ((3, 4), ["ReduceMax"]), ((None, 2), ["ReduceMax"]),
    ((3, 3), ["ReduceMax", "MaxPool"]), ((5, None), ["ReduceMax"]), ((8, 9), [])])
def test_adaptive_max_pool2d(tmp_path, opset, output_size, expect):
    proto = check_export(nn.AdaptiveMaxPool2d(output_size), (2, 8, 9), tmp_path, opset=opset)
    assert set(expect) <= set(op_types(proto))


def test_adaptive_max_pool2d_functional_and_its_indices(tmp_path):
    class Head(nn.Module):
        def forward(self, x):
            return F.adaptive_max_pool2d(x, (3, 2)) * 2

    check_export(Head(), (2, 7, 5), tmp_path)
    # the indices are no ONNX value: the model's output using them is named
    with pytest.raises(gpucnn.ArgumentError, match=r"the model's output: uses a tensor of shape \(2, 3, 2, 2\)"):
        gpucnn.onnx.export(nn.AdaptiveMaxPool2d(2, return_indices=True), np.zeros((2, 3, 4, 4), np.float32), None)


def test_float32_scales_give_gpucnns_output_size():
    from gpucnn.onnx.resample import _float32_scale
    s = _float32_scale(10, 23, 2.3)  # float32(2.3) = 2.29999995: 10 x that floors to 22 in double
    assert np.float32(s) == s and s > 2.3 and int(np.floor(10 * s)) == 23 and abs(s - 2.3) < 1e-6
    assert _float32_scale(8, 12, 1.5) == 1.5
    assert _float32_scale(10, 25, 2.3) is None  # no float32 near 2.3 gives 25: the converter refuses
