"""Batch transforms for training pipelines: whole (N, C, H, W) batches at once, float32 out.

Random transforms draw from the ``rng`` they are given (a ``np.random.Generator``), so the
:class:`~gpucnn.data.loader.DataLoader` controls, and can replay, every random choice. Each transform
describes itself with ``config()`` (a JSON-serialisable dict) and :func:`transform_from_config`
rebuilds it, so a pipeline can be saved next to a model without pickle.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpucnn.errors import ArgumentError, ShapeError

from .dataset import ArrayDataset


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


class Transform:
    """Base class: ``t(x, rng)`` maps a batch to a batch."""

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and self.config() == other.config()


class ToFloat(Transform):
    """``x.astype(float32) * scale``; the default turns uint8 pixels 0..255 into 0..1."""

    def __init__(self, scale: float = 1.0 / 255.0) -> None:
        self.scale = float(scale)

    def __call__(self, x, rng=None):
        out = np.asarray(x).astype(np.float32)
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        return out

    def config(self):
        return {"type": "ToFloat", "scale": self.scale}


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel (axis 1); a scalar applies to every channel."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = [float(m) for m in np.atleast_1d(np.asarray(mean, dtype=np.float64))]
        self.std = [float(s) for s in np.atleast_1d(np.asarray(std, dtype=np.float64))]
        if len(self.mean) != len(self.std):
            raise ArgumentError(f"Normalize: {len(self.mean)} means but {len(self.std)} stds")
        if not all(s > 0 and np.isfinite(s) for s in self.std) or not all(np.isfinite(self.mean)):
            raise ArgumentError(f"Normalize: std must be positive and finite, got {self.std}")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim < 2:
            raise ShapeError(f"Normalize expects a batch (N, C, ...), got shape {x.shape}")
        c = x.shape[1]
        if len(self.mean) not in (1, c):
            raise ShapeError(f"Normalize has {len(self.mean)} channel means but the batch has {c} channels")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        out = x.astype(np.float32)  # a copy, so the in-place ops below never touch the input
        out -= mean
        out /= std
        return out

    def config(self):
        return {"type": "Normalize", "mean": list(self.mean), "std": list(self.std)}


class Standardize:
    """Fits a :class:`Normalize` to training data: ``Standardize.fit(train_set)``."""

    @staticmethod
    def fit(dataset: ArrayDataset | np.ndarray, scale: float | None = None, chunk: int = 4096) -> Normalize:
        """Per-channel mean and std of ``dataset`` after multiplying by ``scale``.

        ``scale`` defaults to 1/255 for uint8 images (matching a preceding :class:`ToFloat`) and 1
        for float images. Channels with zero spread get std 1 so they pass through unchanged.
        """
        x = dataset.images if isinstance(dataset, ArrayDataset) else np.asarray(dataset)
        if x.ndim < 3 or len(x) == 0:
            raise ShapeError(f"Standardize.fit needs a non-empty (N, C, ...) batch, got shape {x.shape}")
        if scale is None:
            scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
        c = x.shape[1]
        total = np.zeros(c)
        total_sq = np.zeros(c)
        if x.dtype == np.uint8:
            # Exact integer sums (uint64 cannot overflow here), chunked to bound memory.
            axes = tuple(a for a in range(x.ndim) if a != 1)
            for start in range(0, len(x), chunk):
                part = x[start:start + chunk]
                total += part.sum(axis=axes, dtype=np.uint64)
                sq = part.astype(np.uint32)
                sq *= sq
                total_sq += sq.sum(axis=axes, dtype=np.uint64)
        else:
            # Chunks of float64 keep memory bounded and the sums accurate on large datasets.
            for start in range(0, len(x), chunk):
                part = x[start:start + chunk].astype(np.float64).swapaxes(0, 1).reshape(c, -1)
                total += part.sum(axis=1)
                total_sq += np.square(part).sum(axis=1)
        n = x.size // c
        mean = total / n
        var = np.maximum(total_sq / n - mean**2, 0.0)
        std = np.sqrt(var) * scale
        std[std <= 1e-12] = 1.0
        return Normalize((mean * scale).tolist(), std.tolist())


class RandomCrop(Transform):
    """Zero-pad each side by ``padding``, then crop a random ``size`` window per image."""

    def __init__(self, size: int | Sequence[int], padding: int = 0) -> None:
        h, w = (size, size) if np.isscalar(size) else tuple(size)
        self.size = (int(h), int(w))
        self.padding = int(padding)
        if min(self.size) < 1 or self.padding < 0:
            raise ArgumentError(f"RandomCrop: size must be positive and padding >= 0, got {size}, {padding}")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ShapeError(f"RandomCrop expects (N, C, H, W) batches, got shape {x.shape}")
        p, (h, w) = self.padding, self.size
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, hp, wp = x.shape
        if h > hp or w > wp:
            raise ShapeError(f"RandomCrop: crop {h}x{w} is larger than the padded image {hp}x{wp}")
        rng = _rng(rng)
        dy = rng.integers(0, hp - h + 1, size=n)
        dx = rng.integers(0, wp - w + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(x, (h, w), axis=(2, 3))
        # windows[i, :, dy[i], dx[i]] is image i's crop; advanced indexing gathers them in one copy.
        return windows[np.arange(n), :, dy, dx]

    def config(self):
        return {"type": "RandomCrop", "size": list(self.size), "padding": self.padding}


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right (last axis) with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(p)
        if not 0.0 <= self.p <= 1.0:
            raise ArgumentError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        flip = _rng(rng).random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out

    def config(self):
        return {"type": "RandomHorizontalFlip", "p": self.p}


class Compose(Transform):
    """Apply transforms in order, sharing one ``rng``."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise ArgumentError(f"Compose takes Transform objects, got {type(t).__name__}")

    def __call__(self, x, rng=None):
        rng = _rng(rng)
        for t in self.transforms:
            x = t(x, rng)
        return x

    def config(self):
        return {"type": "Compose", "transforms": [t.config() for t in self.transforms]}

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


_TYPES = {cls.__name__: cls for cls in (ToFloat, Normalize, RandomCrop, RandomHorizontalFlip, Compose)}


def transform_from_config(config: dict[str, Any]) -> Transform:
    """Rebuild a transform (or a whole :class:`Compose` pipeline) from its ``config()`` dict."""
    if not isinstance(config, dict) or "type" not in config:
        raise ArgumentError(f"a transform config must be a dict with a 'type', got {config!r}")
    kind = config["type"]
    if kind not in _TYPES:
        raise ArgumentError(f"unknown transform type {kind!r} (known: {', '.join(sorted(_TYPES))})")
    args = {k: v for k, v in config.items() if k != "type"}
    try:
        if kind == "Compose":
            return Compose([transform_from_config(c) for c in args.get("transforms", [])])
        return _TYPES[kind](**args)
    except TypeError as exc:
        raise ArgumentError(f"bad arguments for transform {kind}: {exc}") from None
