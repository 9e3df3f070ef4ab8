"""Pooling layers beyond the windowed ones of layers.py: adaptive max pooling and max unpooling, with
PyTorch's names, argument order and defaults (``torch.nn.AdaptiveMaxPool2d``, ``torch.nn.MaxUnpool2d``).

The ops are in gpucnn/functions/pooling.py; these layers check their arguments when built and hold them
as their config (architecture as data).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from .. import functional as F
from ..errors import ArgumentError
from ..tensor import Tensor
from .layers import _check_bool, _is_int, _ntuple, _plain, _repr_size, _require_tensor
from .module import Module
from .registry import register_layer


@register_layer
class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size over PyTorch's adaptive bins (``None`` in a pair keeps that input
    size); ``return_indices=True`` returns ``(output, indices)``."""
    config_schema = {"output_size": "int|int_or_null_list", "return_indices": "bool"}

    def __init__(self, output_size: Union[int, Sequence[Optional[int]]], return_indices: bool = False) -> None:
        super().__init__()
        ok = (_is_int(output_size) and output_size >= 1) or (
            isinstance(output_size, (tuple, list)) and len(output_size) == 2
            and all(v is None or (_is_int(v) and v >= 1) for v in output_size))
        if not ok:
            raise ArgumentError(f"AdaptiveMaxPool2d: output_size must be an integer >= 1 or a pair of them "
                                f"(None keeps the input size), got {output_size!r}")
        self.output_size = int(output_size) if _is_int(output_size) else \
            [None if v is None else int(v) for v in output_size]  # type: ignore[union-attr]
        self.return_indices = _check_bool("AdaptiveMaxPool2d", "return_indices", return_indices)

    def forward(self, x: Tensor) -> Any:
        out = self.output_size if not isinstance(self.output_size, list) else tuple(self.output_size)
        return F.adaptive_max_pool2d(_require_tensor("adaptive_max_pool2d", x), out, self.return_indices)

    def short_description(self) -> str:
        return f"output {_repr_size(self.output_size)}"

    def extra_repr(self) -> str:
        return f"output_size={_repr_size(self.output_size)}"

    def config(self) -> dict:
        return {"output_size": self.output_size, "return_indices": self.return_indices}


class _MaxUnpoolNd(Module):
    _n = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        name, n = type(self).__name__, self._n
        _ntuple(name, "kernel_size", kernel_size, n)
        if stride is not None:
            _ntuple(name, "stride", stride, n)
        _ntuple(name, "padding", padding, n, minimum=0)
        self.kernel_size = _plain(kernel_size)
        self.stride = _plain(stride) if stride is not None else self.kernel_size
        self._stride_given = stride is not None
        self.padding = _plain(padding)

    def forward(self, x: Tensor, indices: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        f = F.max_unpool2d if self._n == 2 else F.max_unpool1d
        op = "max_unpool2d" if self._n == 2 else "max_unpool1d"
        return f(_require_tensor(op, x), indices, self.kernel_size, self.stride, self.padding, output_size)

    def short_description(self) -> str:
        k = _ntuple("", "", self.kernel_size, self._n)
        return "x".join(map(str, k))

    def extra_repr(self) -> str:
        return (f"kernel_size={_repr_size(self.kernel_size)}, stride={_repr_size(self.stride)}, "
                f"padding={_repr_size(self.padding)}")

    def config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride if self._stride_given else None,
                "padding": self.padding}


@register_layer
class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool2d` (``return_indices=True``): ``unpool(x, indices)`` puts each
    value at its index in zeros of size (H - 1) * stride - 2 * padding + kernel (or ``output_size``)."""
    _n = 2
    config_schema = {"kernel_size": "int|ints", "stride": "int|ints|null", "padding": "int|ints"}


@register_layer
class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool1d` (``return_indices=True``) on (N, C, L) inputs."""
    _n = 1
    config_schema = {"kernel_size": "int", "stride": "int|null", "padding": "int"}
