"""gpucnn.precision: set_float32_matmul_precision and TF32 operands of conv and linear on every device.

References: float64 GEMMs of the TF32-rounded operands (what the tensor cores compute, up to the FP32
accumulation), against which "high" must agree to float32 accuracy, while "highest" differs from them by
TF32's rounding (relative 2**-11 per operand), orders of magnitude more than float32's 2**-24.
"""
import numpy as np
import pytest

import gpucnn
from gpucnn import functional as F
from gpucnn.precision import round_tf32

RNG = np.random.default_rng(4)


@pytest.fixture
def high():
    gpucnn.set_float32_matmul_precision("high")
    yield
    gpucnn.set_float32_matmul_precision("highest")


def tf32(a):
    return round_tf32(np, np.asarray(a, dtype=np.float32)).astype(np.float64)


def test_api_and_bad_values():
    assert gpucnn.get_float32_matmul_precision() == "highest"
    gpucnn.set_float32_matmul_precision("high")
    assert gpucnn.get_float32_matmul_precision() == "high"
    gpucnn.set_float32_matmul_precision("highest")
    for bad in ("medium", "HIGH", "tf32", None):
        with pytest.raises(ValueError, match="highest, high"):
            gpucnn.set_float32_matmul_precision(bad)
    assert gpucnn.get_float32_matmul_precision() == "highest"


def test_round_tf32_is_cvt_rna():
    one = np.float32(1.0)
    ulp = 2.0 ** -10  # TF32 keeps 10 mantissa bits
    cases = [(1 + ulp / 2, 1 + ulp),            # a tie rounds away from zero
             (-(1 + ulp / 2), -(1 + ulp)),
             (1 + ulp / 2 - 2 ** -23, 1.0),      # just below the tie
             (1 + 3 * ulp / 2, 1 + 2 * ulp),     # a tie again (not to even)
             (float(np.inf), float(np.inf)), (0.0, 0.0), (-0.0, -0.0)]
    for value, expected in cases:
        got = round_tf32(np, np.array([value], np.float32))[0]
        assert got == np.float32(expected) and np.signbit(got) == np.signbit(expected), value
    assert np.isnan(round_tf32(np, np.array([np.nan], np.float32))[0])
    bits = round_tf32(np, RNG.standard_normal(1000).astype(np.float32)).view(np.uint32)
    assert not (bits & 0x1FFF).any() and one == round_tf32(np, np.array([one]))[0]


def _conv_case(device, precision_high):
    x = RNG.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    gy = RNG.standard_normal((2, 4, 4, 3)).astype(np.float32)
    return x, w, b, gy


def _conv(device, x, w, b, gy, dtype=np.float32):
    tx = gpucnn.tensor(x.astype(dtype), device=device, requires_grad=True)
    tw = gpucnn.tensor(w.astype(dtype), device=device, requires_grad=True)
    tb = gpucnn.tensor(b.astype(dtype), device=device, requires_grad=True)
    y = F.conv2d(tx, tw, tb, stride=(2, 2), padding=1, padding_mode="reflect")
    y.backward(gpucnn.tensor(gy.astype(dtype), device=device))
    return y.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


def _tolerance(ref_abs):
    """float32 accumulation of K products: within 2 * K * 2**-24 * sum|products| (Higham, 3.1)."""
    return 2 * 64 * 2.0 ** -24 * ref_abs


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_conv_under_high_rounds_each_gemms_operands(high, device):
    x, w, b, gy = _conv_case(device, True)
    y, gx, gw, gb = _conv(device, x, w, b, gy)
    # forward: x and w rounded; backward-data: gy and w; backward-filter: x and gy (the bias is exact)
    ry, _, _, _ = _conv("cpu", tf32(x), tf32(w), b, gy, np.float64)
    _, rgx, _, _ = _conv("cpu", x, tf32(w), b, tf32(gy), np.float64)
    _, _, rgw, rgb = _conv("cpu", tf32(x), w, b, tf32(gy), np.float64)
    mag = _conv("cpu", np.abs(x), np.abs(w), np.abs(b), np.abs(gy), np.float64)
    for got, ref, m in zip((y, gx, gw), (ry, rgx, rgw), mag):
        np.testing.assert_array_less(np.abs(got - ref), _tolerance(m) + 1e-30)
    np.testing.assert_array_less(np.abs(gb - _conv("cpu", x, w, b, gy, np.float64)[3]), _tolerance(mag[3]))
    # and it is not what "highest" computes: TF32's rounding is visible
    gpucnn.set_float32_matmul_precision("highest")
    exact = _conv(device, x, w, b, gy)
    assert np.abs(exact[0] - y).max() > 100 * _tolerance(mag[0]).max() / 64


def test_devices_agree_under_high(high):
    case = _conv_case("cpu", True)
    for a, b in zip(_conv("cpu", *case), _conv("emu", *case)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_float64_is_never_rounded(high):
    x, w, b, gy = _conv_case("cpu", True)
    got = _conv("cpu", x, w, b, gy, np.float64)
    gpucnn.set_float32_matmul_precision("highest")
    for a, r in zip(got, _conv("cpu", x, w, b, gy, np.float64)):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_linear_under_high(high, layout):
    x = RNG.standard_normal((5, 8)).astype(np.float32)
    if layout == "columns":
        x = np.asfortranarray(x)  # (a Flatten of a channel-major activation)
    w = RNG.standard_normal((3, 8)).astype(np.float32)
    gy = RNG.standard_normal((5, 3)).astype(np.float32)
    tx, tw = gpucnn.tensor(x, requires_grad=True), gpucnn.tensor(w, requires_grad=True)
    y = F.linear(tx, tw)
    y.backward(gpucnn.tensor(gy))
    np.testing.assert_allclose(y.numpy(), tf32(x) @ tf32(w).T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tx.grad.numpy(), tf32(gy) @ tf32(w), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tw.grad.numpy(), tf32(gy).T @ tf32(x), rtol=1e-5, atol=1e-6)
    assert np.abs(y.numpy() - x.astype(np.float64) @ w.T).max() > 1e-4  # rounded, visibly
