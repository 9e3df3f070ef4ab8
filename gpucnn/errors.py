"""The exceptions gpucnn raises on purpose.

Everything a user can cause (a bad shape, a bad file, a bad option) raises a subclass of
:class:`GpucnnError` whose message names the layer or argument, the expected and the actual value.
The CLI turns these into one-line errors; anything else is a bug in gpucnn and keeps its traceback.
"""
from __future__ import annotations


class GpucnnError(Exception):
    """Base class of the errors gpucnn raises on purpose."""


class ShapeError(GpucnnError, ValueError, RuntimeError):
    """An array has the wrong rank, size or channel count for the op or layer it was given to, or shapes do
    not broadcast. Also a RuntimeError, the type PyTorch raises for shape mismatches."""


class DtypeError(GpucnnError, TypeError):
    """An unknown dtype, or an op given a dtype it does not take (a TypeError, as in PyTorch)."""


class TensorIndexError(GpucnnError, IndexError):
    """An index past the end of a dim, or an index tensor that is not integer or bool (an IndexError, so
    ``for row in x`` and ``except IndexError`` behave as with PyTorch and NumPy)."""


class AutogradError(GpucnnError, RuntimeError):
    """The graph cannot give a correct gradient: an in-place op on a leaf that requires grad, or a tensor
    saved for backward was modified in place since (its version counter moved)."""


class ArgumentError(GpucnnError, ValueError):
    """An argument (stride, padding, kernel size, a label, an option) has a value that is not allowed."""


class DeviceError(GpucnnError, RuntimeError):
    """Tensors on different devices were mixed, or a device is not available."""


class DataError(GpucnnError, ValueError):
    """A dataset file or folder is missing, truncated, corrupt or of the wrong format."""


class ModelFormatError(GpucnnError, ValueError):
    """A saved model, checkpoint or model description file cannot be read or does not match."""


class TrainingError(GpucnnError, RuntimeError):
    """Training cannot go on (a NaN or Inf loss, an unwritable output directory, ...)."""


class KernelError(GpucnnError, RuntimeError):
    """A CUDA kernel failed to compile or launch (on `cuda` or the `emu` emulator)."""


class OutOfMemoryError(GpucnnError, MemoryError):
    """A device (a GPU, or the host for NumPy) ran out of memory while an op allocated its arrays; the
    message names the op, what it was allocating (bytes, shape, dtype where known) and suggests a
    smaller batch. Also a :class:`MemoryError`, so ``except MemoryError`` keeps working."""
