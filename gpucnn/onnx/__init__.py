"""ONNX export: ``gpucnn.onnx.export(model, example_input, "model.onnx")``, checked by the onnx package,
for ONNX Runtime, TensorRT, OpenVINO and the rest.

Each layer type has one converter (:mod:`gpucnn.onnx.layers`; the activations, as module and as
functional, in :mod:`gpucnn.onnx.activations`), each op a model's own forward may call between layers
one more (:mod:`gpucnn.onnx.ops`); containers and custom modules are traced through
(:mod:`gpucnn.onnx.export`). A new layer's ONNX form is one function::

    from gpucnn.onnx import converter

    @converter(MyLayer)
    def my_layer(g, layer, x, *, out):
        return g.node("Relu", [x.name])

The ``onnx`` package is needed only to export (``pip install 'gpucnn[onnx]'``; ONNX Runtime, in the
same extra, runs the result).
"""
from __future__ import annotations

from . import activations, layers, normalization, ops, resample  # noqa: F401  (register the converters)
from .export import MIN_OPSET, export
from .graph import LAYER_CONVERTERS, OP_CONVERTERS, GraphBuilder, Value, converter, op_converter

__all__ = ["export", "converter", "op_converter", "GraphBuilder", "Value", "LAYER_CONVERTERS", "OP_CONVERTERS",
           "MIN_OPSET"]
