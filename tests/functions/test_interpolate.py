"""F.interpolate against torch. mode="nearest": PyTorch's float32 index rule and its 2-D shortcuts, sizes and
scale factors (recomputed or not), 1-D and 2-D; the linear modes ("linear", "bilinear"): align_corners, sizes
and scale factors, up and down; the backward against torch's and gradcheck on cpu and emu; 16 bits within an
epsilon of float64; bad input as torch rejects it.

Linear-mode tolerance: the same source indices and float32 weights as PyTorch, two products and a sum per
pass (rounding and FMA contraction may differ): 1e-5 relative, 1e-6 absolute for unit-normal data."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import functional as F
from gpucnn.errors import ArgumentError, DtypeError, ShapeError

DEVICES = ["cpu", "emu"]
CASES = [  # (input shape, keyword arguments)
    ((2, 3, 12), {"size": 5}), ((2, 3, 12), {"size": 29}), ((2, 3, 12), {"scale_factor": 0.5}),
    ((2, 3, 12), {"scale_factor": 1.7}), ((2, 3, 12), {"scale_factor": 1.7, "recompute_scale_factor": True}),
    ((2, 3, 12), {"scale_factor": 2.0001}),  # 1-D: the formula, no shortcut (differs from j // 2); see below
    ((1, 2, 12), {"scale_factor": 0.3}), ((1, 2, 7), {"size": (7,)}), ((2, 1, 5), {"scale_factor": 3}),
    ((2, 2, 3, 4), {"size": (3, 5)}), ((2, 2, 3, 4), {"scale_factor": (2, 1.5)}), ((1, 3, 4, 6), {"size": 2}),
    ((2, 2, 3, 4), {"scale_factor": (1.0001, 2.0001)}),  # 2-D: PyTorch's copy and j // 2 shortcuts
    ((1, 2, 5, 7), {"scale_factor": 0.6, "recompute_scale_factor": True}), ((1, 1, 4, 4), {"scale_factor": 2}),
    ((0, 2, 3), {"size": 5}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, kwargs", CASES)
def test_nearest_matches_torch(shape, kwargs, device):
    a = np.random.default_rng(0).standard_normal(shape)
    x = gpucnn.tensor(a, device=device, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y = F.interpolate(x, **kwargs)
    ty = torch.nn.functional.interpolate(tx, **kwargs)
    assert y.device == device
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gpucnn.tensor(gy, device=device))
    ty.backward(torch.tensor(gy))
    if len(shape) == 3 and kwargs.get("scale_factor") == 2.0001:
        # torch's 1-D backward takes the j // 2 shortcut that its forward does not, so its gradient is not its
        # forward's; ours is: the adjoint of the forward's sources (read from torch's forward of 0 .. n-1).
        src = torch.nn.functional.interpolate(torch.arange(12.0).reshape(1, 1, 12), **kwargs).long().numpy()[0, 0]
        expected = np.zeros(shape)
        np.add.at(expected, (slice(None), slice(None), src), gy)
        assert not np.allclose(expected, tx.grad.numpy())
    else:
        expected = tx.grad.numpy()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_nearest_index_rule_over_many_sizes():
    """Every (in, out) pair up to 17 and a range of scale factors: the source indices equal torch's."""
    for n_in in range(1, 18):
        a = torch.arange(float(n_in)).reshape(1, 1, n_in)
        for n_out in range(1, 18):
            ours = F.interpolate(gpucnn.tensor(a.numpy()), size=n_out).numpy()
            np.testing.assert_array_equal(ours, torch.nn.functional.interpolate(a, size=n_out).numpy())
        for f in (0.35, 0.5, 0.9, 1.1, 1.25, 1.5, 2.5, 2.9999, 3.3):
            if int(n_in * f) == 0:
                continue  # (an empty output: an error, tested below)
            ours = F.interpolate(gpucnn.tensor(a.numpy()), scale_factor=f).numpy()
            np.testing.assert_array_equal(ours, torch.nn.functional.interpolate(a, scale_factor=f).numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, kwargs", [((1, 2, 5), {"size": 8}), ((1, 2, 7), {"size": 3}),
                                           ((1, 1, 3, 4), {"scale_factor": (2, 1.5)}),
                                           ((1, 1, 4, 3), {"size": (3, 7)}), ((1, 1, 2, 3), {"scale_factor": 2})])
def test_nearest_gradcheck(shape, kwargs, device):
    x = gpucnn.tensor(np.random.default_rng(2).standard_normal(shape), device=device, requires_grad=True)
    gpucnn.gradcheck(lambda x: F.interpolate(x, **kwargs), [x])


