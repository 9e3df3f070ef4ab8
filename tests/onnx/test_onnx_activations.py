"""Every activation of gpucnn.nn.activation (gpucnn/onnx/activations.py) through ONNX Runtime at two batch
sizes against gpucnn, as a module and as a functional in a model's own forward, at opsets on both sides
of the operators' introductions (HardSwish 14, Mish 18, Gelu 20): native operator or composition."""
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from gpucnn.functions.activation import ACTIVATIONS
from onnx_testing import check_export, op_types

F = gpucnn.functional

#: (module, the operators its graph must use at opset 17, at opset 20 where they differ)
CASES = [
    (lambda: nn.LeakyReLU(), ["LeakyRelu"], None),
    (lambda: nn.LeakyReLU(0.3), ["LeakyRelu"], None),
    (lambda: nn.ELU(), ["Elu"], None),
    (lambda: nn.ELU(alpha=0.5), ["Elu"], None),
    (lambda: nn.SELU(), ["Selu"], None),
    (lambda: nn.GELU(), ["Erf"], ["Gelu"]),
    (lambda: nn.GELU(approximate="tanh"), ["Tanh"], ["Gelu"]),
    (lambda: nn.SiLU(), ["Mul", "Sigmoid"], None),
    (lambda: nn.Mish(), ["Mish"], None),
    (lambda: nn.Hardtanh(), ["Clip"], None),
    (lambda: nn.Hardtanh(-2.0, 0.5), ["Clip"], None),
    (lambda: nn.ReLU6(), ["Clip"], None),
    (lambda: nn.Hardsigmoid(), ["HardSigmoid"], None),
    (lambda: nn.Hardswish(), ["HardSwish"], None),
    (lambda: nn.Softplus(), ["Softplus", "Where"], None),
    (lambda: nn.Softplus(beta=2.0, threshold=3.0), ["Softplus", "Where"], None),
    (lambda: nn.Softplus(beta=0.5, threshold=1.0), ["Softplus", "Where"], None),
    (lambda: nn.Sigmoid(), ["Sigmoid"], None),
    (lambda: nn.Tanh(), ["Tanh"], None),
]


class Scaled(nn.Module):
    """The activation on inputs spread over its interesting range (kinks at 0, -3/3, 6, thresholds)."""

    def __init__(self, act, scale=4.0):
        super().__init__()
        self.act, self.scale = act, scale

    def forward(self, x):
        return self.act(x * self.scale)


def test_every_activation_module_is_covered():
    names = {type(make()).__name__ for make, _, _ in CASES}
    assert set(ACTIVATIONS) <= names, f"no ONNX test for {sorted(set(ACTIVATIONS) - names)}"


@pytest.mark.parametrize("opset", [13, 17, 20])
@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c[0]()))
def test_activation_module(tmp_path, opset, case):
    make, ops17, ops20 = case
    proto = check_export(Scaled(make()), (3, 5, 4), tmp_path, opset=opset)
    ops = op_types(proto)
    name = type(make()).__name__
    if name == "Hardswish" and opset < 14:
        assert "HardSwish" not in ops and "HardSigmoid" in ops
    elif name == "Mish" and opset < 18:
        assert "Mish" not in ops and {"Softplus", "Tanh"} <= set(ops)
    else:
        want = ops20 if ops20 is not None and opset >= 20 else ops17
        assert set(want) <= set(ops), ops
    if name == "GELU" and opset < 20:
        assert "Gelu" not in ops


def test_values_at_the_kinks(tmp_path):
    """Exactly at 0, +-3, 6 and the thresholds, where a branch could go the other way."""
    class Grid(nn.Module):
        def __init__(self, acts):
            super().__init__()
            self.acts = nn.ModuleList(acts)

        def forward(self, x):
            return gpucnn.cat([a(x) for a in self.acts], dim=1)

    acts = [make() for make, _, _ in CASES]
    grid = np.array([-30, -6, -3, -1, -0.5, 0, 0.5, 1, 1.5, 3, 6, 7, 10, 20, 25, 40], np.float32)
    m = Grid(acts)
    path = tmp_path / "grid.onnx"
    gpucnn.onnx.export(m, grid[None], path)
    from onnx_testing import run_onnx
    got, = run_onnx(path, grid[None])
    with gpucnn.no_grad():
        ref = m(gpucnn.tensor(grid[None])).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_softplus_takes_x_itself_above_the_threshold(tmp_path):
    # beta * x > threshold gives x exactly (not log1p(exp(beta x)) / beta, which differs by exp(-threshold))
    m = nn.Softplus(beta=1.0, threshold=1.0)
    x = np.array([[0.5, 1.0, 1.01, 2.0, 5.0]], np.float32)
    path = tmp_path / "sp.onnx"
    gpucnn.onnx.export(m, x, path)
    from onnx_testing import run_onnx
    got, = run_onnx(path, x)
    assert got[0, 2:].tolist() == x[0, 2:].tolist()
    assert got[0, 1] == pytest.approx(math.log1p(math.e), rel=1e-6)


