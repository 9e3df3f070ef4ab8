"""Benchmarks: gpucnn against PyTorch, side by side in one process (``gpucnn bench``).

What is timed (each a *row*):

- ``layer``: every layer of the ``keras-mnist`` net (at ``layer_batch``) and of a ResNet-style CIFAR basic
  block (conv3x3-BN-ReLU-conv3x3-BN + skip, ``block_channels`` channels, ``block_size`` x ``block_size``,
  at ``block_batch``), forward and forward+backward (the gradients a training step needs: parameters, and
  the input unless it is the network's first layer).
- ``train``: the full training step (zero_grad, forward, loss, backward, SGD-momentum update) of
  keras-mnist at each of ``batch_sizes`` and of the basic block (loss: the mean of its output).
- ``inference``: keras-mnist at ``inference_batch`` and the block, under ``no_grad`` (PyTorch:
  ``inference_mode``), eval mode.

The memory-bound layer rows (pooling, ReLU, batch norm) also report the bandwidth they reach: the bytes
of the tensors each pass must read and write once (:func:`_traffic_bytes`) per second, and that as a
share of what a plain device copy reaches in the same run (the ``copy`` row that starts the layers: one
``copyto`` of ``copy_mib`` MiB, counted as read + write; on the CPU split over the NumPy path's threads).

Method: the same work runs in gpucnn and, when PyTorch is installed, in PyTorch (NCHW, and on the CPU also
``channels_last``) with the same weights and inputs. Before anything is timed, outputs, gradients and
updated weights are compared (relative L2 error, :data:`TOLERANCE`); a disagreement stops the run. Then
each variant runs ``warmup`` times, and ``rounds`` samples are taken with the variants INTERLEAVED
(gpucnn, PyTorch, PyTorch-CL, then the next round in rotated order) so that the drift of a shared machine
hits all of them alike; each sample starts once the other threads of the process sleep (:func:`settle`:
OpenBLAS's spinning workers would otherwise slow the PyTorch run that follows a NumPy one ~3x), and
after one untimed run that wakes the variant's own threads again (steady state, not a cold start). A
sample times ``inner`` back-to-back runs (calibrated so a sample lasts at least ``min_sample_s``); the
row reports the median per-run time as images/s. ``ratio`` = PyTorch time / gpucnn
time: above 1, gpucnn is faster.

``dtype`` (``gpucnn bench --dtype float16|bfloat16``): the convolution rows only, both frameworks in that
dtype (PyTorch's half-precision convolutions against our tensor-core kernels on ``cuda``); the other layers
and the whole-network rows need every op in half precision, which mixed-precision training brings. The
check then allows :func:`tolerance`'s few units of the dtype's epsilon.

``amp`` (``gpucnn bench --amp fp16|bf16``): the training and inference rows under autocast on both sides
(``gpucnn.amp.autocast`` / ``torch.autocast``, float32 weights; float16 steps through each framework's
GradScaler), checked to the 16-bit tolerance, and the peak memory of each training step beside the same
step in float32.

On ``cuda``, PyTorch runs cuDNN with TF32 OFF (``torch.backends.cudnn.allow_tf32 = False``,
``torch.backends.cuda.matmul.allow_tf32 = False``): a float32-to-float32 comparison. Times come from CUDA
events: ``cupyx.profiler.benchmark`` for gpucnn, ``torch.cuda.Event`` for PyTorch. On ``cpu`` and ``emu``
host timers are used (``emu`` runs our CUDA kernels in the CPU emulator, thousands of times slower; PyTorch
then runs on the CPU, so its ratios say nothing about GPUs).

Peak memory: the training step runs in a fresh subprocess per configuration and framework, which
reports its RSS high-water mark (``VmHWM``; see :func:`gpucnn.memory.rss_mib` for why not ``getrusage`` on Linux;
on cuda also the GPU memory peak).

:func:`run` returns the results as a JSON-able dict; :func:`format_table` renders it; :func:`write_results`
writes ``<date>-<device>-<host>.json`` and ``.md``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import gc
import json
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .atomic import write_text
from .errors import GpucnnError
from .memory import rss_mib

FORMAT = "gpucnn-bench"
VERSION = 1
#: relative L2 error allowed between gpucnn and PyTorch (outputs, gradients, updated weights; float32)
TOLERANCE = 2e-3
DTYPES = ("float32", "float16", "bfloat16")
RATIO_NOTE = "ratio = PyTorch time / gpucnn time (> 1: gpucnn is faster)"
GROUPS = ("layers", "train", "inference")
LR, MOMENTUM = 0.01, 0.9


class BenchmarkError(GpucnnError, RuntimeError):
    """gpucnn and PyTorch disagree on a benchmark's results, or a benchmark cannot run."""


@dataclass
class Settings:
    """What :func:`run` measures and how."""
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = (64, 256)       # keras-mnist training steps
    layer_batch: int = 256                          # keras-mnist per-layer rows
    inference_batch: int = 256
    block_channels: int = 64
    block_size: int = 32
    block_batch: int = 64
    groups: tuple[str, ...] = GROUPS
    rounds: int = 15
    warmup: int = 3
    min_sample_s: float = 0.05
    settle_s: float = 1.0                           # longest wait for quiet threads before a sample
    torch: bool = True                              # compare with PyTorch when it is installed
    memory: bool = True                             # peak RSS of the training steps (subprocesses)
    memory_steps: int = 5
    copy_mib: Optional[int] = None                  # the reference copy (None: 512 MiB on cuda, else 64)
    precision: str = "highest"                      # gpucnn.set_float32_matmul_precision; "high": TF32 both sides
    dtype: str = "float32"                          # float16/bfloat16: the convolution rows in that dtype
    amp: Optional[str] = None                       # "fp16"/"bf16": train and inference rows under autocast

    @classmethod
    def quick(cls, **overrides: Any) -> "Settings":
        """Tiny shapes and few runs: checks that the harness works, in seconds (numbers mean nothing)."""
        base = dict(batch_sizes=(4,), layer_batch=4, inference_batch=4, block_channels=4, block_size=8,
                    block_batch=2, rounds=3, warmup=1, min_sample_s=0.0, memory_steps=2, copy_mib=1)
        base.update(overrides)
        return cls(**base)


