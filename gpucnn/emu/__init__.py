"""gpucnn.emu: run the project's CUDA C kernels on the CPU, from unmodified .cu source.

Called exactly like CuPy's raw kernels, on NumPy arrays::

    from gpucnn import emu
    mod = emu.RawModule(code=source, options=("-DT=float",))   # or emu.RawModule(path="file.cu", ...)
    k = mod.get_function("conv2d_forward")
    k((gx, gy), (bx, by), (x, w, y, np.int32(n), np.float32(alpha)), shared_mem=nbytes)

The source is compiled by g++ against a shim of the CUDA built-ins; every thread of a block runs as a
fiber, blocks one after another. Launches check what a GPU silently gets wrong: argument types,
out-of-bounds accesses (guard pages), barriers some threads never reach (``DeadlockError``), uninitialised
shared memory (poisoned with NaN bytes) and thread-order dependence (``set_thread_order``). See
docs/emulator.md for what is and is not modelled.

Importing this package compiles nothing and does not import NumPy.
"""
from __future__ import annotations

from .compiler import cache_dir, cache_stats
from .errors import (ArgumentTypeError, CompileError, DeadlockError, EmuError, KernelNotFoundError, KernelTrap,
                     LaunchError, OutOfBoundsError, WarpSyncError)
from .limits import (MAX_BLOCK_DIM, MAX_GRID_DIM, MAX_SHARED_MEMORY_PER_BLOCK, MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                     MAX_THREADS_PER_BLOCK, WARP_SIZE)
from .module import Function, RawKernel, RawModule
from .ordering import ORDERS, get_thread_order, set_thread_order, thread_order


def context_switch_ns(iterations: int = 200_000) -> float:
    """Measure the runtime's fiber context switch: nanoseconds per switch (builds the runtime if needed)."""
    from .compiler import runtime

    lib, _ = runtime()
    return float(lib.emu_bench_switch(int(iterations)))


__all__ = [
    "RawModule", "RawKernel", "Function",
    "set_thread_order", "get_thread_order", "thread_order", "ORDERS",
    "EmuError", "CompileError", "KernelNotFoundError", "LaunchError", "ArgumentTypeError", "DeadlockError",
    "WarpSyncError", "OutOfBoundsError", "KernelTrap",
    "MAX_THREADS_PER_BLOCK", "MAX_BLOCK_DIM", "MAX_GRID_DIM", "MAX_SHARED_MEMORY_PER_BLOCK",
    "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN", "WARP_SIZE",
    "cache_dir", "cache_stats", "context_switch_ns",
]
