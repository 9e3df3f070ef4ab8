"""Dtype promotion, casts and dtype names, against PyTorch (torch.result_type, torch.can_cast)."""
import itertools

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import dtypes
from gpucnn.errors import DtypeError
from torch_ref import DTYPES

TORCH = {v: k for k, v in DTYPES.items()}
ALL = list(DTYPES)
SCALARS = [True, 3, -2, 2.5]


def ours_and_torch(dtype, shape):
    return gpucnn.tensor(np.ones(shape, dtype=DTYPES[dtype])), torch.ones(shape, dtype=dtype)


@pytest.mark.parametrize("ta,tb", list(itertools.product(ALL, ALL)))
def test_tensor_tensor_promotion_is_torchs(ta, tb):
    for sa, sb in [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())]:
        a, ra = ours_and_torch(ta, sa)
        b, rb = ours_and_torch(tb, sb)
        expected = torch.result_type(ra, rb)
        assert dtypes.result_type(a, b) == DTYPES[expected], (ta, sa, tb, sb)
        if ta != torch.bool or tb != torch.bool:
            assert (a + b).dtype == DTYPES[(ra + rb).dtype]


@pytest.mark.parametrize("ta", ALL)
@pytest.mark.parametrize("scalar", SCALARS)
def test_tensor_scalar_promotion_is_torchs(ta, scalar):
    a, ra = ours_and_torch(ta, (3,))
    assert dtypes.result_type(a, scalar) == DTYPES[torch.result_type(ra, scalar)]
    assert dtypes.result_type(scalar, a) == DTYPES[torch.result_type(scalar, ra)]
    # and through the operators, both sides
    if ta != torch.bool or isinstance(scalar, bool) is False:
        assert (a * scalar).dtype == DTYPES[(ra * scalar).dtype]
        assert (scalar * a).dtype == DTYPES[(scalar * ra).dtype]


def test_the_truncation_regression():
    # The silent wrong answer: tensor([1, 2]) * 2.5 gave [2, 4].
    out = gpucnn.tensor([1, 2]) * 2.5
    assert out.dtype == np.float32 and out.tolist() == [2.5, 5.0]
    assert (gpucnn.tensor([1, 2]) / 2).tolist() == [0.5, 1.0]  # true division of ints is float
    assert (gpucnn.tensor([1, 2]) + 1).dtype == np.int64


@pytest.mark.parametrize("src,dst", list(itertools.product(ALL, ALL)))
def test_can_cast_is_torchs(src, dst):
    assert dtypes.can_cast(DTYPES[src], DTYPES[dst]) == torch.can_cast(src, dst)


def test_numpy_scalars_count_as_python_numbers():
    a = gpucnn.tensor([1.0])
    assert (a + np.float64(1.5)).dtype == np.float32  # as torch: a NumPy scalar does not promote to float64


def test_default_dtype():
    assert gpucnn.get_default_dtype() == np.float32
    try:
        gpucnn.set_default_dtype(gpucnn.float64)
        assert gpucnn.tensor([1.0]).dtype == np.float64
        assert (gpucnn.tensor([1]) * 0.5).dtype == np.float64
        assert gpucnn.tensor([1]).exp().dtype == np.float64
    finally:
        gpucnn.set_default_dtype(gpucnn.float32)
    assert gpucnn.tensor([1.0]).dtype == np.float32
    with pytest.raises(DtypeError, match="floating-point"):
        gpucnn.set_default_dtype(gpucnn.int64)


def test_conversions():
    x = gpucnn.tensor([1.7, -2.5])
    assert x.to(gpucnn.float64).dtype == np.float64  # positional dtype
    assert x.to("cpu", gpucnn.float64).dtype == np.float64
    assert x.to(dtype="float64").dtype == np.float64
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]  # truncation, as torch
    assert x.int().dtype == np.int32 and x.double().dtype == np.float64
    assert x.bool().tolist() == [True, True] and x.half().dtype == np.float16
    assert x.type(gpucnn.int64).dtype == np.int64 and x.type() == "float32"
    assert x.to(gpucnn.tensor([1], dtype=gpucnn.int16)).dtype == np.int16  # to(other)
    assert x.to(float).dtype == np.float64 and x.to(int).dtype == np.int64  # Python's types, as torch
    assert x.to(gpucnn.float32) is x


def test_cast_is_differentiable_and_int_casts_drop_the_graph():
    x = gpucnn.tensor([1.5, 2.0], requires_grad=True)
    y = x.double()
    assert y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 4.0]
    assert not x.long().requires_grad  # an integer result has no gradient, as in torch


@pytest.mark.parametrize("bad", ["floot32", "complex64", object, "cpu2"])
def test_unknown_dtype_is_a_type_error(bad):
    with pytest.raises(TypeError, match="dtype"):
        gpucnn.tensor([1.0]).to(bad)
    with pytest.raises(DtypeError):
        gpucnn.tensor([1.0], dtype=bad)


def test_comparisons_and_logic_give_bool_tensors():
    a = gpucnn.tensor([1, 2, 3])
    for out in (a == 2, a != 2, a < 2.5, a <= 2, a > 1, a >= 3, 2 < a):
        assert out.dtype == np.bool_
    assert (a < 2.5).tolist() == [True, True, False]  # compared as float, not truncated
    m = a > 1
    assert (m & (a < 3)).tolist() == [False, True, False]
    assert (m | (a < 2)).tolist() == [True, True, True]
    assert (~m).tolist() == [True, False, False]
    assert (m ^ True).tolist() == [True, False, False]
    assert (a & 1).tolist() == [1, 0, 1]
    with pytest.raises(DtypeError):
        gpucnn.tensor([1.0]) & gpucnn.tensor([1.0])
    with pytest.raises(DtypeError):
        ~gpucnn.tensor([1.0])


@pytest.mark.parametrize("op", ["floordiv", "mod", "pow", "abs"])
def test_integer_and_float_arithmetic_matches_torch(op):
    a_np = np.array([-7, -3, 0, 3, 7])
    b_np = np.array([2, -3, 5, 2, 3])
    for a_val, b_val in [(a_np, b_np), (a_np.astype(np.float32), b_np.astype(np.float32))]:
        a, b, ra, rb = gpucnn.tensor(a_val), gpucnn.tensor(b_val), torch.tensor(a_val), torch.tensor(b_val)
        pairs = {"floordiv": [(a // b, ra // rb), (a // 2, ra // 2), (7 // b, 7 // rb)],
                 "mod": [(a % b, ra % rb), (a % 2, ra % 2), (-7 % b, -7 % rb)],
                 "pow": [(abs(a) ** 2, abs(ra) ** 2), (b ** abs(b), rb ** abs(rb)), (2 ** abs(b), 2 ** abs(rb)),
                         (abs(a) ** 0.5, abs(ra) ** 0.5)],
                 "abs": [(abs(a), abs(ra)), (a.abs(), ra.abs())]}[op]
        for ours, ref in pairs:
            assert ours.dtype == DTYPES[ref.dtype]
            np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)


def test_integer_negative_power_is_an_error():
    with pytest.raises(ValueError, match="negative integer powers"):
        gpucnn.tensor([2]) ** -1


def test_bool_arithmetic_rules():
    t = gpucnn.tensor([True, False])
    assert (t + t).dtype == np.bool_  # as torch: bool + bool stays bool
    with pytest.raises(DtypeError, match="bool"):
        t - t
    with pytest.raises(DtypeError, match="bool"):
        -t
