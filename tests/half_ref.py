"""The reference check of the 16-bit op tests: an op on float16/bfloat16 values against the same op in float64
on the same values. Each 16-bit result is computed in float32 and rounded once, so it must be within one
epsilon (relative) of the float64 one, plus a few float32 ulps of max |ref| where a float32 sum cancels."""
import ml_dtypes
import numpy as np

import gpucnn

#: float32's own error allowance, relative to the largest reference value
F32_SLACK = 64 * float(np.finfo(np.float32).eps)


def assert_within_one_rounding(got, want, dtype, what=""):
    """``got`` (a 16-bit tensor) is within one epsilon of the float64 tensor ``want``, elementwise."""
    assert got.dtype == dtype, what
    g, w = got.numpy().astype(np.float64), want.numpy()
    err = np.abs(g - w)
    eps = float(ml_dtypes.finfo(dtype).eps)
    assert np.all(err <= eps * np.abs(w) + F32_SLACK * np.abs(w).max()), (what, err.max())


def check_against_float64(op, arrays, dtype, device, rng, what=""):
    """``op(*tensors)`` on ``arrays`` (16-bit values) on ``device``, forward and backward (an output
    gradient of 16-bit values from ``rng``), against float64 on the cpu, every result and gradient."""
    ts = [gpucnn.tensor(a, device=device, requires_grad=True) for a in arrays]
    ref = [gpucnn.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    y, y64 = op(*ts), op(*ref)
    gy = rng.standard_normal(y64.shape).astype(dtype)
    y.backward(gpucnn.tensor(gy, device=device))
    y64.backward(gpucnn.tensor(gy.astype(np.float64)))
    assert_within_one_rounding(y, y64, dtype, f"{what} output")
    for i, (t, r) in enumerate(zip(ts, ref)):
        if r.grad is not None:
            assert_within_one_rounding(t.grad, r.grad, dtype, f"{what} gradient {i}")
