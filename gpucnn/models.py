"""Built-in models by name, and models described in JSON/TOML files.

>>> from gpucnn.models import build_model, list_models
>>> list_models()
['inception-mini', 'keras-mnist', 'mobilenetv2-cifar', 'resnet-cifar', 'resnet18-cifar', 'strided-42', 'unet',
 'unet-tiny', 'vgg-cifar', 'vgg11-bn-cifar', 'wavenet-tiny']
>>> model = build_model("keras-mnist")          # or build_model("examples/models/small-cnn.toml")

Every built model has ``input_shape`` (C, H, W), ``num_classes`` and ``name`` attributes.

A model file (JSON, or TOML with ``[[layers]]`` tables)::

    {"format": "gpucnn-model-spec", "version": 1, "name": "small-cnn", "input_shape": [1, 28, 28],
     "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 3, "padding": "same"},
                {"type": "ReLU"}, ...]}

``layers`` becomes a :class:`gpucnn.nn.Sequential`; instead, ``architecture`` may give one layer table
(e.g. ``{"type": "UNet", "in_channels": 1, "num_classes": 2}``). Optional keys: ``num_classes`` (else
taken from the output shape), ``classes`` (class names), ``description``. Layer types are those of the
layer registry (:func:`gpucnn.nn.known_layers`); the whole description is checked before anything is
built, and every problem raises :class:`ModelFormatError` naming the file and the entry, e.g.
``small.toml: layers[3]: unknown layer type 'Conv3d' (known: ...)``. The layers are also run once on a
zero batch of ``input_shape`` so that a layer that does not fit (a wrong ``in_features``) is reported
when the file is read.
"""
from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from typing import Any, Callable, Optional

from .errors import ArgumentError, GpucnnError, ModelFormatError
from .functions.array import cat
from .nn import (BasicBlock, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, Dropout, Flatten, GlobalAvgPool2d,
                 Linear, MaxPool2d, Module, ModuleList, ReLU, ReLU6, Sequential, Upsample, register_layer)
from .nn.layers import _check_int
from .tensor import Tensor

SPEC_FORMAT = "gpucnn-model-spec"
SPEC_VERSION = 1


