"""`gpucnn train --clip-grad-norm X --label-smoothing X --warmup-epochs N`: the run uses them (clipped
gradients, the smoothed loss, SequentialLR(LinearLR, schedule) lrs per epoch), records them in
metrics.json, survives --resume bit for bit, and refuses bad values with a one-line error. Also
ReduceLROnPlateau in a Trainer (stepped with the monitored loss)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from cli.main import cli
from gpucnn.serialization import load
from gpucnn.training import RunConfig, Trainer
from gpucnn.training.checkpoint import load_checkpoint
from toydata import make_images

TINY = {"format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 8, 8],
        "layers": [{"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 8},
                   {"type": "GELU"}, {"type": "Linear", "in_features": 8, "out_features": 3}]}
OPTIONS = ["--clip-grad-norm", 0.5, "--label-smoothing", 0.1, "--warmup-epochs", 2, "--schedule", "cosine"]


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


def test_options_are_used_recorded_and_survive_resume(files, monkeypatch):
    import gpucnn.nn.utils as utils

    norms = []
    real = utils.clip_grad_norm_

    def spy(parameters, max_norm, *a, **k):
        params = list(parameters)
        total = real(params, max_norm, *a, **k)
        after = np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params if p.grad is not None))
        norms.append((float(total.item()), after, max_norm))
        return total

    monkeypatch.setattr(utils, "clip_grad_norm_", spy)
    straight = train(files, files / "a", "--epochs", 5, *OPTIONS)
    assert straight.exit_code == 0, straight.output
    assert "after a 2-epoch linear warm-up, gradient norm clipped at 0.5, label smoothing 0.1" in straight.stdout
    assert norms and len(norms) % 5 == 0  # (once a step, every epoch)
    assert all(m == 0.5 and after <= 0.5 * (1 + 1e-5) for _, after, m in norms)
    assert any(total > 0.5 for total, _, _ in norms)  # (it did clip)
    metrics = json.loads((files / "a" / "metrics.json").read_text())
    cfg = metrics["config"]["run_config"]
    assert (cfg["clip_grad_norm"], cfg["label_smoothing"], cfg["warmup_epochs"]) == (0.5, 0.1, 2)
    # warm-up 0.1/3, 0.2/3, then cosine over the remaining 3 epochs: 0.1, 0.075, 0.025
    np.testing.assert_allclose(metrics["history"]["lr"], [0.1 / 3, 0.2 / 3, 0.1, 0.075, 0.025], rtol=1e-12)

    # the same run stopped after epoch 3 through the library, resumed from the command line
    Trainer.from_config(RunConfig.from_dict(load_checkpoint(files / "a")["config"]["run_config"]),
                        out_dir=files / "b", verbose=0).fit(until_epoch=3)
    resumed = invoke("train", "--resume", files / "b")
    assert resumed.exit_code == 0, resumed.output
    a, b = load(files / "a" / "model.npz"), load(files / "b" / "model.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()), ka
    ha, hb = (json.loads((files / d / "metrics.json").read_text())["history"] for d in ("a", "b"))
    assert ha["loss"] == hb["loss"] and ha["lr"] == hb["lr"]


def test_label_smoothing_is_the_loss(files):
    cfg = RunConfig(model=str(files / "tiny.json"), dataset=str(files / "bars.npz"), label_smoothing=0.2, epochs=1)
    trainer = Trainer.from_config(cfg, verbose=0)
    x = gpucnn.randn(4, 3)
    y = gpucnn.tensor([0, 1, 2, 0])
    assert trainer.loss_fn(x, y).item() == pytest.approx(gpucnn.nn.functional.cross_entropy(
        x, y, label_smoothing=0.2).item())
    assert Trainer.from_config(RunConfig(model=str(files / "tiny.json"), dataset=str(files / "bars.npz")),
                               verbose=0).loss_fn is gpucnn.functional.cross_entropy


def test_warmup_without_a_schedule_holds_the_lr(files):
    out = train(files, files / "w", "--epochs", 4, "--warmup-epochs", 2)
    assert out.exit_code == 0, out.output
    lrs = json.loads((files / "w" / "metrics.json").read_text())["history"]["lr"]
    np.testing.assert_allclose(lrs, [0.1 / 3, 0.2 / 3, 0.1, 0.1], rtol=1e-12)


@pytest.mark.parametrize("extra,fragment", [
    (["--epochs", 2, "--warmup-epochs", 2], "warmup-epochs (2) must be fewer than the epochs (2)"),
    (["--warmup-epochs", 1, "--schedule", "onecycle"], "cannot be combined with the onecycle schedule"),
])
def test_bad_combinations_are_one_line_errors(files, extra, fragment):
    result = train(files, files / "x", *extra)
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [["--clip-grad-norm", 0], ["--label-smoothing", 1.5], ["--warmup-epochs", -1]])
def test_out_of_range_values_are_usage_errors(files, extra):
    assert train(files, files / "x", *extra).exit_code == 2


def test_resume_refuses_the_new_options(files):
    assert train(files, files / "r", "--epochs", 1).exit_code == 0
    result = invoke("train", "--resume", files / "r", "--label-smoothing", 0.1)
    assert result.exit_code == 2 and "--label-smoothing" in result.output


def test_reduce_lr_on_plateau_in_a_trainer(files):
    x, y = make_images(64)
    gpucnn.manual_seed(0)
    model = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(64, 3))
    opt = gpucnn.optim.SGD(model.parameters(), lr=1e-3)  # (slow: no epoch halves the loss)
    sched = gpucnn.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, threshold=0.5)
    history = Trainer(model, opt, (x, y), epochs=4, scheduler=sched, verbose=0).fit()
    # (the lr each epoch started with: epoch 1 sets the best loss, each later one falls short of half of it)
    np.testing.assert_allclose(history["lr"], [1e-3, 1e-3, 1e-4, 1e-5], rtol=1e-12)
