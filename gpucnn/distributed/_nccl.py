"""The NCCL backend (CuPy's ``cupy.cuda.nccl``): collectives on CUDA arrays, on a side stream.

MPI does the rendezvous: rank 0 draws the NCCL unique id and broadcasts it over MPI, every rank then joins
``NcclCommunicator(world, uid, rank)`` on ``cuda:local_rank``. A collective waits (on the GPU) for the work
queued on the current stream, runs on this backend's own stream, and :meth:`Work.wait` makes the current
stream wait for it, so the GPU computes the rest of backward while a bucket of gradients is reduced."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..dtypes import bfloat16, is_floating_point
from ..errors import DeviceError, DtypeError
from ._mpi import MPIBackend, Work


def _nccl_types(nccl: Any) -> dict[np.dtype, int]:
    types = {np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8,
             np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.uint32): nccl.NCCL_UINT32,
             np.dtype(np.int64): nccl.NCCL_INT64, np.dtype(np.uint64): nccl.NCCL_UINT64,
             np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
             np.dtype(np.float64): nccl.NCCL_FLOAT64}
    if hasattr(nccl, "NCCL_BFLOAT16"):  # (CuPy builds against NCCL >= 2.10 have it)
        types[np.dtype(bfloat16)] = nccl.NCCL_BFLOAT16
    return types


class NCCLBackend:
    """NCCL collectives for CUDA arrays; MPI (``self.mpi``) for the rendezvous and host-side agreements."""

    name = "nccl"

    def __init__(self, mpi: MPIBackend) -> None:
        import cupy
        from cupy.cuda import nccl

        self.mpi, self.cupy, self.nccl = mpi, cupy, nccl
        self.rank, self.world_size = mpi.rank, mpi.world_size
        self.local_rank, self.local_world_size = mpi.local_rank, mpi.local_world_size
        cupy.cuda.Device(self.local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        uid = np.zeros(nccl.NCCL_UNIQUE_ID_BYTES if hasattr(nccl, "NCCL_UNIQUE_ID_BYTES") else 128, dtype=np.int64)
        if self.rank == 0:
            drawn = nccl.get_unique_id()
            uid = np.zeros(len(drawn), dtype=np.int64)
            uid[:] = drawn
        mpi.broadcast(uid, 0)
        self.comm = nccl.NcclCommunicator(self.world_size, tuple(int(v) for v in uid), self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._types = _nccl_types(nccl)
        self._ops = {"sum": nccl.NCCL_SUM, "avg": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}

    def _device_array(self, a: Any, op: str) -> Any:
        if not isinstance(a, self.cupy.ndarray):
            raise DeviceError(f"{op}: the nccl backend works on cuda tensors, got a host array of shape "
                              f"{tuple(a.shape)}; move it with .to('cuda'), or init_process_group('mpi')")
        return self.cupy.ascontiguousarray(a)

    def _launch(self, launch: Any) -> Any:
        """Run ``launch(stream_ptr)`` on the side stream after the current stream's queued work; the event
        that marks its end."""
        cuda = self.cupy.cuda
        ready = cuda.Event(disable_timing=True)
        ready.record(cuda.get_current_stream())
        self.stream.wait_event(ready)
        launch(self.stream.ptr)
        done = cuda.Event(disable_timing=True)
        done.record(self.stream)
        return done

    def all_reduce(self, a: Any, op: str, async_op: bool = False) -> Work:
        if a.dtype == np.bool_ and op in ("sum", "avg"):
            raise DtypeError(f"all_reduce: op {op!r} on a bool tensor; use 'max' (any) or 'min' (all)")
        if op == "avg" and not is_floating_point(a.dtype):
            raise DtypeError(f"all_reduce: op 'avg' needs a floating-point tensor, got {a.dtype}")
        buf = self._device_array(a, "all_reduce")
        work_buf = buf.view(np.uint8) if buf.dtype == np.bool_ else buf
        if work_buf.dtype not in self._types:  # (bfloat16 on an older NCCL: through float32)
            work_buf = work_buf.astype(np.float32)
        if work_buf.dtype not in self._types:
            raise DtypeError(f"all_reduce: the nccl backend cannot reduce {a.dtype} tensors")
        done = self._launch(lambda s: self.comm.allReduce(work_buf.data.ptr, work_buf.data.ptr, work_buf.size,
                                                          self._types[work_buf.dtype], self._ops[op], s))

        def wait() -> None:
            self.cupy.cuda.get_current_stream().wait_event(done)

        def finish() -> None:
            if op == "avg":
                work_buf[...] /= self.world_size
            if work_buf is not buf and work_buf.base is not buf:
                buf[...] = work_buf.astype(buf.dtype)
            if buf is not a:
                a[...] = buf

        work = Work(done.query, wait, finish)
        if not async_op:
            work.wait()
        return work

    def broadcast(self, a: Any, src: int) -> None:
        buf = self._device_array(a, "broadcast")
        raw = buf.reshape(-1).view(np.uint8)
        done = self._launch(lambda s: self.comm.bcast(raw.data.ptr, raw.size, self.nccl.NCCL_UINT8, src, s))
        self.cupy.cuda.get_current_stream().wait_event(done)
        if buf is not a:
            a[...] = buf

    def all_gather(self, a: Any) -> Any:
        buf = self._device_array(a, "all_gather")
        out = self.cupy.empty((self.world_size,) + buf.shape, dtype=buf.dtype)
        raw_in, raw_out = buf.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8)
        done = self._launch(lambda s: self.comm.allGather(raw_in.data.ptr, raw_out.data.ptr, raw_in.size,
                                                          self.nccl.NCCL_UINT8, s))
        self.cupy.cuda.get_current_stream().wait_event(done)
        return out

    def barrier(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()
        self.stream.synchronize()
        self.mpi.barrier()

    def all_gather_json(self, obj: Any) -> list[Any]:
        return self.mpi.all_gather_json(obj)

    def close(self) -> None:
        self.stream.synchronize()
        self.comm.destroy()
        self.mpi.close()

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)

