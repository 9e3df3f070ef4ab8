"""Saving and loading models and checkpoints: no pickle, atomic writes, clear errors.

File format: one ``.npz`` (zip) archive holding the arrays, plus a JSON document stored as a uint8 array
under the key ``__meta__``. Reading uses ``np.load(..., allow_pickle=False)``, so a file can hold only
plain numeric arrays and JSON: loading a file never runs code from it.

- :func:`write_archive` / :func:`read_archive`: arrays + meta, written atomically (temp file in the same
  directory, flush, fsync, ``os.replace``, fsync of the directory), so a crash or an error while writing
  leaves the previous file intact.
- :func:`pack_state` / :func:`unpack_state`: nested dicts/lists of arrays, Tensors, numbers and strings
  (optimizer state, RNG states, ...) <-> a JSON tree plus named arrays (for training checkpoints).
- :func:`save` / :func:`load` (``gpucnn.save`` / ``gpucnn.load``, like ``torch.save`` / ``torch.load``):
  a model = its architecture (the layer config tree, checked against the layer registry before anything
  is built) + its ``state_dict`` arrays + metadata (input shape, classes, ...); or any state tree: a
  ``state_dict()`` of a model, an optimizer or a scheduler, or a dict of them
  (``{"model": ..., "optimizer": ..., "epoch": 3}``). Every problem with a file raises
  :class:`gpucnn.errors.ModelFormatError` naming the file. A ``.safetensors`` path is saved and loaded
  by :mod:`gpucnn.safetensors_io` (PyTorch's names and layouts); a ``.pt``/``.pth`` file that is not a
  gpucnn archive (a PyTorch pickle) is refused, pointing at safetensors.

A saved model's meta document::

    {"format": "gpucnn-model", "version": 1, "architecture": {"type": "Sequential", "layers": [...]},
     "dtype": "float32", "input_shape": [1, 28, 28], "num_classes": 10, "classes": null,
     "name": "keras-mnist", "metadata": {...}}

A saved state tree's: ``{"format": "gpucnn-state", "version": 1, "state": <pack_state's JSON tree>}``.
"""
from __future__ import annotations

import json
import numbers
import os
import zipfile
from typing import Any, Optional, Union

import numpy as np

from .atomic import atomic_open
from .backend import DeviceLike, _cupy
from .errors import ArgumentError, GpucnnError, ModelFormatError
from .tensor import Tensor
from . import dtypes
from .dtypes import is_floating_point

META_KEY = "__meta__"
MODEL_FORMAT = "gpucnn-model"
MODEL_VERSION = 1
STATE_FORMAT = "gpucnn-state"
STATE_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]


#: the dtypes a saved model may have (bfloat16 only in .safetensors files: .npy has no bfloat16)
_MODEL_DTYPES = ("float32", "float64", "float16", "bfloat16")


# -- archives ---------------------------------------------------------------------------------------
def _host_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    cp = _cupy()
    if cp is not None and isinstance(value, cp.ndarray):
        value = value.get()
    arr = np.asarray(value)
    if arr.dtype.name == "bfloat16":  # .npy has no bfloat16 (it would read back as raw 2-byte voids)
        raise ArgumentError(f"{what}: a bfloat16 array cannot go into a .npz archive; save to a .safetensors "
                            f"path (bfloat16 round-trips bit-exactly there), or convert with .float() first")
    if arr.dtype.kind not in "biufc":
        raise ArgumentError(f"{what}: arrays must be numeric (bool, int, float, complex), got dtype {arr.dtype}")
    return arr


