"""WaveNet on a synthetic signal: predict the next mu-law sample of a noisy sum of sines.

    python examples/wavenet_sine.py                      # a few epochs, ~half a minute on two cores
    python examples/wavenet_sine.py --epochs 12 --out runs/wavenet

Trains ``wavenet-tiny`` (dilated causal Conv1d, gated tanh x sigmoid units, residual and skip 1x1 convs;
gpucnn.models.WaveNet) with :class:`gpucnn.training.Trainer` (``task="sequence"``: a 256-way class per
time step) on windows of the signal, then prints the receptive field, the test loss against the
persistence baseline ("the next sample is this one", scored as a distribution over the 256 classes:
gpucnn.data.signals.persistence_baseline) and writes ``prediction.png``: the model's expected next
value over a stretch of the test signal, with both errors.

Why an example and not ``gpucnn train --task sequence``: the data here is a generated signal cut into
windows, the baseline and the plot are specific to next-sample prediction, and the Python is what a
user adapts (another signal, another net); the train command's pipeline is built around image files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

import gpucnn
from gpucnn.data import DataLoader
from gpucnn.data.signals import NextSampleDataset, mu_law_decode, sine_mixture
from gpucnn.models import build_model
from gpucnn.training import Trainer
from gpucnn.training.plots import plot_signal_prediction

QUANTIZATION = 256


def make_data(length: int, window: int, seed: int, test_fraction: float = 0.2) -> tuple[Any, Any]:
    """Training windows from the start of one signal, test windows from its end (the future)."""
    signal = sine_mixture(length, n_components=3, noise=0.03, seed=seed)
    cut = int(length * (1 - test_fraction))
    train = NextSampleDataset(signal[:cut], window, stride=window // 4, target="sequence")
    test = NextSampleDataset(signal[cut:], window, stride=window, target="sequence")
    return train, test


def expected_values(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's mean prediction (in the signal's units) of each next sample of windows ``x`` (N, 1, T)."""
    centres = mu_law_decode(np.arange(QUANTIZATION), QUANTIZATION).astype(np.float64)
    model.eval()
    with gpucnn.no_grad():
        probs = gpucnn.functional.softmax(model(gpucnn.tensor(x)), dim=1).numpy().astype(np.float64)
    return np.einsum("nct,c->nt", probs, centres)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--length", type=int, default=12000, help="samples in the whole signal")
    parser.add_argument("--window", type=int, default=128, help="samples per training window")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/wavenet-sine"))
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    gpucnn.manual_seed(args.seed)
    train, test = make_data(args.length, args.window, args.seed)
    model = build_model("wavenet-tiny", num_classes=QUANTIZATION)
    say = print if args.verbose else (lambda *a: None)
    say(f"wavenet-tiny: {model.num_parameters():,} parameters, dilations {model.dilations}, receptive field "
        f"{model.receptive_field} samples (window {args.window})")
    say(f"data: {len(train)} training / {len(test)} test windows of a {args.length}-sample sum of sines, "
        f"mu-law quantised to {QUANTIZATION} classes")
    trainer = Trainer(model, gpucnn.optim.Adam(model.parameters(), lr=args.lr),
                      DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed), test,
                      epochs=args.epochs, out_dir=args.out, seed=args.seed, task="sequence",
                      test_data=test, verbose=args.verbose, classes=[str(c) for c in range(QUANTIZATION)])
    trainer.fit()
    loss = trainer.test_metrics["loss"]
    base = test.persistence_baseline(fit_codes=train.codes)  # (its step distribution from the training part)
    say(f"receptive field: {model.receptive_field} samples")
    say(f"test loss {loss:.4f} nats per sample (accuracy {trainer.test_metrics['accuracy'] * 100:.1f}%) vs the "
        f"persistence baseline {base.cross_entropy:.4f} (accuracy {base.accuracy * 100:.1f}%): "
        + ("the model beats it" if loss < base.cross_entropy else "the model does NOT beat it: train longer"))

    # the plot: one-step predictions over the first test windows, laid end to end
    x = np.stack([test[i][0] for i in range(min(4, len(test)))])
    targets = np.concatenate([mu_law_decode(test[i][1], QUANTIZATION) for i in range(len(x))])
    pred = expected_values(model, x).reshape(-1)
    previous = x[:, 0, :].reshape(-1)  # (persistence: the sample before each target)
    mse, base_mse = float(np.mean((pred - targets) ** 2)), float(np.mean((previous - targets) ** 2))
    plot = plot_signal_prediction(targets, pred, args.out / "prediction.png", start=int(len(train.codes)) + 1,
                                  baseline=previous,
                                  title=f"wavenet-tiny, next-sample prediction on test data (MSE {mse:.2e}, "
                                        f"persistence {base_mse:.2e})")
    say(f"wrote {plot}")
    return {"receptive_field": model.receptive_field, "test_loss": loss, "baseline": base, "plot": plot,
            "mse": mse, "baseline_mse": base_mse, "trainer": trainer}


if __name__ == "__main__":
    main(sys.argv[1:])
