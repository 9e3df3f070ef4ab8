"""Segmentation data: SegmentationDataset, the images/ + masks/ folder, the .npz, colourised masks."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpucnn.data.segmentation import (SegmentationDataset, colorize_mask, load_segmentation_folder,
                                      load_segmentation_npz, palette, read_mask, save_mask_png)
from gpucnn.errors import ArgumentError, DataError


def _pair(rng, h=6, w=8, k=3):
    return rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8), rng.integers(0, k, size=(h, w))


@pytest.fixture
def folder(tmp_path):
    """root/images/{a,b,c}.png with masks/{a,b,c}.png (gray PNG, palette PNG, gray PNG)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "seg"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    truth = {}
    for name in ("a", "b", "c"):
        img, mask = _pair(rng)
        Image.fromarray(img).save(root / "images" / f"{name}.png")
        if name == "b":
            save_mask_png(root / "masks" / "b.png", mask)  # palette PNG: indices are the ids
        else:
            Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{name}.png")
        truth[name] = (img, mask)
    return root, truth


def test_folder_loads_images_and_masks(folder):
    root, truth = folder
    ds = load_segmentation_folder(root, num_classes=3)
    assert len(ds) == 3 and ds.input_shape == (3, 6, 8) and ds.num_classes == 3 and ds.images.dtype == np.uint8
    for i, name in enumerate("abc"):
        np.testing.assert_array_equal(ds.images[i], truth[name][0].transpose(2, 0, 1))
        np.testing.assert_array_equal(ds.masks[i], truth[name][1])
    image, mask = ds[1]
    assert image.dtype == np.float32 and np.allclose(image * 255, truth["b"][0].transpose(2, 0, 1))
    assert mask.dtype == np.int64
    assert len(ds[1:]) == 2 and ds[[0, 2]].masks.shape == (2, 6, 8)
    gray = load_segmentation_folder(root, classes=["bg", "x", "y"], mode="L")
    assert gray.input_shape == (1, 6, 8) and gray.classes == ["bg", "x", "y"]


def test_folder_errors_name_the_file(folder):
    root, _ = folder
    with pytest.raises(DataError, match=r"masks/a\.png: class id 2 at pixel \(row \d+, column \d+\) is outside \[0, 2"):
        load_segmentation_folder(root, num_classes=2)
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(root / "masks" / "c.png")
    with pytest.raises(DataError, match=r"masks/c\.png: mask is 5x8 \(HxW\) but its image .*images/c\.png is 6x8"):
        load_segmentation_folder(root)
    (root / "masks" / "c.png").unlink()
    with pytest.raises(DataError, match=r"masks/c\.png: missing mask for image .*images/c\.png"):
        load_segmentation_folder(root)
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / "c.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / "d.png")
    with pytest.raises(DataError, match=r"masks/d\.png: mask without an image"):
        load_segmentation_folder(root)
    (root / "masks" / "d.png").unlink()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "masks" / "c.png")
    with pytest.raises(DataError, match=r"masks/c\.png: a mask must be one channel of class ids .* got image mode RGB"):
        load_segmentation_folder(root)
    (root / "masks" / "c.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"masks/c\.png: unreadable mask"):
        load_segmentation_folder(root)
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / "c.png")
    Image.fromarray(np.zeros((7, 8, 3), np.uint8)).save(root / "images" / "c.png")
    with pytest.raises(DataError, match=r"images/c\.png: image is 7x8 \(HxW\) but the first image is 6x8"):
        load_segmentation_folder(root)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "images" / "c.png")
    (root / "images" / "c.txt").write_text("x")
    with pytest.raises(DataError, match=r"images/c\.txt: not an image file"):
        load_segmentation_folder(root)
    with pytest.raises(DataError, match="nowhere/images: not a directory"):
        load_segmentation_folder(root / "nowhere")


def test_npz(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(4, 5, 6)).astype(np.uint8)
    y = rng.integers(0, 4, size=(4, 5, 6)).astype(np.int32)
    path = tmp_path / "seg.npz"
    np.savez(path, x=x, y=y, classes=np.array(["bg", "a", "b", "c"]))
    ds = load_segmentation_npz(path)
    assert ds.input_shape == (1, 5, 6) and ds.classes == ["bg", "a", "b", "c"] and ds.masks.dtype == np.int64
    np.testing.assert_array_equal(ds.masks, y)
    x4 = rng.random((4, 3, 5, 6)).astype(np.float32)
    np.savez(path, x_train=x4, y_train=y)
    assert load_segmentation_npz(path, split="train", num_classes=4).input_shape == (3, 5, 6)

    np.savez(path, x=x, y=y)
    with pytest.raises(DataError, match=r"seg\.npz: y\[\d\]: class id 3 at pixel .* outside \[0, 3\)"):
        load_segmentation_npz(path, num_classes=3)
    np.savez(path, x=x, y=y[:, :4])
    with pytest.raises(DataError, match=r"seg\.npz: y has shape \(4, 4, 6\) but x \(4, 1, 5, 6\)"):
        load_segmentation_npz(path)
    np.savez(path, x=x, y=y.astype(np.float32))
    with pytest.raises(DataError, match=r"seg\.npz: y must be integer class ids of shape \(N, H, W\), got float32"):
        load_segmentation_npz(path)
    np.savez(path, x=x, y=-np.ones_like(y))
    with pytest.raises(DataError, match="class id -1"):
        load_segmentation_npz(path, num_classes=4)
    np.savez(path, x=x)
    with pytest.raises(DataError, match=r"seg\.npz: missing array 'y'"):
        load_segmentation_npz(path)


def test_dataset_checks():
    images = np.zeros((2, 3, 4, 5), np.uint8)
    with pytest.raises(DataError, match=r"masks have shape \(2, 4, 4\) but images \(2, 3, 4, 5\)"):
        SegmentationDataset(images, np.zeros((2, 4, 4), int))
    with pytest.raises(DataError, match="dataset 't': mask 1: class id 5 at pixel"):
        masks = np.zeros((2, 4, 5), int)
        masks[1, 2, 3] = 5
        SegmentationDataset(images, masks, num_classes=3, name="t")
    with pytest.raises(DataError, match="images must be uint8 or float32"):
        SegmentationDataset(images.astype(np.int16), np.zeros((2, 4, 5), int))
    assert SegmentationDataset(images, np.zeros((2, 4, 5), int)).num_classes == 1


def test_palette_colours_and_mask_png_round_trip(tmp_path):
    p = palette(256)
    assert p[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]  # PASCAL VOC's
    assert len({tuple(c) for c in p}) == 256
    mask = np.array([[0, 1, 2], [3, 2, 1]])
    rgb = colorize_mask(mask)
    assert rgb.shape == (2, 3, 3) and rgb[0, 1].tolist() == [128, 0, 0]
    path = save_mask_png(tmp_path / "m.png", mask)
    img = Image.open(path)
    assert img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), rgb)  # shows in colour
    np.testing.assert_array_equal(read_mask(path), mask)  # and reads back as the ids
    own = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90], [1, 2, 3]], np.uint8)
    save_mask_png(tmp_path / "own.png", mask, own)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "own.png").convert("RGB")), own[mask])
    with pytest.raises(ArgumentError, match="class id 4, outside the 4 colours"):
        colorize_mask(np.array([[4]]), own)
    with pytest.raises(ArgumentError, match="class id 300 does not fit a palette PNG"):
        save_mask_png(tmp_path / "big.png", np.array([[300]]))
    assert not (tmp_path / "big.png").exists()
