"""Where the time of a step goes: each op's forward and backward time, like ``torch.profiler``'s
``key_averages()`` table (``gpucnn profile`` on the command line).

    with gpucnn.profiler.profile(by="layer") as prof:
        for _ in range(10):
            optimizer.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); optimizer.step()
    print(prof.table(steps=10))

Every op's forward and backward (a :class:`gpucnn.function.Function`) is timed with the host clock. On
``cuda`` the device is synchronised before and after each op, so a row holds its own kernels' time; ops
then no longer overlap with the Python between them, so use the rows to find hot spots and ``gpucnn
bench`` (CUDA events) for throughput. The time outside ops (Python, autograd, the optimizer, data
handling) is the block's wall time minus the ops' and has a row of its own.

Rows group the ops by ``by``:

- ``"op"``: the op and its pass (``conv2d  backward``);
- ``"layer"``: also the layer whose forward ran the op, named as in error messages (``Conv2d #3
  (32->64, 3x3)``); a backward counts under the layer of its forward (ops outside any layer, such as the
  loss, by their name alone);
- ``"shape"``: the op and the shape of its first input (``conv2d (64, 32, 14, 14)``).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from . import function
from .errors import ArgumentError

_BY = ("op", "layer", "shape")


@dataclass
class Row:
    """One line of a profile: ``what`` (op, layer or shape, see the module docstring) in ``phase``
    ("forward" or "backward"), ``calls`` times, ``seconds`` in all."""
    what: str
    phase: str
    calls: int = 0
    seconds: float = 0.0


class Profile:
    """What :func:`profile` recorded: :attr:`rows` (slowest first) and the block's wall time
    :attr:`wall_seconds`; :meth:`table` formats them. :attr:`steps`: how many steps the block ran, when
    known (:func:`profile_model` sets it; set it yourself for a ms/step column)."""

    def __init__(self, by: str) -> None:
        self.by = by
        self._rows: dict[tuple[str, str], Row] = {}
        self.wall_seconds = 0.0
        self.steps: Optional[int] = None

    @property
    def rows(self) -> list[Row]:
        return sorted(self._rows.values(), key=lambda r: -r.seconds)

    @property
    def op_seconds(self) -> float:
        """The time spent inside ops, all rows together."""
        return sum(r.seconds for r in self._rows.values())

    def _what(self, op: Any, phase: str, xs: tuple) -> str:
        if self.by == "op":
            return op.name
        if self.by == "shape":
            first = next((x for x in xs if x is not None), None)
            return f"{op.name} {tuple(first.shape)}" if first is not None else op.name
        if phase == "forward":  # by layer: the innermost module running now, remembered for backward
            from .nn.module import _stack

            stack = _stack()
            op._profile_layer = f"{stack[-1]._error_label(stack)}: {op.name}" if stack else op.name
        return getattr(op, "_profile_layer", op.name)

    def _record(self, op: Any, phase: str, xs: tuple, run: Callable[[], Any]) -> Any:
        key = (self._what(op, phase, xs), phase)
        device = op.device
        device.synchronize()
        start = time.perf_counter()
        try:
            return run()
        finally:
            device.synchronize()
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = Row(*key)
            row.calls += 1
            row.seconds += time.perf_counter() - start

    def table(self, steps: Optional[int] = None, limit: Optional[int] = None) -> str:
        """The rows as a text table, slowest first (the first ``limit`` of them, the rest summed in one
        line), then the time outside ops and the wall time; with ``steps`` (default :attr:`steps`), a
        ms-per-step column too."""
        steps = self.steps if steps is None else steps
        if steps is not None and steps < 1:
            raise ArgumentError(f"Profile.table: steps must be >= 1, got {steps}")
        rows = self.rows
        shown, rest = (rows, []) if limit is None else (rows[:limit], rows[limit:])
        lines = [(r.what, r.phase, str(r.calls), r.seconds) for r in shown]
        if rest:
            lines.append((f"({len(rest)} more rows)", "", str(sum(r.calls for r in rest)),
                          sum(r.seconds for r in rest)))
        lines.append(("(outside ops: Python, autograd, optimizer)", "", "",
                      max(0.0, self.wall_seconds - self.op_seconds)))
        lines.append(("total (wall time)", "", "", self.wall_seconds))
        head = ["what" if self.by == "layer" else "op", "pass", "calls", "total ms"] + \
            (["ms/step"] if steps else []) + ["% of wall"]
        body = []
        for what, phase, calls, seconds in lines:
            cells = [what, phase, calls, f"{seconds * 1e3:,.2f}"]
            if steps:
                cells.append(f"{seconds * 1e3 / steps:,.2f}")
            share = seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
            cells.append(f"{100 * share:.1f} %")
            body.append(cells)
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

        def fmt(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [fmt(head), fmt(["-" * w for w in widths])]
        out += [fmt(cells) for cells in body[:-2]]
        out += [fmt(["-" * w for w in widths])] + [fmt(cells) for cells in body[-2:]]
        return "\n".join(line.rstrip() for line in out)


@contextlib.contextmanager
def profile(by: str = "op") -> Iterator[Profile]:
    """Record the time of every op's forward and backward inside the block (see the module docstring);
    ``by`` is ``"op"``, ``"layer"`` or ``"shape"``. One profile records at a time."""
    if by not in _BY:
        raise ArgumentError(f"profile: by must be one of {', '.join(map(repr, _BY))}, got {by!r}")
    if function._recorder is not None:
        raise ArgumentError("profile: a profile is already recording (they do not nest)")
    prof = Profile(by)
    function._recorder = prof._record
    start = time.perf_counter()
    try:
        yield prof
    finally:
        function._recorder = None
        prof.wall_seconds = time.perf_counter() - start


def profile_model(model: Any, batch_size: int, *, steps: int = 10, warmup: int = 3, train: bool = True,
                  by: str = "layer", seed: int = 0, amp: Any = None) -> Profile:
    """Profile ``steps`` training steps of ``model`` (forward, softmax cross-entropy, backward, an SGD
    step with momentum 0.9) or, with ``train=False``, forward passes in eval mode under ``no_grad``,
    after ``warmup`` untimed ones. The inputs are uniform random values in [0, 1) of the model's
    ``input_shape`` and its parameters' dtype, on its device; the targets random classes (per pixel
    for an output with spatial axes, such as a U-Net's). The steps run on a copy of ``model``: its
    weights, running statistics and train/eval mode stay as they were. ``amp`` ("fp16", "bf16"): the
    forward and the loss under :class:`gpucnn.amp.autocast`, float16 through a GradScaler, as
    ``gpucnn train --amp`` runs them. The Profile's ``steps`` attribute is ``steps``."""
    if steps < 1 or warmup < 0 or batch_size < 1:
        raise ArgumentError(f"profile_model: expected steps >= 1, warmup >= 0 and batch_size >= 1, got "
                            f"steps={steps}, warmup={warmup}, batch_size={batch_size}")
    step = model_step(model, batch_size, train=train, seed=seed, amp=amp)
    for _ in range(warmup):
        step()
    with profile(by) as prof:
        for _ in range(steps):
            step()
    prof.steps = steps
    return prof


