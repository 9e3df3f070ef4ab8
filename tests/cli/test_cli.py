"""The ``gpucnn`` click app, in-process through click's CliRunner."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from gpucnn.serialization import load
from gpucnn.training import load_checkpoint
from toydata import make_images



TINY_MODEL = {
    "format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": "same"},
        {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
        {"type": "Dropout", "p": 0.25}, {"type": "Linear", "in_features": 64, "out_features": 3}],
}


@pytest.fixture
def files(tmp_path):
    x, y = make_images(300)
    np.savez(tmp_path / "bars.npz", x=x, y=y, classes=np.array(["top", "middle", "bottom"]))
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_MODEL))
    return tmp_path


def invoke(*args, **kw):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="gpucnn", **kw)
    return result


def train_args(files, out, *extra):
    return ["train", "--model", files / "tiny.json", "--dataset", files / "bars.npz", "--batch-size", 16,
            "--out", out, *extra]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in err, (f, err)


# -- train ------------------------------------------------------------------------------------------------
def test_train_tiny_run(files):
    out = files / "run"
    result = invoke(*train_args(files, out, "--epochs", 2, "--confusion-matrix"))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "dataset: " in text and "240 train / 60 test" in text
    assert "model: " in text and "parameters" in text
    assert "epoch 1/2" in text and "epoch 2/2" in text and "val_acc" in text and "img/s" in text
    assert "test accuracy: " in text
    assert "confusion matrix" in text and "middle" in text
    for name in ("model.npz", "checkpoint.npz", "metrics.json", "curves.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert load_checkpoint(out)["config"]["run_config"]["confusion_matrix"] is True
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8


def test_default_output_directory_is_not_overwritten(files, monkeypatch):
    monkeypatch.chdir(files)
    args = ["train", "--model", "tiny.json", "--dataset", "bars.npz", "--epochs", 1]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert (files / "runs" / "tiny" / "checkpoint.npz").is_file()
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "runs/tiny already holds a run; writing to runs/tiny-2" in second.stdout
    assert (files / "runs" / "tiny-2" / "checkpoint.npz").is_file()


def test_explicit_out_holding_a_run_needs_resume(files):
    out = files / "run"
    assert invoke(*train_args(files, out, "--epochs", 1)).exit_code == 0
    again = invoke(*train_args(files, out, "--epochs", 1))
    assert again.exit_code == 2 and "--resume" in again.stderr


def test_resume_continues_bit_identically(files):
    straight = invoke(*train_args(files, files / "a", "--epochs", 3, "--augment", "--schedule", "step"))
    assert straight.exit_code == 0, straight.output
    # run b is the same 3-epoch run; pretend it stopped after epoch 1 by cutting it short through the
    # library, then resume it from the command line
    from gpucnn.training import RunConfig, Trainer
    cfg = load_checkpoint(files / "a")["config"]["run_config"]
    Trainer.from_config(RunConfig.from_dict(cfg), out_dir=files / "b", verbose=0).fit(until_epoch=1)
    resumed = invoke("train", "--resume", files / "b")
    assert resumed.exit_code == 0, resumed.output
    assert "1 of 3 epochs done; continuing with epoch 2" in resumed.stdout
    assert "epoch 1/3" not in resumed.stdout and "epoch 3/3" in resumed.stdout
    a, b = load(files / "a" / "model.npz"), load(files / "b" / "model.npz")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()), ka
    ha, hb = (json.loads((files / d / "metrics.json").read_text())["history"] for d in ("a", "b"))
    assert ha["epoch"] == hb["epoch"] == [1, 2, 3] and ha["loss"] == hb["loss"]


def test_resume_extends_epochs_and_rejects_other_options(files):
    out = files / "run"
    assert invoke(*train_args(files, out, "--epochs", 1)).exit_code == 0
    bad = invoke("train", "--resume", out, "--lr", 0.1)
    assert bad.exit_code == 2 and "--lr" in bad.stderr
    more = invoke("train", "--resume", out, "--epochs", 2)
    assert more.exit_code == 0, more.output
    assert "epoch 2/2" in more.stdout
    assert load_checkpoint(out)["epoch"] == 2
    missing = invoke("train", "--resume", files / "nothing-here")
    assert_one_line_error(missing, "no checkpoint")


def test_limit_and_standardize_and_val_fraction(files):
    result = invoke(*train_args(files, files / "r", "--epochs", 1, "--limit", 100, "--normalize", "standardize",
                                "--val-fraction", 0.2, "--optimizer", "adam", "--lr", 0.01))
    assert result.exit_code == 0, result.output
    assert "100 of them used" in result.stdout
    assert "standardize (mean" in result.stdout
    assert "validation: 20 images held out" in result.stdout
    meta = load(files / "r" / "model.npz").metadata
    assert meta["transform"]["type"] == "Compose"


def test_patience_early_stopping_from_the_cli(files):
    # lr 0: the weights never change, so the validation loss never improves after epoch 1
    result = invoke(*train_args(files, files / "r", "--epochs", 10, "--patience", 2, "--optimizer", "sgd",
                                "--lr", 1e-30))
    assert result.exit_code == 0, result.output
    assert "early stopping" in result.stdout
    assert "epoch 3/10" in result.stdout and "epoch 4/10" not in result.stdout
    # validation is the test split: early stopping would pick the epoch on the test images
    assert "warning: early stopping watches the validation loss, and validation is the test split" in result.stdout
    assert "--val-fraction" in result.stdout


def test_patience_with_val_fraction_stops_on_a_hold_out_and_tests_at_the_end(files):
    result = invoke(*train_args(files, files / "r", "--epochs", 10, "--patience", 2, "--optimizer", "sgd",
                                "--lr", 1e-30, "--val-fraction", 0.2))
    assert result.exit_code == 0, result.output
    assert "validation: 48 images held out of the training split (0.2)" in result.stdout
    assert "192 train / 60 test" in result.stdout
    assert "warning" not in result.stdout and "early stopping" in result.stdout
    metrics = json.loads((files / "r" / "metrics.json").read_text())
    assert metrics["test"]["images"] == 60  # the test split: evaluated once, at the end
    assert metrics["history"]["val_loss"][0] != metrics["test"]["loss"]  # validation was not the test split


# -- errors ---------------------------------------------------------------------------------------------
def test_wrong_channel_count_is_one_line(files):
    x, y = make_images(50, channels=3)
    np.savez(files / "rgb.npz", x=x, y=y)
    result = invoke("train", "--model", files / "tiny.json", "--dataset", files / "rgb.npz", "--out", files / "r")
    assert_one_line_error(result, "Conv2d", "3 channels", "expected 1", "3x8x8", "1x8x8")
    assert not (files / "r").exists()  # the empty output directory it created is removed again


def write_model(files, name, *layers):
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": list(layers)}
    (files / name).write_text(json.dumps(spec))
    return files / name


def test_kernel_larger_than_the_padded_input_is_one_line(files):
    model = write_model(files, "big-kernel.json",
                        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 9},
                        {"type": "Flatten"}, {"type": "Linear", "in_features": 2, "out_features": 3})
    result = invoke("train", "--model", model, "--dataset", files / "bars.npz", "--out", files / "r")
    assert_one_line_error(result, "Conv2d #0", "kernel 9x9", "larger than the padded input 8x8")


def test_wrong_rank_is_one_line(files):
    # A Conv1d model takes (N, C, L); image batches are (N, C, H, W).
    model = write_model(files, "conv1d.json",
                        {"type": "Conv1d", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
                        {"type": "Flatten"}, {"type": "Linear", "in_features": 12, "out_features": 3})
    result = invoke("train", "--model", model, "--dataset", files / "bars.npz", "--out", files / "r")
    assert_one_line_error(result, "Conv1d #0", "expected a 3-D (N, C, L) input, got rank 4", "(1, 1, 8, 8)")


def test_debug_shows_the_traceback(files):
    x, y = make_images(50, channels=3)
    np.savez(files / "rgb.npz", x=x, y=y)
    result = invoke("--debug", "train", "--model", files / "tiny.json", "--dataset", files / "rgb.npz",
                    "--out", files / "r")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ShapeError" in result.stderr


def test_unknown_model_lists_the_valid_names(files):
    result = invoke("train", "--model", "no-such-net", "--out", files / "r")
    assert_one_line_error(result, "no-such-net", "keras-mnist", "resnet-cifar")


def test_unknown_dataset_lists_the_valid_names(files):
    result = invoke("train", "--model", files / "tiny.json", "--dataset", "no-such-data", "--out", files / "r")
    assert_one_line_error(result, "no-such-data", "digits", "mnist", "cifar10")


def test_non_integer_labels(files):
    x, _ = make_images(50)
    np.savez(files / "floaty.npz", x=x, y=np.linspace(0, 2, 50))
    result = invoke(*train_args(files, files / "r", "--epochs", 1)[:3], "--dataset", files / "floaty.npz",
                    "--out", files / "r")
    assert_one_line_error(result, "floaty.npz", "integer")


def test_nan_loss_from_the_cli(files):
    # two stacked linear layers and a huge learning rate: the weights blow up geometrically until the
    # loss overflows (a ReLU net can instead "die" with a finite loss)
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": [
        {"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 16},
        {"type": "Linear", "in_features": 16, "out_features": 3}]}
    (files / "linear2.json").write_text(json.dumps(spec))
    out = files / "r"
    result = invoke("train", "--model", files / "linear2.json", "--dataset", files / "bars.npz", "--lr", 1e6,
                    "--epochs", 5, "--out", out)
    assert_one_line_error(result, "learning rate (1e+06) is too high", "--lr 100000")
    match = re.search(r"became (nan|inf) at epoch (\d+), step (\d+)/(\d+)", result.stderr)
    assert match, result.stderr
    epoch = int(match.group(2))
    assert "epoch 1/5" in result.stdout                  # the first epoch still finished (finite losses)
    assert epoch >= 2 and f"the checkpoint of epoch {epoch - 1} in {out} was kept" in result.stderr
    state = load_checkpoint(out)                         # intact, from the last good epoch
    assert state["epoch"] == epoch - 1
    assert all(np.isfinite(v).all() for v in state["model"].values())


def test_unwritable_out_is_reported_before_training(files):
    (files / "a-file").write_text("x")
    result = invoke(*train_args(files, files / "a-file" / "run", "--epochs", 1))
    assert_one_line_error(result, "a-file")
    assert "epoch 1" not in result.stdout


def test_usage_errors_exit_2(files):
    assert invoke("train", "--epochs", 0).exit_code == 2
    assert invoke("train", "--optimizer", "lion").exit_code == 2
    assert invoke("summary", "--input-shape", "a,b").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


# -- evaluate / predict / summary / info -----------------------------------------------------------------
@pytest.fixture
def trained(files):
    result = invoke(*train_args(files, files / "run", "--epochs", 3))
    assert result.exit_code == 0, result.output
    return files / "run" / "model.npz"


def test_evaluate(files, trained):
    result = invoke("evaluate", trained, "--confusion-matrix")
    assert result.exit_code == 0, result.output
    # the dataset and its split seed come from the model file
    assert "bars.npz test split, 60 images" in result.stdout
    expected = json.loads((files / "run" / "metrics.json").read_text())["test"]
    assert f"accuracy {expected['accuracy'] * 100:.2f}%" in result.stdout
    assert "middle" in result.stdout and (files / "run" / "model-confusion.png").is_file()


def test_evaluate_on_data_that_does_not_fit(files, trained):
    x, y = make_images(50, channels=3)
    np.savez(files / "rgb.npz", x=x, y=y)
    assert_one_line_error(invoke("evaluate", trained, "--dataset", files / "rgb.npz"), "Conv2d", "3 channels")


def test_evaluate_rejects_a_non_model_file(files, trained):
    assert_one_line_error(invoke("evaluate", files / "run" / "checkpoint.npz"), "checkpoint")
    (files / "junk.npz").write_bytes(b"not a zip")
    assert_one_line_error(invoke("evaluate", files / "junk.npz"), "junk.npz")
    import gpucnn

    gpucnn.save(load(trained).state_dict(), files / "weights.npz")  # a state_dict, not a model
    assert_one_line_error(invoke("evaluate", files / "weights.npz"), "weights.npz", "load_state_dict")


def test_predict_png_and_npy(files, trained):
    from PIL import Image

    x, y = make_images(3, seed=7)
    Image.fromarray(x[0, 0]).save(files / "a.png")
    big = np.kron(x[1, 0], np.ones((4, 4), dtype=np.uint8))               # 32x32, RGB: converted + resized
    Image.fromarray(np.stack([big] * 3, axis=-1)).save(files / "b.png")
    np.save(files / "c.npy", x[2, 0])                                     # one (H, W) image
    np.save(files / "batch.npy", x[:, 0].astype(np.float32) / 255)       # floats in 0..1, batch (N, H, W)
    result = invoke("predict", trained, files / "a.png", files / "b.png", files / "c.npy", files / "batch.npy",
                    "--top-k", 2)
    assert result.exit_code == 0, result.output
    names = ["top", "middle", "bottom"]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"{files / 'a.png'}: {names[y[0]]} (")
    assert lines[1].startswith(f"{files / 'b.png'}: {names[y[1]]} (")
    assert lines[2].startswith(f"{files / 'c.npy'}: {names[y[2]]} (")
    for i in range(3):
        assert lines[3 + i].startswith(f"{files / 'batch.npy'}[{i}]: {names[y[i]]} (")
    assert all(line.count("%") == 2 for line in lines)
    assert "resized from 32x32 to 8x8" in result.stderr and "grayscale" in result.stderr


def test_predict_errors(files, trained):
    np.save(files / "wrong.npy", np.zeros((5, 5), np.uint8))
    assert_one_line_error(invoke("predict", trained, files / "wrong.npy"), "(5, 5)", "(1, 8, 8)")
    (files / "notes.txt").write_text("hi")
    assert_one_line_error(invoke("predict", trained, files / "notes.txt"), "unsupported")
    assert_one_line_error(invoke("predict", trained, files / "missing.png"), "missing.png")


def test_summary(files, trained):
    result = invoke("summary")
    assert result.exit_code == 0, result.output
    assert "421,642" in result.stdout and "Conv2d" in result.stdout
    saved = invoke("summary", "--model", trained)
    assert saved.exit_code == 0 and "Linear" in saved.stdout
    shaped = invoke("summary", "--model", files / "tiny.json", "--input-shape", "1,8,8")
    assert shaped.exit_code == 0 and "Total params" in shaped.stdout
    assert_one_line_error(invoke("summary", "--model", "nope"), "keras-mnist")


def test_info():
    result = invoke("info")
    assert result.exit_code == 0, result.output
    for fragment in ("gpucnn ", "numpy ", "click ", "python ", "cpu", "emu", "cuda", "keras-mnist", "digits"):
        assert fragment in result.stdout, fragment


def test_profile():
    result = invoke("profile", "--batch-size", "2", "--steps", "2", "--warmup", "0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("gpucnn profile: keras-mnist, batch 2, device cpu: 2 training steps")
    assert "Conv2d #3 (32->64, 3x3): conv2d" in out and "backward" in out and "ms/step" in out
    infer = invoke("profile", "--inference", "--by", "op", "--top", "2", "--steps", "1", "--warmup", "0")
    assert infer.exit_code == 0 and "forward passes (eval, no_grad)" in infer.stdout
    assert "backward" not in infer.stdout and "more rows)" in infer.stdout
    assert_one_line_error(invoke("profile", "--model", "nope"), "keras-mnist")


def test_train_precision_high_is_recorded_and_resumed(files, monkeypatch):
    import gpucnn.training.run as run_mod

    seen = []
    real = run_mod.set_float32_matmul_precision
    monkeypatch.setattr(run_mod, "set_float32_matmul_precision", lambda p: (seen.append(p), real(p)))
    out = files / "tf32"
    result = invoke(*train_args(files, out, "--epochs", 1, "--precision", "high"))
    assert result.exit_code == 0, result.output
    assert "precision high (TF32 GEMM operands)" in result.stdout
    assert load_checkpoint(out)["config"]["run_config"]["precision"] == "high"
    result = invoke("train", "--resume", out, "--epochs", 2)
    assert result.exit_code == 0, result.output
    assert seen == ["high", "high"]  # the resumed run multiplies as the saved one did
    bad = invoke(*train_args(files, files / "x", "--precision", "medium"))
    assert bad.exit_code == 2 and "medium" in bad.output


def test_profile_and_bench_take_precision(monkeypatch):
    import gpucnn

    seen = []
    monkeypatch.setattr(gpucnn, "set_float32_matmul_precision", lambda p: seen.append(p))
    result = invoke("profile", "--batch-size", 2, "--steps", 1, "--warmup", 0, "--precision", "high")
    assert result.exit_code == 0, result.output
    assert seen == ["high"]


# -- segmentation: train --task segment, evaluate, predict ---------------------------------------------
def seg_npz(tmp_path, n=20, size=16):
    """Masks from a per-pixel colour rule (class 1 bright red, 2 bright green, else 0)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, (n, size, size))
    x = rng.uniform(0, 60, (n, 3, size, size))
    x[:, 0][y == 1] += 180
    x[:, 1][y == 2] += 180
    path = tmp_path / "seg.npz"
    np.savez(path, x=x.astype(np.uint8), y=y, classes=np.array(["bg", "red", "green"]))
    return path, x.astype(np.uint8), y


