"""The ONNX form of every activation in :mod:`gpucnn.nn.activation`: one builder per activation.

Each builder ``build(g, x, **arguments) -> name`` is registered twice by :func:`activation_converter`:
as the op converter of its :class:`~gpucnn.functions.activation.Elementwise` op (``F.gelu(x)`` in a
model's own ``forward``) and as the layer converter of its module (``nn.GELU()``), whose in-place form
(``inplace=True``) then exports too: the layer's output is followed, not the overwritten input.

Where an ONNX operator is newer than the opset asked for (Gelu 20, HardSwish 14, Mish 18), the builder
composes it from older ones, as PyTorch's exporter does. Sigmoid and Tanh modules need nothing here:
they call ``Tensor.sigmoid``/``tanh``, whose ops :mod:`gpucnn.onnx.ops` converts.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..functions import activation as A
from ..nn import activation as nn_activation
from .graph import GraphBuilder, Value, converter, op_converter

Builder = Callable[..., str]


def activation_converter(op_class: type) -> Callable[[Builder], Builder]:
    """Register ``build(g, x, **arguments)`` as the ONNX form of the Elementwise op ``op_class`` and of
    its module in gpucnn.nn (same arguments; ``inplace`` is not one: an ONNX graph has no in-place)."""
    module = getattr(nn_activation, op_class.module_name or op_class.__name__)

    def deco(build: Builder) -> Builder:
        @op_converter(op_class)
        def from_op(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
            return build(g, x, **op.params)

        @converter(module)
        def from_layer(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
            return build(g, x, **{k: v for k, v in layer.arguments().items() if k != "inplace"})

        from_op.__doc__ = from_layer.__doc__ = build.__doc__
        return build
    return deco


def _scalar(g: GraphBuilder, x: Value, value: float, hint: str = "c") -> str:
    """A 0-d constant in x's dtype (a float64 model keeps float64 constants)."""
    return g.constant(np.asarray(value, dtype=x.dtype), hint)


def _mul(g: GraphBuilder, x: Value, a: str, value: float) -> str:
    return g.node("Mul", [a, _scalar(g, x, value)])


@activation_converter(A.LeakyReLU)
def leaky_relu(g: GraphBuilder, x: Value, negative_slope: float) -> str:
    return g.node("LeakyRelu", [x.name], alpha=float(negative_slope))


@activation_converter(A.ELU)
def elu(g: GraphBuilder, x: Value, alpha: float) -> str:
    return g.node("Elu", [x.name], alpha=float(alpha))


@activation_converter(A.SELU)
def selu(g: GraphBuilder, x: Value) -> str:
    # (gpucnn's constants, not the operator's defaults: both round to the same float32 attributes)
    return g.node("Selu", [x.name], alpha=A.SELU_ALPHA, gamma=A.SELU_SCALE)


@activation_converter(A.GELU)
def gelu(g: GraphBuilder, x: Value, approximate: str) -> str:
    """Gelu from opset 20; below it the formula: ``0.5 x (1 + erf(x / sqrt 2))``, or with tanh
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    if g.opset >= 20:
        return g.node("Gelu", [x.name], approximate=approximate)
    if approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x.name, x.name]), x.name])
        inner = g.node("Add", [x.name, _mul(g, x, cube, 0.044715)])
        core = g.node("Tanh", [_mul(g, x, inner, math.sqrt(2 / math.pi))])
    else:
        core = g.node("Erf", [_mul(g, x, x.name, math.sqrt(0.5))])
    half_x = _mul(g, x, x.name, 0.5)
    return g.node("Mul", [half_x, g.node("Add", [core, _scalar(g, x, 1.0, "one")])])


@activation_converter(A.SiLU)
def silu(g: GraphBuilder, x: Value) -> str:
    return g.node("Mul", [x.name, g.node("Sigmoid", [x.name])])


@activation_converter(A.Mish)
def mish(g: GraphBuilder, x: Value) -> str:
    """Mish from opset 18, ``x * tanh(softplus(x))`` below (ONNX Runtime's Softplus does not overflow)."""
    if g.opset >= 18:
        return g.node("Mish", [x.name])
    return g.node("Mul", [x.name, g.node("Tanh", [g.node("Softplus", [x.name])])])


def _clip(g: GraphBuilder, x: Value, name: str, lo: float, hi: float) -> str:
    # Clip's bounds are inputs (opset 11+) in x's dtype
    return g.node("Clip", [name, _scalar(g, x, lo, "min"), _scalar(g, x, hi, "max")])


@activation_converter(A.Hardtanh)
def hardtanh(g: GraphBuilder, x: Value, min_val: float, max_val: float) -> str:
    return _clip(g, x, x.name, float(min_val), float(max_val))


@activation_converter(A.ReLU6)
def relu6(g: GraphBuilder, x: Value) -> str:
    return _clip(g, x, x.name, 0.0, 6.0)


@activation_converter(A.Hardsigmoid)
def hardsigmoid(g: GraphBuilder, x: Value) -> str:
    """PyTorch's slope 1/6 and offset 1/2 (ONNX's defaults are 0.2 and 0.5)."""
    return g.node("HardSigmoid", [x.name], alpha=1 / 6, beta=0.5)


@activation_converter(A.Hardswish)
def hardswish(g: GraphBuilder, x: Value) -> str:
    """HardSwish from opset 14 (alpha 1/6, beta 1/2: PyTorch's), ``x * hardsigmoid(x)`` below."""
    if g.opset >= 14:
        return g.node("HardSwish", [x.name])
    return g.node("Mul", [x.name, hardsigmoid(g, x)])


@activation_converter(A.Softplus)
def softplus(g: GraphBuilder, x: Value, beta: float, threshold: float) -> str:
    """As PyTorch's: ``softplus(beta x) / beta``, and ``x`` itself where ``beta x > threshold``."""
    beta = float(beta)
    z = x.name if beta == 1.0 else _mul(g, x, x.name, beta)
    soft = g.node("Softplus", [z])
    if beta != 1.0:
        soft = g.node("Div", [soft, _scalar(g, x, beta, "beta")])
    above = g.node("Greater", [z, _scalar(g, x, float(threshold), "threshold")])
    return g.node("Where", [above, x.name, soft])


def _prelu(g: GraphBuilder, x: Value, slope: str, n_slopes: int) -> str:
    """PRelu broadcasts its slope from the right (NumPy's rule): one slope per channel of an (N, C, ...)
    input must be (C, 1, ...) to meet dim 1; a single slope or an (N, C) input needs no reshape."""
    if n_slopes > 1 and x.ndim > 2:
        slope = g.node("Reshape", [slope, g.ints([n_slopes] + [1] * (x.ndim - 2), "slope_shape")])
    return g.node("PRelu", [x.name, slope])


@converter(nn_activation.PReLU)
def prelu_layer(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return _prelu(g, x, g.param(layer.weight), layer.weight.numel())


@op_converter(A.PReLU)
def prelu_op(g: GraphBuilder, op: Any, x: Value, weight: Value, *, out: Value) -> str:
    return _prelu(g, x, weight.name, int(np.prod(weight.shape)))