# -- the U-Net (a Module subclass with skip concatenations, registered so it can be saved) -------------
def _double_conv(cin: int, cout: int) -> Sequential:
    return Sequential(Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU(),
                      Conv2d(cout, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU())


UPSAMPLINGS = ("nearest", "transposed")


@register_layer
class UNet(Module):
    """A U-Net: ``depth`` 2x downsampling levels and a bottleneck, then as many 2x upsampling steps, each
    concatenated along channels (``gpucnn.cat``) with the encoder output of its level; per-pixel class
    logits (N, num_classes, H, W). H and W must be multiples of ``2 ** depth``.

    Level ``i`` (1-based) has ``c * 2**(i-1)`` channels (``c = base_channels``): ``enc{i}``, then max
    pool ``pool{i}``; ``bottleneck`` has ``c * 2**depth``. Decoder level ``i``: ``up{i}`` then
    ``dec{i}`` on the concatenation with ``enc{i}``'s output. ``upsampling="nearest"``: ``up{i}`` is a
    nearest 2x Upsample (no weights; ``dec{i}`` takes both channel counts, the original small U-Net);
    ``"transposed"``: a 2x2 stride-2 ConvTranspose2d halving the channels (Ronneberger et al.'s up-conv).
    Each block is conv3x3-BN-ReLU twice; ``head`` is a 1x1 conv to ``num_classes``.
    """
    config_schema = {"in_channels": "int", "num_classes": "int", "base_channels": "int", "depth": "int",
                     "upsampling": "str"}

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 8, depth: int = 2,
                 upsampling: str = "nearest") -> None:
        super().__init__()
        self.in_channels = _check_int("UNet", "in_channels", in_channels)
        self.num_classes = _check_int("UNet", "num_classes", num_classes)
        c = self.base_channels = _check_int("UNet", "base_channels", base_channels)
        self.depth = _check_int("UNet", "depth", depth)
        if upsampling not in UPSAMPLINGS:
            raise ArgumentError(f"UNet: upsampling must be one of {', '.join(UPSAMPLINGS)}, got {upsampling!r}")
        self.upsampling = upsampling
        widths = [c * 2 ** i for i in range(self.depth + 1)]  # level 1 .. depth, then the bottleneck
        cin = in_channels
        for i in range(1, self.depth + 1):
            setattr(self, f"enc{i}", _double_conv(cin, widths[i - 1]))
            setattr(self, f"pool{i}", MaxPool2d(2))
            cin = widths[i - 1]
        self.bottleneck = _double_conv(cin, widths[-1])
        for i in range(self.depth, 0, -1):  # (registered deepest first: the order they run in)
            below, skip = widths[i], widths[i - 1]
            if upsampling == "transposed":
                setattr(self, f"up{i}", ConvTranspose2d(below, skip, 2, stride=2))
                setattr(self, f"dec{i}", _double_conv(skip + skip, skip))
            else:
                setattr(self, f"up{i}", Upsample(scale_factor=2))
                setattr(self, f"dec{i}", _double_conv(below + skip, skip))
        self.head = Conv2d(c, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        multiple = 2 ** self.depth
        if isinstance(x, Tensor) and x.ndim == 4 and (x.shape[2] % multiple or x.shape[3] % multiple):
            raise ArgumentError(f"unet: input height and width must be multiples of {multiple} ({self.depth} "
                                f"2x poolings), got input shape {x.shape}")
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.bottleneck(x)
        for i in range(self.depth, 0, -1):
            x = getattr(self, f"dec{i}")(cat([getattr(self, f"up{i}")(x), skips[i - 1]], dim=1))
        return self.head(x)

    def short_description(self) -> str:
        return (f"{self.in_channels}->{self.num_classes}, base {self.base_channels}, depth {self.depth}, "
                f"{self.upsampling} upsampling")

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "base_channels": self.base_channels, "depth": self.depth, "upsampling": self.upsampling}


# -- MobileNetV2's inverted residual ---------------------------------------------------------------------
@register_layer
class InvertedResidual(Module):
    """MobileNetV2's block (torchvision's layout): a 1x1 expansion to ``in_channels * expand_ratio`` + BN
    + ReLU6 (left out when ``expand_ratio`` is 1), a 3x3 depthwise conv with ``stride`` + BN + ReLU6, a
    linear 1x1 projection to ``out_channels`` + BN; the input is added when the stride is 1 and the
    channel counts match. Convs have no bias (BN follows)."""
    config_schema = {"in_channels": "int", "out_channels": "int", "stride": "int", "expand_ratio": "int"}

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: int = 6) -> None:
        super().__init__()
        self.in_channels = _check_int("InvertedResidual", "in_channels", in_channels)
        self.out_channels = _check_int("InvertedResidual", "out_channels", out_channels)
        self.stride = _check_int("InvertedResidual", "stride", stride)
        if self.stride not in (1, 2):
            raise ArgumentError(f"InvertedResidual: stride must be 1 or 2, got {stride!r}")
        self.expand_ratio = _check_int("InvertedResidual", "expand_ratio", expand_ratio)
        hidden = in_channels * expand_ratio
        layers: list[Module] = []
        if expand_ratio != 1:
            layers += [Conv2d(in_channels, hidden, 1, bias=False), BatchNorm2d(hidden), ReLU6()]
        layers += [Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
                   BatchNorm2d(hidden), ReLU6(),
                   Conv2d(hidden, out_channels, 1, bias=False), BatchNorm2d(out_channels)]
        self.conv = Sequential(*layers)
        self.use_residual = self.stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out

    def short_description(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride {self.stride}, expand {self.expand_ratio}"

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "stride": self.stride,
                "expand_ratio": self.expand_ratio}


