"""gpucnn.distributed: the process group and collectives in one process (a world of 1 through MPI), the
errors, and on 2 ranks every op and dtype against NumPy (scripts/collectives_check.py)."""
import sys

import numpy as np
import pytest

import gpucnn
import gpucnn.distributed as dist
from gpucnn.errors import ArgumentError, DeviceError, DtypeError

from mpirun import SCRIPTS, mpirun, needs_mpiexec

needs_mpi4py = pytest.mark.skipif(not dist.is_available(), reason="needs mpi4py: pip install 'gpucnn[mpi]'")


@pytest.fixture
def world_of_one():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_importing_gpucnn_imports_no_mpi():
    import subprocess
    code = "import sys, gpucnn, gpucnn.distributed, gpucnn.nn.parallel; print('mpi4py' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_uninitialized_calls_say_what_to_do():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.get_local_rank, dist.barrier, dist.destroy_process_group):
        with pytest.raises(ArgumentError, match="init_process_group"):
            call()
    with pytest.raises(ArgumentError, match="init_process_group"):
        dist.all_reduce(gpucnn.ones(2))


def test_without_mpi4py_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # (makes `from mpi4py import MPI` fail)
    with pytest.raises(dist.MPINotInstalledError, match=r"pip install 'gpucnn\[mpi\]'") as e:
        dist.init_process_group()
    assert "\n" not in str(e.value) and isinstance(e.value, ImportError) and not dist.is_initialized()


def test_bad_backend():
    with pytest.raises(ArgumentError, match="'auto', 'mpi' or 'nccl', got 'gloo'"):
        dist.init_process_group("gloo")


@needs_mpi4py
@pytest.mark.skipif(gpucnn.cuda_available(), reason="checks the refusal on a machine without a GPU")
def test_nccl_without_a_gpu_is_refused():
    with pytest.raises(DeviceError, match="rank 0 of 1 has no CUDA device"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


@needs_mpi4py
def test_world_of_one_leaves_the_excepthook_alone():
    before = sys.excepthook
    dist.init_process_group("auto")
    try:
        assert sys.excepthook is before  # (a lone process ends on an uncaught exception anyway)
    finally:
        dist.destroy_process_group()


@needs_mpi4py
def test_world_of_one(world_of_one):
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    with pytest.raises(ArgumentError, match="already initialized"):
        dist.init_process_group()
    t = gpucnn.tensor(np.arange(6.0).reshape(2, 3))
    for op in ("sum", "avg", "max", "min"):
        dist.all_reduce(t, op)
        np.testing.assert_array_equal(t.numpy(), np.arange(6.0).reshape(2, 3))
    work = dist.all_reduce(t, async_op=True)
    assert work.wait() and work.is_completed()
    dist.broadcast(t, src=0)
    out = [gpucnn.zeros((2, 3), dtype=gpucnn.float64)]
    dist.all_gather(out, t)
    np.testing.assert_array_equal(out[0].numpy(), t.numpy())
    dist.barrier()
    with pytest.raises(ArgumentError, match="op must be one of"):
        dist.all_reduce(t, "prod")
    with pytest.raises(DtypeError, match="'avg' needs a floating-point tensor"):
        dist.all_reduce(gpucnn.tensor([1, 2]), "avg")
    with pytest.raises(ArgumentError, match=r"src must be a rank in \[0, 1\), got 1"):
        dist.broadcast(t, src=1)
    with pytest.raises(ArgumentError, match="must be a gpucnn Tensor"):
        dist.all_reduce(np.ones(2))
    with pytest.raises(ArgumentError, match=r"tensor_list\[0\] has shape \(3,\)"):
        dist.all_gather([gpucnn.zeros(3)], t)


@needs_mpiexec
def test_every_op_and_dtype_on_two_ranks():
    rc, out = mpirun(SCRIPTS / "collectives_check.py")
    assert rc == 0, out
    assert "rank 0: collectives ok" in out and "rank 1: collectives ok" in out, out
