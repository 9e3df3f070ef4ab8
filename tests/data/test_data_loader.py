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


# -- PyTorch's epoch semantics: every iter() is a new epoch ------------------------------------------------
def _order(batches):
    return sum((_ids(x) for x, _ in batches), [])


def test_next_iter_then_a_for_loop_gives_a_full_epoch():
    # regression: the loader used to resume a stream, so the for loop got only the 4 batches left
    reference = DataLoader(_ds(), batch_size=5, shuffle=True, seed=2)
    epochs = [_epoch(reference) for _ in range(3)]
    loader = DataLoader(_ds(), batch_size=5, shuffle=True, seed=2)
    x, _ = next(iter(loader))
    assert _ids(x) == _ids(epochs[0][0][0]) and loader.epoch == 0 and loader.batch_index == 1
    full = _epoch(loader)
    assert len(full) == 5 and sorted(_order(full)) == list(range(23))
    assert _order(full) == _order(epochs[1])  # the next epoch, whole: epoch e is the e-th permutation
    assert loader.epoch == 2 and loader.batch_index == 0


def test_break_does_not_shorten_the_next_epoch():
    reference = DataLoader(_ds(), batch_size=4, shuffle=True, seed=5)
    epochs = [_epoch(reference) for _ in range(3)]
    loader = DataLoader(_ds(), batch_size=4, shuffle=True, seed=5)
    for k, _ in enumerate(loader):
        if k == 2:
            break
    assert (loader.epoch, loader.batch_index) == (0, 3)
    assert _order(_epoch(loader)) == _order(epochs[1])
    assert _order(_epoch(loader)) == _order(epochs[2])
    unshuffled = DataLoader(_ds(), batch_size=4)
    next(iter(unshuffled))
    assert _order(_epoch(unshuffled)) == list(range(23))


def test_an_older_iterator_does_not_move_the_position():
    loader = DataLoader(_ds(), batch_size=4, shuffle=True, seed=1)
    old = iter(loader)
    first = next(old)
    new = iter(loader)  # epoch 1 starts; `old` still yields epoch 0's batches
    assert loader.epoch == 1
    rest_of_old = list(old)
    assert loader.epoch == 1 and loader.batch_index == 0
    assert sorted(_order([first] + rest_of_old)) == list(range(23))
    assert len(list(new)) == 6 and loader.epoch == 2


def test_load_state_dict_then_iter_continues_then_new_epochs():
    reference = _augmenting_loader()
    expected = [_epoch(reference) for _ in range(2)]
    run = _augmenting_loader()
    it = iter(run)
    head = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(run.state_dict()))
    resumed = _augmenting_loader()
    resumed.load_state_dict(state)
    tail = _epoch(resumed)  # the first iter() after load_state_dict: the rest of the saved epoch
    assert len(head) + len(tail) == len(expected[0])
    for (gx, gy), (ex, ey) in zip(head + tail, expected[0]):
        assert np.array_equal(gx, ex) and np.array_equal(gy, ey)
    assert [np.array_equal(a[0], b[0]) for a, b in zip(_epoch(resumed), expected[1])] == [True] * len(expected[1])


def test_resume_continues_the_current_epoch_after_a_break():
    reference = _augmenting_loader()
    expected = _epoch(reference)
    run = _augmenting_loader()
    got = []
    for batch in run:
        got.append(batch)
        if len(got) == 2:
            break
    got += list(run.resume())
    assert len(got) == len(expected) and run.epoch == 1
    for (gx, gy), (ex, ey) in zip(got, expected):
        assert np.array_equal(gx, ex) and np.array_equal(gy, ey)
    with pytest.raises(ArgumentError, match=r"batch_index must be in \[0, 5\], got 6"):
        run.iter_from(6)


def test_state_saved_after_the_last_batch_starts_the_next_epoch():
    reference = _augmenting_loader()
    expected = [_epoch(reference) for _ in range(2)]
    state = dict(_augmenting_loader().state_dict(), batch_index=5)  # epoch 0, all 5 batches done
    loader = _augmenting_loader()
    loader.load_state_dict(state)
    assert (loader.epoch, loader.batch_index) == (1, 0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(_epoch(loader), expected[1]))


def test_defaults_and_arguments_as_pytorch():
    loader = DataLoader(_ds(6))
    assert loader.batch_size == 1 and len(loader) == 6 and not loader.shuffle  # torch's defaults
    with pytest.raises(TypeError):
        DataLoader(_ds(6), 2, True, 7)  # torch's 4th positional argument is a sampler: seed is keyword-only
    with pytest.raises(ArgumentError, match="map-style.*int"):
        DataLoader(3)
    with pytest.raises(ArgumentError, match="collate_fn must be callable"):
        DataLoader(_ds(6), collate_fn=1)
    with pytest.raises(ArgumentError, match="batch_size must be at least 1, got True"):
        DataLoader(_ds(6), batch_size=True)


# -- any map-style dataset, collate_fn --------------------------------------------------------------------
class _Items:
    """A map-style dataset that is no gpucnn class: (float32 vector, int label, float weight) items."""

    def __init__(self, n=7):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(3, i, np.float32), i % 2, i / 4


def _as_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def test_map_style_dataset_batches_match_torch():
    import torch
    from torch.utils.data import DataLoader as TorchLoader

    from gpucnn import Tensor

    ours = list(DataLoader(_Items(), batch_size=3))
    theirs = list(TorchLoader(_Items(), batch_size=3))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert isinstance(a, list) and len(a) == 3  # default_collate: a list for tuple items
        for field, ref in zip(a, b):
            assert isinstance(field, Tensor) and field.device == "cpu"
            assert str(field.dtype) == str(ref.dtype).replace("torch.", "")
            assert np.array_equal(field.numpy(), ref.numpy())
    assert isinstance(theirs[0][1], torch.Tensor)  # (the reference really is PyTorch's)


