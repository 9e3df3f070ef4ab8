"""Run under `mpiexec -n 2` with `raise` or `kill`: rank 1 fails after start-up while rank 0 waits in a
collective that rank 1 never joins; the job must end (non-zero), not hang."""
import os
import signal
import sys

import gpucnn
import gpucnn.distributed as dist

dist.init_process_group("mpi")
t = gpucnn.ones(3)
dist.all_reduce(t)  # both ranks are up
if dist.get_rank() == 1:
    if sys.argv[1] == "raise":
        raise RuntimeError("rank 1 fails on purpose")
    os.kill(os.getpid(), signal.SIGKILL)
dist.barrier()  # rank 0 waits here for a rank that is gone
print("rank 0 passed the barrier: the fault went unnoticed")
