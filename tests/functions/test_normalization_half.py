"""Normalization in float16 and bfloat16 on cpu and emu: statistics and the backward in float32 (PyTorch's),
each result rounded once, so within one unit of the dtype's epsilon (relative) of the float64 answer on
the same values, plus float32's own error (1e-5 relative of the row's scale: far below both epsilons)."""
import ml_dtypes
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F

HALVES = [gpucnn.float16, gpucnn.bfloat16]
OPS = {
    "layer_norm": (lambda t, w, b: F.layer_norm(t, (3, 5), w[:15].reshape(3, 5), b[:15].reshape(3, 5)), (2, 4, 3, 5)),
    "group_norm": (lambda t, w, b: F.group_norm(t, 2, w[:4], b[:4]), (2, 4, 3, 5)),
    "instance_norm": (lambda t, w, b: F.instance_norm(t, weight=w[:4], bias=b[:4]), (2, 4, 3, 5)),
    "local_response_norm": (lambda t, w, b: F.local_response_norm(t, 3, 0.5, 0.75, 1.0), (2, 4, 3, 5)),
}


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
def test_16_bit_normalization_is_within_an_epsilon_of_float64(name, dtype):
    op, shape = OPS[name]
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(shape).astype(dtype), (rng.standard_normal(15) + 1).astype(dtype),
              rng.standard_normal(15).astype(dtype)]
    t64 = [gpucnn.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    y64 = op(*t64)
    gy = rng.standard_normal(y64.shape).astype(dtype)
    y64.backward(gpucnn.tensor(gy.astype(np.float64)))
    eps = float(ml_dtypes.finfo(dtype).eps)
    tiny = float(ml_dtypes.finfo(dtype).smallest_subnormal)
    for device in ("cpu", "emu"):
        ts = [gpucnn.tensor(a, device=device, requires_grad=True) for a in arrays]
        y = op(*ts)
        y.backward(gpucnn.tensor(gy, device=device))
        assert y.dtype == dtype
        pairs = [(y.numpy(), y64.numpy())] + [(t.grad.numpy(), r.grad.numpy()) for t, r in zip(ts, t64)
                                               if r.grad is not None and t.grad is not None]
        for got, ref in pairs:
            assert got.dtype == dtype
            scale = np.abs(ref).max()
            err = np.abs(got.astype(np.float64) - ref)
            assert np.all(err <= eps * np.abs(ref) + tiny + 1e-5 * scale), f"{device}: {err.max()}"
