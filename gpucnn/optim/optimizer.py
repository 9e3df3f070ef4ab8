"""`Optimizer`: the base class of gpucnn's optimizers (PyTorch semantics, no pickle).

An optimizer holds *parameter groups*: dicts with a ``"params"`` list of tensors plus that group's
hyper-parameters (``lr``, ``momentum``, ...). Per-parameter state (``step`` and arrays such as
``momentum_buffer``) lives in :attr:`Optimizer.state`, keyed by the parameter tensor.

Updates work on the raw arrays with the parameter's array module (``param.device.xp``: NumPy or CuPy)
and change ``param.data`` in place, so references to the array stay valid. Hyper-parameters are read as
Python floats, so NumPy 2's scalar rules keep float32 parameters (and their state) float32.

:meth:`Optimizer.state_dict` is serialisable without pickle::

    {"param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}, ...],   # JSON-able
     "state": {0: {"step": 3, "momentum_buffer": <array>}, ...}}                     # arrays + ints

Parameters are numbered across the groups in order; ``state`` is keyed by those numbers (ints, or the
same numbers as strings after a JSON round trip).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Callable, Optional

import numpy as np

from ..errors import ArgumentError, DeviceError, ModelFormatError, ShapeError
from ..tensor import Tensor
from ..dtypes import is_floating_point


class _ParamState(MutableMapping):
    """``{param: state dict}`` keyed by the parameter's identity (Tensor's ``==`` is elementwise)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[Tensor, dict[str, Any]]] = {}

    def __getitem__(self, param: Tensor) -> dict[str, Any]:
        return self._items[id(param)][1]

    def __setitem__(self, param: Tensor, value: dict[str, Any]) -> None:
        self._items[id(param)] = (param, value)

    def __delitem__(self, param: Tensor) -> None:
        del self._items[id(param)]

    def __contains__(self, param: object) -> bool:
        return id(param) in self._items

    def __iter__(self) -> Iterator[Tensor]:
        return (p for p, _ in list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<optimizer state of {len(self)} parameters>"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (tuples become lists, NumPy scalars Python numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise ModelFormatError(f"{where} has a value of type {type(value).__name__}, which a state dict "
                           f"cannot hold (parameter-group values must be JSON-able: numbers, strings, lists)")


