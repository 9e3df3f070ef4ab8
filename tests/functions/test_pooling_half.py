"""Pooling in float16 and bfloat16 on cpu (NumPy in float32, rounded once) and emu (pooling.cu reading and
writing 16 bits, computing in float): each result within one unit of the dtype's epsilon (relative) of the
float64 answer on the same values, as one rounding of a float32 result allows; max and average pooling
equal bit for bit on both devices."""
import ml_dtypes
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F

HALVES = [gpucnn.float16, gpucnn.bfloat16]
OPS = {
    "max_pool2d": (lambda t: F.max_pool2d(t, 3, 2, 1), (2, 3, 7, 7), True),
    "max_pool2d dilated ceil": (lambda t: F.max_pool2d(t, 2, 2, 0, dilation=2, ceil_mode=True), (1, 2, 7, 6), True),
    "avg_pool2d": (lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True), (2, 3, 7, 7), True),
    "avg_pool2d excluding padding": (lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False), (1, 2, 5, 5), True),
    "adaptive_avg_pool2d": (lambda t: F.adaptive_avg_pool2d(t, (3, 2)), (2, 3, 7, 5), False),
    "global average": (lambda t: F.adaptive_avg_pool2d(t, 1), (2, 3, 6, 6), False),
    "max_pool1d": (lambda t: F.max_pool1d(t, 3, 2), (2, 3, 9), True),
    "avg_pool1d": (lambda t: F.avg_pool1d(t, 2), (2, 3, 8), True),
    "avg_pool2d divisor_override": (lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=7), (2, 3, 7, 7), True),
    "max_pool2d indices": (lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2), (2, 3, 6, 6),
                           True),
    "adaptive_max_pool2d": (lambda t: F.adaptive_max_pool2d(t, (3, 4)), (2, 3, 7, 6), True),
    "adaptive_max_pool2d overlapping": (lambda t: F.adaptive_max_pool2d(t, (5, 4)), (1, 2, 7, 6), True),
}


def _run(op, x, gy, device):
    t = gpucnn.tensor(x, device=device, requires_grad=True)
    y = op(t)
    y.backward(gpucnn.tensor(gy, device=device))
    return y, t.grad


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
def test_16_bit_pooling_is_within_an_epsilon_of_float64(name, dtype):
    op, shape, bitwise = OPS[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    t64 = gpucnn.tensor(x.astype(np.float64), requires_grad=True)
    y64 = op(t64)
    gy = rng.standard_normal(y64.shape).astype(dtype)
    y64.backward(gpucnn.tensor(gy.astype(np.float64)))
    eps = float(ml_dtypes.finfo(dtype).eps)
    tiny = float(ml_dtypes.finfo(dtype).smallest_subnormal)
    results = {}
    for device in ("cpu", "emu"):
        y, gx = _run(op, x, gy, device)
        assert y.dtype == dtype and gx.dtype == dtype
        for got, ref in ((y.numpy(), y64.numpy()), (gx.numpy(), t64.grad.numpy())):
            err = np.abs(got.astype(np.float64) - ref)
            assert np.all(err <= eps * np.abs(ref) + tiny), f"{device}: {err.max()}"
        results[device] = (y.numpy().view(np.uint16), gx.numpy().view(np.uint16))
    if bitwise:  # the same float32 sums in the same order on both devices, one rounding
        for a, b in zip(results["cpu"], results["emu"]):
            np.testing.assert_array_equal(a, b)


def test_16_bit_pooling_keeps_nan_and_inf():
    x = np.array([[[[1.0, np.nan], [np.inf, -np.inf]]]], dtype=np.float16)
    for device in ("cpu", "emu"):
        assert np.isnan(F.max_pool2d(gpucnn.tensor(x, device=device), 2).numpy()).all()
        assert F.max_pool2d(gpucnn.tensor(x[..., :, :1], device=device), (2, 1)).numpy().item() == np.inf
