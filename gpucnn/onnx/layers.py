"""The ONNX form of each built-in layer, in inference mode: one converter per layer type.

A new layer gets one ``@converter(TheLayer)`` function here (see :mod:`gpucnn.onnx.graph` for the
signature). Containers (Sequential, Residual, BasicBlock, UNet, a user's Module) need none: the exporter
traces through their ``forward`` and converts the layers and the ops (``+``, ``cat``) they call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..functions._conv_util import effective_kernel, out_size, resolve_padding
from ..functions.pooling import _adaptive_matrix
from ..nn import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
                  ConvTranspose1d, ConvTranspose2d, Dropout, Flatten, GlobalAvgPool2d, Identity, Linear,
                  LogSoftmax, MaxPool1d, MaxPool2d, ReLU, Softmax, SyncBatchNorm)
from .graph import ExportError, GraphBuilder, Value, converter


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * n


# -- convolutions ------------------------------------------------------------------------------------
@converter(Conv2d, Conv1d)
def conv(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """Conv; zero padding in its pads ([begins..., ends...]; Conv1d's "causal" is begin-only);
    reflect/replicate/circular as a Pad node (or Slice + Concat) before a pads-0 Conv. Grouped and
    depthwise convs are the ``group`` attribute (the weight's layout is ONNX's already)."""
    n = layer._n
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    if layer.padding == "causal":  # (as conv1d: all of dilation * (k - 1) before)
        pads: Sequence[tuple[int, int]] = ((d[0] * (k[0] - 1), 0),)
    else:
        pads = resolve_padding(layer.padding, x.shape[2:], k, s, d, type(layer).__name__)
    name = x.name
    if layer.padding_mode != "zeros" and any(b or e for b, e in pads):
        name = g.pad(x, pads, layer.padding_mode)
        pads = ((0, 0),) * n
    inputs = [name, g.param(layer.weight)] + ([g.param(layer.bias)] if layer.bias is not None else [])
    return g.node("Conv", inputs, kernel_shape=list(k), strides=list(s), dilations=list(d),
                  pads=[b for b, _ in pads] + [e for _, e in pads], group=int(getattr(layer, "groups", 1)))


@converter(ConvTranspose2d, ConvTranspose1d)
def conv_transpose(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """ConvTranspose; the weight (C_in, C_out/groups, k...) is ONNX's layout. PyTorch's output is the full
    transposed conv cropped by ``padding`` at both ends, ``output_padding`` given back at the end: the
    end crop goes into pads where it stays >= 0, the rest (positions past the full output: zeros + bias)
    into output_padding. ONNX Runtime refuses an output_padding >= the stride, which PyTorch allows
    below the dilation: then it is a zero Pad before the bias is added. The output_padding is read off
    the traced output, so ``forward(x, output_size=...)`` exports too."""
    n, k, s, d, p = layer._n, layer.kernel_size, layer.stride, layer.dilation, layer.padding
    op = [o - ((i - 1) * si - 2 * pi + di * (ki - 1) + 1)
          for i, o, ki, si, di, pi in zip(x.shape[2:], out.shape[2:], k, s, d, p)]
    ends = [max(pi - oi, 0) for pi, oi in zip(p, op)]
    extra = [max(oi - pi, 0) for pi, oi in zip(p, op)]
    padded = any(e >= si for e, si in zip(extra, s))
    bias = [g.param(layer.bias)] if layer.bias is not None else []
    y = g.node("ConvTranspose", [x.name, g.param(layer.weight)] + ([] if padded else bias), kernel_shape=list(k),
               strides=list(s), dilations=list(d), pads=list(p) + ends,
               output_padding=None if padded or not any(extra) else extra, group=int(layer.groups))
    if not padded:
        return y
    before = tuple(out.shape[:2]) + tuple(o - e for o, e in zip(out.shape[2:], extra))
    y = g.pad(Value(y, before, x.dtype), [(0, e) for e in extra])
    if not bias:
        return y
    return g.node("Add", [y, g.node("Reshape", [bias[0], g.ints([-1] + [1] * n, "bias_shape")])])


# -- pooling -------------------------------------------------------------------------------------------
def _window(layer: Any, x: Value, dilation: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, pads before, pads after) with ceil_mode turned into extra padding after, so the
    ONNX pools run in floor mode: PyTorch's ceil_mode drops a last window that would start in the
    padding, which ONNX's ceil_mode does not promise to do."""
    n = layer._n
    k, s, p = _tuple(layer.kernel_size, n), _tuple(layer.stride, n), _tuple(layer.padding, n)
    after = []
    for size, ki, si, pi, di in zip(x.shape[2:], k, s, p, dilation):
        o = out_size(size, ki, si, di, pi, pi, layer.ceil_mode)
        after.append(max(pi, (o - 1) * si + effective_kernel(ki, di) - size - pi))
    return k, s, p, tuple(after)


@converter(MaxPool2d, MaxPool1d)
def max_pool(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    d = _tuple(layer.dilation, layer._n)
    k, s, before, after = _window(layer, x, d)
    name = x.name
    if any(v >= ki for v, ki in zip(before + after, k + k)):  # (ONNX Runtime wants pads < kernel)
        name = g.pad(x, list(zip(before, after)), "constant", value=-np.inf)
        before = after = (0,) * len(k)
    return g.node("MaxPool", [name], kernel_shape=list(k), strides=list(s), dilations=list(d),
                  pads=list(before) + list(after))


@converter(AvgPool2d, AvgPool1d)
def avg_pool(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """PyTorch's divisor counts the zero padding (count_include_pad) but never the part of a ceil_mode
    window past it: the padding is an explicit zero Pad, the ceil_mode extra is excluded."""
    k, s, before, after = _window(layer, x, (1,) * layer._n)
    name = x.name
    divisor = getattr(layer, "divisor_override", None)
    if divisor:  # sum / divisor: every window whole inside an explicit zero padding, its mean * area / divisor
        if any(before + after):
            name = g.pad(x, list(zip(before, after)), "constant")
        mean = g.node("AveragePool", [name], kernel_shape=list(k), strides=list(s), pads=[0] * (2 * len(k)),
                      count_include_pad=1)
        area = int(np.prod(k))
        return g.node("Mul", [mean, g.constant(np.asarray(area / divisor, dtype=x.dtype), "divisor")]) \
            if area != divisor else mean
    if layer.count_include_pad and any(before):
        name = g.pad(x, [(b, b) for b in before], "constant")
        after = tuple(a - b for a, b in zip(after, before))
        before = (0,) * len(k)
    return g.node("AveragePool", [name], kernel_shape=list(k), strides=list(s),
                  pads=list(before) + list(after), count_include_pad=0)


@converter(AdaptiveAvgPool2d)
def adaptive_avg_pool(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    (h, w), (oh, ow) = x.shape[2:], out.shape[2:]
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [x.name])
    if h % oh == 0 and w % ow == 0:
        return g.node("AveragePool", [x.name], kernel_shape=[h // oh, w // ow], strides=[h // oh, w // ow])
    # overlapping ranges: y = Ph @ x @ Pw^T with PyTorch's ranges, as the NumPy path computes it
    rows = g.node("MatMul", [g.constant(_adaptive_matrix(h, oh, x.dtype), "rows"), x.name])
    return g.node("MatMul", [rows, g.constant(_adaptive_matrix(w, ow, x.dtype).T, "cols")])


@converter(GlobalAvgPool2d)
def global_avg_pool(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return g.node("Flatten", [g.node("GlobalAveragePool", [x.name])], axis=1)


# -- normalisation -----------------------------------------------------------------------------------
@converter(BatchNorm2d, BatchNorm1d, SyncBatchNorm)
def batch_norm(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """BatchNormalization with the running statistics (SyncBatchNorm's eval form is BatchNorm's)."""
    if layer.running_mean is None:
        raise ExportError("has track_running_stats=False, so it normalises with the statistics of each batch "
                          "also in eval mode; ONNX's BatchNormalization needs running statistics")
    c = layer.num_features
    scale = g.param(layer.weight) if layer.affine else g.constant(np.ones(c, dtype=x.dtype), "scale")
    bias = g.param(layer.bias) if layer.affine else g.constant(np.zeros(c, dtype=x.dtype), "bias")
    inputs = [x.name, scale, bias, g.param(layer.running_mean), g.param(layer.running_var)]
    return g.node("BatchNormalization", inputs, epsilon=float(layer.eps))


# -- dense, shape and activation layers ---------------------------------------------------------------
@converter(Linear)
def linear(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    w = g.param(layer.weight)
    if x.ndim == 2:
        inputs = [x.name, w] + ([g.param(layer.bias)] if layer.bias is not None else [])
        return g.node("Gemm", inputs, transB=1)
    y = g.node("MatMul", [x.name, g.node("Transpose", [w], perm=[1, 0])])
    return g.node("Add", [y, g.param(layer.bias)]) if layer.bias is not None else y


@converter(Flatten)
def flatten(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    start, end = layer.start_dim % max(x.ndim, 1), layer.end_dim % max(x.ndim, 1)
    if start == 1 and end == x.ndim - 1:
        return g.node("Flatten", [x.name], axis=1)
    # Reshape: 0 copies a leading dim (the batch stays dynamic), -1 is the merged one
    shape = [0] * start + [-1] + list(out.shape[start + 1:])
    return g.node("Reshape", [x.name, g.ints(shape, "shape")])


@converter(Dropout, Identity)
def identity(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return x.name  # (dropout is the identity in inference)


@converter(ReLU)
def relu(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return g.node("Relu", [x.name])


@converter(Softmax)
def softmax(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return g.node("Softmax", [x.name], axis=layer.dim)


@converter(LogSoftmax)
def log_softmax(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    return g.node("LogSoftmax", [x.name], axis=layer.dim)
