"""Activations and the softmax family. Elementwise glue: one ``xp`` implementation for every device
(ReLU on NumPy splits large arrays over threads, see :mod:`gpucnn.workspace`).

The elementwise activations (ELU, GELU, SiLU, ...) are each ONE definition: an :class:`Elementwise`
subclass with its forward ``f`` and derivative ``df`` side by side, PyTorch's module name and its
functional's arguments with their defaults, decorated with :func:`activation`::

    @activation
    class ELU(Elementwise):
        '''``x`` above 0, ``alpha * (exp(x) - 1)`` below (``torch.nn.ELU``).'''
        name = "elu"
        arguments = {"alpha": 1.0, "inplace": False}
        def f(self, xp, x, alpha): ...
        def df(self, xp, x, y, alpha): ...     # dy/dx from x and/or y = f(x)

From it come the functional ``gpucnn.nn.functional.elu(input, alpha=1.0, inplace=False)`` (arguments
checked by name), and, in :mod:`gpucnn.nn.activation`, the module ``gpucnn.nn.ELU(alpha=1.0,
inplace=False)`` registered for model specs. At kinks the derivative is PyTorch's choice (its
subgradients are what users' gradients are compared against).
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable, Optional

import numpy as np

from .. import workspace
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..random import host_generator
from ._checks import require_dim, require_float
from ._layout import matched


class ReLU(Function):
    name = "relu"
    saves_output = True  # backward reads y (its mask), not x

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x = xs[0]
        if self.xp is not np or x.ndim == 0 or x.size < 2 * workspace.MIN_PIECE:
            self.y = self.xp.maximum(x, 0)
            return self.y
        y = np.empty_like(x)  # (in x's memory layout)
        workspace.map_outer(lambda s: np.maximum(x[s], 0, out=y[s]), x)
        self.y = y
        return y

    def backward(self, xs, gy):
        y = self.y
        if self.xp is not np or y.ndim == 0 or y.size < 2 * workspace.MIN_PIECE:
            return (gy * (y > 0),)
        gy = matched(y, gy)  # (a gradient laid out unlike y would make both passes ~3x slower)
        gx = np.empty_like(y, dtype=gy.dtype)

        def mask(s: tuple) -> None:
            # The mask straight into the output's float buffer, then one in-place multiply: ~1.5x faster
            # than gy * (y > 0), which multiplies by a bool array through a cast.
            np.greater(y[s], 0, out=gx[s])
            gx[s] *= gy[s]

        workspace.map_outer(mask, y)
        return (gx,)


class LogSoftmax(Function):
    name = "log_softmax"
    saves_output = True
    autocast = "fp32"
    halves_in_float32 = True

    def reads_inputs(self):
        return ()

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, xs):
        x = xs[0]
        shifted = x - x.max(axis=self.dim, keepdims=True)  # exp cannot overflow
        self.y = shifted - self.xp.log(self.xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        return self.y

    def backward(self, xs, gy):
        return (gy - self.xp.exp(self.y) * gy.sum(axis=self.dim, keepdims=True),)


class Softmax(Function):
    name = "softmax"
    saves_output = True
    autocast = "fp32"
    halves_in_float32 = True

    def reads_inputs(self):
        return ()

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, xs):
        x = xs[0]
        e = self.xp.exp(x - x.max(axis=self.dim, keepdims=True))
        self.y = e / e.sum(axis=self.dim, keepdims=True)
        return self.y

    def backward(self, xs, gy):
        y = self.y
        return (y * (gy - (gy * y).sum(axis=self.dim, keepdims=True)),)


class Dropout(Function):
    """Inverted dropout: kept activations are scaled by 1/(1-p) so eval needs no rescaling."""
    name = "dropout"
    halves_in_float32 = True  # (the same random numbers as float32, and NumPy draws no float16)

    def __init__(self, p: float) -> None:
        self.p = p

    def forward(self, xs):
        x = xs[0]
        if self.xp.__name__ == "numpy":
            keep = host_generator().random(x.shape, dtype=x.dtype) >= self.p
        else:
            keep = self.xp.random.random(x.shape, dtype=x.dtype) >= self.p
        self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.mask

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        return (gy * self.mask,)


def relu(x, inplace: bool = False):
    """max(x, 0) elementwise (``inplace=True``: into x's own storage, as ``x.relu_()``)."""
    return x.relu_() if inplace else ReLU()(x)


def _softmax_dim(op, x, dim):
    require_float(op, "input", x, halves=True)
    return require_dim(op, dim, x.shape)


def softmax(x, dim: int = -1):
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably)."""
    return Softmax(_softmax_dim("softmax", x, dim))(x)


def log_softmax(x, dim: int = -1):
    """log(softmax(x)) along ``dim``, computed without overflow."""
    return LogSoftmax(_softmax_dim("log_softmax", x, dim))(x)


def dropout(x, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1-p));
    ``inplace=True`` writes the result into x's storage."""
    require_float("dropout", "input", x, halves=True)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    if inplace:
        from ..autograd import assign
        return assign(x, lambda old: dropout(old, p, training), reads_old=False, op="dropout")
    if p == 1.0:
        return x * 0.0
    return Dropout(p)(x)


