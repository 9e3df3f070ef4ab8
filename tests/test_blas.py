"""gpucnn.blas.gemm: strided views straight to BLAS, accumulation, and the NumPy fallback."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucnn import blas


def _numpy_blas_is_scipy_openblas() -> bool:
    from threadpoolctl import ThreadpoolController
    return any("scipy_openblas" in lib.filepath
               for lib in ThreadpoolController().select(user_api="blas").lib_controllers)


def test_numpys_openblas_is_found():
    """With NumPy's own wheels (scipy-openblas, as on CI) gemm must call BLAS, not fall back."""
    if not _numpy_blas_is_scipy_openblas():
        pytest.skip("NumPy here does not use scipy-openblas")
    assert blas.accelerated(np.float32) and blas.accelerated(np.float64)


def _operand(rng, rows, cols, dtype, transposed, pad):
    """A (rows, cols) view with a row stride larger than its width (or a transposed one)."""
    if transposed:
        return rng.standard_normal((cols, rows + pad)).astype(dtype)[:, pad:].T
    return rng.standard_normal((rows, cols + pad)).astype(dtype)[:, :cols]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), k=st.integers(1, 9), ta=st.booleans(), tb=st.booleans(),
       pad=st.integers(0, 3), beta=st.sampled_from([0.0, 1.0, 0.5]), f32=st.booleans(), seed=st.integers(0, 99))
def test_gemm_matches_numpy_on_strided_views(m, n, k, ta, tb, pad, beta, f32, seed):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if f32 else np.float64
    a = _operand(rng, m, k, dtype, ta, pad)
    b = _operand(rng, k, n, dtype, tb, pad)
    out = _operand(rng, m, n, dtype, False, pad)
    expect = a.astype(np.float64) @ b.astype(np.float64) + beta * out.astype(np.float64)
    before = out.base.copy()
    assert blas.gemm(a, b, out, beta=beta) is out
    tol = 1e-5 if f32 else 1e-12
    np.testing.assert_allclose(out, expect, rtol=tol, atol=tol)
    # Nothing outside the view was written (the padding columns keep their values).
    mask = np.ones(out.base.shape, bool)
    mask[:, :n] = False
    np.testing.assert_array_equal(out.base[mask], before[mask])


def test_beta_zero_ignores_nan_in_out():
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    out = np.full((2, 4), np.nan, np.float32)
    blas.gemm(a, b, out)
    np.testing.assert_array_equal(out, 3)


def test_empty_inner_dimension():
    out = np.ones((2, 3))
    blas.gemm(np.ones((2, 0)), np.ones((0, 3)), out, beta=1.0)
    np.testing.assert_array_equal(out, 1)
    blas.gemm(np.ones((2, 0)), np.ones((0, 3)), out)
    np.testing.assert_array_equal(out, 0)


def test_views_blas_cannot_take_go_through_numpy():
    """A view with no unit stride (every other column of every other row) is still right."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 8))[::2, ::2]
    b = rng.standard_normal((8, 6))[::2, ::2]
    out = np.zeros((3, 3))
    blas.gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_fallback_gives_the_same_results(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 4))
    c0 = rng.standard_normal((5, 4))
    fast = blas.gemm(a, b, c0.copy(), beta=1.0)
    monkeypatch.setattr(blas, "_gemm", {})
    assert not blas.accelerated(np.float64)
    slow = blas.gemm(a, b, c0.copy(), beta=1.0)
    np.testing.assert_allclose(slow, fast, rtol=1e-12)


@pytest.mark.parametrize("a,b,out,match", [
    (np.ones((2, 3)), np.ones((4, 5)), np.ones((2, 5)), "shapes"),
    (np.ones((2, 3)), np.ones((3, 5)), np.ones((2, 4)), "shapes"),
    (np.ones((2, 3)), np.ones((3, 5), np.float32), np.ones((2, 5)), "dtypes"),
    (np.ones(3), np.ones((3, 5)), np.ones((1, 5)), "shapes"),
])
def test_bad_arguments_are_refused(a, b, out, match):
    with pytest.raises(ValueError, match=match):
        blas.gemm(a, b, out)


def test_read_only_out_is_refused():
    out = np.zeros((2, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.gemm(np.ones((2, 2)), np.ones((2, 2)), out)
