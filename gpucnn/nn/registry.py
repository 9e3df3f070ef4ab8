"""The layer registry: the allow-list of layer types a model description (JSON, TOML, a saved file) may
name, and the schema check that runs over a whole description before anything is built.

A description is a dict ``{"type": "Conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 3}``;
containers nest: ``{"type": "Sequential", "layers": [...]}``, ``{"type": "Residual", "body": {...},
"shortcut": {...} | null}``. ``layer_from_config`` checks every entry (known type, known argument names,
required arguments present, JSON types right), raising :class:`ModelFormatError` naming the entry
(``layers[3]: unknown layer type 'Conv3d' (known: ...)``), and only then builds the modules.

Register your own layers with the decorator::

    @gpucnn.nn.register_layer
    class Scale(gpucnn.nn.Module):
        config_schema = {"factor": "number"}      # optional: argument -> JSON kinds (see KINDS)
        def __init__(self, factor=1.0): ...
        def config(self): return {"factor": self.factor}

Without ``config_schema`` the argument names come from ``__init__``'s signature and their values are
checked by the constructor only.
"""
from __future__ import annotations

import difflib
import inspect
import math
import numbers
from typing import Any, Callable, Optional, TypeVar

from ..errors import ArgumentError, GpucnnError, ModelFormatError

_REGISTRY: dict[str, type] = {}

#: the JSON kinds a schema may name (``"int|ints"`` means either)
KINDS = {
    "int": "an integer",
    "ints": "a list of integers",
    "number": "a number",
    "bool": "true or false",
    "str": "a string",
    "strs": "a list of strings",
    "null": "null",
    "layer": "a layer table",
    "layers": "a list of layer tables",
    "int_or_null_list": "a list of integers or nulls",
    "any": "any value",
}

T = TypeVar("T", bound=type)


def register_layer(cls: Optional[T] = None, *, name: Optional[str] = None) -> Any:
    """Class decorator adding a Module subclass to the registry under ``name`` (default: the class name).

    Use as ``@register_layer`` or ``@register_layer(name="MyBlock")``.
    """
    def deco(c: T) -> T:
        key = name or c.__name__
        existing = _REGISTRY.get(key)
        if existing is not None and existing is not c and \
                (existing.__module__, existing.__qualname__) != (c.__module__, c.__qualname__):
            raise ArgumentError(f"register_layer: the name {key!r} is already registered for "
                             f"{existing.__module__}.{existing.__qualname__}")
        _REGISTRY[key] = c
        c._registered_name = key  # type: ignore[attr-defined]
        return c

    if cls is not None:
        return deco(cls)
    return deco


def known_layers() -> list[str]:
    """The registered layer type names, sorted."""
    return sorted(_REGISTRY)


def get_layer_class(type_name: str) -> type:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise ModelFormatError(f"unknown layer type {type_name!r} (known: {', '.join(known_layers())})") from None


def layer_to_config(module: Any) -> dict:
    """``{"type": name, **module.config()}`` for a registered module."""
    cls = type(module)
    name = getattr(cls, "_registered_name", None)
    if name is None or _REGISTRY.get(name) is not cls:
        raise ArgumentError(f"{cls.__name__} is not a registered layer, so its architecture cannot be "
                            f"written as data; decorate the class with @gpucnn.nn.register_layer and give it "
                            f"a config() method")
    cfg = module.config()
    if "type" in cfg:
        raise ValueError(f"{cls.__name__}.config() must not contain the key 'type'")
    return {"type": name, **cfg}


# -- schema checks -------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if _is_int(v):
        return True
    return isinstance(v, numbers.Real) and math.isfinite(float(v))


