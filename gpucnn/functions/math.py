"""Elementwise arithmetic and math, and matmul: the ops behind Tensor's operators.

They are written once with ``self.xp`` and so run unchanged on NumPy and CuPy arrays. Binary ops
broadcast like NumPy; their backward sums the gradient back over the broadcast axes. Operands are
promoted first with PyTorch's rules (:func:`gpucnn.dtypes.result_type`) by :func:`binary`, so an op's
arrays always share one dtype.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ..dtypes import get_default_dtype, is_floating_point, result_type
from ..errors import ArgumentError, DtypeError, ShapeError
from ..function import Function
from ._layout import elementwise, matched, splittable


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which an input of ``shape`` was broadcast."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    return g.reshape(shape)


# -- operands ---------------------------------------------------------------------------------------
def is_number(x: Any) -> bool:
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, np.ndarray)


def as_tensor(x: Any, dtype: np.dtype, device: Any):
    """``x`` (a tensor, a Python/NumPy number or an array) as a tensor of ``dtype`` on ``device``; a tensor
    of another dtype is cast with a differentiable cast."""
    from ..tensor import Tensor

    if isinstance(x, Tensor):
        return x if x.dtype == dtype else x.to(dtype=dtype)
    if is_number(x):  # (through an array: -2 as uint8 wraps to 254, as in PyTorch, instead of overflowing)
        x = np.asarray(x)
    return Tensor._wrap(device.asarray(x, dtype=dtype), device)


def as_operands(a: Any, b: Any, dtype: np.dtype, device: Any) -> tuple:
    return as_tensor(a, dtype, device), as_tensor(b, dtype, device)


def _arrays_as_tensors(x: Any, device: Any) -> Any:
    """Arrays and lists become tensors of their own dtype (so they take part in promotion as tensors)."""
    from ..tensor import Tensor

    if isinstance(x, (Tensor, str)) or is_number(x) or x is None:
        return x  # (None and strings are left for the caller to refuse)
    arr = device.asarray(x)
    if is_floating_point(arr.dtype) and not hasattr(x, "dtype"):
        arr = arr.astype(get_default_dtype())  # a list of Python floats is float32, as torch.tensor makes it
    return Tensor._wrap(arr, device)


def binary(cls: type, a: Any, b: Any, *args: Any, float_result: bool = False):
    """``cls(*args)(a, b)`` after promoting ``a`` and ``b`` (tensors or numbers, at least one a tensor) to
    their result type; ``float_result``: an integer result type computes in the default float dtype
    instead (true division)."""
    from ..tensor import Tensor

    device = (a if isinstance(a, Tensor) else b).device
    a, b = _arrays_as_tensors(a, device), _arrays_as_tensors(b, device)
    dtype = result_type(a, b)
    if float_result and not is_floating_point(dtype):
        dtype = get_default_dtype()
    return cls(*args)(*as_operands(a, b, dtype, device))


def floating(x):
    """``x``, or for an integer/bool tensor its cast to the default float dtype (``exp`` of an int
    tensor is float32, as in PyTorch)."""
    return x if is_floating_point(x.dtype) else x.to(dtype=get_default_dtype())


# -- binary ops -------------------------------------------------------------------------------------
class _Binary(Function):
    #: the NumPy ufunc of ``compute``: same-shape float operands on the NumPy path run it split over threads
    ufunc: np.ufunc
    #: 16-bit operands: forward and backward in float32, each result rounded once (PyTorch's "opmath":
    #: a backward like a / b**2 rounded at every step would lose several ulps)
    halves_in_float32 = True

    def forward(self, xs):
        a, b = xs
        b = matched(a, b)
        if splittable(a, b):
            return elementwise(self.ufunc, a, b)
        try:
            return self.compute(a, b)
        except ValueError as e:
            raise ShapeError(f"{self.name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from e

    def compute(self, a, b):
        return self.ufunc(a, b)


class Add(_Binary):
    name = "add"
    ufunc = np.add

    def reads_inputs(self):
        return ()

    def backward(self, xs, gy):
        a, b = xs
        return unbroadcast(gy, a.shape), unbroadcast(gy, b.shape)


class Sub(_Binary):
    name = "sub"
    ufunc = np.subtract

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        if xs[0].dtype.kind == "b":
            raise DtypeError("sub: subtraction of bool tensors is not supported; use ^ (logical xor) instead")
        return super().forward(xs)

    def backward(self, xs, gy):
        a, b = xs
        return unbroadcast(gy, a.shape), unbroadcast(-gy, b.shape)


def _other_inputs(needs: tuple[bool, ...]) -> tuple[int, ...]:
    """For a product-like op: input 1's value is read for input 0's gradient, and the other way round."""
    return tuple(i for i, needed in ((1, needs[0]), (0, needs[1])) if needed)


class Mul(_Binary):
    name = "mul"
    ufunc = np.multiply

    def reads_inputs(self):
        return _other_inputs(self.needs_input_grad)

    def backward(self, xs, gy):
        a, b = xs
        ga = unbroadcast(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(_Binary):
    name = "div"
    ufunc = np.true_divide

    def reads_inputs(self):
        return (0, 1) if self.needs_input_grad[1] else (1,)

    def backward(self, xs, gy):
        a, b = xs
        ga = unbroadcast(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(_Binary):
    """``a ** b`` elementwise (both tensors, broadcast)."""
    name = "pow"
    ufunc = np.power
    autocast = "fp32"

    def forward(self, xs):
        a, b = xs
        if a.dtype.kind in "iu" and bool((b < 0).any()):
            raise ArgumentError("pow: integers to negative integer powers are not allowed")
        return super().forward(xs)

    def backward(self, xs, gy):
        a, b = xs
        xp = self.xp
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(gy * b * a ** (b - 1), a.shape)
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log(a); PyTorch defines it as 0 where a == 0 (and b >= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = xp.where(a == 0, gy.dtype.type(0), gy * a ** b * xp.log(a))
            gb = unbroadcast(gb, b.shape)
        return ga, gb


class Remainder(_Binary):
    """``a % b`` with the sign of ``b`` (Python's and PyTorch's ``remainder``)."""
    name = "remainder"
    ufunc = np.remainder

    def reads_inputs(self):
        return (0, 1) if self.needs_input_grad[1] else ()

    def backward(self, xs, gy):
        a, b = xs
        ga = unbroadcast(gy, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * self.xp.floor(a / b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class _Extremum(_Binary):
    """Elementwise maximum/minimum; where both are equal each gets half the gradient, as in PyTorch."""

    def backward(self, xs, gy):
        a, b = xs
        wins = self.ufunc(a, b) == a  # where a is the result
        tie = a == b
        half = gy.dtype.type(0.5)
        ga = gy * self.xp.where(tie, half, wins.astype(gy.dtype))
        gb = gy - ga
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)


class Maximum(_Extremum):
    name = "maximum"
    ufunc = np.maximum


class Minimum(_Extremum):
    name = "minimum"
    ufunc = np.minimum


class MatMul(Function):
    name = "matmul"
    autocast = "lower"
    halves_in_float32 = True

    def reads_inputs(self):
        return _other_inputs(self.needs_input_grad)

    def forward(self, xs):
        a, b = xs
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                             f"(the last axis of the first must equal the first axis of the second)")
        try:
            return a @ b
        except ValueError as e:
            raise ShapeError(f"matmul: the batch dims of {tuple(a.shape)} and {tuple(b.shape)} do not "
                             f"broadcast") from e

    def backward(self, xs, gy):
        a, b = xs
        xp = self.xp
        if a.ndim == 1 and b.ndim == 1:
            return gy * b, gy * a
        # A 1-D operand is a matrix with one row (a) or one column (b), as in NumPy's matmul.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        gy2 = gy[..., None, :] if a.ndim == 1 else gy
        gy2 = gy2[..., None] if b.ndim == 1 else gy2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gy2 @ xp.swapaxes(b2, -1, -2)
            ga = ga.reshape(-1, a.shape[0]).sum(axis=0) if a.ndim == 1 else unbroadcast(ga, a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ gy2
            gb = gb.reshape(-1, b.shape[0]).sum(axis=0) if b.ndim == 1 else unbroadcast(gb, b.shape)
        return ga, gb


# -- unary ops --------------------------------------------------------------------------------------
class Neg(Function):
    name = "neg"

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        if xs[0].dtype.kind == "b":
            raise DtypeError("neg: negation of a bool tensor is not supported; use ~ (logical not) instead")
        return -xs[0]

    def backward(self, xs, gy):
        return (-gy,)


class PowScalar(Function):
    name = "pow"
    autocast = "fp32"
    halves_in_float32 = True

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, xs):
        x = xs[0]
        if x.dtype.kind in "iu" and self.exponent < 0:
            raise ArgumentError("pow: integers to negative integer powers are not allowed")
        return x ** x.dtype.type(self.exponent)

    def backward(self, xs, gy):
        x = xs[0]
        p = x.dtype.type(self.exponent)
        return (gy * p * x ** (p - 1),)


class _Unary(Function):
    """An elementwise function ``f`` with ``f'`` given by :meth:`derivative` (from x and/or y = f(x))."""
    #: the xp function's name
    fn = ""
    #: 16-bit inputs: f and f' in float32, rounded once (tanh's 1 - y*y in float16 would cancel to ~10 %)
    halves_in_float32 = True

    def forward(self, xs):
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, sqrt(-1) = nan, as PyTorch
            self.y = getattr(self.xp, self.fn)(xs[0])
        return self.y

    def backward(self, xs, gy):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (gy * self.derivative(xs[0], self.y),)

    def derivative(self, x, y):
        raise NotImplementedError


