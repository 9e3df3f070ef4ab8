"""`Tensor`: an array on a device plus define-by-run autograd.

Every op on tensors is a :class:`gpucnn.function.Function`; when any input requires a gradient the
output remembers the op (``_ctx``), which remembers its inputs. :meth:`Tensor.backward` walks that graph
in reverse topological order, so any graph (skip connections, concatenations, a layer used twice) gets
correct gradients. As in PyTorch, gradients accumulate into ``.grad`` of leaf tensors only.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from .backend import Device, DeviceLike, get_device
from .errors import ArgumentError, ShapeError

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)


class Tensor:
    """An n-dimensional array on a device (``cpu``, ``cuda`` or ``emu``) that can record gradients.

    Create tensors with :func:`gpucnn.tensor`. ``.data`` is the underlying NumPy or CuPy array.
    """

    __slots__ = ("data", "device", "requires_grad", "grad", "_ctx", "__weakref__")
    # Makes ``ndarray + Tensor`` call Tensor.__radd__ instead of broadcasting over the tensor.
    __array_priority__ = 1000

    def __init__(self, data: Any, device: DeviceLike = "cpu", requires_grad: bool = False) -> None:
        self.data = data
        self.device: Device = get_device(device)
        self.grad: Optional[Tensor] = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: Any, device: Device, requires_grad: bool = False) -> "Tensor":
        t = Tensor.__new__(Tensor)
        t.data, t.device, t.requires_grad, t.grad, t._ctx = data, device, requires_grad, None, None
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

    def __len__(self) -> int:
        return self.shape[0]

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind != "f":
            raise ArgumentError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = requires_grad
        return self

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

    def to(self, device: DeviceLike = None, dtype: Any = None) -> "Tensor":
        """This tensor on ``device`` and/or cast to ``dtype`` (differentiable, like PyTorch's ``to``)."""
        from .functions.array import Cast, ToDevice

        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = Cast(np.dtype(dtype))(out)
        if device is not None and get_device(device) != self.device:
            out = ToDevice(get_device(device))(out)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, self.device)

    def clone(self) -> "Tensor":
        return Tensor._wrap(self.data.copy(), self.device, requires_grad=self.requires_grad)

    def zero_(self) -> "Tensor":
        self.data[...] = 0
        return self

    def __repr__(self) -> str:
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", threshold=100)
        return f"tensor({body}, dtype={self.dtype}{extra}{grad})"

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # -- autograd -------------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf tensor that requires a gradient.

        ``grad`` defaults to 1 for a one-element tensor, like PyTorch.
        """
        if not self.requires_grad:
            raise ArgumentError("backward(): this tensor does not require grad and has no graph "
                                "(did you compute it under no_grad(), or from tensors without requires_grad?)")
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(f"backward(): grad can be implied only for one-element outputs, got shape "
                                 f"{self.shape}; pass grad= of that shape")
            g = self.device.xp.ones_like(self.data)
        else:
            g = grad.data if isinstance(grad, Tensor) else self.device.asarray(grad, dtype=self.dtype)
            if tuple(g.shape) != self.shape:
                raise ShapeError(f"backward(): grad has shape {tuple(g.shape)}, expected {self.shape}")
        grads: dict[int, Any] = {id(self): g}
        for t in _topological_order(self):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            fn = t._ctx
            if fn is None:
                if t.requires_grad:
                    t.grad = Tensor._wrap(g, t.device) if t.grad is None else \
                        Tensor._wrap(t.grad.data + g, t.device)
                continue
            xs = tuple(None if x is None else x.data for x in fn.inputs)
            gxs = fn._guarded("backward", fn.backward, xs, g)
            for x, gx in zip(fn.inputs, gxs):
                if x is None or gx is None or not x.requires_grad:
                    continue
                key = id(x)
                grads[key] = gx if key not in grads else grads[key] + gx
            if not retain_graph:
                t._ctx = None  # free the graph (and the arrays ops saved) as we go

    # -- arithmetic (each is a Function in functions/math.py) -------------------------------------
    def _operand(self, other: Any) -> "Tensor":
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number):
            # Python scalars take this tensor's dtype: no silent float64 promotion.
            return Tensor._wrap(self.device.xp.asarray(other, dtype=self.dtype), self.device)
        return Tensor._wrap(self.device.asarray(other), self.device)

    def __add__(self, other): from .functions import math as m; return m.Add()(self, self._operand(other))
    def __radd__(self, other): from .functions import math as m; return m.Add()(self._operand(other), self)
    def __sub__(self, other): from .functions import math as m; return m.Sub()(self, self._operand(other))
    def __rsub__(self, other): from .functions import math as m; return m.Sub()(self._operand(other), self)
    def __mul__(self, other): from .functions import math as m; return m.Mul()(self, self._operand(other))
    def __rmul__(self, other): from .functions import math as m; return m.Mul()(self._operand(other), self)
    def __truediv__(self, other): from .functions import math as m; return m.Div()(self, self._operand(other))
    def __rtruediv__(self, other): from .functions import math as m; return m.Div()(self._operand(other), self)
    def __matmul__(self, other): from .functions import math as m; return m.MatMul()(self, self._operand(other))
    def __rmatmul__(self, other): from .functions import math as m; return m.MatMul()(self._operand(other), self)
    def __neg__(self): from .functions import math as m; return m.Neg()(self)

    def __pow__(self, exponent: float) -> "Tensor":
        from .functions import math as m
        if not isinstance(exponent, numbers.Number):
            raise ArgumentError(f"tensor ** exponent needs a number exponent, got {type(exponent).__name__}")
        return m.PowScalar(float(exponent))(self)

    def exp(self) -> "Tensor":
        from .functions import math as m
        return m.Exp()(self)

    def log(self) -> "Tensor":
        from .functions import math as m
        return m.Log()(self)

    def sqrt(self) -> "Tensor":
        return self ** 0.5

    def abs(self) -> "Tensor":
        from .functions import math as m
        return m.Abs()(self)

    def relu(self) -> "Tensor":
        from .functions.activation import relu
        return relu(self)

    def sum(self, dim: Union[int, Sequence[int], None] = None, keepdim: bool = False) -> "Tensor":
        from .functions import math as m
        return m.Sum(_axes(dim, self.ndim), keepdim)(self)

    def mean(self, dim: Union[int, Sequence[int], None] = None, keepdim: bool = False) -> "Tensor":
        axes = _axes(dim, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(dim, keepdim) / count

    def max(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        from .functions import math as m
        return m.Max(_axes(dim, self.ndim), keepdim)(self)

    def argmax(self, dim: Optional[int] = None) -> "Tensor":
        return Tensor._wrap(self.data.argmax(axis=dim), self.device)

    # -- shape ----------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        from .functions.array import Reshape
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(tuple(int(s) for s in shape))(self)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        from .functions.array import flatten
        return flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        from .functions.array import Transpose
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return Transpose(tuple(axes))(self)

    def permute(self, *dims: int) -> "Tensor":
        from .functions.array import Transpose
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return Transpose(tuple(dims))(self)

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def __getitem__(self, index: Any) -> "Tensor":
        from .functions.array import GetItem
        if isinstance(index, Tensor):
            index = index.data
        return GetItem(index)(self)

    # Comparisons give boolean tensors without gradients (masks, accuracy).
    def _compare(self, other: Any, op: str) -> "Tensor":
        o = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(getattr(self.data, op)(o), self.device)

    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, "__eq__")

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, "__ne__")

    def __lt__(self, other: Any) -> "Tensor": return self._compare(other, "__lt__")
    def __le__(self, other: Any) -> "Tensor": return self._compare(other, "__le__")
    def __gt__(self, other: Any) -> "Tensor": return self._compare(other, "__gt__")
    def __ge__(self, other: Any) -> "Tensor": return self._compare(other, "__ge__")

    __hash__ = object.__hash__


def _axes(dim: Union[int, Sequence[int], None], ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise ArgumentError(f"dim {d} is out of range for a tensor of rank {ndim}")
        out.append(d % max(ndim, 1))
    return tuple(sorted(set(out)))


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of root's graph, each after every tensor computed from it (iterative: deep nets are fine)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            for x in t._ctx.inputs:
                if x is not None and x.requires_grad and id(x) not in seen:
                    stack.append((x, False))
    order.reverse()
    return order


def tensor(data: Any, dtype: Any = None, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, a scalar, a NumPy/CuPy array or a Tensor).

    Like PyTorch, Python floats become float32 and Python ints int64 unless ``dtype`` says otherwise;
    NumPy arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    dev = get_device(device)
    if dtype is None and not hasattr(data, "dtype"):
        probe = np.asarray(data)
        if probe.dtype.kind == "f":
            dtype = np.float32
        elif probe.dtype.kind in "iu":
            dtype = np.int64
        elif probe.dtype.kind not in "b":
            raise ArgumentError(f"tensor(): cannot make a tensor from data of dtype {probe.dtype}")
        data = probe
    # Always a copy, as torch.tensor does: later in-place updates must not reach the caller's array.
    return Tensor(dev.asarray(data, dtype=dtype).copy(), dev, requires_grad=requires_grad)


def zeros(*shape: int, dtype: Any = np.float32, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    dev = get_device(device)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(dev.xp.zeros(shape, dtype=dtype), dev, requires_grad)


def ones(*shape: int, dtype: Any = np.float32, device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    dev = get_device(device)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(dev.xp.ones(shape, dtype=dtype), dev, requires_grad)