def _write_npz(f: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as an uncompressed ``.npz`` zip, as ``np.savez`` does (without its keyword
    arguments, so any array name works, and never pickling). A separate function so tests can simulate
    a failure in the middle of a write."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def write_archive(path: PathLike, arrays: dict[str, Any], meta: dict) -> None:
    """Write ``arrays`` (name -> array) and the JSON document ``meta`` to ``path`` atomically.

    The file is complete or not there: it is written to a temporary file in the same directory,
    flushed and fsynced, then renamed over ``path`` (and the directory fsynced). On any error the
    previous file at ``path`` is left as it was and the temporary file is removed.
    """
    path = os.fspath(path)
    host: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"write_archive: array names must be non-empty strings, got {name!r}")
        if name == META_KEY:
            raise ArgumentError(f"write_archive: the array name {META_KEY!r} is reserved for the meta document")
        host[name] = _host_array(value, f"write_archive({path!r}): array {name!r}")
    try:
        text = json.dumps(meta, allow_nan=True, sort_keys=False)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"write_archive({path!r}): meta is not JSON-serialisable: {e}") from e
    host[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    try:
        with atomic_open(path, "wb", durable=True) as f:
            _write_npz(f, host)
    except OSError as e:
        raise ModelFormatError(f"cannot write {path}: {e.strerror or e}") from e


def _file_head(path: str, n: int = 8) -> bytes:
    """The first ``n`` bytes of ``path`` (for messages about what a file is)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def read_archive(path: PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the meta document of a file written by :func:`write_archive`.

    Anything wrong with the file (missing, not a zip, truncated, corrupt, no ``__meta__``, bad JSON, an
    object/pickled array) raises :class:`ModelFormatError` naming the file and the problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFormatError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a directory, not a gpucnn file")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as e:
        # NumPy takes anything that is neither a zip nor a .npy for a pickle: only call it one when it
        # starts like one (protocol 2+: 0x80), so random bytes are not reported as "pickled data".
        if "pickle" in str(e).lower() and _file_head(path)[:1] == b"\x80":
            raise ModelFormatError(f"{path}: holds pickled data, which gpucnn never loads (not a gpucnn file)") from e
        raise ModelFormatError(f"{path}: not a gpucnn file (neither a zip archive of arrays nor a .npy array; "
                               f"it starts with {_file_head(path)!r})") from e
    except Exception as e:  # OSError, EOFError, BadZipFile, ...: the file cannot even be opened as npz
        raise ModelFormatError(f"{path}: not a gpucnn file or corrupt ({type(e).__name__}: {e})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ModelFormatError(f"{path}: is a single .npy array, not a gpucnn archive (.npz with a meta document)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with npz:
            names = list(npz.files)
            if META_KEY not in names:
                raise ModelFormatError(f"{path}: missing the {META_KEY!r} entry (not a gpucnn file, or written "
                                       f"by another program)")
            for name in names:
                try:
                    arrays[name] = npz[name]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise ModelFormatError(f"{path}: entry {name!r} is an object array (pickled data), "
                                               f"which gpucnn never loads") from e
                    raise ModelFormatError(f"{path}: entry {name!r} is corrupt ({e})") from e
    except ModelFormatError:
        raise
    except Exception as e:  # BadZipFile (bad CRC, truncated member), zlib.error, EOFError, OSError, ...
        raise ModelFormatError(f"{path}: corrupt or truncated file ({type(e).__name__}: {e})") from e
    raw = arrays.pop(META_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFormatError(f"{path}: the {META_KEY!r} entry is not a JSON document (dtype {raw.dtype}, "
                               f"shape {raw.shape})")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFormatError(f"{path}: the meta document is not valid JSON ({type(e).__name__}: {e})") from e
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: the meta document must be a JSON object, got {type(meta).__name__}")
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biufc":
            raise ModelFormatError(f"{path}: entry {name!r} has dtype {arr.dtype}, expected a numeric array")
    return arrays, meta


# -- nested state (checkpoints) ----------------------------------------------------------------------
_MARKERS = ("__array__", "__tensor__", "__scalar__", "__tuple__", "__items__")


def pack_state(tree: Any, what: str = "pack_state") -> tuple[Any, dict[str, np.ndarray]]:
    """Split a nested structure into a JSON tree and named host arrays (for :func:`write_archive`).

    Handles dicts (any JSON-able keys: str, int, float, bool, None, tuples of those), lists, tuples,
    NumPy/CuPy arrays, Tensors (Parameters stay Parameters), NumPy scalars, Python ints/floats (inf/nan
    too), bools, strings and None. Arrays are named ``t0``, ``t1``, ... in the returned dict;
    :func:`unpack_state` reverses it (Tensors come back on the cpu or the given device, arrays as NumPy
    arrays, tuples as tuples, dicts in their order). ``what`` starts the error messages.
    """
    from .nn.module import Parameter

    arrays: dict[str, np.ndarray] = {}

    def new_name() -> str:
        return f"t{len(arrays)}"

    def pack(obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, numbers.Integral) and not isinstance(obj, np.generic):
            return int(obj)
        if isinstance(obj, float):
            return obj
        if isinstance(obj, Tensor):
            name = new_name()
            arrays[name] = _host_array(obj, f"{what}: {where}")
            packed = {"__tensor__": name, "requires_grad": bool(obj.requires_grad)}
            return {**packed, "parameter": True} if isinstance(obj, Parameter) else packed
        if isinstance(obj, np.generic):
            name = new_name()
            arrays[name] = _host_array(np.asarray(obj), f"{what}: {where}")
            return {"__scalar__": name}
        cp = _cupy()
        if isinstance(obj, np.ndarray) or (cp is not None and isinstance(obj, cp.ndarray)):
            name = new_name()
            arrays[name] = _host_array(obj, f"{what}: {where}")
            return {"__array__": name}
        if isinstance(obj, tuple):
            return {"__tuple__": [pack(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [pack(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and not any(k in _MARKERS for k in obj):
                return {k: pack(v, f"{where}[{k!r}]") for k, v in obj.items()}
            return {"__items__": [[pack_key(k, where), pack(v, f"{where}[{k!r}]")] for k, v in obj.items()]}
        hint = ("; it has a state_dict(): store its state_dict() instead" if callable(getattr(obj, "state_dict", None))
                else "; use dicts, lists, tuples, arrays, tensors, numbers, strings and None")
        raise ArgumentError(f"{what}: cannot store a {type(obj).__name__} (at {where}){hint}")

    def pack_key(k: Any, where: str) -> Any:
        if k is None or isinstance(k, (bool, str, float)) or (isinstance(k, numbers.Integral)):
            return int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k
        if isinstance(k, tuple):
            return {"__tuple__": [pack_key(v, where) for v in k]}
        raise ArgumentError(f"{what}: cannot store a dict key of type {type(k).__name__} (at {where})")

    return pack(tree, "state"), arrays


def unpack_state(meta_tree: Any, arrays: dict[str, np.ndarray], device: DeviceLike = "cpu") -> Any:
    """Rebuild what :func:`pack_state` split, with the tensors on ``device``. A malformed tree or a
    missing array -> ModelFormatError."""
    from .nn.module import Parameter
    from .tensor import tensor

    def array(name: Any, where: str) -> np.ndarray:
        if not isinstance(name, str) or name not in arrays:
            raise ModelFormatError(f"saved state: {where} refers to array {name!r}, which is not in the file")
        return arrays[name]

    def unpack(obj: Any, where: str) -> Any:
        if isinstance(obj, list):
            return [unpack(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if not isinstance(obj, dict):
            return obj
        if "__array__" in obj:
            return array(obj["__array__"], where)
        if "__tensor__" in obj:
            a = array(obj["__tensor__"], where)
            req = bool(obj.get("requires_grad", False)) and is_floating_point(a.dtype)
            t = tensor(a, device=device, requires_grad=req)
            return Parameter(t, requires_grad=req) if obj.get("parameter") is True else t
        if "__scalar__" in obj:
            a = array(obj["__scalar__"], where)
            return a[()] if a.ndim == 0 else a
        if "__tuple__" in obj:
            items = obj["__tuple__"]
            if not isinstance(items, list):
                raise ModelFormatError(f"saved state: {where} is a malformed tuple")
            return tuple(unpack(v, f"{where}[{i}]") for i, v in enumerate(items))
        if "__items__" in obj:
            items = obj["__items__"]
            if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
                raise ModelFormatError(f"saved state: {where} is a malformed dict")
            out = {}
            for k, v in items:
                key = unpack(k, where)
                try:
                    out[key] = unpack(v, f"{where}[{key!r}]")
                except TypeError as e:  # an unhashable key
                    raise ModelFormatError(f"saved state: {where} has an invalid key {key!r}") from e
            return out
        return {k: unpack(v, f"{where}[{k!r}]") for k, v in obj.items()}

    try:
        return unpack(meta_tree, "state")
    except RecursionError:
        raise ModelFormatError("saved state: nested too deeply") from None


# -- models -------------------------------------------------------------------------------------------
def _json_value(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"save: {what} must be JSON-serialisable (numbers, strings, lists, dicts): {e}") from e


def _shape_list(value: Any) -> Optional[list[int]]:
    if value is None:
        return None
    return [int(v) for v in value]


_PICKLE_SUFFIXES = (".pt", ".pth")


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _is_gpucnn_archive(path: str) -> bool:
    """Whether ``path`` is a zip holding gpucnn's meta document (a gpucnn file, whatever its name)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return META_KEY + ".npy" in zf.namelist()
    except Exception:  # not a zip, unreadable, ...: not one of ours
        return False


def refuse_pickle_path(path: str) -> None:
    """A ``.pt``/``.pth`` file that is not a gpucnn archive is a PyTorch pickle: refused (loading a
    pickle can run code), pointing at safetensors. (``gpucnn.save(obj, "ckpt.pt")`` writes gpucnn's
    own archive, as for any name but ``.safetensors``, and that file loads.)"""
    if _suffix(path) in _PICKLE_SUFFIXES and os.path.isfile(path) and not _is_gpucnn_archive(path):
        raise ModelFormatError(
            f"{path}: a .pt/.pth file from PyTorch is a Python pickle, which gpucnn never loads (loading one can "
            f"run code); use safetensors: in PyTorch, safetensors.torch.save_file(model.state_dict(), "
            f"'model.safetensors'), then gpucnn.load_state_dict_from('model.safetensors'); in gpucnn, "
            f"gpucnn.save(model, 'model.safetensors')")


def model_meta(model: Any, metadata: Optional[dict] = None) -> dict:
    """The meta document :func:`save` stores with a model (architecture, dtype, input shape, classes,
    name, ``metadata``); also what a ``.safetensors`` model file carries in its header."""
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise ArgumentError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    metadata = _json_value(metadata, "metadata")
    try:
        config = model.to_config()
    except ArgumentError as e:
        raise ArgumentError(f"save: {e}; or save only its weights: gpucnn.save(model.state_dict(), path), "
                            f"then model.load_state_dict(gpucnn.load(path))") from e
    architecture = _json_value(config, "the architecture (config())")
    input_shape = metadata.get("input_shape", getattr(model, "input_shape", None))
    classes = metadata.get("classes", getattr(model, "classes", None))
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None and isinstance(classes, (list, tuple)):
        num_classes = len(classes)
    try:
        input_shape = _shape_list(input_shape)
        if input_shape is not None and not all(d >= 1 for d in input_shape):
            raise ValueError
    except (TypeError, ValueError):
        raise ArgumentError(f"save: input_shape must be a sequence of positive sizes, got {input_shape!r}") from None
    name = getattr(model, "name", None)
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "architecture": architecture,
        "dtype": str(model.dtype),
        "input_shape": input_shape,
        "num_classes": None if num_classes is None else int(num_classes),
        "classes": _json_value(list(classes), "classes") if classes is not None else None,
        "name": name if isinstance(name, str) else None,
        "metadata": metadata,
    }