# -- Inception's multi-branch module ----------------------------------------------------------------------
def _conv_bn_relu(cin: int, cout: int, kernel_size: int) -> Sequential:
    return Sequential(Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=False), BatchNorm2d(cout),
                      ReLU())


@register_layer
class InceptionModule(Module):
    """GoogLeNet's Inception module (torchvision's argument names): four branches run on the same input
    and concatenated along channels: 1x1 (``ch1x1``); 1x1 reduce then 3x3 (``ch3x3red``, ``ch3x3``); 1x1
    reduce then 5x5 (``ch5x5red``, ``ch5x5``); 3x3 stride-1 max pool then 1x1 (``pool_proj``). Every conv
    is conv-BN-ReLU without bias; the output has ``ch1x1 + ch3x3 + ch5x5 + pool_proj`` channels and the
    input's height and width."""
    config_schema = {"in_channels": "int", "ch1x1": "int", "ch3x3red": "int", "ch3x3": "int", "ch5x5red": "int",
                     "ch5x5": "int", "pool_proj": "int"}

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        args = dict(in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3, ch5x5red=ch5x5red,
                    ch5x5=ch5x5, pool_proj=pool_proj)
        self._args = {k: _check_int("InceptionModule", k, v) for k, v in args.items()}
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = _conv_bn_relu(in_channels, ch1x1, 1)
        self.branch2 = Sequential(_conv_bn_relu(in_channels, ch3x3red, 1), _conv_bn_relu(ch3x3red, ch3x3, 3))
        self.branch3 = Sequential(_conv_bn_relu(in_channels, ch5x5red, 1), _conv_bn_relu(ch5x5red, ch5x5, 5))
        self.branch4 = Sequential(MaxPool2d(3, stride=1, padding=1), _conv_bn_relu(in_channels, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def short_description(self) -> str:
        return f"{self.in_channels}->{self.out_channels}"

    def config(self) -> dict:
        return dict(self._args)


# -- WaveNet ------------------------------------------------------------------------------------------------
@register_layer
class WaveNet(Module):
    """A WaveNet-style stack (van den Oord et al. 2016) over (N, in_channels, T) -> (N, num_classes, T)
    logits: the class of sample ``t + 1`` predicted at position ``t`` from samples ``<= t`` only.

    ``causal`` conv (kernel 2) in_channels -> ``residual_channels``; then per dilation ``d`` a gated
    unit ``tanh(filter(x)) * sigmoid(gate(x))`` (two causal Conv1d of ``kernel_size`` and dilation ``d``,
    ``padding="causal"``), a 1x1 ``residual`` conv added to the unit's input (not after the last unit,
    whose output goes only to its skip) and a 1x1 ``skip`` conv to
    ``skip_channels``; the skips are summed, then ReLU, 1x1, ReLU, 1x1 to ``num_classes``. ``dilations``
    defaults to 1, 2, 4, ... ``2 ** (num_layers - 1)``. :attr:`receptive_field` says how many input
    samples one output sees."""
    config_schema = {"in_channels": "int", "num_classes": "int", "residual_channels": "int",
                     "skip_channels": "int", "kernel_size": "int", "dilations": "ints"}

    def __init__(self, in_channels: int = 1, num_classes: int = 256, residual_channels: int = 16,
                 skip_channels: int = 32, kernel_size: int = 2, dilations: Any = (1, 2, 4, 8, 16)) -> None:
        super().__init__()
        self.in_channels = _check_int("WaveNet", "in_channels", in_channels)
        self.num_classes = _check_int("WaveNet", "num_classes", num_classes)
        r = self.residual_channels = _check_int("WaveNet", "residual_channels", residual_channels)
        s = self.skip_channels = _check_int("WaveNet", "skip_channels", skip_channels)
        k = self.kernel_size = _check_int("WaveNet", "kernel_size", kernel_size, minimum=2)
        if isinstance(dilations, (str, bytes)) or not hasattr(dilations, "__iter__") or not list(dilations):
            raise ArgumentError(f"WaveNet: dilations must be a non-empty list of integers >= 1, got {dilations!r}")
        self.dilations = [_check_int("WaveNet", "dilations", d) for d in dilations]
        self.causal = Conv1d(in_channels, r, 2, padding="causal")
        self.filters = ModuleList(Conv1d(r, r, k, dilation=d, padding="causal") for d in self.dilations)
        self.gates = ModuleList(Conv1d(r, r, k, dilation=d, padding="causal") for d in self.dilations)
        # (the last layer's unit feeds only its skip: a residual conv there would have no use)
        self.residuals = ModuleList(Conv1d(r, r, 1) for _ in self.dilations[1:])
        self.skips = ModuleList(Conv1d(r, s, 1) for _ in self.dilations)
        self.relu = ReLU()
        self.post = Conv1d(s, s, 1)
        self.head = Conv1d(s, num_classes, 1)

    @property
    def receptive_field(self) -> int:
        """Input samples that reach one output: the causal conv's 2 plus ``(k - 1) * d`` per layer."""
        return 2 + (self.kernel_size - 1) * sum(self.dilations)

    def forward(self, x: Tensor) -> Tensor:
        x = self.causal(x)
        skip = None
        for i, (f, g, sk) in enumerate(zip(self.filters, self.gates, self.skips)):
            z = f(x).tanh() * g(x).sigmoid()
            if i < len(self.residuals):
                x = x + self.residuals[i](z)
            skip = sk(z) if skip is None else skip + sk(z)
        return self.head(self.relu(self.post(self.relu(skip))))

    def short_description(self) -> str:
        return (f"{self.in_channels}->{self.num_classes}, {len(self.dilations)} layers, dilations "
                f"{self.dilations}, receptive field {self.receptive_field}")

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "residual_channels": self.residual_channels, "skip_channels": self.skip_channels,
                "kernel_size": self.kernel_size, "dilations": list(self.dilations)}


# -- the built-in models ----------------------------------------------------------------------------
def keras_mnist() -> Module:
    """The Keras MNIST convnet: 2 x (conv3x3 "same" + ReLU + 2x2 max pool), dense 128, dense 10.
    421,642 parameters (320 / 18,496 / 401,536 / 1,290)."""
    return Sequential(
        Conv2d(1, 32, 3, padding="same"), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding="same"), ReLU(), MaxPool2d(2),
        Flatten(), Linear(64 * 7 * 7, 128), ReLU(), Linear(128, 10))


