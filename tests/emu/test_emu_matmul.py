"""A tiled, register-blocked matrix multiply (the shape of a real GEMM kernel) against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

from emu_testing import kernel

rng = np.random.default_rng(1)


@pytest.mark.parametrize("ctype,dtype", [("float", np.float32), ("double", np.float64)])
@pytest.mark.parametrize("shape", [(70, 45, 83), (32, 32, 8), (1, 97, 5)])
def test_tiled_matmul_matches_numpy(order, ctype, dtype, shape):
    M, N, K = shape
    f = kernel("matmul.cu", "matmul_tiled", f"-DT={ctype}")
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    C = np.full((M, N), np.nan, dtype)
    f(((N + 31) // 32, (M + 31) // 32), (8, 8), (A, B, C, np.int32(M), np.int32(N), np.int32(K)))
    # Tolerance: a K-term dot product computed in any order in precision u = eps/2 is within
    # gamma_K * (|A| @ |B|) of the exact value, gamma_K = K*u/(1-K*u) < K*eps/2 (Higham, Accuracy and
    # Stability, 3.1). The kernel and NumPy's BLAS sum in different orders (and BLAS may use FMA), so
    # both are within that bound of the exact product and within 2*gamma_K < K*eps of each other. The
    # reference is computed in float64, whose error is negligible next to float32's bound.
    ref = A.astype(np.float64) @ B.astype(np.float64)
    bound = K * np.finfo(dtype).eps * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
    assert np.all(np.abs(C - ref) <= bound)
    np.testing.assert_allclose(C, (A @ B), rtol=0, atol=float(bound.max()))


def test_matmul_reports_its_resources():
    f = kernel("matmul.cu", "matmul_tiled", "-DT=float")
    assert f.launch_bounds == 64
    assert f.static_shared_bytes >= 2 * 8 * 32 * 4  # As and Bs
    assert [p.name for p in f.params] == ["A", "B", "C", "M", "N", "K"]
