"""linear in 16 bits: the GEMM runs in float32 on the 16-bit values and the result is rounded once, as
PyTorch's (and cuBLAS's) FP32 accumulation: within 2 eps max|y| of float64, gradients in the input dtype."""
import ml_dtypes
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16])
def test_linear_in_16_bits_is_within_its_epsilon_of_float64(device, dtype):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(s).astype(dtype) for s in ((16, 300), (5, 300), (5,))]
    x, w, b = (gpucnn.tensor(a, device=device, requires_grad=True) for a in xs)
    y = F.linear(x, w, b)
    assert y.dtype == dtype
    x64, w64, b64 = (a.astype(np.float64) for a in xs)
    ref = x64 @ w64.T + b64
    eps = float(ml_dtypes.finfo(dtype).eps)
    assert np.abs(y.numpy().astype(np.float64) - ref).max() <= 2 * eps * np.abs(ref).max()
    gy = rng.standard_normal(ref.shape).astype(dtype)
    y.backward(gpucnn.tensor(gy, device=device))
    gx_ref = gy.astype(np.float64) @ w64
    gw_ref = gy.astype(np.float64).T @ x64
    for t, r in ((x, gx_ref), (w, gw_ref)):
        assert t.grad.dtype == dtype
        assert np.abs(t.grad.numpy().astype(np.float64) - r).max() <= 2 * eps * np.abs(r).max()
