"""Classic image filters run through gpucnn's own conv2d and pooling (``gpucnn filter``).

A filter is a 2-D kernel (a named one from :data:`KERNELS`, a ``.npy`` file or an array) slid over an
image as a CNN layer slides its weights: a cross-correlation, the same 3x3 (or kh x kw) kernel on every
channel (a depthwise application: the channels are moved into the batch dimension, so one single-channel
conv2d runs them all), optionally followed by 2x2 max or average pooling of the response.

Pixels are kept in their own units (0..255 for uint8 images, not rescaled): with an integer kernel such as
the Laplacian every product and sum is an integer below 2**24, exact in float32, so a flat region gives
exactly 0 on every device.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import ArgumentError, DataError, ShapeError

#: The named kernels. ``laplacian`` is the primers' "dark edge" matrix (the 8-neighbour Laplacian, sign
#: flipped so that a bright pixel on a dark ground responds positively); ``sobel-x``/``sobel-y`` respond to
#: horizontal/vertical intensity changes (x: left-to-right increase, y: top-to-bottom increase);
#: ``sharpen`` is identity + 4-neighbour Laplacian; ``box`` the 3x3 mean; ``gaussian`` the binomial
#: 3x3 approximation of a Gaussian (sigma ~ 0.85), whose weights are exact in binary.
KERNELS: dict[str, np.ndarray] = {
    "laplacian": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float64),
    "sobel-x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64),
    "sobel-y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float64),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float64),
    "box": np.full((3, 3), 1 / 9, np.float64),
    "gaussian": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float64) / 16,
}
for _k in KERNELS.values():
    _k.setflags(write=False)

POOLS = ("max", "avg")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NPY_MAGIC = b"\x93NUMPY"
# PIL's "L" conversion (ITU-R 601-2 luma), so an array and the same image read from a file agree.
_LUMA = np.array([0.299, 0.587, 0.114])

KernelLike = Union[str, "os.PathLike[str]", np.ndarray]


def load_kernel(path: Union[str, "os.PathLike[str]"]) -> np.ndarray:
    """A kernel saved with ``np.save``: a 2-D real numeric array (float64 on return), read without pickle.

    Raises :class:`~gpucnn.errors.DataError` naming the file when it is missing, not a ``.npy``, not 2-D,
    empty, not real numbers (bool, complex, strings, objects) or holds NaN/Inf."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the kernel file ({exc.strerror or exc})") from None
    if head != _NPY_MAGIC:
        raise DataError(f"{path}: not a .npy file (save the kernel with numpy.save; got {head!r} at the start)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the kernel ({exc})") from None
    return as_kernel(arr, str(path))


def as_kernel(kernel: Any, what: str = "kernel") -> np.ndarray:
    """``kernel`` checked and returned as a float64 2-D array (kh, kw); ``what`` names it in errors (it is
    cast to the image's dtype when it runs)."""
    arr = np.asarray(kernel)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{what}: the kernel must hold real numbers (integer or float), got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(f"{what}: the kernel must be 2-D (kh, kw), got {arr.ndim}-D shape {arr.shape}")
    if 0 in arr.shape:
        raise DataError(f"{what}: the kernel is empty (shape {arr.shape})")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise DataError(f"{what}: the kernel holds NaN or Inf")
    return out


def get_kernel(spec: KernelLike) -> np.ndarray:
    """A named kernel (see :data:`KERNELS`), a ``.npy`` file, or an array, as float64 (kh, kw)."""
    if isinstance(spec, np.ndarray):
        return as_kernel(spec)
    text = os.fspath(spec)
    if text in KERNELS:
        return KERNELS[text].copy()
    if text.lower().endswith(".npy") or os.path.sep in text or Path(text).exists():
        return load_kernel(text)
    raise ArgumentError(f"kernel must be one of {', '.join(KERNELS)} or a .npy file, got {text!r}")


def _check_options(stride: int, padding: Union[int, str], padding_mode: str, pool: Optional[str],
                   pool_size: int) -> None:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ArgumentError(f"stride must be an int >= 1, got {stride!r}")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ArgumentError(f"padding must be an int >= 0, 'same' or 'valid', got {padding!r}")
    elif isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ArgumentError(f"padding must be an int >= 0, 'same' or 'valid', got {padding!r}")
    if padding_mode not in PADDING_MODES:
        raise ArgumentError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    if pool is not None and pool not in POOLS:
        raise ArgumentError(f"pool must be 'max', 'avg' or None, got {pool!r}")
    if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) or pool_size < 1:
        raise ArgumentError(f"pool_size must be an int >= 1, got {pool_size!r}")


