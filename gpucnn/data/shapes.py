"""``shapes``: a built-in segmentation dataset generated on the fly (no download).

Each image holds 1..``max_shapes`` filled circles, squares and triangles on a textured background
(striped in a random direction and frequency, plus pixel noise); its mask gives each pixel's class:
0 background, 1 circle, 2 square, 3 triangle (a later shape covers an earlier one). Shapes have their own
colour (kept away from the background's) and grain, so colour alone rarely gives the class away: a model
has to look at outlines. Item ``i`` depends only on ``(seed, i)``, so a dataset of any length and any
access order gives the same pictures; use another ``seed`` for a test set.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from gpucnn.errors import ArgumentError

from .dataset import Dataset
from .segmentation import SegmentationDataset

SHAPES_CLASSES = ("background", "circle", "square", "triangle")
BACKGROUND, CIRCLE, SQUARE, TRIANGLE = range(4)
_MIN_COLOUR_DISTANCE = 90.0  # RGB distance between a shape's colour and the background's two colours


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def shape_mask(kind: int, size: int, cy: float, cx: float, radius: float, angle: float = 0.0) -> np.ndarray:
    """Boolean (size, size) mask of one shape, tested at pixel centres: a circle of ``radius``, an
    axis-aligned square of half-side ``radius``, or an equilateral triangle of circumradius ``radius``
    turned by ``angle`` radians."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    dy, dx = y - cy, x - cx
    if kind == CIRCLE:
        return dy * dy + dx * dx <= radius * radius
    if kind == SQUARE:
        return (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    if kind == TRIANGLE:
        inside = np.ones((size, size), bool)
        # inside = on the inner side of each edge's line; the inradius is radius / 2
        for k in range(3):
            normal = angle + np.pi / 3 + 2 * np.pi * k / 3
            inside &= dx * np.cos(normal) + dy * np.sin(normal) <= radius / 2
        return inside
    raise ArgumentError(f"shape kind must be 1 (circle), 2 (square) or 3 (triangle), got {kind!r}")


def _colour_away_from(rng: np.random.Generator, avoid: list[np.ndarray]) -> np.ndarray:
    for _ in range(64):
        colour = rng.uniform(0, 255, 3)
        if all(np.linalg.norm(colour - a) >= _MIN_COLOUR_DISTANCE for a in avoid):
            return colour
    return 255.0 - avoid[0]  # (rare) the complement is far from a mid-range background


def generate_shapes_sample(rng: np.random.Generator, size: int = 64, max_shapes: int = 3,
                           noise: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """One ``(image uint8 (3, size, size), mask int64 (size, size))`` drawn from ``rng``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    # background: two colours mixed by stripes of random direction and period (4 to 16 pixels)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 16)
    phase = rng.uniform(0, 2 * np.pi)
    mix = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
    image = c0[:, None, None] * (1 - mix) + c1[:, None, None] * mix
    mask = np.zeros((size, size), np.int64)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        kind = int(rng.integers(1, 4))
        radius = rng.uniform(0.1, 0.22) * size
        cy, cx = rng.uniform(radius, size - radius, 2)  # every shape lies within `radius` of its centre
        region = shape_mask(kind, size, cy, cx, radius, rng.uniform(0, 2 * np.pi))
        colour = _colour_away_from(rng, [c0, c1])
        grain = rng.uniform(-25, 25, (size, size))  # the shape's own texture
        image[:, region] = np.clip(colour[:, None] + grain[region][None, :], 0, 255)
        mask[region] = kind
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


class ShapesDataset(Dataset):
    """``n`` generated images of ``size`` x ``size`` pixels with 1..``max_shapes`` shapes each (see the
    module docstring). ``ds[i]`` is ``(image float32 (3, size, size) in 0..1, mask int64 (size, size))``,
    drawn when asked for from ``(seed, i)``; :meth:`sample` gives the uint8 image and
    :meth:`to_dataset` draws them all into a :class:`SegmentationDataset`."""

    classes = list(SHAPES_CLASSES)

    def __init__(self, n: int = 1000, size: int = 64, seed: int = 0, max_shapes: int = 3, noise: float = 12.0) -> None:
        self.n = _check_int("n", n, 1)
        self.size = _check_int("size", size, 16)
        self.seed = _check_int("seed", seed, 0)
        self.max_shapes = _check_int("max_shapes", max_shapes, 1)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 128:
            raise ArgumentError(f"noise must be a number in [0, 128] (pixel standard deviation), got {noise!r}")
        self.noise = float(noise)
        self.name = "shapes"
        self.source = (f"generated shapes (n={self.n}, {self.size}x{self.size}, seed {self.seed}, "
                       f"up to {self.max_shapes} shapes each)")

    def __len__(self) -> int:
        return self.n

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, index])))

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` as ``(image uint8 (3, H, W), mask int64 (H, W))``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ArgumentError(f"ShapesDataset: index must be an int, got {type(index).__name__}")
        i = int(index) + self.n if index < 0 else int(index)
        if not 0 <= i < self.n:
            raise IndexError(f"ShapesDataset: index {index} is out of range for {self.n} items")
        return generate_shapes_sample(self._rng(i), self.size, self.max_shapes, self.noise)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self.sample(index)
        return image.astype(np.float32) / 255, mask

    @property
    def num_classes(self) -> int:
        return len(SHAPES_CLASSES)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def to_dataset(self, indices: Optional[Any] = None) -> SegmentationDataset:
        """Draw the items (all, or those at ``indices``) into a :class:`SegmentationDataset` (uint8 images)."""
        chosen = range(self.n) if indices is None else [int(i) for i in np.asarray(indices).reshape(-1)]
        pairs = [self.sample(i) for i in chosen]
        if not pairs:
            raise ArgumentError("ShapesDataset.to_dataset: no items chosen")
        return SegmentationDataset(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                                   list(SHAPES_CLASSES), name=self.name, source=self.source)

    def __repr__(self) -> str:
        return f"ShapesDataset(n={self.n}, size={self.size}, seed={self.seed}, max_shapes={self.max_shapes})"
