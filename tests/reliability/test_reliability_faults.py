"""Faults during training and files from elsewhere: atomic checkpoints, a full disk while writing one, a
SIGKILL in the middle of a checkpoint write, corrupt/newer checkpoints on resume, bad files given to the
CLI's evaluate/predict/summary, and damaged RNG states."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from gpucnn import nn, serialization
from gpucnn.data import ArrayDataset, Compose, DataLoader, RandomCrop, ToFloat
from gpucnn.errors import ArgumentError, ModelFormatError, TrainingError
from gpucnn.optim import SGD, lr_scheduler
from gpucnn.serialization import read_archive, write_archive
from gpucnn.training import RunConfig, Trainer, load_checkpoint
from gpucnn.training import checkpoint as ckpt_module
from toydata import make_images

REPO = Path(__file__).resolve().parents[2]



def make_trainer(out_dir, epochs=3, seed=0):
    gpucnn.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 3))
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    x, y = make_images(96)
    loader = DataLoader(ArrayDataset(x, y), batch_size=16, shuffle=True, seed=seed,
                        transform=Compose([RandomCrop(8, padding=1), ToFloat()]))
    return Trainer(model, opt, loader, ArrayDataset(*make_images(30, seed=1)), epochs=epochs, scheduler=sched,
                   out_dir=out_dir, eval_transform=ToFloat(), verbose=0)


def weights(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def leftovers(directory):
    """Temporary files of atomic writes left in ``directory``."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("."))


