"""WaveNet example data: the sine mixture, mu-law companding, next-sample windows, the persistence baseline."""
from __future__ import annotations

import numpy as np
import pytest

from gpucnn.data import DataLoader
from gpucnn.data.signals import (NextSampleDataset, mu_law_compress, mu_law_decode, mu_law_encode, mu_law_expand,
                                 persistence_baseline, sine_mixture)
from gpucnn.errors import ArgumentError, DataError


def test_sine_mixture_is_seeded_bounded_and_has_its_components():
    a = sine_mixture(4096, n_components=3, noise=0.0, seed=5)
    assert a.dtype == np.float32 and a.shape == (4096,)
    np.testing.assert_array_equal(a, sine_mixture(4096, n_components=3, noise=0.0, seed=5))
    np.testing.assert_array_equal(a[:1000], sine_mixture(1000, n_components=3, noise=0.0, seed=5))  # prefix
    assert not np.array_equal(a, sine_mixture(4096, n_components=3, noise=0.0, seed=6))
    assert np.abs(a).max() <= 1
    # sines with periods in [8, 64]: at most three spectral peaks, and (almost) all the power in that band
    power = np.abs(np.fft.rfft(a * np.hanning(len(a)))) ** 2
    freqs = np.fft.rfftfreq(len(a))
    peaks = [i for i in range(1, len(power) - 1) if power[i] > power[i - 1] and power[i] >= power[i + 1]
             and power[i] > 0.01 * power.max()]
    assert 1 <= len(peaks) <= 3 and all(1 / 64 <= freqs[i] <= 1 / 8 for i in peaks)
    band = (freqs >= 1 / 64 - 2 / len(a)) & (freqs <= 1 / 8 + 2 / len(a))
    assert power[band].sum() > 0.999 * power.sum()
    one = sine_mixture(4096, n_components=1, noise=0.0, seed=5).astype(np.float64)
    assert np.abs(one).max() == pytest.approx(1.0, abs=1e-3)  # one sine of amplitude 1 fills [-1, 1]

def test_noise_has_the_stated_scale():
    """noisy = (sines + n) / (S + 4 sigma) and clean = sines / S with the same sines (drawn first), so a
    least-squares fit noisy = g clean + e has g = S / (S + 4 sigma) and std(n) = std(e) 4 sigma / (1 - g)."""
    sigma = 0.1
    clean = sine_mixture(50000, n_components=2, noise=0.0, seed=3).astype(np.float64)
    noisy = sine_mixture(50000, n_components=2, noise=sigma, seed=3).astype(np.float64)
    g = (noisy @ clean) / (clean @ clean)
    e = noisy - g * clean
    assert np.std(e) * 4 * sigma / (1 - g) == pytest.approx(sigma, rel=0.03)  # 50,000 draws: ~0.3 % sd


def test_mu_law_closed_form():
    # ln(1 + 255 x) / ln(256) is exactly k/8 where 1 + 255 x = 2^k
    for k in range(9):
        x = (2 ** k - 1) / 255
        assert mu_law_compress(x) == pytest.approx(k / 8, abs=1e-15)
        assert mu_law_compress(-x) == pytest.approx(-k / 8, abs=1e-15)
        assert mu_law_expand(k / 8) == pytest.approx(x, rel=1e-13, abs=1e-16)
    assert mu_law_encode([-1.0, 0.0, 1.0]).tolist() == [0, 128, 255]
    np.testing.assert_array_equal(mu_law_decode(np.array([0, 255])), [-1, 1])
    x = np.linspace(-1, 1, 200001)  # spacing 1e-5, finer than the smallest class (8.6e-5 wide, at 0)
    codes = mu_law_encode(x)
    assert codes.dtype == np.int64 and codes.min() == 0 and codes.max() == 255
    assert np.all(np.diff(codes) >= 0) and len(np.unique(codes)) == 256  # monotone, every class used
    # against the formula written out independently
    want = np.floor((np.sign(x) * np.log(1 + 255 * np.abs(x)) / np.log(256) + 1) * 127.5 + 0.5)
    np.testing.assert_array_equal(codes, want)
    assert mu_law_encode([0.0, 1.0], quantization_channels=16).tolist() == [8, 15]


def test_mu_law_round_trip_error_bound():
    mu = 255
    x = np.concatenate([np.linspace(-1, 1, 200001), np.random.default_rng(0).uniform(-1, 1, 100000)])
    back = mu_law_decode(mu_law_encode(x)).astype(np.float64)
    err = np.abs(x - back)
    bound = np.log1p(mu) / mu ** 2 * (1 + mu * np.maximum(np.abs(x), np.abs(back)))
    slack = 2e-7  # decode returns float32: half an ulp of values up to 1 (6e-8), with room
    assert np.all(err <= bound + slack)
    assert err.max() > 0.5 * bound.max()  # the bound is not loose by orders of magnitude
    # fine steps near 0 (the bound there: ln(256) / 255^2 * (1 + 0.255) = 1.07e-4), ~90x finer than near 1
    assert err[np.abs(x) < 1e-3].max() < 1.1e-4 and err[np.abs(x) > 0.99].max() > 80 * 1.1e-4
    codes = np.arange(256)
    np.testing.assert_array_equal(mu_law_encode(mu_law_decode(codes)), codes)  # decode then encode: identity


