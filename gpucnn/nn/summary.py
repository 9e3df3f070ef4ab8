"""``Module.summary``: a Keras-style table of layers, output shapes and parameter counts."""
from __future__ import annotations

import numbers
from typing import Any, Optional

from ..errors import ArgumentError
from ..function import no_grad
from ..functions.creation import zeros
from ..tensor import Tensor
from .module import Parameter
from ..dtypes import is_floating_point


def readable_size(nbytes: float) -> str:
    """``1.61 MB`` (base 1024, as Keras prints sizes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} GB"  # pragma: no cover


def _shape_text(out: Any, batch: Optional[int]) -> str:
    if isinstance(out, Tensor):
        dims = list(out.shape)
        if dims:
            dims[0] = batch  # type: ignore[call-overload]
        return "(" + ", ".join("None" if d is None else str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape_text(o, batch) for o in out) + "]"
    return type(out).__name__


def _check_input_shape(model: Any, input_shape: Any) -> tuple[int, ...]:
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ArgumentError(f"summary: {type(model).__name__} has no input_shape attribute; pass "
                                f"input_shape=(C, H, W) (without the batch dimension)")
    if isinstance(input_shape, numbers.Integral):
        input_shape = (input_shape,)
    ok = isinstance(input_shape, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in input_shape)
    if not ok:
        raise ArgumentError(f"summary: input_shape must be a tuple of sizes >= 1 without the batch dimension, "
                            f"e.g. (1, 28, 28), got {input_shape!r}")
    return tuple(int(d) for d in input_shape)


def _weights(module: Any, recurse: bool) -> list[Tensor]:
    """What Keras counts as a layer's weights: the parameters (trainable unless frozen) and the
    persistent floating-point buffers (BatchNorm's running mean and variance: Keras's non-trainable
    moving statistics; not the integer ``num_batches_tracked``, which Keras has no counterpart of)."""
    out: list[Tensor] = list(module.parameters(recurse=recurse))
    seen: set[int] = set()
    for m in (module.modules() if recurse else [module]):
        for name, b in m._buffers.items():
            if b is not None and is_floating_point(b.dtype) and name not in m._non_persistent and id(b) not in seen:
                seen.add(id(b))
                out.append(b)
    return out


def summary(model: Any, input_shape: Any = None, batch_size: Optional[int] = None) -> str:
    """See :meth:`gpucnn.nn.Module.summary`."""
    shape = _check_input_shape(model, input_shape)
    if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ArgumentError(f"summary: batch_size must be an integer >= 1 or None, got {batch_size!r}")
    n = int(batch_size) if batch_size is not None else 1

    named = list(model.named_modules())
    names = {id(m): name for name, m in named}
    seen_calls: dict[int, Any] = {}
    order: list[Any] = []

    def hook(module: Any, inputs: tuple, output: Any) -> None:
        if id(module) not in seen_calls:
            seen_calls[id(module)] = output
            order.append(module)

    handles = [m.register_forward_hook(hook) for _, m in named]
    flags = [(m, m.training) for _, m in named]
    try:
        model.eval()
        x = zeros((n,) + shape, dtype=model.dtype, device=model.device)
        with no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            object.__setattr__(m, "training", flag)

    def shows(m: Any) -> bool:
        has_children = any(True for _ in m.children())
        return not has_children or bool(_weights(m, recurse=False))

    shown = [m for m in order if shows(m)]
    shown += [m for _, m in named if shows(m) and id(m) not in seen_calls and _weights(m, recurse=True)]
    display_batch = batch_size if batch_size is not None else None
    rows = []
    for m in shown:
        path = names.get(id(m), "")
        label = f"{path or type(m).__name__.lower()} ({type(m).__name__})"
        out_text = _shape_text(seen_calls[id(m)], display_batch) if id(m) in seen_calls else "(not called)"
        count = sum(w.numel() for w in _weights(m, recurse=False))
        rows.append((label, out_text, f"{count:,}"))

    weights = _weights(model, recurse=True)
    total = sum(w.numel() for w in weights)
    trainable = sum(w.numel() for w in weights if isinstance(w, Parameter) and w.requires_grad)
    itemsize = model.dtype.itemsize
    activations = 0
    for m in shown:
        o = seen_calls.get(id(m))
        for t in (o if isinstance(o, (tuple, list)) else [o]):
            if isinstance(t, Tensor):
                activations += t.numel() * t.dtype.itemsize

    headers = ("Layer (type)", "Output Shape", "Param #")
    w0 = max([29] + [len(r[0]) + 2 for r in rows])
    w1 = max([26] + [len(r[1]) + 2 for r in rows])
    w2 = max([10] + [len(r[2]) for r in rows])
    width = 1 + w0 + w1 + w2

    def line(cols: tuple) -> str:
        return (" " + cols[0].ljust(w0) + cols[1].ljust(w1) + cols[2]).rstrip()

    title = getattr(model, "name", None)
    if not isinstance(title, str) or not title:
        title = type(model).__name__
    input_text = "(" + ", ".join(["None" if batch_size is None else str(n)] + [str(d) for d in shape]) + ")"
    out_lines = [f'Model: "{title}"', "_" * width, line(headers), "=" * width]
    out_lines += [line(r) for r in rows]
    out_lines += ["=" * width,
                  f"Total params: {total:,} ({readable_size(total * itemsize)})",
                  f"Trainable params: {trainable:,} ({readable_size(trainable * itemsize)})",
                  f"Non-trainable params: {total - trainable:,} ({readable_size((total - trainable) * itemsize)})"]
    out_lines += [f"Input shape: {input_text}",
                  f"Output shape: {_shape_text(out, display_batch)}",
                  f"Forward pass size: {readable_size(activations)} (layer outputs, batch of {n})",
                  "_" * width]
    return "\n".join(out_lines)


__all__ = ["summary", "readable_size"]