def _from_json(value: Any) -> Any:
    """Inverse of :func:`_jsonable` for hyper-parameters: lists become tuples (e.g. ``betas``)."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and a pickle-free ``state_dict``.

    Subclasses set :attr:`_buffers` (the names of their per-parameter state arrays), implement
    :meth:`_validate_group` (raise :class:`ArgumentError` via :meth:`_fail`) and :meth:`_update`
    (one parameter's in-place update).
    """

    #: names of the per-parameter state arrays (besides the int ``"step"``)
    _buffers: tuple[str, ...] = ()
    #: of those, the ones every state entry must have
    _required_buffers: tuple[str, ...] = ()

    def __init__(self, params: Any, defaults: Mapping[str, Any]) -> None:
        self.defaults: dict[str, Any] = dict(defaults)
        self.state: _ParamState = _ParamState()
        self.param_groups: list[dict[str, Any]] = []
        self._group_dicts = False
        for group in self._as_groups(params):
            self.add_param_group(group)

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- construction ---------------------------------------------------------------------------
    def _as_groups(self, params: Any) -> list[dict[str, Any]]:
        expected = "an iterable of Tensors (e.g. model.parameters()) or a list of parameter-group dicts"
        if isinstance(params, Tensor):
            raise ArgumentError(f"{self.name}: params must be {expected}, got a single Tensor (pass [tensor])")
        if isinstance(params, (Mapping, str, bytes)) or not isinstance(params, Iterable):
            raise ArgumentError(f"{self.name}: params must be {expected}, got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise ArgumentError(f"{self.name}: params must be an ordered collection (a list), not a set: "
                                f"the order numbers the parameters in state_dict()")
        items = list(params)
        if not items:
            raise ArgumentError(f"{self.name}: got an empty parameter list (params has no tensors; "
                                f"did the model create its layers?)")
        n_dicts = sum(isinstance(p, Mapping) for p in items)
        if n_dicts == 0:
            return [{"params": items}]
        if n_dicts != len(items):
            raise ArgumentError(f"{self.name}: params mixes Tensors and parameter-group dicts; pass either "
                                f"Tensors or dicts like {{'params': [...], 'lr': 0.1}}")
        self._group_dicts = True
        return [dict(g) for g in items]

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": [...], <hyper-parameter>: value, ...}``; missing hyper-parameters
        take the optimizer's defaults (like PyTorch)."""
        index = len(self.param_groups)
        where = f"{self.name} (parameter group {index})" if self._group_dicts or index else self.name
        if not isinstance(param_group, Mapping):
            raise ArgumentError(f"{where}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ArgumentError(f"{where}: a parameter group needs a 'params' entry (a list of Tensors); "
                                f"it has {sorted(map(str, param_group))}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise ArgumentError(f"{where}: 'params' must be an ordered collection (a list), not a set")
        elif isinstance(params, (Mapping, str, bytes)) or not isinstance(params, Iterable):
            raise ArgumentError(f"{where}: 'params' must be a list of Tensors, got {type(params).__name__}")
        params = list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise ArgumentError(f"{where}: params must be Tensors, got {type(p).__name__} at position {i}")
            if not is_floating_point(p.dtype):
                raise ArgumentError(f"{where}: can only optimize floating-point tensors, the tensor at "
                                    f"position {i} has dtype {p.dtype}")
            if not p.is_leaf:
                raise ArgumentError(f"{where}: can't optimize a non-leaf tensor (position {i}: it was "
                                    f"computed by an op; optimize the tensors it was computed from)")
            if id(p) in seen:
                raise ArgumentError(f"{where}: the tensor at position {i} appears more than once in the "
                                    f"parameters (a parameter may be in only one group, once)")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate_group(group, where)
        self.param_groups.append(group)

    # -- validation helpers ---------------------------------------------------------------------
    def _fail(self, where: str, arg: str, value: Any, expected: str) -> None:
        raise ArgumentError(f"{where}: {arg} must be {expected}, got {_fmt(value)}")

    def _check_real(self, group: Mapping[str, Any], where: str, arg: str, *, low: float = 0.0,
                    low_inclusive: bool = True, high: Optional[float] = None, high_inclusive: bool = False,
                    value: Any = None, label: Optional[str] = None) -> None:
        v = group[arg] if value is None else value
        label = label or arg
        lo = f">= {low:g}" if low_inclusive else f"> {low:g}"
        if high is None:
            expected = f"a number {lo}"
        else:
            expected = f"a number in {'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"
        if not _is_real(v) or math.isnan(float(v)):
            self._fail(where, label, v, expected)
        x = float(v)
        if (x < low if low_inclusive else x <= low):
            self._fail(where, label, v, expected)
        if high is not None and (x > high if high_inclusive else x >= high):
            self._fail(where, label, v, expected)

    def _check_bool(self, group: Mapping[str, Any], where: str, arg: str) -> None:
        v = group[arg]
        if not isinstance(v, (bool, np.bool_)):
            self._fail(where, arg, v, "True or False")

    def _validate_group(self, group: dict[str, Any], where: str) -> None:
        """Raise :class:`ArgumentError` for a bad hyper-parameter; may normalise values in ``group``."""
        self._check_real(group, where, "lr")

    # -- the update -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the parameters' gradients (``.grad = None``; with ``set_to_none=False`` fill with 0)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:  # a fresh array: a gradient may be a read-only or shared view
                    p.grad = Tensor._wrap(p.device.xp.zeros_like(p.data), p.device)

    def _grad_array(self, p: Tensor) -> Any:
        g = p.grad
        if isinstance(g, Tensor):
            if g.device != p.device:
                raise DeviceError(f"{self.name}: a parameter on {p.device} has its gradient on {g.device}")
            data = g.data
        else:  # a bare array
            data = p.device.asarray(g)
        if tuple(data.shape) != tuple(p.data.shape):
            raise ShapeError(f"{self.name}: a parameter of shape {p.shape} has a gradient of shape "
                             f"{tuple(data.shape)}")
        if data.dtype != p.data.dtype:
            data = data.astype(p.data.dtype)
        return data

    def _hyper(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """The group's hyper-parameters as Python scalars (no NumPy float64 scalars: they promote)."""
        out: dict[str, Any] = {}
        for k, v in group.items():
            if k == "params":
                continue
            if isinstance(v, (bool, np.bool_)):
                out[k] = bool(v)
            elif _is_real(v):
                out[k] = float(v)
            elif isinstance(v, (tuple, list)):
                out[k] = tuple(float(x) if _is_real(x) else x for x in v)
            else:
                out[k] = v
        return out

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], hp: dict[str, Any]) -> None:
        raise NotImplementedError

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update every parameter that has a gradient (those with ``.grad is None`` are skipped).

        ``closure`` (optional) re-evaluates the model and returns the loss; it is called first, with
        gradient recording on, and its result is returned.
        """
        loss = None
        if closure is not None:
            from ..function import set_grad_enabled
            with set_grad_enabled(True):
                loss = closure()
        for group in self.param_groups:
            hp = None
            for p in group["params"]:
                if p.grad is None:
                    continue
                if hp is None:
                    hp = self._hyper(group)
                grad = self._grad_array(p)
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(p, grad, state, hp)
        return loss

    # -- state dict -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"param_groups": [JSON-able dicts with "params": [indices]], "state": {index: {...}}}``.

        State arrays are copies (on the parameters' device), so the snapshot does not change as
        training goes on.
        """
        groups = []
        state: dict[int, dict[str, Any]] = {}
        index = 0
        for gi, group in enumerate(self.param_groups):
            packed = {k: _jsonable(v, f"{self.name} parameter group {gi} key {k!r}")
                      for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                ids.append(index)
                if p in self.state:
                    state[index] = {k: (int(v) if k == "step" else v.copy())
                                    for k, v in self.state[p].items() if v is not None}
                index += 1
            packed["params"] = ids
            groups.append(packed)
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict` (from this kind of optimizer,
        over parameters of the same shapes in the same order). Everything is checked before anything
        changes; a mismatch raises :class:`ModelFormatError`. Arrays are copied to each parameter's
        device and dtype."""
        what = f"{self.name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ModelFormatError(f"{what}: expected a dict with 'param_groups' and 'state', "
                                   f"got {type(state_dict).__name__}")
        missing = [k for k in ("param_groups", "state") if k not in state_dict]
        if missing:
            raise ModelFormatError(f"{what}: the state dict lacks {', '.join(map(repr, missing))} (keys: "
                                   f"{sorted(map(str, state_dict))}); is this an optimizer state dict?")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise ModelFormatError(f"{what}: 'param_groups' must be a list of dicts")
        if not isinstance(saved_state, Mapping):
            raise ModelFormatError(f"{what}: 'state' must be a dict, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ModelFormatError(f"{what}: the state dict has {len(saved_groups)} parameter group(s), "
                                   f"this optimizer has {len(self.param_groups)}")

        # Saved parameter numbers map, in order, onto this optimizer's parameters (as in PyTorch).
        id_map: dict[int, tuple[Tensor, int]] = {}
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = saved.get("params")
            if not isinstance(ids, (list, tuple)):
                raise ModelFormatError(f"{what}: parameter group {gi} has no 'params' list of indices")
            if len(ids) != len(group["params"]):
                raise ModelFormatError(f"{what}: parameter group {gi} has {len(ids)} parameter(s) in the "
                                       f"state dict, {len(group['params'])} in this optimizer (is it for "
                                       f"another model?)")
            for i, p in zip(ids, group["params"]):
                key = self._index(i, what)
                if key in id_map:
                    raise ModelFormatError(f"{what}: parameter index {key} appears more than once in "
                                           f"'param_groups'")
                id_map[key] = (p, gi)
            new = dict(group)
            for k, v in saved.items():
                if k != "params":
                    new[str(k)] = _from_json(v)
            where = f"{what}: parameter group {gi}"
            try:
                self._validate_group(new, where)
            except ArgumentError as e:
                raise ModelFormatError(str(e)) from None
            new_groups.append(new)

        new_state: list[tuple[Tensor, dict[str, Any]]] = []
        for raw_key, entry in saved_state.items():
            key = self._index(raw_key, what)
            if key not in id_map:
                raise ModelFormatError(f"{what}: 'state' has an entry for parameter {key}, which is in no "
                                       f"parameter group")
            p, gi = id_map[key]
            where = f"{what}: state of parameter {key} (group {gi}, shape {p.shape})"
            if not isinstance(entry, Mapping):
                raise ModelFormatError(f"{where} must be a dict, got {type(entry).__name__}")
            loaded: dict[str, Any] = {}
            for name, value in entry.items():
                name = str(name)
                if name == "step":
                    loaded["step"] = self._step_value(value, where)
                elif name in self._buffers:
                    loaded[name] = self._buffer_value(p, name, value, where)
                elif value is None:
                    continue
                else:
                    raise ModelFormatError(f"{where}: unknown entry {name!r} ({self.name} keeps "
                                           f"{', '.join(('step',) + self._buffers)}); was the state saved "
                                           f"from another optimizer?")
            lacking = [b for b in self._required_buffers if b not in loaded]
            if lacking and loaded:
                raise ModelFormatError(f"{where}: lacks {', '.join(map(repr, lacking))}; was the state saved "
                                       f"from another optimizer?")
            loaded.setdefault("step", 0)
            new_state.append((p, loaded))

        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = _ParamState()
        for p, s in new_state:
            self.state[p] = s

    @staticmethod
    def _index(raw: Any, what: str) -> int:
        try:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, str):
                key = int(raw)
            elif isinstance(raw, numbers.Integral):
                key = int(raw)
            else:
                raise ValueError
        except ValueError:
            raise ModelFormatError(f"{what}: parameter indices must be integers, got {raw!r}") from None
        return key

    @staticmethod
    def _step_value(value: Any, where: str) -> int:
        v = value
        if hasattr(v, "shape") and getattr(v, "size", 0) == 1:
            v = v.reshape(()).item() if hasattr(v, "reshape") else v
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not float(v).is_integer() or v < 0:
            raise ModelFormatError(f"{where}: 'step' must be a non-negative integer, got {value!r}")
        return int(v)

    @staticmethod
    def _buffer_value(p: Tensor, name: str, value: Any, where: str) -> Any:
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise ModelFormatError(f"{where}: {name!r} must be an array, got {type(value).__name__}")
        if tuple(value.shape) != tuple(p.data.shape):
            raise ModelFormatError(f"{where}: {name!r} has shape {tuple(value.shape)}, the parameter has "
                                   f"shape {p.shape} (is the state dict for another model?)")
        if np.dtype(value.dtype).kind not in "fiu":
            raise ModelFormatError(f"{where}: {name!r} has dtype {value.dtype}, expected a float array")
        arr = p.device.asarray(value, dtype=p.data.dtype)
        if arr is value:
            arr = arr.copy()  # never share memory with the caller's state dict
        return arr

    # -- misc -----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{self.name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)