def strided_42() -> Module:
    """3x64x64 -> 42 classes: three 3x3 stride-2 "same" convs (3->16->64->128; 32x32, 16x16, 8x8), each
    followed by BatchNorm2d and ReLU, global average pooling, Linear(128, 42). The convs keep their bias
    (Keras's default, even before BatchNorm): 89,418 parameters, plus 416 BatchNorm running-statistic
    values (buffers, not parameters)."""
    layers: list[Module] = []
    cin = 3
    for cout in (16, 64, 128):
        layers += [Conv2d(cin, cout, 3, stride=2, padding="same"), BatchNorm2d(cout), ReLU()]
        cin = cout
    return Sequential(*layers, GlobalAvgPool2d(), Linear(128, 42))


def resnet_cifar() -> Module:
    """A small ResNet for 3x32x32: conv3x3 16 + BN + ReLU, BasicBlocks 16->16, 16->32 (stride 2),
    32->64 (stride 2), global average pooling, Linear(64, 10)."""
    return Sequential(
        Conv2d(3, 16, 3, padding=1, bias=False), BatchNorm2d(16), ReLU(),
        BasicBlock(16, 16), BasicBlock(16, 32, stride=2), BasicBlock(32, 64, stride=2),
        GlobalAvgPool2d(), Linear(64, 10))