def save(obj: Any, path: PathLike, metadata: Optional[dict] = None) -> None:
    """Save ``obj`` to ``path``, like ``torch.save``: one ``.npz`` file, written atomically, no pickle.

    **A model** (a :class:`gpucnn.nn.Module`): its architecture + weights + ``metadata``; :func:`load`
    gives the model back, built. The architecture is the model's config tree, so the model (and every
    layer in it) must be a registered layer (every built-in layer and model is; for your own Module
    subclass, register it or save its ``state_dict()``). ``metadata`` is any JSON-serialisable dict (e.g.
    training history); the model's ``input_shape``, ``num_classes``, ``classes`` and ``name`` attributes,
    where set, are stored too (``metadata["classes"]`` and ``metadata["input_shape"]``, where given,
    override the model's attributes). :func:`load_metadata` reads the metadata back.

    **A ``.safetensors`` path** writes a safetensors file instead (PyTorch's state_dict names and layouts;
    a model's architecture and metadata in its header; a dict must be flat: name -> tensor). Any other
    name (``.pt`` too, for PyTorch habits) gets gpucnn's ``.npz`` archive, never a pickle.

    **Anything else is a state tree**: dicts, lists and tuples of Tensors, NumPy arrays and scalars,
    numbers (inf and nan too), bools, strings and None, e.g. ``model.state_dict()``,
    ``optimizer.state_dict()``, ``scheduler.state_dict()`` or ``{"model": ..., "optimizer": ...,
    "epoch": 3}``. :func:`load` gives back the same tree: dicts in their order (keys of any of those
    scalar types), lists as lists, tuples as tuples (as PyTorch does), Tensors as Tensors (Parameters as
    Parameters, ``requires_grad`` kept), arrays as NumPy arrays. Anything else (an optimizer object, a
    function) raises :class:`ArgumentError` naming where it is in the tree.
    """
    from .nn.module import Module

    path = os.fspath(path)
    if _suffix(path) == ".safetensors":
        from . import safetensors_io
        return safetensors_io.save(obj, path, metadata)
    if not isinstance(obj, Module):
        if metadata is not None:
            raise ArgumentError("save: metadata= goes with a model; with a state tree, put it in the tree "
                                "(e.g. {'model': model.state_dict(), 'metadata': {...}})")
        tree, arrays = pack_state(obj, what="save")
        write_archive(path, arrays, {"format": STATE_FORMAT, "version": STATE_VERSION, "state": tree})
        return
    meta = model_meta(obj, metadata)
    arrays = {name: _host_array(t, f"save: {name}") for name, t in obj.state_dict().items()}
    write_archive(path, arrays, meta)


