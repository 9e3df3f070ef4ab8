"""Run under `mpiexec -n 2`: DistributedDataParallel against one process on the whole batch."""
import numpy as np

import gpucnn
import gpucnn.distributed as dist
from gpucnn import nn
from gpucnn.nn.parallel import DistributedDataParallel as DDP
import gpucnn.nn.functional as F

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
assert world == 2


def net(seed, hidden=16):
    gpucnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


rng = np.random.default_rng(0)
X = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
Y = rng.integers(0, 3, 8)
half = slice(rank * 4, (rank + 1) * 4)


def grads(model):
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def close(a, b, what, rtol=1e-5, atol=1e-6):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=f"{what}: {k} on rank {rank}")


# -- rank 0's weights everywhere; averaged gradients equal the whole batch's ---------------------------
ref = net(0)
ddp = DDP(net(0 if rank == 0 else 100 + rank))  # rank 1 starts from other weights: the broadcast fixes them
for (n, p), (_, q) in zip(ref.named_parameters(), ddp.module.named_parameters()):
    np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
F.cross_entropy(ref(gpucnn.tensor(X)), gpucnn.tensor(Y)).backward()
F.cross_entropy(ddp(gpucnn.tensor(X[half])), gpucnn.tensor(Y[half])).backward()
close(grads(ddp.module), grads(ref), "gradients")

# -- a few SGD steps stay equal to one process at twice the batch --------------------------------------
opt_ref = gpucnn.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
opt = gpucnn.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
for step in range(3):
    for model, o, sl in ((ref, opt_ref, slice(None)), (ddp, opt, half)):
        o.zero_grad()
        F.cross_entropy(model(gpucnn.tensor(X[sl])), gpucnn.tensor(Y[sl])).backward()
        o.step()
for (n, p), (_, q) in zip(ref.named_parameters(), ddp.module.named_parameters()):
    np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-6, err_msg=n)

# -- buckets: reverse registration order, each reduced while backward goes on --------------------------
model = DDP(net(0, hidden=64), bucket_cap_mb=1e-6)  # 1 byte: a bucket per parameter
names = [n for n, _ in model.module.named_parameters()]
assert model.bucket_names == [[n] for n in reversed(names)], model.bucket_names
log = []
backend = dist._default_backend()
real = backend.all_reduce


def recording(a, op, async_op=False):
    log.append(("reduce", a.size))
    return real(a, op, async_op)


backend.all_reduce = recording
first = model.module[0].weight
first.register_post_accumulate_grad_hook(lambda p: log.append(("ready", "0.weight")))
F.cross_entropy(model(gpucnn.tensor(X[half])), gpucnn.tensor(Y[half])).backward()
sizes = [p.numel() for _, p in model.module.named_parameters()]
assert [s for kind, s in log if kind == "reduce"] == sizes[::-1], log
assert log.index(("ready", "0.weight")) > 1, log  # the last layers' buckets were reduced before it was ready

# -- no_sync: local accumulation, reduced by the next synchronised backward ----------------------------
log.clear()
model = DDP(net(0))
ref = net(0)
quarters = [slice(rank * 4, rank * 4 + 2), slice(rank * 4 + 2, rank * 4 + 4)]
with model.no_sync():
    F.cross_entropy(model(gpucnn.tensor(X[quarters[0]])), gpucnn.tensor(Y[quarters[0]])).backward()
assert not log, log
local = grads(model.module)
F.cross_entropy(model(gpucnn.tensor(X[quarters[1]])), gpucnn.tensor(Y[quarters[1]])).backward()
assert log, "the synchronised backward reduced nothing"
for sl in (slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)):  # the same four micro-batches on one process
    F.cross_entropy(ref(gpucnn.tensor(X[sl])), gpucnn.tensor(Y[sl])).backward()
expected = {k: v / 2 for k, v in grads(ref).items()}  # (the average of the ranks' sums of two)
close(grads(model.module), expected, "no_sync")
backend.all_reduce = real

# -- unused parameters ------------------------------------------------------------------------------------
class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return self.used(self.body(x))


gpucnn.manual_seed(0)
m = DDP(TwoHeads(), find_unused_parameters=True)
for _ in range(2):
    m(gpucnn.tensor(X[half, 0, 0, :4])).sum().backward()
assert float(np.abs(m.module.unused.weight.grad.numpy()).max()) == 0.0
m = DDP(TwoHeads())
m(gpucnn.tensor(X[half, 0, 0, :4])).sum().backward()
try:
    m(gpucnn.tensor(X[half, 0, 0, :4]))
except gpucnn.AutogradError as e:
    assert "find_unused_parameters=True" in str(e) and "'unused.weight'" in str(e), e
else:
    raise AssertionError("an unused parameter went unnoticed")

# -- the state dict is the module's --------------------------------------------------------------------
sd = ddp.state_dict()
assert list(sd) == list(ddp.module.state_dict()) and not any(k.startswith("module.") for k in sd)
plain = net(5)
plain.load_state_dict(sd)
ddp.load_state_dict({"module." + k: v for k, v in plain.state_dict().items()})
assert ddp.to_config() == ddp.module.to_config()

# -- a rank whose model differs fails at construction, on every rank, naming the difference -----------
try:
    DDP(net(0, hidden=16 if rank == 0 else 12))
except gpucnn.ShapeError as e:
    assert "rank 1's model differs from rank 0's at parameter '4.weight'" in str(e), e
    assert "(12, 64)" in str(e) and "(16, 64)" in str(e), e
else:
    raise AssertionError("mismatched models went unnoticed")

dist.barrier()
dist.destroy_process_group()
print(f"rank {rank}: ddp ok")