def vgg_cifar() -> Module:
    """A small VGG for 3x32x32: three stages of 2 x (conv3x3 + BN + ReLU) + 2x2 max pool (32, 64, 128
    channels; 32 -> 16 -> 8 -> 4), then Flatten, Dropout(0.5), Linear(2048, 10)."""
    layers: list[Module] = []
    cin = 3
    for cout in (32, 64, 128):
        for _ in range(2):
            layers += [Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU()]
            cin = cout
        layers.append(MaxPool2d(2))
    return Sequential(*layers, Flatten(), Dropout(0.5), Linear(128 * 4 * 4, 10))


def unet_tiny(in_channels: int = 1, num_classes: int = 2) -> Module:
    """A tiny U-Net (:class:`UNet`, base 8 channels, two levels, nearest upsampling) for 1x28x28 images
    -> 2 classes per pixel."""
    return UNet(in_channels=in_channels, num_classes=num_classes, base_channels=8)


def unet(in_channels: int = 3, num_classes: int = 4) -> Module:
    """A U-Net (:class:`UNet`) with three levels of 16, 32, 64 channels, a 128-channel bottleneck and a
    transposed-conv decoder, for 3x64x64 images -> 4 classes per pixel (the ``shapes`` dataset)."""
    return UNet(in_channels=in_channels, num_classes=num_classes, base_channels=16, depth=3,
                upsampling="transposed")


def resnet18_cifar(num_classes: int = 10) -> Module:
    """ResNet-18 for 3x32x32 (the CIFAR variant of kuangliu/pytorch-cifar, torchvision's BasicBlock):
    a 3x3 stride-1 stem conv of 64 channels + BN + ReLU and no max pool, then [2, 2, 2, 2] BasicBlocks
    of 64, 128 (stride 2), 256 (stride 2), 512 (stride 2) channels, global average pooling,
    Linear(512, classes). 11,173,962 parameters at 10 classes."""
    layers: list[Module] = [Conv2d(3, 64, 3, padding=1, bias=False), BatchNorm2d(64), ReLU()]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        layers += [BasicBlock(cin, cout, stride=1 if i == 0 else 2), BasicBlock(cout, cout)]
        cin = cout
    return Sequential(*layers, GlobalAvgPool2d(), Linear(512, num_classes))


#: MobileNetV2's stages (expansion t, channels c, blocks n, first stride s); CIFAR: stride 1 in the
#: stem and the 24-channel stage (torchvision has 2 in both), so 32x32 inputs end at 4x4, not 1x1
MOBILENETV2_CIFAR_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                            (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenetv2_cifar(num_classes: int = 10) -> Module:
    """MobileNetV2 (width 1.0, torchvision's layers) for 3x32x32: a 3x3 stem of 32 channels + BN +
    ReLU6, 17 :class:`InvertedResidual` blocks (:data:`MOBILENETV2_CIFAR_STAGES`), a 1x1 conv to 1280 +
    BN + ReLU6, global average pooling, Dropout(0.2), Linear(1280, classes). 2,236,682 parameters at 10
    classes (torchvision's count: the strides change no weights)."""
    layers: list[Module] = [Conv2d(3, 32, 3, padding=1, bias=False), BatchNorm2d(32), ReLU6()]
    cin = 32
    for t, c, n, s in MOBILENETV2_CIFAR_STAGES:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, stride=s if i == 0 else 1, expand_ratio=t))
            cin = c
    layers += [Conv2d(cin, 1280, 1, bias=False), BatchNorm2d(1280), ReLU6()]
    return Sequential(*layers, GlobalAvgPool2d(), Dropout(0.2), Linear(1280, num_classes))


