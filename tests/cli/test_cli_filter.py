"""``gpucnn filter`` end to end through click's CliRunner, on tiny PNGs."""
from __future__ import annotations

import builtins

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="gpucnn")


@pytest.fixture
def edge_png(tmp_path):
    """A 10x12 gray PNG: 40 left of column 5, 220 from it on."""
    img = np.full((10, 12), 40, np.uint8)
    img[:, 5:] = 220
    path = tmp_path / "edge.png"
    Image.fromarray(img).save(path)
    return path


def test_laplacian_png_beside_the_input_with_compare(edge_png):
    result = invoke("filter", edge_png, "--kernel", "laplacian", "--compare")
    assert result.exit_code == 0, result.output
    out = edge_png.with_name("edge-laplacian.png")
    fig = edge_png.with_name("edge-laplacian-compare.png")
    assert f"wrote {out}" in result.output and f"wrote {fig}" in result.output
    pic = np.asarray(Image.open(out))
    assert pic.shape == (10, 12) and pic.dtype == np.uint8
    # default padding 'same' with replicate: flat everywhere except the two columns at the edge
    assert np.all(pic[:, [4, 5]] == 255)
    assert np.all(np.delete(pic, [4, 5], axis=1) == 0)
    assert "83.3 % of pixels exactly 0" in result.output  # 10 of 12 columns
    cmp = Image.open(fig)
    assert cmp.format == "PNG" and cmp.size[0] > cmp.size[1]  # side by side


def test_colour_stride_pool_padding_and_out(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(9, 11, 3)).astype(np.uint8)
    src = tmp_path / "noise.png"
    Image.fromarray(rgb).save(src)
    out = tmp_path / "r.png"
    result = invoke("filter", src, "--kernel", "sobel-y", "--stride", 2, "--padding", 1, "--padding-mode", "zeros",
                    "--pool", "avg", "--out", out)
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == (2, 3, 3)  # conv 5x6, then 2x2 pool; colour kept
    gray = invoke("filter", src, "--gray", "--padding", "same", "--padding-mode", "circular", "--out", out)
    assert gray.exit_code == 0, gray.output
    assert np.asarray(Image.open(out)).shape == (9, 11)
    pooled = invoke("filter", src, "--pool", "max")
    assert pooled.exit_code == 0 and np.asarray(Image.open(tmp_path / "noise-laplacian-maxpool.png")).shape == (4, 5, 3)


def test_kernel_file_and_its_errors(tmp_path, edge_png):
    k = tmp_path / "diff.npy"
    np.save(k, np.array([[-1.0, 1.0]]))
    result = invoke("filter", edge_png, "--kernel", k, "--padding", 0)
    assert result.exit_code == 0, result.output
    pic = np.asarray(Image.open(tmp_path / "edge-diff.png"))
    assert pic.shape == (10, 11) and np.all(pic[:, 4] == 255) and np.all(np.delete(pic, 4, axis=1) == 0)

    bad = tmp_path / "cube.npy"
    np.save(bad, np.ones((2, 2, 2)))
    result = invoke("filter", edge_png, "--kernel", bad)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {bad}: the kernel must be 2-D (kh, kw), got 3-D shape (2, 2, 2)"]


@pytest.mark.parametrize("args,exit_code,message", [
    (["--stride", "0"], 2, "Invalid value for '--stride'"),
    (["--padding", "-2"], 2, "Invalid value for '--padding'"),
    (["--padding", "wide"], 2, "Invalid value for '--padding'"),
    (["--padding-mode", "mirror"], 2, "Invalid value for '--padding-mode'"),
    (["--kernel", "edges"], 1, "Error: kernel must be one of laplacian"),
])
def test_bad_options(edge_png, args, exit_code, message):
    result = invoke("filter", edge_png, *args)
    assert result.exit_code == exit_code and message in result.output, result.output


def test_bad_images_name_the_file(tmp_path, edge_png):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for path, why in ((text, "cannot read the image"), (tmp_path / "nope.png", "no such file"),
                      (tmp_path, "is a folder")):
        result = invoke("filter", path)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {path}: {why}") and len(result.output.strip().splitlines()) == 1
    result = invoke("filter", edge_png, "--out", edge_png)
    assert result.exit_code == 1 and "is the input image itself" in result.output
    assert np.asarray(Image.open(edge_png)).max() == 220  # the input is untouched
    result = invoke("filter", edge_png, "--out", tmp_path / "no" / "such" / "dir.png")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_emu_device_equals_cpu(tmp_path):
    rng = np.random.default_rng(4)
    src = tmp_path / "tiny.png"
    Image.fromarray(rng.integers(0, 256, size=(7, 8, 3)).astype(np.uint8)).save(src)
    outs = {}
    for device in ("cpu", "emu"):
        outs[device] = tmp_path / f"{device}.png"
        result = invoke("filter", src, "--device", device, "--pool", "max", "--out", outs[device])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(outs["emu"])), np.asarray(Image.open(outs["cpu"])))


def test_astronaut(tmp_path, monkeypatch):
    pytest.importorskip("skimage")
    monkeypatch.chdir(tmp_path)
    result = invoke("filter", "astronaut", "--gray", "--stride", 4)
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "astronaut-laplacian.png")).shape == (128, 128)


def test_astronaut_without_scikit_image_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_skimage(name, *args, **kw):
        if name == "skimage" or name.startswith("skimage."):
            raise ImportError("No module named 'skimage'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    monkeypatch.chdir(tmp_path)
    result = invoke("filter", "astronaut")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the 'astronaut' photo comes with scikit-image: pip install 'gpucnn[demo]'"
