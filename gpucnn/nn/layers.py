"""The built-in layers, with PyTorch's names, argument order and defaults.

Each layer has ``forward``, ``extra_repr`` (its repr, as PyTorch prints it), ``short_description`` (the
words in error messages, e.g. ``32->64, 3x3``) and ``config`` (its constructor arguments as JSON data),
and is in the layer registry (:mod:`gpucnn.nn.registry`).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import functional as F
from ..amp.autocast_mode import is_autocast_enabled
from ..errors import ArgumentError, ShapeError
from ..functions._conv_util import PADDING_MODES
from ..functions.conv_transpose import conv_transpose1d, conv_transpose2d
from ..tensor import Tensor
from . import init
from .module import Module, Parameter
from .registry import register_layer

IntOrTuple = Union[int, Sequence[int]]


# -- argument checks -------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_int(layer: str, arg: str, v: Any, minimum: int = 1) -> int:
    if not _is_int(v) or v < minimum:
        raise ArgumentError(f"{layer}: {arg} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _ntuple(layer: str, arg: str, v: Any, n: int, minimum: int = 1) -> tuple[int, ...]:
    if _is_int(v):
        v = (v,) * n
    if not isinstance(v, (tuple, list)) or len(v) != n or not all(_is_int(x) and x >= minimum for x in v):
        want = "an integer" if n == 1 else f"an integer or a list of {n} integers"
        raise ArgumentError(f"{layer}: {arg} must be {want} >= {minimum}, got {v!r}")
    return tuple(int(x) for x in v)


def _check_bool(layer: str, arg: str, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise ArgumentError(f"{layer}: {arg} must be true or false, got {v!r}")
    return bool(v)


def _check_number(layer: str, arg: str, v: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v)) and \
            (float(v) > lo if lo_open else float(v) >= lo) and float(v) <= hi
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise ArgumentError(f"{layer}: {arg} must be a number in {interval}, got {v!r}")
    return float(v)


def _compact(t: Sequence[int]) -> Union[int, list[int]]:
    """3 for (3, 3), [3, 5] for (3, 5): the shortest JSON form of a size argument."""
    return int(t[0]) if len(set(t)) == 1 else [int(x) for x in t]


def _size_str(t: Sequence[int]) -> str:
    return "x".join(str(x) for x in t)


def _require_tensor(op: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentError(f"{op}: input must be a gpucnn Tensor, got {type(x).__name__} "
                            f"(wrap arrays with gpucnn.tensor(...))")
    return x


def _check_rank(op: str, x: Tensor, ranks: Sequence[int], layout: str) -> None:
    if x.ndim not in ranks:
        hint = ""
        if x.ndim == min(ranks) - 1:
            hint = "; add a batch dimension, e.g. x.reshape(1, *x.shape)"
        raise ShapeError(f"{op}: expected a {layout} input, got rank {x.ndim} (input shape {x.shape}){hint}")


# -- convolutions ------------------------------------------------------------------------------------


class _ConvBase(Module):
    """What convolutions and transposed convolutions share: channels, kernel, stride, dilation and groups
    checked, the weight and bias created and initialised as PyTorch's, the input checked."""
    _n = 2
    _op = "conv2d"
    _layout = "4-D (N, C, H, W)"

    def _init_geometry(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple,
                       dilation: IntOrTuple, groups: int) -> str:
        name, n = type(self).__name__, self._n
        self.in_channels = _check_int(name, "in_channels", in_channels)
        self.out_channels = _check_int(name, "out_channels", out_channels)
        self.kernel_size = _ntuple(name, "kernel_size", kernel_size, n)
        self.stride = _ntuple(name, "stride", stride, n)
        self.dilation = _ntuple(name, "dilation", dilation, n)
        self.groups = _check_int(name, "groups", groups)
        for arg, channels in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if channels % self.groups:
                raise ArgumentError(f"{name}: {arg} ({channels}) must be divisible by groups ({self.groups})")
        return name

    def _init_parameters(self, weight_channels: tuple[int, int], bias: bool) -> None:
        """The weight (``weight_channels`` + kernel) and the bias (out_channels), initialised unless the
        module is being built for loading (``init.initializing()`` False)."""
        self.weight = Parameter(init.empty(weight_channels + self.kernel_size))
        if _check_bool(type(self).__name__, "bias", bias):
            self.bias = Parameter(init.empty((self.out_channels,)))
        else:
            self.register_parameter("bias", None)
        if init.initializing():
            self.reset_parameters()

    def reset_parameters(self) -> None:
        # as PyTorch's: fan_in = weight.shape[1] * kernel (in_channels/groups, or for a transposed
        # convolution out_channels/groups, times the kernel)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Any) -> Tensor:
        x = _require_tensor(self._op, x)
        _check_rank(self._op, x, (self._n + 2,), self._layout)
        if x.shape[1] != self.in_channels:
            raise ShapeError(f"{self._op}: input has {x.shape[1]} channels, expected {self.in_channels} "
                             f"(input shape {x.shape}, weight shape {self.weight.shape})")
        return x

    def _kernel_text(self) -> str:
        return _size_str(self.kernel_size) if self._n == 2 else f"kernel {self.kernel_size[0]}"

    def _repr_tail(self) -> str:
        """The extra_repr entries after padding: dilation, groups and bias where not the default."""
        s = f", dilation={self.dilation}" if any(d != 1 for d in self.dilation) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.bias is None else "")


