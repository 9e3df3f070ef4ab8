"""Containers: ``Sequential``, ``Residual`` (y = body(x) + shortcut(x)), ResNet's ``BasicBlock``, and
PyTorch's holders without a forward: ``ModuleList``, ``ModuleDict``, ``ParameterList``, ``ParameterDict``.

The holders register what they hold, so a model that keeps its layers in a ``ModuleList`` has them in
``parameters()``, ``state_dict()`` (keys ``layers.0.weight``, as in PyTorch), ``to()``, ``train()``/``eval()``
and ``summary()``. They are not in the layer registry (a model saved as architecture + weights describes
its own layers in its ``config()``); their contents are saved with ``gpucnn.save(model.state_dict(), path)``.
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Iterator, Optional, Union

from ..errors import ArgumentError, ModelFormatError, ShapeError
from ..tensor import Tensor
from .layers import BatchNorm2d, Conv2d, MaxPool1d, MaxPool2d, ReLU, _check_int
from .module import Module, Parameter
from .registry import build_from_config, layer_to_config, register_layer


def _pool_before_relu(first: Module, second: Module) -> bool:
    """Whether Sequential may run ``first`` (a ReLU) after ``second`` (a max pooling): see Sequential."""
    return (type(first) is ReLU and type(second) in (MaxPool2d, MaxPool1d)
            and not getattr(second, "return_indices", False)  # (the indices are of ReLU's output)
            and not any(m._forward_hooks or m._forward_pre_hooks for m in (first, second)))


@register_layer
class Sequential(Module):
    """Modules called in order, each on the previous one's output (like ``torch.nn.Sequential``).

    ``Sequential(m0, m1, ...)`` names the children ``0``, ``1``, ... (so state_dict keys are ``0.weight``);
    ``Sequential(OrderedDict(name=module, ...))`` keeps the names. Supports ``seq[i]``, ``seq[a:b]``,
    ``len``, iteration and ``append``.

    A ``ReLU`` directly followed by a ``MaxPool2d``/``MaxPool1d`` runs in the other order: max pooling
    first, then ReLU on the pooled tensor (kernel_size² times smaller, so both of ReLU's passes shrink:
    about 10 % of the keras-mnist training step at batch 256 on 2 CPU cores). The two commute exactly:
    ``max(relu(a), relu(b)) == relu(max(a, b))``, and the gradient reaches the same input element (the
    window's first maximum when it is positive, nothing otherwise), so outputs and gradients are equal
    exactly (a zero may differ in sign). A forward hook on either layer, which would see the intermediate
    tensor, keeps the written order.
    """
    config_schema = {"layers": "layers", "names": "strs"}

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(str(name), self._check(module, name))
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), self._check(module, i))

    @staticmethod
    def _check(module: Any, where: Any) -> Module:
        if not isinstance(module, Module):
            raise ArgumentError(f"Sequential: entry {where} must be a Module, got {type(module).__name__}")
        return module

    def forward(self, x: Any) -> Any:
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and _pool_before_relu(modules[i], modules[i + 1]):
                x = modules[i](modules[i + 1](x))  # (see the class docstring)
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: Union[int, slice]) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        try:
            return items[index][1]
        except (IndexError, TypeError):
            raise IndexError(f"Sequential index {index!r} is out of range for {len(items)} layers") from None

    def __setitem__(self, index: int, module: Module) -> None:
        name = list(self._modules)[index]
        self.add_module(name, self._check(module, index))

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), self._check(module, len(self)))
        return self

    def extend(self, modules: Any) -> "Sequential":
        for m in modules:
            self.append(m)
        return self

    def _default_names(self) -> bool:
        return list(self._modules) == [str(i) for i in range(len(self._modules))]

    def config(self) -> dict:
        cfg: dict = {"layers": [layer_to_config(m) for m in self._modules.values()]}
        if not self._default_names():
            cfg["names"] = list(self._modules)
        return cfg

    @classmethod
    def from_config(cls, args: dict, path: str = "") -> "Sequential":
        layers = args.get("layers", [])
        names = args.get("names")
        prefix = f"{path}.layers" if path else "layers"
        if names is not None and (len(names) != len(layers) or len(set(names)) != len(names)
                                  or any(not n or "." in n for n in names)):
            raise ModelFormatError(f"{path or 'model'} (Sequential): 'names' must hold one distinct name "
                                   f"without dots per layer ({len(layers)}), got {names!r}")
        modules = [build_from_config(c, f"{prefix}[{i}]") for i, c in enumerate(layers)]
        if names is not None:
            return cls(OrderedDict(zip(names, modules)))
        return cls(*modules)


@register_layer
class Residual(Module):
    """``body(x) + shortcut(x)``; the shortcut defaults to the identity (a ResNet skip connection)."""
    config_schema = {"body": "layer", "shortcut": "layer|null"}

    def __init__(self, body: Module, shortcut: Optional[Module] = None) -> None:
        super().__init__()
        if not isinstance(body, Module):
            raise ArgumentError(f"Residual: body must be a Module, got {type(body).__name__}")
        if shortcut is not None and not isinstance(shortcut, Module):
            raise ArgumentError(f"Residual: shortcut must be a Module or None, got {type(shortcut).__name__}")
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        s = self.shortcut(x) if self.shortcut is not None else x
        if y.shape != s.shape:
            what = "shortcut" if self.shortcut is not None else "input (identity shortcut)"
            raise ShapeError(f"residual: body output shape {y.shape} differs from the {what} shape {s.shape}"
                             + ("; give the Residual a projection shortcut" if self.shortcut is None else ""))
        return y + s

    def config(self) -> dict:
        return {"body": layer_to_config(self.body),
                "shortcut": None if self.shortcut is None else layer_to_config(self.shortcut)}

    @classmethod
    def from_config(cls, args: dict, path: str = "") -> "Residual":
        prefix = f"{path}." if path else ""
        body = build_from_config(args["body"], prefix + "body")
        sc = args.get("shortcut")
        shortcut = None if sc is None else build_from_config(sc, prefix + "shortcut")
        return cls(body, shortcut)


@register_layer
class BasicBlock(Module):
    """ResNet's basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the input (through a 1x1 conv + BN
    projection when the stride or channel count changes), then ReLU. Convs have no bias (BN follows)."""
    config_schema = {"in_channels": "int", "out_channels": "int", "stride": "int"}
    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels = _check_int("BasicBlock", "in_channels", in_channels)
        self.out_channels = _check_int("BasicBlock", "out_channels", out_channels)
        self.stride = _check_int("BasicBlock", "stride", stride)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu = ReLU()
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Sequential(Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                       BatchNorm2d(out_channels))
        else:
            self.shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.shortcut(x) if self.shortcut is not None else x
        return self.relu(out + identity)

    def short_description(self) -> str:
        return f"{self.in_channels}->{self.out_channels}" + (f", stride {self.stride}" if self.stride != 1 else "")

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "stride": self.stride}


class _Holder(Module):
    """What ModuleList/ModuleDict and ParameterList/ParameterDict share: where the items live (the
    ``_modules`` or the ``_parameters`` table) and how an item is checked and registered."""

    _table = "_modules"
    _item = "module"

    def _values(self) -> "OrderedDict[str, Any]":
        return self.__dict__[self._table]

    def _accept(self, value: Any) -> Any:
        """``value`` as an item, or TypeError (PyTorch's error type) naming the container."""
        if self._table == "_modules":
            if not isinstance(value, Module):
                raise TypeError(f"{type(self).__name__}: {type(value).__name__} is not a Module subclass")
            return value
        if isinstance(value, Parameter):
            return value
        if isinstance(value, Tensor):  # PyTorch wraps a plain tensor (requires_grad=True)
            return Parameter(value)
        raise TypeError(f"{type(self).__name__}: expected a Parameter or a Tensor, got {type(value).__name__}")

    def _store(self, name: str, value: Any) -> None:
        if self._table == "_modules":
            self.add_module(name, self._accept(value))
        else:
            self.register_parameter(name, self._accept(value))

    def __len__(self) -> int:
        return len(self._values())

    def _param_line(self, name: str, p: Any) -> str:
        size = "x".join(str(d) for d in p.shape) if p.shape else "()"
        where = "" if p.device == "cpu" else f" ({p.device})"
        return f"({name}): Parameter containing: [{p.dtype} of size {size}{where}]"

    def __repr__(self) -> str:
        if self._table == "_modules":
            return super().__repr__()
        lines = [self._param_line(k, p) for k, p in self._values().items()]
        return type(self).__name__ + "(" + "".join("\n    " + line for line in lines) + ("\n)" if lines else ")")


class _ListHolder(_Holder):
    """The list protocol of ModuleList and ParameterList: items are named ``"0"``, ``"1"``, ... and
    renumbered after an insertion or a deletion, as in PyTorch."""

    def __init__(self, values: Optional[Iterable[Any]] = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def _position(self, index: Any) -> int:
        n = len(self)
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, "
                            f"not {type(index).__name__}") from None
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__} index {i} is out of range for {n} {self._item}s")
        return i % n

    def _renumber(self, values: list) -> None:
        table = self._values()
        table.clear()
        for i, v in enumerate(values):
            table[str(i)] = v

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._values().values()))

    def __getitem__(self, index: Union[int, slice]) -> Any:
        values = list(self._values().values())
        if isinstance(index, slice):
            return type(self)(values[index])
        return values[self._position(index)]

    def __setitem__(self, index: int, value: Any) -> None:
        self._store(str(self._position(index)), value)

    def __delitem__(self, index: Union[int, slice]) -> None:
        values = list(self._values().values())
        if isinstance(index, slice):
            del values[index]
        else:
            del values[self._position(index)]
        self._renumber(values)

    def append(self, value: Any) -> "_ListHolder":
        """Add ``value`` at the end; returns the container."""
        self._store(str(len(self)), value)
        return self

    def extend(self, values: Iterable[Any]) -> "_ListHolder":
        """Append each of ``values``; returns the container."""
        if isinstance(values, Tensor) or not isinstance(values, Iterable):
            raise TypeError(f"{type(self).__name__}.extend should be called with an iterable, "
                            f"but got {type(values).__name__}")
        for v in list(values):
            self.append(v)
        return self

    def insert(self, index: int, value: Any) -> None:
        """Insert ``value`` before ``index`` (list.insert's rules for a negative or large index)."""
        values = list(self._values().values())
        values.insert(operator.index(index), self._accept(value))
        self._renumber(values)

    def pop(self, index: Union[int, slice] = -1) -> Any:
        """Remove and return the item at ``index`` (the last by default)."""
        value = self[index]
        del self[index]
        return value

    def __iadd__(self, values: Iterable[Any]) -> "_ListHolder":
        return self.extend(values)

    def __add__(self, other: Iterable[Any]) -> "_ListHolder":
        return type(self)(list(self) + list(other))