class _OfOutput(_Unary):
    """A function whose derivative is written with its output: backward reads y, not x."""
    saves_output = True

    def reads_inputs(self):
        return ()


class Exp(_OfOutput):
    name = fn = "exp"
    autocast = "fp32"

    def derivative(self, x, y):
        return y


class Sqrt(_OfOutput):
    name = fn = "sqrt"

    def derivative(self, x, y):
        return 0.5 / y


class Tanh(_OfOutput):
    name = fn = "tanh"

    def derivative(self, x, y):
        return 1 - y * y


class Sigmoid(_OfOutput):
    name = "sigmoid"

    def forward(self, xs):
        x = xs[0]
        xp = self.xp
        # 1/(1+exp(-x)) overflows exp for very negative x; exp(x)/(1+exp(x)) there instead.
        e = xp.exp(-xp.abs(x))
        self.y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.y

    def derivative(self, x, y):
        return y * (1 - y)


class Log(_Unary):
    name = fn = "log"
    autocast = "fp32"

    def derivative(self, x, y):
        return 1 / x


class Log1p(_Unary):
    name = fn = "log1p"
    autocast = "fp32"

    def derivative(self, x, y):
        return 1 / (1 + x)


class Abs(_Unary):
    name = fn = "abs"

    def derivative(self, x, y):
        return self.xp.sign(x)


