"""Run a script under `mpiexec -n 2` for the multi-rank tests (skipped, saying why, without mpiexec/mpi4py)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
MPIEXEC = shutil.which("mpiexec")

needs_mpiexec = pytest.mark.skipif(
    MPIEXEC is None or __import__("importlib").util.find_spec("mpi4py") is None,
    reason="multi-rank tests need mpiexec and mpi4py: pip install 'gpucnn[mpi]'")


def mpirun(script, *args, n=2, timeout=120):
    """(returncode, stdout + stderr) of `mpiexec -n n python script args`; one thread per rank (the
    machine's cores are shared)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script), *map(str, args)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return proc.returncode, proc.stdout
