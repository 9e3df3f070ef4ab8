"""DistributedDataParallel on 2 ranks (tests/distributed/scripts/ddp_check.py): rank 0's weights broadcast,
gradients and 3 SGD steps equal to one process on the whole batch, buckets reduced in reverse registration
order while backward goes on, no_sync, unused parameters, the state dict, mismatched models."""
from mpirun import SCRIPTS, mpirun, needs_mpiexec


@needs_mpiexec
def test_ddp_on_two_ranks():
    rc, out = mpirun(SCRIPTS / "ddp_check.py")
    assert rc == 0, out
    assert "rank 0: ddp ok" in out and "rank 1: ddp ok" in out, out


@needs_mpiexec
def test_sync_batch_norm_on_two_ranks_equals_one_batch_norm_over_the_whole_batch():
    # (scripts/sync_bn_check.py: forward, running statistics, input and parameter gradients in float64,
    # float32 and bfloat16, for 2-D, 3-D and 4-D inputs; then a converted model trained under DDP)
    rc, out = mpirun(SCRIPTS / "sync_bn_check.py", timeout=240)
    assert rc == 0, out
    assert "rank 0: sync batch norm ok" in out and "rank 1: sync batch norm ok" in out, out
