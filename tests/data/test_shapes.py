"""The generated ``shapes`` segmentation dataset: determinism, geometry, masks that match the pixels."""
from __future__ import annotations

import numpy as np
import pytest

from gpucnn.data import DataLoader
from gpucnn.data.segmentation import SegmentationDataset
from gpucnn.data.shapes import CIRCLE, SQUARE, TRIANGLE, ShapesDataset, shape_mask
from gpucnn.errors import ArgumentError


def test_items_are_deterministic_by_seed_and_index():
    a, b = ShapesDataset(20, size=32, seed=3), ShapesDataset(5, size=32, seed=3)
    for i in (4, 0, 2):  # any order, any length: item i depends on (seed, i) only
        np.testing.assert_array_equal(a.sample(i)[0], b.sample(i)[0])
        np.testing.assert_array_equal(a.sample(i)[1], b.sample(i)[1])
    other = ShapesDataset(5, size=32, seed=4)
    assert not np.array_equal(a.sample(0)[0], other.sample(0)[0])
    np.testing.assert_array_equal(a[-1][1], a.sample(19)[1])


def test_item_types_ranges_and_class_content():
    ds = ShapesDataset(40, size=32, seed=0, max_shapes=3)
    image, mask = ds[0]
    assert image.dtype == np.float32 and image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    assert mask.dtype == np.int64 and mask.shape == (32, 32)
    assert ds.num_classes == 4 and ds.classes == ["background", "circle", "square", "triangle"]
    counts = ds.to_dataset().class_pixel_counts()
    assert counts.sum() == 40 * 32 * 32 and np.all(counts > 0)  # every class shows up
    assert counts[0] > counts[1:].max()  # background dominates, as in real segmentation data
    for i in range(40):
        m = ds.sample(i)[1]
        assert 0 < np.count_nonzero(m) < m.size  # at least one shape, never the whole picture


def test_shape_pixels_differ_from_the_background():
    """A mask that matches the picture: shape pixels' colours stand apart from the background's."""
    ds = ShapesDataset(10, size=48, seed=1, max_shapes=1, noise=0.0)
    for i in range(10):
        image, mask = ds.sample(i)
        img = image.astype(np.float64)
        inside, outside = img[:, mask > 0].mean(axis=1), img[:, mask == 0]
        # distance of the shape's mean colour from the closest background pixel colour
        assert np.min(np.linalg.norm(outside - inside[:, None], axis=0)) > 30


def test_shape_geometry():
    n = 200
    circle = shape_mask(CIRCLE, n, 100, 100, 50)
    assert abs(circle.sum() - np.pi * 50 ** 2) < 2 * np.pi * 50  # area within one perimeter of pi r^2
    square = shape_mask(SQUARE, n, 100, 100, 40)
    assert square.sum() == 80 * 80
    tri = shape_mask(TRIANGLE, n, 100, 100, 60, angle=0.3)
    side = 60 * np.sqrt(3)
    assert abs(tri.sum() - np.sqrt(3) / 4 * side ** 2) < 3 * side  # area within its perimeter
    ys, xs = np.nonzero(tri)
    assert np.all(np.hypot(ys + 0.5 - 100, xs + 0.5 - 100) <= 60 + 1e-9)  # inside the circumcircle
    assert tri[100, 100] and not tri[0, 0]


def test_to_dataset_and_loader():
    ds = ShapesDataset(6, size=16, seed=2)
    seg = ds.to_dataset()
    assert isinstance(seg, SegmentationDataset) and seg.images.dtype == np.uint8 and seg.images.shape == (6, 3, 16, 16)
    np.testing.assert_array_equal(seg.masks[3], ds[3][1])
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert tuple(x.shape) == (4, 3, 16, 16) and str(x.dtype) == "float32"
    assert tuple(y.shape) == (4, 16, 16) and str(y.dtype) == "int64"


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="n must be an int >= 1, got 0"):
        ShapesDataset(0)
    with pytest.raises(ArgumentError, match="size must be an int >= 16, got 8"):
        ShapesDataset(4, size=8)
    with pytest.raises(ArgumentError, match="noise must be a number"):
        ShapesDataset(4, noise=-1)
    with pytest.raises(IndexError, match="index 4 is out of range for 4 items"):
        ShapesDataset(4)[4]