def test_nearest_keeps_the_dtype_and_a_nan_gradient_in_its_place():
    x = gpucnn.tensor(np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4))
    assert F.interpolate(x, scale_factor=2).dtype == np.float32
    u8 = torch.arange(12, dtype=torch.uint8).reshape(1, 1, 12)
    np.testing.assert_array_equal(F.interpolate(gpucnn.tensor(u8.numpy()), size=5).numpy(),
                                  torch.nn.functional.interpolate(u8, size=5).numpy())
    x = gpucnn.tensor(np.ones((1, 1, 6)), requires_grad=True)
    gy = np.ones((1, 1, 4))
    gy[0, 0, 0] = np.nan
    F.interpolate(x, size=4).backward(gpucnn.tensor(gy))
    assert np.isnan(x.grad.numpy()).sum() == 1  # (a mask multiply would spread it to unread inputs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"size": 3, "mode": "bicubic"}, ArgumentError, r"mode 'bicubic' is not supported \(one of PyTorch's modes, "
                                                     r"the modes implemented are 'nearest', 'linear' and 'bilinear'\)"),
    ({"size": 3, "mode": "foo"}, ArgumentError, r"mode 'foo' is not supported \(not a mode of PyTorch's"),
    ({"size": 3, "align_corners": False}, ArgumentError, r"align_corners can only be set with the interpolating"),
    ({"size": 3, "antialias": True}, ArgumentError, r"antialias applies to the bilinear and bicubic modes only"),
    ({"size": 3, "scale_factor": 2}, ArgumentError, r"give exactly one of size and scale_factor"),
    ({}, ArgumentError, r"give exactly one of size and scale_factor, got size=None, scale_factor=None"),
    ({"size": 3.0}, DtypeError, r"size must be an int, got float 3.0"),
    ({"size": (3.0,)}, DtypeError, r"size must be an int, got float 3.0"),
    ({"size": (3, 3)}, ArgumentError, r"size must have one entry per spatial dim of the input \(1: input spatial "
                                      r"shape \(12,\)\), got size=\(3, 3\)"),
    ({"scale_factor": "2"}, DtypeError, r"scale_factor must be a number or a tuple of numbers, got str"),
    ({"size": 3, "recompute_scale_factor": True}, ArgumentError, r"recompute_scale_factor is not meaningful"),
    ({"size": 0}, ShapeError, r"input and output sizes must be greater than 0, got input spatial shape \(12,\) "
                              r"and output \(0,\)"),
    ({"scale_factor": 0.01}, ShapeError, r"output \(0,\)"),
    ({"scale_factor": -2}, ShapeError, r"output \(-24,\)"),
])
def test_interpolate_errors_are_torchs_types(kwargs, error, match):
    a = np.arange(12.0).reshape(1, 1, 12)
    with pytest.raises(error, match=match) as ours:
        F.interpolate(gpucnn.tensor(a), **kwargs)
    with pytest.raises(Exception) as theirs:
        torch.nn.functional.interpolate(torch.tensor(a), **kwargs)
    if kwargs.get("mode") is None:  # (torch's unknown or unimplemented mode: a NotImplementedError)
        assert isinstance(ours.value, type(theirs.value)), (type(ours.value), type(theirs.value))


@pytest.mark.parametrize("shape, match", [
    ((1, 12), r"input must have rank 3 \(N, C, W\) or 4 \(N, C, H, W\) for mode 'nearest'.*got rank 2"),
    ((1, 1, 1, 2, 3), r"3-D is not implemented\), got rank 5"),
    ((1, 0, 3), r"input has no channels \(input shape \(1, 0, 3\)\)"),
    ((1, 1, 0), r"input spatial shape \(0,\)"),
])
def test_interpolate_shape_errors(shape, match):
    with pytest.raises(ShapeError, match=match):
        F.interpolate(gpucnn.tensor(np.zeros(shape)), size=(4,) * (len(shape) - 2) if len(shape) > 2 else 4)
    with pytest.raises(ArgumentError, match="interpolate: input must be a gpucnn Tensor, got ndarray"):
        F.interpolate(np.zeros((1, 1, 3)), size=4)


