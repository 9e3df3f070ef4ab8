"""The MPI backend (mpi4py): process rendezvous, CPU collectives, and the channel the NCCL backend uses to
agree on its unique id. Collectives work on host (NumPy) buffers; device arrays are copied to the host and
back. Only this module and _nccl.py import mpi4py, and only when a process group is created."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional

import numpy as np

from ..backend import array_device
from ..dtypes import is_floating_point
from ..errors import DtypeError, GpucnnError


class MPINotInstalledError(GpucnnError, ImportError):
    """gpucnn.distributed needs mpi4py (and an MPI library, such as the ``mpich`` wheel)."""


def import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise MPINotInstalledError(f"gpucnn.distributed needs mpi4py and an MPI library: pip install 'gpucnn[mpi]' "
                                   f"({e})") from None
    return MPI


class Work:
    """A collective in flight (what ``async_op=True`` returns, as ``torch.distributed``'s Work):
    ``wait()`` blocks until it is done and its result is in the tensor; ``is_completed()`` polls."""

    def __init__(self, test: Callable[[], bool], wait: Callable[[], None], finish: Callable[[], None]) -> None:
        self._test, self._wait, self._finish, self._done = test, wait, finish, False

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self.wait()
        return self._done

    def wait(self) -> bool:
        if not self._done:
            self._wait()
            self._finish()
            self._done = True
        return True


def done_work() -> Work:
    return Work(lambda: True, lambda: None, lambda: None)


def _is_half(dtype: np.dtype) -> bool:
    return is_floating_point(dtype) and dtype.itemsize == 2


def _host(a: Any) -> np.ndarray:
    """A C-contiguous NumPy array with ``a``'s values (``a`` itself where it already is one)."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a.get())  # a CuPy array: a host copy


def _write_back(a: Any, host: np.ndarray) -> None:
    if host is a:
        return
    a[...] = host if isinstance(a, np.ndarray) else array_device(a).asarray(host)


def _bytes(a: np.ndarray) -> np.ndarray:
    """A C-contiguous array's memory as bytes (a view): moving data needs no MPI type for bfloat16 & co."""
    return a.reshape(-1).view(np.uint8)


class MPIBackend:
    """Collectives over a duplicate of ``MPI.COMM_WORLD`` (so a user's own MPI traffic never mixes in)."""

    name = "mpi"

    def __init__(self) -> None:
        MPI = import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_world_size = node.Get_rank(), node.Get_size()
        node.Free()
        self._ops = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    # -- collectives on arrays ------------------------------------------------------------------------
    def all_reduce(self, a: Any, op: str, async_op: bool = False) -> Work:
        """Reduce ``a`` over all ranks in place (``avg``: the sum divided by the world size; 16-bit floats
        are added in float32 and rounded once)."""
        if a.dtype == np.bool_ and op in ("sum", "avg"):
            raise DtypeError(f"all_reduce: op {op!r} on a bool tensor; use 'max' (any) or 'min' (all)")
        if op == "avg" and not is_floating_point(a.dtype):
            raise DtypeError(f"all_reduce: op 'avg' needs a floating-point tensor, got {a.dtype}")
        host = _host(a)
        buf = host.astype(np.float32) if _is_half(host.dtype) else (host.view(np.uint8) if host.dtype == np.bool_
                                                                     else host)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

        def finish() -> None:
            if op == "avg":
                np.divide(buf, self.world_size, out=buf)
            if buf is not host and buf.base is not host:
                host[...] = buf.astype(host.dtype)
            _write_back(a, host)

        work = Work(request.Test, request.Wait, finish)
        if not async_op:
            work.wait()
        return work

    def broadcast(self, a: Any, src: int) -> None:
        host = _host(a)
        self.comm.Bcast(_bytes(host), root=src)
        _write_back(a, host)

    def all_gather(self, a: Any) -> np.ndarray:
        """(world_size, *a.shape): every rank's ``a``, on the host."""
        host = _host(a)
        out = np.empty((self.world_size,) + host.shape, dtype=host.dtype)
        self.comm.Allgather(_bytes(host), _bytes(out))
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    # -- small host-side agreements (JSON, never pickle) ------------------------------------------------
    def all_gather_json(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (JSON-serialisable), in rank order."""
        data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
        sizes = np.empty(self.world_size, dtype=np.int64)
        self.comm.Allgather(np.array([data.size], dtype=np.int64), sizes)
        padded = np.zeros(int(sizes.max()), dtype=np.uint8)
        padded[:data.size] = data
        out = np.empty((self.world_size, padded.size), dtype=np.uint8)
        self.comm.Allgather(padded, out)
        return [json.loads(bytes(out[r, :sizes[r]]).decode()) for r in range(self.world_size)]

    def close(self) -> None:
        self.comm.Free()

    def abort(self, code: int = 1) -> None:
        self.MPI.COMM_WORLD.Abort(code)


def install_abort_hook(backend: MPIBackend) -> Callable[[], None]:
    """Make an uncaught exception on this rank end the whole job: print the traceback under a line naming
    the rank, then ``MPI_Abort`` (exit code 1 from ``mpiexec``), instead of leaving the other ranks waiting
    forever in their next collective. Returns the function that puts the previous hook back."""
    previous: Optional[Callable[..., Any]] = sys.excepthook

    def hook(etype: type, value: BaseException, tb: Any) -> None:
        try:
            sys.stderr.write(f"gpucnn.distributed: rank {backend.rank} of {backend.world_size} raised an uncaught "
                             f"{etype.__name__}; aborting the job\n")
            (previous or sys.__excepthook__)(etype, value, tb)
            sys.stderr.flush()
        finally:
            backend.abort(1)

    sys.excepthook = hook

    def restore() -> None:
        if sys.excepthook is hook:
            sys.excepthook = previous

    return restore

