"""What a training run does differently as one of K processes (``mpiexec -n K gpucnn train``).

- :class:`World`: this process's rank and the job's size (``gpucnn.distributed``, or a world of one),
  and the sums the runs' figures need: every rank trains and evaluates its own share, then the totals
  (loss * n, correct, counts, a confusion matrix) are added over the ranks, so every rank prints,
  records and decides (early stopping, the lr schedule) on the same numbers.
- :class:`ShardSampler`: evaluation shards, ``indices[rank::K]`` without padding, so each image counts
  once (:class:`gpucnn.data.DistributedSampler` repeats images to even the shards out, right for
  training, wrong for a test accuracy).
- :func:`launched_by_mpi`: whether this process was started by ``mpiexec`` (the CLI then joins the job).

Training shards come from :class:`gpucnn.data.DistributedSampler`: one permutation of the whole set per
epoch, from ``seed + epoch`` only, rank r taking ``permutation[r::K]``, so for any K the samples of global
step i are the same (those of a single process at K times the batch size).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

#: environment variables that mpiexec launchers set in each process (MPICH's Hydra, Open MPI, Slurm's PMI)
_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK")


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process (``mpiexec -n K ...``, any K)."""
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` (``backend``: "mpi" or "nccl"; None alone)."""
    rank: int = 0
    size: int = 1
    backend: Optional[str] = None

    @property
    def writer(self) -> bool:
        """Rank 0 writes the run's files and prints its progress; the others only train."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def describe(self) -> str:
        return f"world size {self.size} ({self.backend})"

    # The run's figures travel as JSON over MPI (gpucnn.distributed.all_gather_object), on the host, with
    # either backend (NCCL reduces device arrays only); JSON keeps float64 exactly, and the sums are taken
    # in rank order, so every rank gets the same bits.
    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` added over the ranks (float64; exact for the integer counts)."""
        if self.size == 1:
            return [float(v) for v in values]
        return self.sum_array(np.asarray(values, np.float64)).tolist()

    def sum_array(self, a: np.ndarray) -> np.ndarray:
        """The host array ``a`` (the same shape on every rank) added over the ranks, in rank order."""
        if self.size == 1:
            return a
        from .. import distributed

        parts = distributed.all_gather_object(np.asarray(a).tolist())
        out = np.asarray(parts[0], dtype=a.dtype)
        for p in parts[1:]:
            out = out + np.asarray(p, dtype=a.dtype)
        return out

    def check_same(self, what: str, value: dict) -> None:
        """Refuse a job whose ranks disagree on ``value`` (the run's configuration, the data's fingerprint):
        an ArgumentError on every rank naming the first rank and key that differ from rank 0's."""
        if self.size == 1:
            return
        from .. import distributed
        from ..errors import ArgumentError

        values = distributed.all_gather_object(value)
        for r, other in enumerate(values[1:], 1):
            if other != values[0]:
                key = next((k for k in sorted(set(other) | set(values[0])) if other.get(k) != values[0].get(k)), "?")
                raise ArgumentError(f"rank {r}'s {what} differs from rank 0's at {key!r}: {other.get(key)!r} on rank "
                                    f"{r}, {values[0].get(key)!r} on rank 0; every process must run the same command "
                                    f"on the same data")

    def gather(self, a: np.ndarray) -> np.ndarray:
        """The 1-D host arrays of every rank, concatenated in rank order (lengths may differ by rank)."""
        if self.size == 1:
            return a
        from .. import distributed

        parts = distributed.all_gather_object(np.asarray(a).tolist())
        return np.concatenate([np.asarray(p, dtype=a.dtype) for p in parts])


def world() -> World:
    """The current :class:`World`: from :mod:`gpucnn.distributed` once initialised, else a world of one."""
    from .. import distributed

    if not distributed.is_initialized():
        return World()
    return World(distributed.get_rank(), distributed.get_world_size(), distributed.get_backend())


class ShardSampler:
    """``range(rank, n, size)``: rank's share of ``n`` evaluation samples, each sample on one rank only."""

    def __init__(self, n: int, rank: int, size: int) -> None:
        self.n, self.rank, self.size = int(n), int(rank), int(size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.size))

    def __repr__(self) -> str:
        return f"ShardSampler(n={self.n}, rank={self.rank}, size={self.size})"


def is_sharded(loader: Any) -> bool:
    """Whether ``loader`` evaluates one rank's shard (its figures must then be summed over the ranks)."""
    return isinstance(getattr(loader, "sampler", None), ShardSampler)
