"""The elementwise activations and prelu (gpucnn/functions/activation.py) against PyTorch: values and
gradients in float32 and float64 on cpu and emu, at PyTorch's kinks (its subgradient choices), far out in
the tails (no overflow), in place; float64 gradcheck away from the kinks; bad arguments by name."""
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
from gpucnn import ArgumentError, ShapeError
from gpucnn.functions.activation import ACTIVATIONS
from gpucnn.nn import functional as F
from torch_ref import same

#: (functional name, keyword arguments) covering every definition and every non-default argument
CASES = [
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("leaky_relu", {"negative_slope": -0.5}),
    ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}),
    ("silu", {}), ("mish", {}), ("sigmoid", {}), ("tanh", {}),
    ("hardtanh", {}), ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("relu6", {}),
    ("hardsigmoid", {}), ("hardswish", {}),
    ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 3.0}), ("softplus", {"beta": -1.5}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" if kw else n for n, kw in CASES]

#: the points where some activation is not differentiable (PyTorch picks a one-sided derivative there)
KINKS = [-6.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0, 6.0]


#: torch's float64 kernels that use a float32 constant: hardsigmoid's backward multiplies by (float)1/6
FLOAT64_TOL = {"hardsigmoid": 1e-7}


def points(dtype, seed=0):
    """Random points (away from the kinks) and the kinks themselves, 5x8."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(40 - len(KINKS)) * 3
    return np.concatenate([x, KINKS]).reshape(5, 8).astype(dtype)


def test_every_definition_is_covered():
    assert {n for n, _ in CASES} == {f.__name__ for f in ACTIVATIONS.values()}


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_torch_with_kinks(name, kw, dtype, device):
    # float32: a few ulps of O(1) values (gelu's erf, softplus's stable form round differently);
    # float64: exact formulas evaluated in another order
    tol = 2e-6 if dtype == np.float32 else FLOAT64_TOL.get(name, 1e-13)
    same(lambda x: getattr(F, name)(x, **kw), [points(dtype)], g=lambda x: getattr(TF, name)(x, **kw),
         device=device, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_tails_are_finite_and_match_torch(name, kw):
    x = np.array([-1e4, -300.0, -80.0, -30.0, 30.0, 80.0, 300.0, 1e4], dtype=np.float32)
    out = same(lambda x: getattr(F, name)(x, **kw), [x], g=lambda x: getattr(TF, name)(x, **kw),
               rtol=1e-6, atol=1e-30)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_gradcheck_float64(name, kw):
    x = np.random.default_rng(1).standard_normal(60) * 3
    x = x[np.abs(x[:, None] - np.array(KINKS)).min(axis=1) > 1e-3][:24].reshape(4, 6)  # off the kinks
    assert gpucnn.gradcheck(lambda x: getattr(F, name)(x, **kw), [gpucnn.tensor(x, requires_grad=True)])


def test_float32_stays_float32_and_int_input_is_refused():
    x = gpucnn.tensor(points(np.float32))
    for name, kw in CASES:
        assert getattr(F, name)(x, **kw).dtype == np.float32
    with pytest.raises(ArgumentError, match=r"gelu: input must have a floating-point dtype .* got int64"):
        F.gelu(gpucnn.tensor([1, 2]))


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES if "inplace" in inspect.signature(getattr(F, n)).parameters}))
def test_inplace_matches_torch(name):
    """In place (on a non-leaf, as PyTorch allows): the same tensor comes back holding the result, and
    the gradient through it is torch's."""
    x = points(np.float64, seed=2)

    def ours(a):
        b = a * 1.0
        out = getattr(F, name)(b, inplace=True)
        assert out is b
        return out

    def ref(a):
        b = a * 1.0
        return getattr(TF, name)(b, inplace=True)

    tol = FLOAT64_TOL.get(name, 1e-13)
    same(ours, [x], g=ref, rtol=tol, atol=tol)


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    x = gpucnn.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(gpucnn.AutogradError, match="elu\\(inplace=True\\): a leaf tensor that requires grad"):
        F.elu(x, inplace=True)
    with gpucnn.no_grad():
        F.elu(x, inplace=True)
    np.testing.assert_allclose(x.numpy(), [1.0, np.expm1(-1.0)], rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda x: F.gelu(x, approximate="erf"), r"gelu: approximate must be one of 'none', 'tanh', got 'erf'"),
    (lambda x: F.elu(x, alpha="1"), r"elu: alpha must be a finite number, got '1'"),
    (lambda x: F.leaky_relu(x, float("nan")), r"leaky_relu: negative_slope must be a finite number, got nan"),
    (lambda x: F.silu(x, inplace=1), r"silu: inplace must be True or False, got 1"),
    (lambda x: F.hardtanh(x, 1.0, -1.0), r"hardtanh: min_val \(1\) must not be greater than max_val \(-1\)"),
    (lambda x: F.softplus(x, beta=0), r"softplus: beta must not be 0"),
    (lambda x: F.relu6([1.0]), r"relu6: input must be a gpucnn Tensor, got list"),
])
def test_bad_arguments_name_the_op_and_argument(call, match):
    with pytest.raises(ArgumentError, match=match):
        call(gpucnn.tensor([1.0, -1.0]))


def test_unknown_argument_names_the_op():
    with pytest.raises(TypeError, match=r"elu\(\): .*beta.* \(arguments: input, alpha, inplace\)"):
        F.elu(gpucnn.tensor([1.0]), beta=1.0)


def test_sigmoid_and_tanh_are_the_tensor_methods():
    x = gpucnn.tensor(points(np.float64))
    np.testing.assert_array_equal(F.sigmoid(x).numpy(), x.sigmoid().numpy())
    np.testing.assert_array_equal(F.tanh(x).numpy(), gpucnn.tanh(x).numpy())


# -- prelu ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,n", [((4, 3, 2, 2), 3), ((4, 3, 2, 2), 1), ((5, 3), 3), ((2, 3, 4), 3), ((7,), 1),
                                     ((1, 2, 1, 3), 2)])
def test_prelu_matches_torch(shape, n, dtype, device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::5] = 0.0  # the kink: derivative w, as torch's
    w = rng.uniform(-0.5, 0.5, n).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    same(F.prelu, [x, w], g=torch.prelu, device=device, rtol=tol, atol=tol)


def test_prelu_gradcheck():
    rng = np.random.default_rng(4)
    x = gpucnn.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    for w in ([0.3, -0.2], [0.1]):
        assert gpucnn.gradcheck(F.prelu, [x, gpucnn.tensor(np.array(w), requires_grad=True)])


def test_prelu_bad_weight():
    x = gpucnn.zeros(2, 3)
    with pytest.raises(ShapeError, match=r"prelu: weight has shape \(4,\); expected 1 value or 3 \(one per "
                                         r"channel, dim 1 of the input shape \(2, 3\)\)"):
        F.prelu(x, gpucnn.zeros(4))
    with pytest.raises(ArgumentError, match="prelu: weight has dtype float64, expected float32"):
        F.prelu(x, gpucnn.zeros(3, dtype=gpucnn.float64))
