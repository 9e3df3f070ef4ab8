"""A rank that raises or is killed ends the whole `mpiexec -n 2` job, non-zero, well within 60 s."""
import subprocess
import time

import pytest

from mpirun import SCRIPTS, mpirun, needs_mpiexec


@needs_mpiexec
@pytest.mark.parametrize("fault", ["raise", "kill"])
def test_a_failing_rank_ends_the_job(fault):
    start = time.monotonic()
    try:
        rc, out = mpirun(SCRIPTS / "fault.py", fault, timeout=60)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the job hung after rank 1's fault ({fault}): {e.output}")
    assert time.monotonic() - start < 60
    assert rc != 0, out
    assert "the fault went unnoticed" not in out
    if fault == "raise":  # the excepthook names the rank, then the traceback follows
        assert "gpucnn.distributed: rank 1 of 2 raised an uncaught RuntimeError; aborting the job" in out, out
        assert "rank 1 fails on purpose" in out, out
