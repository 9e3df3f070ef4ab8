"""Data-parallel scaling on this machine's cores: one process with T threads against T processes with one
thread each (``mpiexec -n T``), the same global batch, training steps of a built-in model on random data;
and the time an all-reduce of the model's gradients takes (the part of a step the processes add).

    python benchmarks/ddp_scaling.py [--models keras-mnist resnet-cifar] [--batch 64] [--steps 8]

Prints a Markdown table (benchmarks/README.md, "Data-parallel scaling"). Each configuration runs in fresh
processes; the step rate is the median of the timed steps after two warm-up steps, the all-reduce time the
median of 20 all-reduces of a float32 buffer of the model's parameter count, through gpucnn.distributed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(model_name: str, batch: int, steps: int) -> None:
    """One rank (or the single process): time `steps` DDP training steps at `batch` per process."""
    import numpy as np

    import gpucnn
    import gpucnn.distributed as dist
    from gpucnn.models import build_model

    world, rank = 1, 0
    if "PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
        dist.init_process_group("mpi")
        world, rank = dist.get_world_size(), dist.get_rank()
    gpucnn.manual_seed(0)
    model = build_model(model_name)
    params = sum(int(np.prod(p.shape)) for p in model.parameters())
    if world > 1:
        model = gpucnn.nn.parallel.DistributedDataParallel(model)
    opt = gpucnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    shape = build_model(model_name).input_shape
    x = gpucnn.tensor(rng.random((batch, *shape), dtype=np.float32))
    y = gpucnn.tensor(rng.integers(0, 10, batch))
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad()
        gpucnn.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if world > 1:
            dist.barrier()
        if i >= 2:
            times.append(time.perf_counter() - start)
    reduce_ms = None
    if world > 1:
        buf = gpucnn.zeros(params)
        samples = []
        for _ in range(22):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(buf)
            samples.append(time.perf_counter() - start)
        reduce_ms = 1e3 * float(np.median(samples[2:]))
    if rank == 0:
        print(json.dumps({"step_s": float(np.median(times)), "params": params, "reduce_ms": reduce_ms}))


def _run(cmd: list[str], threads: int) -> dict:
    env = dict(os.environ, GPUCNN_NUMPY_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["keras-mnist", "resnet-cifar"])
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over the processes)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--procs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else os.cpu_count())
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install -e '.[mpi]'")
    k = args.procs
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    print(f"| model, global batch {args.batch} | 1 process x {k} threads (img/s) | {k} processes x 1 thread (img/s) "
          f"| ratio | all-reduce of the gradients (ms) | share of the {k}-process step |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        one = _run(me + [name, str(args.batch), str(args.steps)], threads=k)
        many = _run([mpiexec, "-n", str(k)] + me + [name, str(args.batch // k), str(args.steps)], threads=1)
        r1, rk = args.batch / one["step_s"], args.batch / many["step_s"]
        share = many["reduce_ms"] / (1e3 * many["step_s"])
        print(f"| {name} ({one['params']:,} params, {4 * one['params'] / 2 ** 20:.1f} MiB of gradients) | {r1:,.0f} "
              f"| {rk:,.0f} | {rk / r1:.2f} | {many['reduce_ms']:.2f} | {100 * share:.1f} % |")


if __name__ == "__main__":
    main()
