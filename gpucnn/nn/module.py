"""`Module` and `Parameter`: the PyTorch-style base of every layer and model.

A :class:`Module` registers the :class:`Parameter` and :class:`Module` objects assigned to its
attributes (and the buffers given to :meth:`Module.register_buffer`), so ``parameters()``,
``state_dict()``, ``to(device)``, ``train()``/``eval()`` reach every layer of a model::

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv2d(1, 8, 3)        # registered as a child module
            self.scale = Parameter(np.ones(1, np.float32))

        def forward(self, x):
            return self.conv(x) * self.scale

Errors: a :class:`gpucnn.GpucnnError` raised while a layer runs is re-raised once, by the innermost
module, with that layer's description in front, e.g.
``Conv2d #3 (32->64, 3x3): conv2d: input has 16 channels, expected 32 (...)``; ``#3`` is the layer's index
in the :class:`Sequential` that was called, or ``'block1.conv2'`` (the attribute path from the module
that was called) for layers deeper down or in other parents. The exception keeps its type and chains
the original (``raise ... from e``).
"""
from __future__ import annotations

import threading
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..backend import DeviceLike, array_device, get_device
from ..errors import ArgumentError, GpucnnError, ModelFormatError
from ..tensor import Tensor
from .. import dtypes
from ..dtypes import is_floating_point


