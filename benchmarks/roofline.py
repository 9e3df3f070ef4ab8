"""Roofline estimates of a training step's layers on an H100: FLOPs, bytes, the bound, per precision.

    python benchmarks/roofline.py              # the tables of benchmarks/README.md ("Roofline")
    python benchmarks/roofline.py --json FILE  # the same numbers as JSON

The model of each layer (per training step: forward, backward-data, backward-filter):
- conv / linear are GEMMs: 2*M*N*K FLOPs per pass (the first layer has no backward-data); each pass reads
  its two operands and writes its result once (the least traffic any implementation can have: an
  implicit GEMM that never materialises im2col, with every tile reused from on-chip memory).
- batch norm, ReLU, pooling, adds are elementwise or reductions: no FLOPs that matter, forward reads the
  input and writes the output, backward reads the output gradient (and input or mask) and writes the
  input gradient.
A pass takes at least max(FLOPs / peak, bytes / bandwidth); the layer is compute- or memory-bound by
which term wins. Peaks are dense tensor-core (TF32, FP16/BF16) or SIMT (FP32) figures of the H100 SXM;
the bandwidth is the ~3.0 TB/s a device-to-device copy measured on the lent H100 (spec: 3.35).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np

import gpucnn
from gpucnn import nn

#: H100 SXM: FLOP/s (dense) and bytes/s
PEAK = {"fp32": 67e12, "tf32": 495e12, "fp16": 990e12}
BANDWIDTH = 3.0e12
#: bytes of an element per precision (TF32 operands are stored as float32)
ITEM = {"fp32": 4, "tf32": 4, "fp16": 2}
#: the fraction of the dense tensor-core peak an mma.sync + cp.async kernel (no wgmma, no TMA) reaches on
#: Hopper: published CUTLASS-2.x-style kernels reach about half of cuBLAS's FP16 rate there (NOTES.md)
MMA_SYNC_FRACTION = 0.5


@dataclass
class Layer:
    name: str
    kind: str          # "gemm" or "memory"
    flops: float       # per training step
    elems: float       # elements moved per training step (times ITEM[precision] = bytes)


def resnet18_cifar() -> nn.Module:
    """ResNet-18 for 3x32x32 (the CIFAR variant: a 3x3 stem, no max pool)."""
    blocks, cin = [], 64
    for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        blocks.append(nn.BasicBlock(cin, cout, stride))
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), *blocks,
                         nn.GlobalAvgPool2d(), nn.Linear(512, 10))


def conv_64_64() -> nn.Module:
    """The issue's target layer: a 3x3 64->64 convolution (at 32x32)."""
    return nn.Sequential(nn.Conv2d(64, 64, 3, padding=1))


MODELS = {  # name: (model, input shape (None: the model's), batch, does the first layer need dgrad?)
    "keras-mnist": (lambda: gpucnn.models.build_model("keras-mnist"), (1, 28, 28), 256, False),
    "strided-42": (lambda: gpucnn.models.build_model("strided-42"), None, 256, False),
    "resnet-cifar": (lambda: gpucnn.models.build_model("resnet-cifar"), (3, 32, 32), 128, False),
    "resnet18-cifar": (resnet18_cifar, (3, 32, 32), 128, False),
    "conv3x3 64->64 32x32": (conv_64_64, (64, 32, 32), 256, True),  # the target: inside a net
}


def layers_of(model: nn.Module, input_shape: tuple, batch: int, first_dgrad: bool = False) -> list[Layer]:
    """The leaf layers' work for one training step at ``batch``, from one forward at batch 1."""
    seen: list[Layer] = []
    first = [not first_dgrad]

    def hook(module, inputs, output):
        x = inputs[0]
        n_in, n_out = float(np.prod(x.shape[1:])) * batch, float(np.prod(output.shape[1:])) * batch
        kind = type(module).__name__
        if kind in ("Conv2d", "Conv1d", "Linear"):
            w = module.weight
            k = float(np.prod(w.shape[1:]))           # K of the forward GEMM: C_in * kH * kW
            macs = n_out * k                           # M*N*K = C_out * (batch*OH*OW) * K
            passes = 2 if first[0] else 3              # the first layer needs no input gradient
            first[0] = False
            w_elems = float(np.prod(w.shape))
            # forward: x, w -> y; backward-filter: x, gy -> gw; backward-data: gy, w -> gx
            elems = (n_in + w_elems + n_out) + (n_in + n_out + w_elems) + \
                ((n_out + w_elems + n_in) if passes == 3 else 0)
            seen.append(Layer(f"{kind} {tuple(w.shape)}", "gemm", 2 * macs * passes, elems))
        elif kind not in ("Flatten", "Identity") and not list(module.children()):  # (views move nothing)
            # forward reads x, writes y; backward reads gy and x (or y, a mask), writes gx
            seen.append(Layer(kind, "memory", 0.0, n_in + n_out + n_out + n_in + n_in))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with gpucnn.no_grad():
        model.eval()(gpucnn.zeros(1, *input_shape))
    for h in handles:
        h.remove()
    return seen


def bound(layer: Layer, precision: str) -> tuple[float, str]:
    """Seconds per training step at the roofline, and what binds."""
    t_mem = layer.elems * ITEM[precision] / BANDWIDTH
    t_fl = layer.flops / PEAK[precision]
    return (t_fl, "compute") if t_fl >= t_mem else (t_mem, "memory")


def report(name: str) -> dict:
    build, shape, batch, first_dgrad = MODELS[name]
    model = build()
    shape = shape or tuple(model.input_shape)
    rows = []
    for layer in layers_of(model, shape, batch, first_dgrad):
        row = asdict(layer)
        for p in PEAK:
            row[p] = dict(zip(("seconds", "bound"), bound(layer, p)))
        rows.append(row)
    totals = {p: sum(r[p]["seconds"] for r in rows) for p in PEAK}
    gemm = {p: sum(r[p]["seconds"] for r in rows if r["kind"] == "gemm") for p in PEAK}
    return {"model": name, "input_shape": list(shape), "batch": batch, "layers": rows,
            "total_seconds": totals, "gemm_seconds": gemm,
            "gemm_flops": sum(r["flops"] for r in rows if r["kind"] == "gemm")}


def markdown(rep: dict) -> str:
    lines = [f"**{rep['model']}**, batch {rep['batch']}, input {tuple(rep['input_shape'])}: "
             f"{rep['gemm_flops'] / 1e9:,.1f} GFLOP per training step in its GEMMs",
             "",
             "| layer | GFLOP | MB (fp32) | FLOP/byte (fp32) | µs fp32 SIMT | µs TF32 | µs FP16/BF16 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rep["layers"]:
        mb = r["elems"] * 4 / 1e6
        ai = r["flops"] / (r["elems"] * 4) if r["elems"] else 0.0
        cells = [f"{r[p]['seconds'] * 1e6:,.1f} {'C' if r[p]['bound'] == 'compute' else 'M'}" for p in PEAK]
        lines.append(f"| {r['name']} | {r['flops'] / 1e9:,.2f} | {mb:,.1f} | {ai:,.1f} | " + " | ".join(cells) + " |")
    t = rep["total_seconds"]
    lines.append(f"| **step** | | | | {t['fp32'] * 1e6:,.0f} | {t['tf32'] * 1e6:,.0f} | {t['fp16'] * 1e6:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    reports = [report(name) for name in MODELS]
    print("C: compute-bound, M: memory-bound (per training step: forward + backward-data + backward-filter)\n")
    for rep in reports:
        print(markdown(rep) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports, f, indent=1)


if __name__ == "__main__":
    main()