# -- PyTorch versions of gpucnn modules -------------------------------------------------------------------
def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_tensor(torch: Any, a: np.ndarray) -> Any:
    """``a`` as a torch tensor of the same dtype; bfloat16 (no NumPy type in torch) through float32, which
    holds every bfloat16 value exactly."""
    if a.dtype.kind == "V":
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(a))


def torch_module(module: Any, torch: Any) -> Any:
    """A PyTorch module with the architecture and the weights (and buffers) of the gpucnn ``module``."""
    tm = _torch_architecture(module, torch)
    state = {k: _torch_tensor(torch, v.numpy()) for k, v in module.state_dict().items()}
    tm.load_state_dict(state)
    return tm


def _torch_architecture(m: Any, torch: Any) -> Any:
    from . import nn as gnn

    tnn = torch.nn
    if isinstance(m, gnn.Sequential):
        return tnn.Sequential(*[_torch_architecture(c, torch) for c in m])
    if isinstance(m, gnn.Conv2d):
        c = m.config()
        return tnn.Conv2d(c["in_channels"], c["out_channels"], m.kernel_size, stride=m.stride,
                          padding=m.padding, dilation=m.dilation, bias=c["bias"], padding_mode=m.padding_mode)
    if isinstance(m, gnn.ReLU):
        return tnn.ReLU()
    if isinstance(m, gnn.MaxPool2d):
        return tnn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if isinstance(m, gnn.Flatten):
        return tnn.Flatten(m.start_dim, m.end_dim)
    if isinstance(m, gnn.Linear):
        return tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, gnn.BatchNorm2d):
        return tnn.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, gnn.BasicBlock):
        return _torch_basic_block(torch)(m.in_channels, m.out_channels, m.stride)
    raise BenchmarkError(f"bench: no PyTorch counterpart for layer {type(m).__name__}")


def _torch_basic_block(torch: Any) -> Any:
    tnn = torch.nn

    class BasicBlock(tnn.Module):
        """gpucnn.nn.BasicBlock in PyTorch (same attribute names, so state dicts match)."""

        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                               tnn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = self.shortcut(x) if self.shortcut is not None else x
            return self.relu(out + identity)

    return BasicBlock


class _Add:
    """The skip connection of the block as a 'layer': (out, identity) -> out + identity."""


# -- timers ------------------------------------------------------------------------------------------------
def _host_timer(fn: Callable[[], Any], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - t0


def _cupy_timer(fn: Callable[[], Any], inner: int) -> float:
    """GPU seconds of ``inner`` runs of a gpucnn function, from CUDA events (cupyx.profiler.benchmark)."""
    from cupyx.profiler import benchmark

    result = benchmark(fn, n_repeat=inner, n_warmup=0)
    return float(np.sum(result.gpu_times[0]))


def _torch_cuda_timer(torch: Any) -> Callable[[Callable[[], Any], int], float]:
    def timer(fn: Callable[[], Any], inner: int) -> float:
        """GPU seconds of ``inner`` back-to-back runs of a PyTorch function, from CUDA events."""
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0  # elapsed_time is in milliseconds
    return timer


@dataclass
class _Variant:
    name: str                       # "gpucnn", "torch", "torch_cl"
    fn: Callable[[], Any]
    timer: Callable[[Callable[[], Any], int], float]


def _running_threads() -> int:
    """How many of this process's other threads are running (Linux; 0 where /proc cannot say)."""
    me = threading.get_native_id()
    running = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tids:
        if tid == str(me):
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].startswith("R"):
            running += 1
    return running


def settle(max_s: float = 1.0) -> float:
    """Wait until the process's other threads sleep (at most ``max_s``); return the seconds waited.

    After a GEMM, OpenBLAS's worker threads spin for ~0.1 s before they sleep (OpenMP's, after a PyTorch
    op, for a few ms). On a 2-core machine a spinning thread takes a core from whatever runs next: PyTorch
    right after a NumPy step ran at a third of its speed. Interleaving must not hand that cost to the
    other framework, so every sample starts on quiet threads.
    """
    t0 = time.perf_counter()
    while _running_threads() and time.perf_counter() - t0 < max_s:
        time.sleep(0.002)
    return time.perf_counter() - t0


def time_interleaved(variants: Sequence[_Variant], rounds: int, warmup: int, min_sample_s: float,
                     settle_s: float = 1.0) -> dict[str, dict[str, Any]]:
    """Median seconds per run of each variant, sampled in interleaved rounds (see the module docstring)."""
    for _ in range(warmup):
        for v in variants:
            v.fn()
            settle(settle_s)
    inner = {}
    for v in variants:
        once = v.timer(v.fn, 1)
        settle(settle_s)
        inner[v.name] = max(1, math.ceil(min_sample_s / once)) if once > 0 else 1
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    was_enabled = gc.isenabled()
    try:
        for r in range(rounds):
            order = list(variants[r % len(variants):]) + list(variants[:r % len(variants)])
            for v in order:
                gc.collect()
                settle(settle_s)
                v.fn()  # untimed: wakes this variant's threads after the settling (steady state, not a cold start)
                gc.disable()
                samples[v.name].append(v.timer(v.fn, inner[v.name]) / inner[v.name])
                if was_enabled:
                    gc.enable()
    finally:
        if was_enabled:
            gc.enable()
    out = {}
    for name, s in samples.items():
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        out[name] = {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3), "samples": len(s),
                     "runs_per_sample": inner[name]}
    return out


# -- comparing results ----------------------------------------------------------------------------------------
def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor (bfloat16 has no NumPy twin: through float32, exactly)
        a = a.detach().cpu()
        return (a.float() if a.is_floating_point() else a).numpy()
    if hasattr(a, "numpy") and hasattr(a, "device") and hasattr(a, "_ctx"):  # a gpucnn Tensor
        return a.numpy()
    if hasattr(a, "get"):  # a CuPy array
        return a.get()
    return np.asarray(a)