class Sign(_Unary):
    name = fn = "sign"

    def reads_inputs(self):
        return ()

    def derivative(self, x, y):
        return self.xp.zeros_like(y)


class Clamp(Function):
    """``min(max(x, lo), hi)`` with number bounds; the gradient passes where x is inside [lo, hi]."""
    name = "clamp"

    def __init__(self, lo: Optional[float], hi: Optional[float]) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, xs):
        x = xs[0]
        t = x.dtype.type
        y = x
        if self.lo is not None:
            y = self.xp.maximum(y, t(self.lo))
        if self.hi is not None:
            y = self.xp.minimum(y, t(self.hi))
        return y if y is not x else x.copy()

    def backward(self, xs, gy):
        x = xs[0]
        t = x.dtype.type
        keep = self.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            keep &= x >= t(self.lo)
        if self.hi is not None:
            keep &= x <= t(self.hi)
        return (gy * keep,)


def clamp(input, min: Any = None, max: Any = None):
    """``input`` limited to ``[min, max]`` (numbers or tensors; either may be None, as ``torch.clamp``)."""
    from ..tensor import Tensor

    if min is None and max is None:
        raise ArgumentError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = binary(Maximum, out, min)
        if max is not None:
            out = binary(Minimum, out, max)
        return out
    dtype = result_type(input, *(v for v in (min, max) if v is not None))
    return Clamp(min, max)(input if input.dtype == dtype else input.to(dtype=dtype))


