"""Built-in models by name, and models described in JSON/TOML files.

>>> from gpucnn.models import build_model, list_models
>>> list_models()
['keras-mnist', 'resnet-cifar', 'strided-42', 'unet-tiny', 'vgg-cifar']
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
from typing import Any, Callable

from .errors import ArgumentError, GpucnnError, ModelFormatError
from .functions.array import cat
from .nn import (BasicBlock, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, Module,
                 ReLU, Sequential, Upsample, register_layer)
from .nn.layers import _check_int
from .tensor import Tensor

SPEC_FORMAT = "gpucnn-model-spec"
SPEC_VERSION = 1


# -- the U-Net (a Module subclass with skip concatenations, registered so it can be saved) -------------
def _double_conv(cin: int, cout: int) -> Sequential:
    return Sequential(Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU(),
                      Conv2d(cout, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU())


@register_layer
class UNet(Module):
    """A small U-Net: two 2x downsampling levels and a bottleneck, nearest 2x upsampling, skip connections
    concatenated along channels (``gpucnn.cat``), per-pixel class logits (N, num_classes, H, W).

    Encoder: ``enc1`` (in -> c), pool, ``enc2`` (c -> 2c), pool, ``bottleneck`` (2c -> 4c); decoder:
    upsample, cat with enc2 -> ``dec2`` (6c -> 2c), upsample, cat with enc1 -> ``dec1`` (3c -> c); ``head``:
    1x1 conv c -> num_classes. Each block is conv3x3-BN-ReLU twice. H and W must be multiples of 4.
    """
    config_schema = {"in_channels": "int", "num_classes": "int", "base_channels": "int"}

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 8) -> None:
        super().__init__()
        self.in_channels = _check_int("UNet", "in_channels", in_channels)
        self.num_classes = _check_int("UNet", "num_classes", num_classes)
        c = self.base_channels = _check_int("UNet", "base_channels", base_channels)
        self.enc1 = _double_conv(in_channels, c)
        self.pool1 = MaxPool2d(2)
        self.enc2 = _double_conv(c, 2 * c)
        self.pool2 = MaxPool2d(2)
        self.bottleneck = _double_conv(2 * c, 4 * c)
        self.up2 = Upsample(scale_factor=2)
        self.dec2 = _double_conv(4 * c + 2 * c, 2 * c)
        self.up1 = Upsample(scale_factor=2)
        self.dec1 = _double_conv(2 * c + c, c)
        self.head = Conv2d(c, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.ndim == 4 and (x.shape[2] % 4 or x.shape[3] % 4):
            raise ArgumentError(f"unet: input height and width must be multiples of 4 (two 2x poolings), "
                                f"got input shape {x.shape}")
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottleneck(self.pool2(e2))
        d2 = self.dec2(cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(cat([self.up1(d2), e1], dim=1))
        return self.head(d1)

    def short_description(self) -> str:
        return f"{self.in_channels}->{self.num_classes}, base {self.base_channels}"

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "base_channels": self.base_channels}


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


def unet_tiny() -> Module:
    """A tiny U-Net (:class:`UNet`, base 8 channels) for 1x28x28 images -> 2 classes per pixel."""
    return UNet(in_channels=1, num_classes=2, base_channels=8)


_MODELS: "OrderedDict[str, tuple[Callable[[], Module], tuple[int, ...], int, str]]" = OrderedDict([
    ("keras-mnist", (keras_mnist, (1, 28, 28), 10, "Keras's MNIST convnet (421,642 params)")),
    ("strided-42", (strided_42, (3, 64, 64), 42, "3 stride-2 convs + BN, global pool, 42 classes")),
    ("resnet-cifar", (resnet_cifar, (3, 32, 32), 10, "small ResNet (3 basic blocks) for CIFAR-10")),
    ("vgg-cifar", (vgg_cifar, (3, 32, 32), 10, "small VGG (6 convs + BN) for CIFAR-10")),
    ("unet-tiny", (unet_tiny, (1, 28, 28), 2, "tiny U-Net, per-pixel logits (2 classes)")),
])


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


def build_model(spec: str) -> Module:
    """A new model (freshly initialised; seed with ``gpucnn.manual_seed``) from a built-in name
    (:func:`list_models`) or the path of a ``.json``/``.toml`` model file."""
    if not isinstance(spec, (str, os.PathLike)):
        raise ArgumentError(f"build_model: expected a model name or a model file path, got {type(spec).__name__}")
    spec = os.fspath(spec)
    key = _normalise(spec)
    if key in _MODELS and not os.path.isfile(spec):
        builder, shape, classes, _ = _MODELS[key]
        model = builder()
        model.input_shape = shape
        model.num_classes = classes
        model.name = key
        return model
    if _looks_like_path(spec):
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
           "parse_model_spec", "UNet", "keras_mnist", "strided_42", "resnet_cifar", "vgg_cifar", "unet_tiny"]