# -- atomic checkpoints ----------------------------------------------------------------------------------
def test_checkpoint_write_is_temp_file_flush_fsync_rename(tmp_path, monkeypatch):
    """The order of the system calls: a temp file in the same directory, written and fsynced, renamed
    over the target, then the directory fsynced."""
    events = []
    real_mkstemp, real_fsync, real_replace = tempfile.mkstemp, os.fsync, os.replace

    def mkstemp(*a, **kw):
        fd, name = real_mkstemp(*a, **kw)
        events.append(("mkstemp", name, fd))
        return fd, name

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst), os.path.getsize(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    (tmp_path / "run").mkdir()
    trainer = make_trainer(tmp_path / "run", epochs=1)
    trainer.epoch = 1
    target = trainer.save_checkpoint()
    monkeypatch.undo()

    kinds = [e[0] for e in events]
    assert kinds == ["mkstemp", "fsync", "replace", "fsync"], events
    tmp = events[0][1]
    assert os.path.dirname(tmp) == str(target.parent)                 # same directory: rename is atomic
    assert os.path.basename(tmp).startswith(".checkpoint.npz.")
    if os.path.exists("/proc/self/fd"):
        assert events[1][1] == tmp                                    # the temp file's data is on disk ...
        assert events[3][1] == str(target.parent)                     # ... and so is the rename
    assert events[2][1:3] == (tmp, str(target)) and events[2][3] > 0  # complete before the rename
    assert leftovers(target.parent) == []
    assert load_checkpoint(target)["epoch"] == 1


class FullDisk:
    """A file whose writes fail with ENOSPC after ``budget`` bytes (the rest of the file API delegates)."""

    def __init__(self, f, budget):
        self._f, self._left = f, budget

    def write(self, data):
        if len(data) > self._left:
            self._f.write(bytes(data[:self._left]))
            self._left = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def fill_disk_on(monkeypatch, kind, nth):
    """Make the ``nth`` write of a ``kind`` file ("gpucnn-checkpoint" or "gpucnn-model") hit a full disk
    half-way, through the real archive writer."""
    real = serialization._write_npz
    seen = {"n": 0}

    def write_npz(f, arrays):
        meta = json.loads(arrays[serialization.META_KEY].tobytes())
        if meta.get("format") == kind:
            seen["n"] += 1
            if seen["n"] == nth:
                return real(FullDisk(f, 600), arrays)
        return real(f, arrays)

    monkeypatch.setattr(serialization, "_write_npz", write_npz)


@pytest.mark.parametrize("kind, error, fragments", [
    ("gpucnn-checkpoint", TrainingError,
     ["cannot write the checkpoint", "checkpoint.npz", "No space left on device",
      "the previous checkpoint in", "is unchanged", "Free some disk space", "resume"]),
    ("gpucnn-model", ModelFormatError, ["cannot write", "model.npz", "No space left on device"]),
])
def test_full_disk_during_epoch_2_keeps_the_epoch_1_checkpoint(tmp_path, monkeypatch, kind, error, fragments):
    out = tmp_path / "run"
    trainer = make_trainer(out)
    fill_disk_on(monkeypatch, kind, nth=2)               # epoch 1 writes fine, epoch 2 hits the full disk
    with pytest.raises(error) as info:
        trainer.fit(until_epoch=1)
        epoch1 = (out / "checkpoint.npz").read_bytes()
        model1 = (out / "model.npz").read_bytes()
        trainer.fit()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert str(out) in message
    assert (out / "checkpoint.npz").read_bytes() == epoch1               # byte-identical
    if kind == "gpucnn-model":
        assert (out / "model.npz").read_bytes() == model1
    assert leftovers(out) == []                                          # no temporary file left behind
    assert load_checkpoint(out)["epoch"] == 1
    monkeypatch.undo()

    # once there is space again, resuming from the kept checkpoint ends exactly where a straight run does
    resumed = make_trainer(out)
    resumed.load_checkpoint(out)
    resumed.fit()
    straight = make_trainer(tmp_path / "straight")
    straight.fit()
    assert_same_weights(weights(resumed.model), weights(straight.model))


def test_full_disk_from_the_cli_is_one_line(tmp_path, monkeypatch):
    from cli.main import cli

    x, y = make_images(64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": [
        {"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 3}]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    fill_disk_on(monkeypatch, "gpucnn-checkpoint", nth=2)
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["train", "--model", str(tmp_path / "m.json"), "--dataset",
                                      str(tmp_path / "d.npz"), "--epochs", "3", "--out", str(out)])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output
    assert err.startswith(f"Error: cannot write the checkpoint {out / 'checkpoint.npz'}: No space left on device")
    assert "epoch 1/3" in result.stdout and "epoch 2/3" not in result.stdout
    assert load_checkpoint(out)["epoch"] == 1 and leftovers(out) == []


def test_full_disk_before_training_is_detected(tmp_path, monkeypatch):
    import gpucnn.training.trainer as trainer_module

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_module.tempfile, "mkstemp", full)
    trainer = make_trainer(tmp_path / "run")
    with pytest.raises(TrainingError, match=r"run is not writable \(No space left on device\)"):
        trainer.fit()
    assert trainer.epoch == 0 and trainer.history.epoch == []


# -- SIGKILL while the checkpoint is being written ----------------------------------------------------------
CHILD = textwrap.dedent("""\
    import json, os, shutil, sys, time
    from pathlib import Path
    from gpucnn import serialization
    from gpucnn.training import RunConfig, Trainer

    out = Path(sys.argv[2])
    cfg = RunConfig(**json.loads(sys.argv[1]))
    real = serialization._write_npz
    n = {"checkpoints": 0}

    def write_npz(f, arrays):
        meta = json.loads(arrays[serialization.META_KEY].tobytes())
        if meta.get("format") == "gpucnn-checkpoint":
            n["checkpoints"] += 1
            if n["checkpoints"] == 2:                    # epoch 2's checkpoint: stop half-way and wait
                shutil.copy(out / "checkpoint.npz", out.parent / "before.npz")
                f.write(b"PK\\x03\\x04" + os.urandom(500))
                f.flush()
                (out.parent / "writing").write_text("now")
                time.sleep(600)
        return real(f, arrays)

    serialization._write_npz = write_npz
    Trainer.from_config(cfg, out_dir=out, verbose=0).fit()
    """)


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    x, y = make_images(120)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": "same"},
        {"type": "BatchNorm2d", "num_features": 3}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"}, {"type": "Dropout", "p": 0.25}, {"type": "Linear", "in_features": 48, "out_features": 3}]}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    cfg = dict(model=str(tmp_path / "m.json"), dataset=str(tmp_path / "d.npz"), epochs=3, batch_size=16,
               augment=True, optimizer="adam", lr=0.01, schedule="step", seed=5)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "writing").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never reached epoch 2's checkpoint"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # the half-written temporary file is there (SIGKILL cannot be cleaned up after) ...
    assert any(name.startswith(".checkpoint.npz.") for name in leftovers(out))
    # ... but checkpoint.npz is epoch 1's, byte for byte, and loads
    assert (out / "checkpoint.npz").read_bytes() == (tmp_path / "before.npz").read_bytes()
    assert load_checkpoint(out)["epoch"] == 1

    resumed = Trainer.resume(out, verbose=0)        # loses only the unfinished epoch 2
    assert resumed.epoch == 1
    resumed.fit()
    straight = Trainer.from_config(RunConfig(**cfg), out_dir=tmp_path / "straight", verbose=0)
    straight.fit()
    assert_same_weights(weights(resumed.model), weights(straight.model))
    assert resumed.history["loss"] == straight.history["loss"]