class _ConvNd(_ConvBase):
    _n = 2
    _op = "conv2d"
    _layout = "4-D (N, C, H, W)"
    config_schema = {"in_channels": "int", "out_channels": "int", "kernel_size": "int|ints",
                     "stride": "int|ints", "padding": "int|ints|str", "dilation": "int|ints", "groups": "int",
                     "bias": "bool", "padding_mode": "str"}
    #: the string paddings this layer takes
    _paddings: tuple[str, ...] = ("same", "valid")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Union[str, IntOrTuple] = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        name, n = self._init_geometry(in_channels, out_channels, kernel_size, stride, dilation, groups), self._n
        if isinstance(padding, str):
            if padding not in self._paddings:
                raise ArgumentError(f"{name}: padding must be {', '.join(repr(p) for p in self._paddings)} or a "
                                    f"size, got {padding!r}")
            self.padding: Union[str, tuple[int, ...]] = padding
        else:
            self.padding = _ntuple(name, "padding", padding, n, minimum=0)
        if padding_mode not in PADDING_MODES:
            raise ArgumentError(f"{name}: padding_mode must be one of {', '.join(PADDING_MODES)}, "
                                f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        self._init_parameters((self.out_channels, self.in_channels // self.groups), bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        fn = F.conv2d if self._n == 2 else F.conv1d
        stride, dilation = self.stride, self.dilation
        padding = self.padding
        if self._n == 1:
            stride, dilation = stride[0], dilation[0]
            padding = padding if isinstance(padding, str) else padding[0]
        return fn(x, self.weight, self.bias, stride=stride, padding=padding, dilation=dilation,
                  groups=self.groups, padding_mode=self.padding_mode)

    def short_description(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, {self._kernel_text()}"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif any(self.padding):
            s += f", padding={self.padding}"
        s += self._repr_tail()
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _compact(self.kernel_size), "stride": _compact(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else _compact(self.padding),
                "dilation": _compact(self.dilation), "groups": self.groups, "bias": self.bias is not None,
                "padding_mode": self.padding_mode}


@register_layer
class Conv2d(_ConvNd):
    """2-D convolution of (N, C, H, W) inputs; weight (out_channels, in_channels/groups, kh, kw).

    ``padding`` is a size, a pair, ``"valid"`` (0) or ``"same"`` (output size ``ceil(input / stride)``,
    an odd total padding putting the extra row/column at the bottom/right, as Keras and PyTorch do).
    ``groups``: both channel counts split into that many groups, each output group reading its input
    group only; ``groups == in_channels`` is a depthwise convolution (MobileNet).
    """
    _n = 2
    _op = "conv2d"
    _layout = "4-D (N, C, H, W)"


@register_layer
class Conv1d(_ConvNd):
    """1-D convolution of (N, C, L) inputs; weight (out_channels, in_channels/groups, k).

    ``padding`` as :class:`Conv2d`'s, plus ``"causal"`` (Keras's name): ``dilation * (k - 1)`` zeros on
    the left only, so output t sees inputs up to t and, at stride 1, the output is as long as the input
    (WaveNet-style stacks of dilated convolutions).
    """
    _n = 1
    _paddings = ("same", "valid", "causal")
    _op = "conv1d"
    _layout = "3-D (N, C, L)"


class _ConvTransposeNd(_ConvBase):
    _n = 2
    _op = "conv_transpose2d"
    _layout = "4-D (N, C, H, W)"
    config_schema = {"in_channels": "int", "out_channels": "int", "kernel_size": "int|ints",
                     "stride": "int|ints", "padding": "int|ints", "output_padding": "int|ints", "groups": "int",
                     "bias": "bool", "dilation": "int|ints", "padding_mode": "str"}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros") -> None:
        super().__init__()
        name, n = self._init_geometry(in_channels, out_channels, kernel_size, stride, dilation, groups), self._n
        self.padding = _ntuple(name, "padding", padding, n, minimum=0)
        self.output_padding = _ntuple(name, "output_padding", output_padding, n, minimum=0)
        for p, s_, d in zip(self.output_padding, self.stride, self.dilation):
            if p >= s_ and p >= d:
                raise ArgumentError(f"{name}: output_padding must be smaller than the stride or the dilation, got "
                                    f"output_padding {_compact(self.output_padding)}, stride "
                                    f"{_compact(self.stride)}, dilation {_compact(self.dilation)}")
        if padding_mode != "zeros":
            raise ArgumentError(f"{name}: padding_mode must be 'zeros' (as in PyTorch, transposed convolutions pad "
                                f"with zeros only), got {padding_mode!r}")
        self.padding_mode = padding_mode
        self._init_parameters((self.in_channels, self.out_channels // self.groups), bias)

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, ...]:
        """``output_padding``, or the one that gives ``output_size`` (the spatial sizes, or with N and C
        in front, as PyTorch's forward(input, output_size))."""
        if output_size is None:
            return self.output_padding
        n = self._n
        sizes = list(output_size)[-n:] if isinstance(output_size, (tuple, list)) else None
        if sizes is None or len(sizes) != n or not all(_is_int(v) for v in sizes):
            raise ArgumentError(f"{self._op}: output_size must be {n} sizes (optionally after N and C), "
                                f"got {output_size!r}")
        pads = []
        for i, want in enumerate(sizes):
            low = ((x.shape[2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                   + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            limit = max(self.stride[i], self.dilation[i])
            if not low <= want < low + limit:
                raise ShapeError(f"{self._op}: output_size {_compact(sizes)} is out of reach for input "
                                 f"{_size_str(x.shape[2:])}: dim {i} must be in [{low}, {low + limit - 1}]")
            pads.append(want - low)
        return tuple(pads)

    def forward(self, x: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        x = self._check_input(x)
        op = self._output_padding(x, output_size)
        fn = conv_transpose2d if self._n == 2 else conv_transpose1d
        args = (self.stride, self.padding, op, self.groups, self.dilation)
        if self._n == 1:
            args = (self.stride[0], self.padding[0], op[0], self.groups, self.dilation[0])
        return fn(x, self.weight, self.bias, *args)

    def short_description(self) -> str:
        s = "" if all(v == 1 for v in self.stride) else f", stride {_size_str(self.stride)}"
        return f"{self.in_channels}->{self.out_channels}, {self._kernel_text()}{s}"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        return s + self._repr_tail()

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _compact(self.kernel_size), "stride": _compact(self.stride),
                "padding": _compact(self.padding), "output_padding": _compact(self.output_padding),
                "groups": self.groups, "bias": self.bias is not None, "dilation": _compact(self.dilation),
                "padding_mode": self.padding_mode}


@register_layer
class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution of (N, C, H, W) inputs (a U-Net decoder's or a GAN generator's
    upsampling); weight (in_channels, out_channels/groups, kh, kw). Output size as PyTorch's:
    ``(H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``; ``forward(x, output_size)``
    picks the output_padding that gives ``output_size``. It runs as the backward-data GEMM of a conv.
    """
    _n = 2
    _op = "conv_transpose2d"
    _layout = "4-D (N, C, H, W)"


@register_layer
class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution of (N, C, L) inputs; weight (in_channels, out_channels/groups, k); as
    :class:`ConvTranspose2d` along L."""
    _n = 1
    _op = "conv_transpose1d"
    _layout = "3-D (N, C, L)"


# -- pooling ------------------------------------------------------------------------------------------
class _PoolNd(Module):
    _n = 2

    def _init_window(self, kernel_size: Any, stride: Any, padding: Any) -> None:
        name, n = type(self).__name__, self._n
        k = _ntuple(name, "kernel_size", kernel_size, n)
        if stride is not None:
            _ntuple(name, "stride", stride, n)
        p = _ntuple(name, "padding", padding, n, minimum=0)
        if any(2 * pi > ki for pi, ki in zip(p, k)):
            raise ArgumentError(f"{name}: padding {_plain(padding)} is more than half the kernel size "
                                f"{_size_str(k)}; expected padding <= {_compact([ki // 2 for ki in k])}")
        self.kernel_size = _plain(kernel_size)
        self.stride = _plain(stride) if stride is not None else self.kernel_size
        self._stride_given = stride is not None
        self.padding = _plain(padding)

    def short_description(self) -> str:
        k = _ntuple("", "", self.kernel_size, self._n)
        s = _ntuple("", "", self.stride, self._n)
        text = _size_str(k)
        if s != k:
            text += f", stride {_size_str(s)}"
        return text

    def _window_config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride if self._stride_given else None,
                "padding": self.padding}


def _plain(v: Any) -> Any:
    """An int stays an int; a tuple/list becomes a list of ints (JSON-friendly)."""
    if _is_int(v):
        return int(v)
    if isinstance(v, (tuple, list)):
        return [int(x) for x in v] if all(_is_int(x) for x in v) else list(v)
    return v


def _repr_size(v: Any) -> str:
    return str(tuple(v)) if isinstance(v, list) else str(v)


@register_layer
class MaxPool2d(_PoolNd):
    """2-D max pooling; ``stride`` defaults to ``kernel_size``. With ``return_indices=True`` the layer
    returns ``(output, indices)`` (PyTorch's flat per-plane indices, for :class:`MaxUnpool2d`)."""
    _n = 2
    config_schema = {"kernel_size": "int|ints", "stride": "int|ints|null", "padding": "int|ints",
                     "dilation": "int|ints", "return_indices": "bool", "ceil_mode": "bool"}

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self._init_window(kernel_size, stride, padding)
        _ntuple(type(self).__name__, "dilation", dilation, self._n)
        self.dilation = _plain(dilation)
        self.return_indices = _check_bool(type(self).__name__, "return_indices", return_indices)
        self.ceil_mode = _check_bool(type(self).__name__, "ceil_mode", ceil_mode)

    def forward(self, x: Tensor) -> Any:
        f = F.max_pool2d if self._n == 2 else F.max_pool1d
        return f(x, self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation,
                 ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={_repr_size(self.kernel_size)}, stride={_repr_size(self.stride)}, "
                f"padding={_repr_size(self.padding)}, dilation={_repr_size(self.dilation)}, "
                f"ceil_mode={self.ceil_mode}")

    def config(self) -> dict:
        extra = {"return_indices": True} if self.return_indices else {}
        return {**self._window_config(), "dilation": self.dilation, **extra, "ceil_mode": self.ceil_mode}


@register_layer
class MaxPool1d(MaxPool2d):
    """1-D max pooling of (N, C, L) inputs."""
    _n = 1
    config_schema = {"kernel_size": "int", "stride": "int|null", "padding": "int", "dilation": "int",
                     "return_indices": "bool", "ceil_mode": "bool"}


@register_layer
class AvgPool2d(_PoolNd):
    """2-D average pooling; ``stride`` defaults to ``kernel_size``; zero padding counted in the divisor
    unless ``count_include_pad=False``; ``divisor_override`` (a nonzero integer) divides every window by
    itself instead. (PyTorch's argument order: ``ceil_mode`` before ``count_include_pad``.)"""
    _n = 2
    config_schema = {"kernel_size": "int|ints", "stride": "int|ints|null", "padding": "int|ints",
                     "ceil_mode": "bool", "count_include_pad": "bool", "divisor_override": "int|null"}

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        name = type(self).__name__
        self._init_window(kernel_size, stride, padding)
        self.ceil_mode = _check_bool(name, "ceil_mode", ceil_mode)
        self.count_include_pad = _check_bool(name, "count_include_pad", count_include_pad)
        if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
            raise ArgumentError(f"{name}: divisor_override must be None or a nonzero integer, got "
                                f"{divisor_override!r}")
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def forward(self, x: Tensor) -> Tensor:
        f = F.avg_pool2d if self._n == 2 else F.avg_pool1d
        return f(x, self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                 count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    def extra_repr(self) -> str:
        return (f"kernel_size={_repr_size(self.kernel_size)}, stride={_repr_size(self.stride)}, "
                f"padding={_repr_size(self.padding)}")

    def config(self) -> dict:
        extra = {} if self.divisor_override is None else {"divisor_override": self.divisor_override}
        return {**self._window_config(), "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad,
                **extra}


@register_layer
class AvgPool1d(AvgPool2d):
    """1-D average pooling of (N, C, L) inputs."""
    _n = 1
    config_schema = {"kernel_size": "int", "stride": "int|null", "padding": "int", "ceil_mode": "bool",
                     "count_include_pad": "bool", "divisor_override": "int|null"}


@register_layer
class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (``None`` in a pair keeps that input size)."""
    config_schema = {"output_size": "int|int_or_null_list"}

    def __init__(self, output_size: Union[int, Sequence[Optional[int]]]) -> None:
        super().__init__()
        ok = (_is_int(output_size) and output_size >= 1) or (
            isinstance(output_size, (tuple, list)) and len(output_size) == 2
            and all(v is None or (_is_int(v) and v >= 1) for v in output_size))
        if not ok:
            raise ArgumentError(f"AdaptiveAvgPool2d: output_size must be an integer >= 1 or a pair of them "
                                f"(None keeps the input size), got {output_size!r}")
        self.output_size = int(output_size) if _is_int(output_size) else \
            [None if v is None else int(v) for v in output_size]  # type: ignore[union-attr]

    def forward(self, x: Tensor) -> Tensor:
        out = self.output_size if not isinstance(self.output_size, list) else tuple(self.output_size)
        return F.adaptive_avg_pool2d(x, out)

    def short_description(self) -> str:
        return f"output {_repr_size(self.output_size)}"

    def extra_repr(self) -> str:
        return f"output_size={_repr_size(self.output_size)}"

    def config(self) -> dict:
        return {"output_size": self.output_size}


@register_layer
class GlobalAvgPool2d(Module):
    """The mean over H and W: (N, C, H, W) -> (N, C) (Keras's GlobalAveragePooling2D)."""
    config_schema: dict = {}

    def forward(self, x: Tensor) -> Tensor:
        return F.global_avg_pool2d(x)

    def config(self) -> dict:
        return {}


# -- normalisation -----------------------------------------------------------------------------------
def _affine_parameters(module: Module, shape: tuple[int, ...], affine: bool, bias: bool = True) -> None:
    """A normalisation layer's ``weight`` (and ``bias``, unless ``bias`` is False) of ``shape``, or both
    registered as None without ``affine`` (PyTorch's names; set by :func:`_reset_affine`)."""
    if affine:
        module.weight = Parameter(init.empty(shape))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(init.empty(shape))
    else:
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    """weight 1, bias 0 (where present): deterministic, so it runs also when building for a load."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


def _running_stats(module: Module, features: int, track: bool) -> None:
    """``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers (None without ``track``)."""
    for name, value in (("running_mean", init.empty((features,))), ("running_var", init.empty((features,))),
                        ("num_batches_tracked", np.zeros((), dtype=np.int64))):
        module.register_buffer(name, Tensor(value) if track else None)


def _reset_running_stats(module: Module) -> None:
    if module.running_mean is not None:
        module.running_mean.data[...] = 0
        module.running_var.data[...] = 1
        module.num_batches_tracked.data[...] = 0


class _BatchNorm(Module):
    _op = "batch_norm2d"
    _ranks: tuple[int, ...] = (4,)
    _layout = "4-D (N, C, H, W)"
    config_schema = {"num_features": "int", "eps": "number", "momentum": "number|null", "affine": "bool",
                     "track_running_stats": "bool"}

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _check_int(name, "num_features", num_features)
        self.eps = _check_number(name, "eps", eps, 0.0, math.inf, lo_open=True)
        self.momentum = None if momentum is None else _check_number(name, "momentum", momentum, 0.0, 1.0)
        self.affine = _check_bool(name, "affine", affine)
        self.track_running_stats = _check_bool(name, "track_running_stats", track_running_stats)
        _affine_parameters(self, (self.num_features,), self.affine)
        _running_stats(self, self.num_features, self.track_running_stats)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        _reset_running_stats(self)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        x = _require_tensor(self._op, x)
        _check_rank(self._op, x, self._ranks, self._layout)
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{self._op}: input has {x.shape[1]} channels, expected {self.num_features} "
                             f"(input shape {x.shape})")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                          self.weight, self.bias, training=use_batch_stats, momentum=momentum, eps=self.eps)

    def short_description(self) -> str:
        return str(self.num_features)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats}


@register_layer
class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, H, W) per channel of (N, C, H, W) inputs. ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` are buffers (state, not parameters)."""
    _op = "batch_norm2d"
    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


@register_layer
class BatchNorm1d(_BatchNorm):
    """Batch normalisation per feature of (N, C) or (N, C, L) inputs."""
    _op = "batch_norm1d"
    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


# -- activations and shape layers --------------------------------------------------------------------
@register_layer
class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored (never in place)."""
    config_schema = {"inplace": "bool"}

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(_require_tensor("relu", x))

    def config(self) -> dict:
        return {}


@register_layer
class Softmax(Module):
    """softmax along ``dim``."""
    config_schema = {"dim": "int"}

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        if not _is_int(dim):
            raise ArgumentError(f"Softmax: dim must be an integer, got {dim!r}")
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(_require_tensor("softmax", x), self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def config(self) -> dict:
        return {"dim": self.dim}


@register_layer
class LogSoftmax(Softmax):
    """log(softmax) along ``dim``, computed stably."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(_require_tensor("log_softmax", x), self.dim)


@register_layer
class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` (default: everything but the batch dim)."""
    config_schema = {"start_dim": "int", "end_dim": "int"}

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        if not _is_int(start_dim) or not _is_int(end_dim):
            raise ArgumentError(f"Flatten: start_dim and end_dim must be integers, got {start_dim!r}, {end_dim!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = _require_tensor("flatten", x)
        n = x.ndim
        for arg, d in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -max(n, 1) <= d < max(n, 1):
                raise ShapeError(f"flatten: {arg} {d} is out of range for input shape {x.shape}")
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


@register_layer
class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features)."""
    config_schema = {"in_features": "int", "out_features": "int", "bias": "bool"}

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _check_int("Linear", "in_features", in_features)
        self.out_features = _check_int("Linear", "out_features", out_features)
        self.weight = Parameter(init.empty((self.out_features, self.in_features)))
        if _check_bool("Linear", "bias", bias):
            self.bias = Parameter(init.empty((self.out_features,)))
        else:
            self.register_parameter("bias", None)
        if init.initializing():
            self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        x = _require_tensor("linear", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            features = x.shape[-1] if x.ndim else 0
            hint = " (is the input shape or the Flatten before it right?)" if x.ndim == 2 else ""
            raise ShapeError(f"linear: input has {features} features (input shape {x.shape}), expected "
                             f"{self.in_features} (weight shape {self.weight.shape}){hint}")
        if x.dtype != self.weight.dtype and not is_autocast_enabled(x.device.name):  # (autocast casts both)
            raise ArgumentError(f"linear: input has dtype {x.dtype}, the layer's weight {self.weight.dtype}; "
                                f"convert the input with .to(dtype=...) or the model with .float()/.double()")
        return F.linear(x, self.weight, self.bias)

    def short_description(self) -> str:
        return f"{self.in_features}->{self.out_features}"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}


@register_layer
class Dropout(Module):
    """Zero each element with probability ``p`` in training mode (scaling the rest by 1/(1-p)); the
    identity in eval mode. ``inplace`` is accepted for PyTorch compatibility and ignored."""
    config_schema = {"p": "number", "inplace": "bool"}

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_number("Dropout", "p", p, 0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(_require_tensor("dropout", x), self.p, self.training)

    def short_description(self) -> str:
        return f"p={self.p}"

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"

    def config(self) -> dict:
        return {"p": self.p}


@register_layer
class Identity(Module):
    """Returns its input (arguments are accepted and ignored, as PyTorch's)."""
    config_schema: dict = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x

    def config(self) -> dict:
        return {}