def _check_version(path: str, meta: dict, latest: int) -> None:
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{path}: invalid format version {version!r} (expected an integer >= 1)")
    if version > latest:
        raise ModelFormatError(f"{path} was written by a newer gpucnn (format version {version}; this gpucnn reads "
                               f"up to {latest}); upgrade gpucnn")


def _check_model_meta(path: str, meta: dict) -> None:
    fmt = meta.get("format")
    if fmt == STATE_FORMAT:
        raise ModelFormatError(f"{path}: holds a saved state (gpucnn.save of a dict, e.g. a state_dict), not a "
                               f"model: load it with gpucnn.load(path), then model.load_state_dict(...)")
    if fmt != MODEL_FORMAT:
        raise ModelFormatError(f"{path}: not a gpucnn model file (format {fmt!r}, expected {MODEL_FORMAT!r})"
                               + ("; it is a training checkpoint: resume training from it, or load a model "
                                  "saved with gpucnn.save" if isinstance(fmt, str) and "checkpoint" in fmt else ""))
    _check_version(path, meta, MODEL_VERSION)
    if not isinstance(meta.get("architecture"), dict):
        raise ModelFormatError(f"{path}: the 'architecture' entry is missing or not a layer table")
    dtype = meta.get("dtype", "float32")
    if dtype not in _MODEL_DTYPES:
        raise ModelFormatError(f"{path}: 'dtype' must be one of {', '.join(map(repr, _MODEL_DTYPES))}, got {dtype!r}")
    shape = meta.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and 0 < len(shape) <= 8 and all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 2 ** 31 for d in shape)):
        raise ModelFormatError(f"{path}: 'input_shape' must be a list of positive sizes, got {shape!r}")
    nc = meta.get("num_classes")
    if nc is not None and not (isinstance(nc, int) and not isinstance(nc, bool) and nc >= 1):
        raise ModelFormatError(f"{path}: 'num_classes' must be a positive integer or null, got {nc!r}")
    classes = meta.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, (str, int)) for c in classes)):
        raise ModelFormatError(f"{path}: 'classes' must be a list of class names, got {classes!r}")
    if meta.get("metadata") is not None and not isinstance(meta["metadata"], dict):
        raise ModelFormatError(f"{path}: 'metadata' must be a JSON object")
    name = meta.get("name")
    if name is not None and not isinstance(name, str):
        raise ModelFormatError(f"{path}: 'name' must be a string or null")