class ModuleList(_ListHolder):
    """A list of modules, registered as children ``0``, ``1``, ... (like ``torch.nn.ModuleList``).

    ``ModuleList([m0, m1])``; indexing (a slice gives a ModuleList), ``len``, iteration, ``append``,
    ``extend``, ``insert``, ``pop``, ``del``, ``+``/``+=``. It has no ``forward``: a model's own forward
    calls the layers::

        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        ...
        for layer in self.layers:
            x = layer(x).relu()
    """

    def __repr__(self) -> str:
        # PyTorch's: a run of equal entries is one line, "(0-2): 3 x Linear(...)"
        items = [(k, repr(m).replace("\n", "\n  ")) for k, m in self._modules.items()]
        if not items:
            return "ModuleList()"
        lines = []
        i = 0
        while i < len(items):
            j = i
            while j + 1 < len(items) and items[j + 1][1] == items[i][1]:
                j += 1
            if j == i:
                lines.append(f"({items[i][0]}): {items[i][1]}")
            else:
                lines.append(f"({items[i][0]}-{items[j][0]}): {j - i + 1} x {items[i][1]}")
            i = j + 1
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ParameterList(_ListHolder):
    """A list of parameters, registered as ``0``, ``1``, ... (like ``torch.nn.ParameterList``; state_dict
    keys ``<name>.0``). A plain Tensor is wrapped in a :class:`Parameter`. The list protocol is
    ModuleList's."""

    _table = "_parameters"
    _item = "parameter"


