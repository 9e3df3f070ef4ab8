"""Process groups and collectives for data-parallel training, like ``torch.distributed``.

Launch K processes with ``mpiexec -n K python train.py`` (``pip install 'gpucnn[mpi]'`` brings mpi4py and
MPICH's ``mpiexec``), and in each::

    import gpucnn.distributed as dist
    dist.init_process_group()            # "auto": NCCL when every rank has a GPU, else MPI
    dist.all_reduce(t, op="sum")         # in place, on every rank

Backends: ``"mpi"`` (mpi4py; host buffers, device arrays go through the host) and ``"nccl"`` (CuPy's
``cupy.cuda.nccl``, for cuda tensors; its unique id is broadcast over MPI). A plain ``python`` process
is a world of one. Importing this module imports neither mpi4py nor CuPy, and nothing changes for a
process that never calls :func:`init_process_group`.

Faults: :func:`init_process_group` (world size > 1) installs a ``sys.excepthook`` that prints the
traceback under a line naming the rank and calls ``MPI_Abort``, so one rank's uncaught exception ends the
whole job (``mpiexec`` exits non-zero) instead of leaving the others blocked in a collective; a rank killed
outright (SIGKILL) is noticed by ``mpiexec``, which ends the others. :func:`destroy_process_group` puts the
previous hook back.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import ArgumentError, DeviceError
from ..tensor import Tensor
from ._mpi import MPIBackend, MPINotInstalledError, Work, done_work, import_mpi, install_abort_hook

__all__ = ["init_process_group", "is_initialized", "is_available", "destroy_process_group", "get_rank",
           "get_world_size", "get_local_rank", "get_local_world_size", "get_backend", "abort", "all_gather_object", "all_reduce", "broadcast", "all_gather", "barrier",
           "ReduceOp", "Work", "MPINotInstalledError"]


class ReduceOp:
    """The reduction ops of :func:`all_reduce` (strings are accepted too: ``"sum"``, ...)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


_OPS = ("sum", "avg", "max", "min")


class _Group:
    def __init__(self, backend: Any, restore_hook: Any) -> None:
        self.backend, self.restore_hook = backend, restore_hook


_group: Optional[_Group] = None  # the default process group: set by init_process_group only


def is_available() -> bool:
    """Whether mpi4py can be imported (without initialising anything)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def init_process_group(backend: str = "auto") -> None:
    """Join the job's default process group: every rank of ``mpiexec -n K`` calls this once.

    ``backend``: ``"mpi"``, ``"nccl"`` (every rank needs a CUDA device; rank r uses ``cuda:local_rank``),
    or ``"auto"`` (NCCL when every rank has a CUDA device, else MPI; the ranks agree on it).
    """
    global _group
    if backend not in ("auto", "mpi", "nccl"):
        raise ArgumentError(f"init_process_group: backend must be 'auto', 'mpi' or 'nccl', got {backend!r}")
    if _group is not None:
        raise ArgumentError("init_process_group: the default process group is already initialized "
                            "(call destroy_process_group() first)")
    import_mpi()
    mpi = MPIBackend()
    chosen = backend
    if backend != "mpi":
        from ..backend import cuda_available
        has_gpu = mpi.all_gather_json(bool(cuda_available()))
        without = [r for r, ok in enumerate(has_gpu) if not ok]
        if backend == "nccl" and without:
            mpi.close()
            raise DeviceError(f"init_process_group('nccl'): rank{'s' if len(without) > 1 else ''} "
                              f"{', '.join(map(str, without))} of {mpi.world_size} ha{'ve' if len(without) > 1 else 's'} "
                              f"no CUDA device (with CuPy); use backend 'mpi' or 'auto'")
        chosen = "mpi" if without else "nccl"
    impl: Any = mpi
    if chosen == "nccl":
        from ._nccl import NCCLBackend
        impl = NCCLBackend(mpi)
    restore = install_abort_hook(mpi) if mpi.world_size > 1 else None
    _group = _Group(impl, restore)


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has been called (and not destroyed since)."""
    return _group is not None


def _backend(op: str) -> Any:
    if _group is None:
        raise ArgumentError(f"{op}: the default process group has not been initialized; call "
                            f"gpucnn.distributed.init_process_group() first")
    return _group.backend