def read_model_meta(path: PathLike) -> dict:
    """The whole meta document of a saved model (format checked), without building the model."""
    path = os.fspath(path)
    refuse_pickle_path(path)
    if _suffix(path) == ".safetensors":
        from . import safetensors_io
        meta = safetensors_io.read_model_meta(path)
    else:
        _, meta = read_archive(path)
    _check_model_meta(path, meta)
    return meta


def load_metadata(path: PathLike) -> dict:
    """The ``metadata`` dict a model was saved with, plus ``input_shape``, ``classes``, ``num_classes``
    and ``name`` from the file where the metadata does not have them (format checked; nothing built)."""
    meta = read_model_meta(path)
    out = dict(meta.get("metadata") or {})
    for key in ("input_shape", "classes", "num_classes", "name"):
        if out.get(key) is None and meta.get(key) is not None:
            out[key] = meta[key]
    return out


def _names(names: list, limit: int = 10) -> str:
    text = ", ".join(str(n) for n in names[:limit])
    return text + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _load_device(device: DeviceLike, map_location: Any) -> Any:
    """The device of ``load``'s ``device=`` or torch-style ``map_location=`` (a device name or Device)."""
    from .backend import get_device

    if map_location is None:
        return get_device("cpu" if device is None else device)
    if callable(map_location) or isinstance(map_location, dict):
        raise ArgumentError(f"load: map_location must be a device ('cpu', 'cuda', 'emu'), got a "
                            f"{type(map_location).__name__} (a dict or function of storages is PyTorch's only)")
    target = get_device(map_location)
    if device is not None and get_device(device) != target:
        raise ArgumentError(f"load: device={device!r} and map_location={map_location!r} disagree; give one")
    return target


