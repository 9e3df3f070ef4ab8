"""Layers and models, like ``torch.nn``: :class:`Module`, :class:`Parameter`, the built-in layers,
:class:`Sequential`, the layer registry (architecture as data) and initialisers (:mod:`gpucnn.nn.init`).

``import gpucnn.nn.functional as F`` is :mod:`gpucnn.functional`.
"""
from __future__ import annotations

from . import activation, functional, init, utils
from .activation import *  # noqa: F401,F403  (ELU, GELU, PReLU, ...: one per activation definition)
from .container import BasicBlock, ModuleDict, ModuleList, ParameterDict, ParameterList, Residual, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
                     ConvTranspose1d, ConvTranspose2d, Dropout,
                     Flatten, GlobalAvgPool2d, Identity, Linear, LogSoftmax, MaxPool1d, MaxPool2d, ReLU, Softmax)
from . import loss as _loss
from .loss import *  # noqa: F401,F403  (CrossEntropyLoss, MSELoss, ...)
from .module import Module, Parameter, RemovableHandle
from .normalization import (Dropout1d, Dropout2d, GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm,
                            LocalResponseNorm)
from .pooling import AdaptiveMaxPool2d, MaxUnpool1d, MaxUnpool2d
from .registry import (build_from_config, get_layer_class, known_layers, layer_from_config, layer_to_config,
                       register_layer, validate_config)
from .upsample import PixelShuffle, PixelUnshuffle, Upsample, upsample_nearest2d
from .sync_batchnorm import SyncBatchNorm
from . import parallel

__all__ = [
    "Module", "Parameter", "RemovableHandle",
    "Conv2d", "Conv1d", "ConvTranspose2d", "ConvTranspose1d",
    "MaxPool2d", "MaxPool1d", "AvgPool2d", "AvgPool1d", "AdaptiveAvgPool2d",
    "GlobalAvgPool2d", "BatchNorm2d", "BatchNorm1d", "SyncBatchNorm", "ReLU", "Softmax", "LogSoftmax", "Flatten", "Linear",
    "Dropout", "Identity", "Upsample", "Sequential", "Residual", "BasicBlock",
    "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "register_layer", "layer_from_config", "layer_to_config", "validate_config", "build_from_config",
    "known_layers", "get_layer_class", "upsample_nearest2d", "init", "functional", "parallel",
    "AdaptiveMaxPool2d", "MaxUnpool2d", "MaxUnpool1d", "PixelShuffle", "PixelUnshuffle",
    "GroupNorm", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "LocalResponseNorm", "Dropout1d", "Dropout2d",
] + activation.__all__ + _loss.__all__