def vgg11_bn_cifar(num_classes: int = 10) -> Module:
    """VGG-11 with batch norm for 3x32x32 (kuangliu/pytorch-cifar's VGG('VGG11')): 3x3 convs (with bias,
    as torchvision's vgg11_bn) + BN + ReLU of 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M
    (M: 2x2 max pool; 32 -> 1), Flatten, Linear(512, classes). 9,231,114 parameters at 10 classes."""
    layers: list[Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(MaxPool2d(2))
        else:
            layers += [Conv2d(cin, int(v), 3, padding=1), BatchNorm2d(int(v)), ReLU()]
            cin = int(v)
    return Sequential(*layers, Flatten(), Linear(512, num_classes))


def inception_mini(num_classes: int = 10) -> Module:
    """A small GoogLeNet for 3x32x32: a 3x3 stem of 32 channels + BN + ReLU, two
    :class:`InceptionModule` blocks (32 -> 64 -> 96 channels), 2x2 max pool, two more (96 -> 128 -> 160),
    global average pooling, Linear(160, classes)."""
    return Sequential(
        _conv_bn_relu(3, 32, 3),
        InceptionModule(32, 16, 16, 24, 8, 12, 12),      # -> 64
        InceptionModule(64, 24, 24, 40, 8, 16, 16),      # -> 96
        MaxPool2d(2),
        InceptionModule(96, 32, 32, 48, 12, 24, 24),     # -> 128
        InceptionModule(128, 40, 40, 64, 16, 28, 28),    # -> 160
        GlobalAvgPool2d(), Linear(160, num_classes))


def wavenet_tiny(in_channels: int = 1, num_classes: int = 256) -> Module:
    """A tiny :class:`WaveNet`: 16 residual and 32 skip channels, dilations 1, 2, 4, 8, 16 (kernel 2;
    receptive field 33 samples), 256 mu-law classes per position; built-in input 1 x 64 samples."""
    return WaveNet(in_channels=in_channels, num_classes=num_classes, residual_channels=16, skip_channels=32,
                   kernel_size=2, dilations=(1, 2, 4, 8, 16))


_MODELS: "OrderedDict[str, tuple[Callable[..., Module], tuple[int, ...], int, str]]" = OrderedDict([
    ("keras-mnist", (keras_mnist, (1, 28, 28), 10, "Keras's MNIST convnet (421,642 params)")),
    ("strided-42", (strided_42, (3, 64, 64), 42, "3 stride-2 convs + BN, global pool, 42 classes")),
    ("resnet-cifar", (resnet_cifar, (3, 32, 32), 10, "small ResNet (3 basic blocks) for CIFAR-10")),
    ("vgg-cifar", (vgg_cifar, (3, 32, 32), 10, "small VGG (6 convs + BN) for CIFAR-10")),
    ("unet-tiny", (unet_tiny, (1, 28, 28), 2, "tiny U-Net, per-pixel logits (2 classes)")),
    ("resnet18-cifar", (resnet18_cifar, (3, 32, 32), 10, "ResNet-18, CIFAR variant (11,173,962 params)")),
    ("mobilenetv2-cifar", (mobilenetv2_cifar, (3, 32, 32), 10,
                           "MobileNetV2: inverted residuals, depthwise convs, ReLU6 (CIFAR strides)")),
    ("vgg11-bn-cifar", (vgg11_bn_cifar, (3, 32, 32), 10, "VGG-11 with batch norm for CIFAR-10")),
    ("inception-mini", (inception_mini, (3, 32, 32), 10, "small GoogLeNet: 4 Inception modules (branches + cat)")),
    ("unet", (unet, (3, 64, 64), 4, "U-Net, 3 levels, transposed-conv decoder (4 classes per pixel)")),
    ("wavenet-tiny", (wavenet_tiny, (1, 64), 256,
                      "WaveNet: dilated causal Conv1d, gated units, 256 mu-law classes per step")),
])

#: the models whose builders take the input's channels (segmentation and sequence models: they adapt to
#: the data, where a classifier's head is fixed by its definition)
ADAPTS_TO_INPUT = {"unet-tiny", "unet", "wavenet-tiny"}


def list_models() -> list[str]:
    """The names of the built-in models, sorted."""
    return sorted(_MODELS)


def model_descriptions() -> "OrderedDict[str, str]":
    """Name -> one-line description of each built-in model."""
    return OrderedDict((name, _MODELS[name][3]) for name in list_models())


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _looks_like_path(spec: str) -> bool:
    return spec.lower().endswith((".json", ".toml")) or os.sep in spec or "/" in spec or os.path.isfile(spec)


def build_model(spec: str, *, num_classes: Optional[int] = None, in_channels: Optional[int] = None) -> Module:
    """A new model (freshly initialised; seed with ``gpucnn.manual_seed``) from a built-in name
    (:func:`list_models`) or the path of a ``.json``/``.toml`` model file.

    ``num_classes`` (any built-in) and ``in_channels`` (the models in :data:`ADAPTS_TO_INPUT`) build a
    built-in model for other data, e.g. ``build_model("unet-tiny", in_channels=3, num_classes=4)``;
    a model file describes its own sizes, so they are refused for one."""
    if not isinstance(spec, (str, os.PathLike)):
        raise ArgumentError(f"build_model: expected a model name or a model file path, got {type(spec).__name__}")
    spec = os.fspath(spec)
    key = _normalise(spec)
    if key in _MODELS and not os.path.isfile(spec):
        builder, shape, classes, _ = _MODELS[key]
        kwargs: dict[str, int] = {}
        if num_classes is not None:
            kwargs["num_classes"] = _check_int(key, "num_classes", num_classes)
        if in_channels is not None:
            if key not in ADAPTS_TO_INPUT:
                raise ArgumentError(f"model {key!r} takes {shape[0]} input channels; only "
                                    f"{', '.join(sorted(ADAPTS_TO_INPUT))} take another in_channels")
            kwargs["in_channels"] = _check_int(key, "in_channels", in_channels)
            shape = (kwargs["in_channels"],) + shape[1:]
        model = builder(**kwargs)
        model.input_shape = shape
        model.num_classes = kwargs.get("num_classes", classes)
        model.name = key
        return model
    if _looks_like_path(spec):
        if num_classes is not None or in_channels is not None:
            raise ArgumentError(f"build_model: {spec} is a model file, which sets its own num_classes and "
                                f"input channels; edit the file instead")
        return load_model_file(spec)
    raise ArgumentError(f"unknown model {spec!r}; built-in models: {', '.join(list_models())}; or give the path "
                        f"of a .json or .toml model file")


# -- model files ----------------------------------------------------------------------------------
_SPEC_KEYS = ("format", "version", "name", "description", "input_shape", "num_classes", "classes", "layers",
              "architecture")


def _read_spec_file(path: str) -> Any:
    if not os.path.exists(path):
        raise ModelFormatError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise ModelFormatError(f"{path}: is a directory, not a model file")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".json", ".toml"):
        raise ModelFormatError(f"{path}: model files must end in .json or .toml")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"{path}: not UTF-8 text ({e})") from e
    if ext == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelFormatError(f"{path}: invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
        except RecursionError:
            raise ModelFormatError(f"{path}: invalid JSON: nested too deeply") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ModelFormatError(f"{path}: invalid TOML: {e}") from e
    except RecursionError:
        raise ModelFormatError(f"{path}: invalid TOML: nested too deeply") from None


def parse_model_spec(spec: Any, source: str = "model spec") -> tuple[dict, dict]:
    """Check a model description (a parsed JSON/TOML document) and return (architecture config, info)
    where info holds ``name``, ``input_shape``, ``num_classes``, ``classes``. Nothing is built."""
    from .nn.registry import validate_config

    if not isinstance(spec, dict):
        raise ModelFormatError(f"{source}: expected a table/object at the top level, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in _SPEC_KEYS]
    if unknown:
        raise ModelFormatError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(_SPEC_KEYS)})")
    fmt = spec.get("format", SPEC_FORMAT)
    if fmt != SPEC_FORMAT:
        hint = "; a saved model (.npz) is loaded with gpucnn.load" if fmt == "gpucnn-model" else ""
        raise ModelFormatError(f"{source}: format must be {SPEC_FORMAT!r}, got {fmt!r}{hint}")
    version = spec.get("version", SPEC_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{source}: version must be an integer >= 1, got {version!r}")
    if version > SPEC_VERSION:
        raise ModelFormatError(f"{source} was written for a newer gpucnn (model spec version {version}; this "
                               f"gpucnn reads up to {SPEC_VERSION}); upgrade gpucnn")
    shape = spec.get("input_shape")
    if shape is None:
        raise ModelFormatError(f"{source}: missing 'input_shape' (e.g. [1, 28, 28]: channels, height, width)")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 4 and all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 65536 for d in shape)):
        raise ModelFormatError(f"{source}: input_shape must be a list of sizes >= 1 without the batch dimension, "
                               f"e.g. [1, 28, 28], got {shape!r}")
    nc = spec.get("num_classes")
    if nc is not None and not (isinstance(nc, int) and not isinstance(nc, bool) and nc >= 1):
        raise ModelFormatError(f"{source}: num_classes must be an integer >= 1, got {nc!r}")
    classes = spec.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ModelFormatError(f"{source}: classes must be a list of class names (strings), got {classes!r}")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise ModelFormatError(f"{source}: name must be a string, got {name!r}")
    if ("layers" in spec) == ("architecture" in spec):
        raise ModelFormatError(f"{source}: give either 'layers' (a list of layer tables) or 'architecture' "
                               f"(one layer table)")
    if "layers" in spec:
        layers = spec["layers"]
        if not isinstance(layers, list) or not layers:
            raise ModelFormatError(f"{source}: 'layers' must be a non-empty list of layer tables "
                                   f"(TOML: [[layers]] sections)")
        architecture: Any = {"type": "Sequential", "layers": layers}
    else:
        architecture = spec["architecture"]
    try:
        validate_config(architecture, "" if "layers" in spec else "architecture")
    except ModelFormatError as e:
        raise ModelFormatError(f"{source}: {e}") from e
    except RecursionError:
        raise ModelFormatError(f"{source}: the layer description is nested too deeply") from None
    info = {"name": name, "input_shape": tuple(shape), "num_classes": nc, "classes": classes}
    return architecture, info


