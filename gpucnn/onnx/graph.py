"""The graph builder converters write into, and the two converter registries.

A *layer converter* turns one call of a layer (a :class:`gpucnn.nn.Module` subclass) into ONNX nodes;
an *op converter* does the same for one gpucnn op (a :class:`gpucnn.function.Function` subclass) that a
model's own ``forward`` calls between layers (``x + y``, ``gpucnn.cat``). Both have the signature::

    @converter(nn.Conv2d)
    def conv(g: GraphBuilder, layer, x: Value, *, out: Value) -> str:
        return g.node("Conv", [x.name, g.param(layer.weight)], kernel_shape=[3, 3])

``x`` (one :class:`Value` per tensor argument) and ``out`` carry the ONNX name, the static shape seen
while tracing (dim 0 is the batch; with ``dynamic_batch`` the graph must not depend on it) and the
dtype; the converter returns the name of the value it computed. Lookup is by exact class: a subclass
with its own ``forward`` is traced through, never silently converted as its base.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

from ..backend import _cupy

Converter = Callable[..., Any]

#: layer class -> converter (:func:`converter`)
LAYER_CONVERTERS: dict[type, Converter] = {}
#: Function class -> converter (:func:`op_converter`)
OP_CONVERTERS: dict[type, Converter] = {}


def converter(*layer_classes: type) -> Callable[[Converter], Converter]:
    """Register ``fn(g, layer, *inputs, out) -> name`` as the ONNX form of these layer classes."""
    def deco(fn: Converter) -> Converter:
        for cls in layer_classes:
            LAYER_CONVERTERS[cls] = fn
        return fn
    return deco


def op_converter(*function_classes: type) -> Callable[[Converter], Converter]:
    """Register ``fn(g, op, *inputs, out) -> name`` as the ONNX form of these ops (Function classes)."""
    def deco(fn: Converter) -> Converter:
        for cls in function_classes:
            OP_CONVERTERS[cls] = fn
        return fn
    return deco


class Value(NamedTuple):
    """A value of the graph: its ONNX name, its shape while tracing (dim 0 = batch) and dtype."""
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class ExportError(Exception):
    """Raised inside the trace (not a GpucnnError, so that layers do not relabel it); export() turns it
    into an ArgumentError."""


def host(array: Any) -> np.ndarray:
    cp = _cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return array.get()
    return np.asarray(array)


class GraphBuilder:
    """Collects nodes and initializers (the onnx package's protos) for one export."""

    def __init__(self, opset: int, param_names: dict[int, str], dynamic_batch: bool = True) -> None:
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.numpy_helper = onnx, helper, numpy_helper
        self.opset = opset
        #: whether the graph must work for any batch size (dim 0 of the input)
        self.dynamic_batch = dynamic_batch
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self._param_names = param_names  # id(array) of each parameter/buffer -> its state_dict name
        self._used: set[str] = set()
        #: the scope new names start with (the layer being converted, e.g. "block1.conv2")
        self.scope = ""

    # -- names ----------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        base = f"{self.scope}/{hint}" if self.scope else hint
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    # -- nodes and constants ----------------------------------------------------------------------
    def node(self, op_type: str, inputs: Sequence[str], n_outputs: int = 1, **attrs: Any) -> Any:
        """Add an ``op_type`` node; returns its output name (a list of them when ``n_outputs`` > 1)."""
        outputs = [self.fresh(op_type if n_outputs == 1 else f"{op_type}_out{i}") for i in range(n_outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outputs, name=self.fresh(op_type + "_node"),
                                                **attrs))
        return outputs[0] if n_outputs == 1 else outputs

    def param(self, tensor: Any) -> str:
        """The initializer of a model parameter or buffer, under its state_dict name."""
        data = tensor.data if hasattr(tensor, "data") and not isinstance(tensor, np.ndarray) else tensor
        name = self._param_names.get(id(data))
        if name is None:
            return self.constant(host(data), "const")
        if name not in self.initializers:
            self._used.add(name)
            self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(host(data)), name)
        return name

    def constant(self, array: Any, hint: str = "const") -> str:
        """An initializer holding ``array`` (a new name for each call)."""
        name = self.fresh(hint)
        self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(host(array)), name)
        return name

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        """A 1-D int64 constant (shapes, pads, axes)."""
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)

    # -- shared building blocks -------------------------------------------------------------------
    def pad(self, x: Value, pads: Sequence[tuple[int, int]], mode: str = "constant",
            value: Optional[float] = None) -> str:
        """``x`` padded on its trailing spatial dims by ``pads`` ((before, after) per dim, as
        gpucnn's); ``mode`` is gpucnn's: zeros/constant, reflect, replicate, circular. Circular below
        opset 19 (no Pad ``wrap``) is Slice + Concat per dim, as PyTorch exports it."""
        lead = x.ndim - len(pads)
        if mode == "circular" and self.opset < 19:
            name = x.name
            sizes = list(x.shape)
            for i, (b, e) in enumerate(pads):
                axis, n = lead + i, sizes[lead + i]
                parts = []
                if b:
                    parts.append(self.node("Slice", [name, self.ints([n - b]), self.ints([n]), self.ints([axis])]))
                parts.append(name)
                if e:
                    parts.append(self.node("Slice", [name, self.ints([0]), self.ints([e]), self.ints([axis])]))
                if len(parts) > 1:
                    name = self.node("Concat", parts, axis=axis)
                sizes[axis] = n + b + e
            return name
        onnx_mode = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge",
                     "circular": "wrap"}[mode]
        full = [0] * lead + [b for b, _ in pads] + [0] * lead + [e for _, e in pads]
        inputs = [x.name, self.ints(full, "pads")]
        if value is not None:
            inputs.append(self.constant(np.asarray(value, dtype=x.dtype), "pad_value"))
        return self.node("Pad", inputs, mode=onnx_mode)
