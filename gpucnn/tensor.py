"""`Tensor`: an array on a device plus define-by-run autograd, with PyTorch's tensor API.

Every op on tensors is a :class:`gpucnn.function.Function`; when any input requires a gradient the
output remembers the op (``_ctx``), which remembers where its inputs came from. :meth:`Tensor.backward`
(:mod:`gpucnn.autograd`) walks that graph in reverse, so any graph (skip connections, concatenations, a
layer used twice, in-place updates) gets correct gradients. As in PyTorch, gradients accumulate into
``.grad`` of leaf tensors only.

The methods are thin: each op lives in :mod:`gpucnn.functions` (``math``: elementwise ops and promotion,
``reduction``, ``array``: shapes, ``indexing``), and in-place ops (``add_``, ``x[i] = v``, ``+=``) go
through :func:`gpucnn.autograd.assign`, which keeps the graph and the version counters right.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from . import dtypes
from .autograd import VersionCounter, assign, run_backward
from .backend import DEVICE_NAMES, Device, DeviceLike, get_device
from .dtypes import float32, float64, int32, int64, is_floating_point  # noqa: F401  (float32...: re-exported)
from .errors import ArgumentError, AutogradError, DtypeError, ShapeError

Dim = Union[int, Sequence[int], None]


class Tensor:
    """An n-dimensional array on a device (``cpu``, ``cuda`` or ``emu``) that can record gradients.

    Create tensors with :func:`gpucnn.tensor`. ``.data`` is the underlying NumPy or CuPy array.
    """

    __slots__ = ("data", "device", "requires_grad", "grad", "_ctx", "_vc", "_view", "_post_acc_hooks", "__weakref__")
    # Makes ``ndarray + Tensor`` call Tensor.__radd__ instead of broadcasting over the tensor.
    __array_priority__ = 1000

    def __init__(self, data: Any, device: DeviceLike = "cpu", requires_grad: bool = False) -> None:
        self.data = data
        self.device: Device = get_device(device)
        self.grad: Optional[Tensor] = None
        self._ctx = None
        self._vc = VersionCounter()
        self._view = None
        self._post_acc_hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: Any, device: Device, requires_grad: bool = False) -> "Tensor":
        t = Tensor.__new__(Tensor)
        t.data, t.device, t.requires_grad, t.grad, t._ctx = data, device, requires_grad, None, None
        t._vc, t._view, t._post_acc_hooks = VersionCounter(), None, None
        return t

    # -- properties -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: Optional[int] = None) -> Union[tuple[int, ...], int]:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"

    def is_floating_point(self) -> bool:
        return is_floating_point(self.dtype)

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has had (shared with its views)."""
        return self._vc.value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not is_floating_point(self.dtype):
            raise AutogradError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise ArgumentError("requires_grad_(False) works on leaf tensors only; use detach() on a result")
        self.requires_grad = requires_grad
        return self

    # -- Python protocols ------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        if not isinstance(self.data, np.ndarray):
            raise TypeError(f"can't convert a {self.device} tensor to a NumPy array; use .cpu() (or .numpy()) first")
        if copy:
            return self.data.astype(dtype, copy=True) if dtype is not None else self.data.copy()
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ShapeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous "
                             f"(shape {self.shape}); use .any() or .all()")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, got "
                            f"dtype {self.dtype} and shape {self.shape}")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self.data.size == 1 and self.ndim == 0:
            return format(self.item(), spec)
        return format(str(self), spec)

    def __repr__(self) -> str:
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", threshold=100)
        return f"tensor({body}, dtype={self.dtype}{extra}{grad})"

    __hash__ = object.__hash__

    # -- conversion -----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A host (NumPy) copy of the data."""
        if isinstance(self.data, np.ndarray):
            return self.data.copy()
        return self.data.get()

    def item(self) -> Union[float, int, bool]:
        if self.data.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """This tensor on a device and/or of a dtype, like PyTorch's ``to``: ``to("cuda")``,
        ``to(gpucnn.float64)``, ``to("cpu", gpucnn.float64)``, ``to(other_tensor)``, ``to(device=...,
        dtype=...)``. Differentiable; returns ``self`` when nothing changes."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0] in DEVICE_NAMES + ("auto",)):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            dtype = dtypes.as_dtype(dtype, "to")
            if dtype != self.dtype:
                out = _a.Cast(dtype)(out)
        if device is not None and get_device(device) != self.device:
            out = _a.ToDevice(get_device(device))(out)
        return out.clone() if copy and out is self else out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def type(self, dtype: Any = None) -> Union[str, "Tensor"]:
        """The dtype's name, or with ``dtype`` this tensor cast to it."""
        return str(self.dtype) if dtype is None else self.to(dtype)

    def float(self) -> "Tensor":
        return self.to(float32)

    def double(self) -> "Tensor":
        return self.to(float64)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def bfloat16(self) -> "Tensor":
        return self.to(dtypes.bfloat16)

    def long(self) -> "Tensor":
        return self.to(int64)

    def int(self) -> "Tensor":
        return self.to(int32)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool_)

    def detach(self) -> "Tensor":
        """The same data (and version counter), cut from the graph."""
        t = Tensor._wrap(self.data, self.device)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        self._ctx, self.requires_grad = None, False
        return self

    def clone(self) -> "Tensor":
        """A copy of the data, differentiable (its gradient flows back to this tensor)."""
        return _a.Copy()(self)

    def contiguous(self) -> "Tensor":
        flags = self.data.flags
        return self if flags.c_contiguous else self.clone()

    # -- autograd -------------------------------------------------------------------------------
    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]) -> Any:
        """Run ``hook(self)`` once per backward, after that backward has accumulated all of this leaf's
        gradient into ``.grad`` (PyTorch 2.1's hook: DistributedDataParallel reduces a bucket of
        gradients with it while the rest of backward goes on). Returns a handle: ``handle.remove()``."""
        if self._ctx is not None:
            raise AutogradError("register_post_accumulate_grad_hook: post accumulate grad hooks cannot be "
                                "registered on non-leaf tensors")
        if not self.requires_grad:
            raise AutogradError("register_post_accumulate_grad_hook: cannot register a hook on a tensor that "
                                "doesn't require gradient")
        if not callable(hook):
            raise ArgumentError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                                f"{type(hook).__name__}")
        from collections import OrderedDict

        from .nn.module import RemovableHandle
        if self._post_acc_hooks is None:
            self._post_acc_hooks = OrderedDict()
        handle = RemovableHandle(self._post_acc_hooks)
        self._post_acc_hooks[handle.id] = hook
        return handle

    def backward(self, gradient: Any = None, retain_graph: Optional[bool] = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf tensor that requires a gradient.

        ``gradient`` (d(self), of self's shape) defaults to 1 for a one-element tensor, like PyTorch.
        """
        if create_graph:
            raise ArgumentError("backward(create_graph=True): higher-order gradients are not supported")
        if not self.requires_grad:
            raise ArgumentError("backward(): this tensor does not require grad and has no graph "
                                "(did you compute it under no_grad(), or from tensors without requires_grad?)")
        if gradient is None:
            if self.data.size != 1:
                raise ShapeError(f"backward(): grad can be implied only for one-element outputs, got shape "
                                 f"{self.shape}; pass gradient= of that shape")
            g = self.device.xp.ones_like(self.data)
        else:
            g = gradient.data if isinstance(gradient, Tensor) else self.device.asarray(gradient, dtype=self.dtype)
            if tuple(g.shape) != self.shape:
                raise ShapeError(f"backward(): gradient has shape {tuple(g.shape)}, expected {self.shape}")
            g = g.astype(self.dtype, copy=False)
        run_backward(self, g, bool(retain_graph))

    # -- arithmetic and comparisons (functions/math.py) -------------------------------------------
    def __add__(self, other): return _m.binary(_m.Add, self, other)
    def __radd__(self, other): return _m.binary(_m.Add, other, self)
    def __sub__(self, other): return _m.binary(_m.Sub, self, other)
    def __rsub__(self, other): return _m.binary(_m.Sub, other, self)
    def __mul__(self, other): return _m.binary(_m.Mul, self, other)
    def __rmul__(self, other): return _m.binary(_m.Mul, other, self)
    def __truediv__(self, other): return _m.binary(_m.Div, self, other, float_result=True)
    def __rtruediv__(self, other): return _m.binary(_m.Div, other, self, float_result=True)
    def __matmul__(self, other): return _m.binary(_m.MatMul, self, other)
    def __rmatmul__(self, other): return _m.binary(_m.MatMul, other, self)
    def __mod__(self, other): return _m.binary(_m.Remainder, self, other)
    def __rmod__(self, other): return _m.binary(_m.Remainder, other, self)
    def __floordiv__(self, other): return _m.nondifferentiable("floor_divide", self, other)
    def __rfloordiv__(self, other): return _m.nondifferentiable("floor_divide", other, self)
    def __pow__(self, exponent): return _m.pow(self, exponent)
    def __rpow__(self, base): return _m.pow(base, self)
    def __neg__(self): return _m.Neg()(self)
    def __abs__(self): return self.abs()
    def __and__(self, other): return _m.nondifferentiable("bitwise_and", self, other)
    def __rand__(self, other): return _m.nondifferentiable("bitwise_and", other, self)
    def __or__(self, other): return _m.nondifferentiable("bitwise_or", self, other)
    def __ror__(self, other): return _m.nondifferentiable("bitwise_or", other, self)
    def __xor__(self, other): return _m.nondifferentiable("bitwise_xor", self, other)
    def __rxor__(self, other): return _m.nondifferentiable("bitwise_xor", other, self)
    def __invert__(self): return _m.invert(self)

    # Comparisons give bool tensors without gradients (masks, accuracy).
    def __eq__(self, other): return _m.nondifferentiable("equal", self, other)  # type: ignore[override]
    def __ne__(self, other): return _m.nondifferentiable("not_equal", self, other)  # type: ignore[override]
    def __lt__(self, other): return _m.nondifferentiable("less", self, other)
    def __le__(self, other): return _m.nondifferentiable("less_equal", self, other)
    def __gt__(self, other): return _m.nondifferentiable("greater", self, other)
    def __ge__(self, other): return _m.nondifferentiable("greater_equal", self, other)
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def add(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> "Tensor":
        return self * other

    def div(self, other: Any, rounding_mode: Optional[str] = None) -> "Tensor":
        return _m.div(self, other, rounding_mode)

    def pow(self, exponent: Any) -> "Tensor":
        return self ** exponent

    def matmul(self, other: "Tensor") -> "Tensor":
        return self @ other

    def neg(self) -> "Tensor":
        return -self

    def maximum(self, other: "Tensor") -> "Tensor":
        return _m.binary(_m.Maximum, self, other)

    def minimum(self, other: "Tensor") -> "Tensor":
        return _m.binary(_m.Minimum, self, other)

    def exp(self) -> "Tensor": return _m.Exp()(_m.floating(self))
    def log(self) -> "Tensor": return _m.Log()(_m.floating(self))
    def log1p(self) -> "Tensor": return _m.Log1p()(_m.floating(self))
    def sqrt(self) -> "Tensor": return _m.Sqrt()(_m.floating(self))
    def sigmoid(self) -> "Tensor": return _m.Sigmoid()(_m.floating(self))
    def tanh(self) -> "Tensor": return _m.Tanh()(_m.floating(self))
    def abs(self) -> "Tensor": return _m.Abs()(self)
    def sign(self) -> "Tensor": return _m.Sign()(self)

    def relu(self) -> "Tensor":
        from .functions.activation import relu
        return relu(self)

    def clamp(self, min: Any = None, max: Any = None) -> "Tensor":
        return _m.clamp(self, min, max)

    clip = clamp

    def where(self, condition: "Tensor", other: Any) -> "Tensor":
        """``self`` where ``condition`` holds, else ``other`` (``torch.where(condition, self, other)``)."""
        return _ix.where(condition, self, other)

    def isnan(self) -> "Tensor": return Tensor._wrap(self.device.xp.isnan(self.data), self.device)
    def isinf(self) -> "Tensor": return Tensor._wrap(self.device.xp.isinf(self.data), self.device)
    def isfinite(self) -> "Tensor": return Tensor._wrap(self.device.xp.isfinite(self.data), self.device)

    def allclose(self, other: "Tensor", rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        return bool(self.device.xp.allclose(self.data, _m.as_tensor(other, self.dtype, self.device).data,
                                            rtol=rtol, atol=atol, equal_nan=equal_nan))

    def equal(self, other: "Tensor") -> bool:
        """True when ``other`` has the same shape and the same values (``torch.equal``)."""
        return self.shape == other.shape and bool((self == other).data.all())

    # -- in-place ops (gpucnn.autograd.assign) ----------------------------------------------------
    def _inplace(self, op: str, compute: Any, reads_old: bool = False, other: Any = None) -> "Tensor":
        needs = isinstance(other, Tensor) and other.requires_grad
        return assign(self, compute, reads_old, op, others_require_grad=needs)

    def add_(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self._inplace("add_", lambda old: old.add(other, alpha), other=other)

    def sub_(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self._inplace("sub_", lambda old: old.sub(other, alpha), other=other)

    def mul_(self, other: Any) -> "Tensor":
        return self._inplace("mul_", lambda old: old * other, _requires_grad(other), other)

    def div_(self, other: Any, rounding_mode: Optional[str] = None) -> "Tensor":
        return self._inplace("div_", lambda old: old.div(other, rounding_mode), _requires_grad(other), other)

    def pow_(self, exponent: Any) -> "Tensor":
        return self._inplace("pow_", lambda old: old ** exponent, True, exponent)

    def clamp_(self, min: Any = None, max: Any = None) -> "Tensor":
        bound = min if isinstance(min, Tensor) else max
        return self._inplace("clamp_", lambda old: old.clamp(min, max), True, bound)

    clip_ = clamp_

    def neg_(self) -> "Tensor":
        return self._inplace("neg_", lambda old: -old)

    def relu_(self) -> "Tensor":
        return self._inplace("relu_", lambda old: old.relu())

    def masked_fill_(self, mask: "Tensor", value: Any) -> "Tensor":
        return self._inplace("masked_fill_", lambda old: old.masked_fill(mask, value), other=value)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value: Any) -> "Tensor":
        _ix.setitem(self, Ellipsis, value)
        return self

    def copy_(self, src: Any) -> "Tensor":
        """Copy ``src`` (broadcast, cast to this tensor's dtype, moved to its device) into this tensor."""
        if isinstance(src, Tensor) and src.device != self.device:
            src = src.to(self.device)
        _ix.setitem(self, Ellipsis, src)
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(value, Tensor) and value.device != self.device:
            value = value.to(self.device)
        _ix.setitem(self, index, value)

    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)
    def __ipow__(self, other): return self.pow_(other)
    def __ifloordiv__(self, other): return self._inplace("floor_divide_", lambda old: old // other)
    def __imod__(self, other): return self._inplace("remainder_", lambda old: old % other, _requires_grad(other), other)
    def __iand__(self, other): return self._inplace("bitwise_and_", lambda old: old & other)
    def __ior__(self, other): return self._inplace("bitwise_or_", lambda old: old | other)
    def __ixor__(self, other): return self._inplace("bitwise_xor_", lambda old: old ^ other)

    # -- reductions (functions/reduction.py) ---------------------------------------------------------
    def sum(self, dim: Dim = None, keepdim: bool = False, dtype: Any = None) -> "Tensor":
        x = self if dtype is None else self.to(dtype)
        return _r.Sum(_r.axes_of(dim, x.shape, "sum"), keepdim)(x)

    def mean(self, dim: Dim = None, keepdim: bool = False, dtype: Any = None) -> "Tensor":
        x = self if dtype is None else self.to(dtype)
        if not is_floating_point(x.dtype):
            raise DtypeError(f"mean(): needs a floating-point tensor, got dtype {x.dtype}; use .float() first "
                             f"or pass dtype=")
        axes = _r.axes_of(dim, x.shape, "mean")
        count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return x.sum(dim, keepdim) / count

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The maximum (0-d); with ``dim``, ``(values, indices)``; with a tensor, the elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return _r.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The minimum (0-d); with ``dim``, ``(values, indices)``; with a tensor, the elementwise minimum."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return _r.min(self, dim, keepdim)

    def amax(self, dim: Dim = (), keepdim: bool = False) -> "Tensor":
        r = _r
        return r.Amax(r.axes_of(None if dim == () else dim, self.shape, "amax"), keepdim, True)(self)

    def amin(self, dim: Dim = (), keepdim: bool = False) -> "Tensor":
        r = _r
        return r.Amax(r.axes_of(None if dim == () else dim, self.shape, "amin"), keepdim, False)(self)

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        return _r.arg_extremum(self, dim, keepdim, True)

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        return _r.arg_extremum(self, dim, keepdim, False)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        return _r.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> "Tensor":
        return self.sort(dim, descending, stable).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return _r.topk(self, k, dim, largest, sorted)

    def var(self, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
            correction: Optional[float] = None) -> "Tensor":
        """Variance over ``dim`` with Bessel's ``correction`` (1 by default; ``unbiased=False`` is 0)."""
        if isinstance(dim, bool):  # var(False): the old (unbiased) overload
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise ArgumentError("var: pass either unbiased or correction, not both")
        c = (1 if unbiased or unbiased is None else 0) if correction is None else correction
        x = _m.floating(self)
        axes = _r.axes_of(dim, x.shape, "var")
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        d = x - x.mean(dim, keepdim=True)
        if n - c <= 0:
            import warnings
            warnings.warn(f"var/std: degrees of freedom is <= 0 ({n} elements, correction {c}): the result is "
                          f"inf or nan", UserWarning, stacklevel=2)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (d * d).sum(dim, keepdim) / max(n - c, 0)
        return (d * d).sum(dim, keepdim) / (n - c)

    def std(self, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
            correction: Optional[float] = None) -> "Tensor":
        """Standard deviation: the square root of :meth:`var` (same arguments)."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def norm(self, p: Any = "fro", dim: Dim = None, keepdim: bool = False) -> "Tensor":
        return _r.norm(self, p, dim, keepdim)

    def any(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        axes = _r.axes_of(dim, self.shape, "any")
        return Tensor._wrap(self.device.xp.asarray(self.data.astype(bool).any(axis=axes, keepdims=keepdim)), self.device)

    def all(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        axes = _r.axes_of(dim, self.shape, "all")
        return Tensor._wrap(self.device.xp.asarray(self.data.astype(bool).all(axis=axes, keepdims=keepdim)), self.device)

    def cumsum(self, dim: int, dtype: Any = None) -> "Tensor":
        x = self if dtype is None else self.to(dtype)
        return _r.CumSum(_require_dim("cumsum", dim, x.shape))(x)

    def logsumexp(self, dim: Dim, keepdim: bool = False) -> "Tensor":
        x = _m.floating(self)
        return _r.LogSumExp(_r.axes_of(dim, x.shape, "logsumexp"), keepdim)(x)

    # -- shape (functions/array.py) -------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _a.Reshape(tuple(int(s) for s in shape))(self)

    view = reshape

    def view_as(self, other: "Tensor") -> "Tensor":
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        return _a.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        axes = list(range(self.ndim))
        d0, d1 = _require_dim("transpose", dim0, self.shape), _require_dim("transpose", dim1, self.shape)
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return _a.Transpose(tuple(axes))(self)

    def t(self) -> "Tensor":
        if self.ndim > 2:
            raise ShapeError(f"t() expects a tensor with <= 2 dims, got shape {self.shape}; use transpose()")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def permute(self, *dims: int) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _a.Transpose(tuple(dims))(self)

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def unsqueeze(self, dim: int) -> "Tensor": return _a.unsqueeze(self, dim)
    def squeeze(self, dim: Any = None) -> "Tensor": return _a.squeeze(self, dim)
    def expand(self, *sizes: Any) -> "Tensor": return _a.expand(self, *sizes)
    def expand_as(self, other: "Tensor") -> "Tensor": return _a.expand(self, other.shape)
    def repeat(self, *sizes: Any) -> "Tensor": return _a.repeat(self, *sizes)
    def split(self, split_size: Any, dim: int = 0) -> tuple: return _a.split(self, split_size, dim)
    def chunk(self, chunks: int, dim: int = 0) -> tuple: return _a.chunk(self, chunks, dim)

    def unbind(self, dim: int = 0) -> tuple:
        d = _require_dim("unbind", dim, self.shape)
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    # -- indexing (functions/indexing.py) -------------------------------------------------------------
    def __getitem__(self, index: Any) -> "Tensor":
        ix = _ix
        idx, basic = ix.normalize_index(index, self.device)
        return ix.GetItem(idx, basic)(self)

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        return _ix.gather(self, dim, index)

    def scatter(self, dim: int, index: "Tensor", src: Any = None, value: Any = None) -> "Tensor":
        return _ix.scatter(self, dim, index, src, value)

    def masked_fill(self, mask: "Tensor", value: Any) -> "Tensor":
        if isinstance(value, Tensor) and value.ndim:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        return _ix.where(mask, _m.as_tensor(value, self.dtype, self.device), self)


def _requires_grad(x: Any) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _require_dim(op: str, dim: int, shape: tuple[int, ...]) -> int:
    from .functions._checks import require_dim
    return require_dim(op, dim, shape)


def tensor(data: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, a scalar, a NumPy/CuPy array or a Tensor).

    Like PyTorch, Python floats become the default float dtype (float32), ints int64 and bools bool
    unless ``dtype`` says otherwise; NumPy arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    dev = get_device(device)
    if dtype is not None:
        dtype = dtypes.as_dtype(dtype, "tensor")
    elif not hasattr(data, "dtype"):
        probe = np.asarray(data)
        if is_floating_point(probe.dtype):
            dtype = dtypes.get_default_dtype()
        elif probe.dtype.kind in "iu":
            dtype = np.int64
        elif probe.dtype.kind not in "b":
            raise ArgumentError(f"tensor(): cannot make a tensor from data of dtype {probe.dtype}")
        data = probe
    # Always a copy, as torch.tensor does: later in-place updates must not reach the caller's array.
    return Tensor(dev.asarray(data, dtype=dtype).copy(), dev, requires_grad=requires_grad)


# The ops' modules, imported last: they use Tensor.
from .functions import array as _a, indexing as _ix, math as _m, reduction as _r  # noqa: E402