def model_step(model: Any, batch_size: int, *, train: bool = True, seed: int = 0,
               amp: Any = None) -> Callable[[], None]:
    """One training step (or, ``train=False``, one eval forward pass) of a copy of ``model`` on random data,
    as a function: what :func:`profile_model` times and :func:`step_peak_memory` measures."""
    import copy

    import numpy as np

    from .amp import GradScaler, autocast
    from .function import no_grad
    from .functional import cross_entropy
    from .optim import SGD
    from .tensor import tensor
    from .training.trainer import _amp_dtype

    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise ArgumentError("profile_model: the model has no input_shape (build it with gpucnn.models."
                            "build_model, or set model.input_shape = (C, H, W))")
    model = copy.deepcopy(model)
    params = list(model.parameters())
    device = params[0].device if params else "cpu"
    dtype = params[0].dtype if params else np.float32
    low = _amp_dtype(amp)
    name = getattr(device, "name", str(device))
    region = (lambda: autocast(name, dtype=low)) if low is not None else contextlib.nullcontext
    rng = np.random.default_rng(seed)
    x = tensor(rng.random((batch_size, *shape)).astype(dtype), device=device)
    model.train(train)
    if not train:
        def forward() -> None:
            with no_grad(), region():
                model(x)
        return forward
    with no_grad(), region():
        out_shape = model(x).shape
    classes = out_shape[1]
    target = tensor(rng.integers(0, classes, (batch_size, *out_shape[2:])).reshape(-1), device=device)
    optimizer = SGD(params, lr=1e-3, momentum=0.9)
    scaler = GradScaler(name, enabled=low == np.float16)

    def step() -> None:
        optimizer.zero_grad()
        with region():
            out = model(x)
            if out.ndim > 2:  # per-pixel logits: (N*H*W, classes)
                out = out.permute(0, *range(2, out.ndim), 1).reshape(-1, classes)
            loss = cross_entropy(out, target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


def step_peak_memory(model_spec: str, batch_size: int, *, device: str = "cpu", amp: Any = None, steps: int = 3,
                     train: bool = True) -> dict[str, float]:
    """The peak RSS (MiB; and the RSS after setup) of ``steps`` steps of :func:`model_step` for the model
    ``model_spec`` (a built-in name or model file), each measurement in a fresh Python process (the
    high-water mark of a process only grows)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = {"model": model_spec, "batch": batch_size, "device": device, "amp": amp, "steps": steps, "train": train}
    code = ("import json, sys; from gpucnn.profiler import _memory_child; "
            "print(json.dumps(_memory_child(json.loads(sys.argv[1]))))")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env,
                          timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ArgumentError(f"step_peak_memory: the probe of {model_spec} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _memory_child(spec: dict[str, Any]) -> dict[str, float]:
    from .memory import rss_mib
    from .models import build_model

    model = build_model(spec["model"]).to(spec["device"])
    step = model_step(model, spec["batch"], train=spec["train"], amp=spec["amp"])
    del model
    setup, _ = rss_mib()
    for _ in range(spec["steps"]):
        step()
    _, peak = rss_mib()
    return {"peak_rss_mib": peak, "setup_rss_mib": setup}
