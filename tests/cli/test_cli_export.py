"""``gpucnn export`` (cli/export.py): ONNX checked by ONNX Runtime, safetensors PyTorch loads, errors as one line."""
import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from cli.export import export
from cli.main import cli
from gpucnn.models import build_model

onnx = pytest.importorskip("onnx")


@pytest.fixture
def app():
    assert cli.commands["export"] is export
    return cli


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="gpucnn")


@pytest.fixture
def saved(tmp_path):
    gpucnn.manual_seed(0)
    model = build_model("strided-42")
    path = tmp_path / "strided.npz"
    gpucnn.save(model, path)
    return path


def test_onnx_of_a_saved_model_checked_by_onnxruntime(app, saved, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    r = invoke(app, "export", saved, "--format", "onnx", "--out", out)
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: opset 17" in r.output and "(N, 3, 64, 64) for any batch size" in r.output
    assert "ONNX Runtime matches gpucnn: max relative difference" in r.output and "at batch 1 and 4" in r.output
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


def test_onnx_options(app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(app, "export", "keras-mnist", "--opset", "19", "--static-batch", "3", "--no-check")
    assert r.exit_code == 0, r.output
    assert "for batch 3 (freshly initialised" in r.output and "ONNX Runtime" not in r.output
    proto = onnx.load("keras-mnist.onnx")
    assert proto.opset_import[0].version == 19
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def test_safetensors_that_pytorch_loads(app, saved, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    out = tmp_path / "w.safetensors"
    r = invoke(app, "export", saved, "--format", "safetensors", "--out", out)
    assert r.exit_code == 0, r.output
    assert "PyTorch: model.load_state_dict(safetensors.torch.load_file(" in r.output
    sd = load_file(str(out))
    assert sd["1.num_batches_tracked"].dtype == torch.int64
    np.testing.assert_array_equal(sd["0.weight"].numpy(), gpucnn.load(saved)[0].weight.numpy())
    assert isinstance(gpucnn.load(out), gpucnn.nn.Sequential)  # and gpucnn rebuilds it from the file alone


def test_errors_are_one_line(app, tmp_path):
    r = invoke(app, "export", tmp_path / "missing.npz")
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "no such file" in r.output
    r = invoke(app, "export", "keras-mnist", "--input-shape", "1,32,32", "--out", tmp_path / "x.onnx")
    assert r.exit_code == 1 and "Error: " in r.output and "linear: input has" in r.output
    r = invoke(app, "export", "keras-mnist", "--format", "safetensors", "--out", tmp_path / "w.bin")
    assert r.exit_code == 1 and "must end in .safetensors" in r.output
    r = invoke(app, "export", "keras-mnist", "--input-shape", "a,b")
    assert r.exit_code == 2 and "not a shape" in r.output
    r = invoke(app, "export", "keras-mnist", "--opset", "11")
    assert r.exit_code == 2


def test_onnx_of_a_model_file_with_the_newer_layers(app, tmp_path):
    """A model file of transposed and causal convs and the newer activations exports and runs in ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    import json
    spec = {"format": "gpucnn-model-spec", "version": 1, "name": "decoder", "input_shape": [2, 8, 8], "layers": [
        {"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "same", "groups": 2},
        {"type": "GELU", "approximate": "tanh"},
        {"type": "ConvTranspose2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2,
         "padding": 1, "output_padding": 1, "groups": 4},
        {"type": "PReLU", "num_parameters": 4},
        {"type": "Conv2d", "in_channels": 4, "out_channels": 2, "kernel_size": 1},
        {"type": "Hardswish"}, {"type": "Flatten"}, {"type": "Linear", "in_features": 512, "out_features": 3},
        {"type": "Softplus", "beta": 2.0, "threshold": 5.0}]}
    path = tmp_path / "decoder.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "decoder.onnx"
    for opset in ("13", "20"):
        r = invoke(app, "export", path, "--out", out, "--opset", opset)
        assert r.exit_code == 0, r.output
        assert "ONNX Runtime matches gpucnn" in r.output
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert {"ConvTranspose", "PRelu", "Softplus"} <= ops
        assert ("Gelu" in ops) == (opset == "20") and ("HardSwish" in ops) == (opset == "20")
