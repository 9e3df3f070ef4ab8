"""DistributedSampler: each rank's share of a dataset's indices, as ``torch.utils.data.DistributedSampler``.

The epoch's order is PyTorch's to the index: ``torch.randperm(n, generator=torch.Generator().manual_seed(seed
+ epoch))``, which is a Fisher-Yates shuffle drawing from MT19937 (for n < 2^32 / 20), reproduced here with
NumPy's MT19937 seeded the same way; so a run gives each rank the same samples as under PyTorch.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from gpucnn.errors import ArgumentError

from .dataset import check_map_style

#: torch.randperm's CPU path keeps its small-n algorithm (32-bit draws) below this size
_SMALL_N = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> np.ndarray:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` (int64), for n < 2^32 / 20."""
    if n >= _SMALL_N:
        raise ArgumentError(f"DistributedSampler: shuffling {n} samples (2^32 / 20 or more) is not supported")
    # torch seeds its mt19937 with the seed's low 32 bits, as RandomState's legacy seeding does;
    # randint over the full 32-bit range returns the raw 32-bit outputs, one per draw
    draws = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 2**32, size=max(n - 1, 0), dtype=np.uint64)
    r = np.arange(n, dtype=np.int64)
    z = (draws % np.arange(n, 1, -1, dtype=np.uint64)).astype(np.int64) + np.arange(max(n - 1, 0))
    for i, j in enumerate(z.tolist()):  # the swaps depend on each other: in order
        r[i], r[j] = r[j], r[i]
    return r


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` takes, as PyTorch's sampler.

    Each epoch: the indices ``0..n-1``, shuffled (when ``shuffle``) by ``seed + epoch`` (call
    :meth:`set_epoch` at the start of every epoch, or every epoch repeats the first one's order); then,
    unless ``drop_last``, padded by repeating indices from the start to a multiple of ``num_replicas``
    (so every rank gets ``ceil(n / num_replicas)``), or with ``drop_last`` cut to a multiple; rank r
    takes ``indices[r::num_replicas]``. ``num_replicas`` and ``rank`` default to the process group's.
    Give it to :class:`~gpucnn.data.DataLoader` as ``sampler=`` (with ``shuffle=False``).
    """

    def __init__(self, dataset: Any, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        check_map_style(dataset, "DistributedSampler")
        if num_replicas is None or rank is None:
            from gpucnn import distributed as dist
            if not dist.is_initialized():
                raise ArgumentError("DistributedSampler: pass num_replicas and rank, or call "
                                    "gpucnn.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        for name, value in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ArgumentError(f"DistributedSampler: {name} must be an integer, got {value!r}")
        if num_replicas < 1:
            raise ArgumentError(f"DistributedSampler: num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ArgumentError(f"DistributedSampler: invalid rank {rank}, rank should be in the interval "
                                f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank, self.seed = int(num_replicas), int(rank), int(seed)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch (int64), what iterating yields."""
        n = len(self.dataset)
        order = torch_randperm(n, self.seed + self.epoch) if self.shuffle else np.arange(n, dtype=np.int64)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:  # repeat the order from its start (whole times over when pad > n)
                order = np.concatenate([order, np.resize(order, pad)]) if n else order
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next iteration on (every rank must call it alike)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ArgumentError(f"DistributedSampler.set_epoch: epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    # (not in PyTorch) the DataLoader keeps these in its state_dict, so an exact resume takes the same order
    def state_dict(self) -> dict[str, Any]:
        """The epoch and what fixes the order (JSON-serialisable); the rank is not part of it, since one
        rank's saved state resumes every rank."""
        return {"epoch": self.epoch, "seed": self.seed, "num_replicas": self.num_replicas,
                "shuffle": self.shuffle, "drop_last": self.drop_last, "num_samples": len(self.dataset)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        for key in ("num_replicas", "shuffle", "drop_last", "num_samples"):
            if state.get(key) != mine[key]:
                raise ArgumentError(f"DistributedSampler state has {key}={state.get(key)!r} but this sampler has "
                                    f"{key}={mine[key]!r}")
        self.set_epoch(int(state["epoch"]))
        self.seed = int(state["seed"])
