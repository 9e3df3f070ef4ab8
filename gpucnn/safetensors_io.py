"""safetensors files: weights that PyTorch (and Hugging Face tooling) load without running code.

A safetensors file is an 8-byte little-endian header length, a JSON header (name -> dtype, shape,
data_offsets; an optional ``__metadata__`` of strings), then the raw little-endian bytes. The
``safetensors`` library (Rust) writes the files and validates every file before we touch its bytes
(header length inside the file, offsets in range, contiguous and not overlapping, sizes matching the
shapes); this module adds the dtypes NumPy spells differently (bfloat16 through ml_dtypes), atomic
writes, and errors that name the file and the tensor.

Names and layouts are PyTorch's state_dict ones (``0.weight`` of shape (out, in, kh, kw),
``1.running_mean``, ``1.num_batches_tracked`` an int64 scalar), so for the equivalent PyTorch model
``torch_model.load_state_dict(safetensors.torch.load_file(path), strict=True)`` works.

A model's file also carries, in ``__metadata__``, ``"format": "pt"`` (what Hugging Face tooling looks
for) and ``"gpucnn-model"``: the JSON meta document of :func:`gpucnn.save`'s ``.npz`` (architecture,
dtype, input shape, classes, ...), so :func:`gpucnn.load` rebuilds the model from the file alone.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any, Mapping, Optional, Union

import numpy as np

from .atomic import atomic_open
from .backend import _cupy
from .dtypes import bfloat16
from .errors import ArgumentError, ModelFormatError
from .tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]

#: the ``__metadata__`` key holding a saved model's meta document (JSON text)
MODEL_KEY = "gpucnn-model"

#: safetensors dtype names <-> NumPy dtypes (the ones gpucnn's tensors can hold, plus unsigned ints)
_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16), "I16": np.dtype(np.int16), "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32), "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16), "BF16": bfloat16, "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
}
_NAMES = {dt: name for name, dt in _DTYPES.items()}


def _array(value: Any, where: str) -> np.ndarray:
    """A C-contiguous little-endian host array of a supported dtype (the library reads raw pointers)."""
    if isinstance(value, Tensor):
        value = value.data
    cp = _cupy()
    if cp is not None and isinstance(value, cp.ndarray):
        value = value.get()
    if not isinstance(value, np.ndarray):
        raise ArgumentError(f"{where}: expected a Tensor or an array, got {type(value).__name__}")
    if value.dtype.newbyteorder("=") not in _NAMES:
        raise ArgumentError(f"{where}: safetensors cannot hold dtype {value.dtype} (supported: "
                            f"{', '.join(str(d) for d in _NAMES)})")
    value = value.astype(value.dtype.newbyteorder("<"), copy=False)
    return value if value.flags.c_contiguous else value.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


def save_file(tensors: Mapping[str, Any], path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write ``tensors`` (name -> Tensor or array) and string ``metadata`` to ``path`` as safetensors,
    atomically (a crash or an error leaves any previous file intact)."""
    from safetensors.numpy import save as _serialize

    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ArgumentError(f"save({path!r}): tensor names must be non-empty strings other than "
                                f"'__metadata__', got {name!r}")
        arrays[name] = _array(value, f"save({path!r}): tensor {name!r}")
    meta = None
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ArgumentError(f"save({path!r}): safetensors metadata must map strings to strings")
        meta = dict(metadata)
    data = _serialize(arrays, metadata=meta)
    try:
        with atomic_open(path, "wb", durable=True) as f:
            f.write(data)
    except OSError as e:
        raise ModelFormatError(f"cannot write {path}: {e.strerror or e}") from e


def read_file(path: PathLike) -> tuple["OrderedDict[str, np.ndarray]", dict[str, str]]:
    """The tensors (name -> writable NumPy array, in file order) and the ``__metadata__`` of a
    safetensors file. Anything wrong with the file (missing, truncated, a header length past the end,
    overlapping or out-of-range offsets, a dtype gpucnn has no array type for) raises
    :class:`ModelFormatError` naming the file; nothing is ever executed."""
    from safetensors import deserialize

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFormatError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a directory, not a safetensors file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read: {e.strerror or e}") from e
    if len(data) < 8:
        raise ModelFormatError(f"{path}: not a safetensors file: {len(data)} bytes, shorter than the 8-byte "
                               f"header length")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ModelFormatError(f"{path}: not a safetensors file or truncated: the header length {header_len} "
                               f"runs past the end of the file ({len(data)} bytes)")
    try:
        entries = deserialize(data)  # the library's validation of the header and every offset
    except BaseException as e:  # SafetensorError; a Rust panic arrives as a BaseException subclass
        if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise ModelFormatError(f"{path}: not a valid safetensors file ({type(e).__name__}: {e})") from None
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # (the library accepted it, so this is unexpected)
        raise ModelFormatError(f"{path}: the safetensors header is not JSON ({e})") from None
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFormatError(f"{path}: the safetensors __metadata__ must map strings to strings")
    order = {name: info["data_offsets"][0] for name, info in header.items() if name != "__metadata__"}
    arrays: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, info in sorted(entries, key=lambda e: order.get(e[0], 0)):
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelFormatError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which gpucnn cannot hold "
                                   f"(supported: {', '.join(_DTYPES)})")
        shape = tuple(int(d) for d in info["shape"])
        raw = info["data"]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(raw) != expected:  # (the library checks this; a second look costs nothing)
            raise ModelFormatError(f"{path}: tensor {name!r} holds {len(raw)} bytes, its shape {shape} and "
                                   f"dtype {info['dtype']} need {expected}")
        arrays[name] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    return arrays, dict(metadata)