# -- corrupt, edited and newer checkpoints ----------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished one-epoch CLI run (its checkpoint holds a RunConfig, so --resume can rebuild it)."""
    from cli.main import cli

    folder = tmp_path_factory.mktemp("run")
    x, y = make_images(80)
    np.savez(folder / "d.npz", x=x, y=y)
    spec = {"format": "gpucnn-model-spec", "version": 1, "input_shape": [1, 8, 8], "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same"},
        {"type": "ReLU"}, {"type": "Flatten"}, {"type": "Linear", "in_features": 128, "out_features": 3}]}
    (folder / "m.json").write_text(json.dumps(spec))
    result = CliRunner().invoke(cli, ["train", "--model", str(folder / "m.json"), "--dataset", str(folder / "d.npz"),
                                      "--epochs", "1", "--out", str(folder / "run")])
    assert result.exit_code == 0, result.output
    return folder / "run"


def _edit(edit):
    def apply(src, dst):
        arrays, meta = read_archive(src)
        edit(arrays, meta)
        write_archive(dst, arrays, meta)
    return apply


def _edit_json(key, change):
    def edit(arrays, meta):
        value = json.loads(meta["state"][key])
        change(value)
        meta["state"][key] = json.dumps(value)
    return _edit(edit)


def _write(data):
    return lambda src, dst: Path(dst).write_bytes(data(Path(src).read_bytes()) if callable(data) else data)


