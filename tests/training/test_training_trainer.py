"""gpucnn.training: the Trainer loop, checkpoints and exact resume, NaN handling, early stopping, files."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from gpucnn.data import ArrayDataset, Compose, DataLoader, RandomCrop, ToFloat
from gpucnn.errors import ShapeError, TrainingError
from gpucnn.optim import SGD, lr_scheduler
from gpucnn.serialization import load
from gpucnn.training import (History, RunConfig, Trainer, TrainingInterrupted, fit, load_checkpoint,
                             trainer as trainer_module)
from toydata import make_images

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"



def tiny_dataset(n=240, seed=0, **kw):
    x, y = make_images(n, seed=seed, **kw)
    return ArrayDataset(x, y, classes=["top", "middle", "bottom"], name="bars")


def tiny_model(seed=0, dropout=True):
    gpucnn.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(4 * 4 * 4, 3))
    model = nn.Sequential(*layers)
    model.input_shape = (1, 8, 8)
    model.num_classes = 3
    return model


def make_trainer(out_dir, epochs, *, seed=0, augment=True, scheduler=True, lr=0.05, patience=None, **kw):
    """A fresh run: same seed -> same initial weights, shuffling, dropout masks and augmentation."""
    model = tiny_model(seed)
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.7) if scheduler else None
    train_tf = Compose([RandomCrop(8, padding=1), ToFloat()]) if augment else ToFloat()
    loader = DataLoader(tiny_dataset(), batch_size=16, shuffle=True, seed=seed, transform=train_tf)
    return Trainer(model, opt, loader, tiny_dataset(90, seed=1), epochs=epochs, scheduler=sched, out_dir=out_dir,
                   eval_transform=ToFloat(), patience=patience, verbose=0, **kw)


def weights(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


# -- the loop and its outputs --------------------------------------------------------------------------
def test_fit_trains_and_writes_every_file(tmp_path):
    out = tmp_path / "run"
    trainer = make_trainer(out, 3, test_data=tiny_dataset(60, seed=2), confusion_matrix=True)
    history = trainer.fit()

    assert isinstance(history, History) and history.history is history
    assert history.epoch == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec"):
        assert len(history[key]) == 3, key
    assert history["lr"] == pytest.approx([0.05, 0.035, 0.0245])   # StepLR stepped once per epoch
    assert history["val_accuracy"][-1] > 0.9                         # the bars are easy to tell apart
    assert trainer.test_metrics["accuracy"] > 0.9

    for name in ("checkpoint.npz", "model.npz", "metrics.json", "curves.png", "confusion.png", "confusion.txt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in ("curves.png", "confusion.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["epoch"] == [1, 2, 3]
    assert metrics["test"]["images"] == 60 and 0.9 < metrics["test"]["accuracy"] <= 1.0
    assert np.array(metrics["confusion_matrix"]).sum() == 60
    assert "top" in (out / "confusion.txt").read_text()

    # model.npz: the trained weights, plus what evaluate/predict need to reproduce the preprocessing
    saved = load(out / "model.npz")
    assert_same_weights(weights(saved), weights(trainer.model))
    assert saved.metadata["classes"] == ["top", "middle", "bottom"]
    assert saved.metadata["input_shape"] == [1, 8, 8]
    assert saved.metadata["transform"] == ToFloat().config()
    assert saved.metadata["input_dtype"] == "uint8"

    state = load_checkpoint(out)
    assert state["epoch"] == 3 and state["history"]["epoch"] == [1, 2, 3]


def test_fit_function_keras_style():
    x, y = make_images(200)
    model = tiny_model(dropout=False)
    history = fit(model, (x, y), tiny_dataset(60, seed=3), epochs=2, optimizer="momentum", lr=0.05, seed=0,
                  verbose=0)
    assert history.epoch == [1, 2]
    assert history["val_accuracy"][-1] > 0.8
    assert history["loss"][1] < history["loss"][0]


def test_model_is_trained_in_train_mode_and_evaluated_in_eval_mode(tmp_path):
    trainer = make_trainer(None, 1)
    modes = []
    trainer.model.register_forward_hook(lambda m, inputs, out: modes.append(m.training))
    trainer.fit()
    assert True in modes and False in modes
    assert trainer.model.training  # left in training mode, like after a PyTorch epoch


# -- exact resume -----------------------------------------------------------------------------------------
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    # shuffling, random-crop augmentation, a Dropout layer and a StepLR schedule are all in play
    straight = make_trainer(tmp_path / "straight", 3)
    straight.fit()

    first = make_trainer(tmp_path / "split", 1)
    first.fit()
    # a new process would rebuild everything from scratch (and the global RNG would be elsewhere)
    gpucnn.manual_seed(12345)
    resumed = make_trainer(tmp_path / "split", 3)
    resumed.load_checkpoint(tmp_path / "split")
    assert resumed.epoch == 1
    resumed.fit()

    assert_same_weights(weights(resumed.model), weights(straight.model))
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert resumed.history[key] == straight.history[key], key
    # the optimizer state (momentum buffers) and scheduler continue exactly too
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    sa, sb = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for k, v in sa["optimizer"]["state"].items():
        assert np.array_equal(v["momentum_buffer"], sb["optimizer"]["state"][k]["momentum_buffer"])
    assert sa["loader"] == sb["loader"] and sa["rng"] == sb["rng"]


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    t = make_trainer(tmp_path / "r", 1)
    t.fit()
    again = make_trainer(tmp_path / "r", 1)
    again.load_checkpoint(tmp_path / "r")
    before = weights(again.model)
    again.fit()
    assert_same_weights(before, weights(again.model))
    assert again.history.epoch == [1]


def test_trainer_resume_needs_a_run_config(tmp_path):
    make_trainer(tmp_path / "r", 1).fit()
    with pytest.raises(TrainingError, match="load_checkpoint"):
        Trainer.resume(tmp_path / "r")


def test_runconfig_resume_is_bit_identical(tmp_path):
    x, y = make_images(200, size=28)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 28, 28], "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 2},
        {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Dropout", "p": 0.2},
        {"type": "Linear", "in_features": 2 * 13 * 13, "out_features": 3}]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    cfg = dict(model=str(tmp_path / "m.json"), dataset=str(tmp_path / "d.npz"), epochs=3, batch_size=16,
               augment=True, schedule="cosine", normalize="standardize")
    a = Trainer.from_config(RunConfig(**cfg), out_dir=tmp_path / "a", verbose=0)
    a.fit()
    b = Trainer.from_config(RunConfig(**cfg), out_dir=tmp_path / "b", verbose=0)
    b.fit(until_epoch=1)             # as if the process had been killed during epoch 2
    assert load_checkpoint(tmp_path / "b")["epoch"] == 1
    (tmp_path / "m.json").unlink()          # the saved copy of the model file is used on resume
    c = Trainer.resume(tmp_path / "b", verbose=0)
    assert c.epoch == 1 and c.epochs == 3
    c.fit()
    assert_same_weights(weights(c.model), weights(a.model))
    assert c.history["val_loss"] == a.history["val_loss"]


# -- failures ---------------------------------------------------------------------------------------------
def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    images, labels = make_images(96)
    data = ArrayDataset(images.astype(np.float32) / 255, labels)
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, opt, DataLoader(data, batch_size=16, shuffle=True), epochs=1, out_dir=out, verbose=0)
    trainer.fit()
    ckpt = out / "checkpoint.npz"
    before_bytes, before_mtime = ckpt.read_bytes(), ckpt.stat().st_mtime_ns
    model_bytes = (out / "model.npz").read_bytes()

    # a value that overflows float32 in the first layer -> an Inf/NaN loss at the first step of epoch 2
    data.images[5] = 3e38
    trainer.epochs = 2
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    message = str(info.value)
    assert "epoch 2, step 1/6" in message
    assert "nan" in message.lower() or "inf" in message.lower()
    assert "learning rate" in message and "--lr" in message
    assert "checkpoint of epoch 1" in message
    assert ckpt.read_bytes() == before_bytes and ckpt.stat().st_mtime_ns == before_mtime
    assert (out / "model.npz").read_bytes() == model_bytes
    assert load_checkpoint(out)["epoch"] == 1


def test_huge_learning_rate_diverges_with_a_clear_error():
    # two stacked linear layers (no ReLU to die): each one's gradient scales with the other's weights, so
    # a huge learning rate blows them up geometrically until the loss overflows
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Linear(16, 3))
    with pytest.raises(TrainingError, match=r"at epoch \d+, step \d+/\d+.*learning rate \(1e\+06\)"):
        fit(model, tiny_dataset(), epochs=5, optimizer="momentum", lr=1e6, verbose=0)


def test_unwritable_output_directory_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    trainer = make_trainer(blocker / "run", 2)
    with pytest.raises(TrainingError, match="a-file"):
        trainer.fit()
    assert trainer.history.epoch == [] and trainer.epoch == 0


def test_read_only_output_directory(tmp_path, monkeypatch):
    # chmod cannot stop root (CI runs as root), so the write probe itself is made to fail as on a
    # read-only or full file system.
    import gpucnn.training.trainer as trainer_module

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trainer_module.tempfile, "mkstemp", refuse)
    with pytest.raises(TrainingError, match="not writable.*Permission denied"):
        make_trainer(tmp_path / "ro", 1).fit()


def test_model_that_does_not_fit_the_data_is_reported_before_training():
    x, y = make_images(40, channels=3)
    model = tiny_model()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), ArrayDataset(x, y), epochs=1, verbose=0)
    with pytest.raises(ShapeError, match=r"Conv2d.*3 channels.*expected 1.*has 3x8x8 images"):
        trainer.fit()


def test_too_few_outputs_for_the_classes():
    x, y = make_images(40, classes=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(ShapeError, match="outputs 2 classes but .* has 3 classes"):
        fit(model, ArrayDataset(x, y), epochs=1, optimizer="sgd", verbose=0)


def test_keyboard_interrupt_keeps_the_last_complete_epoch(tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = make_trainer(out, 3)
    calls = {"n": 0}
    original = trainer.optimizer.step

    def step_then_interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == 15 + 5:   # 15 steps per epoch: 5 steps into epoch 2
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(trainer.optimizer, "step", step_then_interrupt)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit()
    assert isinstance(info.value, KeyboardInterrupt)
    assert "epoch 2" in str(info.value) and "holds epoch 1" in str(info.value)
    assert load_checkpoint(out)["epoch"] == 1

    monkeypatch.undo()
    straight = make_trainer(tmp_path / "straight", 3)
    straight.fit()
    resumed = make_trainer(out, 3)
    resumed.load_checkpoint(out)
    resumed.fit()
    assert_same_weights(weights(resumed.model), weights(straight.model))


# -- early stopping ---------------------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_and_restores_the_best_model(tmp_path, monkeypatch):
    scripted = iter([1.0, 0.5, 0.7, 0.8, 0.9, 0.95])
    snapshots = []

    def fake_evaluate(model, data, **kw):
        snapshots.append(weights(model))
        return {"loss": next(scripted), "accuracy": 0.5, "correct": 1, "images": 2}

    monkeypatch.setattr(trainer_module, "evaluate", fake_evaluate)
    out = tmp_path / "run"
    trainer = make_trainer(out, 10, patience=2)
    history = trainer.fit()

    assert history.epoch == [1, 2, 3, 4]          # best at 2, then 2 epochs without improvement
    assert trainer.stopped_early and trainer.best_epoch == 2
    assert_same_weights(weights(trainer.model), snapshots[1])                  # restored in memory
    assert_same_weights(weights(load(out / "model.npz")), snapshots[1])        # and in the file
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_early"] and metrics["best_epoch"] == 2
    state = load_checkpoint(out)
    assert state["epoch"] == 4 and state["early_stopping"]["stopped"]


def test_early_stopping_resume_keeps_counting(tmp_path, monkeypatch):
    losses = [1.0, 0.5, 0.7, 0.8, 0.9, 0.95]
    it = iter(losses)
    monkeypatch.setattr(trainer_module, "evaluate",
                        lambda model, data, **kw: {"loss": next(it), "accuracy": 0.5, "correct": 1, "images": 2})
    out = tmp_path / "run"
    make_trainer(out, 3, patience=2).fit()               # epochs 1-3: wait = 1 after epoch 3
    resumed = make_trainer(out, 10, patience=2)
    resumed.load_checkpoint(out)
    resumed.fit()                                        # epoch 4 gives 0.8 -> stop
    assert resumed.history.epoch == [1, 2, 3, 4] and resumed.best_epoch == 2


def test_history_values_are_finite_floats(tmp_path):
    trainer = make_trainer(None, 1)
    h = trainer.fit()
    assert all(isinstance(v, float) and math.isfinite(v) for v in h["loss"] + h["val_loss"] + h["time"])


def test_resume_after_early_stopping(tmp_path, monkeypatch):
    losses = iter([1.0, 0.5, 0.7, 0.8, 0.4, 0.45, 0.5, 0.6])
    monkeypatch.setattr(trainer_module, "evaluate",
                        lambda model, data, **kw: {"loss": next(losses), "accuracy": 0.5, "correct": 1, "images": 2})
    out = tmp_path / "run"
    make_trainer(out, 10, patience=2).fit()              # stops after epoch 4
    same = make_trainer(out, 10, patience=2).load_checkpoint(out)
    assert same.stopped_early
    same.fit()                                           # nothing more to do
    assert same.history.epoch == [1, 2, 3, 4]
    more = make_trainer(out, 12, patience=2).load_checkpoint(out)   # more epochs: a fresh patience window
    assert not more.stopped_early
    more.fit()                                           # 0.4 improves, then 0.45, 0.5 do not -> stop
    assert more.history.epoch == [1, 2, 3, 4, 5, 6, 7] and more.best_epoch == 5


def test_eval_transform_defaults_to_the_deterministic_part_of_the_training_transform(tmp_path):
    from gpucnn.data import Normalize, RandomHorizontalFlip
    from gpucnn.training.trainer import deterministic_part

    norm = Normalize(0.5, 0.25)
    train_tf = Compose([RandomCrop(8, padding=1), RandomHorizontalFlip(), ToFloat(), norm])
    assert deterministic_part(train_tf) == Compose([ToFloat(), norm])
    assert deterministic_part(Compose([RandomCrop(8, 1), ToFloat()])) == ToFloat()
    assert deterministic_part(RandomCrop(8, 1)) is None

    model = tiny_model()
    loader = DataLoader(tiny_dataset(), batch_size=32, shuffle=True, transform=train_tf)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.05), loader, tiny_dataset(30, seed=4), epochs=1,
                      out_dir=tmp_path / "r", verbose=0)
    trainer.fit()
    assert trainer.val_loader.transform == Compose([ToFloat(), norm])
    assert load(tmp_path / "r" / "model.npz").metadata["transform"] == Compose([ToFloat(), norm]).config()


# -- an optimizer of another model; datasets other than ArrayDataset ------------------------------------------
def test_an_optimizer_without_the_models_parameters_warns():
    import warnings

    x, y = make_images(32)
    model, other = tiny_model(), tiny_model()
    with pytest.warns(UserWarning, match=r"holds none of the model's 4 parameters") as caught:
        fit(model, (x, y), epochs=1, optimizer=SGD(other.parameters(), lr=0.1), verbose=0)
    assert caught[0].filename == __file__  # points at the caller's line, not into gpucnn
    with pytest.warns(UserWarning, match="SGD") as caught:
        Trainer(model, SGD(other.parameters(), lr=0.1), (x, y), verbose=0)
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's own optimizer, or one holding part of it: no warning
        Trainer(model, SGD(model.parameters(), lr=0.1), (x, y), verbose=0)
        Trainer(model, SGD(list(model.parameters())[:2], lr=0.1), (x, y), verbose=0)


def test_fit_on_a_tensor_dataset_and_a_random_split():
    from gpucnn.data import TensorDataset, random_split

    x, y = make_images(240)
    ds = TensorDataset(gpucnn.tensor(x.astype(np.float32) / 255), gpucnn.tensor(y))
    train, val = random_split(ds, [0.75, 0.25], generator=0)
    model = tiny_model(dropout=False)
    history = fit(model, DataLoader(train, batch_size=16, shuffle=True), val, epochs=3, lr=0.05, seed=0, verbose=0)
    assert history["val_accuracy"][-1] > 0.8 and history["loss"][-1] < history["loss"][0]
    same = fit(tiny_model(dropout=False), train, val, epochs=3, lr=0.05, seed=0, batch_size=16, verbose=0)
    assert same["loss"] == history["loss"]  # a dataset is wrapped in the same shuffling loader


def test_trainer_on_a_custom_dataset_saves_the_model(tmp_path):
    class Bars:  # no gpucnn base class: __len__ and __getitem__ returning (float32 image, int label)
        def __init__(self, n, seed):
            self.x, self.y = make_images(n, seed=seed)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i].astype(np.float32) / 255, int(self.y[i])

    model = tiny_model(dropout=False)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.05, momentum=0.9), Bars(160, 0), Bars(60, 1),
                      test_data=Bars(60, 2), epochs=2, batch_size=16, out_dir=tmp_path, verbose=0)
    trainer.fit()
    assert trainer.classes == ["0", "1", "2"]  # from the model's outputs: the dataset names none
    assert trainer.test_metrics["accuracy"] > 0.8
    meta = load(tmp_path / "model.npz").metadata
    assert meta["input_shape"] == [1, 8, 8] and meta["input_dtype"] == "float32" and meta["transform"] is None