def load_state_dict_from(path: PathLike) -> "OrderedDict[str, np.ndarray]":
    """Name -> NumPy array of a safetensors file (written by PyTorch's ``safetensors.torch.save_file``,
    by Hugging Face tooling or by gpucnn), for ``model.load_state_dict(..., strict=True)``, which lists
    every missing, unexpected or mis-shaped name. A gpucnn ``.npz`` (a saved model or a saved flat
    state dict) is read too. A ``.pt``/``.pth`` file is refused: those are pickles, which can run code."""
    from .serialization import load, refuse_pickle_path

    path = os.fspath(path)
    refuse_pickle_path(path)
    if not path.lower().endswith(".safetensors"):  # a gpucnn archive (load() names anything else it finds)
        obj = load(path)
        state = obj.state_dict() if hasattr(obj, "state_dict") else obj
        if not isinstance(state, Mapping) or not all(isinstance(v, (Tensor, np.ndarray)) for v in state.values()):
            raise ModelFormatError(f"{path}: holds a nested saved state, not a model or a flat state dict")
        return OrderedDict((k, v.numpy() if isinstance(v, Tensor) else v) for k, v in state.items())
    arrays, _ = read_file(path)
    return arrays


def save(obj: Any, path: PathLike, metadata: Optional[dict] = None) -> None:
    """:func:`gpucnn.save` for a ``.safetensors`` path: a model (its state_dict under PyTorch's names,
    its architecture and ``metadata`` in the header) or a flat dict of name -> Tensor/array."""
    from .nn.module import Module
    from .serialization import model_meta

    path = os.fspath(path)
    if isinstance(obj, Module):
        meta = model_meta(obj, metadata)
        save_file(obj.state_dict(), path, {"format": "pt", MODEL_KEY: json.dumps(meta)})
        return
    if metadata is not None:
        raise ArgumentError("save: metadata= goes with a model; a state dict is saved as it is")
    if not isinstance(obj, Mapping) or not all(isinstance(v, (Tensor, np.ndarray)) for v in obj.values()):
        raise ArgumentError(f"save({path!r}): a .safetensors file holds a model or a flat dict of name -> tensor "
                            f"(e.g. model.state_dict()), got {type(obj).__name__}"
                            + (" with non-tensor values" if isinstance(obj, Mapping) else "")
                            + "; save nested state (optimizer, checkpoints) as .npz")
    save_file(obj, path, {"format": "pt"})


def load(path: PathLike, device: Any) -> Any:
    """:func:`gpucnn.load` for a ``.safetensors`` path: the model when the file carries gpucnn's
    architecture (built, on ``device``, in eval mode), else the state dict (name -> Tensor on
    ``device``), e.g. for a file PyTorch wrote."""
    from .serialization import build_model_from

    path = os.fspath(path)
    arrays, metadata = read_file(path)
    if MODEL_KEY in metadata:
        return build_model_from(path, arrays, _model_meta(path, metadata), device)
    from .tensor import tensor
    return OrderedDict((k, tensor(a, device=device)) for k, a in arrays.items())


def load_model(path: PathLike, device: Any) -> Any:
    """:func:`gpucnn.serialization.load_model` for a ``.safetensors`` path (a file without gpucnn's
    architecture, e.g. one PyTorch wrote, is a ModelFormatError saying how to load its weights)."""
    from .serialization import build_model_from

    path = os.fspath(path)
    arrays, metadata = read_file(path)
    if MODEL_KEY not in metadata:
        raise ModelFormatError(f"{path}: holds weights only (no gpucnn architecture in its metadata): build the "
                               f"model, then model.load_state_dict(gpucnn.load_state_dict_from({path!r}))")
    return build_model_from(path, arrays, _model_meta(path, metadata), device)


def read_model_meta(path: PathLike) -> dict:
    """The meta document of a model saved as safetensors (unchecked; the caller checks it)."""
    path = os.fspath(path)
    _, metadata = read_file(path)
    if MODEL_KEY not in metadata:
        raise ModelFormatError(f"{path}: not a gpucnn model (no {MODEL_KEY!r} entry in its metadata)")
    return _model_meta(path, metadata)


def _model_meta(path: str, metadata: dict[str, str]) -> dict:
    try:
        meta = json.loads(metadata[MODEL_KEY])
    except (ValueError, RecursionError) as e:
        raise ModelFormatError(f"{path}: the {MODEL_KEY!r} metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: the {MODEL_KEY!r} metadata must be a JSON object")
    return meta


__all__ = ["save_file", "read_file", "load_state_dict_from", "save", "load", "load_model", "MODEL_KEY"]
