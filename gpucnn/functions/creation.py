"""Tensor creation, as PyTorch's: ``arange linspace zeros ones full eye *_like rand randn randint randperm
from_numpy``, with PyTorch's signatures, defaults and dtype rules.

- Sizes are varargs or one tuple/list (``zeros(2, 3)``, ``zeros((2, 3))``); ``full`` and ``randint`` take
  one sequence, as in PyTorch.
- Without ``dtype``: ``arange`` gives int64 for integer arguments and the default float dtype
  (:func:`gpucnn.dtypes.get_default_dtype`) when any is a float; ``full`` follows ``fill_value`` (bool,
  int64 or the default float); ``randint``/``randperm`` give int64; the rest the default float dtype.
- The random functions draw from gpucnn's host generator (:func:`gpucnn.random.host_generator`), so
  :func:`gpucnn.manual_seed` makes them reproducible on every device (the values are not torch's, whose
  generator differs).

Creation records no graph: these are leaves (``requires_grad=True`` makes a leaf that requires grad).
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import dtypes
from ..dtypes import is_floating_point
from ..backend import DeviceLike, get_device
from ..errors import ArgumentError, DtypeError, ShapeError
from ..tensor import Tensor
from ._checks import require_tensor

Number = Union[int, float, bool]

__all__ = ["arange", "linspace", "zeros", "ones", "full", "eye", "zeros_like", "ones_like", "full_like", "rand",
           "randn", "randint", "randperm", "from_numpy"]


# -- argument checks shared by gpucnn's functions that take sizes and counts --------------------------------
def _index(value: Any) -> Optional[int]:
    """``value`` as a Python int if it is an integer (an int, a NumPy integer, a 0-d integer tensor, anything
    with ``__index__``) and not a bool; else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, Tensor):
        return int(value.item()) if value.ndim == 0 and value.dtype.kind in "iu" else None
    try:
        return operator.index(value)
    except TypeError:
        return None


def as_int(op: str, name: str, value: Any) -> int:
    """``value`` as a Python int (see :func:`_index`); a bool, a float or anything else is a
    :class:`~gpucnn.errors.DtypeError` (a TypeError, as in PyTorch)."""
    i = _index(value)
    if i is None:
        raise DtypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r}")
    return i


def int_tuple(op: str, name: str, values: Any) -> tuple[int, ...]:
    """``values``, a tuple or list of ints (see :func:`as_int`), as a tuple of Python ints."""
    if not isinstance(values, (tuple, list)):
        raise DtypeError(f"{op}: {name} must be a tuple of ints, got {type(values).__name__} {values!r}")
    out = tuple(_index(v) for v in values)
    for v, i in zip(values, out):
        if i is None:
            raise DtypeError(f"{op}: {name} must be a tuple of ints, got an element of type {type(v).__name__} "
                             f"in {tuple(values)!r}")
    return out  # type: ignore[return-value]


def _shape(op: str, size: Sequence[Any], varargs: bool = True) -> tuple[int, ...]:
    """A shape from ``size``: varargs (``zeros(2, 3)``) or one tuple/list (``zeros((2, 3))``); ``varargs=False``
    takes only the sequence (``full(size, v)``). Negative sizes are a ShapeError (RuntimeError, as PyTorch)."""
    if varargs and not size:  # (as PyTorch: a 0-d tensor is asked for with an empty tuple)
        raise DtypeError(f"{op}: missing the size: give sizes such as {op}(2, 3), or {op}(()) for a 0-d tensor")
    if varargs and len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    shape = int_tuple(op, "size", tuple(size) if varargs else size)
    if any(s < 0 for s in shape):
        raise ShapeError(f"{op}: sizes must be non-negative, got size {shape}")
    return shape


