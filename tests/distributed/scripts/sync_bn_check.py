"""Run under `mpiexec -n 2`: SyncBatchNorm on 2 ranks equals one BatchNorm over the concatenated batch."""
import numpy as np

import gpucnn
import gpucnn.distributed as dist
from gpucnn import nn
from gpucnn.nn.parallel import DistributedDataParallel as DDP
import gpucnn.nn.functional as F

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
rng = np.random.default_rng(1)


def check_layer(shape, dtype, rtol, atol):
    """Forward, running statistics, input and parameter gradients of the layer alone: each rank's loss
    sum(y * c) over its part, so the ranks' losses add up to the whole batch's."""
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(np.float64)
    c = rng.standard_normal(shape)
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    part = slice(rank * shape[0] // 2, (rank + 1) * shape[0] // 2)

    def layer(cls):
        m = cls(shape[1], momentum=0.3).to(dtype=dtype)
        m.weight.data[...] = w.astype(dtype)
        m.bias.data[...] = b.astype(dtype)
        return m

    ref, sync = layer(nn.BatchNorm1d if len(shape) < 4 else nn.BatchNorm2d), layer(nn.SyncBatchNorm)
    xr = gpucnn.tensor(x.astype(dtype), requires_grad=True)
    xs = gpucnn.tensor(x[part].astype(dtype), requires_grad=True)
    yr, ys = ref(xr), sync(xs)
    (yr * gpucnn.tensor(c.astype(dtype))).sum().backward()
    (ys * gpucnn.tensor(c[part].astype(dtype))).sum().backward()
    what = f"{shape} {dtype} on rank {rank}"
    np.testing.assert_allclose(ys.numpy().astype(float), yr.numpy()[part].astype(float), rtol=rtol, atol=atol,
                               err_msg=f"y {what}")
    np.testing.assert_allclose(xs.grad.numpy().astype(float), xr.grad.numpy()[part].astype(float), rtol=rtol,
                               atol=atol, err_msg=f"dx {what}")
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(sync, name).numpy(), getattr(ref, name).numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"{name} {what}")
    # the parameter gradients are each rank's own part: their sum over the ranks is the whole batch's
    for name in ("weight", "bias"):
        g = getattr(sync, name).grad
        dist.all_reduce(g)
        np.testing.assert_allclose(g.numpy().astype(float), getattr(ref, name).grad.numpy().astype(float),
                                   rtol=rtol, atol=atol, err_msg=f"d{name} {what}")
    assert sync.num_batches_tracked.item() == 1


for shape in ((8, 3, 5, 4), (6, 4), (4, 2, 7)):
    check_layer(shape, np.float64, 1e-10, 1e-10)
    check_layer(shape, np.float32, 1e-4, 1e-4)
check_layer((8, 3, 5, 4), gpucnn.bfloat16, 3e-2, 6e-2)  # (bfloat16 input: float32 statistics, 8-bit mantissa)

# -- a converted model under DDP trains like BatchNorm on one process at twice the batch -------------------
def net():
    gpucnn.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


X = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
Y = rng.integers(0, 3, 8)
half = slice(rank * 4, (rank + 1) * 4)
ref = net()
model = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(net()))
assert isinstance(model.module[1], nn.SyncBatchNorm)
opts = [gpucnn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (ref, model)]
for step in range(3):
    for m, o, sl in ((ref, opts[0], slice(None)), (model, opts[1], half)):
        o.zero_grad()
        F.cross_entropy(m(gpucnn.tensor(X[sl])), gpucnn.tensor(Y[sl])).backward()
        o.step()
for (n, p), (_, q) in zip(ref.state_dict().items(), model.state_dict().items()):
    np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-6, err_msg=n)

dist.destroy_process_group()
print(f"rank {rank}: sync batch norm ok")
