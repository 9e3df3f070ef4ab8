"""Accuracy of `gpucnn train --amp fp16|bf16` against float32 over many seeds, and PyTorch's on the same
batches (benchmarks/README.md, "Mixed precision").

    python benchmarks/amp_accuracy.py ours  --seeds 0-31 [--schedule cosine] [--out DIR]
    python benchmarks/amp_accuracy.py torch --seeds 0-23                       [--out DIR]
    python benchmarks/amp_accuracy.py table [--out DIR]

``ours`` runs the CLI's default training (keras-mnist on the digits) per seed in float32, bf16 and fp16, one
thread each (run two at once on two cores). ``torch`` rebuilds each seed's run (gpucnn.training.build_run:
the same initial weights and the same batches, epoch by epoch) and trains PyTorch copies under its CPU
autocast (GradScaler for float16), with SGD at the same lr and momentum. ``table`` prints each seed and
the mean, sd and standard error of the 16-bit - float32 gaps.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

KINDS = ("f32", "bf16", "fp16")


def seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def ours(args: argparse.Namespace) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPUCNN_NUMPY_THREADS": "1"}
    for s in seeds(args.seeds):
        for kind in KINDS:
            out = args.out / args.schedule / f"s{s}_{kind}"
            if (out / "metrics.json").exists() and "test" in json.loads((out / "metrics.json").read_text()):
                continue
            amp = [] if kind == "f32" else ["--amp", kind]
            subprocess.run(["gpucnn", "train", "--seed", str(s), "--schedule", args.schedule, *amp, "--out", str(out)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            print(s, kind, json.loads((out / "metrics.json").read_text())["test"]["accuracy"], flush=True)


def torch_runs(args: argparse.Namespace) -> None:
    import torch

    from gpucnn.bench import torch_module
    from gpucnn.training.run import RunConfig, build_run

    torch.set_num_threads(1)
    host = lambda a: np.asarray(a.numpy() if hasattr(a, "numpy") else a)  # noqa: E731
    arrays = lambda loader: [(host(x), host(y).astype(np.int64)) for x, y in loader]  # noqa: E731
    path = args.out / f"torch_{args.seeds}.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for s in seeds(args.seeds):
        cfg = RunConfig(seed=s)
        parts = build_run(cfg)
        init = torch_module(parts.model, torch).state_dict()
        epochs = [arrays(parts.train_loader) for _ in range(cfg.epochs)]  # (each pass: the next epoch's order)
        test = arrays(parts.test_loader)
        group = parts.optimizer.param_groups[0]  # (the run's own lr and momentum)
        row = {}
        for kind, low in (("f32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            tm = torch_module(parts.model, torch)
            tm.load_state_dict(init)
            opt = torch.optim.SGD(tm.parameters(), lr=group["lr"], momentum=group["momentum"])
            scaler = torch.amp.GradScaler("cpu", enabled=low == torch.float16)
            region = lambda: torch.autocast("cpu", dtype=low or torch.bfloat16, enabled=low is not None)  # noqa: E731
            for batches in epochs:
                tm.train()
                for x, y in batches:
                    with region():
                        loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
                    opt.zero_grad()
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
            tm.eval()
            with torch.no_grad(), region():
                hits = sum(int((tm(torch.from_numpy(x)).argmax(1).numpy() == y).sum()) for x, y in test)
            row[kind] = hits / sum(len(y) for _, y in test)
        done[str(s)] = row
        print(s, row, flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(done))


def table(args: argparse.Namespace) -> None:
    results: dict[str, dict[int, dict[str, float]]] = {}
    for metrics in args.out.glob("*/s*_*/metrics.json"):
        m = json.loads(metrics.read_text())
        if "test" in m:
            s, kind = metrics.parent.name[1:].split("_")
            results.setdefault(f"gpucnn, schedule {metrics.parent.parent.name}", {}).setdefault(int(s), {})[kind] = \
                100 * m["test"]["accuracy"]
    for f in args.out.glob("torch_*.json"):
        for s, row in json.loads(f.read_text()).items():
            results.setdefault("PyTorch, schedule none", {})[int(s)] = {k: 100 * v for k, v in row.items()}
    for name, rows in sorted(results.items()):
        print(f"## {name}")
        for s in sorted(rows):
            print(f"{s:4d} " + "  ".join(f"{k} {rows[s].get(k, float('nan')):5.1f}" for k in KINDS))
        for kind in KINDS[1:]:
            gaps = np.array([r[kind] - r["f32"] for r in rows.values() if kind in r and "f32" in r])
            if len(gaps) > 1:
                print(f"{kind} - f32 over {len(gaps)} seeds: mean {gaps.mean():+.2f} +- {gaps.std(ddof=1) / len(gaps) ** .5:.2f}, "
                      f"sd {gaps.std(ddof=1):.2f}, beyond 1 point: {(abs(gaps) > 1).sum()}, lowest {gaps.min():+.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("ours", "torch", "table"))
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--schedule", default="none")
    p.add_argument("--out", type=Path, default=Path("runs/amp_accuracy"))
    args = p.parse_args()
    {"ours": ours, "torch": torch_runs, "table": table}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
