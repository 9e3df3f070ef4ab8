"""``gpucnn filter``: slide a 3x3 (or any 2-D) kernel over a photo with gpucnn's conv2d and look at it.

The primers' first demo: the "dark edge" Laplacian over the photo of Eileen Collins
(``gpucnn filter astronaut --kernel laplacian --compare``). See :mod:`gpucnn.filters` for the maths.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import click

ASTRONAUT = "astronaut"
_DEMO_HINT = "pip install 'gpucnn[demo]'"


class PaddingParam(click.ParamType):
    """``--padding``: an int >= 0, ``same`` or ``valid``."""

    name = "N|same"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Union[int, str]:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip().lower()
            if text in ("same", "valid"):
                return text
            try:
                number = int(text)
            except ValueError:
                self.fail(f"{value!r} is not an int >= 0, 'same' or 'valid'", param, ctx)
        if number < 0:
            self.fail(f"{number} is negative; padding must be an int >= 0, 'same' or 'valid'", param, ctx)
        return number


def read_image(path: Path) -> Any:
    """An image file as a NumPy array: uint8 (H, W) for grayscale, (H, W, 3) for colour (alpha dropped;
    palette images expanded); 16-bit images as float32 in their own 0..65535 units."""
    import numpy as np

    from gpucnn.errors import DataError

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib, a dependency
        raise DataError("reading image files needs Pillow: pip install pillow") from None
    if not path.exists():
        raise DataError(f"{path}: no such file (give an image file or 'astronaut')")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected an image file")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return np.asarray(img, dtype=np.float32)
            if img.mode in ("1", "L", "LA", "La") or (img.mode == "P" and _palette_is_gray(img)):
                return np.asarray(img.convert("L"), dtype=np.uint8)
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read the image ({exc})") from None


def _palette_is_gray(img: Any) -> bool:
    colours = img.convert("RGB").getcolors(maxcolors=1 << 16) or []
    return all(r == g == b for _, (r, g, b) in colours)


def astronaut() -> Any:
    """scikit-image's photo of astronaut Eileen Collins, uint8 (512, 512, 3)."""
    from gpucnn.errors import DataError

    try:
        from skimage import data
    except ImportError:
        raise DataError(f"the 'astronaut' photo comes with scikit-image: {_DEMO_HINT}") from None
    return data.astronaut()


def _default_out(image: str, kernel_label: str, pool: Optional[str]) -> Path:
    suffix = f"-{kernel_label}" + (f"-{pool}pool" if pool else "")
    if image == ASTRONAUT:
        return Path(f"{ASTRONAUT}{suffix}.png")
    source = Path(image)
    return source.with_name(f"{source.stem}{suffix}.png")


@click.command("filter")
@click.argument("image", metavar="IMAGE|astronaut")
@click.option("--kernel", "kernel_spec", default="laplacian", show_default=True,
              metavar="laplacian|sobel-x|sobel-y|sharpen|box|gaussian|FILE.npy",
              help="A named 3x3 kernel or a 2-D kernel saved with numpy.save.")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--padding", type=PaddingParam(), default="same", show_default=True,
              help="Pixels added on each side, or 'same' (output size ceil(input / stride)).")
@click.option("--padding-mode", type=click.Choice(["zeros", "reflect", "replicate", "circular"]), default="replicate",
              show_default=True,
              help="What the added pixels hold (conv2d's padding_mode): replicate keeps a flat border flat (0 with "
                   "the Laplacian), zeros outlines the image.")
@click.option("--pool", type=click.Choice(["max", "avg"]), default=None,
              help="2x2 pooling (stride 2) of the response, as a CNN's next layer.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "emu", "auto"], case_sensitive=False), default="cpu",
              show_default=True, help="emu: the CUDA kernels run on the CPU by gpucnn's emulator.")
@click.option("--gray", is_flag=True, help="Filter the grayscale (luma) image instead of each colour channel.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="OUT.png",
              help="[default: IMAGE-KERNEL.png beside the input; ./astronaut-KERNEL.png for the photo]")
@click.option("--compare", is_flag=True, help="Also write OUT-compare.png: input | response side by side.")
def filter_command(image: str, kernel_spec: str, stride: int, padding: Union[int, str], padding_mode: str,
                   pool: Optional[str], device: str, gray: bool, out: Optional[Path], compare: bool) -> None:
    """Run a filter over IMAGE with gpucnn's conv2d and write |response| as a PNG (scaled to 0-255).

    IMAGE is an image file or 'astronaut' (scikit-image's photo of Eileen Collins, the primers' example).
    Each colour channel gets the same kernel (or the luma only, with --gray).
    """
    import numpy as np

    from gpucnn.errors import ArgumentError
    from gpucnn.filters import (KERNELS, filter_image, get_kernel, kernel_text, plot_comparison,
                                response_to_uint8, save_png)

    kernel = get_kernel(kernel_spec)
    kernel_label = kernel_spec if kernel_spec in KERNELS else Path(kernel_spec).stem
    pixels = astronaut() if image == ASTRONAUT else read_image(Path(image))
    out = out if out is not None else _default_out(image, kernel_label, pool)
    if image != ASTRONAUT and out.resolve() == Path(image).resolve():
        raise ArgumentError(f"--out {out} is the input image itself; choose another file name")
    if not out.parent.is_dir():
        raise ArgumentError(f"--out {out}: the folder {out.parent} does not exist")

    response = filter_image(pixels, kernel, stride=stride, padding=padding, padding_mode=padding_mode, pool=pool,
                            gray=gray, device=device.lower())
    picture = response_to_uint8(response)
    save_png(out, picture)
    zero = float(np.mean(np.all(response.reshape(response.shape[0], response.shape[1], -1) == 0, axis=2)))
    shape_in = "x".join(str(s) for s in pixels.shape[:2])
    shape_out = "x".join(str(s) for s in response.shape[:2])
    gray_note = ", gray" if gray or pixels.ndim == 2 else ""
    click.echo(f"{kernel_label} {kernel_text(kernel)} on {image} ({shape_in}{gray_note}, device {device.lower()}): "
               f"response {shape_out}, max |y| {float(np.abs(response).max()):.4g}, "
               f"{100 * zero:.1f} % of pixels exactly 0")
    click.echo(f"wrote {out}")
    if compare:
        shown = pixels
        if gray and pixels.ndim == 3:
            from gpucnn.filters import to_grayscale

            shown = to_grayscale(pixels)
        where = out.with_name(f"{out.stem}-compare.png")
        title = (f"{kernel_label} {kernel_text(kernel)}, stride {stride}, padding {padding} ({padding_mode})"
                 + (f", {pool} pool 2x2" if pool else ""))
        plot_comparison(shown, picture, where, title=title)
        click.echo(f"wrote {where}")
