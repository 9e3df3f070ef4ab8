"""Normalization and channel-dropout layers with PyTorch's names, argument order, defaults, parameter and
buffer names (so state_dicts match): GroupNorm, LayerNorm, InstanceNorm1d/2d, LocalResponseNorm,
Dropout1d, Dropout2d. The ops are gpucnn/functions/normalization.py and functions/dropout.py.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..functions.dropout import dropout1d, dropout2d
from ..functions.normalization import group_norm, instance_norm, layer_norm, local_response_norm
from ..tensor import Tensor
from .layers import (_affine_parameters, _check_bool, _check_int, _check_number, _require_tensor, _reset_affine,
                     _reset_running_stats, _running_stats)
from .module import Module
from .registry import register_layer


@register_layer
class GroupNorm(Module):
    """Group normalisation of (N, C, *) inputs: ``num_groups`` groups of ``num_channels // num_groups``
    channels, each normalised over its channels and positions; per-channel ``weight`` (ones) and ``bias``
    (zeros) when ``affine``."""
    config_schema = {"num_groups": "int", "num_channels": "int", "eps": "number", "affine": "bool", "bias": "bool"}

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_groups = _check_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = _check_int("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ArgumentError(f"GroupNorm: num_channels {self.num_channels} must be divisible by num_groups "
                                f"{self.num_groups}")
        self.eps = _check_number("GroupNorm", "eps", eps, 0.0, math.inf)
        self.affine = _check_bool("GroupNorm", "affine", affine)
        self._bias = _check_bool("GroupNorm", "bias", bias)
        _affine_parameters(self, (self.num_channels,), self.affine, self._bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        x = _require_tensor("group_norm", x)
        if x.ndim >= 2 and x.shape[1] != self.num_channels:
            raise ShapeError(f"group_norm: input has {x.shape[1]} channels, expected {self.num_channels} "
                             f"(input shape {x.shape})")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def short_description(self) -> str:
        return f"{self.num_groups} groups of {self.num_channels}"

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def config(self) -> dict:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine, "bias": self._bias}


@register_layer
class LayerNorm(Module):
    """Layer normalisation over the last dims, ``normalized_shape`` (an int or a sequence); elementwise
    ``weight`` (ones) and ``bias`` (zeros; none with ``bias=False``) when ``elementwise_affine``."""
    config_schema = {"normalized_shape": "int|ints", "eps": "number", "elementwise_affine": "bool", "bias": "bool"}

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (numbers.Integral, np.integer)) else normalized_shape
        if not isinstance(shape, (tuple, list)) or not shape:
            raise ArgumentError(f"LayerNorm: normalized_shape must be an integer >= 1 or a non-empty list of them, "
                                f"got {normalized_shape!r}")
        self.normalized_shape = tuple(_check_int("LayerNorm", "normalized_shape", n) for n in shape)
        self.eps = _check_number("LayerNorm", "eps", eps, 0.0, math.inf)
        self.elementwise_affine = _check_bool("LayerNorm", "elementwise_affine", elementwise_affine)
        use_bias = _check_bool("LayerNorm", "bias", bias)
        self._bias = use_bias
        _affine_parameters(self, self.normalized_shape, self.elementwise_affine, use_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(_require_tensor("layer_norm", x), self.normalized_shape, self.weight, self.bias, self.eps)

    def short_description(self) -> str:
        return "x".join(map(str, self.normalized_shape))

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    def config(self) -> dict:
        shape = self.normalized_shape
        return {"normalized_shape": shape[0] if len(shape) == 1 else list(shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self._bias}


class _InstanceNorm(Module):
    _op = "instance_norm2d"
    _ranks = (3, 4)
    _layout = "(C, H, W) or (N, C, H, W)"
    config_schema = {"num_features": "int", "eps": "number", "momentum": "number|null", "affine": "bool",
                     "track_running_stats": "bool", "bias": "bool"}

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = False,
                 track_running_stats: bool = False, *, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _check_int(name, "num_features", num_features)
        self.eps = _check_number(name, "eps", eps, 0.0, math.inf)
        self.momentum = None if momentum is None else _check_number(name, "momentum", momentum, 0.0, 1.0)
        self.affine = _check_bool(name, "affine", affine)
        self.track_running_stats = _check_bool(name, "track_running_stats", track_running_stats)
        self._bias = _check_bool(name, "bias", bias)
        _affine_parameters(self, (self.num_features,), self.affine, self._bias)
        _running_stats(self, self.num_features, self.track_running_stats)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        _reset_running_stats(self)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        x = _require_tensor(self._op, x)
        if x.ndim not in self._ranks:
            raise ShapeError(f"{self._op}: expected a {self._layout} input, got rank {x.ndim} (input shape {x.shape})")
        unbatched = x.ndim == self._ranks[0]
        if unbatched:
            x = x.unsqueeze(0)
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ShapeError(f"{self._op}: input has {x.shape[1]} channels, expected num_features "
                             f"{self.num_features} (input shape {x.shape})")
        use_input_stats = self.training or not self.track_running_stats
        y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                          0.0 if self.momentum is None else self.momentum, self.eps)
        return y.squeeze(0) if unbatched else y

    def short_description(self) -> str:
        return str(self.num_features)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats, "bias": self._bias}


@register_layer
class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) (or unbatched (C, H, W)) inputs: each plane over its H x W;
    ``affine`` weight and bias and ``track_running_stats`` (used in eval mode) as PyTorch's, both off by
    default."""
    _op = "instance_norm2d"
    _ranks = (3, 4)
    _layout = "(C, H, W) or (N, C, H, W)"


@register_layer
class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) (or unbatched (C, L)) inputs, as :class:`InstanceNorm2d`."""
    _op = "instance_norm1d"
    _ranks = (2, 3)
    _layout = "(C, L) or (N, C, L)"


@register_layer
class LocalResponseNorm(Module):
    """Local response normalisation across ``size`` neighbouring channels (AlexNet's):
    ``x / (k + alpha / size * sum x^2) ** beta``."""
    config_schema = {"size": "int", "alpha": "number", "beta": "number", "k": "number"}

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = _check_int("LocalResponseNorm", "size", size)
        self.alpha = _check_number("LocalResponseNorm", "alpha", alpha, -math.inf, math.inf)
        self.beta = _check_number("LocalResponseNorm", "beta", beta, -math.inf, math.inf)
        self.k = _check_number("LocalResponseNorm", "k", k, -math.inf, math.inf)

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(_require_tensor("local_response_norm", x), self.size, self.alpha, self.beta,
                                   self.k)

    def short_description(self) -> str:
        return f"size {self.size}"

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

    def config(self) -> dict:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


class _ChannelDropout(Module):
    config_schema = {"p": "number", "inplace": "bool"}
    _fn = staticmethod(dropout2d)

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        self.p = _check_number(name, "p", p, 0.0, 1.0)
        self.inplace = _check_bool(name, "inplace", inplace)

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(_require_tensor(type(self).__name__.lower(), x), self.p, self.training, self.inplace)

    def short_description(self) -> str:
        return f"p={self.p}"

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def config(self) -> dict:
        return {"p": self.p, "inplace": self.inplace}


@register_layer
class Dropout2d(_ChannelDropout):
    """Zero whole channels of (N, C, H, W) inputs with probability ``p`` in training mode (scaling the rest
    by 1/(1-p)); the identity in eval mode."""
    _fn = staticmethod(dropout2d)


@register_layer
class Dropout1d(_ChannelDropout):
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability ``p`` in training mode."""
    _fn = staticmethod(dropout1d)
