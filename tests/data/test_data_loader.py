"""DataLoader: coverage, seeded shuffling, and exact resumption."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gpucnn.data import ArrayDataset, Compose, DataLoader, RandomCrop, RandomHorizontalFlip, ToFloat
from gpucnn.errors import ArgumentError


def _ds(n=23):
    # Pixel value = item index, so a batch reveals which items it holds.
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 4, 4)).copy()
    return ArrayDataset(x, np.arange(n) % 5)


def _ids(x):
    return x[:, 0, 0, 0].astype(int).tolist()


def _epoch(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_batches_cover_the_dataset_once():
    loader = DataLoader(_ds(23), batch_size=5)
    batches = _epoch(loader)
    assert len(loader) == 5 and len(batches) == 5
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    assert sum((_ids(x) for x, _ in batches), []) == list(range(23))
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (5, 1, 4, 4)
    dropped = DataLoader(_ds(23), batch_size=5, drop_last=True)
    assert len(dropped) == 4 and [len(y) for _, y in dropped] == [5] * 4


def test_shuffle_is_seeded_and_changes_per_epoch():
    a = DataLoader(_ds(), batch_size=4, shuffle=True, seed=7)
    b = DataLoader(_ds(), batch_size=4, shuffle=True, seed=7)
    e1, e2 = _epoch(a), _epoch(a)
    order1 = sum((_ids(x) for x, _ in e1), [])
    order2 = sum((_ids(x) for x, _ in e2), [])
    assert sorted(order1) == sorted(order2) == list(range(23))
    assert order1 != order2 and order1 != list(range(23))
    assert sum((_ids(x) for x, _ in _epoch(b)), []) == order1
    c = DataLoader(_ds(), batch_size=4, shuffle=True, seed=8)
    assert sum((_ids(x) for x, _ in _epoch(c)), []) != order1
    assert a.epoch == 2


def test_uint8_without_transform_is_scaled():
    ds = ArrayDataset(np.full((3, 1, 2, 2), 255, np.uint8), np.zeros(3, np.int64))
    x, _ = next(iter(DataLoader(ds, batch_size=3)))
    assert x.dtype == np.float32 and x.max() == 1.0


def _augmenting_loader(seed=3):
    x = np.random.default_rng(0).integers(0, 256, (30, 3, 8, 8), dtype=np.uint8)
    ds = ArrayDataset(x, np.arange(30) % 3)
    tf = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip(), ToFloat()])
    return DataLoader(ds, batch_size=7, shuffle=True, seed=seed, transform=tf)


def test_resume_mid_epoch_from_state_dict_is_exact():
    reference = _augmenting_loader()
    expected = _epoch(reference) + _epoch(reference) + _epoch(reference)

    run = _augmenting_loader()
    got = _epoch(run)
    it = iter(run)
    got += [tuple(a.copy() for a in next(it)) for _ in range(2)]  # 2 batches into epoch 1
    state = json.loads(json.dumps(run.state_dict()))  # must survive JSON
    assert state["epoch"] == 1 and state["batch_index"] == 2

    resumed = _augmenting_loader(seed=999)  # the state, not the constructor seed, decides
    resumed.load_state_dict(state)
    got += _epoch(resumed)  # the rest of epoch 1
    got += _epoch(resumed)  # all of epoch 2
    assert len(got) == len(expected)
    for (gx, gy), (ex, ey) in zip(got, expected):
        assert np.array_equal(gx, ex) and np.array_equal(gy, ey)


def test_state_at_epoch_boundary_and_iter_from():
    reference = _augmenting_loader()
    epochs = [_epoch(reference) for _ in range(2)]
    run = _augmenting_loader()
    _epoch(run)
    state = run.state_dict()
    assert (state["epoch"], state["batch_index"]) == (1, 0)
    fresh = _augmenting_loader()
    fresh.load_state_dict(state)
    tail = list(fresh.iter_from(3))
    assert len(tail) == len(epochs[1]) - 3
    for (gx, gy), (ex, ey) in zip(tail, epochs[1][3:]):
        assert np.array_equal(gx, ex) and np.array_equal(gy, ey)


def test_iter_from_replays_the_current_epoch():
    reference = _augmenting_loader()
    epoch0 = _epoch(reference)
    run = _augmenting_loader()
    it = run.iter_from(2)
    first = [tuple(a.copy() for a in next(it)) for _ in range(2)]  # batches 2 and 3 of epoch 0
    assert run.epoch == 0 and run.state_dict()["batch_index"] == 4
    replay = list(run.iter_from(1))  # same epoch, same permutation and augmentation, from batch 1
    for (gx, gy), (ex, ey) in zip(first + replay, epoch0[2:4] + epoch0[1:]):
        assert np.array_equal(gx, ex) and np.array_equal(gy, ey)
    assert run.epoch == 1 and run.state_dict()["batch_index"] == 0


def test_load_state_dict_rejects_mismatches():
    loader = _augmenting_loader()
    state = loader.state_dict()
    other = DataLoader(loader.dataset, batch_size=8, shuffle=True)
    with pytest.raises(ArgumentError, match="batch_size"):
        other.load_state_dict(state)
    with pytest.raises(ArgumentError, match="not a DataLoader state"):
        loader.load_state_dict({"epoch": 0})
    for bad_seed in (None, "x", [1]):  # a damaged checkpoint (found by the fuzz test): an error, state kept
        with pytest.raises(ArgumentError, match="not a DataLoader state"):
            loader.load_state_dict(dict(state, seed=bad_seed))
        assert loader.state_dict() == state
    with pytest.raises(ArgumentError):
        DataLoader(loader.dataset, batch_size=0)