def test_train_segment_evaluate_predict_and_resume(tmp_path):
    from PIL import Image

    from gpucnn.data.segmentation import read_mask

    data, x, y = seg_npz(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--task", "segment", "--model", "unet-tiny", "--dataset", data, "--epochs", 2, "--batch-size",
            4, "--optimizer", "adam", "--lr", 0.01, "--out", out]
    first = invoke(*[1 if a == 2 else a for a in args])  # one epoch, then resume to two
    assert first.exit_code == 0, first.output
    assert "model: unet-tiny — 29,939 parameters (takes 3x16x16, 3 classes)" in first.output
    assert re.search(r"epoch 1/1  loss \S+  pix_acc +\S+%  mIoU \S+  val_loss \S+  val_pix_acc +\S+%  val_mIoU \S+  "
                     r"val_IoU bg \S+ red \S+ green \S+", first.output), first.output
    assert re.search(r"test mIoU \S+, pixel accuracy \S+% \(\d[\d,]*/1,024 pixels of 4 images\)", first.output)
    resumed = invoke("train", "--resume", out, "--epochs", 2)
    assert resumed.exit_code == 0, resumed.output
    assert "continuing with epoch 2" in resumed.output and "epoch 2/2" in resumed.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "segment" and metrics["history"]["epoch"] == [1, 2]
    assert len(metrics["history"]["val_iou_green"]) == 2 and metrics["test"]["pixels"] == 4 * 256
    assert load(out / "model.npz").metadata["task"] == "segment"

    ev = invoke("evaluate", out / "model.npz")
    assert ev.exit_code == 0, ev.output
    assert f"test mIoU {metrics['test']['mean_iou']:.3f}" in ev.output and "test IoU per class: bg " in ev.output

    Image.fromarray(x[0].transpose(1, 2, 0)).resize((32, 24)).save(tmp_path / "one.png")
    pred = invoke("predict", out / "model.npz", tmp_path / "one.png")
    assert pred.exit_code == 0, pred.output
    mask = read_mask(tmp_path / "one-mask.png")
    assert mask.shape == (24, 32) and mask.max() < 3  # at the image's own size, class ids kept
    assert Image.open(tmp_path / "one-mask.png").mode == "P"  # a palette PNG: shows in colour
    assert f"wrote {tmp_path / 'one-mask.png'} (32x24;" in pred.output
    named = invoke("predict", out / "model.npz", tmp_path / "one.png", "--task", "segment", "--out", tmp_path / "m")
    assert named.exit_code == 0 and (tmp_path / "m" / "one-mask.png").is_file()
    assert_one_line_error(invoke("predict", out / "model.npz", tmp_path / "one.png", "--task", "classify"),
                          "trained for --task segment, not classify")


