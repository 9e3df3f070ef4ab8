"""Image folders laid out like torchvision's ImageFolder: ``root/<class name>/<image file>``."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpucnn.errors import ArgumentError, DataError

from .dataset import ArrayDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _visible(p: Path) -> bool:
    # Skip hidden entries (.DS_Store, .ipynb_checkpoints) as file managers and torchvision do.
    return not p.name.startswith(".")


def _channels_mode(pil_mode: str) -> str:
    return "L" if pil_mode in _GRAY_MODES else "RGB"


def class_folders(root: Path) -> list[Path]:
    """The class sub-folders of ``root`` in sorted name order (their index is the class index)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)
    if not folders:
        raise DataError(f"{root}: empty image folder: expected one sub-folder of images per class")
    return folders


def load_image_folder(
    root: str | os.PathLike,
    size: tuple[int, int] | None = None,
    mode: str | None = None,
    classes: Sequence[str] | None = None,
    name: str = "",
    source: str = "",
) -> ArrayDataset:
    """Load ``root/<class>/<image>`` (PNG, JPEG, BMP or GIF) into a uint8 NCHW dataset.

    Class indices follow the sorted sub-folder names. All images must share one size unless
    ``size=(H, W)`` is given (then every image is resized, bilinear). ``mode`` is ``"L"`` (1 channel)
    or ``"RGB"`` (3 channels) and converts every image; by default it is the first image's kind
    (grayscale or colour) and an image of the other kind is an error. With ``classes`` (e.g. a
    training set's), the sub-folders must be exactly those names.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a dependency of matplotlib
        raise DataError("loading image folders needs Pillow: pip install pillow") from None
    if mode not in (None, "L", "RGB"):
        raise ArgumentError(f"mode must be 'L', 'RGB' or None, got {mode!r}")
    if size is not None:
        if len(size) != 2 or any(int(s) < 1 for s in size):
            raise ArgumentError(f"size must be (H, W) with positive sides, got {size!r}")
        size = (int(size[0]), int(size[1]))
    root = Path(root)
    folders = class_folders(root)
    names = [p.name for p in folders]
    if classes is not None and list(classes) != names:
        raise DataError(f"{root}: class folders {names} do not match the expected classes {list(classes)}")

    images, labels = [], []
    want_mode, want_size = mode, size
    for index, folder in enumerate(folders):
        files = sorted((p for p in folder.iterdir() if _visible(p)), key=lambda p: p.name)
        if not files:
            raise DataError(f"{folder}: class folder holds no images")
        for file in files:
            if file.is_dir():
                raise DataError(f"{file}: nested folders are not supported inside a class folder")
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(
                    f"{file}: not an image file (supported: {', '.join(IMAGE_SUFFIXES)})"
                )
            try:
                with Image.open(file) as img:
                    img.load()
                    if want_mode is None:
                        want_mode = _channels_mode(img.mode)
                    elif mode is None and _channels_mode(img.mode) != want_mode:
                        raise DataError(
                            f"{file}: image mode {img.mode} is not {'grayscale' if want_mode == 'L' else 'colour'} "
                            f"like the first image; pass mode='L' or mode='RGB' to convert all images"
                        )
                    if img.mode != want_mode:
                        img = img.convert(want_mode)
                    if size is not None:
                        if img.size != (size[1], size[0]):
                            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    elif want_size is None:
                        want_size = (img.height, img.width)
                    elif (img.height, img.width) != want_size:
                        raise DataError(
                            f"{file}: image is {img.height}x{img.width} (HxW) but the first image is "
                            f"{want_size[0]}x{want_size[1]}; pass size=(H, W) to resize all images"
                        )
                    arr = np.asarray(img, dtype=np.uint8)
            except DataError:
                raise
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                    Image.DecompressionBombError) as exc:
                raise DataError(f"{file}: unreadable image ({exc})") from None
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(index)
    return ArrayDataset(
        np.stack(images), np.asarray(labels, dtype=np.int64), classes=names,
        name=name or root.name, source=source or f"image folder {root} ({len(images):,} images)",
    )
