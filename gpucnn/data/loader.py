"""Mini-batches from an :class:`ArrayDataset`, seeded, shuffled per epoch and exactly resumable."""
from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpucnn.errors import ArgumentError

from .dataset import ArrayDataset
from .transforms import ToFloat, Transform

_TO_FLOAT = ToFloat()


def _plain(value: Any) -> Any:
    """A JSON-serialisable deep copy (numpy ints become Python ints)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


class DataLoader:
    """Iterate over ``dataset`` in ``(x, y)`` batches: x float32 (N, C, H, W), y int64 (N,).

    ``x`` is the batch after ``transform`` (called as ``transform(x, rng)``); a batch still uint8
    at the end of the chain (as with ``transform=None`` on uint8 data) is scaled to 0..1 like
    :class:`ToFloat` does, and any other dtype is cast to float32.

    Randomness comes from one ``np.random.Generator(np.random.PCG64(seed))``: at the start of each
    epoch it draws that epoch's permutation (when ``shuffle``) and a seed for the augmentation,
    and batch ``k`` of the epoch gets its own generator derived from that seed and ``k``. So any
    batch can be rebuilt from the RNG state at the epoch's start and its index.

    The loader is a stream: iterating resumes the current epoch where the last iteration stopped
    (a new epoch starts once one is exhausted), and :meth:`state_dict` captures the position
    exactly. A loader given that state with :meth:`load_state_dict` yields the same batches as an
    uninterrupted one; :meth:`iter_from` (re)starts the current epoch at a given batch.
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Transform | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ArgumentError(f"batch_size must be at least 1, got {batch_size}")
        if transform is not None and not callable(transform):
            raise ArgumentError(f"transform must be callable, got {type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self.epoch = 0          # the epoch in progress, or the next one to start
        self.batch_index = 0    # batches of that epoch already yielded
        self._epoch_state = _plain(self._rng.bit_generator.state)  # RNG state at the epoch's start

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _epoch_plan(self) -> tuple[np.ndarray, int, dict]:
        """(order, augmentation seed, RNG state after the draws) of the current epoch."""
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = copy.deepcopy(self._epoch_state)
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        aug_seed = int(rng.integers(0, 2**63 - 1))
        return order, aug_seed, _plain(rng.bit_generator.state)

    def batch_rng(self, aug_seed: int, batch_index: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([aug_seed, batch_index])))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        start = self.batch_index if self.batch_index < len(self) else 0
        return self.iter_from(start)

    def iter_from(self, batch_index: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the current epoch's batches from ``batch_index`` on (earlier ones are skipped, not built)."""
        total = len(self)
        if not 0 <= int(batch_index) <= total:
            raise ArgumentError(f"batch_index must be in [0, {total}], got {batch_index}")
        if self.batch_index >= total and total > 0:
            self._finish_epoch()
        return self._generate(int(batch_index))

    def _finish_epoch(self) -> None:
        _, _, next_state = self._epoch_plan()
        self._epoch_state = next_state
        self.epoch += 1
        self.batch_index = 0

    def _generate(self, start: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order, aug_seed, _ = self._epoch_plan()
        total = len(self)
        self.batch_index = start
        images, labels = self.dataset.images, self.dataset.labels
        for k in range(start, total):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            if len(idx) > 1 and not self.shuffle:
                x = images[idx[0]:idx[-1] + 1].copy()  # contiguous: a slice is faster than a gather
            else:
                x = images[idx]
            y = labels[idx]
            if self.transform is not None:
                x = self.transform(x, self.batch_rng(aug_seed, k))
            x = _TO_FLOAT(x) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
            x = np.ascontiguousarray(x)
            self.batch_index = k + 1
            if self.batch_index == total:
                self._finish_epoch()
            yield x, y

    def state_dict(self) -> dict[str, Any]:
        """The position (epoch, batches done in it) and RNG state; JSON-serialisable."""
        return {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "rng_state": copy.deepcopy(self._epoch_state),
            "seed": self.seed,
            "shuffle": self.shuffle,
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "num_samples": len(self.dataset),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the loader must have the same dataset size and batching."""
        try:
            mine = {"shuffle": self.shuffle, "batch_size": self.batch_size, "drop_last": self.drop_last,
                    "num_samples": len(self.dataset)}
            for key, value in mine.items():
                if state[key] != value:
                    raise ArgumentError(
                        f"DataLoader state has {key}={state[key]!r} but this loader has {key}={value!r}"
                    )
            epoch, batch_index = int(state["epoch"]), int(state["batch_index"])
            seed = int(state.get("seed", self.seed))
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = copy.deepcopy(state["rng_state"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ArgumentError):
                raise
            raise ArgumentError(f"not a DataLoader state ({type(exc).__name__}: {exc})") from None
        if epoch < 0 or not 0 <= batch_index <= len(self):
            raise ArgumentError(f"DataLoader state has an invalid position: epoch {epoch}, batch {batch_index}")
        self.epoch, self.batch_index = epoch, batch_index
        self._epoch_state = _plain(rng.bit_generator.state)
        self.seed = seed
