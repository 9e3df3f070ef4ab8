"""CIFAR-10 binary batches: round trips, corruptions and a fuzz test."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpucnn.data import CIFAR10_CLASSES, ArrayDataset, load_cifar10_batches
from gpucnn.errors import DataError


def test_cifar_directory_round_trip(tmp_path, build):
    made = build.write_cifar_dir(tmp_path / "c", per_batch=3, batches=2)
    train = load_cifar10_batches(tmp_path / "c")
    assert train.images.shape == (6, 3, 32, 32) and train.images.dtype == np.uint8
    expect_x = np.concatenate([made["data_batch_1.bin"][0], made["data_batch_2.bin"][0]])
    expect_y = np.concatenate([made["data_batch_1.bin"][1], made["data_batch_2.bin"][1]])
    assert np.array_equal(train.images, expect_x) and np.array_equal(train.labels, expect_y)
    assert train.classes == [f"class{i}" for i in range(10)]  # from batches.meta.txt
    test = load_cifar10_batches(tmp_path / "c", train=False)
    assert np.array_equal(test.images, made["test_batch.bin"][0])


def test_cifar_channel_layout(tmp_path, build):
    # Record = label, 1024 red, 1024 green, 1024 blue bytes (row-major): check the plane order.
    record = np.zeros(3073, np.uint8)
    record[0] = 7
    record[1:1025] = 10
    record[1025:2049] = 20
    record[2049 + 32 * 5 + 3] = 99  # blue plane, row 5, column 3
    (tmp_path / "one.bin").write_bytes(record.tobytes())
    ds = load_cifar10_batches(tmp_path / "one.bin")
    assert ds.labels.tolist() == [7] and ds.classes == CIFAR10_CLASSES
    assert (ds.images[0, 0] == 10).all() and (ds.images[0, 1] == 20).all()
    assert ds.images[0, 2, 5, 3] == 99 and ds.images[0, 2].sum() == 99


def test_cifar_nested_folder_and_numeric_order(tmp_path, build):
    inner = tmp_path / "root" / "cifar-10-batches-bin"
    made = build.write_cifar_dir(inner, per_batch=1, batches=11, meta=False)
    ds = load_cifar10_batches(tmp_path / "root")
    # data_batch_10.bin comes after data_batch_9.bin, not after data_batch_1.bin.
    assert np.array_equal(ds.images[9], made["data_batch_10.bin"][0][0])
    assert ds.classes == CIFAR10_CLASSES


def test_cifar_truncated(tmp_path, build):
    data = build.cifar_bytes(build.random_images(2, (3, 32, 32)), np.array([1, 2]))
    (tmp_path / "data_batch_1.bin").write_bytes(data[:-1])
    with pytest.raises(DataError, match=r"data_batch_1.bin: truncated.*6,145 bytes"):
        load_cifar10_batches(tmp_path)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(DataError, match="empty.bin: truncated"):
        load_cifar10_batches(tmp_path / "empty.bin")


def test_cifar_label_out_of_range(tmp_path, build):
    (tmp_path / "bad.bin").write_bytes(build.cifar_bytes(build.random_images(3, (3, 32, 32)), np.array([1, 2, 10])))
    with pytest.raises(DataError, match=r"bad.bin: label 10 of record 2 is outside \[0, 10\)"):
        load_cifar10_batches([tmp_path / "bad.bin"])


def test_cifar_bad_meta_and_missing(tmp_path, build):
    build.write_cifar_dir(tmp_path, per_batch=1, batches=1, meta=False)
    (tmp_path / "batches.meta.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="batches.meta.txt: expected 10 class names"):
        load_cifar10_batches(tmp_path)
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DataError, match="nothing-here: no CIFAR-10 training batches"):
        load_cifar10_batches(tmp_path / "nothing-here")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200),
                      st.tuples(st.integers(0, 255), st.integers(1, 3)).map(
                          lambda t: (bytes([t[0]]) + bytes(3072)) * t[1]),
                      st.binary(min_size=3073, max_size=3073 * 2 + 5)))
def test_cifar_fuzz(tmp_path, data):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    try:
        ds = load_cifar10_batches(path)
    except DataError:
        return
    assert isinstance(ds, ArrayDataset) and ds.images.shape[1:] == (3, 32, 32)
    assert len(ds) * 3073 == len(data) and ds.labels.max() < 10