def test_train_segment_on_a_folder_and_errors(tmp_path):
    from PIL import Image

    _, x, y = seg_npz(tmp_path, n=6, size=8)
    root = tmp_path / "folder"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(6):
        Image.fromarray(x[i].transpose(1, 2, 0)).save(root / "images" / f"{i}.png")
        Image.fromarray(y[i].astype(np.uint8)).save(root / "masks" / f"{i}.png")
    ok = invoke("train", "--task", "segment", "--model", "unet-tiny", "--dataset", root, "--epochs", 1,
                "--out", tmp_path / "r")
    assert ok.exit_code == 0, ok.output
    assert "5 train / 1 test images (3x8x8 uint8, 3 classes)" in ok.output
    (root / "masks" / "5.png").unlink()
    assert_one_line_error(invoke("train", "--task", "segment", "--model", "unet-tiny", "--dataset", root,
                                 "--out", tmp_path / "r2"), "5.png: missing mask for image")
    assert_one_line_error(invoke("train", "--model", "unet-tiny", "--dataset", "shapes", "--out", tmp_path / "r3"),
                          "'shapes' is a segmentation dataset", "--task segment")
    assert_one_line_error(invoke("train", "--task", "segment", "--augment", "--dataset", "shapes", "--out",
                                 tmp_path / "r4"), "--augment is for classification")


@pytest.mark.slow
def test_unet_tiny_learns_shapes(tmp_path):
    """The built-in dataset end to end: a short run must beat the background-only mIoU (0.218 on this
    test split: background IoU 0.873, three zeros) clearly; it reaches 0.37."""
    result = invoke("train", "--task", "segment", "--model", "unet-tiny", "--dataset", "shapes", "--limit", 256,
                    "--epochs", 6, "--batch-size", 16, "--optimizer", "adam", "--lr", 0.003, "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["test"]["mean_iou"] > 0.3, result.output
