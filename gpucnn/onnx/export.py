"""``gpucnn.onnx.export``: a model in inference form as an ONNX graph, checked by the onnx package.

How: the model runs once on the example input (in eval mode, without gradients) while the exporter
watches. Each call of a layer that has a converter (:mod:`gpucnn.onnx.layers`) becomes that layer's
ONNX nodes; anything else (Sequential, Residual, BasicBlock, UNet, a user's Module) is traced through,
and the gpucnn ops its ``forward`` calls between layers (``+``, ``cat``: :mod:`gpucnn.onnx.ops`) become
nodes too. Values are followed by the identity of their arrays: the example input, the parameters and
buffers (initializers under their state_dict names) and what each converted call returned. A layer or
op with no ONNX form, a tensor no traced op computed (NumPy on ``.data``), or one changed in place after
it was computed, is an :class:`ArgumentError` naming the layer, never a graph that computes something
else. Python control flow is fixed at the traced shapes; only the batch size may vary
(``dynamic_batch``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional, Union

import numpy as np

from .. import function as _function
from ..errors import ArgumentError
from ..function import no_grad
from ..nn.module import Module, _stack
from ..tensor import Tensor, tensor
from .graph import LAYER_CONVERTERS, OP_CONVERTERS, ExportError, GraphBuilder, Value, host

PathLike = Union[str, "os.PathLike[str]"]

#: the lowest opset whose operators (Pad, Resize, Softmax, Slice with inputs) the converters write
MIN_OPSET = 13


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ArgumentError("ONNX export needs the onnx package: pip install 'gpucnn[onnx]'") from None
    return onnx


def _fingerprint(array: Any) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(host(array)).view(np.uint8), digest_size=16).digest()


class _Tracer:
    """Hooks on the converted layers plus gpucnn's op recorder, for one forward pass."""

    def __init__(self, model: Module, g: GraphBuilder, param_ids: set[int]) -> None:
        self.model, self.g, self.param_ids = model, g, param_ids
        self.module_names = {id(m): name for name, m in model.named_modules()}
        #: id(array) -> (ONNX name, the array (kept alive, so its id is not reused), fingerprint)
        self.values: dict[int, tuple[str, Any, bytes]] = {}
        self.depth = 0  # > 0 inside a converted layer: its own ops are not recorded
        self.pending: list[list[Value]] = []
        self.handles: list[Any] = []

    # -- values ---------------------------------------------------------------------------------------
    def bind(self, array: Any, name: str) -> None:
        self.values[id(array)] = (name, array, _fingerprint(array))

    def value(self, array: Any, where: str) -> Value:
        shape, dtype = tuple(array.shape), np.dtype(array.dtype)
        entry = self.values.get(id(array))
        if entry is not None:
            name, _, print_ = entry
            if _fingerprint(array) != print_:
                raise ExportError(f"{where}: a tensor of shape {shape} was changed in place (+=, relu_(), "
                                  f"x[...] = ...) after it was computed; an ONNX graph has no in-place updates: "
                                  f"compute it out of place (y = x + z)")
            return Value(name, shape, dtype)
        if id(array) in self.param_ids:
            return Value(self.g.param(array), shape, dtype)
        if array.ndim == 0:  # a Python number in an expression (x * 0.5)
            return Value(self.g.constant(array, "scalar"), shape, dtype)
        raise ExportError(f"{where}: uses a tensor of shape {shape} that no exported op computed from the input "
                          f"(made with NumPy on .data, or created inside forward); the exporter records gpucnn "
                          f"ops only: compute it with gpucnn ops, or make it a parameter or buffer")

    # -- labels ---------------------------------------------------------------------------------------
    def label(self, module: Optional[Module]) -> str:
        if module is None:
            return "the model"
        name = self.module_names.get(id(module))
        if name == "":
            return f"{type(module).__name__} (the model)"
        return f"{type(module).__name__} '{name}'" if name is not None else type(module).__name__

    # -- hooks ----------------------------------------------------------------------------------------
    def _pre(self, module: Module, args: tuple) -> None:
        if self.depth == 0:
            where = self.label(module)
            self.pending.append([self.value(a.data, where) for a in args if isinstance(a, Tensor)])
        self.depth += 1

    def _post(self, module: Module, args: tuple, out: Any) -> None:
        self.depth -= 1
        if self.depth:
            return
        inputs = self.pending.pop()
        where = self.label(module)
        if not isinstance(out, Tensor):
            raise ExportError(f"{where}: returns a {type(out).__name__}; a converted layer must return one tensor")
        name = self.module_names.get(id(module))
        self.g.scope = name if name else type(module).__name__
        try:
            result = LAYER_CONVERTERS[type(module)](self.g, module, *inputs, out=Value("", out.shape, out.dtype))
        except ExportError as e:
            raise ExportError(f"{where}: {e}") from None
        finally:
            self.g.scope = ""
        self.bind(out.data, result)

    def _record(self, op: Any, phase: str, xs: tuple, run: Any) -> Any:
        step = (lambda: self.previous(op, phase, xs, run)) if self.previous is not None else run
        if phase != "forward" or self.depth:
            return step()
        stack = _stack()
        where = self.label(stack[-1] if stack else None)
        convert = OP_CONVERTERS.get(type(op))
        if convert is None:
            inside = f"{where} calls" if stack else "the model calls"
            raise ExportError(f"{inside} the op {op.name!r} ({type(op).__name__}), which has no ONNX form here "
                              f"(layers with one: {', '.join(sorted({c.__name__ for c in LAYER_CONVERTERS}))}); "
                              f"use those layers, or register a converter (gpucnn.onnx.converter)")
        inputs = [self.value(a, f"{where}: {op.name}") for a in xs if a is not None]
        y = step()
        self.g.scope = f"{self.module_names.get(id(stack[-1]), '') or 'model'}/{op.name}" if stack else op.name
        try:
            result = convert(self.g, op, *inputs, out=Value("", tuple(y.shape), np.dtype(y.dtype)))
        except ExportError as e:
            raise ExportError(f"{where}: {op.name}: {e}") from None
        finally:
            self.g.scope = ""
        self.bind(y, result)
        return y

    def __enter__(self) -> "_Tracer":
        for m in self.model.modules():
            if type(m) in LAYER_CONVERTERS:
                self.handles.append(m.register_forward_pre_hook(self._pre))
                self.handles.append(m.register_forward_hook(self._post))
        self.previous = _function._recorder
        _function._recorder = self._record
        return self

    def __exit__(self, *exc: Any) -> None:
        _function._recorder = self.previous
        for h in self.handles:
            h.remove()


