"""The ``gpucnn`` command as a separate process: the console script, SIGKILL and SIGINT during training."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gpucnn.training import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3
BATCH = 2      # tiny batches: ~1 s epochs with ~1,500 steps, so "mid-epoch" is easy to hit


def command():
    """``python -m cli.main``: the same entry point as the console script, with signals going straight
    to the Python process (no wrapper shell script in between)."""
    return [sys.executable, "-m", "cli.main"]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


def make_files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3750
    y = rng.integers(0, 3, n).astype(np.int64)
    x = rng.integers(0, 60, (n, 1, 12, 12)).astype(np.uint8)
    for k in range(3):
        x[y == k, :, 3 * k + 1:3 * k + 3, :] = 220
    np.savez(folder / "bars.npz", x=x, y=y)
    spec = {"format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 12, 12], "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": "same"},
        {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
        {"type": "Dropout", "p": 0.25}, {"type": "Linear", "in_features": 144, "out_features": 3}]}
    (folder / "tiny.json").write_text(json.dumps(spec))


def train_cmd(folder: Path, out: Path) -> list[str]:
    return command() + ["train", "--model", str(folder / "tiny.json"), "--dataset", str(folder / "bars.npz"),
                        "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", "0.01", "--augment",
                        "--seed", "3", "--out", str(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (its final weights are what every interrupted+resumed run must match)."""
    folder = tmp_path_factory.mktemp("proc")
    make_files(folder)
    out = folder / "straight"
    done = subprocess.run(train_cmd(folder, out), env=env(), cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("epoch ") and "lr 0.01" in line for line in done.stdout.splitlines()) == EPOCHS
    return folder, out


def epoch_seconds(line: str) -> float:
    """The duration an epoch line reports ("epoch 1/3  loss ...  lr 0.01  1.2s  ...")."""
    return float(line.split("lr 0.01")[1].split("s")[0])


class Watcher:
    """Runs the command, collecting stdout lines in a thread."""

    def __init__(self, cmd, cwd):
        self.proc = subprocess.Popen(cmd, env=env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, prefix, timeout=120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise AssertionError(f"no line starting with {prefix!r}; got {self.lines}, stderr: "
                             f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")


def final_weights(out: Path) -> dict:
    return {k: np.asarray(v.data if hasattr(v, "data") else v) for k, v in load_checkpoint(out)["model"].items()}


def assert_same_final_weights(a: Path, b: Path) -> None:
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), f"{k} differs from the uninterrupted run"


def resume(folder: Path, out: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command() + ["train", "--resume", str(out)], env=env(), cwd=folder, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_sigkill_mid_epoch_then_resume_is_bit_identical(reference):
    folder, straight = reference
    out = folder / "killed"
    w = Watcher(train_cmd(folder, out), folder)
    try:
        line = w.wait_for("epoch 1/")       # printed after epoch 1's checkpoint is on disk
        assert (out / "checkpoint.npz").is_file()
        # About half-way through epoch 2, timed by this run's own epoch 1 (the reference run's epochs
        # may have run under another load).
        time.sleep(0.5 * epoch_seconds(line))
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(timeout=30)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    assert w.proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(out)["epoch"]
    assert 1 <= killed_at < EPOCHS, "the run finished before it could be killed"

    done = resume(folder, out)
    assert f"{killed_at} of {EPOCHS} epochs done; continuing with epoch {killed_at + 1}" in done.stdout
    assert_same_final_weights(out, straight)
    h_resumed = json.loads((out / "metrics.json").read_text())["history"]
    h_straight = json.loads((straight / "metrics.json").read_text())["history"]
    assert h_resumed["epoch"] == list(range(1, EPOCHS + 1))
    assert h_resumed["loss"] == h_straight["loss"] and h_resumed["val_loss"] == h_straight["val_loss"]


def test_sigint_stops_cleanly_with_a_resume_hint(reference):
    folder, straight = reference
    out = folder / "interrupted"
    w = Watcher(train_cmd(folder, out), folder)
    try:
        time.sleep(0.4 * epoch_seconds(w.wait_for("epoch 1/")))  # (this run's epoch 1: see the SIGKILL test)
        w.proc.send_signal(signal.SIGINT)
        w.proc.wait(timeout=60)
        w.thread.join(timeout=10)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    stderr = w.proc.stderr.read()
    assert w.proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "Interrupted" in stderr and f"gpucnn train --resume {out}" in stderr
    state = load_checkpoint(out)                    # intact and loadable
    assert 1 <= state["epoch"] < EPOCHS
    assert f"holds epoch {state['epoch']} of {EPOCHS}" in stderr

    resume(folder, out)
    assert_same_final_weights(out, straight)


def test_console_script(tmp_path):
    script = shutil.which("gpucnn")
    if script is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    done = subprocess.run([script, "info"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "keras-mnist" in done.stdout and "cpu" in done.stdout
    bad = subprocess.run([script, "train", "--model", "no-such-net", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: unknown model 'no-such-net'") and "Traceback" not in bad.stderr
    usage = subprocess.run([script, "train", "--epochs", "zero"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2


def test_module_entry_point_matches(tmp_path):
    done = subprocess.run(command() + ["--help"], env=env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name in ("train", "evaluate", "predict", "summary", "info"):
        assert name in done.stdout
