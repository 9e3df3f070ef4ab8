"""Batch transforms: shapes, dtypes, the maths, randomness and config round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gpucnn.data import (
    ArrayDataset, Compose, Normalize, RandomCrop, RandomHorizontalFlip, Standardize, ToFloat, transform_from_config,
)
from gpucnn.errors import ArgumentError, ShapeError


def _batch(n=6, c=3, h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def test_to_float_range_and_dtype():
    x = _batch()
    out = ToFloat()(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.allclose(out, x / 255.0, atol=1e-7)
    assert ToFloat(scale=1.0)(np.array([[[[255]]]], np.uint8)).item() == 255.0


def test_normalize_math_per_channel():
    x = ToFloat()(_batch())
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 2.0]
    out = Normalize(mean, std)(x)
    assert out.dtype == np.float32
    expected = (x.astype(np.float64) - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    assert np.allclose(out, expected, atol=1e-6)
    assert Normalize(0.5, 0.5)(x).dtype == np.float32  # scalars broadcast over channels
    with pytest.raises(ShapeError):
        Normalize([0, 0], [1, 1])(x)
    with pytest.raises(ArgumentError):
        Normalize([0], [0])


def test_normalize_1d_data():
    x = np.ones((2, 2, 9), np.float32)
    assert np.allclose(Normalize([1, 0], [1, 2])(x)[:, 1], 0.5)


def test_standardize_fit_gives_zero_mean_unit_std():
    x = _batch(n=50, seed=1)
    x[:, 2] //= 4  # a channel with different statistics
    ds = ArrayDataset(x, np.zeros(50, np.int64))
    norm = Standardize.fit(ds)
    out = norm(ToFloat()(x))
    assert np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    assert np.allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-3)
    const = ArrayDataset(np.full((4, 1, 2, 2), 7, np.uint8), np.zeros(4, np.int64))
    assert Standardize.fit(const).std == [1.0]


def test_random_crop_with_padding_keeps_shape_and_shifts_content():
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6) + 1  # no zeros inside
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    crop = RandomCrop(6, padding=2)
    offsets = set()
    for seed in range(20):
        out = crop(x, np.random.default_rng(seed))
        assert out.shape == x.shape and out.dtype == np.float32
        for i in range(2):
            # Each crop is the zero-padded image seen through a 6x6 window at some offset.
            found = [(dy, dx) for dy in range(5) for dx in range(5)
                     if np.array_equal(out[i, 0], padded[i, 0, dy:dy + 6, dx:dx + 6])]
            assert found
            offsets.add(found[0])
    assert len(offsets) > 5 and offsets != {(2, 2)}  # the content really moves, by varying amounts
    assert RandomCrop((3, 4))(_batch(h=5, w=7), np.random.default_rng(0)).shape == (6, 3, 3, 4)
    with pytest.raises(ShapeError):
        RandomCrop(9)(_batch(h=5, w=7), np.random.default_rng(0))


def test_random_crop_without_padding_on_uint8_stays_uint8():
    out = RandomCrop(4)(_batch(), np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == (6, 3, 4, 4)


def test_flip_is_a_real_flip():
    x = _batch(n=40)
    out = RandomHorizontalFlip(p=0.5)(x, np.random.default_rng(3))
    flipped = [i for i in range(40) if np.array_equal(out[i], x[i, :, :, ::-1])]
    kept = [i for i in range(40) if np.array_equal(out[i], x[i])]
    assert len(flipped) + len(kept) == 40 and flipped and kept
    assert np.array_equal(RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    assert np.array_equal(RandomHorizontalFlip(p=0.0)(x, np.random.default_rng(0)), x)
    x_before = x.copy()
    RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))
    assert np.array_equal(x, x_before)  # the input is never modified


def test_same_seed_same_augmentation():
    pipe = Compose([RandomCrop(5, padding=1), RandomHorizontalFlip(), ToFloat(), Normalize([0.5] * 3, [0.25] * 3)])
    x = _batch(h=5, w=5)
    a = pipe(x, np.random.default_rng(11))
    b = pipe(x, np.random.default_rng(11))
    c = pipe(x, np.random.default_rng(12))
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_config_round_trip():
    pipe = Compose([RandomCrop((28, 28), padding=4), RandomHorizontalFlip(0.3), ToFloat(),
                    Normalize([0.1307], [0.3081])])
    config = json.loads(json.dumps(pipe.config()))
    rebuilt = transform_from_config(config)
    assert rebuilt == pipe and rebuilt.config() == pipe.config()
    x = _batch(c=1, h=28, w=28)
    assert np.array_equal(rebuilt(x, np.random.default_rng(5)), pipe(x, np.random.default_rng(5)))
    with pytest.raises(ArgumentError, match="unknown transform type"):
        transform_from_config({"type": "Rotate"})
    with pytest.raises(ArgumentError):
        transform_from_config({"type": "ToFloat", "bogus": 1})
