"""`gpucnn train --amp fp16|bf16` and Trainer(amp=...): the forward runs under autocast (16-bit
activations, float32 weights), float16 scales the loss with a GradScaler whose state is in the checkpoint
(--resume continues bit for bit), skipped steps are counted per epoch and printed; bf16 needs no scaler."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from cli.main import cli
from gpucnn.errors import ArgumentError
from gpucnn.serialization import load
from gpucnn.training import RunConfig, Trainer
from gpucnn.training.checkpoint import load_checkpoint
from toydata import make_images

TINY = {"format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 8, 8],
        "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
                   {"type": "BatchNorm2d", "num_features": 4}, {"type": "ReLU"},
                   {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
                   {"type": "Linear", "in_features": 64, "out_features": 3}]}


@pytest.fixture
def files(tmp_path):
    x, y = make_images(120)
    np.savez(tmp_path / "bars.npz", x=x, y=y)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="gpucnn")


def train(files, out, *extra):
    return invoke("train", "--model", files / "tiny.json", "--dataset", files / "bars.npz", "--batch-size", 16,
                  "--lr", 0.1, "--out", out, *extra)


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_runs_records_and_resumes_bit_for_bit(files, amp):
    straight = train(files, files / "a", "--epochs", 4, "--amp", amp)
    assert straight.exit_code == 0, straight.output
    header = {"fp16": "amp fp16 (autocast float16, loss scaling)", "bf16": "amp bf16 (autocast bfloat16)"}[amp]
    assert header in straight.stdout
    assert ("steps skipped (loss scale" in straight.stdout) == (amp == "fp16")
    metrics = json.loads((files / "a" / "metrics.json").read_text())
    assert metrics["config"]["run_config"]["amp"] == amp
    assert metrics["amp"]["dtype"] == {"fp16": "float16", "bf16": "bfloat16"}[amp]
    assert metrics["amp"]["loss_scaling"] == (amp == "fp16")
    assert len(metrics["history"]["skipped_steps"]) == 4
    state = load_checkpoint(files / "a")
    assert ("grad_scaler" in state) == (amp == "fp16")
    model = load(files / "a" / "model.npz")
    assert all(p.dtype == np.float32 for p in model.parameters())  # float32 master weights

    Trainer.from_config(RunConfig.from_dict(state["config"]["run_config"]), out_dir=files / "b",
                        verbose=0).fit(until_epoch=2)
    resumed = invoke("train", "--resume", files / "b")
    assert resumed.exit_code == 0, resumed.output
    b = load(files / "b" / "model.npz")
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()), ka
    ha, hb = (json.loads((files / d / "metrics.json").read_text()) for d in ("a", "b"))
    assert ha["history"]["loss"] == hb["history"]["loss"] and ha["amp"] == hb["amp"]
    if amp == "fp16":
        assert load_checkpoint(files / "b")["grad_scaler"] == load_checkpoint(files / "a")["grad_scaler"]


def test_overflowing_float16_gradients_skip_every_step_and_back_the_scale_off(files):
    """A loss of 1e30 * cross-entropy is finite in float32, but its gradients overflow float16 at any scale
    >= 1: every step is skipped (the weights stay), each halves the scale, and the count is reported."""
    x, y = make_images(48)
    model = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(64, 3))
    before = [p.numpy().copy() for p in model.parameters()]
    loss_fn = lambda logits, t: gpucnn.nn.functional.cross_entropy(logits, t) * 1e30  # noqa: E731
    trainer = Trainer(model, gpucnn.optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=2, batch_size=16,
                      verbose=0, amp="fp16", loss_fn=loss_fn)
    trainer.fit()
    assert trainer.history["skipped_steps"] == [3, 3]
    assert trainer.scaler.get_scale() == 2.0 ** 16 * 0.5 ** 6
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_bad_amp_values_are_refused(files):
    result = train(files, files / "x", "--amp", "fp8")
    assert result.exit_code == 2 and "Invalid value for '--amp'" in result.output and "'fp16'" in result.output
    model = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(64, 3))
    with pytest.raises(ArgumentError, match="amp must be one of fp16, bf16 .* got 'float32'"):
        Trainer(model, gpucnn.optim.SGD(model.parameters(), lr=0.1), make_images(8), verbose=0, amp="float32")
    with pytest.raises(ArgumentError, match="unknown amp 'half'; choose one of fp16, bf16"):
        RunConfig(amp="half").validate()


def test_a_float32_checkpoint_does_not_resume_as_fp16(files):
    assert train(files, files / "f", "--epochs", 1).exit_code == 0
    state = load_checkpoint(files / "f")
    cfg = RunConfig.from_dict({**state["config"]["run_config"], "amp": "fp16"})
    trainer = Trainer.from_config(cfg, out_dir=files / "g", verbose=0)
    with pytest.raises(gpucnn.ModelFormatError, match="no loss-scaler state but this run trains with float16"):
        trainer.load_checkpoint(files / "f")
