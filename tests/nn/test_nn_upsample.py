"""nn.Upsample (PyTorch's signature: size first; nearest, linear, bilinear, align_corners), PixelShuffle and
PixelUnshuffle against torch.nn; configs (architecture as data); ONNX's view of them; argument errors."""
import numpy as np
import pytest
import torch

import gpucnn
import gpucnn.nn as nn
from gpucnn.errors import ArgumentError

from tests.torch_ref import same


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("args, kwargs, shape", [
    ((), dict(scale_factor=2), (2, 3, 4, 5)), (((7, 3),), dict(mode="bilinear"), (2, 3, 4, 5)),
    ((), dict(scale_factor=1.5, mode="bilinear", align_corners=True), (1, 2, 4, 5)),
    ((9,), dict(mode="linear"), (2, 3, 4)), ((), dict(scale_factor=(2, 3)), (1, 2, 3, 3)),
    ((), dict(scale_factor=0.5, mode="bilinear", recompute_scale_factor=True), (1, 2, 6, 7)),
])
def test_upsample_matches_torch(device, args, kwargs, shape):
    same(lambda t: nn.Upsample(*args, **kwargs)(t), [_x(shape)], device=device, rtol=1e-5, atol=1e-6,
         g=lambda t: torch.nn.Upsample(*args, **kwargs)(t))
    assert repr(nn.Upsample(*args, **kwargs)) == repr(torch.nn.Upsample(*args, **kwargs))


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_pixel_shuffle_layers_match_torch(device):
    same(lambda t: nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(t) * 2.0), [_x((2, 8, 3, 4))], device=device,
         g=lambda t: torch.nn.PixelUnshuffle(2)(torch.nn.PixelShuffle(2)(t) * 2.0))
    assert repr(nn.PixelShuffle(3)) == repr(torch.nn.PixelShuffle(3))
    assert repr(nn.PixelUnshuffle(3)) == repr(torch.nn.PixelUnshuffle(3))


@pytest.mark.parametrize("layer", [nn.Upsample(scale_factor=2), nn.Upsample((4, 6), mode="bilinear", align_corners=True),
                                   nn.Upsample(scale_factor=(1.5, 2)), nn.Upsample(5, mode="linear"),
                                   nn.PixelShuffle(2), nn.PixelUnshuffle(3)])
def test_configs_round_trip(layer):
    config = nn.layer_to_config(layer)
    nn.validate_config(config)
    rebuilt = nn.layer_from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config() and repr(rebuilt) == repr(layer)


def test_an_old_upsample_config_still_loads():
    layer = nn.layer_from_config({"type": "Upsample", "scale_factor": 2, "mode": "nearest"})
    x = gpucnn.tensor(_x((1, 2, 3, 3)))
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy().repeat(2, 2).repeat(2, 3))


def test_onnx_factor_is_whole_nearest_factors_only():
    from gpucnn.onnx.graph import ExportError

    assert nn.Upsample(scale_factor=2)._factor == (2, 2)
    assert nn.Upsample(scale_factor=(1, 3))._factor == (1, 3)
    for layer in (nn.Upsample(scale_factor=2, mode="bilinear"), nn.Upsample((4, 4)), nn.Upsample(scale_factor=1.5)):
        with pytest.raises(ExportError, match="only nearest upsampling by whole scale factors"):
            layer._factor


@pytest.mark.parametrize("build, facts", [
    (lambda: nn.Upsample(0), ["Upsample", "size", ">= 1", "got 0", "scale_factor"]),
    (lambda: nn.Upsample(), ["Upsample", "exactly one of size and scale_factor"]),
    (lambda: nn.Upsample(scale_factor=-1), ["Upsample", "scale_factor", "> 0", "-1"]),
    (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ["Upsample", "mode", "'bilinear'", "'bicubic'"]),
    (lambda: nn.Upsample(scale_factor=2, align_corners=True), ["Upsample", "align_corners", "'nearest'"]),
    (lambda: nn.PixelShuffle(0), ["PixelShuffle", "upscale_factor", ">= 1", "0"]),
    (lambda: nn.PixelUnshuffle("2"), ["PixelUnshuffle", "downscale_factor", "'2'"]),
])
def test_argument_errors(build, facts):
    with pytest.raises(ArgumentError) as info:
        build()
    assert all(f in str(info.value) for f in facts), str(info.value)
