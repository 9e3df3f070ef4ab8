"""gpucnn.data.DistributedSampler against torch.utils.data.DistributedSampler, and DataLoader(sampler=)."""
import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler as TorchSampler

import gpucnn
from gpucnn.data import ArrayDataset, DataLoader, DistributedSampler, TensorDataset
from gpucnn.data.distributed import torch_randperm
from gpucnn.errors import ArgumentError


@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 10, 13, 64, 1001])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7, 16])
def test_same_indices_as_torch(n, world):
    data = list(range(n))
    for shuffle in (False, True):
        for drop_last in (False, True):
            for rank in range(world):
                theirs = TorchSampler(data, num_replicas=world, rank=rank, shuffle=shuffle, seed=11, drop_last=drop_last)
                ours = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=shuffle, seed=11,
                                          drop_last=drop_last)
                for epoch in (0, 1, 5):
                    theirs.set_epoch(epoch)
                    ours.set_epoch(epoch)
                    assert list(ours) == list(theirs), (shuffle, drop_last, rank, epoch)
                    assert len(ours) == len(theirs) and ours.total_size == theirs.total_size


@pytest.mark.parametrize("seed", [0, 1, 2**31 + 5, 2**40 + 3])
def test_randperm_is_torchs(seed):
    for n in (1, 2, 3, 50000):
        expected = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        np.testing.assert_array_equal(torch_randperm(n, seed), expected)


def test_ranks_cover_the_dataset_and_pad_by_repeating():
    shares = [DistributedSampler(range(10), num_replicas=4, rank=r, shuffle=False).indices() for r in range(4)]
    assert [s.tolist() for s in shares] == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ArgumentError, match="num_replicas must be at least 1"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(ArgumentError, match="init_process_group"):
        DistributedSampler(range(4))
    with pytest.raises(ArgumentError, match="epoch"):
        DistributedSampler(range(4), num_replicas=1, rank=0).set_epoch(-1)


def _images(n=23):
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 255, (n, 1, 4, 4), dtype=np.uint8), np.arange(n))


def test_loader_takes_each_ranks_share_in_the_samplers_order():
    ds = _images()
    got = []
    for rank in range(3):
        sampler = DistributedSampler(ds, num_replicas=3, rank=rank, seed=4)
        sampler.set_epoch(2)
        loader = DataLoader(ds, batch_size=3, sampler=sampler)
        assert len(loader) == 3  # ceil(8 / 3)
        labels = np.concatenate([y for _, y in loader])
        np.testing.assert_array_equal(labels, sampler.indices())
        got.append(labels)
    assert set(np.concatenate(got).tolist()) == set(range(23))


def test_loader_with_a_plain_sampler_and_collate():
    ds = TensorDataset(gpucnn.arange(10))
    loader = DataLoader(ds, batch_size=4, sampler=[9, 1, 3, 3, 0])
    assert [b[0].numpy().tolist() for b in loader] == [[9, 1, 3, 3], [0]]
    with pytest.raises(ArgumentError, match="mutually exclusive with shuffle"):
        DataLoader(ds, batch_size=4, shuffle=True, sampler=[0])
    with pytest.raises(ArgumentError, match="sampler must be an iterable"):
        DataLoader(ds, batch_size=4, sampler=3)


def test_exact_resume_keeps_the_samplers_epoch():
    ds = _images()

    def make():
        sampler = DistributedSampler(ds, num_replicas=2, rank=1, seed=9)
        return sampler, DataLoader(ds, batch_size=2, sampler=sampler)

    sampler, loader = make()
    sampler.set_epoch(3)
    it = iter(loader)
    first = [next(it)[1] for _ in range(2)]
    state = loader.state_dict()
    rest = [y for _, y in it]
    sampler2, loader2 = make()  # a fresh process: epoch 0 until the state says otherwise
    loader2.load_state_dict(state)
    assert sampler2.epoch == 3
    resumed = [y for _, y in loader2]
    assert len(resumed) == len(rest) > 0
    for a, b in zip(resumed, rest):
        np.testing.assert_array_equal(a, b)
    assert first  # (the first part came from the same order)
    other = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=3, rank=1))
    with pytest.raises(ArgumentError, match="num_replicas=2 but this sampler has num_replicas=3"):
        other.load_state_dict(state)