def _example(example_input: Any, model: Module) -> Tensor:
    if isinstance(example_input, Tensor):
        x = example_input
    else:
        try:
            x = tensor(np.asarray(example_input))
        except Exception as e:
            raise ArgumentError(f"export: example_input must be a Tensor or an array, got "
                                f"{type(example_input).__name__}") from e
    if x.ndim < 1 or x.shape[0] < 1:
        raise ArgumentError(f"export: example_input must be a batch (N, ...) with N >= 1, got shape {x.shape}")
    return x.to(device=model.device, dtype=model.dtype)


def export(model: Module, example_input: Any, path: Optional[PathLike], opset_version: int = 17,
           dynamic_batch: bool = True, *, input_name: str = "input", output_name: str = "output") -> Any:
    """Export ``model`` in inference form (eval mode: batch norm with its running statistics, dropout
    removed) as an ONNX model, checked with ``onnx.checker.check_model(full_check=True)``; written to
    ``path`` atomically (unless ``path`` is None) and returned (an ``onnx.ModelProto``).

    ``example_input``: a batch (Tensor or array) of the input the model takes; its shape fixes every
    dim but the batch, which stays free (``"batch"``) when ``dynamic_batch``. ``opset_version``: 13 up to
    what the installed onnx knows. The model's training/eval flags are left as they were. A layer or
    op with no ONNX form raises :class:`ArgumentError` naming it (and where it is in the model).
    """
    onnx = _require_onnx()
    from onnx import helper

    from .. import __version__

    if not isinstance(model, Module):
        raise ArgumentError(f"export: model must be a gpucnn.nn.Module, got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset_version, int) or isinstance(opset_version, bool) or \
            not MIN_OPSET <= opset_version <= newest:
        raise ArgumentError(f"export: opset_version must be an integer from {MIN_OPSET} to {newest} (the newest "
                            f"the installed onnx knows), got {opset_version!r}")
    x = _example(example_input, model)
    state = model.state_dict(keep_vars=True)
    param_names = {id(t.data): name for name, t in state.items()}
    g = GraphBuilder(opset_version, param_names, bool(dynamic_batch))
    tracer = _Tracer(model, g, set(param_names))
    tracer.bind(x.data, input_name)
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad(), tracer:
            out = model(x)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if not outs or not all(isinstance(o, Tensor) for o in outs):
            raise ExportError(f"the model returns a {type(out).__name__}; export needs a tensor or a tuple of tensors")
        names = [output_name if len(outs) == 1 else f"{output_name}{i}" for i in range(len(outs))]
        results = [tracer.value(o.data, "the model's output") for o in outs]
    except ExportError as e:
        raise ArgumentError(f"export: {e}") from None
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)
    g.scope = ""
    renamed: dict[str, str] = {}
    for value, name in zip(results, names):
        _name_output(g, renamed.get(value.name, value.name), name, input_name)
        renamed.setdefault(value.name, name)

    def info(name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        dims = (["batch"] if dynamic_batch else [shape[0]]) + list(shape[1:])
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)

    graph = helper.make_graph(
        g.nodes, getattr(model, "name", None) or type(model).__name__,
        [info(input_name, x.shape, x.dtype)], [info(n, o.shape, o.dtype) for n, o in zip(names, outs)],
        initializer=list(g.initializers.values()))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset_version)],
                              producer_name="gpucnn", producer_version=__version__)
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    props = {k: json.dumps(getattr(model, k)) for k in ("name", "input_shape", "num_classes", "classes")
             if getattr(model, k, None) is not None}
    if props:
        helper.set_model_props(proto, {f"gpucnn.{k}": v for k, v in props.items()})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..atomic import atomic_open
        from ..errors import ModelFormatError
        try:
            with atomic_open(path, "wb", durable=True) as f:
                f.write(proto.SerializeToString())
        except OSError as e:
            raise ModelFormatError(f"cannot write {os.fspath(path)}: {e.strerror or e}") from e
    return proto


def _name_output(g: GraphBuilder, value: str, name: str, input_name: str) -> None:
    """Make the graph output ``name`` hold ``value``: rename the node output that computes it, or (for
    the input, an initializer, or a value that is already another output) add an Identity node."""
    produced = any(value in n.output for n in g.nodes)
    if not produced or value == input_name or value in g.initializers or value == name:
        if value != name:
            g.nodes.append(g.helper.make_node("Identity", [value], [name], name=g.fresh("Identity_node")))
        return
    for n in g.nodes:
        for seq in (n.input, n.output):
            for i, v in enumerate(seq):
                if v == value:
                    seq[i] = name


__all__ = ["export", "MIN_OPSET"]
