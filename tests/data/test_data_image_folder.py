"""Image folders (one sub-folder per class) read with Pillow."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpucnn.data import load_image_folder
from gpucnn.errors import DataError


def test_grayscale_png_round_trip(tmp_path, build):
    made = build.write_image_folder(tmp_path / "f", classes=("b_dog", "a_cat"), per_class=2, size=(6, 5))
    ds = load_image_folder(tmp_path / "f")
    assert ds.classes == ["a_cat", "b_dog"]  # sorted names are the class indices
    assert ds.images.shape == (4, 1, 6, 5) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 1, 1]
    expected = [made[tmp_path / "f" / c / f"{i}.png"] for c in ("a_cat", "b_dog") for i in range(2)]
    assert np.array_equal(ds.images[:, 0], np.stack(expected))


@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_rgb_round_trip(tmp_path, build, fmt):
    made = build.write_image_folder(tmp_path / "f", mode="RGB", fmt=fmt, per_class=1, size=(4, 7))
    ds = load_image_folder(tmp_path / "f")
    assert ds.images.shape == (2, 3, 4, 7)
    assert np.array_equal(ds.images[0].transpose(1, 2, 0), made[tmp_path / "f" / "cat" / f"0.{fmt}"])


def test_mode_conversion_and_resize(tmp_path, build):
    build.write_image_folder(tmp_path / "f", mode="RGB", per_class=2, size=(8, 8))
    assert load_image_folder(tmp_path / "f", mode="L").images.shape == (4, 1, 8, 8)
    ds = load_image_folder(tmp_path / "f", size=(4, 5))
    assert ds.images.shape == (4, 3, 4, 5)


def test_jpeg_and_gif_load(tmp_path, build):
    build.write_image_folder(tmp_path / "j", mode="RGB", fmt="jpg", per_class=1)
    assert load_image_folder(tmp_path / "j").images.shape == (2, 3, 6, 5)
    build.write_image_folder(tmp_path / "g", mode="L", fmt="gif", per_class=1)
    assert load_image_folder(tmp_path / "g").images.shape[0] == 2


def test_wrong_size_names_the_file(tmp_path, build):
    build.write_image_folder(tmp_path / "f", per_class=2, size=(6, 5))
    Image.fromarray(np.zeros((7, 5), np.uint8)).save(tmp_path / "f" / "dog" / "odd.png")
    with pytest.raises(DataError, match=r"odd.png: image is 7x5 .* first image is 6x5"):
        load_image_folder(tmp_path / "f")


def test_wrong_mode_names_the_file(tmp_path, build):
    build.write_image_folder(tmp_path / "f", per_class=1, size=(6, 5))
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "f" / "dog" / "colour.png")
    with pytest.raises(DataError, match="colour.png: image mode RGB is not grayscale"):
        load_image_folder(tmp_path / "f")


def test_non_image_and_unreadable_files(tmp_path, build):
    build.write_image_folder(tmp_path / "f", per_class=1)
    (tmp_path / "f" / "dog" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="notes.txt: not an image file"):
        load_image_folder(tmp_path / "f")
    (tmp_path / "f" / "dog" / "notes.txt").unlink()
    (tmp_path / "f" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png: unreadable image"):
        load_image_folder(tmp_path / "f")


def test_hidden_files_are_skipped(tmp_path, build):
    build.write_image_folder(tmp_path / "f", per_class=1)
    (tmp_path / "f" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "f" / ".hidden").mkdir()
    assert load_image_folder(tmp_path / "f").classes == ["cat", "dog"]


def test_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: empty image folder"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "empty" / "cls").mkdir()
    with pytest.raises(DataError, match="cls: class folder holds no images"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="not a directory"):
        load_image_folder(tmp_path / "missing")