def destroy_process_group() -> None:
    """Leave the default process group (and put the previous ``sys.excepthook`` back)."""
    global _group
    _backend("destroy_process_group")
    group, _group = _group, None
    if group.restore_hook is not None:
        group.restore_hook()
    group.backend.close()


def get_backend() -> str:
    """``"mpi"`` or ``"nccl"``."""
    return _backend("get_backend").name


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return _backend("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the job."""
    return _backend("get_world_size").world_size


def get_local_rank() -> int:
    """This process's rank among the ranks on its node (the GPU it takes: ``cuda:local_rank``)."""
    return _backend("get_local_rank").local_rank


def get_local_world_size() -> int:
    """The number of ranks on this process's node (each rank's share of its cores: cores / this)."""
    return _backend("get_local_world_size").local_world_size


def all_gather_object(obj: Any) -> list:
    """Every rank's ``obj`` (JSON-serialisable: no pickle), in rank order (PyTorch's all_gather_object)."""
    backend = _backend("all_gather_object")
    return getattr(backend, "mpi", backend).all_gather_json(obj)


def abort(code: int = 1) -> None:
    """End every rank's process now (``MPI_Abort``): for an error one rank meets while the others may be
    waiting in a collective, so the job ends with ``code`` instead of hanging."""
    _backend("abort").abort(code)


def _tensor(op: str, name: str, t: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise ArgumentError(f"{op}: {name} must be a gpucnn Tensor, got {type(t).__name__}")
    return t


def _changed(t: Tensor) -> None:
    t._vc.value += 1  # an in-place change: a backward that saved the old values must notice


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM, async_op: bool = False) -> Optional[Work]:
    """Reduce ``tensor`` over all ranks, IN PLACE: afterwards every rank holds the sum (``"sum"``), the
    mean (``"avg"``, floating-point tensors), the elementwise ``"max"`` or ``"min"``. With ``async_op``
    a :class:`Work` is returned at once; ``wait()`` on it before reading the tensor."""
    backend = _backend("all_reduce")
    t = _tensor("all_reduce", "tensor", tensor)
    if op not in _OPS:
        raise ArgumentError(f"all_reduce: op must be one of {', '.join(map(repr, _OPS))}, got {op!r}")
    work = backend.all_reduce(t.data, op, async_op)
    _changed(t)
    return work if async_op else None


def broadcast(tensor: Tensor, src: int = 0, async_op: bool = False) -> Optional[Work]:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank, in place (shapes and dtypes must
    agree on all ranks)."""
    backend = _backend("broadcast")
    t = _tensor("broadcast", "tensor", tensor)
    _check_rank_arg("broadcast", "src", src, backend.world_size)
    backend.broadcast(t.data, int(src))
    _changed(t)
    return done_work() if async_op else None


def all_gather(tensor_list: list, tensor: Tensor, async_op: bool = False) -> Optional[Work]:
    """Fill ``tensor_list[r]`` (one tensor per rank, each of ``tensor``'s shape and dtype) with rank r's
    ``tensor``, on every rank."""
    backend = _backend("all_gather")
    t = _tensor("all_gather", "tensor", tensor)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != backend.world_size:
        got = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ArgumentError(f"all_gather: tensor_list must be a list of world size ({backend.world_size}) "
                            f"tensors, got {got}")
    for r, out in enumerate(tensor_list):
        _tensor("all_gather", f"tensor_list[{r}]", out)
        if out.shape != t.shape or out.dtype != t.dtype:
            raise ArgumentError(f"all_gather: tensor_list[{r}] has shape {out.shape} and dtype {out.dtype}, "
                                f"expected {t.shape} and {t.dtype} (the input tensor's)")
    gathered = backend.all_gather(t.data)
    for r, out in enumerate(tensor_list):
        out.data[...] = out.device.asarray(gathered[r]) if isinstance(gathered, np.ndarray) else gathered[r]
        _changed(out)
    return done_work() if async_op else None


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _backend("barrier").barrier()


def _check_rank_arg(op: str, name: str, value: Any, world: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < world:
        raise ArgumentError(f"{op}: {name} must be a rank in [0, {world}), got {value!r}")


def _default_backend() -> Any:
    """The default group's backend, or None outside a process group (for DDP and SyncBatchNorm)."""
    return None if _group is None else _group.backend
