"""Segmentation data: images with a class id per pixel.

- :class:`SegmentationDataset`: images (N, C, H, W) uint8 or float32 and masks (N, H, W) int64 held as
  NumPy arrays; ``ds[i]`` is ``(image, mask)`` with the image as float32 in 0..1 (what a training batch
  holds, so a :class:`~gpucnn.data.DataLoader` with the default collate gives model-ready Tensors).
- :func:`load_segmentation_folder`: ``root/images/<name>.<png|jpg|...>`` with ``root/masks/<name>.png``
  (the same name; mask pixels are class ids: an 8-bit gray, 16-bit gray or palette PNG, whose palette
  indices are the ids).
- :func:`load_segmentation_npz`: an ``.npz`` with images ``x`` and integer masks ``y`` of shape (N, H, W).
- :func:`colorize_mask` / :func:`save_mask_png`: a mask as colours (a palette PNG keeps the ids readable).

Every problem with a file (a missing or extra mask, a mask whose size differs from its image, a class id
>= num_classes) is a :class:`~gpucnn.errors.DataError` naming the file.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from gpucnn.errors import ArgumentError, DataError

from .dataset import Dataset
from .image_folder import IMAGE_SUFFIXES
from .npz import NpzArchive, as_images

_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_MASK_MODES = ("L", "P", "I;16", "I;16B", "I;16L", "I", "1")
PathLike = Union[str, "os.PathLike[str]"]


class SegmentationDataset(Dataset):
    """Images and per-pixel class masks held as NumPy arrays.

    ``images``: uint8 or float32 (N, C, H, W); ``masks``: integer (N, H, W), stored as int64, with ids in
    ``[0, num_classes)``. ``classes`` names the classes (default ``"0", "1", ...``; ``num_classes``
    defaults to ``len(classes)``, else the largest id + 1). ``ds[i]`` is ``(image float32 (C, H, W), mask
    int64 (H, W))``, a uint8 image scaled to 0..1; a slice or an index array gives a sub-dataset.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, classes: Optional[Sequence[str]] = None,
                 num_classes: Optional[int] = None, name: str = "", source: str = "") -> None:
        images, masks = np.asarray(images), np.asarray(masks)
        who = f"dataset {name!r}: " if name else ""
        if images.dtype not in _IMAGE_DTYPES or images.ndim != 4:
            raise DataError(f"{who}images must be uint8 or float32 of shape (N, C, H, W), got {images.dtype} "
                            f"of shape {images.shape}")
        if masks.ndim != 3 or masks.dtype.kind not in "iu":
            raise DataError(f"{who}masks must be integer of shape (N, H, W), got {masks.dtype} of shape {masks.shape}")
        if masks.shape != (images.shape[0],) + images.shape[2:]:
            raise DataError(f"{who}masks have shape {masks.shape} but images {images.shape}; expected masks of "
                            f"shape {(images.shape[0],) + images.shape[2:]} (N, H, W)")
        num_classes = _resolve_num_classes(masks, classes, num_classes, who)
        _check_ids(masks, num_classes, lambda i: f"{who}mask {i}")
        self.images = images
        self.masks = masks.astype(np.int64, copy=False)
        self.classes = [str(c) for c in classes] if classes is not None else [str(i) for i in range(num_classes)]
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            image = self.images[index]
            image = image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.copy()
            return image, self.masks[index].copy()
        return self.subset(index)

    def subset(self, indices: Any) -> "SegmentationDataset":
        """A new dataset of the given items (a slice, index array or boolean mask), same classes."""
        sel = indices if isinstance(indices, slice) else np.asarray(indices)
        if not isinstance(sel, slice) and sel.dtype != np.bool_:
            sel = sel.astype(np.int64, copy=False)
        return SegmentationDataset(self.images[sel], self.masks[sel], self.classes, name=self.name, source=self.source)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image: (C, H, W)."""
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    def class_pixel_counts(self) -> np.ndarray:
        """How many pixels each class has over the whole dataset (length ``num_classes``)."""
        return np.bincount(self.masks.reshape(-1), minlength=self.num_classes)

    def __repr__(self) -> str:
        return (f"SegmentationDataset(name={self.name!r}, n={len(self)}, input_shape={self.input_shape}, "
                f"dtype={self.images.dtype}, classes={self.num_classes})")


def _resolve_num_classes(masks: np.ndarray, classes: Optional[Sequence[str]], num_classes: Optional[int],
                         who: str) -> int:
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ArgumentError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if classes is not None and len(classes) != num_classes:
            raise ArgumentError(f"{who}{len(classes)} class names for num_classes={num_classes}")
        return int(num_classes)
    if classes is not None:
        if len(classes) < 1:
            raise ArgumentError(f"{who}classes is empty")
        return len(classes)
    return int(masks.max()) + 1 if masks.size else 1


def _check_ids(mask: np.ndarray, num_classes: int, where: Any) -> None:
    """DataError unless every id of ``mask`` lies in [0, num_classes); ``where(i)`` names the offender
    (``i``: the index along the first axis of a stack of masks, or None for one mask)."""
    if not mask.size:
        return
    bad = (mask < 0) | (mask >= num_classes)
    if bad.any():
        pos = np.unravel_index(int(np.argmax(bad)), mask.shape)
        value = int(mask[pos])
        if mask.ndim == 3:
            head, pixel = where(int(pos[0])), pos[1:]
        else:
            head, pixel = where(None), pos
        raise DataError(f"{head}: class id {value} at pixel (row {pixel[0]}, column {pixel[1]}) is outside "
                        f"[0, {num_classes}) for {num_classes} classes")


def _visible_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def read_mask(path: PathLike) -> np.ndarray:
    """A mask PNG as int64 class ids (H, W): 8-bit or 16-bit gray, or palette indices."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in _MASK_MODES:
                raise DataError(f"{path}: a mask must be one channel of class ids (a gray or palette PNG), got "
                                f"image mode {img.mode}")
            return np.asarray(img).astype(np.int64)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such mask file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: unreadable mask ({exc})") from None


