"""Launch limits the emulator enforces, as a GPU (compute capability 7.0 to 9.0) does."""
from __future__ import annotations

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIM = (1024, 1024, 64)
MAX_GRID_DIM = (2**31 - 1, 65535, 65535)
#: Static + dynamic shared memory per block without opting in.
MAX_SHARED_MEMORY_PER_BLOCK = 48 * 1024
#: Upper bound after raising ``Function.max_dynamic_shared_size_bytes`` (H100: 227 KiB).
MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 227 * 1024
WARP_SIZE = 32
#: Bytes of stack per emulated thread (override with ``GPUCNN_EMU_STACK_KIB``). Far more than a GPU
#: thread gets by default, because g++ keeps in memory what nvcc keeps in registers.
DEFAULT_STACK_BYTES = 64 * 1024