class _DictHolder(_Holder):
    """The dict protocol of ModuleDict and ParameterDict (insertion order kept, as in PyTorch)."""

    def __init__(self, values: Any = None) -> None:
        super().__init__()
        if values is not None:
            self.update(values)

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store(key, value)

    def __delitem__(self, key: str) -> None:
        del self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values()))

    def __contains__(self, key: object) -> bool:
        return key in self._values()

    def keys(self) -> Any:
        return self._values().keys()

    def values(self) -> Any:
        return self._values().values()

    def items(self) -> Any:
        return self._values().items()

    def get(self, key: str, default: Any = None) -> Any:
        return self._values().get(key, default)

    def pop(self, key: str) -> Any:
        """Remove ``key`` and return its item (KeyError if absent)."""
        return self._values().pop(key)

    def clear(self) -> None:
        self._values().clear()

    def update(self, values: Any) -> None:
        """Add the items of a mapping, or of an iterable of ``(key, item)`` pairs."""
        if isinstance(values, (Mapping, _DictHolder)):
            pairs = list(values.items())
        elif isinstance(values, Iterable) and not isinstance(values, (str, bytes, Tensor)):
            pairs = []
            for i, pair in enumerate(values):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise TypeError(f"{type(self).__name__}.update: element #{i} should be a (key, value) pair, "
                                    f"got {type(pair).__name__}")
                pairs.append(tuple(pair))
        else:
            raise TypeError(f"{type(self).__name__}.update should be called with a mapping or an iterable of "
                            f"(key, value) pairs, but got {type(values).__name__}")
        for key, value in pairs:
            self[key] = value


class ModuleDict(_DictHolder):
    """Modules by name (like ``torch.nn.ModuleDict``): ``ModuleDict({"conv": nn.Conv2d(1, 8, 3)})`` or
    from ``(name, module)`` pairs; ``md[name]``, ``in``, ``len``, iteration over the names, ``keys``,
    ``values``, ``items``, ``update``, ``pop``, ``clear``. Names are strings without dots."""


class ParameterDict(_DictHolder):
    """Parameters by name (like ``torch.nn.ParameterDict``; a plain Tensor is wrapped in a
    :class:`Parameter`). The dict protocol is ModuleDict's."""

    _table = "_parameters"
    _item = "parameter"


__all__ = ["Sequential", "Residual", "BasicBlock", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]
