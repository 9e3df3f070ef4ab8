"""Checkpoints of a training run: one atomic ``checkpoint.npz`` per output directory.

A checkpoint holds everything a resumed run needs to continue *exactly* as if it had never stopped:

=================  ==========================================================================
``epoch``          epochs completed (the checkpoint is written only at epoch ends)
``model``          the model's state dict (parameters and buffers)
``optimizer``      the optimizer's state dict (hyper-parameters, momentum/Adam buffers, steps)
``scheduler``      the learning-rate scheduler's state dict (or None)
``loader``         the training DataLoader's state (epoch counter, shuffle RNG at the epoch start)
``rng``            gpucnn's global RNG state (dropout; initialisation)
``history``        the per-epoch metrics so far
``early_stopping`` best monitored value, its epoch, epochs without improvement (and the best
                   weights when early stopping is on, so it can restore them)
``config``         the run's configuration (model, dataset, hyper-parameters, seed, transforms)
=================  ==========================================================================

It is written with :func:`gpucnn.serialization.write_archive` (temporary file + rename: a crash or a
kill while writing leaves the previous checkpoint intact) and holds no pickle. Values that JSON cannot
hold exactly (the 128-bit PCG64 states) are stored as JSON text.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ModelFormatError

CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
CONFUSION_TEXT_FILE = "confusion.txt"

FORMAT = "gpucnn-checkpoint"
VERSION = 1
# Sub-trees stored as JSON text (arbitrary-precision ints, free-form keys).
_JSON_KEYS = ("loader", "rng", "history", "config", "early_stopping", "extra")


def to_host(value: Any) -> Any:
    """A nested structure with every array as a NumPy array (CuPy arrays and Tensors copied to the host)
    and every dict key a string."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray):
        return value.copy()
    if hasattr(value, "get") and hasattr(value, "shape") and hasattr(value, "dtype"):  # a CuPy array
        return np.asarray(value.get())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_host(v) for v in value]
    return value


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Write ``state`` (see the module docstring) to ``path`` atomically."""
    from ..serialization import pack_state, write_archive

    tree = {}
    for key, value in state.items():
        if key in _JSON_KEYS:
            tree[key] = json.dumps(to_host(value), allow_nan=True)
        else:
            tree[key] = to_host(value)
    meta_tree, arrays = pack_state(tree)
    write_archive(Path(path), arrays, {"format": FORMAT, "version": VERSION, "state": meta_tree})


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`ModelFormatError` if it is not one."""
    from ..serialization import read_archive, unpack_state

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelFormatError(f"no checkpoint at {path} (a run directory holds {CHECKPOINT_FILE} once its "
                               f"first epoch has finished)")
    arrays, meta = read_archive(path)
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
        kind = meta.get("format") if isinstance(meta, Mapping) else None
        raise ModelFormatError(f"{path} is not a gpucnn training checkpoint (format {kind!r}); "
                               f"a saved model is loaded with gpucnn.serialization.load")
    if int(meta.get("version", 0)) > VERSION:
        raise ModelFormatError(f"{path}: checkpoint format version {meta.get('version')} is newer than this "
                               f"gpucnn understands ({VERSION}); upgrade gpucnn")
    state = dict(unpack_state(meta["state"], arrays))
    for key in _JSON_KEYS:
        if isinstance(state.get(key), str):
            try:
                state[key] = json.loads(state[key])
            except ValueError as exc:
                raise ModelFormatError(f"{path}: checkpoint entry {key!r} is damaged ({exc})") from None
    for key in ("epoch", "model", "optimizer", "config"):
        if key not in state:
            raise ModelFormatError(f"{path}: checkpoint lacks {key!r}; it is damaged or from another program")
    state["epoch"] = int(state["epoch"])
    return state


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and a rename (readers never see half a file)."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + "-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(to_host(data), f, indent=2, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + "-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
