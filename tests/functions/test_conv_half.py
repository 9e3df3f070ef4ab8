"""conv2d / conv1d in float16 and bfloat16 on every device, against float64.

The inputs are half values (exact in float64), so the float64 convolution of them is the exact answer up
to float64 rounding. The half convolution accumulates in float32 and rounds its result once, so each
element is within half an ulp of the half dtype (eps/2 relative) plus float32's accumulation error: the
issue's bound 2 * eps * max|y| holds with a wide margin, and a float16 result that had been accumulated
in float16 (eps 2**-10 per addition, ~K of them) would not meet it.
"""
import ml_dtypes
import numpy as np
import pytest

import gpucnn
from gpucnn import functional as F

HALVES = [pytest.param(np.dtype(np.float16), id="f16"), pytest.param(np.dtype(ml_dtypes.bfloat16), id="bf16")]
CASES = [
    dict(size=(7, 6), k=(3, 3), stride=1, padding=1, dilation=1, mode="zeros"),
    dict(size=(9, 8), k=(3, 2), stride=2, padding=(1, 2), dilation=(1, 2), mode="reflect"),
    dict(size=(5, 5), k=(1, 1), stride=1, padding=0, dilation=1, mode="zeros"),
    dict(size=(6, 7), k=(3, 3), stride=(2, 1), padding=2, dilation=1, mode="circular"),
    dict(size=(11,), k=(3,), stride=2, padding=1, dilation=2, mode="replicate"),
]


def _halves(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _conv(x, w, b, gy, case, device, dtype):
    """y, and the gradients of x, w and b for the output gradient gy (None: forward only)."""
    op = F.conv1d if len(case["size"]) == 1 else F.conv2d
    tx, tw, tb = (gpucnn.tensor(a.astype(dtype), device=device, requires_grad=True) for a in (x, w, b))
    y = op(tx, tw, tb, stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
           padding_mode=case["mode"])
    if gy is None:
        return y
    y.backward(gpucnn.tensor(gy.astype(dtype), device=device))
    return y, tx.grad, tw.grad, tb.grad


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c['size'])}d-{c['mode']}-s{c['stride']}")
def test_half_conv_is_within_twice_eps_of_float64(device, dtype, case):
    rng = np.random.default_rng(1)
    x = _halves(rng, (2, 3) + case["size"], dtype)
    w = _halves(rng, (4, 3) + case["k"], dtype)
    b = _halves(rng, (4,), dtype)
    gy = _halves(rng, _conv(x, w, b, None, case, "cpu", np.float64).shape, dtype)
    ref = _conv(x, w, b, gy, case, "cpu", np.float64)
    got = _conv(x, w, b, gy, case, device, dtype)
    eps = float(ml_dtypes.finfo(dtype).eps)
    for name, g, r in zip(("y", "grad x", "grad w", "grad b"), got, ref):
        assert g.dtype == dtype and g.device == device, name  # the input's dtype, as in PyTorch
        exact = r.numpy()
        err = np.abs(g.numpy().astype(np.float64) - exact).max()
        assert err <= 2 * eps * np.abs(exact).max(), (name, err)


def test_float16_accumulation_would_fail_the_bound():
    # The bound above is tight enough to tell float32 accumulation from float16 accumulation: a long
    # dot product of float16 values summed in float16 misses it, the float32-accumulated conv meets it.
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal((1, 256, 1, 1))).astype(np.float16)
    w = np.abs(rng.standard_normal((1, 256, 1, 1))).astype(np.float16)
    exact = (x.astype(np.float64) * w.astype(np.float64)).sum()
    acc = np.float16(0)
    for p in (x * w).ravel():  # (products rounded to float16, then float16 sums)
        acc = np.float16(acc + p)
    eps = float(np.finfo(np.float16).eps)
    assert abs(float(acc) - exact) > 2 * eps * exact
    y = F.conv2d(gpucnn.tensor(x), gpucnn.tensor(w)).item()
    assert abs(y - exact) <= 2 * eps * exact


def test_mixed_dtypes_name_both():
    x = gpucnn.tensor(np.zeros((1, 1, 3, 3), np.float16))
    w = gpucnn.tensor(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(gpucnn.ArgumentError, match=r"float16 and float32"):
        F.conv2d(x, w)
    with pytest.raises(gpucnn.ArgumentError, match=r"bfloat16 and float16"):
        F.conv2d(x.to(gpucnn.bfloat16), gpucnn.tensor(np.zeros((1, 1, 2, 2), np.float16)))


def test_half_is_unchanged_by_tf32_precision():
    rng = np.random.default_rng(3)
    x, w = (gpucnn.tensor(rng.standard_normal(s).astype(np.float16)) for s in ((1, 2, 5, 5), (3, 2, 3, 3)))
    exact = F.conv2d(x, w).numpy()
    gpucnn.set_float32_matmul_precision("high")
    try:
        np.testing.assert_array_equal(F.conv2d(x, w).numpy(), exact)  # halves are exact in TF32
    finally:
        gpucnn.set_float32_matmul_precision("highest")


FAMILY = {  # (op, x shape, w shape, keyword arguments): the grouped, depthwise and transposed convolutions
    "groups 2": (F.conv2d, (2, 4, 6, 6), (6, 2, 3, 3), dict(padding=1, groups=2)),
    "depthwise x2": (F.conv2d, (2, 3, 7, 7), (6, 1, 3, 3), dict(stride=2, padding=1, groups=3)),
    "conv1d causal": (F.conv1d, (2, 3, 9), (4, 3, 3), dict(padding="causal", dilation=2)),
    "transposed": (F.conv_transpose2d, (2, 3, 4, 5), (3, 4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "transposed groups": (F.conv_transpose2d, (1, 4, 3, 3), (4, 1, 2, 2), dict(stride=2, groups=2)),
    "transposed 1d": (F.conv_transpose1d, (2, 3, 6), (3, 2, 4), dict(stride=3, dilation=1)),
}


@pytest.mark.filterwarnings("ignore:conv2d. grouped:RuntimeWarning")  # (said once: not on the tensor cores)
@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", list(FAMILY))
def test_grouped_depthwise_and_transposed_convs_in_16_bits(device, dtype, name):
    op, xs, ws, kw = FAMILY[name]
    rng = np.random.default_rng(4)
    x, w = _halves(rng, xs, dtype), _halves(rng, ws, dtype)
    transposed = op in (F.conv_transpose1d, F.conv_transpose2d)
    b = _halves(rng, (ws[1] * kw.get("groups", 1) if transposed else ws[0],), dtype)

    def run(d, device_):
        ts = [gpucnn.tensor(a.astype(d), device=device_, requires_grad=True) for a in (x, w, b)]
        y = op(*ts, **kw)
        return y, ts

    y64, ref = run(np.float64, "cpu")
    gy = _halves(rng, y64.shape, dtype)
    y64.backward(gpucnn.tensor(gy.astype(np.float64)))
    y, ts = run(dtype, device)
    y.backward(gpucnn.tensor(gy, device=device))
    eps = float(ml_dtypes.finfo(dtype).eps)
    for what, g, r in [("y", y, y64)] + [(f"grad {i}", t.grad, rt.grad) for i, (t, rt) in enumerate(zip(ts, ref))]:
        assert g.dtype == dtype, what
        exact = r.numpy()
        assert np.abs(g.numpy().astype(np.float64) - exact).max() <= 2 * eps * np.abs(exact).max(), (name, what)
