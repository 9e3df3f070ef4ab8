"""The functional API, mirroring ``torch.nn.functional``: stateless ops on tensors."""
from __future__ import annotations

from .functions.activation import dropout, log_softmax, relu, softmax
from .functions.array import cat, flatten
from .functions.batch_norm import batch_norm
from .functions.conv import conv1d, conv2d
from .functions.conv_transpose import conv_transpose1d, conv_transpose2d
from .functions.encoding import one_hot
from .functions.interpolate import interpolate
from .functions.linear import linear
from .functions.loss import cross_entropy
from .functions.dropout import dropout1d, dropout2d
from .functions.normalization import group_norm, instance_norm, layer_norm, local_response_norm
from .functions.padding import pad
from .functions.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from .functions.pooling import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d, avg_pool2d, global_avg_pool2d,
                                max_pool1d, max_pool2d, max_unpool1d, max_unpool2d)

from .functions import activation as _activation
from .functions import loss as _loss

# The activations (elu, gelu, prelu, ...) and losses (nll_loss, mse_loss, ...): each module lists its own.
globals().update({name: getattr(_activation, name) for name in _activation.FUNCTIONALS})
globals().update({name: getattr(_loss, name) for name in _loss.FUNCTIONALS})

__all__ = list(dict.fromkeys([
    "conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d", "max_pool2d", "avg_pool2d", "max_pool1d",
    "avg_pool1d", "adaptive_avg_pool2d", "global_avg_pool2d", "batch_norm", "relu", "softmax", "log_softmax",
    "dropout", "linear", "flatten", "cat", "cross_entropy", "pad", "interpolate", "one_hot",
    "adaptive_max_pool2d", "max_unpool2d", "max_unpool1d", "pixel_shuffle", "pixel_unshuffle",
    "layer_norm", "group_norm", "instance_norm", "local_response_norm", "dropout1d", "dropout2d",
] + _activation.FUNCTIONALS + _loss.FUNCTIONALS))
