"""1-D data for the WaveNet-style example: a synthetic signal, mu-law quantisation, next-sample windows,
and the persistence baseline a next-sample model has to beat.

- :func:`sine_mixture`: a seeded sum of sines plus Gaussian noise in [-1, 1].
- :func:`mu_law_encode` / :func:`mu_law_decode`: WaveNet's (ITU-T G.711-style) companding,
  ``F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` with ``mu = quantization_channels - 1``, quantised to
  ``quantization_channels`` classes (torchaudio's ``mu_law_encoding``/``mu_law_decoding`` conventions).
- :class:`NextSampleDataset`: sliding windows of the quantised signal; the target is the class of the
  sample after the window (or of every sample, shifted by one, for a fully causal net).
- :func:`persistence_baseline`: "the next sample equals this one", scored as a classifier would be.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from gpucnn.errors import ArgumentError, DataError

from .dataset import Dataset

TARGETS = ("next", "sequence")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def sine_mixture(length: int, n_components: int = 3, noise: float = 0.05, seed: int = 0,
                 min_period: float = 8.0, max_period: float = 64.0) -> np.ndarray:
    """A float32 signal of ``length`` samples: ``n_components`` sines with periods drawn uniformly from
    [``min_period``, ``max_period``] samples, amplitudes from [0.3, 1] and random phases, plus Gaussian
    noise of standard deviation ``noise`` (relative to the largest amplitude of 1), all from ``seed``.

    It is scaled by the fixed bound ``sum(amplitudes) + 4 * noise`` (so a prefix of a longer signal is
    the shorter signal) and clipped to [-1, 1], which only noise beyond 4 standard deviations reaches."""
    length = _check_int("length", length, 1)
    n_components = _check_int("n_components", n_components, 1)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ArgumentError(f"noise must be a number >= 0, got {noise!r}")
    if not (isinstance(min_period, (int, float)) and isinstance(max_period, (int, float))
            and 2 <= min_period <= max_period):
        raise ArgumentError(f"periods must satisfy 2 <= min_period <= max_period (at least 2 samples per cycle), "
                            f"got min_period={min_period!r}, max_period={max_period!r}")
    rng = np.random.Generator(np.random.PCG64(_check_int("seed", seed, 0)))
    periods = rng.uniform(min_period, max_period, n_components)
    amplitudes = rng.uniform(0.3, 1.0, n_components)
    amplitudes /= amplitudes.max()
    phases = rng.uniform(0, 2 * np.pi, n_components)
    t = np.arange(length, dtype=np.float64)[:, None]
    clean = (amplitudes * np.sin(2 * np.pi * t / periods + phases)).sum(axis=1)
    signal = (clean + rng.normal(0.0, noise, length)) / (amplitudes.sum() + 4 * noise)
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def _mu(quantization_channels: int) -> int:
    return _check_int("quantization_channels", quantization_channels, 2) - 1


def mu_law_compress(x: Any, quantization_channels: int = 256) -> np.ndarray:
    """The continuous companding ``F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` of ``x`` in [-1, 1]
    (float64). Values outside [-1, 1] or NaN raise :class:`~gpucnn.errors.ArgumentError`."""
    mu = _mu(quantization_channels)
    x = np.asarray(x, dtype=np.float64)
    if x.size and not (np.all(np.abs(x) <= 1.0)):
        bad = float(x[~(np.abs(x) <= 1.0)].flat[0])
        raise ArgumentError(f"mu-law: the signal must lie in [-1, 1], found {bad} (scale it first)")
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mu_law_expand(y: Any, quantization_channels: int = 256) -> np.ndarray:
    """The inverse of :func:`mu_law_compress`: ``sign(y) ((1 + mu)^|y| - 1) / mu`` (float64)."""
    mu = _mu(quantization_channels)
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def mu_law_encode(x: Any, quantization_channels: int = 256) -> np.ndarray:
    """``x`` in [-1, 1] as int64 classes ``floor((F(x) + 1) / 2 * mu + 0.5)`` in ``[0, mu]`` (0 is -1,
    ``mu`` is +1 and 0 falls in class ``(mu + 1) // 2``, 128 for 256 classes: torchaudio's convention)."""
    mu = _mu(quantization_channels)
    y = mu_law_compress(x, quantization_channels)
    return np.floor((y + 1) / 2 * mu + 0.5).astype(np.int64)


def mu_law_decode(codes: Any, quantization_channels: int = 256) -> np.ndarray:
    """Classes back to float32 values in [-1, 1]: ``F^-1(2 c / mu - 1)``. Round trip error bound:
    ``|x - decode(encode(x))| <= ln(1 + mu) / mu^2 * (1 + mu * max(|x|, |x'|))`` (half a class step in the
    companded domain, times the inverse's largest slope on that step)."""
    mu = _mu(quantization_channels)
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ArgumentError(f"mu_law_decode: codes must be integers, got dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() > mu):
        bad = int(c.min()) if c.min() < 0 else int(c.max())
        raise ArgumentError(f"mu_law_decode: codes must lie in [0, {mu}], found {bad}")
    return mu_law_expand(2.0 * c / mu - 1.0, quantization_channels).astype(np.float32)


class PersistenceBaseline(NamedTuple):
    """What "the next sample equals this one" scores: ``cross_entropy`` (nats per target, of the
    persistence distribution: see :func:`persistence_baseline`), ``accuracy`` (the next class equals the
    current one) and ``mse`` (of the decoded values, in the signal's units), over ``pairs`` targets."""

    cross_entropy: float
    accuracy: float
    mse: float
    pairs: int


def _delta_log_probs(fit_codes: np.ndarray, q: int, alpha: float) -> np.ndarray:
    """log P(d) for d = next - current in [-(q-1), q-1] (index d + q - 1): counts on ``fit_codes``
    plus ``alpha`` each (Laplace smoothing, so no class has probability 0)."""
    d = np.diff(fit_codes) + (q - 1)
    counts = np.bincount(d, minlength=2 * q - 1).astype(np.float64) + alpha
    return np.log(counts / counts.sum())


def _score(prev: np.ndarray, nxt: np.ndarray, fit_codes: np.ndarray, q: int, alpha: float) -> PersistenceBaseline:
    if len(fit_codes) < 2:
        raise DataError(f"persistence baseline: need at least 2 samples to fit the step distribution, got "
                        f"{len(fit_codes)}")
    log_p = _delta_log_probs(fit_codes, q, alpha)
    p = np.exp(log_p)
    # P(y | current c) = P(d = y - c) renormalised over the classes that exist (y in [0, q)): the steps
    # from c run from -c to q-1-c, table indices q-1-c .. 2q-2-c, whose mass is a cumsum difference
    cum = np.concatenate([[0.0], np.cumsum(p)])
    norm = cum[2 * q - 1 - prev] - cum[q - 1 - prev]
    ce = -(log_p[nxt - prev + q - 1] - np.log(norm))
    err = mu_law_decode(nxt, q).astype(np.float64) - mu_law_decode(prev, q)
    return PersistenceBaseline(float(ce.mean()), float(np.mean(nxt == prev)), float(np.mean(err ** 2)), int(len(nxt)))


def persistence_baseline(codes: Any, fit_codes: Optional[Any] = None, quantization_channels: int = 256,
                         alpha: float = 1.0) -> PersistenceBaseline:
    """The persistence baseline over every consecutive pair of ``codes`` (int classes).

    As a point prediction it says "next = current" (``accuracy``, ``mse``). As a distribution, so that its
    cross-entropy compares with a classifier's loss, it predicts ``P(next = current + d)`` with the
    distribution of steps ``d`` counted on ``fit_codes`` (e.g. the training part; default ``codes``
    itself) with Laplace smoothing ``alpha``, renormalised to the classes reachable from the current one:
    the best predictor that looks at the current sample only through the step it takes."""
    q = _mu(quantization_channels) + 1
    c = _as_codes(codes, q, "codes")
    fit = c if fit_codes is None else _as_codes(fit_codes, q, "fit_codes")
    if len(c) < 2:
        raise DataError(f"persistence baseline: need at least 2 samples, got {len(c)}")
    return _score(c[:-1], c[1:], fit, q, _check_alpha(alpha))


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ArgumentError(f"alpha must be a number > 0 (Laplace smoothing), got {alpha!r}")
    return float(alpha)


def _as_codes(codes: Any, q: int, name: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 1 or c.dtype.kind not in "iu":
        raise ArgumentError(f"{name} must be a 1-D integer array of classes, got {c.dtype} of shape {c.shape}")
    if c.size and (c.min() < 0 or c.max() >= q):
        raise ArgumentError(f"{name} must lie in [0, {q}), found {int(c.min() if c.min() < 0 else c.max())}")
    return c.astype(np.int64)


class NextSampleDataset(Dataset):
    """Sliding windows over a signal in [-1, 1], mu-law quantised to ``quantization_channels`` classes.

    Window ``i`` starts at ``s = i * stride`` and covers samples ``s .. s + window - 1``; ``ds[i]`` is
    ``(x, y)`` with ``x`` float32 (1, window), the decoded quantised samples (what the net sees carries
    exactly the information of the classes it predicts), and ``y`` the int64 class of sample
    ``s + window`` (``target="next"``), or the (window,) classes of samples ``s + 1 .. s + window``
    (``target="sequence"``: one target per position of a causal net's output).
    """

    def __init__(self, signal: Any, window: int, stride: int = 1, target: str = "next",
                 quantization_channels: int = 256) -> None:
        signal = np.asarray(signal)
        if signal.ndim != 1 or signal.dtype.kind not in "iuf":
            raise ArgumentError(f"NextSampleDataset: signal must be a 1-D numeric array, got {signal.dtype} of "
                                f"shape {signal.shape}")
        self.window = _check_int("window", window, 1)
        self.stride = _check_int("stride", stride, 1)
        if target not in TARGETS:
            raise ArgumentError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if len(signal) < self.window + 1:
            raise DataError(f"NextSampleDataset: a signal of {len(signal)} samples is too short for window "
                            f"{self.window} (it needs at least window + 1 = {self.window + 1})")
        self.target = target
        self.quantization_channels = _mu(quantization_channels) + 1
        self.codes = mu_law_encode(signal, self.quantization_channels)
        self.inputs = mu_law_decode(self.codes, self.quantization_channels)
        self._n = (len(signal) - self.window - 1) // self.stride + 1

    def __len__(self) -> int:
        return self._n

    def _start(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ArgumentError(f"NextSampleDataset: index must be an int, got {type(index).__name__}")
        i = int(index) + self._n if index < 0 else int(index)
        if not 0 <= i < self._n:
            raise IndexError(f"NextSampleDataset: index {index} is out of range for {self._n} windows")
        return i * self.stride

    def __getitem__(self, index: int) -> tuple[np.ndarray, Any]:
        s = self._start(index)
        x = self.inputs[s:s + self.window][None].copy()
        if self.target == "next":
            return x, int(self.codes[s + self.window])
        return x, self.codes[s + 1:s + self.window + 1].copy()

    def __getitems__(self, indices: list[int]) -> list[tuple[np.ndarray, Any]]:
        return [self[i] for i in indices]

    @property
    def num_classes(self) -> int:
        return self.quantization_channels

    @property
    def input_shape(self) -> tuple[int, int]:
        return (1, self.window)

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(current, next) classes of every target the dataset holds, each as often as it appears."""
        starts = np.arange(self._n) * self.stride
        if self.target == "next":
            pos = starts + self.window
        else:
            pos = (starts[:, None] + np.arange(1, self.window + 1)).reshape(-1)
        return self.codes[pos - 1], self.codes[pos]

    def persistence_baseline(self, fit_codes: Optional[Any] = None, alpha: float = 1.0) -> PersistenceBaseline:
        """:func:`persistence_baseline` over exactly this dataset's targets (the mean a loss over its
        batches averages), with the step distribution fitted on ``fit_codes`` (e.g. the training
        dataset's ``codes``; default this dataset's own)."""
        prev, nxt = self._pairs()
        q = self.quantization_channels
        fit = self.codes if fit_codes is None else _as_codes(fit_codes, q, "fit_codes")
        return _score(prev, nxt, fit, q, _check_alpha(alpha))

    def __repr__(self) -> str:
        return (f"NextSampleDataset(windows={self._n}, window={self.window}, stride={self.stride}, "
                f"target={self.target!r}, classes={self.quantization_channels})")
