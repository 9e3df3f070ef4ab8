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
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from . import memory
from .backend import Device
from .errors import DeviceError
from .functions._checks import require_tensor

if TYPE_CHECKING:
    from .tensor import Tensor

_grad_enabled = True
#: set by gpucnn.profiler while it records: called as _recorder(op, phase, xs, run) around every forward and
#: backward, returns run()'s result
_recorder: Optional[Callable[[Any, str, tuple, Callable[[], Any]], Any]] = None


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
            if t is not None:
                require_tensor(self.name, "input" if i == 0 else f"argument {i}", t)
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
        y = self._guarded("forward", self.forward, xs)
        if isinstance(y, np.generic):
            y = np.asarray(y)  # NumPy reductions return scalars; tensors always hold arrays
        record = is_grad_enabled() and any(t.requires_grad for t in present)
        out = Tensor._wrap(y, device, requires_grad=record)
        if record:
            self.inputs = inputs
            self.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
            out._ctx = self
        return out

    def _guarded(self, phase: str, step: Callable[..., Any], xs: tuple, *args: Any) -> Any:
        """``step(xs, *args)`` (this op's forward or backward), with running out of memory reported as an
        :class:`~gpucnn.errors.OutOfMemoryError` naming the op, its inputs and what it was allocating."""
        try:
            if _recorder is not None:  # (gpucnn.profiler is recording)
                return _recorder(self, phase, xs, lambda: step(xs, *args))
            return step(xs, *args)
        except Exception as exc:
            if memory.is_out_of_memory(exc, self.xp):
                raise memory.out_of_memory_error(self.name, getattr(self, "device", None), exc, xs, phase) from exc
            raise

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