def model_from_spec(spec: Any, source: str = "model spec") -> Module:
    """Build a model from a parsed model description (see the module docstring)."""
    from .function import no_grad
    from .nn.registry import build_from_config
    from .functions.creation import zeros

    architecture, info = parse_model_spec(spec, source)
    try:
        model = build_from_config(architecture, "" if "layers" in spec else "architecture")
    except ModelFormatError as e:
        raise ModelFormatError(f"{source}: {e}") from e
    shape = info["input_shape"]
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            out = model(zeros((1,) + shape, dtype=model.dtype))
    except GpucnnError as e:
        raise ModelFormatError(f"{source}: the layers do not fit input_shape {list(shape)}: {e}") from e
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)
    nc = info["num_classes"]
    if nc is None and isinstance(out, Tensor) and out.ndim >= 2:
        nc = out.shape[1]
    if info["classes"] is not None and nc is not None and len(info["classes"]) != nc:
        raise ModelFormatError(f"{source}: {len(info['classes'])} class names for {nc} classes")
    model.input_shape = shape
    model.num_classes = nc
    model.classes = info["classes"]
    model.name = info["name"]
    return model


def load_model_file(path: str) -> Module:
    """Build the model a ``.json``/``.toml`` model file describes."""
    path = os.fspath(path)
    spec = _read_spec_file(path)
    model = model_from_spec(spec, path)
    if model.name is None:
        model.name = os.path.splitext(os.path.basename(path))[0]
    return model


__all__ = ["build_model", "list_models", "model_descriptions", "load_model_file", "model_from_spec",
           "parse_model_spec", "UNet", "InvertedResidual", "InceptionModule", "WaveNet", "keras_mnist",
           "strided_42", "resnet_cifar", "vgg_cifar", "unet_tiny", "unet", "resnet18_cifar", "mobilenetv2_cifar",
           "vgg11_bn_cifar", "inception_mini", "wavenet_tiny", "ADAPTS_TO_INPUT"]
