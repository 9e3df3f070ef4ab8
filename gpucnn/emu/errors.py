"""Exceptions raised by the CUDA emulator.

All derive from :class:`EmuError`, itself a :class:`gpucnn.errors.KernelError`, so code that handles
kernel failures on ``cuda`` handles the emulator's too. Errors raised while a kernel runs carry the
kernel name, the block and the thread (``None`` where not applicable).
"""
from __future__ import annotations

from gpucnn.errors import KernelError


class EmuError(KernelError):
    """Base class of the errors the CUDA emulator raises."""

    def __init__(self, message: str, *, kernel: str | None = None,
                 block: tuple[int, int, int] | None = None,
                 thread: tuple[int, int, int] | None = None) -> None:
        super().__init__(message)
        self.kernel = kernel
        self.block = block
        self.thread = thread


class CompileError(EmuError):
    """g++ rejected the kernel source (the message holds the file, the options and g++'s log),
    or an NVRTC option has no CPU meaning we can honour (``--use_fast_math``)."""


class KernelNotFoundError(EmuError, LookupError):
    """``get_function`` was asked for a name that is not an ``extern "C" __global__`` kernel."""


class LaunchError(EmuError):
    """A launch configuration a GPU would refuse: too many threads, grid too large, too much shared memory."""


class ArgumentTypeError(EmuError, TypeError):
    """A kernel argument does not match its parameter (count, dtype, contiguity, scalar type)."""


class DeadlockError(EmuError):
    """A ``__syncthreads()`` or warp op that can never complete (some threads exited or wait elsewhere),
    or threads of a block waiting at different ``__syncthreads()`` calls."""


class WarpSyncError(EmuError):
    """Lanes of a warp disagree about a warp op (different op, mask or width), or a lane calls a warp op
    with a mask that does not include itself."""


class OutOfBoundsError(EmuError):
    """A kernel thread read or wrote outside an argument array, outside dynamic shared memory, through a
    wild or null pointer, or overflowed its stack."""


class KernelTrap(EmuError):
    """A kernel thread called ``__trap()`` or failed an ``assert``."""
