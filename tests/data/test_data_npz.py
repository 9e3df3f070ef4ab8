"""``.npz`` datasets: layouts, corruptions and fuzz tests."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucnn.data import ArrayDataset, load_npz
from gpucnn.errors import DataError


def test_npz_round_trip_nchw_and_nhw(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)
    y = np.array([0, 1, 2, 1, 0], np.int32)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    ds = load_npz(tmp_path / "a.npz")
    assert np.array_equal(ds.images, x) and np.array_equal(ds.labels, y) and ds.labels.dtype == np.int64
    assert ds.name == "a" and ds.num_classes == 3

    x2 = np.random.default_rng(1).random((4, 7, 8)).astype(np.float64)
    np.savez_compressed(tmp_path / "b.npz", x=x2, y=np.arange(4), classes=np.array(["w", "x", "y", "z"]))
    ds2 = load_npz(tmp_path / "b.npz")
    assert ds2.images.shape == (4, 1, 7, 8) and ds2.images.dtype == np.float32
    assert np.allclose(ds2.images[:, 0], x2) and ds2.classes == ["w", "x", "y", "z"]


def test_npz_splits(tmp_path):
    np.savez(tmp_path / "s.npz", x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.zeros(3, np.int64),
             x_test=np.ones((2, 2, 2), np.uint8), y_test=np.ones(2, np.int64))
    assert len(load_npz(tmp_path / "s.npz", split="train")) == 3
    assert load_npz(tmp_path / "s.npz", split="test").images.max() == 1


def test_npz_channels_last_is_not_guessed(tmp_path):
    np.savez(tmp_path / "nhwc.npz", x=np.zeros((2, 32, 32, 3), np.uint8), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match=r"nhwc.npz: x has shape \(2, 32, 32, 3\).*channels-last.*transpose"):
        load_npz(tmp_path / "nhwc.npz")


def test_npz_integer_pixels(tmp_path):
    np.savez(tmp_path / "i.npz", x=np.full((2, 3, 3), 200, np.int64), y=np.zeros(2, np.int64))
    assert load_npz(tmp_path / "i.npz").images.dtype == np.uint8
    np.savez(tmp_path / "big.npz", x=np.full((2, 3, 3), 300, np.int64), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="big.npz: x has dtype int64 with values outside 0..255"):
        load_npz(tmp_path / "big.npz")


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((2, 3, 3), np.uint8)}, "missing array 'y'"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": np.zeros(2)}, "missing array 'x' and 'y'"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(3, np.int64)}, "3 labels in y but 2 images"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(2, np.float32)}, "1-D integer"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.array([0, -2])}, "negative label"),
        ({"x": np.zeros((2, 9), np.uint8), "y": np.zeros(2, np.int64)}, r"shape \(N, H, W\)"),
        ({"x": np.full((2, 3, 3), np.nan, np.float32), "y": np.zeros(2, np.int64)}, "NaN"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.array([0, 2]), "classes": np.array(["a", "b"])},
         r"label 2 at index 1 of y is outside \[0, 2\)"),
    ],
)
def test_npz_bad_contents(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match="bad.npz: .*" + match):
        load_npz(path)


def test_npz_object_array_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([np.zeros((2, 2)), None], dtype=object), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="pickled.npz: array 'x' is an object \\(pickled\\) array"):
        load_npz(path)


def test_npz_not_a_zip_and_bare_npy(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="text.npz: not an .npz archive"):
        load_npz(tmp_path / "text.npz")
    np.save(tmp_path / "bare.npy", np.zeros(3))
    (tmp_path / "bare.npy").rename(tmp_path / "bare.npz")
    with pytest.raises(DataError, match="bare.npz: not an .npz archive"):
        load_npz(tmp_path / "bare.npz")


def test_npz_header_promising_more_than_the_archive(tmp_path):
    # A stored member whose .npy header claims a 10**12-element array: refused before allocation.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6)})
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as z:
        z.writestr("x.npy", buf.getvalue() + b"\0" * 100)
        z.writestr("y.npy", buf.getvalue())
    with pytest.raises(DataError, match="liar.npz: truncated or corrupt: array 'x'"):
        load_npz(tmp_path / "liar.npz")


def _valid_npz_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    saver = np.savez_compressed if seed % 2 else np.savez
    saver(buf, x=rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), y=rng.integers(0, 3, 3))
    return buf.getvalue()


@st.composite
def _mutated_npz(draw):
    data = bytearray(_valid_npz_bytes(draw(st.integers(0, 3))))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
                      _mutated_npz()))
def test_npz_fuzz(tmp_path, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    try:
        ds = load_npz(path)
    except DataError:
        return
    assert isinstance(ds, ArrayDataset) and ds.images.ndim == 4
