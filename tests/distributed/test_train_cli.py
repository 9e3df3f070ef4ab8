"""`mpiexec -n K gpucnn train`: K processes train one model (DDP over MPI). --batch-size is per process, so
K=2 at batch 8 trains on the same images in each step as K=1 at batch 16 (one permutation per epoch from
the seed, rank r taking every K-th image) and, with --sync-bn, ends with the same weights to float32
rounding; rank 0 alone prints and writes; evaluation is sharded and summed (the test accuracy equals a
single-process evaluation of the saved model); --resume continues bit for bit with the same K and refuses
another K. "One process" is a plain `gpucnn train`: the shards are cut from its own permutation."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpucnn
from mpirun import mpirun, needs_mpiexec
from toydata import make_images

TINY = {"format": "gpucnn-model-spec", "version": 1, "name": "tiny", "input_shape": [1, 8, 8],
        "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
                   {"type": "BatchNorm2d", "num_features": 4}, {"type": "ReLU"},
                   {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
                   {"type": "Linear", "in_features": 64, "out_features": 3}]}


@pytest.fixture
def files(tmp_path):
    x, y = make_images(127)  # (an odd test split: shards of unequal size)
    np.savez(tmp_path / "bars.npz", x=x, y=y)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return tmp_path


def train(files, n, out, *extra):
    """`gpucnn train` of the tiny model under `mpiexec -n n` (n=0: a plain process, no mpiexec)."""
    args = ("-m", "cli.main", "train", "--model", files / "tiny.json", "--dataset", files / "bars.npz", "--lr", 0.1,
            "--out", out, *extra)
    return plain(*args) if n == 0 else mpirun(*args, n=n, timeout=240)


def plain(*args):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.run([sys.executable, *map(str, args)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=240)
    return proc.returncode, proc.stdout


def _weights(path):
    return {k: v.numpy() for k, v in gpucnn.load(path).state_dict().items()}


@needs_mpiexec
def test_two_processes_train_what_one_trains_at_twice_the_batch(files):
    rc, out = train(files, 2, files / "k2", "--batch-size", 8, "--epochs", 2, "--sync-bn")
    assert rc == 0, out
    assert "data-parallel: world size 2 (mpi), batch 8 per process (16 per step), synchronised batch norm" in out
    assert out.count("epoch 1/2") == 1 and out.count("test accuracy") == 1  # rank 0 alone speaks
    rc, out1 = train(files, 0, files / "k1", "--batch-size", 16, "--epochs", 2)  # one plain process
    assert rc == 0, out1
    a, b = _weights(files / "k2" / "model.npz"), _weights(files / "k1" / "model.npz")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    ha, hb = (json.loads((files / d / "metrics.json").read_text())["history"] for d in ("k2", "k1"))
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-5)
    # the sharded test evaluation counts every image once: as one process evaluating the saved model
    test = json.loads((files / "k2" / "metrics.json").read_text())["test"]
    rc, ev = mpirun("-m", "cli.main", "evaluate", files / "k2" / "model.npz", "--dataset", files / "bars.npz", n=1)
    assert rc == 0, ev
    import re
    correct, images = map(int, re.search(r"\((\d+)/(\d+)\)", ev).groups())
    assert (test["correct"], test["images"]) == (correct, images) and images % 2 == 1  # (shards of unequal size)


@needs_mpiexec
def test_keras_mnist_on_two_processes_equals_one_at_twice_the_batch(tmp_path):
    """The issue's case (a): keras-mnist (no batch norm), an epoch of 256 digits, 2 x 16 against 1 x 32."""
    common = ("train", "--model", "keras-mnist", "--limit", 256, "--epochs", 1, "--lr", 0.05)
    rc, out = mpirun("-m", "cli.main", *common, "--batch-size", 16, "--out", tmp_path / "k2", n=2, timeout=300)
    assert rc == 0, out
    rc, out = plain("-m", "cli.main", *common, "--batch-size", 32, "--out", tmp_path / "k1")
    assert rc == 0, out
    a, b = _weights(tmp_path / "k2" / "model.npz"), _weights(tmp_path / "k1" / "model.npz")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


@needs_mpiexec
def test_resume_continues_bit_for_bit_with_the_same_k_and_refuses_another(files):
    rc, out = train(files, 2, files / "s", "--batch-size", 8, "--epochs", 3)
    assert rc == 0, out
    rc, out = train(files, 2, files / "r", "--batch-size", 8, "--epochs", 1)
    assert rc == 0, out
    rc, out = mpirun("-m", "cli.main", "train", "--resume", files / "r", "--epochs", 3, n=2, timeout=240)
    assert rc == 0, out
    a, b = _weights(files / "s" / "model.npz"), _weights(files / "r" / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rc, out = mpirun("-m", "cli.main", "train", "--resume", files / "r", "--epochs", 4, n=1, timeout=240)
    assert rc != 0 and "the run was trained by 2 processes and this is 1: resume it with the same number" in out


@needs_mpiexec
def test_ranks_that_run_different_commands_are_refused_at_start_up(files):
    """mpiexec's MPMD form starts rank 1 with another --seed: every rank stops before training, naming it."""
    from mpirun import MPIEXEC

    cmd = [sys.executable, "-m", "cli.main", "train", "--model", str(files / "tiny.json"), "--dataset",
           str(files / "bars.npz"), "--out", str(files / "m")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.run([MPIEXEC, "-n", "1", *cmd, "--seed", "0", ":", "-n", "1", *cmd, "--seed", "1"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    assert proc.returncode != 0
    assert "rank 1's run configuration differs from rank 0's at 'seed': 1 on rank 1, 0 on rank 0" in proc.stdout
    assert "Error: rank 0 of 2: " in proc.stdout or "Error: rank 1 of 2: " in proc.stdout  # (who met it)
    assert not (files / "m" / "checkpoint.npz").exists()


def _rank_pids(marker):
    """{rank: pid} of the running processes whose command line holds ``marker`` (Linux /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if marker not in (d / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = dict(kv.split("=", 1) for kv in (d / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in kv)
        except OSError:
            continue
        if "PMI_RANK" in env:
            out[int(env["PMI_RANK"])] = int(d.name)
    return out


@needs_mpiexec
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks' processes through /proc")
def test_killing_a_rank_mid_run_ends_the_job_and_resume_finishes_it(tmp_path):
    """The issue's case (c): SIGKILL rank 1 after the first checkpoint; the job ends non-zero within 60 s,
    the checkpoint is intact, and `--resume` under the same K completes the run."""
    import signal
    import time

    from mpirun import MPIEXEC

    out = tmp_path / "killed-run"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "cli.main", "train", "--model", "keras-mnist", "--limit", "1024",
           "--epochs", "4", "--batch-size", "32", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    job = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while not (out / "checkpoint.npz").exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = _rank_pids(str(out))
    assert 1 in pids, "rank 1 not found"
    os.kill(pids[1], signal.SIGKILL)
    killed = time.monotonic()
    try:
        job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the job did not end within 60 s of a rank's death")
    assert time.monotonic() - killed < 60 and job.returncode != 0
    from gpucnn.training.checkpoint import load_checkpoint
    done = load_checkpoint(out)["epoch"]
    assert 1 <= done < 4  # intact, and the run was cut short
    rc, log = mpirun("-m", "cli.main", "train", "--resume", out, n=2, timeout=300)
    assert rc == 0, log
    assert json.loads((out / "metrics.json").read_text())["epochs_completed"] == 4