def pow(base: Any, exponent: Any):
    """``base ** exponent`` (either may be a number): a number exponent of a float result uses the cheaper
    :class:`PowScalar`; integer results are not differentiable."""
    from ..tensor import Tensor

    if isinstance(base, Tensor) and is_number(exponent):
        dtype = result_type(base, exponent)
        if is_floating_point(dtype):
            return PowScalar(float(exponent))(base if base.dtype == dtype else base.to(dtype=dtype))
    return binary(Pow, base, exponent)


def div(a: Any, b: Any, rounding_mode: Optional[str] = None):
    """``a / b`` (``rounding_mode=None``: true division, float result), or rounded toward zero
    (``"trunc"``) or down (``"floor"``), which keep integer dtypes and have no gradient."""
    if rounding_mode is None:
        return binary(Div, a, b, float_result=True)
    if rounding_mode == "floor":
        return nondifferentiable("floor_divide", a, b)
    if rounding_mode == "trunc":
        q = binary(Div, a, b, float_result=True).detach()
        out = q.device.xp.trunc(q.data)
        from ..tensor import Tensor
        return Tensor._wrap(out.astype(result_type(a, b), copy=False), q.device)
    raise ArgumentError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


#: elementwise ops without a gradient, by their xp ufunc: comparisons, floor division, bitwise logic
_NONDIFFERENTIABLE = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "floor_divide",
                      "bitwise_and", "bitwise_or", "bitwise_xor")


def nondifferentiable(ufunc: str, a: Any, b: Any):
    """``xp.<ufunc>(a, b)`` on operands promoted like any binary op; the result records no gradient."""
    from ..tensor import Tensor

    assert ufunc in _NONDIFFERENTIABLE, ufunc
    device = (a if isinstance(a, Tensor) else b).device
    a, b = _arrays_as_tensors(a, device), _arrays_as_tensors(b, device)
    if not all(isinstance(t, Tensor) or is_number(t) for t in (a, b)):
        return NotImplemented  # (t == None, t == "x": Python's identity comparison, as in torch)
    for t in (a, b):
        if isinstance(t, Tensor) and t.device != device:
            from ..errors import DeviceError
            raise DeviceError(f"{ufunc}: operands are on different devices ({a.device} and {b.device})")
    dtype = result_type(a, b)
    if ufunc.startswith("bitwise") and is_floating_point(dtype):
        raise DtypeError(f"{ufunc}: needs integer or bool tensors, got {dtype}")
    x, y = as_operands(a.detach() if isinstance(a, Tensor) else a, b.detach() if isinstance(b, Tensor) else b,
                       dtype, device)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = getattr(device.xp, ufunc)(x.data, y.data)
    except ValueError as e:
        raise ShapeError(f"{ufunc}: shapes {x.shape} and {y.shape} do not broadcast") from e
    return Tensor._wrap(device.xp.asarray(out), device)


def invert(x):
    """``~x``: logical not of a bool tensor, bitwise not of an integer one."""
    from ..tensor import Tensor

    if is_floating_point(x.dtype):
        raise DtypeError(f"~ (bitwise not) needs an integer or bool tensor, got {x.dtype}")
    return Tensor._wrap(x.device.xp.invert(x.data), x.device)
