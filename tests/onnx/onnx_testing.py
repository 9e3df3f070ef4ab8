"""What every ONNX test does: export, the onnx checker (full), ONNX Runtime's CPU output against gpucnn's
inference output at two batch sizes."""
import numpy as np
import pytest

import gpucnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

#: the issue's bound: ONNX Runtime vs gpucnn, relative to the output's largest magnitude (float32 sums
#: in another order differ by a few ulps of that)
RTOL = 1e-4


def randomise_running_stats(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = rng.standard_normal(b.shape)
        elif name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 2.0, b.shape)
    return model


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def check_export(model, sample_shape, tmp_path, batches=(2, 5), opset=17, dynamic_batch=True, seed=0, name="m"):
    """Export ``model`` for inputs of ``sample_shape`` (without the batch), check the file with the onnx
    checker and compare ONNX Runtime with gpucnn at each batch size; returns the ModelProto."""
    rng = np.random.default_rng(seed)
    path = tmp_path / f"{name}.onnx"
    example = rng.standard_normal((batches[0],) + tuple(sample_shape)).astype(np.float32)
    proto = gpucnn.onnx.export(model, example, path, opset_version=opset, dynamic_batch=dynamic_batch)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    model.eval()
    for n in batches if dynamic_batch else batches[:1]:
        x = rng.standard_normal((n,) + tuple(sample_shape)).astype(np.float32)
        with gpucnn.no_grad():
            ref = model(gpucnn.tensor(x)).numpy()
        got, = run_onnx(path, x)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        scale = max(float(np.abs(ref).max()), 1e-30)
        err = float(np.abs(got.astype(np.float64) - ref).max()) / scale
        assert err <= RTOL, f"batch {n}: max |onnxruntime - gpucnn| / max |gpucnn| = {err:.3g}"
    return proto


def op_types(proto):
    return [n.op_type for n in proto.graph.node]
