"""F.pad against torch: every mode, crops (negative pads), 1-3 padded dims, no-batch inputs; the backward
against torch's and gradcheck (float64) on cpu and emu; bad input as torch rejects it."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import functional as F
from gpucnn.errors import ArgumentError, DtypeError, ShapeError

DEVICES = ["cpu", "emu"]
MODES = ["constant", "reflect", "replicate", "circular"]
CASES = [  # (shape, pad): valid in every mode
    ((2, 3, 5), (1, 2)), ((2, 3, 5), (-1, 2)), ((2, 3, 5), (2, -1)), ((2, 3, 5), (-1, -1)), ((2, 3, 5), (4, 4)),
    ((3, 5), (2, 3)), ((2, 3, 4, 5), (1, 2, 3, 1)), ((2, 3, 4, 5), (-1, 2, 2, -1)), ((3, 4, 5), (0, 1, 3, 0)),
    ((1, 2, 3, 4, 5), (1, 1, 2, 1, 2, 2)), ((2, 3, 4, 5), (1, 0, 0, 2, 1, 1)), ((0, 2, 4), (1, 1)),
]


def rand(shape, seed=0, device="cpu", requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return gpucnn.tensor(a, device=device, requires_grad=requires_grad), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, pad", CASES)
def test_pad_forward_and_backward_match_torch(shape, pad, mode, device):
    x, tx = rand(shape, device=device, requires_grad=True)
    y = F.pad(x, pad, mode=mode)
    ty = torch.nn.functional.pad(tx, pad, mode=mode)
    assert y.device == device and y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gpucnn.tensor(gy, device=device))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode, shape, pad", [
    ("constant", (2, 3), (1, -1)), ("constant", (2, 2, 3), (1, 1, -1, 2)),
    ("reflect", (1, 2, 4), (3, -1)), ("reflect", (1, 3, 4), (2, 1, 1, 2)),
    ("replicate", (1, 2, 3), (4, -1)), ("replicate", (1, 2, 3), (2, 1, 3, 1)),
    ("circular", (1, 2, 4), (-1, 2)), ("circular", (1, 3, 4), (2, 3, 1, 2)),
])
def test_pad_gradcheck(mode, shape, pad, device):
    x, _ = rand(shape, 2, device=device, requires_grad=True)
    gpucnn.gradcheck(lambda x: F.pad(x, pad, mode=mode), [x])


def test_constant_value_dtypes_and_ranks():
    x = torch.arange(12).reshape(3, 4)
    for value, tx in [(1.7, x), (3, x.double()), (1, x > 5), (-2.5, x.float())]:  # 1.7 truncates into int64
        ours = F.pad(gpucnn.tensor(tx.numpy()), (1, 2, 0, 1), value=value)
        theirs = torch.nn.functional.pad(tx, (1, 2, 0, 1), value=value)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert F.pad(gpucnn.tensor(1.0), ()).item() == 1.0  # any rank, an empty pad copies
    assert F.pad(gpucnn.tensor(np.zeros((1, 3, 4))), (-2, -2)).shape == (1, 3, 0)  # constant may empty a dim
    assert F.pad(gpucnn.tensor(np.zeros((2, 0, 4))), (1, 1), mode="circular").shape == (2, 0, 6)
    y = F.pad(gpucnn.tensor(np.arange(4.0)), [1, 1], mode="constant", value=None)  # a list; value None is 0
    np.testing.assert_array_equal(y.numpy(), [0, 0, 1, 2, 3, 0])
    for mode in ("reflect", "replicate", "circular"):  # integers too, as torch
        xi = torch.arange(12).reshape(1, 3, 4)
        np.testing.assert_array_equal(F.pad(gpucnn.tensor(xi.numpy()), (2, 1), mode=mode).numpy(),
                                      torch.nn.functional.pad(xi, (2, 1), mode=mode).numpy())


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.pad(x, (1,)), ShapeError, r"padding length must be divisible by 2"),
    (lambda x: F.pad(x, (1,) * 8), ShapeError, r"pads 4 dims, but the input has only 3"),
    (lambda x: F.pad(x, (-3, -2)), ShapeError, r"input size 4 of dim 2, cropped by the negative padding \(-3, -2\)"),
    (lambda x: F.pad(x, (1.0, 1)), DtypeError, r"pad must be a tuple of ints, got an element of type float"),
    (lambda x: F.pad(x, np.array([1, 1])), DtypeError, r"pad must be a tuple of ints, got ndarray"),
    (lambda x: F.pad(x, (1, 1), mode="foo"), ArgumentError, r"mode must be one of 'constant', 'reflect', .*got 'foo'"),
    (lambda x: F.pad(x, (1, 1), mode="reflect", value=1.0), ArgumentError, r"mode 'reflect' takes no value"),
    (lambda x: F.pad(x, (4, 0), mode="reflect"), ShapeError, r"reflect padding must be less than the input size, "
                                                             r"got padding \(4, 0\) for dim 2 of size 4"),
    (lambda x: F.pad(x, (-2, -2), mode="replicate"), ShapeError, r"gives an output size of 0, expected at least 1"),
    (lambda x: F.pad(x, (5, 0), mode="circular"), ShapeError, r"wraps around the input \(of 4 elements"),
    (lambda x: F.pad(x, (-1, 4), mode="circular"), ShapeError, r"of 3 elements once cropped\) more than once"),
    (lambda x: F.pad(x, (-3, -2), mode="circular"), ShapeError, r"gives an output size of -1, expected at least 0"),
    (lambda x: F.pad(x, (1, 1, 1, 1, 1, 1, 1, 1), mode="circular"), ShapeError, r"pads 4 dims"),
    (lambda x: F.pad(x[0, 0], (1, 1), mode="reflect"), ShapeError, r"a pad of length 2 needs an input of rank 2 "
                                                                    r"or 3, got rank 1"),
    (lambda x: F.pad(x[None], (1, 1), mode="replicate"), ShapeError, r"needs an input of rank 2 or 3, got rank 4"),
    (lambda x: F.pad(x[:, :0], (1, 1), mode="reflect"), ShapeError, r"needs non-empty dims \(only the batch may be "
                                                                    r"empty\), got input shape \(1, 0, 4\)"),
    (lambda x: F.pad(x, (), mode="reflect"), ShapeError, r"takes a pad of length 2, 4 or 6, got pad=\(\)"),
    (lambda x: F.pad(x.numpy(), (1, 1)), ArgumentError, r"pad: input must be a gpucnn Tensor, got ndarray"),
])
def test_pad_errors(call, error, match):
    x = gpucnn.tensor(np.arange(12.0).reshape(1, 3, 4))
    with pytest.raises(error, match=match):
        call(x)