def relative_error(ours: Any, reference: Any) -> float:
    """||ours - reference|| / ||reference|| (L2 over all elements; robust to the odd element that a
    rounding difference sends to the other side of a ReLU or max-pool decision)."""
    a = _to_numpy(ours).astype(np.float64).ravel()
    b = _to_numpy(reference).astype(np.float64).ravel()
    if a.shape != b.shape:
        return math.inf
    scale = float(np.linalg.norm(b))
    diff = float(np.linalg.norm(a - b))
    return diff / scale if scale > 0 else diff


def tolerance(dtype: Any = np.float32) -> float:
    """The relative L2 error allowed between gpucnn and PyTorch for results of ``dtype``: TOLERANCE in
    float32; in float16/bfloat16, 4 units of the dtype's epsilon (both frameworks sum in FP32 and round
    each result once, so each is within half an ulp of the same sum: about one epsilon apart at worst,
    plus the float32 differences in the order of summation)."""
    import ml_dtypes  # its finfo knows bfloat16 too
    return max(TOLERANCE, 4 * float(ml_dtypes.finfo(dtype).eps))


def _check(label: str, pairs: Sequence[tuple[str, Any, Any]], dtype: Any = np.float32) -> float:
    worst = 0.0
    limit = tolerance(dtype)
    for what, ours, ref in pairs:
        err = relative_error(ours, ref)
        if not err <= limit:
            raise BenchmarkError(f"bench: {label}: gpucnn and PyTorch disagree on {what} (relative error "
                                 f"{err:.2e} > {limit:.1e}); not timing results that differ")
        worst = max(worst, err)
    return worst


# -- the works ---------------------------------------------------------------------------------------------------
@dataclass
class _Case:
    """One row: the gpucnn function, the PyTorch ones, and a check run before timing."""
    work: str
    group: str
    model: str
    batch: int
    gpucnn: Callable[[], Any]
    torch: dict[str, Callable[[], Any]] = field(default_factory=dict)
    check: Optional[Callable[[], dict[str, float]]] = None
    note: str = ""
    bytes: Optional[int] = None  # memory traffic of one run (_traffic_bytes): rows that report GB/s


