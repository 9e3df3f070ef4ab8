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

import errno
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import write_json
from ..errors import ModelFormatError, TrainingError

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
    path = Path(path)
    existed = path.is_file()
    try:
        write_archive(path, arrays, {"format": FORMAT, "version": VERSION, "state": meta_tree})
    except ModelFormatError as exc:  # an OSError while writing: a full disk, a read-only file system, ...
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        reason = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(exc)
        kept = (f"the previous checkpoint in {path} is unchanged" if existed
                else "no checkpoint was written")
        if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            advice = "free some disk space"
        elif code == errno.ENOENT:
            advice = "make sure the output directory exists"
        else:
            advice = "make the output directory writable (or free some space)"
        raise TrainingError(f"cannot write the checkpoint {path}: {reason}; {kept}. {advice.capitalize()}, then "
                            f"resume from the last checkpoint") from exc


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`ModelFormatError` naming the file if
    it is not one, or if it is damaged (truncated, garbage, edited, from a newer gpucnn).

    Every entry a resumed run uses is checked for its type here (see :func:`_check_state`), so restoring
    a checkpoint never fails deep inside the trainer with a ``TypeError``/``KeyError``.
    """
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
    version = meta.get("version")
    if not _is_int(version) or version < 1:
        raise ModelFormatError(f"{path}: invalid checkpoint format version {version!r} (expected an integer "
                               f">= 1); the file is damaged")
    if version > VERSION:
        raise ModelFormatError(f"{path}: checkpoint format version {version} is newer than this "
                               f"gpucnn understands ({VERSION}); upgrade gpucnn")
    if not isinstance(meta.get("state"), dict):
        raise ModelFormatError(f"{path}: the checkpoint has no 'state' table; it is damaged or from another "
                               f"program")
    try:
        state = unpack_state(meta["state"], arrays)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    if not isinstance(state, dict):
        raise ModelFormatError(f"{path}: the checkpoint state is not a table; it is damaged")
    for key in _JSON_KEYS:
        if isinstance(state.get(key), str):
            try:
                state[key] = json.loads(state[key])
            except (ValueError, RecursionError) as exc:
                raise ModelFormatError(f"{path}: checkpoint entry {key!r} is damaged ({exc})") from None
    for key in ("epoch", "model", "optimizer", "config"):
        if key not in state:
            raise ModelFormatError(f"{path}: checkpoint lacks {key!r}; it is damaged or from another program")
    problem = _check_state(state)
    if problem:
        raise ModelFormatError(f"{path}: checkpoint entry {problem}; the file is damaged or was edited")
    state["epoch"] = int(state["epoch"])
    return state


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_array(v: Any) -> bool:
    from ..tensor import Tensor

    return isinstance(v, (np.ndarray, Tensor))


def _pcg64_ok(state: Any) -> bool:
    """Whether ``state`` is a bit-generator state NumPy's PCG64 accepts."""
    if not isinstance(state, dict):
        return False
    try:
        np.random.PCG64().state = state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        return False
    return True


def _value_fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a RunConfig field annotation (str, int, float, bool, Optional[...],
    dict[str, str])."""
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args):
        return any(_value_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return True


def _check_run_config(run_config: Any) -> str:
    """The first problem with a stored :class:`~gpucnn.training.run.RunConfig` ('' if none)."""
    import dataclasses
    import typing

    from ..errors import GpucnnError
    from .run import RunConfig

    if not isinstance(run_config, dict):
        return f"must be a table, got {type(run_config).__name__}"
    hints = typing.get_type_hints(RunConfig)
    for field in dataclasses.fields(RunConfig):
        if field.name in run_config and not _value_fits(run_config[field.name], hints[field.name]):
            return f"has an invalid {field.name!r}: {run_config[field.name]!r}"[:300]
    try:
        RunConfig.from_dict(run_config)
    except (GpucnnError, TypeError, ValueError, AttributeError) as exc:
        return f"is not a valid run configuration ({exc})"[:300]
    return ""


def _check_state(state: Mapping[str, Any]) -> str:
    """The first problem with the types of a checkpoint's entries ('' if none), as ``"'key' ..."``."""
    epoch = state["epoch"]
    if not _is_int(epoch) or epoch < 0:
        return f"'epoch' must be a whole number >= 0, got {epoch!r}"
    for key in ("model", "best_model"):
        tree = state.get(key)
        if key == "best_model" and tree is None:
            continue
        if not isinstance(tree, dict) or not all(isinstance(k, str) and _is_array(v) for k, v in tree.items()):
            return f"{key!r} must be a table of named arrays"
    best = state.get("best_model")
    if best is not None:
        model = state["model"]

        def layout(tree: Mapping[str, Any]) -> dict:
            return {k: (tuple(np.shape(v.data if hasattr(v, "data") else v)),
                        str(getattr(v, "dtype", None))) for k, v in tree.items()}

        if layout(best) != layout(model):
            return "'best_model' (the early-stopping weights) does not match 'model' (names, shapes or dtypes)"
    if not isinstance(state["optimizer"], dict):
        return f"'optimizer' must be a table, got {type(state['optimizer']).__name__}"
    if state.get("scheduler") is not None and not isinstance(state["scheduler"], dict):
        return f"'scheduler' must be a table, got {type(state['scheduler']).__name__}"
    for key in ("config", "loader", "extra", "early_stopping", "history"):
        if state.get(key) is not None and not isinstance(state[key], dict):
            return f"{key!r} must be a table, got {type(state[key]).__name__}"
    if "loader" not in state:
        return "'loader' is missing"
    rng = state.get("rng")
    if not isinstance(rng, dict) or not _pcg64_ok(rng.get("host")):
        return "'rng' must hold the random generator's state ('host': a PCG64 state)"
    for name, values in (state.get("history") or {}).items():
        if not isinstance(values, list) or not all(v is None or _is_number(v) for v in values):
            return f"'history' must map metric names to lists of numbers, got {name!r}: {values!r}"[:300]
    run_config = (state.get("config") or {}).get("run_config")
    if run_config is not None:
        problem = _check_run_config(run_config)
        if problem:
            return f"'config.run_config' {problem}"
    es = state.get("early_stopping") or {}
    for name, check in (("best", lambda v: _is_number(v)), ("best_epoch", _is_int), ("wait", _is_int),
                        ("stopped", lambda v: isinstance(v, bool)), ("patience", lambda v: v is None or _is_int(v))):
        if name in es and not check(es[name]):
            return f"'early_stopping' has an invalid {name!r}: {es[name]!r}"
    return ""


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` atomically and durably (see :mod:`gpucnn.atomic`); arrays become lists."""
    write_json(path, to_host(data), durable=True)
