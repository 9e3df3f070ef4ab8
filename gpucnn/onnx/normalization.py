"""The ONNX form of the normalisation layers of :mod:`gpucnn.nn.normalization` (batch norm is in
:mod:`gpucnn.onnx.layers`), in inference form: one converter per layer type.

Where the operator is newer than the opset asked for, the converter composes it from older ones:
LayerNormalization (opset 17) from ReduceMean/Sub/Mul/Sqrt/Div; GroupNormalization from
InstanceNormalization over a (N, G, -1) view below opset 21 (opset 18's GroupNormalization took one
scale per *group*, is deprecated, and is refused by the checker); LRN from a channel AveragePool for an
even ``size`` (ONNX Runtime's LRN takes odd sizes only, and ONNX centres an even window the other way).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..nn.normalization import GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm, LocalResponseNorm
from .graph import ExportError, GraphBuilder, Value, converter


def _filled(g: GraphBuilder, x: Value, tensor: Any, shape: Sequence[int], value: float, hint: str) -> str:
    """The parameter ``tensor`` (an initializer under its state_dict name), or a constant ``value``."""
    if tensor is not None:
        return g.param(tensor)
    return g.constant(np.full(tuple(shape), value, dtype=x.dtype), hint)


def _per_channel(g: GraphBuilder, x: Value, name: str, tensor: Any, op: str) -> str:
    """``name op tensor`` with a (C,) parameter broadcast along dim 1 of an (N, C, ...) input."""
    if tensor is None:
        return name
    shape = g.ints([-1] + [1] * (x.ndim - 2), "channel_shape")
    return g.node(op, [name, g.node("Reshape", [g.param(tensor), shape])])


def _reduce_mean(g: GraphBuilder, name: str, axes: list[int]) -> str:
    # ReduceMean's axes: an attribute up to opset 17, an input from 18
    if g.opset >= 18:
        return g.node("ReduceMean", [name, g.ints(axes, "axes")], keepdims=1)
    return g.node("ReduceMean", [name], axes=axes, keepdims=1)


def _scalar(g: GraphBuilder, x: Value, value: float, hint: str = "c") -> str:
    """A 0-d constant in x's dtype."""
    return g.constant(np.asarray(float(value), dtype=x.dtype), hint)


@converter(LayerNorm)
def layer_norm(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """LayerNormalization over the trailing ``normalized_shape`` dims (opset 17); below it
    ``(x - mean) / sqrt(var + eps)`` with the biased variance, as PyTorch's, then weight and bias."""
    shape = layer.normalized_shape
    axes = list(range(x.ndim - len(shape), x.ndim))
    if g.opset >= 17:
        scale = _filled(g, x, layer.weight, shape, 1.0, "scale")
        inputs = [x.name, scale] + ([g.param(layer.bias)] if layer.bias is not None else [])
        return g.node("LayerNormalization", inputs, axis=axes[0], epsilon=float(layer.eps))
    centred = g.node("Sub", [x.name, _reduce_mean(g, x.name, axes)])
    var = _reduce_mean(g, g.node("Mul", [centred, centred]), axes)
    y = g.node("Div", [centred, g.node("Sqrt", [g.node("Add", [var, _scalar(g, x, layer.eps, "eps")])])])
    if layer.weight is not None:
        y = g.node("Mul", [y, g.param(layer.weight)])
    return g.node("Add", [y, g.param(layer.bias)]) if layer.bias is not None else y


@converter(GroupNorm)
def group_norm(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """GroupNormalization from opset 21 (a scale and bias per channel); below it InstanceNormalization
    of the (N, G, C/G * positions) view, which normalises each group of each sample, reshaped back and
    then the per-channel weight and bias (what PyTorch's exporter writes)."""
    G, C = layer.num_groups, x.shape[1]
    if g.opset >= 21:
        scale = _filled(g, x, layer.weight, (C,), 1.0, "scale")
        bias = _filled(g, x, layer.bias, (C,), 0.0, "bias")
        return g.node("GroupNormalization", [x.name, scale, bias], num_groups=G, epsilon=float(layer.eps))
    grouped = g.node("Reshape", [x.name, g.ints([0, G, -1], "group_shape")])
    ones, zeros = (g.constant(np.full(G, v, dtype=x.dtype), h) for v, h in ((1.0, "ones"), (0.0, "zeros")))
    y = g.node("InstanceNormalization", [grouped, ones, zeros], epsilon=float(layer.eps))
    y = g.node("Reshape", [y, g.ints([0, *x.shape[1:]], "shape")])
    return _per_channel(g, x, _per_channel(g, x, y, layer.weight, "Mul"), layer.bias, "Add")


@converter(InstanceNorm2d, InstanceNorm1d)
def instance_norm(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """InstanceNormalization; with ``track_running_stats`` the eval form normalises with the running
    statistics, as PyTorch's: that is BatchNormalization."""
    if x.ndim != layer._ranks[1]:
        raise ExportError(f"has an unbatched {x.ndim}-D input {x.shape}; the exported graph takes a batch "
                          f"(N, C, ...): export it with a batch dim")
    C = x.shape[1]
    scale = _filled(g, x, layer.weight, (C,), 1.0, "scale")
    bias = _filled(g, x, layer.bias, (C,), 0.0, "bias")
    if layer.track_running_stats:
        inputs = [x.name, scale, bias, g.param(layer.running_mean), g.param(layer.running_var)]
        return g.node("BatchNormalization", inputs, epsilon=float(layer.eps))
    return g.node("InstanceNormalization", [x.name, scale, bias], epsilon=float(layer.eps))


@converter(LocalResponseNorm)
def local_response_norm(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """``x / (k + alpha * mean of x^2 over channels [c - size//2, c + (size-1)//2])^beta``: LRN for an odd
    size on (N, C, H, W); otherwise that formula, the mean an AveragePool along the channels of a
    (N, 1, C, ...) view of x^2 padded with zeros as PyTorch pads it."""
    size = int(layer.size)
    if size % 2 == 1 and x.ndim == 4:
        return g.node("LRN", [x.name], size=size, alpha=float(layer.alpha), beta=float(layer.beta),
                      bias=float(layer.k))
    square = g.node("Unsqueeze", [g.node("Mul", [x.name, x.name]), g.ints([1], "axes")])
    lifted = Value(square, (x.shape[0], 1) + tuple(x.shape[1:]), x.dtype)
    padded = g.pad(lifted, [(size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    mean = g.node("AveragePool", [padded], kernel_shape=[size] + [1] * (x.ndim - 2))
    mean = g.node("Squeeze", [mean, g.ints([1], "axes")])
    scaled = g.node("Add", [g.node("Mul", [mean, _scalar(g, x, layer.alpha)]), _scalar(g, x, layer.k)])
    return g.node("Div", [x.name, g.node("Pow", [scaled, _scalar(g, x, layer.beta)])])

