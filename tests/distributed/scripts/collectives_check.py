"""Run under `mpiexec -n 2`: all_reduce / broadcast / all_gather against NumPy, every op and dtype."""
import numpy as np

import gpucnn
import gpucnn.distributed as dist

dist.init_process_group("auto")  # (no GPU here: MPI)
rank, world = dist.get_rank(), dist.get_world_size()
assert dist.get_backend() == "mpi" and dist.get_local_rank() == rank


def values(r, dtype):
    base = np.arange(-3, 9).reshape(3, 4) * (r + 1) + r
    return (base % 2 == 0) if dtype == np.bool_ else base.astype(dtype)


REDUCE = {"sum": lambda a: a.sum(0), "avg": lambda a: a.mean(0), "max": lambda a: a.max(0), "min": lambda a: a.min(0)}
DTYPES = [np.float32, np.float64, gpucnn.float16, gpucnn.bfloat16, np.int8, np.int32, np.int64, np.uint8, np.bool_]
for dtype in DTYPES:
    everyone = np.stack([values(r, dtype).astype(np.float64) for r in range(world)])
    for op, reduce in REDUCE.items():
        t = gpucnn.tensor(values(rank, dtype))
        if (op == "avg" and not gpucnn.dtypes.is_floating_point(t.dtype)) or (dtype == np.bool_ and op == "sum"):
            try:
                dist.all_reduce(t, op)
            except gpucnn.DtypeError:
                continue
            raise AssertionError(f"all_reduce {op} on {dtype} was not refused")
        version = t._version
        work = dist.all_reduce(t, op, async_op=(op == "max"))
        if work is not None:
            work.wait()
            assert work.is_completed()
        assert t.dtype == np.dtype(dtype) and t._version > version
        expected = reduce(everyone).astype(dtype)  # (16-bit: reduced in float32, rounded once)
        np.testing.assert_array_equal(t.numpy(), expected, err_msg=f"{op} {dtype}")
    for src in range(world):
        t = gpucnn.tensor(values(rank, dtype))
        dist.broadcast(t, src=src)
        np.testing.assert_array_equal(t.numpy(), values(src, dtype), err_msg=f"broadcast {dtype} from {src}")
    outs = [gpucnn.tensor(np.zeros((3, 4), dtype=dtype)) for _ in range(world)]
    dist.all_gather(outs, gpucnn.tensor(values(rank, dtype)))
    for r in range(world):
        np.testing.assert_array_equal(outs[r].numpy(), values(r, dtype), err_msg=f"all_gather {dtype}")

t = gpucnn.tensor(np.float32(rank + 1.5))  # 0-d
dist.all_reduce(t, dist.ReduceOp.SUM)
assert t.item() == 1.5 + 2.5
view = gpucnn.tensor(np.arange(12.0).reshape(3, 4)).t()  # not C-contiguous: reduced and written back whole
dist.all_reduce(view)
np.testing.assert_array_equal(view.numpy(), 2 * np.arange(12.0).reshape(3, 4).T)
try:
    dist.all_gather([gpucnn.zeros(2)], gpucnn.zeros(2))
except gpucnn.ArgumentError as e:
    assert "world size (2)" in str(e)
else:
    raise AssertionError("a short tensor_list was not refused")
dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"rank {rank}: collectives ok")
