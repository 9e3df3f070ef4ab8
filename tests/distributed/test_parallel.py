"""DistributedDataParallel and SyncBatchNorm in one process (a world of 1 through MPI, or no process group):
bucket assignment against PyTorch's, gradients, the state dict, SyncBatchNorm's op by finite differences,
convert_sync_batchnorm and model specs. The 2-rank checks are in test_ddp_multirank.py."""
import numpy as np
import pytest
import torch
import torch.distributed as torch_dist

import gpucnn
import gpucnn.distributed as dist
from gpucnn import nn
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.nn.parallel import DistributedDataParallel as DDP
from gpucnn.nn.parallel.distributed import assign_buckets
from gpucnn.nn.sync_batchnorm import SyncBatchNormFunction
import gpucnn.nn.functional as F

needs_mpi4py = pytest.mark.skipif(not dist.is_available(), reason="needs mpi4py: pip install 'gpucnn[mpi]'")


@pytest.fixture
def world_of_one():
    dist.init_process_group("mpi")
    yield dist._default_backend()
    dist.destroy_process_group()


def _net(seed=0):
    gpucnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("seed", range(5))
def test_bucket_assignment_is_pytorchs(seed):
    rng = np.random.default_rng(seed)
    kinds = [np.float32, np.float64]
    params = [(f"p{i}", gpucnn.zeros(int(rng.integers(1, 200_000)), dtype=kinds[int(rng.integers(0, 2))]))
              for i in range(int(rng.integers(1, 12)))]
    first, cap = 1024 * 1024, int(rng.choice([1, 2, 3])) * 1024 * 1024
    ours = assign_buckets(params, cap, first)
    backward_order = list(reversed(params))
    theirs, _ = torch_dist._compute_bucket_assignment_by_size(
        [torch.zeros(p.numel(), dtype=torch.float32 if p.dtype == np.float32 else torch.float64)
         for _, p in backward_order], [first, cap], [False] * len(params))
    assert [[n for n, _ in b] for b in ours] == [[backward_order[i][0] for i in b] for b in theirs]


def test_ddp_needs_a_process_group():
    with pytest.raises(ArgumentError, match="init_process_group"):
        DDP(_net())


@needs_mpi4py
def test_ddp_world_of_one_is_the_plain_model(world_of_one):
    x = gpucnn.tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32))
    y = gpucnn.tensor(np.array([0, 1, 2, 1]))
    ref, model = _net(), DDP(_net(1))  # (a world of one broadcasts its own weights)
    model.load_state_dict(ref.state_dict())
    F.cross_entropy(ref(x), y).backward()
    F.cross_entropy(model(x), y).backward()
    for (n, p), (_, q) in zip(ref.named_parameters(), model.module.named_parameters()):
        np.testing.assert_array_equal(q.grad.numpy(), p.grad.numpy(), err_msg=n)
    assert [n for n, _ in model.named_parameters()][0] == "module.0.weight"  # (names keep PyTorch's prefix)
    assert list(model.state_dict()) == list(ref.state_dict())                 # (the state dict does not)
    assert model.bucket_names == [[n for n, _ in reversed(list(ref.named_parameters()))]]  # all in 1 MiB
    with model.no_sync():
        F.cross_entropy(model(x), y).backward()
    np.testing.assert_array_equal(model.module[0].weight.grad.numpy(), 2 * ref[0].weight.grad.numpy())
    with pytest.raises(ArgumentError, match="bucket_cap_mb must be a number > 0"):
        DDP(_net(), bucket_cap_mb=0)
    with pytest.raises(ArgumentError, match="must be a gpucnn.nn.Module"):
        DDP(lambda x: x)


@needs_mpi4py
@pytest.mark.parametrize("shape", [(6, 3, 4, 5), (7, 4), (5, 2, 6)])
def test_sync_batch_norm_op_gradcheck(world_of_one, shape):
    rng = np.random.default_rng(1)
    x = gpucnn.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal(shape[1]), requires_grad=True)
    b = gpucnn.tensor(rng.standard_normal(shape[1]), requires_grad=True)
    fn = lambda x, w, b: SyncBatchNormFunction(world_of_one, 1e-5, 0.1, None, None)(x, w, b)  # noqa: E731
    assert gpucnn.gradcheck(fn, [x, w, b])
    assert gpucnn.gradcheck(lambda x: SyncBatchNormFunction(world_of_one, 1e-5, 0.1, None, None)(x, None, None), [x])
    # and its forward is batch_norm's
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    y = SyncBatchNormFunction(world_of_one, 1e-5, 0.1, rm, rv)(x, w, b)
    rm2, rv2 = gpucnn.zeros(shape[1], dtype=gpucnn.float64), gpucnn.ones(shape[1], dtype=gpucnn.float64)
    expected = F.batch_norm(x, rm2, rv2, w, b, training=True, momentum=0.1)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, rm2.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, rv2.numpy(), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_sync_batch_norm_without_a_group_is_batch_norm(training):
    x = gpucnn.tensor(np.random.default_rng(2).standard_normal((4, 3, 5, 5)).astype(np.float32))
    ref, sync = nn.BatchNorm2d(3), nn.SyncBatchNorm(3)
    ref.train(training), sync.train(training)
    np.testing.assert_array_equal(sync(x).numpy(), ref(x).numpy())
    np.testing.assert_array_equal(sync.running_var.numpy(), ref.running_var.numpy())
    with pytest.raises(ShapeError, match="input has 2 channels, expected 3"):
        sync(gpucnn.zeros((2, 2, 3, 3)))


def test_convert_sync_batchnorm_keeps_the_tensors_and_modes():
    model = _net()
    model[1].eval()
    weight, mean = model[1].weight, model[1].running_mean
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is nn.SyncBatchNorm
    assert model[1].weight is weight and model[1].running_mean is mean and not model[1].training
    assert list(model.state_dict()) == list(_net().state_dict())
    bn = nn.BatchNorm1d(5, eps=1e-3, momentum=None, affine=False)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(bn)
    assert isinstance(sync, nn.SyncBatchNorm) and sync.config() == bn.config()
    with pytest.raises(ArgumentError, match="process_group=None"):
        nn.SyncBatchNorm.convert_sync_batchnorm(bn, process_group="group")


def test_sync_batch_norm_in_model_specs():
    layer = nn.SyncBatchNorm(7, momentum=0.2)
    config = nn.layer_to_config(layer)
    assert config["type"] == "SyncBatchNorm"
    rebuilt = nn.layer_from_config(config)
    assert type(rebuilt) is nn.SyncBatchNorm and rebuilt.config() == layer.config()