def load(path: PathLike, device: DeviceLike = None, map_location: Any = None, *,
         weights_only: Optional[bool] = None) -> Any:
    """Load what :func:`save` wrote, like ``torch.load``: a model (built, on ``device``, in eval mode;
    see :func:`load_model`) or a state tree (its tensors on ``device``; NumPy arrays stay NumPy arrays).

    ``device`` (default cpu) and ``map_location`` (PyTorch's name; a device name or Device) are the
    same. ``weights_only`` is accepted for PyTorch's sake: a gpucnn file holds only arrays and JSON,
    never code, so every load is weights-only. A ``.safetensors`` path gives the model when the file
    carries gpucnn's architecture, else its state dict (name -> Tensor; e.g. a file PyTorch wrote). A
    ``.pt``/``.pth`` file that is not a gpucnn archive is refused (a PyTorch pickle: use safetensors).
    Errors: :class:`ModelFormatError` naming the file.
    """
    del weights_only  # (every load is weights-only: see above)
    path = os.fspath(path)
    refuse_pickle_path(path)
    dev = _load_device(device, map_location)
    if _suffix(path) == ".safetensors":
        from . import safetensors_io
        return safetensors_io.load(path, dev)
    arrays, meta = read_archive(path)
    if meta.get("format") == STATE_FORMAT:
        _check_version(path, meta, STATE_VERSION)
        if "state" not in meta:
            raise ModelFormatError(f"{path}: the saved state has no 'state' entry; the file is damaged")
        try:
            return unpack_state(meta["state"], arrays, dev)
        except ModelFormatError as e:
            raise ModelFormatError(f"{path}: {e}") from None
    return _build_model(path, arrays, meta, dev)


