"""The ONNX form of the ops a model's own ``forward`` calls between its layers (``x + y``, ``gpucnn.cat``,
``x.relu()``, ``x.view(n, -1)``): one converter per op (Function class). Ops called inside a layer that
has a layer converter are not seen here: the layer's converter stands for all of them.
"""
from __future__ import annotations

from typing import Any

from ..functions import activation, array, math, pooling
from .graph import ExportError, GraphBuilder, Value, op_converter

_ELEMENTWISE = {math.Add: "Add", math.Sub: "Sub", math.Mul: "Mul", math.Div: "Div", math.Maximum: "Max",
                math.Minimum: "Min", math.Exp: "Exp", math.Sqrt: "Sqrt", math.Tanh: "Tanh",
                math.Sigmoid: "Sigmoid", math.Log: "Log", math.Abs: "Abs", math.Neg: "Neg",
                activation.ReLU: "Relu"}


@op_converter(*_ELEMENTWISE)
def elementwise(g: GraphBuilder, op: Any, *inputs: Value, out: Value) -> str:
    """Same names, same NumPy broadcasting."""
    return g.node(_ELEMENTWISE[type(op)], [v.name for v in inputs])


@op_converter(array.Concat)
def cat(g: GraphBuilder, op: Any, *inputs: Value, out: Value) -> str:
    return g.node("Concat", [v.name for v in inputs], axis=op.dim % out.ndim)


@op_converter(activation.Softmax)
def softmax(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    return g.node("Softmax", [x.name], axis=op.dim)


@op_converter(activation.LogSoftmax)
def log_softmax(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    return g.node("LogSoftmax", [x.name], axis=op.dim)


@op_converter(array.Transpose)
def permute(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    return g.node("Transpose", [x.name], perm=[a % x.ndim for a in op.axes])


@op_converter(array.Reshape)
def reshape(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    """The traced shape with the batch dim as 0 (copied from the input) when the batch stays dim 0, so
    the graph works for any batch size; a reshape that moves the batch elsewhere has no such form."""
    shape = list(out.shape)
    if x.ndim and shape and shape[0] == x.shape[0]:
        shape[0] = 0
    elif g.dynamic_batch:
        raise ExportError(f"reshape of {x.shape} to {out.shape} mixes the batch dim into others, which a graph "
                          f"for any batch size cannot do; export with dynamic_batch=False")
    return g.node("Reshape", [x.name, g.ints(shape, "shape")])


# -- pooling ops: AdaptiveMaxPool2d (the layer calls the op) and F.adaptive_max_pool2d --------------------
def _reduce_max(g: GraphBuilder, name: str, axis: int) -> str:
    # ReduceMax's axes: an attribute up to opset 17, an input from 18
    if g.opset >= 18:
        return g.node("ReduceMax", [name, g.ints([axis], "axes")], keepdims=1)
    return g.node("ReduceMax", [name], axes=[axis], keepdims=1)


@op_converter(pooling.AdaptiveMaxPool2d)
def adaptive_max_pool(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    """PyTorch's bins ``[floor(i n / o), ceil((i + 1) n / o))``: GlobalMaxPool, or MaxPool along dims that
    divide evenly; a dim that does not is one Slice + ReduceMax per bin, concatenated (the max over a
    window is the max over its rows of the max over its columns). The indices (return_indices) have no
    ONNX form here: using them is an error naming them."""
    (h, w), (oh, ow) = x.shape[2:], out.shape[2:]
    if (oh, ow) == (1, 1):
        return g.node("GlobalMaxPool", [x.name])
    name, kernel = x.name, []
    for axis, n, o in ((2, h, oh), (3, w, ow)):
        if n % o == 0:
            kernel.append(n // o)
            continue
        kernel.append(1)
        bins = [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]
        parts = [_reduce_max(g, g.node("Slice", [name, g.ints([a]), g.ints([b]), g.ints([axis])]), axis)
                 for a, b in bins]
        name = g.node("Concat", parts, axis=axis)
    if kernel == [1, 1]:
        return name
    return g.node("MaxPool", [name], kernel_shape=kernel, strides=kernel)
