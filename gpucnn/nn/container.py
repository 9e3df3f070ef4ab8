"""Containers: ``Sequential``, ``Residual`` (y = body(x) + shortcut(x)) and ResNet's ``BasicBlock``."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Optional, Union

from ..errors import ArgumentError, ModelFormatError, ShapeError
from ..tensor import Tensor
from .layers import BatchNorm2d, Conv2d, MaxPool1d, MaxPool2d, ReLU, _check_int
from .module import Module
from .registry import build_from_config, layer_to_config, register_layer


def _pool_before_relu(first: Module, second: Module) -> bool:
    """Whether Sequential may run ``first`` (a ReLU) after ``second`` (a max pooling): see Sequential."""
    return (type(first) is ReLU and type(second) in (MaxPool2d, MaxPool1d)
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


__all__ = ["Sequential", "Residual", "BasicBlock"]