LINEAR_CASES = [  # (input shape, keyword arguments)
    ((2, 3, 5, 7), {"size": (8, 11)}), ((2, 3, 5, 7), {"size": (3, 4)}), ((1, 2, 4, 4), {"scale_factor": 2}),
    ((2, 3, 5, 7), {"scale_factor": (1.7, 0.6)}), ((1, 2, 5, 7), {"scale_factor": 2.5, "recompute_scale_factor": True}),
    ((1, 2, 5, 7), {"size": (1, 1)}), ((1, 1, 1, 3), {"size": (4, 5)}), ((2, 2, 5, 7), {"size": (5, 7)}),
    ((1, 1, 6, 6), {"scale_factor": 0.5}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("align_corners", [None, False, True])
@pytest.mark.parametrize("shape, kwargs", LINEAR_CASES)
def test_bilinear_and_linear_match_torch(shape, kwargs, align_corners, device):
    from tests.torch_ref import same

    a = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    same(lambda t: F.interpolate(t, mode="bilinear", align_corners=align_corners, **kwargs), [a], device=device,
         rtol=1e-5, atol=1e-6,
         g=lambda t: torch.nn.functional.interpolate(t, mode="bilinear", align_corners=align_corners, **kwargs))
    one_d = {k: (v[1] if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    same(lambda t: F.interpolate(t, mode="linear", align_corners=align_corners, **one_d), [a[:, :, 0]],
         device=device, rtol=1e-5, atol=1e-6,
         g=lambda t: torch.nn.functional.interpolate(t, mode="linear", align_corners=align_corners, **one_d))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode, shape, kwargs", [
    ("bilinear", (2, 2, 3, 4), {"size": (5, 7), "align_corners": True}),
    ("bilinear", (1, 2, 5, 4), {"scale_factor": (0.7, 1.6)}), ("bilinear", (1, 1, 4, 5), {"size": (2, 9)}),
    ("linear", (2, 3, 5), {"size": 9}), ("linear", (1, 2, 8), {"scale_factor": 0.4, "align_corners": True}),
])
def test_linear_modes_gradcheck(mode, shape, kwargs, device):
    a = np.random.default_rng(2).standard_normal(shape)
    gpucnn.gradcheck(lambda t: F.interpolate(t, mode=mode, **kwargs),
                     [gpucnn.tensor(a, device=device, requires_grad=True)])


@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16], ids=["float16", "bfloat16"])
def test_bilinear_16_bit_is_within_an_epsilon_of_float64(dtype):
    import ml_dtypes

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    t64 = gpucnn.tensor(x.astype(np.float64), requires_grad=True)
    y64 = F.interpolate(t64, size=(9, 4), mode="bilinear")
    gy = rng.standard_normal(y64.shape).astype(dtype)
    y64.backward(gpucnn.tensor(gy.astype(np.float64)))
    eps, tiny = float(ml_dtypes.finfo(dtype).eps), float(ml_dtypes.finfo(dtype).smallest_subnormal)
    for device in DEVICES:
        t = gpucnn.tensor(x, device=device, requires_grad=True)
        y = F.interpolate(t, size=(9, 4), mode="bilinear")
        y.backward(gpucnn.tensor(gy, device=device))
        assert y.dtype == dtype and t.grad.dtype == dtype
        for got, ref in ((y.numpy(), y64.numpy()), (t.grad.numpy(), t64.grad.numpy())):
            # one rounding of a float32 result (float32 weights: a few float32 ulps more, far below eps)
            assert np.all(np.abs(got.astype(np.float64) - ref) <= eps * np.abs(ref) + 4 * tiny + 1e-6 * np.abs(ref))


@pytest.mark.parametrize("mode, shape, match", [
    ("bilinear", (1, 2, 6), r"mode 'bilinear' needs a rank-4 \(N, C, H, W\) input, got rank 3 .*use mode 'linear'"),
    ("linear", (1, 2, 6, 6), r"mode 'linear' needs a rank-3 \(N, C, W\) input, got rank 4 .*use mode 'bilinear'"),
])
def test_linear_mode_rank_errors(mode, shape, match):
    with pytest.raises(ShapeError, match=match):
        F.interpolate(gpucnn.tensor(np.zeros(shape, np.float32)), scale_factor=2, mode=mode)
    with pytest.raises(Exception):  # (torch refuses these too)
        torch.nn.functional.interpolate(torch.zeros(shape), scale_factor=2, mode=mode)


def test_linear_mode_argument_errors():
    x = gpucnn.tensor(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ArgumentError, match="antialias=True is not implemented"):
        F.interpolate(x, size=2, mode="bilinear", antialias=True)
    with pytest.raises(ArgumentError, match="align_corners must be None, True or False, got 'yes'"):
        F.interpolate(x, size=2, mode="bilinear", align_corners="yes")
    with pytest.raises(ArgumentError, match="input must have a floating-point dtype"):
        F.interpolate(gpucnn.tensor(np.zeros((1, 1, 4, 4), np.int64)), size=2, mode="bilinear")
