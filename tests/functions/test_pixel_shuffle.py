"""F.pixel_shuffle / F.pixel_unshuffle against torch (values and gradients, batched, unbatched and extra
leading dims; cpu and emu), 16-bit tensors (copies: bit for bit), gradcheck, and their errors."""
import numpy as np
import pytest
import torch

import gpucnn
import gpucnn.nn.functional as F
from gpucnn.errors import ArgumentError, ShapeError

from tests.torch_ref import same


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("shape, r", [((2, 8, 3, 5), 2), ((1, 9, 2, 2), 3), ((12, 4, 3), 2), ((2, 3, 4, 2, 2), 1),
                                      ((2, 2, 18, 1, 2), 3)])
def test_pixel_shuffle_and_unshuffle_match_torch(device, shape, r):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = same(lambda t: F.pixel_shuffle(t, r), [a], device=device, rtol=0, atol=0,
             g=lambda t: torch.nn.functional.pixel_shuffle(t, r))
    same(lambda t: F.pixel_unshuffle(t, r), [y.numpy()], device=device, rtol=0, atol=0,
         g=lambda t: torch.nn.functional.pixel_unshuffle(t, r))
    back = F.pixel_unshuffle(F.pixel_shuffle(gpucnn.tensor(a, device=device), r), r)
    np.testing.assert_array_equal(back.numpy(), a)


@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16])
def test_16_bit_is_a_copy(dtype):
    a = np.random.default_rng(1).standard_normal((2, 8, 3, 3)).astype(dtype)
    y = F.pixel_shuffle(gpucnn.tensor(a), 2)
    ref = torch.nn.functional.pixel_shuffle(torch.tensor(a.astype(np.float32)), 2).numpy().astype(dtype)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy().view(np.uint16), ref.view(np.uint16))


def test_gradcheck():
    a = gpucnn.tensor(np.random.default_rng(2).standard_normal((2, 8, 2, 4)), requires_grad=True)
    gpucnn.gradcheck(lambda t: F.pixel_shuffle(t, 2) * 1.5, [a])
    gpucnn.gradcheck(lambda t: F.pixel_unshuffle(t, 2) * 1.5, [a])


def test_errors():
    x = gpucnn.tensor(np.zeros((1, 6, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"pixel_shuffle: input has 6 channels, expected a multiple of "
                                         r"upscale_factor\*\*2 = 4"):
        F.pixel_shuffle(x, 2)
    with pytest.raises(ShapeError, match=r"pixel_unshuffle: input height and width must be multiples of "
                                         r"downscale_factor 3, got 4x4"):
        F.pixel_unshuffle(x, 3)
    with pytest.raises(ArgumentError, match=r"pixel_shuffle: upscale_factor must be an integer >= 1, got 0"):
        F.pixel_shuffle(x, 0)
    with pytest.raises(ArgumentError, match=r"downscale_factor must be an integer >= 1, got 1.5"):
        F.pixel_unshuffle(x, 1.5)
    with pytest.raises(ShapeError, match=r"rank 3 or more"):
        F.pixel_shuffle(gpucnn.tensor(np.zeros((4, 4), np.float32)), 2)