def test_collate_fn_and_getitems():
    seen = []

    def collate(items):
        seen.append(len(items))
        return np.stack([x for x, _, _ in items]), [y for _, y, _ in items]

    batches = list(DataLoader(_Items(5), batch_size=2, drop_last=True, collate_fn=collate))
    assert seen == [2, 2] and batches[1][1] == [0, 1] and batches[1][0].shape == (2, 3)

    class Batched(_Items):
        def __getitems__(self, indices):  # PyTorch's protocol: one call per batch
            seen.append(tuple(indices))
            return [self[i] for i in indices]

    seen.clear()
    list(DataLoader(Batched(5), batch_size=4))
    assert seen == [(0, 1, 2, 3), (4,)]


def test_tensor_dataset_and_subsets_use_the_batched_path():
    import torch
    from torch.utils.data import DataLoader as TorchLoader
    from torch.utils.data import TensorDataset as TorchTensorDataset

    import gpucnn
    from gpucnn.data import Subset, TensorDataset, default_collate

    x = np.arange(40, dtype=np.float32).reshape(10, 2, 2)
    y = np.arange(10) % 3
    ds = TensorDataset(gpucnn.tensor(x), gpucnn.tensor(y))
    ours = list(DataLoader(ds, batch_size=4))
    theirs = list(TorchLoader(TorchTensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4))
    for (ox, oy), (tx, ty) in zip(ours, theirs, strict=True):
        assert np.array_equal(ox.numpy(), tx.numpy()) and np.array_equal(oy.numpy(), ty.numpy())
        assert ox.dtype == np.float32 and oy.dtype == np.int64
    # the one-indexing batch equals default_collate of the items, also through nested Subsets
    sub = Subset(Subset(ds, [9, 7, 5, 3, 1, 0]), [4, 0, 2])
    (bx, by), = list(DataLoader(sub, batch_size=3))
    cx, cy = default_collate([sub[i] for i in range(3)])
    assert np.array_equal(bx.numpy(), cx.numpy()) and np.array_equal(by.numpy(), cy.numpy())
    assert by.numpy().tolist() == [y[1], y[9], y[5]]


def test_subset_of_an_array_dataset_keeps_numpy_batches():
    from gpucnn.data import Subset

    ds = ArrayDataset(np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1) * 50, np.arange(6) % 2)
    (x, y), = list(DataLoader(Subset(ds, [5, 1, 3]), batch_size=3))
    assert isinstance(x, np.ndarray) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0, 0], np.array([250, 50, 150]) / 255) and y.tolist() == [1, 1, 1]


def test_transform_needs_an_array_dataset():
    from gpucnn.data import TensorDataset

    with pytest.raises(ArgumentError, match="transform= works on the image batches of an ArrayDataset"):
        DataLoader(TensorDataset(np.zeros((2, 1, 2, 2), np.float32)), transform=ToFloat())
    with pytest.raises(ArgumentError, match="and a collate_fn"):
        DataLoader(_ds(4), transform=ToFloat(), collate_fn=list)


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_tensor_dataset_batches_stay_on_the_tensors_device(device):
    import gpucnn
    from gpucnn.data import TensorDataset

    x = gpucnn.tensor(np.arange(12, dtype=np.float32).reshape(6, 2), device=device)
    ds = TensorDataset(x, gpucnn.tensor(np.arange(6), device=device))
    batches = list(DataLoader(ds, batch_size=4, shuffle=True, seed=3))
    assert [b[0].device == device and b[1].device == device for b in batches] == [True, True]
    assert sorted(int(v) for _, y in batches for v in y.numpy()) == list(range(6))
    assert all(np.array_equal(bx.numpy()[:, 0], by.numpy() * 2) for bx, by in batches)


def test_shards_cut_the_plain_loaders_epochs():
    """shard=(r, K) at batch b: step i of the K loaders holds the images of step i of one loader at K*b."""
    x = np.arange(23 * 4, dtype=np.float32).reshape(23, 1, 2, 2)
    ds = ArrayDataset(x, np.arange(23))
    full = DataLoader(ds, 6, shuffle=True, seed=5)
    shards = [DataLoader(ds, 2, shuffle=True, seed=5, shard=(r, 3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # ceil(23 / 3) = 8 images each
    for _ in range(2):  # two epochs: the second permutation too
        whole = [b[1].tolist() for b in full]
        parts = [[b[1].tolist() for b in s] for s in shards]
        order = sum(whole, [])
        padded = order + order[:1]  # (24 = 3 * 8: the epoch's first image once more)
        for i in range(4):
            got = sorted(sum((parts[r][i] for r in range(3)), []))
            assert got == sorted(padded[6 * i:6 * i + 6])
    assert DataLoader(ds, 4, shuffle=True, seed=5, shard=(0, 1)).__len__() == len(DataLoader(ds, 4))
    with pytest.raises(ArgumentError, match=r"shard must be \(rank, world\) with 0 <= rank < world, got \(3, 3\)"):
        DataLoader(ds, 2, shard=(3, 3))


def test_a_shard_resumes_exactly():
    ds = ArrayDataset(np.arange(40, dtype=np.float32).reshape(10, 1, 2, 2), np.arange(10))
    a = DataLoader(ds, 2, shuffle=True, seed=1, shard=(1, 2))
    it = iter(a)
    next(it)
    state = a.state_dict()
    rest = [b[1].tolist() for b in it]
    b = DataLoader(ds, 2, shuffle=True, seed=1, shard=(1, 2))
    b.load_state_dict(state)
    assert [t[1].tolist() for t in b] == rest