class Parameter(Tensor):
    """A tensor that is a learnable parameter of a :class:`Module` (``requires_grad=True`` by default).

    ``Parameter(data)`` wraps a NumPy/CuPy array (no copy) or takes a Tensor's array and device.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.zeros((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            super().__init__(data.data, data.device, requires_grad=requires_grad)
        else:
            if not (hasattr(data, "shape") and hasattr(data, "dtype")):
                data = np.asarray(data, dtype=np.float32)
            super().__init__(data, array_device(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: "OrderedDict[int, Callable]") -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


# The modules being called, innermost last (per thread): names the failing layer in error messages.
_call_stack = threading.local()


def _stack() -> list:
    s = getattr(_call_stack, "modules", None)
    if s is None:
        s = _call_stack.modules = []
    return s


def _shape_str(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class Module:
    """Base class of layers and models (like ``torch.nn.Module``); subclasses implement ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # -- attribute registration -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign attribute {name!r} before Module.__init__() is called "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            self._forget(name, "_parameters")
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, "_modules")
            modules[name] = value
        elif name in params:
            if value is not None:
                raise ArgumentError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                                    f"{type(self).__name__} (expected a Parameter or None)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise ArgumentError(f"cannot assign a {type(value).__name__} to submodule {name!r} of "
                                    f"{type(self).__name__} (expected a Module or None)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise ArgumentError(f"cannot assign a {type(value).__name__} to buffer {name!r} of "
                                    f"{type(self).__name__} (expected a Tensor or None)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        """Drop ``name`` from the instance dict and every table but ``keep``, which the caller assigns
        next (a replaced entry keeps its place, so state_dict order stays as in PyTorch)."""
        d = self.__dict__
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            if key != keep:
                d[key].pop(name, None)
        d["_non_persistent"].discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered parameters, buffers and modules live here.
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d[key]:
                del d[key][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def _check_name(self, kind: str, name: Any) -> None:
        """PyTorch's rules for the name of a parameter, buffer or submodule (and its error types): a
        string without dots, not empty, not hiding a method or a plain attribute."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__} ({name!r})")
        if "." in name:
            raise KeyError(f"{kind} name cannot contain \".\", got: {name}")
        if not name:
            raise KeyError(f"{kind} name cannot be an empty string")
        d = self.__dict__
        if not any(name in d[key] for key in ("_parameters", "_buffers", "_modules")) and hasattr(self, name):
            raise KeyError(f"attribute {name} already exists in {type(self).__name__} (a {kind} of that name "
                           f"would hide it)")

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` (a :class:`Parameter` or None) under ``name``, like assigning the attribute."""
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentError(f"register_parameter: {name!r} must be a Parameter or None, "
                                f"got {type(param).__name__}")
        self._check_name("parameter", name)
        self._forget(name, "_parameters")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True) -> None:
        """Register a tensor that is state but not a parameter (BatchNorm's running statistics): it moves
        with ``to()``, is saved in ``state_dict()`` (unless ``persistent=False``) and gets no gradient."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        if isinstance(tensor, Parameter):
            raise ArgumentError(f"register_buffer: {name!r} is a Parameter; use register_parameter")
        self._check_name("buffer", name)
        self._forget(name, "_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Register ``module`` (or None) as the child ``name``, like assigning the attribute."""
        if module is not None and not isinstance(module, Module):
            raise ArgumentError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._check_name("module", name)
        self._forget(name, "_modules")
        self._modules[name] = module

    register_module = add_module

    # -- calling ------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        stack = _stack()
        stack.append(self)
        try:
            for hook in list(self._forward_pre_hooks.values()):
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
            out = self.forward(*args, **kwargs)
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
            return out
        except GpucnnError as e:
            if getattr(e, "_gpucnn_labelled", False):
                raise
            label = self._error_label(stack)
            try:
                new = type(e)(f"{label}: {e}")
            except Exception:  # a user's error class with another constructor: keep it as it is
                raise e from None
            new._gpucnn_labelled = True  # type: ignore[attr-defined]
            new.layer = label  # type: ignore[attr-defined]
            raise new from e
        finally:
            stack.pop()

    def _error_label(self, stack: list) -> str:
        """``Conv2d #3 (32->64, 3x3)`` or ``Conv2d 'block1.conv2' (32->64, 3x3)`` for error messages."""
        from .container import Sequential

        names = []
        for parent, child in zip(stack[:-1], stack[1:]):
            for n, m in parent._modules.items():
                if m is child:
                    names.append(n)
                    break
        where = ""
        if len(stack) == 2 and isinstance(stack[0], Sequential) and len(names) == 1:
            where = f" #{names[0]}"  # a layer of the Sequential that was called: its index
        elif names:
            where = f" '{'.'.join(names)}'"
        short = self.short_description()
        return f"{type(self).__name__}{where}" + (f" ({short})" if short else "")

    def short_description(self) -> str:
        """A few words identifying the layer in error messages and summaries, e.g. ``32->64, 3x3``."""
        return ""

    def register_forward_hook(self, hook: Callable[["Module", tuple, Any], Any]) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after each forward; a non-None result replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable[["Module", tuple], Any]) -> RemovableHandle:
        """``hook(module, inputs)`` runs before each forward; a non-None result replaces the inputs."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # -- traversal --------------------------------------------------------------------------------
    def named_modules(self, memo: Optional[set] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> "Module":
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise ArgumentError(f"{type(module).__name__} has no submodule {part!r} (in {target!r})")
            module = child
        return module

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Name -> tensor for every parameter and persistent buffer, keyed like PyTorch (``0.weight``,
        ``1.running_mean``). The tensors share memory with the model (detached unless ``keep_vars``)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        self._save_to_state_dict(out, prefix, keep_vars)
        return out

    def _save_to_state_dict(self, out: "OrderedDict[str, Tensor]", prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m._save_to_state_dict(out, prefix + name + ".", keep_vars)

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> Any:
        """Copy values (Tensors or arrays) into this model's parameters and buffers, in place.

        Missing or unexpected keys (when ``strict``) and shape mismatches (always) raise
        :class:`ModelFormatError` listing them all; nothing is copied then. Values are cast to each
        tensor's dtype. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise ModelFormatError(f"load_state_dict: expected a dict of name -> tensor, "
                                   f"got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing {_plural(len(missing), 'key')}: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected {_plural(len(unexpected), 'key')}: {', '.join(map(str, unexpected))}")
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else value
            if not hasattr(array, "shape"):
                try:
                    array = np.asarray(array)
                except Exception:
                    problems.append(f"{key}: cannot use a {type(value).__name__} as a tensor")
                    continue
            if tuple(array.shape) != target.shape:
                problems.append(f"{key}: shape {_shape_str(tuple(array.shape))} in the state dict, "
                                f"{_shape_str(target.shape)} in the model")
                continue
            dtype = getattr(array, "dtype", np.dtype(np.float32))
            if dtype.kind not in "biuf" and not is_floating_point(dtype):  # (bfloat16's kind is "V")
                problems.append(f"{key}: dtype {array.dtype} is not numeric")
                continue
            values[key] = array
        if problems:
            raise ModelFormatError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key, array in values.items():
            target = own[key]
            target.data[...] = target.device.asarray(array, dtype=target.dtype)
        return _IncompatibleKeys(missing, unexpected)

    # -- modes --------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, (bool, np.bool_)):
            raise ArgumentError(f"train(mode): mode must be True or False, got {mode!r}")
        mode = bool(mode)
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # -- devices and dtypes -------------------------------------------------------------------------
    def to(self, device: DeviceLike = None, dtype: Any = None) -> "Module":
        """Move (and/or cast) every parameter, gradient and buffer IN PLACE; returns ``self``.

        The Parameter objects stay the same, so an optimizer built before ``to()`` still holds them.
        ``dtype`` casts floating-point parameters and buffers only (``num_batches_tracked`` stays int64).
        """
        dev = get_device(device) if device is not None else None
        dt = np.dtype(dtype) if dtype is not None else None
        if dt is not None and not is_floating_point(dt):
            raise ArgumentError(f"Module.to(dtype=...): expected a floating-point dtype, got {dt}")

        def move(t: Tensor) -> None:
            target = dev if dev is not None else t.device
            cast = dt if (dt is not None and is_floating_point(t.dtype)) else t.dtype
            if target == t.device and cast == t.dtype:
                return
            t.data = target.asarray(t.data, dtype=cast)
            t.device = target
            if t.grad is not None:
                t.grad.data = target.asarray(t.grad.data, dtype=cast)
                t.grad.device = target

        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    move(p)
            for b in m._buffers.values():
                if b is not None:
                    move(b)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self) -> "Module":
        return self.to("cuda")

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def half(self) -> "Module":
        return self.to(dtype=dtypes.float16)

    def bfloat16(self) -> "Module":
        return self.to(dtype=dtypes.bfloat16)

    @property
    def device(self) -> Any:
        """The device of the first parameter or buffer (cpu for a module without any)."""
        for t in self._all_tensors():
            return t.device
        return get_device("cpu")

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first floating-point parameter or buffer (float32 for a module without any)."""
        for t in self._all_tensors():
            if is_floating_point(t.dtype):
                return t.dtype
        return np.dtype(np.float32)

    def _all_tensors(self) -> Iterator[Tensor]:
        yield from self.parameters()
        yield from self.buffers()

    # -- counting and description --------------------------------------------------------------------
    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of parameter values (buffers such as BatchNorm running statistics not included)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def summary(self, input_shape: Any = None, batch_size: Optional[int] = None) -> str:
        """A Keras-style table of the layers, their output shapes and parameter counts.

        Runs one forward pass on zeros of shape ``(batch_size or 1, *input_shape)`` in eval mode under
        ``no_grad`` (each module's training flag is restored afterwards), recording each layer's output
        shape with forward hooks. ``input_shape`` defaults to the model's ``input_shape`` attribute.

        Counting follows Keras, as the table does: a layer's ``Param #`` and the totals include its
        persistent floating-point buffers, BatchNorm's running mean and variance (Keras's moving
        statistics), which count as ``Non-trainable params`` together with parameters frozen with
        ``requires_grad=False``: ``BatchNorm2d(64)`` has 256 params, 128 of them non-trainable.
        PyTorch counts only parameters (128), as :meth:`num_parameters` and ``parameters()`` do.
        """
        from .summary import summary
        return summary(self, input_shape, batch_size)

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (the constructor arguments)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        extra = self.extra_repr()
        head = type(self).__name__ + "("
        if not lines:
            return head + extra + ")"
        inner = ([extra] if extra else []) + lines
        return head + "\n  " + "\n  ".join(inner) + "\n)"

    # -- configuration (architecture as data) ---------------------------------------------------------
    def config(self) -> dict:
        """The constructor arguments as a JSON-serialisable dict (see :mod:`gpucnn.nn.registry`)."""
        import inspect

        params = [p for p in inspect.signature(type(self).__init__).parameters.values()][1:]
        if not params:
            return {}
        raise ArgumentError(f"{type(self).__name__} has no config() method, so its architecture cannot be "
                            f"saved; give it a config() returning its constructor arguments and register "
                            f"it with @gpucnn.nn.register_layer")

    def to_config(self) -> dict:
        """``{"type": <registered name>, **config()}``: the architecture of this module as data."""
        from .registry import layer_to_config
        return layer_to_config(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
