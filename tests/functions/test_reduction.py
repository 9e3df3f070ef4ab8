"""Reductions (gpucnn/functions/reduction.py and Tensor's reduction methods) against PyTorch."""
import ml_dtypes
import numpy as np
import pytest
import torch

import gpucnn
from torch_ref import same

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4, 5))
TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 2.0], [-1.0, -1.0, -1.0, -1.0]])


def test_max_dim_returns_values_and_indices():
    # The silent wrong answer: out.max(1)[1] was row 1 of the values, not the indices.
    out = gpucnn.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])
    assert out.max(1)[1].tolist() == [1, 0]
    values, indices = out.max(1)
    assert values.tolist() == pytest.approx([0.7, 0.9]) and indices.dtype == np.int64
    r = out.max(dim=1)
    assert r.values is r[0] and r.indices is r[1] and type(r).__name__ == "max"


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_max_min_dim_match_torch(name, dim, keepdim):
    for data in (X, TIES):
        same(lambda x: tuple(getattr(x, name)(dim, keepdim=keepdim)), [data])


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_full_reductions_share_ties_like_torch(name):
    same(lambda x: getattr(x, name)(), [TIES])
    same(lambda x: getattr(x, name)(), [X])


def test_amax_over_dims_matches_torch():
    same(lambda x: x.amax(dim=(0, 2)), [X])
    same(lambda x: x.amin(1, keepdim=True), [TIES])


def test_max_with_a_tensor_is_elementwise():
    same(lambda a, b: a.max(b), [TIES, TIES.T[:3, :4] if False else TIES[::-1].copy()])
    same(lambda a, b: gpucnn.maximum(a, b), [X, X[:, :1]], g=lambda a, b: torch.maximum(a, b))


def test_nan_propagates_through_max_dim():
    data = np.array([[1.0, np.nan, 3.0], [0.0, 2.0, 1.0]])
    same(lambda x: tuple(x.max(1)), [data], grad=False)


@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin_match_torch(keepdim):
    for data in (X, TIES):
        t, r = gpucnn.tensor(data), torch.tensor(data)
        assert t.argmax().shape == () and t.argmax().item() == r.argmax().item()  # 0-d, flat index
        assert t.argmin().item() == r.argmin().item()
        for dim in (0, 1, -1):
            np.testing.assert_array_equal(t.argmax(dim, keepdim).numpy(), r.argmax(dim, keepdim).numpy())
            np.testing.assert_array_equal(t.argmin(dim, keepdim=keepdim).numpy(), r.argmin(dim, keepdim).numpy())


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch(dim, descending):
    same(lambda x: tuple(x.sort(dim, descending=descending)), [X])
    # ties: both stable, so the indices agree too
    same(lambda x: tuple(x.sort(dim=dim, descending=descending, stable=True)), [TIES])
    t = gpucnn.tensor(TIES)
    np.testing.assert_array_equal(t.argsort(dim, descending).numpy(),
                                  torch.tensor(TIES).argsort(dim=dim, descending=descending, stable=True).numpy())


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (3, 0, False), (1, 1, True), (0, -1, True)])
def test_topk_matches_torch(k, dim, largest):
    same(lambda x: tuple(x.topk(k, dim, largest=largest)), [X])


def test_topk_k_out_of_range():
    with pytest.raises(ValueError, match="k must be in"):
        gpucnn.tensor(X).topk(6)


@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"correction": 0},
                                    {"dim": 2, "unbiased": False}, {"dim": -1, "correction": 2}])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_match_torch(name, kwargs):
    same(lambda x: getattr(x, name)(**kwargs), [X], rtol=1e-6)


def test_var_positional_unbiased_overload():
    same(lambda x: x.var(False), [X])
    same(lambda x: x.std(1, False, True), [X])


def test_var_without_degrees_of_freedom_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="degrees of freedom"):
        v, ref = gpucnn.tensor([1.0]).var(), torch.tensor([1.0]).var()
    assert np.isnan(v.item()) and np.isnan(ref.item())


@pytest.mark.parametrize("p", [1, 2, 3, float("inf"), "fro"])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_norm_matches_torch(p, dim):
    same(lambda x: x.norm(p, dim), [X])
    same(lambda x: x.norm(p, dim if dim != (0, 2) else (0, 1)), [TIES])


