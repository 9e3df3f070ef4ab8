"""Training routes through our CUDA kernels on `emu` exactly as on `cuda`, and agrees with the NumPy path."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from cli.main import cli
from gpucnn.serialization import load

# conv (with a non-zero padding mode and stride), batch norm, both poolings, dropout and a dense layer: every
# kernel family runs forward and backward.
MODEL = {
    "format": "gpucnn-model-spec", "version": 1, "name": "kernels", "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": "same",
         "padding_mode": "reflect"},
        {"type": "BatchNorm2d", "num_features": 4}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "AvgPool2d", "kernel_size": 2}, {"type": "Flatten"}, {"type": "Dropout", "p": 0.2},
        {"type": "Linear", "in_features": 6, "out_features": 3}],
}


def test_cli_training_on_emu_matches_cpu(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 1, 8, 8)).astype(np.uint8)
    for k in range(3):
        x[y == k, :, 2 * k + 1:2 * k + 3, :] = 220
    np.savez(tmp_path / "bars.npz", x=x, y=y)
    (tmp_path / "m.json").write_text(json.dumps(MODEL))
    weights = {}
    for device in ("cpu", "emu"):
        result = CliRunner().invoke(cli, ["train", "--model", str(tmp_path / "m.json"), "--dataset",
                                          str(tmp_path / "bars.npz"), "--epochs", "2", "--batch-size", "16",
                                          "--device", device, "--out", str(tmp_path / device)])
        assert result.exit_code == 0, result.output
        assert f"device {device}" in result.output
        weights[device] = {k: v.numpy() for k, v in load(tmp_path / device / "model.npz").state_dict().items()}
    # Same seed, same data and the same dropout masks (host generator on cpu and emu): the runs differ only by
    # float32 rounding (kernel vs NumPy summation order) accumulated over 10 SGD steps.
    for name, w in weights["cpu"].items():
        np.testing.assert_allclose(weights["emu"][name], w, rtol=1e-3, atol=1e-4, err_msg=name)
