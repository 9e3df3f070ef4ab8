"""Elementwise math and matmul (gpucnn/functions/math.py): forward, backward and dtypes against PyTorch,
plus float64 finite differences (gpucnn.gradcheck) for the ops whose backward is ours."""
import numpy as np
import pytest
import torch

import gpucnn
from torch_ref import same

RNG = np.random.default_rng(5)
X = RNG.standard_normal((3, 4))
POS = RNG.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize("name", ["exp", "log", "log1p", "sqrt", "abs", "sign", "sigmoid", "tanh", "relu", "neg"])
def test_unary_ops_match_torch(name):
    data = POS if name in ("log", "sqrt", "log1p") else X
    same(lambda x: getattr(x, name)(), [data])
    x = gpucnn.tensor(data, requires_grad=True)
    if name != "sign":
        assert gpucnn.gradcheck(lambda t: getattr(t, name)(), [x])


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sigmoid", "tanh"])
def test_unary_ops_of_integers_give_the_default_float(name):
    ours, ref = getattr(gpucnn.tensor([1, 2]), name)(), getattr(torch.tensor([1, 2]), name)()
    assert ours.dtype == np.float32 and ref.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)


def test_sigmoid_does_not_overflow():
    same(lambda x: x.sigmoid(), [np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow", "mod"])
def test_binary_ops_with_broadcasting_match_torch(op):
    b = POS[:1] if op in ("truediv", "pow", "mod") else X[:1]
    a = POS if op == "pow" else X
    f = lambda x, y: getattr(x, f"__{op}__")(y)  # noqa: E731
    if op == "mod":  # torch has no derivative of remainder for its divisor: compare that one by gradcheck only
        same(lambda x: x % gpucnn.tensor(b), [a], g=lambda x: x % torch.tensor(b))
    else:
        same(f, [a, b])
    same(lambda x: getattr(x, f"__{op}__")(1.5), [a])
    same(lambda x: getattr(x, f"__r{op}__")(1.5), [POS if op in ("truediv", "pow", "mod") else a], grad=op != "mod")
    assert gpucnn.gradcheck(f, [gpucnn.tensor(a, requires_grad=True), gpucnn.tensor(b, requires_grad=True)])


def test_add_sub_alpha_and_div_rounding_modes_match_torch():
    same(lambda x, y: x.add(y, alpha=2.5), [X, X[0]])
    same(lambda x, y: x.sub(y, alpha=-1), [X, X[0]])
    a, b = np.array([-7, 7, -8, 9]), np.array([2, -2, 3, 4])
    for mode in ("trunc", "floor"):
        for x, y in ((a, b), (a.astype(np.float32), b.astype(np.float32))):
            ours = gpucnn.tensor(x).div(gpucnn.tensor(y), rounding_mode=mode)
            ref = torch.tensor(x).div(torch.tensor(y), rounding_mode=mode)
            assert ours.dtype == np.dtype(str(ref.dtype).replace("torch.", "")) and ours.tolist() == ref.tolist()
    with pytest.raises(ValueError, match="rounding_mode"):
        gpucnn.tensor(a).div(2, rounding_mode="round")


def test_pow_tensor_exponent_and_scalar_base():
    same(lambda x, y: x ** y, [POS, X])
    same(lambda y: 2.0 ** y, [X])
    same(lambda x: x.pow(3), [X])


@pytest.mark.parametrize("kwargs", [{"min": -0.5}, {"max": 0.3}, {"min": -0.2, "max": 0.4}])
def test_clamp_matches_torch(kwargs):
    same(lambda x: x.clamp(**kwargs), [X])
    same(lambda x: x.clip(**kwargs), [X])


def test_clamp_with_tensor_bounds_and_int_input():
    lo, hi = X[:1] - 0.5, X[:1] + 0.5
    same(lambda x, a, b: x.clamp(a, b), [X, lo, hi])
    i = gpucnn.tensor([-3, 0, 3]).clamp(-1, 1)
    assert i.dtype == np.int64 and i.tolist() == [-1, 0, 1]
    f = gpucnn.tensor([-3, 0, 3]).clamp(max=0.5)
    assert f.dtype == np.float32 and f.tolist() == [-3.0, 0.0, 0.5]  # promoted, as torch.clamp does
    with pytest.raises(ValueError, match="at least one"):
        gpucnn.tensor([1.0]).clamp()


def test_maximum_minimum_ties_split_the_gradient_like_torch():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 3.0, 2.0])
    same(lambda x, y: gpucnn.maximum(x, y), [a, b], g=torch.maximum)
    same(lambda x, y: gpucnn.minimum(x, y), [a, b], g=torch.minimum)


@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((2, 3, 4), (4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))])
def test_matmul_broadcasting_matches_torch(sa, sb):
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    same(lambda x, y: x @ y, [a, b])
    same(lambda x, y: gpucnn.matmul(x, y), [a, b], g=torch.matmul)


def test_matmul_misaligned_is_a_shape_error():
    with pytest.raises(gpucnn.ShapeError, match="not aligned"):
        gpucnn.tensor(X) @ gpucnn.tensor(X)


def test_float_checks_and_comparisons():
    data = np.array([1.0, np.nan, np.inf, -np.inf])
    t, r = gpucnn.tensor(data), torch.tensor(data)
    for name in ("isnan", "isfinite", "isinf"):
        assert getattr(t, name)().tolist() == getattr(r, name)().tolist()
    a = gpucnn.tensor([1.0, 2.0])
    assert a.allclose(a + 1e-9) and not a.allclose(a + 1e-3) and gpucnn.allclose(a, a)
    assert a.equal(gpucnn.tensor([1.0, 2.0])) and not a.equal(gpucnn.tensor([1.0, 2.0, 3.0]))
    assert not a.equal(gpucnn.tensor([1.0, 2.5]))


def test_relu_inplace_argument():
    x = gpucnn.tensor([-1.0, 2.0])
    y = gpucnn.functional.relu(x, inplace=True)
    assert y is x and x.tolist() == [0.0, 2.0]
    z = gpucnn.tensor([-1.0, 2.0])
    assert gpucnn.functional.relu(z) is not z and z.tolist() == [-1.0, 2.0]


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_elementwise_ops_on_every_numpy_device(device):
    x = gpucnn.tensor(X, device=device, requires_grad=True)
    y = (x.sigmoid() * 2 + x.clamp(-0.5, 0.5) - x.tanh() / 3) ** 2
    y.sum().backward()
    ref = torch.tensor(X, requires_grad=True)
    ((ref.sigmoid() * 2 + ref.clamp(-0.5, 0.5) - ref.tanh() / 3) ** 2).sum().backward()
    assert y.device == device
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-10)