def _number(op: str, name: str, value: Any) -> Number:
    """A Python bool/int/float from a number or a one-element tensor; anything else is a DtypeError."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ShapeError(f"{op}: {name} must be a number or a one-element tensor, got shape {value.shape}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise DtypeError(f"{op}: {name} must be a real number, got {type(value).__name__} {value!r}")


def _dtype(op: str, dtype: Any, default: np.dtype) -> np.dtype:
    return default if dtype is None else dtypes.as_dtype(dtype, f"{op}: dtype")


def _require_float_dtype(op: str, dtype: np.dtype) -> None:
    if not dtypes.is_floating_point(dtype):
        raise DtypeError(f"{op}: dtype must be a floating-point dtype (float16, float32 or float64), got {dtype}")


def _range_check(op: str, dtype: np.dtype, low: int, high: int, what: str) -> None:
    """``low`` .. ``high`` are integers that ``dtype`` holds exactly (float16: up to 2**11)."""
    if is_floating_point(dtype):
        lo, hi = -2 ** (np.finfo(dtype).nmant + 1), 2 ** (np.finfo(dtype).nmant + 1)
    elif dtype.kind == "b":
        lo, hi = 0, 1
    else:
        lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    if low < lo or high > hi:
        raise ArgumentError(f"{op}: {what} [{low}, {high}] is out of the range of dtype {dtype} ([{lo}, {hi}])")


def _make(data: Any, device: DeviceLike, requires_grad: bool) -> Tensor:
    dev = get_device(device)
    return Tensor(dev.asarray(data), dev, requires_grad=requires_grad)


# -- ranges ----------------------------------------------------------------------------------------------
def arange(start: Number = 0, end: Optional[Number] = None, step: Number = 1, *, dtype: Any = None,
           device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) ``step`` apart; ``arange(n)`` is
    ``0 .. n-1``. The count is PyTorch's: ``ceil((end - start) / step)``, computed in float64 (so
    ``arange(0, 1, 0.1)`` has 10 elements), and for int64 from the arguments truncated to integers."""
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", n, v) for n, v in (("start", start), ("end", end), ("step", step)))
    default = dtypes.get_default_dtype() if any(isinstance(v, float) for v in (start, end, step)) else dtypes.int64
    dt = _dtype("arange", dtype, default)
    if dt.kind == "b":
        raise DtypeError("arange: dtype bool is not supported (use an integer or floating-point dtype)")
    if not all(math.isfinite(v) for v in (start, end)):
        raise ShapeError(f"arange: unsupported range {start} -> {end}: the bounds must be finite")
    if step == 0:
        raise ShapeError(f"arange: step must be nonzero, got step={step}")
    if not (step > 0 and end >= start or step < 0 and end <= start):
        raise ShapeError(f"arange: the range {start} -> {end} is inconsistent with the sign of step={step}")
    if is_floating_point(dt):
        xstart, xend, xstep = float(start), float(end), float(step)
    else:  # PyTorch converts the arguments to the (64-bit) integer type first, truncating
        xstart, xend, xstep = int(start), int(end), int(step)
    if xstep == 0 and dt == dtypes.int64:  # (other integer dtypes repeat start, as PyTorch's do)
        raise ShapeError(f"arange: step must be nonzero, got step={step} (truncated to 0 for dtype {dt})")
    if dt == dtypes.int64:  # exact integer count: ceil((end - start) / step) without rounding
        count = -((xstart - xend) // xstep)
    else:
        count = math.ceil((float(end) - float(start)) / float(step))
    if not 0 <= count <= np.iinfo(np.int64).max:
        raise ShapeError(f"arange: {start} -> {end} in steps of {step} has {count:.3g} elements (too many)")
    acc = np.float64 if is_floating_point(dt) else np.int64  # PyTorch's accumulate type on the CPU
    values = acc(xstart) + acc(xstep) * np.arange(count, dtype=acc)
    return _make(values.astype(dt), device, requires_grad)


def linspace(start: Number, end: Number, steps: int, *, dtype: Any = None, device: DeviceLike = "cpu",
             requires_grad: bool = False) -> Tensor:
    """``steps`` values evenly spaced from ``start`` to ``end``, both included (default float dtype).

    As PyTorch computes them: in the dtype itself (integers: a float64 step, truncated), the first half
    from ``start`` and the second half back from ``end``, so both ends are exact."""
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    steps = as_int("linspace", "steps", steps)
    if steps < 0:
        raise ShapeError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _dtype("linspace", dtype, dtypes.get_default_dtype())
    if dt.kind == "b":
        raise DtypeError("linspace: dtype bool is not supported (use an integer or floating-point dtype)")
    if steps <= 1:
        values = np.full(steps, start).astype(dt)
    else:
        ct = np.float32 if dt == dtypes.float16 else dt.type if is_floating_point(dt) else np.float64
        lo = ct(start) if is_floating_point(dt) else ct(int(start))
        hi = ct(end) if is_floating_point(dt) else ct(int(end))
        delta = (hi - lo) / ct(steps - 1)
        i = np.arange(steps)
        values = np.where(i < steps // 2, lo + delta * i.astype(ct), hi - delta * (steps - 1 - i).astype(ct))
        values = values.astype(dt)
    return _make(values, device, requires_grad)


# -- constant tensors ------------------------------------------------------------------------------------
def _filled(op: str, shape: tuple[int, ...], value: Number, dtype: np.dtype, device: DeviceLike,
            requires_grad: bool) -> Tensor:
    """``value`` in ``shape``; a value that ``dtype`` cannot hold (300 in uint8, inf or nan in an integer
    dtype, 1e6 in float16) is an error, as in PyTorch, not NumPy's wrap-around or silent cast."""
    if dtype.kind in "iu":
        ok = math.isfinite(value) and np.iinfo(dtype).min <= int(value) <= np.iinfo(dtype).max
    else:
        ok = dtype.kind == "b" or not math.isfinite(value) or abs(value) <= float(np.finfo(dtype).max)
    if not ok:
        raise ArgumentError(f"{op}: fill_value {value!r} cannot be converted to dtype {dtype} without overflow")
    dev = get_device(device)
    return Tensor(dev.xp.full(shape, value, dtype=dtype), dev, requires_grad=requires_grad)


def zeros(*size: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (varargs or one tuple), default float dtype."""
    return _filled("zeros", _shape("zeros", size), 0, _dtype("zeros", dtype, dtypes.get_default_dtype()), device,
                   requires_grad)


def ones(*size: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size`` (varargs or one tuple), default float dtype."""
    return _filled("ones", _shape("ones", size), 1, _dtype("ones", dtype, dtypes.get_default_dtype()), device,
                   requires_grad)


def _fill_dtype(value: Number) -> np.dtype:
    """PyTorch's dtype for a tensor filled with ``value``: bool, int64 or the default float dtype."""
    return dtypes.bool_ if isinstance(value, bool) else dtypes.int64 if isinstance(value, int) \
        else dtypes.get_default_dtype()


def full(size: Sequence[int], fill_value: Number, *, dtype: Any = None, device: DeviceLike = "cpu",
         requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` (a tuple or list) filled with ``fill_value``; the dtype follows the value
    (bool, int64, or the default float dtype) unless ``dtype`` is given."""
    value = _number("full", "fill_value", fill_value)
    return _filled("full", _shape("full", size, varargs=False), value, _dtype("full", dtype, _fill_dtype(value)),
                   device, requires_grad)


def eye(n: int, m: Optional[int] = None, *, dtype: Any = None, device: DeviceLike = "cpu",
        requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` (default ``n`` x ``n``) identity matrix, default float dtype."""
    n = as_int("eye", "n", n)
    m = n if m is None else as_int("eye", "m", m)
    for name, v in (("n", n), ("m", m)):
        if v < 0:
            raise ShapeError(f"eye: {name} must be greater or equal to 0, got {v}")
    dev = get_device(device)
    return Tensor(dev.xp.eye(n, m, dtype=_dtype("eye", dtype, dtypes.get_default_dtype())), dev,
                  requires_grad=requires_grad)


def _like(op: str, input: Tensor, value: Number, dtype: Any, device: Optional[DeviceLike],
          requires_grad: bool) -> Tensor:
    require_tensor(op, "input", input)
    return _filled(op, input.shape, value, _dtype(op, dtype, input.dtype),
                   input.device if device is None else device, requires_grad)


def zeros_like(input: Tensor, *, dtype: Any = None, device: Optional[DeviceLike] = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros of ``input``'s shape, dtype and device (unless ``dtype``/``device`` say otherwise)."""
    return _like("zeros_like", input, 0, dtype, device, requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, device: Optional[DeviceLike] = None,
              requires_grad: bool = False) -> Tensor:
    """Ones of ``input``'s shape, dtype and device (unless ``dtype``/``device`` say otherwise)."""
    return _like("ones_like", input, 1, dtype, device, requires_grad)


def full_like(input: Tensor, fill_value: Number, *, dtype: Any = None, device: Optional[DeviceLike] = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``input``'s shape, dtype and device (a float into an integer dtype truncates, as
    in PyTorch)."""
    return _like("full_like", input, _number("full_like", "fill_value", fill_value), dtype, device, requires_grad)


# -- random tensors --------------------------------------------------------------------------------------
def _generator() -> np.random.Generator:
    from ..random import host_generator  # looked up per call: manual_seed replaces the generator

    return host_generator()


def rand(*size: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of shape ``size`` (varargs or one tuple), default float dtype."""
    shape = _shape("rand", size)
    dt = _dtype("rand", dtype, dtypes.get_default_dtype())
    _require_float_dtype("rand", dt)
    if dt == dtypes.float16:  # k / 2**11: every value exact in float16, so rounding never gives 1.0
        values = (_generator().integers(0, 2 ** 11, shape) * 2.0 ** -11).astype(dt)
    else:
        values = _generator().random(shape, dtype=dt.type)
    return _make(values, device, requires_grad)


def randn(*size: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal samples of shape ``size`` (varargs or one tuple), default float dtype."""
    shape = _shape("randn", size)
    dt = _dtype("randn", dtype, dtypes.get_default_dtype())
    _require_float_dtype("randn", dt)
    values = _generator().standard_normal(shape, dtype=np.float32 if dt == dtypes.float16 else dt.type)
    return _make(values.astype(dt, copy=False), device, requires_grad)


def randint(low: int = 0, high: Any = None, size: Any = None, *, dtype: Any = None, device: DeviceLike = "cpu",
            requires_grad: bool = False) -> Tensor:
    """Random integers in [``low``, ``high``) of shape ``size`` (a tuple), int64 unless ``dtype`` says
    otherwise. PyTorch's overloads: ``randint(high, size)`` and ``randint(low, high, size)``."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise DtypeError("randint: expected randint(high, size) or randint(low, high, size) with size a tuple "
                         f"of ints, got low={low!r}, high={high!r}, size={size!r}")
    low, high = as_int("randint", "low", low), as_int("randint", "high", high)
    shape = _shape("randint", size, varargs=False)
    dt = _dtype("randint", dtype, dtypes.int64)
    if low >= high:
        raise ArgumentError(f"randint: low must be less than high, got low={low} >= high={high}")
    if not is_floating_point(dt):  # (PyTorch only warns when a float dtype cannot hold the range exactly)
        _range_check("randint", dt, low, high - 1, "the range")
    return _make(_generator().integers(low, high, shape).astype(dt), device, requires_grad)


def randperm(n: int, *, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` says otherwise)."""
    n = as_int("randperm", "n", n)
    if n < 0:
        raise ShapeError(f"randperm: n must be non-negative, got {n}")
    dt = _dtype("randperm", dtype, dtypes.int64)
    if dt.kind == "b":
        raise DtypeError("randperm: dtype bool is not supported (use an integer or floating-point dtype)")
    _range_check("randperm", dt, 0, max(n - 1, 0), "the values")
    return _make(_generator().permutation(n).astype(dt), device, requires_grad)


# -- NumPy -----------------------------------------------------------------------------------------------
def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A cpu tensor sharing ``ndarray``'s memory (changes to one show in the other), like PyTorch's."""
    if not isinstance(ndarray, np.ndarray):
        raise DtypeError(f"from_numpy: expected a NumPy ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype not in dtypes.SUPPORTED:
        names = ", ".join(str(d) for d in dtypes.SUPPORTED)
        raise DtypeError(f"from_numpy: cannot convert an ndarray of dtype {ndarray.dtype!r}; the supported dtypes "
                         f"are {names} (native byte order)")
    return Tensor(ndarray, "cpu")
