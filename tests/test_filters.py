"""gpucnn.filters: named kernels through conv2d (per channel), padding modes, pooling, kernel files, PNG output.

The reference is a direct loop over NumPy's own padding (np.pad's constant/reflect/edge/wrap are
conv2d's zeros/reflect/replicate/circular). Integer kernels on integer pixels are exact in float32
(every sum is an integer below 2**24), so those comparisons are exact; the box kernel (1/9) gets a
tolerance of a few float32 ulps of the largest partial sum.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import gpucnn
from gpucnn.errors import ArgumentError, DataError, ShapeError
from gpucnn.filters import (KERNELS, filter2d, filter_image, get_kernel, load_kernel, plot_comparison,
                            response_to_uint8, save_png, to_grayscale)

_NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def reference(image2d: np.ndarray, k: np.ndarray, stride=1, padding=0, mode="zeros", pool=None) -> np.ndarray:
    """Cross-correlation by loops, in float64."""
    kh, kw = k.shape
    if padding == "same":
        ph, pw = kh - 1, kw - 1  # stride 1 only in the tests that use it
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    else:
        pads = ((padding, padding), (padding, padding))
    x = np.pad(image2d.astype(np.float64), pads, mode=_NP_MODE[mode])
    oh = (x.shape[0] - kh) // stride + 1
    ow = (x.shape[1] - kw) // stride + 1
    y = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[i, j] = np.sum(x[i * stride:i * stride + kh, j * stride:j * stride + kw] * k)
    if pool:
        h2, w2 = oh // 2, ow // 2
        blocks = y[:h2 * 2, :w2 * 2].reshape(h2, 2, w2, 2)
        y = blocks.max(axis=(1, 3)) if pool == "max" else blocks.mean(axis=(1, 3))
    return y


def edge_image(h=12, w=14, col=6, low=30, high=200) -> np.ndarray:
    """uint8 (h, w): ``low`` left of column ``col``, ``high`` from it on (one vertical edge)."""
    img = np.full((h, w), low, np.uint8)
    img[:, col:] = high
    return img


def test_laplacian_zero_on_flat_regions_nonzero_on_the_edge():
    img = edge_image()
    y = filter_image(img, "laplacian")  # valid padding: every window lies inside the image
    assert y.shape == (10, 12)
    # output column j sees input columns j..j+2; it straddles the edge (col 6) for j = 4 and 5
    flat = np.ones(12, bool)
    flat[[4, 5]] = False
    assert np.all(y[:, flat] == 0)
    assert np.all(y[:, 4] == 3 * (30 - 200))   # dark side of the edge: three bright neighbours
    assert np.all(y[:, 5] == 3 * (200 - 30))   # bright side: three dark neighbours
    # replicate padding keeps the image's own border flat, so the zeros reach the border too
    same = filter_image(img, "laplacian", padding="same", padding_mode="replicate")
    assert same.shape == img.shape
    flat = np.ones(14, bool)
    flat[[5, 6]] = False
    assert np.all(same[:, flat] == 0) and np.all(same[:, [5, 6]] != 0)


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_each_kernel_and_padding_mode_matches_the_loop_reference(name, mode):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(7, 9)).astype(np.uint8)
    y = filter_image(img, name, padding=2, padding_mode=mode)
    want = reference(img, KERNELS[name].astype(np.float64), padding=2, mode=mode)
    assert y.shape == want.shape == (9, 11)
    if name == "box":  # 1/9 is inexact: float32 sums of nine terms below 9 * 255
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-4)
    else:
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("stride,padding,pool,shape", [
    (1, 0, None, (9, 11)), (2, 0, None, (5, 6)), (3, 1, None, (4, 5)), (1, "same", None, (11, 13)),
    (2, "same", None, (6, 7)), (1, 0, "max", (4, 5)), (1, 1, "avg", (5, 6)), (2, 1, "max", (3, 3)),
])
def test_output_shape_follows_stride_padding_and_pool(stride, padding, pool, shape):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(11, 13, 3)).astype(np.uint8)
    y = filter_image(img, "sobel-x", stride=stride, padding=padding, pool=pool)
    assert y.shape == shape + (3,)
    k = KERNELS["sobel-x"].astype(np.float64)
    for c in range(3):  # each channel filtered on its own, with the same kernel
        if padding == "same" and stride > 1:
            continue  # (the loop reference does "same" for stride 1 only)
        np.testing.assert_array_equal(y[:, :, c], reference(img[:, :, c], k, stride, padding, "zeros", pool))


def test_same_padding_with_stride_gives_ceil_and_matches_conv2d():
    img = np.arange(11 * 13, dtype=np.float32).reshape(11, 13) % 17
    y = filter_image(img, "laplacian", stride=2, padding="same")
    x = gpucnn.tensor(img[None, None])
    w = gpucnn.tensor(KERNELS["laplacian"][None, None].astype(np.float32))
    np.testing.assert_array_equal(y, gpucnn.nn.functional.conv2d(x, w, stride=2, padding="same").numpy()[0, 0])
    assert y.shape == (6, 7)


def test_gray_uses_pils_luma_and_colour_keeps_channels():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(6, 8, 3)).astype(np.uint8)
    luma = np.asarray(Image.fromarray(img).convert("L"))
    np.testing.assert_array_equal(to_grayscale(img), luma)
    y = filter_image(img, "sharpen", gray=True, padding=1)
    np.testing.assert_array_equal(y, reference(luma, KERNELS["sharpen"].astype(np.float64), padding=1))
    rgba = np.concatenate([img, np.full((6, 8, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(filter_image(rgba, "box"), filter_image(img, "box"))  # alpha dropped


def test_filter2d_on_a_batch_is_depthwise():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 7))
    k = rng.standard_normal((3, 2))
    y = filter2d(gpucnn.tensor(x), k, padding=1, padding_mode="circular").numpy()
    assert y.shape == (2, 3, 6, 8) and y.dtype == np.float64
    for n in range(2):
        for c in range(3):
            want = reference(x[n, c], k, padding=1, mode="circular")
            np.testing.assert_allclose(y[n, c], want, rtol=1e-12, atol=1e-12)  # float64 sums of 6 terms


def test_emu_equals_cpu_on_a_tiny_image():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, size=(9, 10, 3)).astype(np.uint8)
    for kw in (dict(padding="same", padding_mode="reflect"), dict(stride=2, padding=1, pool="max"),
               dict(padding=1, padding_mode="circular", pool="avg")):
        cpu = filter_image(img, "laplacian", device="cpu", **kw)
        emu = filter_image(img, "laplacian", device="emu", **kw)
        np.testing.assert_array_equal(emu, cpu)  # integer sums: exact on both


def test_kernel_files(tmp_path):
    good = tmp_path / "k.npy"
    np.save(good, np.array([[1, 0], [0, -1]], np.int16))
    k = get_kernel(str(good))
    assert k.dtype == np.float64 and k.tolist() == [[1, 0], [0, -1]]
    y = filter_image(edge_image(), good)
    assert y.shape == (11, 13)

    bad_shape = tmp_path / "three_d.npy"
    np.save(bad_shape, np.ones((3, 3, 3)))
    with pytest.raises(DataError, match=r"three_d\.npy: the kernel must be 2-D \(kh, kw\), got 3-D shape \(3, 3, 3\)"):
        load_kernel(bad_shape)
    bad_dtype = tmp_path / "cplx.npy"
    np.save(bad_dtype, np.ones((3, 3), np.complex64))
    with pytest.raises(DataError, match=r"cplx\.npy: the kernel must hold real numbers .* complex64"):
        load_kernel(bad_dtype)
    boolean = tmp_path / "bool.npy"
    np.save(boolean, np.ones((3, 3), bool))
    with pytest.raises(DataError, match="bool.npy.*dtype bool"):
        load_kernel(boolean)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: cannot read the kernel"):
        load_kernel(pickled)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="nan.npy.*NaN or Inf"):
        load_kernel(nan)
    text = tmp_path / "text.npy"
    text.write_text("[[1, 2], [3, 4]]")
    with pytest.raises(DataError, match=r"text\.npy: not a \.npy file"):
        load_kernel(text)
    with pytest.raises(DataError, match="missing.npy: cannot read the kernel file"):
        load_kernel(tmp_path / "missing.npy")
    with pytest.raises(ArgumentError, match="kernel must be one of laplacian, sobel-x.*got 'edges'"):
        get_kernel("edges")


def test_bad_options_are_clear_errors():
    img = edge_image()
    with pytest.raises(ArgumentError, match="stride must be an int >= 1, got 0"):
        filter_image(img, "laplacian", stride=0)
    with pytest.raises(ArgumentError, match="padding must be an int >= 0, 'same' or 'valid', got -1"):
        filter_image(img, "laplacian", padding=-1)
    with pytest.raises(ArgumentError, match="padding_mode must be one of"):
        filter_image(img, "laplacian", padding_mode="mirror")
    with pytest.raises(ArgumentError, match="pool must be 'max', 'avg' or None"):
        filter_image(img, "laplacian", pool="min")
    with pytest.raises(ShapeError, match=r"image must be \(H, W\) or \(H, W, C\).*\(2, 3, 4, 5\)"):
        filter_image(np.zeros((2, 3, 4, 5)), "laplacian")
    with pytest.raises(ShapeError, match="larger than the padded input"):
        filter_image(np.zeros((2, 2)), "laplacian")


def test_response_to_uint8_scales_the_magnitude():
    r = np.array([[-10.0, 0.0], [5.0, 2.5]])
    np.testing.assert_array_equal(response_to_uint8(r), [[255, 0], [128, 64]])  # 127.5 and 63.75 round up
    assert response_to_uint8(np.zeros((2, 3))).tolist() == [[0] * 3] * 2
    with pytest.raises(ArgumentError, match="NaN or Inf"):
        response_to_uint8(np.array([np.nan, 1.0]))


def test_png_and_figure_are_written(tmp_path):
    img = edge_image()
    pic = response_to_uint8(filter_image(img, "laplacian", padding="same", padding_mode="replicate"))
    out = save_png(tmp_path / "r.png", pic)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), pic)
    colour = response_to_uint8(filter_image(np.stack([img] * 3, axis=2), "sobel-x", padding=1))
    save_png(tmp_path / "c.png", colour)
    assert np.asarray(Image.open(tmp_path / "c.png")).shape == (12, 14, 3)
    fig = plot_comparison(img, pic, tmp_path / "cmp.png", title="laplacian")
    assert Image.open(fig).format == "PNG"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    with pytest.raises(ArgumentError, match="save_png: image must be uint8"):
        save_png(tmp_path / "f.png", pic.astype(np.float32))
