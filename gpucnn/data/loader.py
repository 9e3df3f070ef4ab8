"""DataLoader: mini-batches of a map-style dataset, seeded, shuffled per epoch and exactly resumable."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpucnn.errors import ArgumentError

from .collate import default_collate
from .dataset import ArrayDataset, TensorDataset, check_map_style, unwrap_subsets
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
    """Batches of a map-style ``dataset``, as ``torch.utils.data.DataLoader``, seeded and exactly resumable.

    ``dataset`` is any object with ``__len__`` and ``__getitem__`` (a :class:`~gpucnn.data.Dataset`
    subclass, a :class:`~gpucnn.data.TensorDataset`, a :class:`~gpucnn.data.Subset`, ...). What a batch is:

    - for an :class:`~gpucnn.data.ArrayDataset` (or a Subset of one) without ``collate_fn``: NumPy
      arrays ``(x, y)``, x float32 (N, C, H, W), y int64 (N,), gathered in one indexing. ``x`` is the batch
      after ``transform`` (called as ``transform(x, rng)``); a batch still uint8 at the end of the chain
      (as with ``transform=None`` on uint8 data) is scaled to 0..1 like :class:`ToFloat` does, and any
      other dtype is cast to float32. This is the path :class:`~gpucnn.training.Trainer` and the CLI use;
    - otherwise ``collate_fn(items)`` of the batch's items (``dataset.__getitems__(indices)`` where the
      dataset defines it, else ``[dataset[i] for i in indices]``); the default, :func:`default_collate`,
      gives gpucnn Tensors as PyTorch's does (a TensorDataset's batches are gathered in one indexing per
      tensor, with the same result). ``transform`` is for ArrayDataset batches only.

    Epochs. Every ``iter(loader)`` (every ``for`` loop) starts a new epoch, as in PyTorch: a ``break`` or a
    ``next(iter(loader))`` never shortens the next one. Epoch ``e`` (0, 1, 2, ...) always gets the
    ``e``-th permutation (when ``shuffle``) and augmentation seed drawn from one
    ``np.random.Generator(np.random.PCG64(seed))``, however earlier epochs were consumed (to the end, up
    to a ``break``, or only begun). ``epoch`` is the epoch in progress, or the one the next ``iter()``
    starts when the last ran to its end; ``batch_index`` counts the batches of it yielded so far. Batch
    ``k`` of an epoch gets its own augmentation generator derived from the epoch's seed and ``k``, so any
    batch can be rebuilt from the RNG state at the epoch's start and its index.

    ``sampler`` (as PyTorch's, exclusive with ``shuffle``): an iterable of dataset indices with a length,
    iterated afresh at each epoch's start; a :class:`~gpucnn.data.DistributedSampler` gives each rank its
    share (call its ``set_epoch`` before each epoch). Its ``state_dict()``, when it has one, is part of
    the loader's.

    ``shard=(rank, world)``: this process's share of each epoch for data-parallel training: of the
    epoch's order (the same permutation as without ``shard``), positions ``rank, rank + world, ...``,
    the order first padded by repeating its first images so that every rank gets as many (PyTorch's
    DistributedSampler pads the same way). So ``world`` processes at batch ``b`` see, in step ``i``, the
    images one process sees at batch ``world * b``; ``shard=(0, 1)`` is the plain loader. Augmentation
    generators differ by rank.

    Exact resume. :meth:`state_dict` captures the position (JSON-serialisable); after
    :meth:`load_state_dict` the next ``iter()`` continues that epoch from that batch (as torchdata's
    ``StatefulDataLoader``), so the loader yields the same batches as an uninterrupted one.
    :meth:`iter_from` (re)starts the current epoch at a given batch (the trainer starts every epoch with
    ``iter_from(0)``, so an epoch abandoned by Ctrl-C is replayed whole) and :meth:`resume` continues the
    current epoch where the last iteration stopped.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        sampler: Any = None,
        shard: tuple[int, int] | None = None,
        seed: int = 0,
        drop_last: bool = False,
        transform: Transform | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(f"batch_size must be at least 1, got {batch_size!r}")
        check_map_style(dataset, "DataLoader")
        if transform is not None and not callable(transform):
            raise ArgumentError(f"transform must be callable, got {type(transform).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise ArgumentError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        if sampler is not None:
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise ArgumentError(f"DataLoader: sampler must be an iterable of indices with a length, got "
                                    f"{type(sampler).__name__}")
            if shuffle:
                raise ArgumentError("DataLoader: sampler option is mutually exclusive with shuffle (the sampler "
                                    "gives the order; a DistributedSampler shuffles itself)")
        if shard is not None:
            ok = isinstance(shard, (tuple, list)) and len(shard) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shard)
            if not ok or not 0 <= shard[0] < shard[1]:
                raise ArgumentError(f"DataLoader: shard must be (rank, world) with 0 <= rank < world, got {shard!r}")
            if sampler is not None:
                raise ArgumentError("DataLoader: shard and sampler are mutually exclusive (a DistributedSampler "
                                    "shards by itself)")
            shard = (int(shard[0]), int(shard[1]))
        root, base = unwrap_subsets(dataset)
        if transform is not None and (collate_fn is not None or not isinstance(root, ArrayDataset)):
            raise ArgumentError(f"DataLoader: transform= works on the image batches of an ArrayDataset without "
                                f"collate_fn (got a {type(root).__name__}"
                                f"{' and a collate_fn' if collate_fn is not None else ''}); transform the items "
                                f"in the dataset's __getitem__ or in collate_fn instead")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.shard = shard
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.collate_fn = collate_fn
        # the batched paths: (ArrayDataset | TensorDataset, composed Subset indices or None)
        self._root = root if collate_fn is None and isinstance(root, (ArrayDataset, TensorDataset)) else None
        self._base = base
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self.epoch = 0          # the epoch in progress, or the next one to start
        self.batch_index = 0    # batches of that epoch already yielded
        self._epoch_state = _plain(self._rng.bit_generator.state)  # RNG state at the epoch's start
        self._resume_at: int | None = 0  # where the next iter() starts in `epoch`; None: it starts a new epoch
        self._active: object | None = None  # the iteration that moves the position

    def _items(self) -> int:
        """Items per epoch (of this rank's share, with ``shard``)."""
        if self.sampler is not None:
            return len(self.sampler)
        n = len(self.dataset)
        return n if self.shard is None else -(-n // self.shard[1])

    def __len__(self) -> int:
        n = self._items()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _epoch_plan(self) -> tuple[np.ndarray, int, dict]:
        """(order, augmentation seed, RNG state after the draws) of the current epoch."""
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = copy.deepcopy(self._epoch_state)
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            if self.shard is not None:
                rank, world = self.shard
                order = np.resize(order, -(-n // world) * world)[rank::world]  # (padded with its first ones)
        aug_seed = int(rng.integers(0, 2**63 - 1))
        return order, aug_seed, _plain(rng.bit_generator.state)

    def batch_rng(self, aug_seed: int, batch_index: int) -> np.random.Generator:
        """The augmentation generator of batch ``batch_index`` of the epoch whose seed is ``aug_seed``."""
        key = [aug_seed, batch_index] + ([self.shard[0]] if self.shard is not None and self.shard[0] else [])
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))

    def __iter__(self) -> Iterator[Any]:
        """A new epoch's batches (or, first after :meth:`load_state_dict`, the rest of the saved epoch)."""
        if self._resume_at is None:
            self._finish_epoch(self._epoch_plan()[2])
        return self.iter_from(self._resume_at)

    def resume(self) -> Iterator[Any]:
        """The current epoch's remaining batches, from where the last iteration stopped."""
        return self.iter_from(self.batch_index)

    def iter_from(self, batch_index: int) -> Iterator[Any]:
        """Yield the current epoch's batches from ``batch_index`` on (earlier ones are skipped, not built)."""
        total = len(self)
        if isinstance(batch_index, bool) or not isinstance(batch_index, (int, np.integer)) \
                or not 0 <= batch_index <= total:
            raise ArgumentError(f"batch_index must be in [0, {total}], got {batch_index!r}")
        plan = self._epoch_plan()
        token = object()
        self._active, self._resume_at, self.batch_index = token, None, int(batch_index)
        return self._generate(token, plan, int(batch_index))

    def _finish_epoch(self, next_state: dict) -> None:
        self._epoch_state = next_state
        self.epoch += 1
        self.batch_index = 0
        self._resume_at = 0
        self._active = None

    def _generate(self, token: object, plan: tuple[np.ndarray, int, dict], start: int) -> Iterator[Any]:
        order, aug_seed, next_state = plan
        total = len(self)
        for k in range(start, total):
            batch = self._batch(order[k * self.batch_size:(k + 1) * self.batch_size], aug_seed, k)
            if self._active is token:  # an older iterator still yields its own epoch, but moves nothing
                self.batch_index = k + 1
                if self.batch_index == total:
                    self._finish_epoch(next_state)
            yield batch

    def _batch(self, idx: np.ndarray, aug_seed: int, k: int) -> Any:
        """Batch ``k`` of an epoch: the items ``idx`` (positions in ``self.dataset``)."""
        root = self._root
        if self._base is not None:
            idx = self._base[idx]
        if isinstance(root, TensorDataset):
            return root._batch(idx)
        if root is None:
            getitems = getattr(self.dataset, "__getitems__", None)
            items = getitems(idx.tolist()) if callable(getitems) else [self.dataset[int(i)] for i in idx]
            return (self.collate_fn or default_collate)(items)
        if len(idx) > 1 and self._base is None and not self.shuffle and self.sampler is None and self.shard is None:
            x = root.images[idx[0]:idx[-1] + 1].copy()  # contiguous: a slice is faster than a gather
        else:
            x = root.images[idx]
        y = root.labels[idx]
        if self.transform is not None:
            x = self.transform(x, self.batch_rng(aug_seed, k))
        x = _TO_FLOAT(x) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
        return np.ascontiguousarray(x), y

    def state_dict(self) -> dict[str, Any]:
        """The position (epoch, batches done in it) and RNG state; JSON-serialisable."""
        state = {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "rng_state": copy.deepcopy(self._epoch_state),
            "seed": self.seed,
            "shuffle": self.shuffle,
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "num_samples": len(self.dataset),
        }
        if callable(getattr(self.sampler, "state_dict", None)):  # (DistributedSampler: its epoch and seed)
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the next ``iter()`` continues the saved epoch from the saved batch.
        The loader must have the same dataset size and batching."""
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
        if "sampler" in state and callable(getattr(self.sampler, "load_state_dict", None)):
            self.sampler.load_state_dict(state["sampler"])
        self.epoch, self.batch_index = epoch, batch_index
        self._epoch_state = _plain(rng.bit_generator.state)
        self.seed = seed
        self._resume_at, self._active = batch_index, None
        if batch_index == len(self) > 0:  # saved after the epoch's last batch: the next epoch is due
            self._finish_epoch(self._epoch_plan()[2])