class _Env:
    """Device, frameworks and timers for one run."""

    def __init__(self, settings: Settings) -> None:
        import gpucnn

        self.gpucnn = gpucnn
        self.device = gpucnn.get_device(settings.device)
        self.only: Optional[str] = None  # build just this PyTorch variant (the memory probes)
        self.torch = _import_torch() if settings.torch else None
        self.on_cuda = self.device.name == "cuda"
        self.tdev = "cuda" if self.on_cuda else "cpu"
        self.channels_last = self.torch is not None and not self.on_cuda
        if settings.dtype not in DTYPES:
            raise BenchmarkError(f"bench: dtype must be one of {', '.join(DTYPES)}, got {settings.dtype!r}")
        self.dtype = gpucnn.dtypes.as_dtype(settings.dtype)
        self.tdtype = getattr(self.torch, settings.dtype) if self.torch is not None else None
        from .amp.autocast_mode import AMP_NAMES
        if settings.amp is not None and settings.amp not in AMP_NAMES:
            raise BenchmarkError(f"bench: amp must be one of {', '.join(AMP_NAMES)} or None, got {settings.amp!r}")
        if settings.amp is not None and settings.dtype != "float32":
            raise BenchmarkError(f"bench: --amp runs float32 models under autocast; it does not combine with "
                                 f"--dtype {settings.dtype}")
        self.amp = AMP_NAMES.get(settings.amp) if settings.amp else None
        #: what results are checked to: the autocast dtype, else the run's
        self.check_dtype = self.amp if self.amp is not None else self.dtype
        gpucnn.set_float32_matmul_precision(settings.precision)
        if self.torch is not None and self.on_cuda:
            # The same precision on both sides: FP32, or TF32 operands with FP32 accumulation.
            tf32 = settings.precision == "high"
            self.torch.backends.cudnn.allow_tf32 = tf32
            self.torch.backends.cuda.matmul.allow_tf32 = tf32
            self.torch.backends.cudnn.benchmark = True
        self.gpucnn_timer = _cupy_timer if self.on_cuda else _host_timer
        self.torch_timer = _torch_cuda_timer(self.torch) if (self.torch is not None and self.on_cuda) \
            else _host_timer

    def g(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        """``a`` as a gpucnn tensor on the device; floating-point data in the run's dtype."""
        dtype = self.dtype if a.dtype.kind == "f" else None
        return self.gpucnn.tensor(a, device=self.device, dtype=dtype, requires_grad=requires_grad)

    def t(self, a: np.ndarray, requires_grad: bool = False, cl: bool = False) -> Any:
        """The PyTorch twin of :meth:`g` (the same values: ``a`` is float32 or the run's dtype)."""
        x = self.torch.tensor(np.asarray(a, np.float32) if a.dtype.kind in "fV" else a, device=self.tdev)
        if x.is_floating_point():
            x = x.to(self.tdtype)
        if cl and x.ndim == 4:
            x = x.contiguous(memory_format=self.torch.channels_last)
        return x.requires_grad_(requires_grad)

    def tmodule(self, module: Any, cl: bool = False) -> Any:
        tm = torch_module(module, self.torch).to(self.tdev, self.tdtype)
        if cl:
            tm = tm.to(memory_format=self.torch.channels_last)
        return tm

    def variants(self) -> list[tuple[str, bool]]:
        if self.torch is None:
            return []
        found = [("torch", False)] + ([("torch_cl", True)] if self.channels_last else [])
        return [v for v in found if self.only is None or v[0] == self.only]

    def g_autocast(self) -> Any:
        """gpucnn's autocast region of the run (a no-op region without --amp)."""
        return self.gpucnn.amp.autocast(self.device.name, dtype=self.amp if self.amp is not None else None,
                                        enabled=self.amp is not None)

    def t_autocast(self) -> Any:
        dtype = getattr(self.torch, self.amp.name) if self.amp is not None else None
        return self.torch.autocast(self.tdev, dtype=dtype, enabled=self.amp is not None)

    def g_scaler(self) -> Any:
        """A loss scaler for float16 (a pass-through otherwise), as a training loop would hold."""
        return self.gpucnn.amp.GradScaler(self.device.name, enabled=self.amp == np.float16)

    def t_scaler(self) -> Any:
        return self.torch.amp.GradScaler(self.tdev, enabled=self.amp == np.float16)

    def sync(self) -> None:
        if self.on_cuda:
            self.device.xp.cuda.get_current_stream().synchronize()
            if self.torch is not None:
                self.torch.cuda.synchronize()


def _keras_data(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` real MNIST digits (the embedded set; random pixels if it cannot be read) as float32 in
    [0, 1], and their labels. Real digits have the blank areas whose max-pool ties a benchmark should see."""
    rng = np.random.default_rng(seed)
    try:
        from .data.digits import load_digits
        ds = load_digits()
        images, labels = np.asarray(ds.images), np.asarray(ds.labels)
        pick = rng.choice(len(images), size=batch, replace=batch > len(images))
        x = images[pick].reshape(batch, 1, 28, 28).astype(np.float32) / 255.0
        return np.ascontiguousarray(x), labels[pick].astype(np.int64)
    except (GpucnnError, OSError, AttributeError, ImportError):
        return rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)


def _block_data(settings: Settings, batch: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c, s = settings.block_channels, settings.block_size
    return np.maximum(rng.standard_normal((batch, c, s, s), dtype=np.float32), 0)  # post-ReLU activations


def _keras_model(env: _Env, seed: int = 0) -> Any:
    from .models import build_model
    env.gpucnn.manual_seed(seed)
    return build_model("keras-mnist").to(env.device)


def _block_model(env: _Env, settings: Settings, seed: int = 0) -> Any:
    from .nn import BasicBlock
    env.gpucnn.manual_seed(seed)
    block = BasicBlock(settings.block_channels, settings.block_channels)
    # Non-trivial BN affine parameters and running statistics, so that the check covers them.
    rng = np.random.default_rng(seed + 7)
    for name, t in block.state_dict().items():
        if name.endswith(("bn1.weight", "bn2.weight", "running_var")):
            t.data[...] = rng.uniform(0.5, 1.5, t.shape).astype(t.dtype)
        elif name.endswith(("bn1.bias", "bn2.bias", "running_mean")):
            t.data[...] = rng.uniform(-0.2, 0.2, t.shape).astype(t.dtype)
    return block.to(env.device)


def _loss_gpucnn(model_name: str, out: Any, y: Any) -> Any:
    from . import functional as F
    return F.cross_entropy(out, y) if model_name == "keras-mnist" else out.mean()


def _loss_torch(torch: Any, model_name: str, out: Any, y: Any) -> Any:
    return torch.nn.functional.cross_entropy(out, y) if model_name == "keras-mnist" else out.mean()


def _train_case(env: _Env, settings: Settings, model_name: str, batch: int) -> _Case:
    from .optim import SGD

    if model_name == "keras-mnist":
        xa, ya = _keras_data(batch)
        gm = _keras_model(env)
        work = "train keras-mnist"
    else:
        xa, ya = _block_data(settings, batch), None
        gm = _block_model(env, settings)
        work = f"train {_block_label(settings)}"
    x, y = env.g(xa), (env.g(ya) if ya is not None else None)
    gopt = SGD(gm.parameters(), lr=LR, momentum=MOMENTUM)
    gscaler = env.g_scaler()
    tms = {name: env.tmodule(gm, cl) for name, cl in env.variants()}
    topts = {name: env.torch.optim.SGD(tm.parameters(), lr=LR, momentum=MOMENTUM) for name, tm in tms.items()}
    tscalers = {name: env.t_scaler() for name in tms}
    txs = {name: env.t(xa, cl=cl) for name, cl in env.variants()}
    ty = env.t(ya) if (ya is not None and env.torch is not None) else None

    def g_step() -> Any:
        gopt.zero_grad()
        with env.g_autocast():
            loss = _loss_gpucnn(model_name, gm(x), y)
        gscaler.scale(loss).backward()
        gscaler.step(gopt)
        gscaler.update()
        return loss

    def t_step(name: str) -> Callable[[], Any]:
        tm, opt, tx, scaler = tms[name], topts[name], txs[name], tscalers[name]

        def step() -> Any:
            opt.zero_grad()
            with env.t_autocast():
                loss = _loss_torch(env.torch, model_name, tm(tx), ty)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss
        return step

    def check() -> dict[str, float]:
        # One step from identical weights; then the losses and every updated weight and buffer must agree.
        errors = {}
        g_loss = g_step()
        g_state = gm.state_dict()
        for name in tms:
            t_loss = t_step(name)()
            t_state = tms[name].state_dict()
            pairs = [("the loss", g_loss, t_loss)]
            pairs += [(f"{k} after one SGD step", v, t_state[k]) for k, v in g_state.items()
                      if not k.endswith("num_batches_tracked")]
            errors[name] = _check(f"{work} (batch {batch})", pairs, env.check_dtype)
        return errors

    return _Case(work, "train", model_name, batch, g_step, {n: t_step(n) for n in tms}, check)


def _inference_case(env: _Env, settings: Settings, model_name: str, batch: int) -> _Case:
    if model_name == "keras-mnist":
        xa, _ = _keras_data(batch, seed=2)
        gm, work = _keras_model(env), "inference keras-mnist"
    else:
        xa = _block_data(settings, batch, seed=3)
        gm, work = _block_model(env, settings), f"inference {_block_label(settings)}"
    gm.eval()
    x = env.g(xa)
    tms = {name: env.tmodule(gm, cl).eval() for name, cl in env.variants()}
    txs = {name: env.t(xa, cl=cl) for name, cl in env.variants()}

    def g_run() -> Any:
        with env.gpucnn.no_grad(), env.g_autocast():
            return gm(x)

    def t_run(name: str) -> Callable[[], Any]:
        tm, tx = tms[name], txs[name]

        def run_() -> Any:
            with env.torch.inference_mode(), env.t_autocast():
                return tm(tx)
        return run_

    def check() -> dict[str, float]:
        out = g_run()
        return {name: _check(f"{work} (batch {batch})", [("the output", out, t_run(name)())], env.check_dtype)
                for name in tms}

    return _Case(work, "inference", model_name, batch, g_run, {n: t_run(n) for n in tms}, check)


def _block_label(settings: Settings) -> str:
    c, s = settings.block_channels, settings.block_size
    return f"resnet-block {c}ch {s}x{s}"


_SHORT_NAMES = {"Conv2d": "conv", "MaxPool2d": "maxpool", "ReLU": "relu", "Linear": "linear"}


def _half(env: _Env) -> bool:
    """Whether the run is in a 16-bit dtype: then only the convolutions run (see the module docstring)."""
    return env.dtype.itemsize == 2


def _layer_cases(env: _Env, settings: Settings) -> list[_Case]:
    """Forward and forward+backward rows for each layer of keras-mnist and of the basic block (the
    convolutions only in a 16-bit dtype). The inputs are the float32 activations of a forward pass."""
    from . import nn as gnn

    cases: list[_Case] = [_copy_case(env, settings)]
    half = _half(env)
    # keras-mnist: each layer on the activations a forward pass of the net actually feeds it.
    batch = settings.layer_batch
    xa, _ = _keras_data(batch, seed=4)
    net = _keras_model(env)
    inputs = []
    h = env.gpucnn.tensor(xa, device=env.device)
    with env.gpucnn.no_grad():
        for layer in net:
            inputs.append(h.numpy())
            h = layer(h)
    counts: dict[str, int] = {}
    for i, layer in enumerate(net):
        if isinstance(layer, gnn.Flatten) or (half and not isinstance(layer, gnn.Conv2d)):
            continue  # a reshape: nothing to time; in 16 bits, the convolutions only
        kind = _SHORT_NAMES.get(type(layer).__name__, type(layer).__name__.lower())
        counts[kind] = counts.get(kind, 0) + 1
        label = f"{kind}{counts[kind]} {layer.short_description()}".strip()
        a = inputs[i]
        if isinstance(layer, gnn.Linear) and a.ndim > 2:
            a = a.reshape(a.shape[0], -1)
        shape = "x".join(str(d) for d in a.shape[1:])
        cases += _layer_pair(env, "keras-mnist", f"{label} ({shape})", layer, a, batch, input_grad=i > 0)
    # The basic block: its conv (both convs have this shape), BN (training mode), ReLU and the skip add.
    batch = settings.block_batch
    block = _block_model(env, settings)
    a = _block_data(settings, batch, seed=5)
    c, s = settings.block_channels, settings.block_size
    name = _block_label(settings)
    with env.gpucnn.no_grad():
        conv_out = block.conv1(env.gpucnn.tensor(a, device=env.device)).numpy()
    cases += _layer_pair(env, name, f"conv3x3 {c}->{c} ({c}x{s}x{s})", block.conv1, a, batch, True)
    if half:
        return cases
    cases += _layer_pair(env, name, f"batchnorm {c} train ({c}x{s}x{s})", block.bn1, conv_out, batch, True)
    cases += _layer_pair(env, name, f"relu ({c}x{s}x{s})", block.relu, conv_out, batch, True)
    cases += _layer_pair(env, name, f"add, skip ({c}x{s}x{s})", _Add(), (conv_out, a), batch, True)
    return cases


def _layer_pair(env: _Env, model_name: str, label: str, layer: Any, a: Any, batch: int,
                input_grad: bool) -> list[_Case]:
    """The forward and forward+backward cases of one layer on input ``a`` (a pair of inputs for _Add)."""
    arrays = a if isinstance(a, tuple) else (a,)
    if not isinstance(layer, _Add):
        layer.to(dtype=env.dtype)  # (a no-op in float32)
    xs = [env.g(v, requires_grad=input_grad) for v in arrays]
    params = [] if isinstance(layer, _Add) else list(layer.parameters())
    if isinstance(layer, _Add):
        g_call: Callable[[], Any] = lambda: xs[0] + xs[1]  # noqa: E731
    else:
        g_call = lambda: layer(xs[0])  # noqa: E731
    with env.gpucnn.no_grad():
        out = g_call()
    out_shape = out.shape
    gya = np.random.default_rng(9).standard_normal(out_shape, dtype=np.float32)
    # The output gradient in the memory layout of the layer's own output, as the next layer's backward
    # would hand it over (PyTorch: NCHW, or channels_last in the CL column).
    xp = env.device.xp
    gy_data = xp.empty_like(out.data)
    gy_data[...] = xp.asarray(gya)
    gy = env.gpucnn.Tensor(gy_data, env.device)

    def g_forward() -> Any:
        return g_call()

    def g_train() -> Any:
        for t in params + xs:
            t.grad = None
        y = g_call()
        y.backward(gy)
        return y

    t_forward, t_train, t_grads = {}, {}, {}
    for vname, cl in env.variants():
        use_cl = cl and len(out_shape) == 4
        if cl and not use_cl:
            continue  # channels_last means nothing for a 2-D (N, features) layer
        tlayer = None if isinstance(layer, _Add) else env.tmodule(layer, use_cl)
        txs = [env.t(v, requires_grad=input_grad, cl=use_cl) for v in arrays]
        tgy = env.t(gya, cl=use_cl)
        tparams = [] if tlayer is None else list(tlayer.parameters())
        call = (lambda txs=txs: txs[0] + txs[1]) if tlayer is None else (lambda tl=tlayer, txs=txs: tl(txs[0]))

        def fwd(call: Callable[[], Any] = call) -> Any:
            return call()

        def train(call: Callable[[], Any] = call, txs: list = txs, tparams: list = tparams, tgy: Any = tgy) -> Any:
            for t in tparams + txs:
                t.grad = None
            y = call()
            y.backward(tgy)
            return y

        t_forward[vname], t_train[vname] = fwd, train
        t_grads[vname] = (txs, tparams)

    def check_forward() -> dict[str, float]:
        out = g_forward()
        return {n: _check(f"{label} forward", [("the output", out, f())], env.dtype) for n, f in t_forward.items()}

    def check_train() -> dict[str, float]:
        errors = {}
        out = g_train()
        g_grads = [("the input gradient", t.grad) for t in xs if t.requires_grad]
        g_grads += [(f"the gradient of parameter {k}", p.grad) for k, p in enumerate(params)]
        for n, f in t_train.items():
            t_out = f()
            txs_, tparams_ = t_grads[n]
            t_list = [t.grad for t in txs_ if t.requires_grad] + [p.grad for p in tparams_]
            pairs = [("the output", out, t_out)] + [(w, g, tg) for (w, g), tg in zip(g_grads, t_list)]
            errors[n] = _check(f"{label} forward+backward", pairs, env.dtype)
        return errors

    itemsize = env.dtype.itemsize
    in_shape = tuple(arrays[0].shape)
    return [_Case(f"{label} fwd", "layers", model_name, batch, g_forward, t_forward, check_forward,
                  bytes=_traffic_bytes(layer, in_shape, tuple(out_shape), itemsize, train=False)),
            _Case(f"{label} fwd+bwd", "layers", model_name, batch, g_train, t_train, check_train,
                  bytes=_traffic_bytes(layer, in_shape, tuple(out_shape), itemsize, train=True))]


def _traffic_bytes(layer: Any, in_shape: tuple, out_shape: tuple, itemsize: int, train: bool) -> Optional[int]:
    """The bytes one run of a memory-bound layer must move at least, each tensor read or written once:
    the forward reads x and writes y; the backward reads gy and the tensor it needs saved (pooling and
    batch norm: x; ReLU: y) and writes gx. Per-channel vectors are negligible and not counted. None for
    the other layers (convolutions and dense layers are compute-bound: ratios, not GB/s)."""
    from . import nn as gnn

    x, y = math.prod(in_shape) * itemsize, math.prod(out_shape) * itemsize
    if not isinstance(layer, (gnn.MaxPool2d, gnn.AvgPool2d, gnn.ReLU, gnn.BatchNorm2d)):
        return None
    saved = y if isinstance(layer, gnn.ReLU) else 0 if isinstance(layer, gnn.AvgPool2d) else x
    return x + y + (y + saved + x if train else 0)  # forward: x, y; backward: gy, saved, gx


def _copy_case(env: _Env, settings: Settings) -> _Case:
    """The reference row of the bandwidth figures: one device copy of ``copy_mib`` MiB (read + write)."""
    mib = settings.copy_mib or (512 if env.on_cuda else 64)
    n = (mib << 20) // 4
    xp = env.device.xp
    src = xp.ones(n, dtype=np.float32)
    dst = xp.empty_like(src)
    torch_fns = {}
    if env.torch is not None:
        tsrc = env.torch.ones(n, device=env.tdev)
        tdst = env.torch.empty_like(tsrc)
        torch_fns = {name: (lambda: tdst.copy_(tsrc)) for name, _ in env.variants()}
    if xp is np:  # on the CPU split over the NumPy path's threads, as its elementwise ops are
        from . import workspace

        def copy() -> None:
            workspace.parallel(lambda lo, hi: np.copyto(dst[lo:hi], src[lo:hi]), n, workspace.MIN_PIECE)
    else:
        def copy() -> None:
            xp.copyto(dst, src)
    return _Case(f"copy {mib} MiB (reference)", "layers", "-", 1, copy, torch_fns, bytes=2 * n * 4)


# -- peak memory (fresh subprocesses) ------------------------------------------------------------------
def _memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: build the training step of ``spec`` (framework, model, batch, device, ...),
    run it, and report the RSS after setup and the process's RSS high-water mark after the steps (MiB)."""
    framework, model_name, batch = spec["framework"], spec["model"], spec["batch"]
    settings = Settings(**spec["settings"])
    settings.torch = framework != "gpucnn"
    env = _Env(settings)
    env.only = framework
    if framework != "gpucnn" and env.torch is None:
        raise BenchmarkError("bench: PyTorch is not installed")
    case = _train_case(env, settings, model_name, batch)
    fn = case.gpucnn if framework == "gpucnn" else case.torch[framework]
    env.sync()
    gc.collect()
    setup, _ = rss_mib()
    for _ in range(spec["steps"]):
        fn()
    env.sync()
    _, peak = rss_mib()
    out = {"peak_rss_mib": peak, "setup_rss_mib": setup}
    if env.on_cuda:
        if framework == "gpucnn":
            out["gpu_pool_mib"] = env.device.xp.get_default_memory_pool().total_bytes() / 2 ** 20
        else:
            out["gpu_peak_mib"] = env.torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def measure_memory(settings: Settings, framework: str, model_name: str, batch: int) -> dict[str, Any]:
    """Peak RSS (MiB) of ``settings.memory_steps`` training steps, in a fresh Python process."""
    spec = {"framework": framework, "model": model_name, "batch": batch, "steps": settings.memory_steps,
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()}}
    code = ("import json, sys; from gpucnn.bench import _memory_child; "
            "print(json.dumps(_memory_child(json.loads(sys.argv[1]))))")
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=900)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BenchmarkError(f"bench: the memory probe for {framework} {model_name} batch {batch} failed: "
                             f"{tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- environment facts ---------------------------------------------------------------------------------------
def _cpu_model() -> str:
    """The CPU's model name, plus its widest vector extensions (a VM often hides the exact model)."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{name} ({', '.join(simd)})" if simd else name


def _blas_info() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except Exception:  # pragma: no cover - older NumPy: no dict mode
        pass
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            info.update(runtime=p.get("internal_api"), threads=p.get("num_threads"),
                        architecture=p.get("architecture"))
    except Exception:
        pass
    return info


def environment(env: Optional[_Env] = None) -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import gpucnn

    out: dict[str, Any] = {
        "gpucnn": gpucnn.__version__, "numpy": np.__version__, "blas": _blas_info(),
        "python": platform.python_version(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    torch = env.torch if env is not None else _import_torch()
    if torch is not None:
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    if env is not None and env.on_cuda:
        cp = env.device.xp
        props = cp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        out["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        out["cupy"] = cp.__version__
        out["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
        if torch is not None:
            out["cudnn"] = torch.backends.cudnn.version()
    return out


# -- the run ---------------------------------------------------------------------------------------------------
def _cases(env: _Env, settings: Settings) -> list[_Case]:
    cases: list[_Case] = []
    if "layers" in settings.groups and env.amp is None:  # (--amp: whole steps; layer rows take --dtype)
        cases += _layer_cases(env, settings)
    if _half(env):
        return cases  # the whole-network rows need every op in 16 bits (mixed-precision training)
    if "train" in settings.groups:
        cases += [_train_case(env, settings, "keras-mnist", b) for b in settings.batch_sizes]
        cases.append(_train_case(env, settings, "resnet-block", settings.block_batch))
    if "inference" in settings.groups:
        cases.append(_inference_case(env, settings, "keras-mnist", settings.inference_batch))
        cases.append(_inference_case(env, settings, "resnet-block", settings.block_batch))
    return cases


def run(settings: Optional[Settings] = None, progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Run the benchmarks; return the results (JSON-able; see :func:`format_table`)."""
    settings = settings or Settings()
    unknown = [g for g in settings.groups if g not in GROUPS]
    if unknown:
        raise BenchmarkError(f"bench: unknown group {unknown[0]!r} (groups: {', '.join(GROUPS)})")
    say = progress or (lambda _msg: None)
    env = _Env(settings)
    started = time.time()
    results: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": socket.gethostname(), "device": env.device.name, "environment": environment(env),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
        "ratio": RATIO_NOTE, "units": "images per second (median per-run time)",
        "timing": ("CUDA events (cupyx.profiler.benchmark; torch.cuda.Event)" if env.on_cuda
                   else "host timer (time.perf_counter)") + "; each sample: wait until the other threads sleep, one untimed run, then the timed runs",
        "torch_variants": [n for n, _ in env.variants()],
        "rows": [], "memory": [],
    }
    if env.on_cuda and env.torch is not None:
        tf32 = "on" if settings.precision == "high" else "off"
        results["torch_settings"] = f"cuDNN with TF32 {tf32} (cudnn.allow_tf32 = matmul.allow_tf32 = " \
                                    f"{tf32 == 'on'}), cudnn.benchmark = True"
    notes = []
    if settings.torch and env.torch is None:
        notes.append("PyTorch is not installed: gpucnn only (pip install 'gpucnn[bench]')")
    if _half(env):
        notes.append(f"{settings.dtype}: the convolution rows only, both frameworks in {settings.dtype} "
                     f"(FP32 accumulation; checked to {tolerance(env.dtype):.1e} relative)")
    if env.amp is not None:
        notes.append(f"--amp {settings.amp}: the training and inference rows under autocast ({env.amp}) on both "
                     f"sides{', float16 with loss scaling' if env.amp == np.float16 else ''}; checked to "
                     f"{tolerance(env.amp):.1e} relative; no layer rows (those take --dtype)")
    if notes:
        results["note"] = "; ".join(notes)
    cases = _cases(env, settings)
    for i, case in enumerate(cases, 1):
        say(f"[{i}/{len(cases)}] {case.work} (batch {case.batch})")
        row: dict[str, Any] = {"work": case.work, "group": case.group, "model": case.model, "batch": case.batch}
        try:
            row["check"] = case.check() if (case.check is not None and case.torch) else {}
            env.sync()
        except NotImplementedError as exc:
            row["skipped"] = f"not available on {env.device.name}: {exc}"
            results["rows"].append(row)
            continue
        variants = [_Variant("gpucnn", case.gpucnn, env.gpucnn_timer)]
        variants += [_Variant(n, f, env.torch_timer) for n, f in case.torch.items()]
        timed = time_interleaved(variants, settings.rounds, settings.warmup, settings.min_sample_s,
                                 settings.settle_s)
        for name, t in timed.items():
            t["images_per_s"] = case.batch / t["median_s"] if t["median_s"] > 0 else math.inf
            if case.bytes is not None:
                t["gb_per_s"] = case.bytes / t["median_s"] / 1e9 if t["median_s"] > 0 else math.inf
            row[name] = t
        if case.bytes is not None:
            row["bytes"] = case.bytes
        g = timed["gpucnn"]["median_s"]
        for name in case.torch:
            row[f"ratio_{name}"] = timed[name]["median_s"] / g if g > 0 else math.inf
        results["rows"].append(row)
    if settings.memory and "train" in settings.groups and not _half(env):
        frameworks = ["gpucnn"] + [n for n, _ in env.variants()]
        configs = [("keras-mnist", b) for b in settings.batch_sizes] + [("resnet-block", settings.block_batch)]
        for model_name, batch in configs:
            entry: dict[str, Any] = {"model": model_name, "batch": batch}
            for fw in frameworks:
                say(f"peak memory: {fw} {model_name} batch {batch}")
                entry[fw] = measure_memory(settings, fw, model_name, batch)
                if env.amp is not None:  # the same step in float32, beside it
                    say(f"peak memory: {fw} {model_name} batch {batch}, float32")
                    entry[f"{fw}_float32"] = measure_memory(dataclasses.replace(settings, amp=None), fw,
                                                            model_name, batch)
            results["memory"].append(entry)
    results["seconds"] = round(time.time() - started, 1)
    return results


# -- output -----------------------------------------------------------------------------------------------------
_VARIANT_TITLES = {"gpucnn": "gpucnn", "torch": "PyTorch", "torch_cl": "PyTorch-CL"}


def _fmt_rate(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table (also valid Markdown when wrapped in a code block)."""
    e = results["environment"]
    variants = results.get("torch_variants", [])
    s = results["settings"]
    in_dtype = f", {s['dtype']}" if s.get("dtype", "float32") != "float32" else ""
    in_dtype += f", amp {s['amp']}" if s.get("amp") else ""
    lines = [f"gpucnn bench: device {results['device']}{in_dtype}, {results['date']}, host {results['host']}",
             f"machine: {e.get('gpu', e['cpu'])}, {e['cpu_count']} CPUs" +
             (f" (CPU {e['cpu']})" if "gpu" in e else ""),
             f"versions: gpucnn {e['gpucnn']}, numpy {e['numpy']} "
             f"({e['blas'].get('name', '?')} {e['blas'].get('version', '')}".rstrip() + ")" +
             (f", torch {e['torch']} ({e['torch_threads']} threads)" if "torch" in e else ", no PyTorch")]
    if results.get("torch_settings"):
        lines.append(f"PyTorch: {results['torch_settings']}")
    if results["device"] == "emu":
        lines.append("emu: gpucnn's CUDA kernels in the CPU emulator (a correctness tool, not fast); PyTorch on the CPU")
    lines.append(f"images/s, median of {s['rounds']} interleaved samples after {s['warmup']} warm-up runs "
                 f"({results['timing']}); {RATIO_NOTE}")
    if "torch_cl" in variants:
        lines.append("PyTorch-CL: PyTorch with channels_last tensors and weights")
    header = ["work", "batch", "gpucnn"]
    for v in variants:
        header += [_VARIANT_TITLES[v], "ratio"]
    copy_gbs = next((r["gpucnn"]["gb_per_s"] for r in results["rows"]
                     if r["work"].startswith("copy ") and "gb_per_s" in r.get("gpucnn", {})), None)
    with_bw = any("bytes" in r for r in results["rows"])
    if with_bw:
        header += ["GB/s", "of copy"]
        lines.append("GB/s: gpucnn's memory traffic on the memory-bound rows (each tensor read or written "
                     "once), and its share of what the copy row reaches")
    rows = []
    for r in results["rows"]:
        cells = [r["work"], str(r["batch"])]
        if "skipped" in r:
            rows.append(cells + [r["skipped"]])
            continue
        cells.append(_fmt_rate(r["gpucnn"]["images_per_s"]))
        for v in variants:
            if v in r:
                cells += [_fmt_rate(r[v]["images_per_s"]), f"{r[f'ratio_{v}']:.2f}"]
            else:
                cells += ["-", "-"]
        if with_bw:
            gbs = r["gpucnn"].get("gb_per_s")
            cells += ["-", "-"] if gbs is None else \
                [f"{gbs:,.1f}", f"{100 * gbs / copy_gbs:.0f} %" if copy_gbs else "-"]
        rows.append(cells)
    widths = [max(len(header[i]), *(len(c[i]) for c in rows if len(c) > i)) for i in range(len(header))]
    def fmt(cells: list[str]) -> str:
        if len(cells) < len(header):
            return f"{cells[0]:<{widths[0]}}  {cells[1]:>{widths[1]}}  {cells[2]}"
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines += ["", fmt(header), "  ".join("-" * w for w in widths)]
    group = None
    for r, cells in zip(results["rows"], rows):
        if group is not None and r["group"] != group:
            lines.append("")
        group = r["group"]
        lines.append(fmt(cells))
    if results.get("memory"):
        lines += ["", "peak RSS of the training step (MiB; a fresh process each; in brackets: after setup, "
                      "before the first step)"]
        for m in results["memory"]:
            parts = []
            for fw in ["gpucnn"] + variants:
                if fw in m:
                    p = m[fw]
                    extra = ""
                    if "gpu_pool_mib" in p:
                        extra = f", GPU pool {p['gpu_pool_mib']:.0f}"
                    elif "gpu_peak_mib" in p:
                        extra = f", GPU peak {p['gpu_peak_mib']:.0f}"
                    parts.append(f"{_VARIANT_TITLES[fw]} {p['peak_rss_mib']:.0f} ({p['setup_rss_mib']:.0f}{extra})")
            ratio = ""
            if "torch" in m:
                ratio = f"; gpucnn/PyTorch {m['gpucnn']['peak_rss_mib'] / m['torch']['peak_rss_mib']:.2f}"
            lines.append(f"  {m['model']} batch {m['batch']}: " + ", ".join(parts) + ratio)
            if any(f"{fw}_float32" in m for fw in ["gpucnn"] + variants):
                same = [f"{_VARIANT_TITLES[fw]} {m[fw + '_float32']['peak_rss_mib']:.0f}"
                        for fw in ["gpucnn"] + variants if fw + "_float32" in m]
                lines.append("    the same step in float32: " + ", ".join(same))
    if results.get("note"):
        lines += ["", results["note"]]
    return "\n".join(lines)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def write_json(results: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(_json_safe(results), indent=1) + "\n")
    return path


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``<date>-<device>-<host>.json`` and ``.md`` in ``out_dir`` (``-2``, ``-3``, ... when taken)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in results["host"]) or "host"
    stem = f"{results['date'][:10]}-{results['device']}-{host}"
    n, name = 1, stem
    while (out_dir / f"{name}.json").exists() or (out_dir / f"{name}.md").exists():
        n += 1
        name = f"{stem}-{n}"
    json_path = write_json(results, out_dir / f"{name}.json")
    md_path = out_dir / f"{name}.md"
    write_text(md_path, f"# gpucnn bench, {results['device']}, {results['date'][:10]}\n\n```\n"
                        f"{format_table(results)}\n```\n")
    return json_path, md_path