CORRUPT_CHECKPOINTS = [
    ("truncated", _write(lambda b: b[: len(b) // 2]), ["checkpoint.npz", "corrupt"]),
    ("truncated-tail", _write(lambda b: b[:-20]), ["checkpoint.npz"]),
    ("garbage", _write(bytes(range(256)) * 8), ["checkpoint.npz", "not a gpucnn file"]),
    ("empty", _write(b""), ["checkpoint.npz"]),
    ("pickle", _write(b"\x80\x04\x95" + b"\x00" * 40), ["checkpoint.npz", "pickled data"]),
    ("a-model-file", lambda src, dst: serialization.save(nn.Linear(2, 2), dst),
     ["checkpoint.npz", "not a gpucnn training checkpoint"]),
    ("newer-version", _edit(lambda a, m: m.__setitem__("version", 7)),
     ["checkpoint.npz", "version 7 is newer", "upgrade gpucnn"]),
    ("version-not-a-number", _edit(lambda a, m: m.__setitem__("version", [1])),
     ["checkpoint.npz", "invalid checkpoint format version [1]"]),
    ("no-state", _edit(lambda a, m: m.pop("state")), ["checkpoint.npz", "no 'state' table"]),
    ("missing-array", _edit(lambda a, m: a.pop(sorted(a)[0])), ["checkpoint.npz", "not in the file"]),
    ("epoch-not-a-number", _edit(lambda a, m: m["state"].__setitem__("epoch", "two")),
     ["checkpoint.npz", "'epoch'", "'two'"]),
    ("rng-damaged", _edit_json("rng", lambda v: v["host"].__setitem__("state", "x")),
     ["checkpoint.npz", "'rng'"]),
    ("history-damaged", _edit_json("history", lambda v: v.__setitem__("loss", True)),
     ["checkpoint.npz", "'history'"]),
    ("run-config-damaged", _edit_json("config", lambda v: v["run_config"].__setitem__("lr", [1])),
     ["checkpoint.npz", "'config.run_config'", "'lr'"]),
    ("optimizer-for-another-model", _edit(lambda a, m: m["state"]["optimizer"]["param_groups"][0]["params"].pop()),
     ["checkpoint.npz", "cannot restore the checkpoint into this run"]),
]


@pytest.mark.parametrize("name, damage, fragments", CORRUPT_CHECKPOINTS, ids=[c[0] for c in CORRUPT_CHECKPOINTS])
def test_resume_from_a_corrupt_checkpoint_is_one_line(run_dir, tmp_path, name, damage, fragments):
    import shutil

    from cli.main import cli

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    damage(run_dir / "checkpoint.npz", broken / "checkpoint.npz")
    before = (broken / "checkpoint.npz").read_bytes()
    result = CliRunner().invoke(cli, ["train", "--resume", str(broken), "--epochs", "2"])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    assert str(broken) in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert (broken / "checkpoint.npz").read_bytes() == before      # a failed resume changes nothing
    # the library raises our own error type, naming the file
    with pytest.raises((ModelFormatError, TrainingError), match=str(broken)):
        Trainer.resume(broken, verbose=0)


# -- bad files given to evaluate / predict / summary -------------------------------------------------------
def _bad_model(kind, model_path, dst):
    good = Path(model_path).read_bytes()
    if kind == "truncated":
        dst.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        dst.write_bytes(bytes(range(256)) * 4)
    elif kind == "newer":
        _edit(lambda a, m: m.__setitem__("version", 9))(model_path, dst)
    elif kind == "unknown-layer":
        _edit(lambda a, m: m["architecture"]["layers"][0].__setitem__("type", "os.system"))(model_path, dst)
    elif kind == "missing-tensor":
        _edit(lambda a, m: a.pop("0.weight"))(model_path, dst)
    elif kind == "checkpoint":
        dst.write_bytes((Path(model_path).parent / "checkpoint.npz").read_bytes())
    return dst


BAD_MODELS = [
    ("truncated", ["corrupt"]), ("garbage", ["not a gpucnn file", "neither a zip archive"]),
    ("newer", ["newer gpucnn", "format version 9", "upgrade gpucnn"]),
    ("unknown-layer", ["unknown layer type 'os.system'"]), ("missing-tensor", ["missing 1 tensor: 0.weight"]),
    ("checkpoint", ["training checkpoint"]),
]


@pytest.mark.parametrize("command", ["evaluate", "predict", "summary"])
@pytest.mark.parametrize("kind, fragments", BAD_MODELS, ids=[b[0] for b in BAD_MODELS])
def test_bad_model_files_in_every_command(run_dir, tmp_path, command, kind, fragments):
    from cli.main import cli

    bad = _bad_model(kind, run_dir / "model.npz", tmp_path / "bad.npz")
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.uint8))
    args = {"evaluate": ["evaluate", str(bad)], "predict": ["predict", str(bad), str(tmp_path / "one.npy")],
            "summary": ["summary", "--model", str(bad)]}[command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith(f"Error: {bad}") and len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize("name, array, fragments", [
    ("nan.npy", np.full((1, 8, 8), np.nan, np.float32), ["64 NaN or infinite values", "finite"]),
    ("inf.npy", np.where(np.eye(8, dtype=bool), np.inf, 0.5).astype(np.float32)[None], ["8 NaN or infinite"]),
    ("empty.npy", np.zeros((0, 1, 8, 8), np.uint8), ["holds no images", "(0, 1, 8, 8)"]),
    ("huge-ints.npy", np.full((1, 8, 8), 300, np.int32), ["0..255"]),
    ("strings.npy", np.array(["a", "b"]), ["dtype <U1", "numeric"]),
    ("wrong-shape.npy", np.zeros((3, 5, 5), np.uint8), ["(3, 5, 5)", "(1, 8, 8)"]),
])
def test_predict_rejects_bad_arrays(run_dir, tmp_path, name, array, fragments):
    from cli.main import cli

    np.save(tmp_path / name, array)
    result = CliRunner().invoke(cli, ["predict", str(run_dir / "model.npz"), str(tmp_path / name)])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith(f"Error: {tmp_path / name}") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_predict_rejects_a_corrupt_image(run_dir, tmp_path):
    from cli.main import cli

    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(100)))
    result = CliRunner().invoke(cli, ["predict", str(run_dir / "model.npz"), str(tmp_path / "bad.png")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {tmp_path / 'bad.png'}: cannot read the image")


def test_usage_errors_exit_2_in_every_command(run_dir, tmp_path):
    from cli.main import cli

    runner = CliRunner()
    for args in (["evaluate"], ["evaluate", str(tmp_path)], ["evaluate", str(run_dir / "model.npz"), "--batch-size", "0"],
                 ["predict", str(run_dir / "model.npz")], ["predict", str(run_dir / "model.npz"), str(tmp_path)],
                 ["summary", "--input-shape", "0,1,1"], ["train", "--resume", str(run_dir), "--lr", "0.1"],
                 ["train", "--device", "tpu"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_debug_shows_the_traceback_for_a_corrupt_checkpoint(run_dir, tmp_path):
    import shutil

    from cli.main import cli

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "checkpoint.npz").write_bytes(b"garbage")
    result = CliRunner().invoke(cli, ["--debug", "train", "--resume", str(broken)])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ModelFormatError" in result.stderr


# -- RNG states -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [None, {}, {"host": 3}, {"host": {"bit_generator": "MT19937"}},
                                   {"host": {"bit_generator": "PCG64", "state": "x"}}])
def test_set_rng_state_rejects_damaged_states_and_changes_nothing(state):
    gpucnn.manual_seed(3)
    before = gpucnn.get_rng_state()
    with pytest.raises(ArgumentError, match="set_rng_state"):
        gpucnn.set_rng_state(state)
    assert gpucnn.get_rng_state() == before


def test_rng_state_round_trip_restores_dropout_masks():
    gpucnn.manual_seed(11)
    x = gpucnn.tensor(np.ones((4, 50), np.float32))
    state = gpucnn.get_rng_state()
    a = gpucnn.functional.dropout(x, 0.5).numpy()
    gpucnn.set_rng_state(json.loads(json.dumps(state)))   # through JSON, as in a checkpoint
    b = gpucnn.functional.dropout(x, 0.5).numpy()
    assert np.array_equal(a, b)


def test_checkpoint_constants_unchanged():
    assert ckpt_module.CHECKPOINT_FILE == "checkpoint.npz" and ckpt_module.VERSION == 1
