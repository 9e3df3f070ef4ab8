"""gpucnn.onnx.export (gpucnn/onnx/export.py): every built-in model through ONNX Runtime at two batch
sizes, containers and custom modules traced through, and the errors: what has no ONNX form is named."""
import subprocess
import sys

import numpy as np
import pytest

import gpucnn
from gpucnn import ArgumentError, nn
from gpucnn.models import build_model, list_models
from onnx_testing import check_export, onnx, op_types, randomise_running_stats, run_onnx


@pytest.mark.parametrize("name", list_models())
def test_every_builtin_model(tmp_path, name):
    gpucnn.manual_seed(0)
    model = randomise_running_stats(build_model(name))
    proto = check_export(model, model.input_shape, tmp_path, batches=(2, 5))
    inp, = proto.graph.input
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    names = {i.name for i in proto.graph.initializer}
    assert set(model.state_dict()) - names <= {k for k in model.state_dict() if k.endswith("num_batches_tracked")}
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["gpucnn.name"] == f'"{name}"'


@pytest.mark.parametrize("opset", [13, 21])
@pytest.mark.parametrize("name", list_models())
def test_every_builtin_model_at_the_oldest_and_a_newer_opset(tmp_path, name, opset):
    """The compositions below an operator's opset (Hardswish, Mish, Gelu, LayerNormalization, ...) and
    the operators themselves above it, in every zoo model."""
    gpucnn.manual_seed(0)
    model = randomise_running_stats(build_model(name))
    proto = check_export(model, model.input_shape, tmp_path, batches=(1, 3), opset=opset)
    assert proto.opset_import[0].version == opset


def test_opsets_and_a_fixed_batch(tmp_path):
    gpucnn.manual_seed(0)
    model = randomise_running_stats(build_model("strided-42"))
    for opset in (13, 19, 21):
        proto = check_export(model, (3, 64, 64), tmp_path, opset=opset, name=f"o{opset}")
        assert proto.opset_import[0].version == opset
    proto = check_export(model, (3, 64, 64), tmp_path, batches=(3,), dynamic_batch=False, name="fixed")
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def test_residual_with_and_without_a_shortcut(tmp_path):
    gpucnn.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
                      nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))),
                      nn.Residual(nn.Conv2d(4, 6, 1), shortcut=nn.Conv2d(4, 6, 1, bias=False)),
                      nn.Residual(nn.Identity()))
    randomise_running_stats(m)
    proto = check_export(m, (2, 6, 6), tmp_path)
    assert op_types(proto).count("Add") == 3


class Branches(nn.Module):
    """An Inception-like block: three branches concatenated, a skip, ops between the layers."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU())
        self.c = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(3, 2, 1))
        self.head = nn.Linear(8 * 5 * 5, 3)

    def forward(self, x):
        y = gpucnn.cat([self.a(x), self.b(x), self.c(x)], dim=1)
        y = (y * 0.5 + y.sigmoid()).relu() - y.tanh() / 2
        return gpucnn.functional.log_softmax(self.head(y.reshape(y.shape[0], -1)), -1)


def test_a_custom_multi_branch_module(tmp_path):
    gpucnn.manual_seed(0)
    proto = check_export(Branches(), (3, 5, 5), tmp_path)
    assert {"Concat", "Mul", "Sigmoid", "Relu", "Tanh", "Div", "Sub", "Reshape", "LogSoftmax"} <= set(op_types(proto))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)

    def forward(self, x):
        y = self.body(x)
        return y, gpucnn.functional.softmax(y, 1), x


def test_several_outputs(tmp_path):
    gpucnn.manual_seed(0)
    m = TwoHeads()
    path = tmp_path / "two.onnx"
    proto = gpucnn.onnx.export(m, np.zeros((2, 4), np.float32), path)
    assert [o.name for o in proto.graph.output] == ["output0", "output1", "output2"]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    got = run_onnx(path, x)
    with gpucnn.no_grad():
        ref = [t.numpy() for t in m(gpucnn.tensor(x))]
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_shared_layer_called_twice(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(self.fc(x))

    gpucnn.manual_seed(0)
    proto = check_export(Twice(), (3,), tmp_path)
    assert op_types(proto) == ["Gemm", "Gemm"] and len(proto.graph.initializer) == 2


# -- what cannot be exported ----------------------------------------------------------------------------
class CumSum(nn.Module):
    def forward(self, x):
        return x.cumsum(1)


class FromNumpy(nn.Module):
    def forward(self, x):
        return x + gpucnn.tensor(x.numpy() * 2)


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        y = self.fc(x)
        z = y * 2
        y += 1
        return z + y


@pytest.mark.parametrize("model,match", [
    (lambda: nn.Sequential(nn.Linear(3, 3), CumSum()),
     r"CumSum '1' calls the op 'cumsum' \(CumSum\), which has no ONNX form"),
    (lambda: FromNumpy(), r"FromNumpy \(the model\): add: uses a tensor of shape \(2, 3\) that no exported op computed"),
    (lambda: InPlace(), r"changed in place"),
    (lambda: nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)),
     r"BatchNorm1d '0': has track_running_stats=False"),
])
def test_what_has_no_onnx_form_is_named(model, match):
    with pytest.raises(ArgumentError, match=match):
        gpucnn.onnx.export(model(), np.ones((2, 3), np.float32), None)


def test_bad_arguments(tmp_path):
    m = nn.Linear(3, 2)
    x = np.zeros((2, 3), np.float32)
    for opset in (12, 10 ** 3, "17", True):
        with pytest.raises(ArgumentError, match="opset_version must be an integer from 13"):
            gpucnn.onnx.export(m, x, None, opset_version=opset)
    with pytest.raises(ArgumentError, match="model must be a gpucnn.nn.Module"):
        gpucnn.onnx.export(lambda t: t, x, None)
    with pytest.raises(ArgumentError, match="example_input must be a batch"):
        gpucnn.onnx.export(m, np.float32(1), None)
    with pytest.raises(gpucnn.ShapeError, match="linear: input has 4 features"):
        gpucnn.onnx.export(m, np.zeros((2, 4), np.float32), None)
    assert not (tmp_path / "x.onnx").exists()
    # the hooks and the op recorder are gone after an error
    assert gpucnn.function._recorder is None and not m._forward_hooks and not m._forward_pre_hooks


def test_the_file_is_written_atomically_and_loads(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ArgumentError):
        gpucnn.onnx.export(CumSum(), np.ones((2, 3), np.float32), path)
    assert path.read_bytes() == b"old"
    gpucnn.onnx.export(nn.Linear(3, 2), np.ones((2, 3), np.float32), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_importing_gpucnn_does_not_import_onnx():
    code = "import sys, gpucnn; assert 'onnx' not in sys.modules; gpucnn.onnx.export; assert 'gpucnn.onnx' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
