"""The base class of every differentiable op, and the switch that turns gradient recording off.

An op is a :class:`Function` subclass holding its parameters (stride, padding, ...) and whatever its
backward needs. It works on raw arrays; :meth:`Function.__call__` wraps them in tensors and records the
graph. Following Chainer's ``functions/``, an op keeps its NumPy path and its CUDA kernel launch side by
side::

    class MyOp(Function):
        name = "my_op"
        def forward_cpu(self, xs):        # NumPy; runs on device "cpu"
        def forward_gpu(self, xs):        # our kernels via self.device.kernel(...); "cuda" and "emu"
        def backward_cpu(self, xs, gy):   # returns one gradient (or None) per input
        def backward_gpu(self, xs, gy):

Ops whose code is the same on every device (written with ``self.xp``) override ``forward`` and
``backward`` instead.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import numpy as np

from .backend import Device
from .errors import ArgumentError, DeviceError, GpucnnError, OutOfMemoryError

if TYPE_CHECKING:
    from .tensor import Tensor

_grad_enabled = True

#: The exceptions that mean "the device ran out of memory" while an op runs; :meth:`Function.__call__`
#: turns them into :class:`gpucnn.errors.OutOfMemoryError` naming the op and what it was allocating.
#: NumPy raises a ``MemoryError``; CuPy's ``cupy.cuda.memory.OutOfMemoryError`` (a ``MemoryError`` too) is
#: added the first time an op runs on a CuPy device (CuPy is imported only then). Tests add stand-ins.
OOM_ERRORS: tuple[type[BaseException], ...] = (MemoryError,)
_cupy_oom_registered = False
#: CUDA out-of-memory errors that CuPy raises as its own (non-MemoryError) types: cudaMalloc inside
#: cuBLAS/cuRAND, a kernel launch, a handle creation.
_CUDA_OOM_MARKERS = ("cudaErrorMemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY", "STATUS_ALLOC_FAILED",
                     "out of memory")


def _register_cupy_oom() -> None:
    global OOM_ERRORS, _cupy_oom_registered
    _cupy_oom_registered = True
    try:
        from cupy.cuda.memory import OutOfMemoryError as CupyOutOfMemoryError
    except Exception:  # CuPy missing or broken: nothing to register
        return
    if CupyOutOfMemoryError not in OOM_ERRORS:
        OOM_ERRORS = OOM_ERRORS + (CupyOutOfMemoryError,)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, GpucnnError):
        return False  # ours already (e.g. an OutOfMemoryError from a nested op)
    if isinstance(exc, OOM_ERRORS):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("cupy", "cupy_backends")) and any(m in str(exc) for m in _CUDA_OOM_MARKERS)


def _nbytes(n: int) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.1f} {unit})"
    return f"{n:,} bytes"


def _allocation(exc: BaseException) -> str:
    """What the failed allocation was, from what the exception knows: NumPy's ``_ArrayMemoryError`` has
    ``shape``/``dtype``; CuPy's ``OutOfMemoryError`` the requested and the allocated bytes."""
    import re

    shape, dtype = getattr(exc, "shape", None), getattr(exc, "dtype", None)
    size = getattr(exc, "_size", None)
    if size is None:
        found = re.search(r"allocating ([\d,]+) bytes", str(exc))
        size = int(found.group(1).replace(",", "")) if found else None
    if size is None and shape is not None and dtype is not None:
        try:
            size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        except (TypeError, ValueError):
            size = None
    parts = []
    if size is not None:
        parts.append(_nbytes(int(size)))
    if shape is not None and dtype is not None:
        parts.append(f"for an array of shape {tuple(shape)} {np.dtype(dtype)}")
    what = " ".join(parts) if parts else "an array"
    total = getattr(exc, "_total", None)
    if total:
        what += f", with {_nbytes(int(total))} already allocated"
    return what


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for backward."""
    return _grad_enabled


@contextlib.contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Context manager that turns graph recording on or off (like ``torch.set_grad_enabled``)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager:
    """Context manager for inference: ops record no graph and keep no saved arrays."""
    return set_grad_enabled(False)


class Function:
    """A differentiable op on arrays (see the module docstring)."""

    #: the op's name in error messages, e.g. ``"conv2d"``
    name = "op"

    device: Device
    xp: Any
    inputs: tuple[Optional["Tensor"], ...] = ()
    #: one bool per input: does backward need to produce that gradient?
    needs_input_grad: tuple[bool, ...] = ()

    def __call__(self, *inputs: Optional["Tensor"]) -> "Tensor":
        from .tensor import Tensor

        for i, t in enumerate(inputs):
            if t is not None and not isinstance(t, Tensor):
                what = "input" if i == 0 else f"argument {i}"
                raise ArgumentError(f"{self.name}: {what} must be a gpucnn Tensor, got {type(t).__name__} "
                                    f"(wrap arrays with gpucnn.tensor(...))")
        present = [t for t in inputs if t is not None]
        self.device = device = present[0].device
        for t in present[1:]:
            if t.device != device:
                # The first input is the data; the others are usually the layer's weights (the model).
                raise DeviceError(
                    f"{self.name}: inputs are on different devices ({device} and {t.device}): the input "
                    f"{tuple(present[0].shape)} is on {device}, a weight/argument {tuple(t.shape)} on "
                    f"{t.device}; move them to one device: the "
                    f"input with x.to({str(t.device)!r}) (or gpucnn.tensor(..., device={str(t.device)!r})), or "
                    f"the model with model.to({str(device)!r})")
        self.xp = device.xp
        xs = tuple(None if t is None else t.data for t in inputs)
        if not _cupy_oom_registered and device.xp is not np:
            _register_cupy_oom()
        try:
            y = self.forward(xs)
        except Exception as exc:
            if _is_out_of_memory(exc):
                raise self.out_of_memory(exc, xs) from exc
            raise
        if isinstance(y, np.generic):
            y = np.asarray(y)  # NumPy reductions return scalars; tensors always hold arrays
        record = is_grad_enabled() and any(t.requires_grad for t in present)
        out = Tensor._wrap(y, device, requires_grad=record)
        if record:
            self.inputs = inputs
            self.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
            out._ctx = self
        return out

    def out_of_memory(self, exc: BaseException, xs: tuple, phase: str = "forward") -> OutOfMemoryError:
        """The :class:`OutOfMemoryError` for ``exc`` (an out-of-memory error raised while this op ran on
        input arrays ``xs``): the op, the device, what was being allocated, the inputs' shapes and dtypes,
        and a smaller batch to try. ``phase`` is ``"forward"`` or ``"backward"``."""
        shapes = ", ".join(f"{tuple(x.shape)} {x.dtype}" for x in xs if x is not None and hasattr(x, "shape"))
        batch = next((int(x.shape[0]) for x in xs if x is not None and getattr(x, "ndim", 0) >= 1), 0)
        if batch > 1:
            hint = (f"the batch has {batch} samples: try a smaller batch size (e.g. --batch-size "
                    f"{max(1, batch // 2)}), a smaller model or smaller inputs")
        elif batch == 1:
            hint = "the batch has 1 sample: try a smaller model or smaller inputs"
        else:
            hint = "try a smaller batch size, a smaller model or smaller inputs"
        device = getattr(self, "device", None)
        where = f" on {device}" if device is not None else ""
        return OutOfMemoryError(
            f"{self.name}: out of memory{where} in the {phase} pass while allocating {_allocation(exc)} "
            f"(inputs: {shapes or 'none'}); {hint} [{type(exc).__name__}: {str(exc).strip()[:200]}]")

    # -- forward/backward: override these (or the _cpu/_gpu pairs) ------------------------------
    def forward(self, xs: tuple) -> Any:
        """The output array for input arrays ``xs`` (``None`` for absent optional inputs)."""
        if self.device.uses_kernels:
            return self.forward_gpu(xs)
        return self.forward_cpu(xs)

    def backward(self, xs: tuple, gy: Any) -> Sequence[Any]:
        """Gradients w.r.t. each input (``None`` where not needed), given the output gradient ``gy``."""
        if self.device.uses_kernels:
            return self.backward_gpu(xs, gy)
        return self.backward_cpu(xs, gy)

    def forward_cpu(self, xs: tuple) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no NumPy forward")

    def forward_gpu(self, xs: tuple) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no CUDA kernel forward")

    def backward_cpu(self, xs: tuple, gy: Any) -> Sequence[Any]:
        raise NotImplementedError(f"{type(self).__name__} has no NumPy backward")

    def backward_gpu(self, xs: tuple, gy: Any) -> Sequence[Any]:
        raise NotImplementedError(f"{type(self).__name__} has no CUDA kernel backward")