def load_segmentation_folder(root: PathLike, num_classes: Optional[int] = None,
                             classes: Optional[Sequence[str]] = None, mode: Optional[str] = None,
                             name: str = "", source: str = "") -> SegmentationDataset:
    """Load ``root/images/*`` and their masks ``root/masks/<same stem>.png`` into a uint8 dataset.

    All images must share one size and kind (``mode`` ``"L"``/``"RGB"`` converts them all; default: the
    first image's); each mask must have its image's size. Class ids must be below ``num_classes`` (or
    ``len(classes)``; without either, the largest id + 1). A mask without an image, or an image without
    a mask, is an error.
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in (None, "L", "RGB"):
        raise ArgumentError(f"mode must be 'L', 'RGB' or None, got {mode!r}")
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a directory (a segmentation folder holds images/ and masks/ with "
                            f"files of the same names)")
    image_files = _visible_files(image_dir)
    if not image_files:
        raise DataError(f"{image_dir}: holds no images")
    mask_files = {p.stem: p for p in _visible_files(mask_dir)}
    images, masks, mask_paths = [], [], []
    want_mode, want_size = mode, None
    for file in image_files:
        if file.is_dir() or file.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{file}: not an image file (supported: {', '.join(IMAGE_SUFFIXES)})")
        mask_path = mask_files.pop(file.stem, None)
        if mask_path is None:
            raise DataError(f"{mask_dir / (file.stem + '.png')}: missing mask for image {file}")
        if mask_path.suffix.lower() != ".png":
            raise DataError(f"{mask_path}: masks must be PNG files (lossless), got {mask_path.suffix or 'no suffix'}")
        try:
            with Image.open(file) as img:
                img.load()
                kind = "L" if img.mode in _GRAY_MODES else "RGB"
                if want_mode is None:
                    want_mode = kind
                elif mode is None and kind != want_mode:
                    first = "grayscale" if want_mode == "L" else "colour"
                    raise DataError(f"{file}: image mode {img.mode} is not {first} like the first image; pass "
                                    f"mode='L' or mode='RGB' to convert all images")
                if img.mode != want_mode:
                    img = img.convert(want_mode)
                arr = np.asarray(img, dtype=np.uint8)
        except DataError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                Image.DecompressionBombError) as exc:
            raise DataError(f"{file}: unreadable image ({exc})") from None
        size = arr.shape[:2]
        if want_size is None:
            want_size = size
        elif size != want_size:
            raise DataError(f"{file}: image is {size[0]}x{size[1]} (HxW) but the first image is "
                            f"{want_size[0]}x{want_size[1]}; all images must share one size")
        mask = read_mask(mask_path)
        if mask.shape != size:
            raise DataError(f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image {file} is "
                            f"{size[0]}x{size[1]}")
        images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        masks.append(mask)
        mask_paths.append(mask_path)
    if mask_files:
        extra = sorted(mask_files.values())[0]
        raise DataError(f"{extra}: mask without an image (no {image_dir / extra.stem}.* ; "
                        f"{len(mask_files)} such mask(s))")
    stack = np.stack(masks)
    k = _resolve_num_classes(stack, classes, num_classes, "")
    _check_ids(stack, k, lambda i: str(mask_paths[i]))
    return SegmentationDataset(np.stack(images), stack, classes, k, name=name or root.name,
                               source=source or f"segmentation folder {root} ({len(images):,} images)")


def load_segmentation_npz(path: PathLike, num_classes: Optional[int] = None,
                          classes: Optional[Sequence[str]] = None, split: Optional[str] = None,
                          name: str = "", source: str = "") -> SegmentationDataset:
    """Load images ``x`` ((N, H, W) or (N, C, H, W), uint8 or float) and integer masks ``y`` (N, H, W)
    (``x_<split>``/``y_<split>`` with ``split``) from an ``.npz``, read without pickle. An optional string
    array ``classes`` in the archive names the classes."""
    path = Path(path)
    xk, yk = ("x", "y") if split is None else (f"x_{split}", f"y_{split}")
    with NpzArchive(path) as archive:
        missing = [k for k in (xk, yk) if k not in archive.keys]
        if missing:
            raise DataError(f"{path}: missing array {' and '.join(repr(k) for k in missing)} (the archive holds: "
                            f"{', '.join(archive.keys) or 'nothing'}); save it with "
                            f"np.savez(path, {xk}=images, {yk}=masks)")
        if classes is None and "classes" in archive.keys:
            names = archive.array("classes")
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
                raise DataError(f"{path}: classes must be a 1-D array of strings, got {names.dtype} of shape "
                                f"{names.shape}")
            classes = [str(v) for v in names.tolist()]
        x = as_images(archive.array(xk), path, xk)
        y = archive.array(yk)
    if y.ndim != 3 or y.dtype.kind not in "iu":
        raise DataError(f"{path}: {yk} must be integer class ids of shape (N, H, W), got {y.dtype} of shape {y.shape}")
    if y.shape != (x.shape[0],) + x.shape[2:]:
        raise DataError(f"{path}: {yk} has shape {y.shape} but {xk} {x.shape}; masks must be "
                        f"{(x.shape[0],) + x.shape[2:]} (one H x W mask per image)")
    if len(x) == 0:
        raise DataError(f"{path}: {xk} holds no images")
    y = y.astype(np.int64)
    k = _resolve_num_classes(y, classes, num_classes, f"{path}: ")
    _check_ids(y, k, lambda i: f"{path}: {yk}[{i}]")
    return SegmentationDataset(x, y, classes, k, name=name or path.stem, source=source or f"arrays {xk}/{yk} of {path}")


def palette(num_classes: int = 256) -> np.ndarray:
    """(num_classes, 3) uint8 colours, PASCAL VOC's: 0 black, 1 dark red, 2 dark green, 3 olive, 4 navy, ...
    (the bits of the id spread over the high bits of R, G, B), distinct for every id below 256."""
    ids = np.arange(num_classes)
    colours = np.zeros((num_classes, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            colours[:, channel] |= ((ids >> (3 * shift + channel)) & 1) << (7 - shift)
    return colours.astype(np.uint8)


def colorize_mask(mask: np.ndarray, colours: Optional[np.ndarray] = None) -> np.ndarray:
    """A (H, W) class-id mask as a (H, W, 3) uint8 RGB image (``colours`` (K, 3): default :func:`palette`)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "iu":
        raise ArgumentError(f"colorize_mask: mask must be integer (H, W), got {mask.dtype} of shape {mask.shape}")
    table = palette(max(int(mask.max(initial=0)) + 1, 1)) if colours is None else np.asarray(colours, np.uint8)
    if table.ndim != 2 or table.shape[1] != 3:
        raise ArgumentError(f"colorize_mask: colours must be (K, 3) RGB, got shape {table.shape}")
    if mask.size and (mask.min() < 0 or mask.max() >= len(table)):
        bad = int(mask.max()) if mask.max() >= len(table) else int(mask.min())
        raise ArgumentError(f"colorize_mask: mask holds class id {bad}, outside the {len(table)} colours")
    return table[mask]


def save_mask_png(path: PathLike, mask: np.ndarray, colours: Optional[np.ndarray] = None) -> Path:
    """Write a (H, W) class-id mask as a palette PNG, atomically: it shows in colour (``colours``, default
    :func:`palette`) and reads back as the class ids (:func:`read_mask`). Ids must be below 256."""
    from PIL import Image

    from gpucnn.atomic import atomic_open

    mask = np.asarray(mask)
    colorize_mask(mask, colours)  # checks the mask and the colours
    if mask.size and mask.max() > 255:
        raise ArgumentError(f"save_mask_png: class id {int(mask.max())} does not fit a palette PNG (ids 0..255)")
    table = palette(256).copy()
    if colours is not None:
        given = np.asarray(colours, np.uint8)[:256]
        table[:len(given)] = given
    img = Image.fromarray(mask.astype(np.uint8))
    img.putpalette(table.reshape(-1).tolist())  # (an "L" image becomes "P": its values are the indices)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        img.save(f, format="PNG")
    return path
