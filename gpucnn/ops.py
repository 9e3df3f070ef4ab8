"""The ``torch.*`` functions that are Tensor methods: ``gpucnn.exp(x)`` is ``x.exp()``,
``gpucnn.max(x, 1)`` is ``x.max(1)``, with the same arguments (see :class:`gpucnn.Tensor`).

The functions with an op of their own (``cat``, ``stack``, ``where``, ``einsum``, the creation functions)
live with their op in :mod:`gpucnn.functions` and are exported from :mod:`gpucnn` directly.
"""
from __future__ import annotations

from typing import Any, Callable

#: method names that are also ``torch.<name>(input, ...)`` functions
METHODS = (
    "add", "sub", "mul", "div", "pow", "matmul", "neg", "abs", "sign", "exp", "log", "log1p", "sqrt", "sigmoid",
    "tanh", "relu", "clamp", "clip", "maximum", "minimum", "isnan", "isinf", "isfinite", "allclose", "equal",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "sort", "argsort", "topk", "var", "std",
    "norm", "any", "all", "cumsum", "logsumexp", "reshape", "flatten", "transpose", "t", "permute", "unsqueeze",
    "squeeze", "chunk", "split", "unbind", "gather", "scatter", "masked_fill", "clone", "detach", "numel",
    "eq", "ne", "lt", "le", "gt", "ge",
)


def _function(name: str) -> Callable[..., Any]:
    def f(input: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``torch.{name}(input, ...)``: the same as ``input.{name}(...)`` (see ``gpucnn.Tensor.{name}``)."
    return f


globals().update({name: _function(name) for name in METHODS})
__all__ = list(METHODS)