def test_inplace_activation_modules(tmp_path):
    gpucnn.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2, inplace=True), nn.Linear(6, 6), nn.ELU(inplace=True),
                      nn.Linear(6, 3), nn.Hardswish(inplace=True))
    assert op_types(check_export(m, (4,), tmp_path)) == ["Gemm", "LeakyRelu", "Gemm", "Elu", "Gemm", "HardSwish"]


class Functionals(nn.Module):
    """The functionals called in a model's own forward (op converters, not layer converters)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.slope = nn.Parameter(np.array([0.1, 0.2, 0.3], np.float32))

    def forward(self, x):
        y = self.conv(x)
        y = F.gelu(y, approximate="tanh") + F.silu(y) - F.mish(y) * F.hardsigmoid(y)
        y = F.softplus(y, beta=3.0, threshold=2.0) + F.elu(y, 0.7) + F.leaky_relu(y, 0.05) + F.selu(y)
        y = F.hardtanh(y, -1.5, 2.5) + F.relu6(y * 3) + F.hardswish(y) + F.sigmoid(y) * F.tanh(y)
        return F.prelu(y, self.slope) + F.gelu(y)


@pytest.mark.parametrize("opset", [13, 20])
def test_functionals_between_layers(tmp_path, opset):
    gpucnn.manual_seed(0)
    check_export(Functionals(), (2, 5, 6), tmp_path, opset=opset)


@pytest.mark.parametrize("num_parameters,shape", [(1, (3, 5, 4)), (3, (3, 5, 4)), (3, (3, 7)), (4, (4,)),
                                                  (1, (2, 9))])
def test_prelu(tmp_path, num_parameters, shape):
    m = nn.PReLU(num_parameters)
    m.weight.data[...] = np.linspace(-0.5, 0.7, num_parameters)
    proto = check_export(Scaled(m), shape, tmp_path)
    assert "PRelu" in op_types(proto)
    assert "act.weight" in {i.name for i in proto.graph.initializer}  # under its state_dict name


@pytest.mark.parametrize("opset", [13, 20])
def test_float64_model(opset):
    """Constants follow the model's dtype (a float32 constant in a float64 graph fails the full check).
    ONNX Runtime's CPU kernels of Conv, Erf, PRelu, ... are float32 only, so the float64 graph runs in
    onnx's reference evaluator (NumPy), against gpucnn in float64."""
    from onnx.reference import ReferenceEvaluator
    gpucnn.manual_seed(0)
    m = nn.Sequential(nn.Conv1d(3, 3, 1), *[make() for make, _, _ in CASES], nn.PReLU(3)).to(dtype=gpucnn.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)) * 3
    proto = gpucnn.onnx.export(m, x, None, opset_version=opset)
    assert proto.graph.input[0].type.tensor_type.elem_type == 11  # DOUBLE
    got, = ReferenceEvaluator(proto).run(None, {"input": x})
    with gpucnn.no_grad():
        ref = m(gpucnn.tensor(x)).numpy()
    assert got.dtype == np.float64
    # (ONNX float attributes (LeakyRelu alpha, Selu gamma, HardSigmoid 1/6) are float32: ~1e-8 relative)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)


def test_an_inplace_functional_is_named():
    """F.elu(y, inplace=True) in a model's own forward overwrites y: an error, not a graph without it (the
    modules' inplace=True exports: their output is followed)."""
    class InPlaceElu(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return F.elu(self.fc(x), inplace=True)

    with pytest.raises(gpucnn.ArgumentError, match="changed in place"):
        gpucnn.onnx.export(InPlaceElu(), np.ones((2, 3), np.float32), None)
