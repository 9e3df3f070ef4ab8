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
import functools
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from . import memory
from .backend import Device
from .dtypes import is_floating_point, promote_types
from .errors import AutogradError, DeviceError
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


#: ``Function.halves_in_float32 = ON_NUMPY``: through float32 on the NumPy path only
ON_NUMPY = "numpy path"


def _is_half(a: Any) -> bool:
    return a is not None and getattr(a, "dtype", None) is not None and a.dtype.itemsize == 2 and \
        is_floating_point(a.dtype)


def _float32(a: Any) -> Any:
    return a.astype(np.float32) if _is_half(a) else a


class Function:
    """A differentiable op on arrays (see the module docstring)."""

    #: the op's name in error messages, e.g. ``"conv2d"``
    name = "op"

    device: Device
    xp: Any
    #: backward reads the output array the forward returned (kept as ``self.y``): an in-place change of
    #: the output then makes backward raise instead of using the changed values
    saves_output = False
    #: the output may be a view of input 0 (reshape, permute, basic indexing): when it shares that
    #: input's memory it shares its version counter, and in-place changes of it reach the input
    view_of_input = False
    #: inside ``gpucnn.amp.autocast``: ``"lower"`` casts the floating inputs to the autocast dtype first,
    #: ``"fp32"`` to float32; None runs the op in its inputs' dtypes (see gpucnn.amp.autocast_mode)
    autocast: Optional[str] = None
    #: float16/bfloat16 inputs are computed in float32 and the results rounded once to the input dtype
    #: (GEMMs and reductions: NumPy would accumulate in 16 bits; see :meth:`_via_float32`): True on every
    #: device; ON_NUMPY only where the NumPy path runs (ops whose kernels read and write 16 bits themselves)
    halves_in_float32: Any = False

    inputs: tuple[Optional["Tensor"], ...] = ()
    #: one bool per input: does backward need to produce that gradient?
    needs_input_grad: tuple[bool, ...] = ()
    #: per input, the node its gradient goes to: the Function that produced it, the leaf tensor, or None
    parents: tuple[Any, ...] = ()
    _saved: tuple = ()
    _released = False

    def reads_inputs(self) -> Sequence[int]:
        """Indices of the inputs whose values backward reads (``self.needs_input_grad`` is set): their
        version counters are recorded and checked before backward. Ops whose backward needs only the
        inputs' shapes (add, reshape, indexing, ...) return ``()``."""
        return range(len(self.inputs))

    def __call__(self, *inputs: Optional["Tensor"]) -> "Tensor":
        from .tensor import Tensor

        if _autocast.active and self.autocast is not None:
            inputs = _autocast.cast_inputs(self.autocast, inputs)
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
        # (integer and bool results, argmax or a comparison, carry no gradient)
        record = is_grad_enabled() and is_floating_point(y.dtype) and any(t.requires_grad for t in present)
        out = Tensor._wrap(y, device, requires_grad=record)
        if self.view_of_input and self.xp.may_share_memory(y, xs[0]):
            src = inputs[0]
            out._vc = src._vc
            out._view = (src, self.view_index())
        if record:
            self.inputs = inputs
            self.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
            self.parents = tuple(None if t is None or not t.requires_grad else (t if t._ctx is None else t._ctx)
                                 for t in inputs)
            saved = [(f"input {i}", inputs[i]) for i in self.reads_inputs() if inputs[i] is not None]
            if self.saves_output:
                saved.append(("the output", out))
            self._saved = tuple((what, t._vc, t._vc.value, t.shape, t.dtype) for what, t in saved)
            out._ctx = self
        return out

    def view_index(self) -> Any:
        """For a view op: the index that makes the output from input 0 (``out = x[index]``), so an in-place
        change of the output can be done on the input; None where no index does (reshape, permute)."""
        return None

    def _check_saved_versions(self) -> None:
        if self._released:
            raise AutogradError(f"{self.name}: trying to backward through the graph a second time (its saved "
                                f"arrays were freed by the first backward); pass retain_graph=True to the "
                                f"first backward() to do it twice")
        from .autograd import saved_version_error

        for what, counter, version, shape, dtype in self._saved:
            if counter.value != version:
                raise saved_version_error(self, what, shape, dtype, counter.value, version)

    def _release(self) -> None:
        """Free what this op saved for backward (done after its backward unless retain_graph)."""
        vars(self).clear()
        self._released = True

    def _guarded(self, phase: str, step: Callable[..., Any], xs: tuple, *args: Any) -> Any:
        """``step(xs, *args)`` (this op's forward or backward), with running out of memory reported as an
        :class:`~gpucnn.errors.OutOfMemoryError` naming the op, its inputs and what it was allocating."""
        if self.halves_in_float32 and (self.halves_in_float32 is not ON_NUMPY or not self.device.uses_kernels) \
                and any(_is_half(a) for a in xs):
            step = functools.partial(self._via_float32, phase, step)
        try:
            if _recorder is not None:  # (gpucnn.profiler is recording)
                return _recorder(self, phase, xs, lambda: step(xs, *args))
            return step(xs, *args)
        except Exception as exc:
            if memory.is_out_of_memory(exc, self.xp):
                raise memory.out_of_memory_error(self.name, getattr(self, "device", None), exc, xs, phase) from exc
            raise

    @staticmethod
    def _via_float32(phase: str, step: Callable[..., Any], xs: tuple, *args: Any) -> Any:
        """``step`` on float32 copies of the 16-bit arrays; the forward's result rounded once to the dtype
        the inputs promote to, each gradient to its input's dtype (``halves_in_float32``)."""
        up = tuple(_float32(a) for a in xs)
        result = step(up, *(_float32(a) for a in args))
        if phase == "forward":
            natural = functools.reduce(promote_types, (a.dtype for a in xs if a is not None and
                                                       is_floating_point(a.dtype)))
            return result.astype(natural) if is_floating_point(result.dtype) else result
        return tuple(None if g is None or x is None else g.astype(x.dtype, copy=False) for g, x in zip(result, xs))

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


from .amp import autocast_mode as _autocast  # noqa: E402  (last: gpucnn.amp imports this module)