def _matches(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "int":
        return _is_int(value)
    if kind == "ints":
        return isinstance(value, list) and len(value) > 0 and all(_is_int(v) for v in value)
    if kind == "int_or_null_list":
        return isinstance(value, list) and len(value) > 0 and all(v is None or _is_int(v) for v in value)
    if kind == "number":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "null":
        return value is None
    if kind == "layer":
        return isinstance(value, dict)
    if kind == "layers":
        return isinstance(value, list)
    raise ValueError(f"unknown schema kind {kind!r}")


def _describe_value(v: Any) -> str:
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table",
            type(None): "null"}.get(type(v), type(v).__name__)
    return f"{kind} {text}"


def _where(path: str, type_name: Optional[str] = None) -> str:
    base = path or "model"
    return f"{base} ({type_name})" if type_name else base


def _signature(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}, True
    named = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    return named, has_var_kw


def schema_of(cls: type) -> tuple[dict[str, str], set[str]]:
    """(argument -> kinds, required arguments) for a registered class."""
    named, _ = _signature(cls)
    schema = getattr(cls, "config_schema", None)
    if schema is None:
        schema = {n: "any" for n in named}
    required = {n for n, p in named.items() if p.default is inspect.Parameter.empty and n in schema}
    required |= set(getattr(cls, "config_required", ()))
    return dict(schema), required


def validate_config(config: Any, path: str = "") -> None:
    """Check a layer description (recursively) without building anything; raise ModelFormatError."""
    if not isinstance(config, dict):
        raise ModelFormatError(f"{_where(path)}: expected a layer table with a 'type', got {_describe_value(config)}")
    if "type" not in config:
        raise ModelFormatError(f"{_where(path)}: missing 'type' (known: {', '.join(known_layers())})")
    type_name = config["type"]
    if not isinstance(type_name, str):
        raise ModelFormatError(f"{_where(path)}: 'type' must be a string, got {_describe_value(type_name)}")
    cls = _REGISTRY.get(type_name)
    if cls is None:
        hint = difflib.get_close_matches(type_name, known_layers(), n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ModelFormatError(f"{_where(path)}: unknown layer type {type_name!r}{did} "
                               f"(known: {', '.join(known_layers())})")
    where = _where(path, type_name)
    schema, required = schema_of(cls)
    for key, value in config.items():
        if key == "type":
            continue
        if not isinstance(key, str) or key not in schema:
            hint = difflib.get_close_matches(str(key), list(schema), n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            known = ", ".join(schema) if schema else "none"
            raise ModelFormatError(f"{where}: unknown argument {key!r}{did} (arguments: {known})")
        kinds = schema[key].split("|")
        if not any(_matches(k, value) for k in kinds):
            expected = " or ".join(KINDS[k] for k in kinds)
            raise ModelFormatError(f"{where}: argument {key!r} must be {expected}, got {_describe_value(value)}")
        sub = f"{path}.{key}" if path else key
        if "layer" in kinds and isinstance(value, dict):
            validate_config(value, sub)
        if "layers" in kinds and isinstance(value, list):
            for i, item in enumerate(value):
                validate_config(item, f"{sub}[{i}]")
    for key in sorted(required):
        if key not in config:
            raise ModelFormatError(f"{where}: missing argument {key!r}")


def build_from_config(config: dict, path: str = "") -> Any:
    """Build a module from an already validated description (containers build their children)."""
    cls = _REGISTRY[config["type"]]
    args = {k: v for k, v in config.items() if k != "type"}
    try:
        from_config: Callable[..., Any] = getattr(cls, "from_config", None)  # type: ignore[assignment]
        if from_config is not None:
            return from_config(args, path=path)
        return cls(**args)
    except ModelFormatError:
        raise
    except (GpucnnError, TypeError, ValueError, OverflowError) as e:
        raise ModelFormatError(f"{_where(path, config['type'])}: {e}") from e


def layer_from_config(config: Any, path: str = "") -> Any:
    """Validate a layer description (the whole tree, first) and build it. Errors: ModelFormatError."""
    try:
        validate_config(config, path)
        return build_from_config(config, path)
    except RecursionError:
        raise ModelFormatError(f"{_where(path)}: the layer description is nested too deeply") from None
