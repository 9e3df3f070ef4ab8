"""Choosing a kernel configuration per problem shape by timing the candidates on the device, once.

An op with several launch configurations (the conv kernels' tile shapes: :mod:`gpucnn.functions._conv_tiles`)
calls :func:`pick` with a key describing the problem (pass, dtype, shapes) and a ``run(candidate)``
closure. With tuning on, the first call for a key runs every candidate (skipping any that fails to build
or launch) and keeps the fastest; later calls, in this process or later ones, reuse the choice:

- in memory, per process;
- on disk, in ``$GPUCNN_AUTOTUNE_CACHE`` (default ``$GPUCNN_CACHE_DIR/autotune.json``, with
  ``GPUCNN_CACHE_DIR`` defaulting to ``~/.cache/gpucnn``): a JSON object of ``key -> candidate name``,
  rewritten atomically (temp file + rename) after each new choice, merged with what other processes
  wrote meanwhile. An unreadable file is reported with a warning and replaced, never trusted blindly: a
  name that is not among today's candidates is ignored and the key re-tuned.

Keys start with the device's identity (GPU name, compute capability, CUDA runtime) and the caller
includes a hash of the kernel source, so a different GPU or an edited kernel never reuses a stale choice.

When tuning runs (``GPUCNN_AUTOTUNE``): ``auto`` (the default) on ``cuda`` only; ``1`` also on ``emu``
(timed with the host clock there: it exercises the machinery, the emulator's times say nothing about a
GPU); ``0`` never (the first candidate, the kernels' defaults, always). GPU times come from CUDA events
(``cupyx.profiler.benchmark``), the median of a few runs after a warm-up; tuning a conv layer's three
passes takes a few hundred milliseconds, once.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import numpy as np

from .atomic import write_text
from .errors import ArgumentError, KernelError

C = TypeVar("C")

#: Timed runs per candidate on a GPU (after one warm-up run); the median is compared.
GPU_REPEATS = 5

_lock = threading.Lock()
_memory: dict[str, str] = {}  # full key -> chosen candidate's name: the cache file's content and this process's choices
_disk_loaded: Optional[Path] = None  # the cache file _memory was filled from
_chosen: dict[str, Any] = {}  # full key -> candidate: pick's fast path, once known


def mode() -> str:
    """``"auto"``, ``"on"`` or ``"off"``, from ``GPUCNN_AUTOTUNE`` (ArgumentError for anything else)."""
    value = os.environ.get("GPUCNN_AUTOTUNE", "auto").strip().lower()
    table = {"auto": "auto", "": "auto", "1": "on", "on": "on", "true": "on", "0": "off", "off": "off",
             "false": "off"}
    if value not in table:
        raise ArgumentError(f"GPUCNN_AUTOTUNE must be auto, 1 (on) or 0 (off), got {value!r}")
    return table[value]


def enabled(device: Any) -> bool:
    """Whether :func:`pick` times candidates on ``device`` (a :class:`gpucnn.Device`)."""
    m = mode()
    return m == "on" and device.uses_kernels or m == "auto" and device.name == "cuda"


def cache_path() -> Path:
    """The file tuning choices persist in (see the module docstring)."""
    explicit = os.environ.get("GPUCNN_AUTOTUNE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("GPUCNN_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "gpucnn") / "autotune.json"


def source_hash(text: str) -> str:
    """A short hash of a kernel's source, for keys: an edited kernel is tuned afresh."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def device_identity(device: Any) -> str:
    """What a tuning choice depends on besides the problem: the GPU model and the CUDA runtime."""
    if device.name != "cuda":
        return device.name
    import cupy
    return _gpu_identity(cupy.cuda.Device().id)


@functools.lru_cache(maxsize=None)
def _gpu_identity(device_id: int) -> str:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(device_id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    cc = cupy.cuda.Device(device_id).compute_capability
    return f"{name} sm_{cc} cuda {cupy.cuda.runtime.runtimeGetVersion()}"


def _read(path: Path) -> dict[str, str]:
    """The choices stored in ``path`` ({} when absent; a warning and {} when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        warnings.warn(f"gpucnn autotune: cannot read {path} ({e}); tuning afresh", RuntimeWarning, stacklevel=3)
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ValueError("expected a JSON object of strings")
    except ValueError as e:
        warnings.warn(f"gpucnn autotune: ignoring the unreadable cache {path} ({e}); it will be rewritten",
                      RuntimeWarning, stacklevel=3)
        return {}
    return data


def _write(path: Path, key: str, name: str) -> None:
    """Store ``key -> name`` in ``path``, atomically, keeping what other processes stored meanwhile. A
    failure to write costs a re-tune in the next process, nothing more: it is reported, not raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (an unreadable file was reported when it was loaded)
            data = _read(path)
        data[key] = name
        write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        warnings.warn(f"gpucnn autotune: cannot write {path} ({e}); the choice is kept for this process only",
                      RuntimeWarning, stacklevel=3)


def _lookup(key: str) -> Optional[str]:
    global _disk_loaded
    path = cache_path()
    if _disk_loaded != path:
        _memory.clear()
        _memory.update(_read(path))
        _disk_loaded = path
    return _memory.get(key)


def forget() -> None:
    """Drop this process's choices (the file is read again on the next :func:`pick`)."""
    global _disk_loaded
    with _lock:
        _memory.clear()
        _chosen.clear()
        _disk_loaded = None


def measure(device: Any, fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes on ``device``: on cuda the median GPU time (CUDA events) of
    :data:`GPU_REPEATS` runs after a warm-up; elsewhere one run on the host clock."""
    if device.name == "cuda":
        from cupyx.profiler import benchmark
        result = benchmark(fn, n_repeat=GPU_REPEATS, n_warmup=1)
        return float(np.median(result.gpu_times[0]))
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pick(device: Any, key: str, candidates: Sequence[C], run: Callable[[C], Any],
         timer: Optional[Callable[[Any, Callable[[], Any]], float]] = None) -> C:
    """The fastest of ``candidates`` (named by ``str``) for the problem ``key`` on ``device``: the stored
    choice when there is one, else each candidate timed with ``run(candidate)`` (``timer``: default
    :func:`measure`). ``candidates[0]`` when tuning is off. A candidate whose run raises is skipped; if
    every one does, KernelError names the key and the errors."""
    if not enabled(device):
        return candidates[0]
    full_key = f"{device_identity(device)} | {key}"
    known = _chosen.get(full_key)  # (the per-launch path: no file, no name lookups)
    if known is not None and known in candidates:
        return known
    by_name = {str(c): c for c in candidates}
    with _lock:
        stored = _lookup(full_key)
    if stored in by_name:
        _chosen[full_key] = by_name[stored]
        return by_name[stored]
    timer = timer or measure
    times: dict[str, float] = {}
    errors: list[str] = []
    for c in candidates:
        try:
            times[str(c)] = timer(device, lambda c=c: run(c))
        except Exception as e:  # a candidate this GPU cannot build or launch: try the others
            errors.append(f"{c}: {type(e).__name__}: {e}")
    if not times:
        raise KernelError(f"autotune {key}: every candidate failed:\n" + "\n".join(errors))
    best = min(times, key=times.__getitem__)
    with _lock:
        _memory[full_key] = best
        _chosen[full_key] = by_name[best]
        _write(cache_path(), full_key, best)
    return by_name[best]
