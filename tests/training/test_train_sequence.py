"""Trainer(task="sequence") and examples/wavenet_sine.py: wavenet-tiny beats the persistence baseline."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import gpucnn
from gpucnn import ShapeError
from gpucnn.training import Trainer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wavenet_sine.py"


def load_example():
    spec = importlib.util.spec_from_file_location("wavenet_sine", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wavenet_example_beats_the_persistence_baseline(tmp_path, capsys):
    example = load_example()
    result = example.main(["--epochs", "3", "--out", str(tmp_path / "w"), "--verbose", "2"])
    printed = capsys.readouterr().out
    assert result["receptive_field"] == 33 and "receptive field: 33 samples" in printed
    base = result["baseline"]
    # 3 epochs reach ~4.05 nats per sample; persistence (its step distribution fitted on the training
    # part) scores 4.79, and a uniform guess ln 256 = 5.55
    assert result["test_loss"] < base.cross_entropy < np.log(256)
    assert f"vs the persistence baseline {base.cross_entropy:.4f}" in printed and "the model beats it" in printed
    assert result["mse"] < result["baseline_mse"]  # the expected value tracks the signal better, too
    assert result["plot"].is_file() and result["plot"].stat().st_size > 10_000
    h = result["trainer"].history
    assert all(0 <= a <= 1 for a in h["accuracy"])  # (per time step, not per window)


def test_sequence_task_wants_a_logit_per_time_step():
    x = np.zeros((4, 1, 16), np.float32)
    y = np.zeros((4, 16), np.int64)
    model = gpucnn.nn.Sequential(gpucnn.nn.Flatten(), gpucnn.nn.Linear(16, 3))
    data = gpucnn.data.TensorDataset(gpucnn.tensor(x), gpucnn.tensor(y))
    trainer = Trainer(model, gpucnn.optim.SGD(model.parameters(), lr=0.1), data, verbose=0, task="sequence")
    with pytest.raises(ShapeError, match=r"a sequence model must output logits \(N, classes, 16\)"):
        trainer.fit()