def load_model(path: PathLike, device: DeviceLike = "cpu") -> Any:
    """Load a model saved with :func:`save`, on ``device``, in eval mode (a file holding a state tree is
    a :class:`ModelFormatError`, for callers that need a model).

    Checks, in order, each raising :class:`ModelFormatError` naming the file: the archive is readable;
    the format name and version (a newer version asks to upgrade gpucnn); the architecture against the
    layer registry and its schema (before anything is built); then the tensors: missing and extra names,
    shapes and dtypes. The model gets ``input_shape``, ``num_classes``, ``classes``, ``name`` and
    ``metadata`` attributes from the file.
    """
    from .backend import get_device

    path = os.fspath(path)
    refuse_pickle_path(path)
    dev = get_device(device)
    if _suffix(path) == ".safetensors":
        from . import safetensors_io
        return safetensors_io.load_model(path, dev)
    arrays, meta = read_archive(path)
    return _build_model(path, arrays, meta, dev)


def _build_model(path: str, arrays: dict[str, np.ndarray], meta: dict, dev: Any) -> Any:
    """The model that ``meta`` (a saved model's meta document) describes, with the weights ``arrays``
    (checked against it), on ``dev``, in eval mode (see :func:`load_model`)."""
    from . import models  # noqa: F401  (registers the built-in model classes, e.g. UNet)
    from .nn import init
    from .nn.registry import build_from_config, validate_config

    _check_model_meta(path, meta)
    architecture = meta["architecture"]
    try:
        validate_config(architecture, "")
    except ModelFormatError as e:
        raise ModelFormatError(f"{path}: architecture: {e}") from e
    except RecursionError:
        raise ModelFormatError(f"{path}: architecture: nested too deeply") from None
    # Building allocates the parameters: a file may not make us allocate much more than it stores (a
    # missing tensor should still be reported as missing, hence the slack).
    stored = sum(int(a.size) for a in arrays.values())
    budget = 2 * stored + 2 ** 22
    try:
        with init.skip_init(max_elements=budget, source=path):
            model = build_from_config(architecture, "")
    except ModelFormatError as e:
        msg = str(e)
        raise ModelFormatError(msg if msg.startswith(path) else f"{path}: architecture: {msg}") from e
    except (GpucnnError, TypeError, ValueError, OverflowError, MemoryError, RecursionError) as e:
        raise ModelFormatError(f"{path}: architecture cannot be built: {type(e).__name__}: {e}") from e
    dtype = dtypes.as_dtype(meta.get("dtype", "float32"))
    if dtype != np.float32:
        model.to(dtype=dtype)

    own = model.state_dict()
    missing = [k for k in own if k not in arrays]
    extra = [k for k in arrays if k not in own]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor{'s' if len(missing) != 1 else ''}: {_names(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected tensor{'s' if len(extra) != 1 else ''}: {_names(extra)}")
    for key, target in own.items():
        if key not in arrays:
            continue
        a = arrays[key]
        if tuple(a.shape) != target.shape:
            problems.append(f"tensor {key!r} has shape {tuple(a.shape)}, the architecture needs {target.shape}")
        elif a.dtype != target.dtype:
            problems.append(f"tensor {key!r} has dtype {a.dtype}, expected {target.dtype}")
    if problems:
        shown = problems[:12] + ([f"... ({len(problems) - 12} more problems)"] if len(problems) > 12 else [])
        raise ModelFormatError(f"{path}: the weights do not match the architecture: " + "; ".join(shown))
    model.load_state_dict(arrays, strict=True)
    model.to(dev)
    model.eval()
    shape = meta.get("input_shape")
    model.input_shape = tuple(shape) if shape is not None else None
    model.num_classes = meta.get("num_classes")
    model.classes = meta.get("classes")
    model.name = meta.get("name")
    model.metadata = meta.get("metadata") or {}
    return model


build_model_from = _build_model  # (for gpucnn.safetensors_io)

__all__ = ["save", "load", "load_model", "model_meta", "refuse_pickle_path", "load_metadata", "read_model_meta",
           "write_archive", "read_archive",
           "pack_state", "unpack_state", "MODEL_FORMAT", "MODEL_VERSION", "STATE_FORMAT", "STATE_VERSION"]
