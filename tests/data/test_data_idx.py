"""IDX (MNIST / Fashion-MNIST) files: round trips, corruptions and a fuzz test."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucnn.data import ArrayDataset, load_idx
from gpucnn.errors import DataError


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, build, compress):
    x = build.random_images(7, (5, 4))
    y = np.array([0, 1, 2, 9, 3, 3, 0], np.uint8)
    suffix = ".gz" if compress else ""
    xp = build.write_idx(tmp_path / f"img{suffix}", x, compress)
    yp = build.write_idx(tmp_path / f"lab{suffix}", y, compress)
    ds = load_idx(xp, yp)
    assert ds.images.shape == (7, 1, 5, 4) and ds.images.dtype == np.uint8
    assert np.array_equal(ds.images[:, 0], x) and np.array_equal(ds.labels, y)
    assert ds.labels.dtype == np.int64 and ds.num_classes == 10
    ds.images[0, 0, 0, 0] = 1  # writable, like every loader's output


def test_idx_bad_magic(tmp_path, build):
    x = build.random_images(2, (3, 3))
    xp = build.write_idx(tmp_path / "img", x, magic=0x00000802)
    yp = build.write_idx(tmp_path / "lab", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"img: bad magic number 0x00000802 \(expected 0x00000803"):
        load_idx(xp, yp)
    # Labels and images swapped.
    with pytest.raises(DataError, match="lab: bad magic number 0x00000801"):
        load_idx(yp, xp)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated(tmp_path, build, compress):
    data = build.idx_bytes(build.random_images(4, (3, 3)))[:-5]
    xp = tmp_path / "short-images"
    xp.write_bytes(gzip.compress(data) if compress else data)
    yp = build.write_idx(tmp_path / "lab", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"short-images: truncated.*expected 52 bytes.*got 47"):
        load_idx(xp, yp)


def test_idx_header_larger_than_file_is_refused_before_allocating(tmp_path, build):
    # A header promising 2**32 x 2**32 x 2**32 bytes must not be allocated.
    xp = tmp_path / "huge"
    xp.write_bytes(bytes.fromhex("00000803 ffffffff ffffffff ffffffff") + b"\0" * 10)
    yp = build.write_idx(tmp_path / "lab", np.zeros(1, np.uint8))
    with pytest.raises(DataError, match="huge: truncated"):
        load_idx(xp, yp)
    (tmp_path / "huge.gz").write_bytes(gzip.compress(xp.read_bytes()))
    with pytest.raises(DataError, match="huge.gz: truncated"):
        load_idx(tmp_path / "huge.gz", yp)


def test_idx_extra_bytes(tmp_path, build):
    xp = tmp_path / "img"
    xp.write_bytes(build.idx_bytes(build.random_images(2, (3, 3))) + b"junk")
    yp = build.write_idx(tmp_path / "lab", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="img: extra data"):
        load_idx(xp, yp)


def test_idx_count_mismatch_and_label_range(tmp_path, build):
    xp = build.write_idx(tmp_path / "img", build.random_images(3, (2, 2)))
    yp = build.write_idx(tmp_path / "lab4", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="lab4: 4 labels but .*img holds 3 images"):
        load_idx(xp, yp)
    yp = build.write_idx(tmp_path / "lab-bad", np.array([1, 10, 2], np.uint8))
    with pytest.raises(DataError, match=r"lab-bad: label 10 at index 1 is outside \[0, 10\)"):
        load_idx(xp, yp, classes=[str(i) for i in range(10)])


def test_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope"):
        load_idx(tmp_path / "nope", tmp_path / "nope2")


def _maybe_compress(data: bytes, compress: bool) -> bytes:
    return gzip.compress(data) if compress else data


_IDX_HEADERS = st.sampled_from([b"", bytes.fromhex("00000803"), bytes.fromhex("00000803 00000002 00000002 00000002"),
                                bytes.fromhex("00000801"), bytes.fromhex("00000801 00000002"), b"\x1f\x8b"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head_x=_IDX_HEADERS, body_x=st.binary(max_size=64), zx=st.booleans(),
       head_y=_IDX_HEADERS, body_y=st.binary(max_size=16), zy=st.booleans())
def test_idx_fuzz(tmp_path, head_x, body_x, zx, head_y, body_y, zy):
    xp, yp = tmp_path / "fx", tmp_path / "fy"
    xp.write_bytes(_maybe_compress(head_x + body_x, zx))
    yp.write_bytes(_maybe_compress(head_y + body_y, zy))
    try:
        ds = load_idx(xp, yp)
    except DataError:
        return
    assert isinstance(ds, ArrayDataset) and ds.images.ndim == 4 and len(ds.images) == len(ds.labels)