def filter2d(input: Any, kernel: KernelLike, stride: int = 1, padding: Union[int, str] = 0,
             padding_mode: str = "zeros", pool: Optional[str] = None, pool_size: int = 2) -> Any:
    """The same 2-D ``kernel`` applied to every channel of ``input`` (a gpucnn Tensor (N, C, H, W), float),
    then optionally ``pool`` (``"max"`` or ``"avg"``) over ``pool_size`` x ``pool_size`` windows with
    stride ``pool_size``. Runs :func:`gpucnn.nn.functional.conv2d` on the input's device.

    ``padding`` is an int, ``"valid"`` (0) or ``"same"`` (output ``ceil(H / stride)``), ``padding_mode``
    one of ``zeros``, ``reflect``, ``replicate``, ``circular`` (as conv2d). Pooling works on the signed
    response, as a CNN's next layer would. Returns (N, C, H', W')."""
    from .functional import avg_pool2d, conv2d, max_pool2d
    from .tensor import Tensor, tensor

    if not isinstance(input, Tensor):
        raise ArgumentError(f"filter2d: input must be a gpucnn Tensor, got {type(input).__name__}")
    if input.ndim != 4:
        raise ShapeError(f"filter2d: input must be 4-D (N, C, H, W), got {input.ndim}-D shape {input.shape}")
    _check_options(stride, padding, padding_mode, pool, pool_size)
    k = get_kernel(kernel)
    n, c, h, w = input.shape
    weight = tensor(k.reshape(1, 1, *k.shape), dtype=input.dtype, device=input.device)
    # Depthwise through a single-channel conv: every channel of every image is one item of the batch.
    y = conv2d(input.reshape(n * c, 1, h, w), weight, stride=stride, padding=padding, padding_mode=padding_mode)
    if pool == "max":
        y = max_pool2d(y, pool_size)
    elif pool == "avg":
        y = avg_pool2d(y, pool_size)
    return y.reshape(n, c, y.shape[2], y.shape[3])


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """An (H, W, C) image as (H, W) luma with PIL's "L" weights (0.299 R + 0.587 G + 0.114 B; alpha
    ignored). uint8 input gives uint8 (PIL's own rounding); float input float32. (H, W) is returned as is."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ShapeError(f"to_grayscale: image must be (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    if image.shape[2] <= 2:  # gray, or gray + alpha
        return image[:, :, 0]
    if image.dtype == np.uint8:
        from PIL import Image

        return np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, :3])).convert("L"))
    return (image[:, :, :3].astype(np.float64) @ _LUMA).astype(np.float32)


def filter_image(image: np.ndarray, kernel: KernelLike, *, stride: int = 1, padding: Union[int, str] = 0,
                 padding_mode: str = "zeros", pool: Optional[str] = None, pool_size: int = 2,
                 gray: bool = False, device: str = "cpu") -> np.ndarray:
    """Filter an image array as image files and scikit-image hold it: (H, W) or channels-last (H, W, C).

    Each channel is filtered on its own (see :func:`filter2d`), or the luma only with ``gray=True``; an
    alpha channel (C = 2 or 4) is dropped. Pixel values are used as they are (0..255 for uint8). Returns
    the float32 response, (H', W') or (H', W', C) like the input, as a NumPy array."""
    from .tensor import tensor

    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ShapeError(f"filter_image: image must be (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    if image.dtype.kind not in "iuf":
        raise ArgumentError(f"filter_image: image must hold numbers, got dtype {image.dtype}")
    if gray:
        image = to_grayscale(image)
    elif image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[:, :, :-1]
    planes = image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]
    x = tensor(np.ascontiguousarray(planes, dtype=np.float32), device=device)
    y = filter2d(x, kernel, stride=stride, padding=padding, padding_mode=padding_mode, pool=pool,
                 pool_size=pool_size).numpy()[0]
    return y[0] if image.ndim == 2 else np.ascontiguousarray(y.transpose(1, 2, 0))


def response_to_uint8(response: np.ndarray) -> np.ndarray:
    """``|response|`` scaled so that its maximum is 255, rounded to uint8 (all zeros stays all zeros).
    One scale for all channels, so their relative strengths show."""
    mag = np.abs(np.asarray(response, dtype=np.float64))
    top = float(mag.max(initial=0.0))
    if top == 0.0 or not np.isfinite(top):
        if not np.isfinite(top):
            raise ArgumentError("response_to_uint8: the response holds NaN or Inf")
        return np.zeros(mag.shape, np.uint8)
    return np.rint(mag * (255.0 / top)).astype(np.uint8)


def save_png(path: Union[str, "os.PathLike[str]"], image: np.ndarray) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) array as a PNG, atomically (a reader never sees half a file)."""
    from PIL import Image

    from .atomic import atomic_open

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ArgumentError(f"save_png: image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    path = Path(path)
    with atomic_open(path, "wb") as f:
        Image.fromarray(np.ascontiguousarray(image)).save(f, format="PNG")
    return path


def plot_comparison(image: np.ndarray, response: np.ndarray, path: Union[str, "os.PathLike[str]"],
                    title: str = "") -> Path:
    """A side-by-side figure, the input image | the response image (both uint8 or float, (H, W) shown in
    gray or (H, W, 3) in colour), saved atomically as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed; must precede importing pyplot
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    try:
        for ax, img, name in ((axes[0], image, "input"), (axes[1], response, "response |y|, scaled to 0-255")):
            img = np.asarray(img)
            gray = img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)
            ax.imshow(img.squeeze(), cmap="gray" if gray else None, vmin=0 if gray else None,
                      vmax=(255 if img.dtype == np.uint8 else None) if gray else None, interpolation="nearest")
            ax.set_title(f"{name} ({img.shape[0]}x{img.shape[1]})")
            ax.axis("off")
        if title:
            fig.suptitle(title)
        fig.tight_layout(rect=(0, 0, 1, 0.95) if title else None)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


def kernel_text(kernel: np.ndarray) -> str:
    """A small kernel as ``[[-1 -1 -1] [-1 8 -1] [-1 -1 -1]]`` (for titles and messages)."""
    k = np.asarray(kernel)
    fmt = (lambda v: f"{v:g}") if not np.all(k == np.round(k)) else (lambda v: f"{int(v)}")
    if k.size > 49:
        return f"{k.shape[0]}x{k.shape[1]} kernel"
    return "[" + " ".join("[" + " ".join(fmt(v) for v in row) + "]" for row in k) + "]"
