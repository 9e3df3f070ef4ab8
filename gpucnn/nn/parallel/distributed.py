"""DistributedDataParallel: one model replica per process, gradients averaged over the process group.

As PyTorch's DDP: rank 0's parameters and buffers are broadcast at construction (after checking that
every rank's model has the same parameter and buffer shapes); the gradients go into buckets in reverse
registration order (backward produces the last layers' gradients first), the first bucket 1 MiB, the
others ``bucket_cap_mb`` (the buckets PyTorch rebuilds after its first iteration when gradients arrive in
that order); a bucket is all-reduced as soon as backward has accumulated every gradient in
it (a post-accumulate-grad hook per parameter; a non-blocking ``Iallreduce`` on MPI, a side stream on
NCCL), always in bucket order so every rank issues the same collectives, while backward goes on with
earlier layers. The last bucket's hook waits for all of them and writes the averages into ``.grad``,
so when ``loss.backward()`` returns every rank holds the same gradients.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, Iterator, Optional

import numpy as np

from ... import distributed as dist
from ...dtypes import is_floating_point
from ...errors import ArgumentError, AutogradError, ShapeError
from ...function import Function, is_grad_enabled
from ...tensor import Tensor
from ..module import Module

#: PyTorch's first bucket (torch.distributed._DEFAULT_FIRST_BUCKET_BYTES): small, so the first
#: all-reduce starts early in backward
FIRST_BUCKET_BYTES = 1024 * 1024
DEFAULT_BUCKET_CAP_MB = 25.0


class _Bucket:
    def __init__(self, index: int, params: list[tuple[str, Any]]) -> None:
        self.index = index
        self.names = [n for n, _ in params]
        self.params = [p for _, p in params]
        self.sizes = [p.numel() for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int).tolist()
        self.ready: set[int] = set()
        self.nbytes = sum(p.data.nbytes for p in self.params)


def assign_buckets(params: list[tuple[str, Any]], bucket_cap_bytes: int,
                   first_bucket_bytes: int = FIRST_BUCKET_BYTES) -> list[list[tuple[str, Any]]]:
    """PyTorch's bucket assignment: the parameters in reverse order, one open bucket per (dtype, device);
    a bucket closes once it holds at least its limit (the first ``first_bucket_bytes``, the rest
    ``bucket_cap_bytes``). Buckets come out in the order of their first parameter."""
    open_: dict[Any, list] = {}
    limits: dict[Any, int] = {}
    closed: list[tuple[int, list]] = []
    for position, (name, p) in enumerate(reversed(params)):
        key = (str(p.dtype), str(p.device))
        bucket = open_.setdefault(key, [position, [], 0])
        bucket[1].append((name, p))
        bucket[2] += p.data.nbytes
        limit = first_bucket_bytes if key not in limits else limits[key]
        if bucket[2] >= limit:
            closed.append((bucket[0], bucket[1]))
            del open_[key]
            limits[key] = bucket_cap_bytes
    closed.extend((b[0], b[1]) for b in open_.values())
    return [members for _, members in sorted(closed, key=lambda c: c[0])]


def _graph_leaves(outputs: Any) -> set[int]:
    """ids of the leaf tensors the autograd graph of ``outputs`` (tensors in nested tuples/lists/dicts)
    reaches."""
    from ...autograd import _functions_in_order

    roots = []

    def collect(o: Any) -> None:
        if isinstance(o, Tensor):
            roots.append(o)
        elif isinstance(o, (list, tuple)):
            for v in o:
                collect(v)
        elif isinstance(o, dict):
            for v in o.values():
                collect(v)

    collect(outputs)
    leaves: set[int] = set()
    for t in roots:
        if t._ctx is None:
            leaves.add(id(t))
            continue
        for fn in _functions_in_order(t._ctx):
            leaves.update(id(p) for p in fn.parents if p is not None and not isinstance(p, Function))
    return leaves


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` over the default process group (PyTorch's DDP semantics).

    Every rank builds the same model and wraps it; each feeds its own share of the batch (a
    :class:`~gpucnn.data.DistributedSampler`); after ``loss.backward()`` the gradients are the average over
    the ranks, so the optimizers, stepping alike, keep the replicas equal. ``no_sync()`` skips the
    reduction (gradient accumulation: the next synchronised backward reduces the accumulated sums).

    - ``broadcast_buffers``: rank 0's buffers (batch-norm running statistics) are broadcast at every
      forward, as in PyTorch.
    - ``bucket_cap_mb``: the bucket size in MiB, 25 by default (and then the first bucket, that of the
      last layers, 1 MiB, so the first all-reduce starts early); given, every bucket has that size.
    - ``find_unused_parameters``: after each forward, the parameters its output's graph does not reach
      count as ready (their bucket slot is zero); without it such a parameter leaves its bucket
      unreduced and the next forward raises. Unlike PyTorch, a parameter unused on every rank gets a
      zero ``.grad`` (PyTorch leaves it None).

    ``state_dict()`` and ``load_state_dict()`` are the wrapped module's, without PyTorch's ``module.``
    prefix, so a checkpoint written from a DDP run loads into the plain model and back; a state dict
    whose keys all start with ``module.`` (written by PyTorch's DDP) loads too. Other names
    (``named_parameters()``, ``named_modules()``) keep the prefix, as in PyTorch. Buckets are not rebuilt
    after the first iteration (PyTorch re-sorts them by the order gradients arrived in).
    """

    def __init__(self, module: Module, *, broadcast_buffers: bool = True, bucket_cap_mb: Optional[float] = None,
                 find_unused_parameters: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise ArgumentError(f"DistributedDataParallel: module must be a gpucnn.nn.Module, got "
                                f"{type(module).__name__}")
        first_bucket = FIRST_BUCKET_BYTES if bucket_cap_mb is None else None
        bucket_cap_mb = DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ArgumentError(f"DistributedDataParallel: bucket_cap_mb must be a number > 0, got {bucket_cap_mb!r}")
        backend = dist._default_backend()
        if backend is None:
            raise ArgumentError("DistributedDataParallel: the default process group has not been initialized; "
                                "call gpucnn.distributed.init_process_group() first")
        self.module = module
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        object.__setattr__(self, "bucket_cap_mb", float(bucket_cap_mb))
        object.__setattr__(self, "find_unused_parameters", bool(find_unused_parameters))
        object.__setattr__(self, "require_backward_grad_sync", True)
        self._verify_same_model()
        self._broadcast_state()
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        cap = int(self.bucket_cap_mb * 1024 * 1024)
        buckets = [_Bucket(i, members) for i, members in
                   enumerate(assign_buckets(params, cap, cap if first_bucket is None else first_bucket))]
        where = {id(p): (b, k) for b in buckets for k, p in enumerate(b.params)}
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_hooks", [p.register_post_accumulate_grad_hook(self._grad_ready)
                                            for _, p in params])
        self._reset()

    # -- construction ---------------------------------------------------------------------------------
    def _verify_same_model(self) -> None:
        """Every rank's parameters and buffers must have rank 0's names, shapes and dtypes; all ranks
        raise the same error naming the first difference (none goes on to wait in a broadcast)."""
        mine = [["parameter", n, list(p.shape), str(p.dtype)] for n, p in self.module.named_parameters()]
        mine += [["buffer", n, list(b.shape), str(b.dtype)] for n, b in self.module.named_buffers()]
        specs = self._backend.all_gather_json(mine)
        reference = specs[0]
        for rank, spec in enumerate(specs[1:], start=1):
            for k in range(max(len(spec), len(reference))):
                ours = spec[k] if k < len(spec) else None
                theirs = reference[k] if k < len(reference) else None
                if ours == theirs:
                    continue
                if ours is None or theirs is None:
                    have = theirs if ours is None else ours
                    raise ShapeError(
                        f"DistributedDataParallel: rank {rank}'s model has {len(spec)} parameters and buffers, rank "
                        f"0's {len(reference)}; the first one only rank {0 if ours is None else rank} has is "
                        f"{have[0]} '{have[1]}' of shape {tuple(have[2])}")
                raise ShapeError(
                    f"DistributedDataParallel: rank {rank}'s model differs from rank 0's at {ours[0]} '{ours[1]}': "
                    f"shape {tuple(ours[2])} ({ours[3]}) on rank {rank}, {theirs[0]} '{theirs[1]}' of shape "
                    f"{tuple(theirs[2])} ({theirs[3]}) on rank 0")

    def _broadcast_state(self) -> None:
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            self._backend.broadcast(t.data, 0)
            t._vc.value += 1

    # -- the reduction --------------------------------------------------------------------------------
    def _reset(self) -> None:
        for b in self._buckets:
            b.ready.clear()
        object.__setattr__(self, "_next_bucket", 0)
        object.__setattr__(self, "_in_flight", [])
        object.__setattr__(self, "_armed", False)

    def _grad_ready(self, p: Tensor) -> None:
        if not self._armed:
            return  # a backward not prepared by a synchronised forward of this wrapper (or under no_sync)
        bucket, k = self._where[id(p)]
        bucket.ready.add(k)
        self._launch_ready_buckets()

    def _launch_ready_buckets(self) -> None:
        for _, work in self._in_flight:  # lets MPI progress the reductions already started
            work.is_completed()
        buckets = self._buckets
        while self._next_bucket < len(buckets) and len(buckets[self._next_bucket].ready) == len(
                buckets[self._next_bucket].params):
            bucket = buckets[self._next_bucket]
            self._in_flight.append((bucket, self._start(bucket)))
            object.__setattr__(self, "_next_bucket", self._next_bucket + 1)
        if self._next_bucket == len(buckets):
            for bucket, work in self._in_flight:
                work.wait()
                self._unpack(bucket)
            self._reset()

    def _start(self, bucket: _Bucket) -> Any:
        first = bucket.params[0]
        xp = first.device.xp
        flat = xp.zeros(bucket.offsets[-1], dtype=first.dtype)
        for p, lo, hi in zip(bucket.params, bucket.offsets[:-1], bucket.offsets[1:]):
            if p.grad is not None:
                flat[lo:hi] = p.grad.data.reshape(-1)
        if is_floating_point(flat.dtype):  # averaged as PyTorch does: each rank's part divided first
            flat /= self._backend.world_size
        object.__setattr__(bucket, "flat", flat)
        return self._backend.all_reduce(flat, "sum", async_op=True)

    def _unpack(self, bucket: _Bucket) -> None:
        flat = bucket.flat
        for p, lo, hi in zip(bucket.params, bucket.offsets[:-1], bucket.offsets[1:]):
            value = flat[lo:hi].reshape(p.shape)
            if p.grad is None:
                p.grad = Tensor._wrap(value.copy(), p.device)
            else:
                p.grad.data[...] = value
                p.grad._vc.value += 1
        del bucket.flat

    # -- use ----------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._armed and any(b.ready for b in self._buckets):
            unready = [n for b in self._buckets for k, n in enumerate(b.names) if k not in b.ready]
            raise AutogradError(
                "DistributedDataParallel: expected to have finished reduction in the prior iteration before "
                "starting a new one: the parameters " + ", ".join(repr(n) for n in unready[:8])
                + (" ..." if len(unready) > 8 else "") + " got no gradient in the last backward. Pass "
                "find_unused_parameters=True if some parameters take no part in producing the loss (or make "
                "sure every rank's output depends on every parameter)")
        self._reset()
        if self.broadcast_buffers and self._backend.world_size > 1:
            for b in self.module.buffers():
                self._backend.broadcast(b.data, 0)
                b._vc.value += 1
        out = self.module(*args, **kwargs)
        if is_grad_enabled() and self.require_backward_grad_sync and self._buckets:
            object.__setattr__(self, "_armed", True)
            if self.find_unused_parameters:
                reached = _graph_leaves(out)
                for bucket in self._buckets:
                    bucket.ready.update(k for k, p in enumerate(bucket.params) if id(p) not in reached)
                if any(bucket.ready for bucket in self._buckets):
                    self._launch_ready_buckets()
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, forwards prepare no reduction: their backwards only accumulate local gradients
        (the first synchronised backward after reduces the sums)."""
        old = self.require_backward_grad_sync
        object.__setattr__(self, "require_backward_grad_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "require_backward_grad_sync", old)

    @property
    def bucket_names(self) -> list[list[str]]:
        """The parameter names of each bucket, in reduction order."""
        return [list(b.names) for b in self._buckets]

    # -- the wrapped module's state and architecture --------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """The wrapped module's state dict (no ``module.`` prefix: see the class docstring)."""
        return self.module.state_dict(prefix, keep_vars)

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> Any:
        """Into the wrapped module; keys that all start with ``module.`` (PyTorch's DDP) lose it first."""
        if hasattr(state_dict, "keys") and state_dict and all(str(k).startswith("module.") for k in state_dict):
            state_dict = OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
        return self.module.load_state_dict(state_dict, strict)

    def config(self) -> dict:
        return self.module.config()

    def to_config(self) -> dict:
        """The wrapped module's architecture (the wrapper is not part of it)."""
        return self.module.to_config()

    def extra_repr(self) -> str:
        return f"world_size={self._backend.world_size}, buckets={len(self._buckets)}"