def test_mu_law_bad_input():
    with pytest.raises(ArgumentError, match=r"must lie in \[-1, 1\], found 1.5"):
        mu_law_encode([0.0, 1.5])
    with pytest.raises(ArgumentError, match=r"must lie in \[-1, 1\], found nan"):
        mu_law_encode([np.nan])
    with pytest.raises(ArgumentError, match=r"codes must lie in \[0, 255\], found 256"):
        mu_law_decode(np.array([256]))
    with pytest.raises(ArgumentError, match="codes must be integers"):
        mu_law_decode(np.array([0.5]))
    with pytest.raises(ArgumentError, match="quantization_channels must be an int >= 2"):
        mu_law_encode([0.0], quantization_channels=1)


def test_next_sample_windows():
    signal = sine_mixture(100, seed=0)
    ds = NextSampleDataset(signal, window=10, stride=3)
    assert len(ds) == (100 - 11) // 3 + 1 == 30 and ds.num_classes == 256 and ds.input_shape == (1, 10)
    codes = mu_law_encode(signal)
    x, y = ds[4]
    assert x.shape == (1, 10) and x.dtype == np.float32 and isinstance(y, int)
    np.testing.assert_array_equal(x[0], mu_law_decode(codes[12:22]))
    assert y == codes[22]
    x, y = ds[-1]  # the last window ends just before the last usable target
    assert y == codes[29 * 3 + 10] and 29 * 3 + 10 <= 99
    seq = NextSampleDataset(signal, window=10, target="sequence")
    assert len(seq) == 90
    x, y = seq[7]
    np.testing.assert_array_equal(y, codes[8:18])
    np.testing.assert_array_equal(mu_law_encode(x[0].astype(np.float64)), codes[7:17])  # inputs hold the classes
    xb, yb = next(iter(DataLoader(ds, batch_size=8)))
    assert tuple(xb.shape) == (8, 1, 10) and tuple(yb.shape) == (8,) and str(yb.dtype) == "int64"
    with pytest.raises(DataError, match="too short for window 100"):
        NextSampleDataset(signal, window=100)
    with pytest.raises(ArgumentError, match="target must be one of next, sequence"):
        NextSampleDataset(signal, window=4, target="all")
    with pytest.raises(IndexError, match="index 30 is out of range for 30 windows"):
        ds[30]


def _brute_force_ce(codes, fit, q, alpha):
    steps = np.zeros(2 * q - 1)
    for a, b in zip(fit[:-1], fit[1:]):
        steps[b - a + q - 1] += 1
    steps += alpha
    total = 0.0
    for a, b in zip(codes[:-1], codes[1:]):
        p = np.array([steps[y - a + q - 1] for y in range(q)])
        total -= np.log(p[b] / p.sum())
    return total / (len(codes) - 1)


def test_persistence_baseline_against_a_loop():
    rng = np.random.default_rng(0)
    fit = np.clip(np.cumsum(rng.integers(-1, 2, 300)) + 4, 0, 7)
    codes = np.clip(np.cumsum(rng.integers(-2, 3, 100)) + 4, 0, 7)
    base = persistence_baseline(codes, fit, quantization_channels=8, alpha=0.5)
    assert base.cross_entropy == pytest.approx(_brute_force_ce(codes, fit, 8, 0.5), rel=1e-12)
    assert base.accuracy == pytest.approx(np.mean(codes[1:] == codes[:-1]))
    dec = mu_law_decode(codes, 8).astype(np.float64)
    assert base.mse == pytest.approx(np.mean(np.diff(dec) ** 2), rel=1e-6)
    assert base.pairs == 99


def test_persistence_baseline_extremes_and_the_dataset_pairs():
    flat = np.full(1000, 37)
    b = persistence_baseline(flat)
    assert b.accuracy == 1 and b.mse == 0
    # 999 steps of 0 plus alpha = 1 in each of the 256 reachable steps: P(0) = 1000 / 1255
    assert b.cross_entropy == pytest.approx(np.log(1255 / 1000), rel=1e-12)
    noise = np.random.default_rng(1).integers(0, 256, 20000)
    # iid uniform classes: nothing to predict, the loss is close to ln(256) (a little above: the fitted
    # step distribution is a triangle, not flat)
    assert np.log(256) - 0.05 < persistence_baseline(noise).cross_entropy < np.log(256) + 0.5
    smooth = mu_law_encode(sine_mixture(5000, noise=0.01, seed=2))
    assert persistence_baseline(smooth).cross_entropy < np.log(256) - 1  # a smooth signal: steps are predictable
    signal = sine_mixture(400, seed=3)
    ds = NextSampleDataset(signal, window=16)
    codes = mu_law_encode(signal)
    own = ds.persistence_baseline(fit_codes=codes)
    want = persistence_baseline(codes[15:], fit_codes=codes)  # targets 16..399, each after its predecessor
    assert own.pairs == len(ds) == want.pairs
    assert own.cross_entropy == pytest.approx(want.cross_entropy, rel=1e-12)
    seq = NextSampleDataset(signal, window=16, stride=16, target="sequence")
    assert seq.persistence_baseline().pairs == len(seq) * 16
    with pytest.raises(ArgumentError, match="alpha must be a number > 0"):
        persistence_baseline(codes, alpha=0)
    with pytest.raises(DataError, match="need at least 2 samples"):
        persistence_baseline(codes[:1])