# -- elementwise activations: one definition each ------------------------------------------------------
class Elementwise(Function):
    """``y = f(x; arguments)`` elementwise, ``dy/dx = df(x, y; arguments)``. Subclasses (decorated with
    :func:`activation`) define ``name``, ``arguments`` (the functional's keyword arguments after
    ``input``, with PyTorch's defaults; ``inplace`` is handled here), ``f`` and ``df``, and set
    ``of_output = True`` when ``df`` reads only ``y`` (backward then keeps y instead of x)."""

    #: the functional's arguments after ``input``, in PyTorch's order, with PyTorch's defaults
    arguments: dict[str, Any] = {}
    #: for string arguments: the values allowed
    choices: dict[str, tuple[str, ...]] = {}
    #: ``df`` needs only y = f(x)
    of_output = False
    #: PyTorch's module class name (default: the class name)
    module_name = ""
    #: 16-bit inputs: f and df in float32, rounded once (PyTorch's opmath)
    halves_in_float32 = True

    def __init__(self, **params: Any) -> None:
        self.params = params

    @property
    def saves_output(self) -> bool:  # type: ignore[override]
        return self.of_output

    def reads_inputs(self):
        return () if self.of_output else (0,)

    def forward(self, xs):
        with np.errstate(over="ignore", invalid="ignore"):  # (exp overflow in a branch where() discards)
            y = self.f(self.xp, xs[0], **self.params)
        if self.of_output:
            self.y = y
        return y

    def backward(self, xs, gy):
        with np.errstate(over="ignore", invalid="ignore"):
            return (gy * self.df(self.xp, xs[0], getattr(self, "y", None), **self.params),)

    def f(self, xp: Any, x: Any, **params: Any) -> Any:
        raise NotImplementedError

    def df(self, xp: Any, x: Any, y: Any, **params: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        """Cross-argument checks beyond each argument's type (raise ArgumentError)."""


#: module class name -> the functional of every activation :mod:`gpucnn.nn.activation` makes a module of
ACTIVATIONS: dict[str, Callable[..., Any]] = {}


def register_activation(module_name: str, functional: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``functional(input, <arguments with defaults>)`` to :data:`ACTIVATIONS`: gpucnn.nn makes the
    module ``module_name`` (its constructor takes the same arguments) and registers it for model specs."""
    ACTIVATIONS[module_name] = functional
    return functional


def _check_argument(op: str, arg: str, value: Any, default: Any, choices: Optional[tuple[str, ...]]) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentError(f"{op}: {arg} must be True or False, got {value!r}")
        return bool(value)
    if isinstance(default, str):
        if value not in (choices or (default,)):
            raise ArgumentError(f"{op}: {arg} must be one of {', '.join(map(repr, choices or ()))}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ArgumentError(f"{op}: {arg} must be a finite number, got {value!r}")
    return float(value)


def activation(cls: type) -> type:
    """Class decorator for an :class:`Elementwise` definition: makes its functional (``cls.functional``,
    named ``cls.name``, with PyTorch's signature) and registers it in :data:`ACTIVATIONS`."""
    op = cls.name
    names = list(cls.arguments)
    parameters = [inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v) for k, v in cls.arguments.items()]
    signature = inspect.Signature(parameters)

    def functional(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{op}(): {e} (arguments: input, {', '.join(names)})") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        x = values.pop("input")
        require_float(op, "input", x, halves=True)
        values = {k: _check_argument(op, k, v, cls.arguments[k], cls.choices.get(k)) for k, v in values.items()}
        cls.check(values)
        inplace = values.pop("inplace", False)
        if inplace:
            from ..autograd import assign
            return assign(x, lambda old: cls(**values)(old), reads_old=not cls.of_output, op=f"{op}(inplace=True)")
        return cls(**values)(x)

    functional.__name__ = functional.__qualname__ = op
    functional.__module__ = __name__
    functional.__signature__ = signature  # type: ignore[attr-defined]
    functional.__doc__ = (cls.__doc__ or "").strip() + (
        "\n\n``inplace=True`` writes the result into input's storage and returns input." if "inplace" in names else "")
    cls.functional = staticmethod(functional)  # type: ignore[attr-defined]
    register_activation(cls.module_name or cls.__name__, functional)
    return cls


def _sigmoid(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # (never overflows)
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(xp: Any, z: Any) -> Any:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


def _erf(xp: Any, x: Any) -> Any:
    # NumPy has no erf: SciPy's (float32 in, float32 out), CuPy's own for CuPy arrays.
    if xp is np:
        from scipy.special import erf
    else:
        from cupyx.scipy.special import erf
    return erf(x)


@activation
class LeakyReLU(Elementwise):
    """``x`` above 0, ``negative_slope * x`` at and below 0 (``torch.nn.functional.leaky_relu``); the
    derivative at 0 is ``negative_slope``, as PyTorch's."""
    name = "leaky_relu"
    arguments = {"negative_slope": 0.01, "inplace": False}

    def f(self, xp, x, negative_slope):
        return xp.where(x > 0, x, x * negative_slope)

    def df(self, xp, x, y, negative_slope):
        return xp.where(x > 0, x.dtype.type(1), x.dtype.type(negative_slope))


@activation
class ELU(Elementwise):
    """``x`` above 0, ``alpha * (exp(x) - 1)`` at and below (``torch.nn.functional.elu``); the derivative
    at 0 is ``alpha``, as PyTorch's."""
    name = "elu"
    arguments = {"alpha": 1.0, "inplace": False}

    def f(self, xp, x, alpha):
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    def df(self, xp, x, y, alpha):
        return xp.where(x > 0, x.dtype.type(1), alpha * xp.exp(xp.minimum(x, 0)))


#: SELU's constants (Klambauer et al.), as PyTorch's
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@activation
class SELU(Elementwise):
    """``scale * elu(x, alpha)`` with the self-normalising constants (``torch.nn.functional.selu``); the
    derivative at 0 is ``scale * alpha``, as PyTorch's."""
    name = "selu"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return SELU_SCALE * xp.where(x > 0, x, SELU_ALPHA * xp.expm1(xp.minimum(x, 0)))

    def df(self, xp, x, y):
        return SELU_SCALE * xp.where(x > 0, x.dtype.type(1), SELU_ALPHA * xp.exp(xp.minimum(x, 0)))


@activation
class GELU(Elementwise):
    """``x * Phi(x)``, Phi the standard normal CDF (``approximate="none"``), or its tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``"tanh"``) (``torch.nn.functional.gelu``)."""
    name = "gelu"
    arguments = {"approximate": "none"}
    choices = {"approximate": ("none", "tanh")}

    def f(self, xp, x, approximate):
        if approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
        return 0.5 * x * (1 + _erf(xp, x * math.sqrt(0.5)))

    def df(self, xp, x, y, approximate):
        if approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return 0.5 * (1 + _erf(xp, x * math.sqrt(0.5))) + x * pdf


@activation
class SiLU(Elementwise):
    """``x * sigmoid(x)`` (swish; ``torch.nn.functional.silu``)."""
    name = "silu"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return x * _sigmoid(xp, x)

    def df(self, xp, x, y):
        s = _sigmoid(xp, x)
        return s * (1 + x * (1 - s))


@activation
class Mish(Elementwise):
    """``x * tanh(softplus(x))`` (``torch.nn.functional.mish``)."""
    name = "mish"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return x * xp.tanh(_softplus(xp, x))

    def df(self, xp, x, y):
        t = xp.tanh(_softplus(xp, x))
        return t + x * (1 - t * t) * _sigmoid(xp, x)


@activation
class Hardtanh(Elementwise):
    """``x`` clamped to ``[min_val, max_val]`` (``torch.nn.functional.hardtanh``); the derivative is 1
    strictly inside, 0 at the edges and outside, as PyTorch's."""
    name = "hardtanh"
    arguments = {"min_val": -1.0, "max_val": 1.0, "inplace": False}

    @classmethod
    def check(cls, params):
        if params["min_val"] > params["max_val"]:
            raise ArgumentError(f"hardtanh: min_val ({params['min_val']:g}) must not be greater than max_val "
                                f"({params['max_val']:g})")

    def f(self, xp, x, min_val, max_val):
        return xp.clip(x, x.dtype.type(min_val), x.dtype.type(max_val))

    def df(self, xp, x, y, min_val, max_val):
        return ((x > min_val) & (x < max_val)).astype(x.dtype)


@activation
class ReLU6(Elementwise):
    """``min(max(x, 0), 6)`` (``torch.nn.functional.relu6``, hardtanh(x, 0, 6)); the derivative is 1 on
    (0, 6) and 0 elsewhere (0 at 0 and 6, as PyTorch's)."""
    name = "relu6"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return xp.clip(x, x.dtype.type(0), x.dtype.type(6))

    def df(self, xp, x, y):
        return ((x > 0) & (x < 6)).astype(x.dtype)


@activation
class Hardsigmoid(Elementwise):
    """``clamp(x / 6 + 1/2, 0, 1)`` (``torch.nn.functional.hardsigmoid``); the derivative is 1/6 on
    (-3, 3), 0 elsewhere (at -3 and 3 too, as PyTorch's)."""
    name = "hardsigmoid"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return xp.clip(x / 6 + 0.5, x.dtype.type(0), x.dtype.type(1))

    def df(self, xp, x, y):
        return ((x > -3) & (x < 3)).astype(x.dtype) / 6


@activation
class Hardswish(Elementwise):
    """``x * clamp(x + 3, 0, 6) / 6`` (``torch.nn.functional.hardswish``); the derivative is 0 at and
    below -3, ``x / 3 + 1/2`` on (-3, 3), 1 from 3 on, as PyTorch's."""
    name = "hardswish"
    arguments = {"inplace": False}

    def f(self, xp, x):
        return x * xp.clip(x + 3, x.dtype.type(0), x.dtype.type(6)) / 6

    def df(self, xp, x, y):
        return xp.where(x <= -3, x.dtype.type(0), xp.where(x < 3, x / 3 + 0.5, x.dtype.type(1)))


@activation
class Softplus(Elementwise):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``
    (``torch.nn.functional.softplus``)."""
    name = "softplus"
    autocast = "fp32"
    arguments = {"beta": 1.0, "threshold": 20.0}

    @classmethod
    def check(cls, params):
        if params["beta"] == 0:
            raise ArgumentError("softplus: beta must not be 0 (the result is log(1 + exp(beta * x)) / beta)")

    def f(self, xp, x, beta, threshold):
        z = x * beta
        return xp.where(z > threshold, x, _softplus(xp, z) / beta)

    def df(self, xp, x, y, beta, threshold):
        z = x * beta
        return xp.where(z > threshold, x.dtype.type(1), _sigmoid(xp, z))


def _method(op: str, method: str) -> Callable[..., Any]:
    def functional(input: Any) -> Any:
        require_float(op, "input", input, halves=True)
        return getattr(input, method)()
    return functional


sigmoid = register_activation("Sigmoid", _method("sigmoid", "sigmoid"))
sigmoid.__name__ = sigmoid.__qualname__ = "sigmoid"
sigmoid.__doc__ = "``1 / (1 + exp(-x))`` elementwise (``torch.sigmoid``; the op is Tensor.sigmoid)."
tanh = register_activation("Tanh", _method("tanh", "tanh"))
tanh.__name__ = tanh.__qualname__ = "tanh"
tanh.__doc__ = "``tanh(x)`` elementwise (``torch.tanh``; the op is Tensor.tanh)."


# -- PReLU: a leaky ReLU whose slope is a learned parameter per channel ---------------------------------
class PReLU(Function):
    """``where(x > 0, x, w * x)`` with ``w`` (one value, or one per channel of dim 1), broadcast; both
    gradients, the derivative at 0 being ``w`` as PyTorch's."""
    name = "prelu"
    autocast = "lower"  # (PyTorch's CUDA list)
    halves_in_float32 = True

    def forward(self, xs):
        x, w = xs
        self.w = w.reshape((-1,) + (1,) * (x.ndim - 2)) if x.ndim >= 2 and w.size > 1 else w.reshape(())
        return self.xp.where(x > 0, x, self.w * x)

    def backward(self, xs, gy):
        x, w = xs
        xp = self.xp
        positive = x > 0
        gx = gy * xp.where(positive, x.dtype.type(1), self.w) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            g = xp.where(positive, x.dtype.type(0), x * gy)
            if w.size > 1:
                g = g.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
            gw = g.sum().reshape(w.shape) if w.size == 1 else g.reshape(w.shape)
        return gx, gw


def prelu(input: Any, weight: Any) -> Any:
    """``max(0, x) + weight * min(0, x)`` with ``weight`` of one value or one per channel (dim 1 of the
    input) (``torch.nn.functional.prelu``)."""
    require_float("prelu", "input", input, halves=True)
    require_float("prelu", "weight", weight, like=input, halves=True)
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.ndim > 1 or weight.numel() not in (1, channels):
        raise ShapeError(f"prelu: weight has shape {weight.shape}; expected 1 value or {channels} (one per "
                         f"channel, dim 1 of the input shape {input.shape})")
    return PReLU()(input, weight)


# The functionals made by @activation, as names of this module (gpucnn.functional re-exports them).
globals().update({f.__name__: f for f in ACTIVATIONS.values()})

#: the public functionals (gpucnn.nn.functional's names)
FUNCTIONALS = ["relu", "softmax", "log_softmax", "dropout", "prelu", *(f.__name__ for f in ACTIVATIONS.values())]
__all__ = FUNCTIONALS + ["Elementwise", "activation", "register_activation", "ACTIVATIONS"]