def test_norm_gradient_at_zero_is_zero_like_torch():
    same(lambda x: x.norm(), [np.zeros(3)])
    same(lambda x: x.norm(1), [np.zeros(3)])


@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_any_all_match_torch(dim, keepdim):
    data = np.array([[True, False, False], [True, True, True]])
    for d in (data, data.astype(np.float32)):
        t, r = gpucnn.tensor(d), torch.tensor(d)
        for name in ("any", "all"):
            ours = getattr(t, name)() if dim is None else getattr(t, name)(dim, keepdim)
            ref = getattr(r, name)() if dim is None else getattr(r, name)(dim, keepdim)
            assert ours.dtype == np.bool_ and ours.tolist() == ref.tolist()


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_matches_torch(dim):
    same(lambda x: x.cumsum(dim), [X])
    i = gpucnn.tensor([[1, 2], [3, 4]], dtype=gpucnn.int32).cumsum(0)
    assert i.dtype == np.int64 and i.tolist() == [[1, 2], [4, 6]]  # integers accumulate as int64


@pytest.mark.parametrize("dim,keepdim", [(0, False), (-1, True), ((1, 2), False)])
def test_logsumexp_matches_torch(dim, keepdim):
    same(lambda x: x.logsumexp(dim, keepdim), [X])
    same(lambda x: x.logsumexp(dim, keepdim), [X * 1000])  # no overflow
    same(lambda x: x.logsumexp(-1), [np.array([[-np.inf, -np.inf], [0.0, -np.inf]])], grad=False)


def test_sum_mean_keepdim_and_dtypes_match_torch():
    same(lambda x: x.sum((0, 2), keepdim=True), [X])
    same(lambda x: x.mean(1, keepdim=True), [X])
    same(lambda x: x.mean(dim=(0, 1)), [X])
    i = gpucnn.tensor([1, 2], dtype=gpucnn.int32)
    assert i.sum().dtype == np.int64 and gpucnn.tensor([True, True]).sum().item() == 2
    with pytest.raises(TypeError, match="floating-point"):
        i.mean()
    assert i.mean(dtype=gpucnn.float32).item() == 1.5


def test_torch_spelled_functions():
    x = gpucnn.tensor(X)
    assert gpucnn.max(x, 1).indices.tolist() == torch.max(torch.tensor(X), 1).indices.tolist()
    assert gpucnn.sum(x).item() == pytest.approx(X.sum())
    np.testing.assert_allclose(gpucnn.logsumexp(x, 0).numpy(), torch.logsumexp(torch.tensor(X), 0).numpy())


@pytest.mark.parametrize("f", [
    lambda x: x.sum((0, 2)), lambda x: x.max(1).values, lambda x: x.min(-1, keepdim=True)[0], lambda x: x.amax(0),
    lambda x: x.max(), lambda x: x.sort(1, descending=True).values, lambda x: x.topk(2).values,
    lambda x: x.var(1), lambda x: x.std(correction=0), lambda x: x.norm(3, 1), lambda x: x.norm(float("inf")),
    lambda x: x.cumsum(2), lambda x: x.logsumexp((0, 1)),
])
def test_reduction_backward_against_finite_differences(f):
    assert gpucnn.gradcheck(f, [gpucnn.tensor(X, requires_grad=True)])


@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16])
def test_16_bit_sums_accumulate_in_float32(dtype):
    """NumPy sums bfloat16 in bfloat16 (20,000 values in [0, 1) stall at 256); gpucnn sums in float32 and
    rounds once, as PyTorch: within half an ulp of the float64 sum, plus float32's own rounding."""
    x = np.random.default_rng(0).uniform(0, 1, 20000).astype(dtype)
    exact = x.astype(np.float64).sum()
    got = gpucnn.tensor(x).sum()
    assert got.dtype == dtype
    eps = float(ml_dtypes.finfo(dtype).eps)
    assert abs(float(got.item()) - exact) <= 0.5 * eps * exact * 1.001
    g = gpucnn.tensor(x, requires_grad=True)
    g.sum().backward()
    assert g.grad.dtype == dtype and np.all(g.grad.numpy().astype(np.float32) == 1)
