"""The NumPy path's shared machinery: a pool of scratch arrays reused from one training step to the
next, and the threads that ops split their work over.

Scratch buffers
---------------

Why: glibc serves large allocations (above its mmap threshold, at most 32 MiB) with fresh ``mmap``s and
gives them back on free, so a big temporary is page-faulted in again, zero-filled by the kernel, every
step. Keeping scratch buffers (padded inputs, column buffers, gradient staging) in a pool avoids that.

Rules that keep it safe:

- Only scratch goes through the pool: an array that an op returns (or a view of one) must never come
  from it, since the pool would hand its memory to someone else while the caller still reads it.
- :func:`take` gives an array with arbitrary contents; :func:`give` returns it. An op that keeps a
  buffer from forward to backward ties it to itself with :func:`hold`: the buffer goes back when the op
  object is freed (after backward, when the graph is released, or at once under ``no_grad``).
- The pool keeps at most :data:`LIMIT` bytes of idle buffers; anything beyond is left to the garbage
  collector. :func:`clear` empties it.

Buffers are keyed by (element count, dtype) and reshaped on the way out. Thread-safe.

The pool cannot hold what ops return (activations, gradients): those are ordinary NumPy arrays. So the
first NumPy-path op also tunes glibc's allocator for the process (Linux, once, unless
``GPUCNN_MALLOC_TUNING=0``): blocks up to 256 MiB come from the heap instead of fresh ``mmap``s, and
freed heap memory is kept rather than trimmed. A training step then allocates the same blocks as the
last one without a page fault (at batch 256 the keras-mnist step took ~4,000 page faults and ~20-40 ms
of system time per step without this). The RSS stays at the step's high-water mark, which is what
the step needs anyway.

Threads
-------
NumPy runs elementwise work on one core; only OpenBLAS's GEMMs use more. So a large op hands
independent pieces of its work (ranges of the batch, or of its chunks) to :func:`parallel`, one per
thread. Inside, OpenBLAS runs single-threaded (each piece's GEMMs use their thread's core; OpenBLAS's own
workers would compete, and they spin for ~0.1 s after every multi-threaded GEMM); ops that call BLAS
run under :func:`cpu_op`, which keeps it single-threaded for the whole op. Waking a thread costs ~30-250
us, so small pieces are not split off (``min_size``).
``GPUCNN_NUMPY_THREADS`` sets the number of threads (default: the CPUs this process may use, at most
8; 1 turns splitting off). Splitting needs threadpoolctl to switch OpenBLAS's threads; without it ops
run in one piece.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

#: most bytes of idle buffers the pool keeps
LIMIT = 512 * 2 ** 20

_lock = threading.Lock()
_free: dict[tuple[int, str], list[np.ndarray]] = {}
_idle_bytes = 0


_malloc_tuned = False
#: glibc mallopt parameters set by :func:`tune_malloc`
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Make glibc keep freed memory and serve blocks up to 256 MiB from its heap (see the module
    docstring); once per process. Returns whether the tuning is in effect."""
    global _malloc_tuned
    if _malloc_tuned:
        return True
    _malloc_tuned = True  # (tried: not again, whatever happens)
    if os.environ.get("GPUCNN_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 256 << 20)) & bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # not glibc
        return False


def take(shape: Any, dtype: Any) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` with arbitrary contents (from the pool if it has
    one of that size)."""
    global _idle_bytes
    if not _malloc_tuned:
        tune_malloc()
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    dtype = np.dtype(dtype)
    size = 1
    for n in shape:
        size *= int(n)
    key = (size, dtype.str)
    with _lock:
        stack = _free.get(key)
        if stack:
            flat = stack.pop()
            _idle_bytes -= flat.nbytes
            return flat.reshape(shape)
    return np.empty(size, dtype=dtype).reshape(shape)


def give(*arrays: np.ndarray) -> None:
    """Return arrays that :func:`take` gave (nothing may use them afterwards)."""
    global _idle_bytes
    for a in arrays:
        if a is None:
            continue
        base = a if a.base is None else a.base
        if not isinstance(base, np.ndarray) or base.ndim != 1 or base.size != a.size \
                or not base.flags.c_contiguous:
            continue  # not a whole buffer from take(): leave it to the garbage collector
        with _lock:
            stack = _free.setdefault((base.size, base.dtype.str), [])
            if _idle_bytes + base.nbytes > LIMIT or any(x is base for x in stack):
                continue
            stack.append(base)
            _idle_bytes += base.nbytes


def hold(owner: Any, *arrays: np.ndarray) -> None:
    """Give ``arrays`` back to the pool when ``owner`` (e.g. an op that keeps them for its backward) is
    garbage collected."""
    weakref.finalize(owner, give, *arrays)


def clear() -> None:
    """Drop every idle buffer."""
    global _idle_bytes
    with _lock:
        _free.clear()
        _idle_bytes = 0


def idle_bytes() -> int:
    """Bytes of idle buffers in the pool."""
    return _idle_bytes


# -- threads ----------------------------------------------------------------------------------------
def _default_threads() -> int:
    try:
        n = int(os.environ.get("GPUCNN_NUMPY_THREADS", "0"))
    except ValueError:
        n = 0
    if n >= 1:
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


#: threads the NumPy path splits its work over (1: no splitting)
THREADS = _default_threads()
#: elements of elementwise work below which a piece is not worth a thread (waking one costs ~30-250 us)
MIN_PIECE = 1 << 17
_executor: Optional[ThreadPoolExecutor] = None
_blas_libs: Optional[list] = None
_blas_depth = threading.local()
_in_piece = threading.local()


def _after_fork_in_child() -> None:
    # A forked child has none of the parent's threads: start a new executor when it needs one.
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries NumPy uses ([] without threadpoolctl)."""
    global _blas_libs
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas_libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # not installed, or a BLAS it cannot drive
            _blas_libs = []
    return _blas_libs


def threads() -> int:
    """How many pieces :func:`parallel` splits work into (1 when splitting is off or impossible)."""
    return THREADS if THREADS > 1 and _blas_controllers() else 1


def split(n: int, parts: Optional[int] = None) -> list[tuple[int, int]]:
    """``[0, n)`` as up to ``parts`` (default :func:`threads`) contiguous, near-equal ranges."""
    parts = max(1, min(parts or threads(), n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def parallel(fn: Callable[[int, int], Any], n: int, min_size: int = 1) -> list[Any]:
    """``[fn(lo, hi) for (lo, hi) in split(n)]``, the ranges run at once in :func:`threads` threads (the
    first in the calling thread). Runs unsplit when ``n < 2 * min_size``. Each range must touch memory
    that no other range writes. Returns the results in range order; re-raises the first exception."""
    global _executor
    if not _malloc_tuned:
        tune_malloc()
    ranges = split(n) if n >= 2 * min_size and not getattr(_in_piece, "flag", False) else [(0, n)]
    if len(ranges) == 1:  # (also inside a piece: a nested split could wait on its own thread)
        return [fn(0, n)]
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=THREADS - 1, thread_name_prefix="gpucnn-numpy")
    with _single_threaded_blas():
        return _run(fn, ranges)


def _piece(fn: Callable[[int, int], Any], lo: int, hi: int) -> Any:
    _in_piece.flag = True
    try:
        return fn(lo, hi)
    finally:
        _in_piece.flag = False


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """OpenBLAS (any BLAS threadpoolctl drives) on one thread inside, its setting restored after. Nests."""
    depth = getattr(_blas_depth, "n", 0)
    libs = _blas_controllers() if depth == 0 else []
    saved = [lib.get_num_threads() for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    _blas_depth.n = depth + 1
    try:
        yield
    finally:
        _blas_depth.n = depth
        for lib, n in zip(libs, saved):
            lib.set_num_threads(n)


@contextlib.contextmanager
def cpu_op() -> Iterator[None]:
    """Around an op's NumPy work that calls BLAS: OpenBLAS single-threaded throughout (when the NumPy
    path splits work itself). Mixing does not pay: after a multi-threaded GEMM OpenBLAS's workers spin
    for ~0.1 s and take the core our next split op needs."""
    if not _malloc_tuned:
        tune_malloc()
    if threads() > 1:
        with _single_threaded_blas():
            yield
    else:
        yield


def _run(fn: Callable[[int, int], Any], ranges: Sequence[tuple[int, int]]) -> list[Any]:
    futures = [_executor.submit(_piece, fn, lo, hi) for lo, hi in ranges[1:]]
    error: Optional[BaseException] = None
    first = None
    try:
        first = _piece(fn, *ranges[0])
    except BaseException as exc:  # still wait for the other threads: they use the same arrays
        error = exc
    results = [first]
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return results


def map_batch(fn: Callable[[slice], Any], n: int, per_sample: int) -> list[Any]:
    """:func:`parallel` over a batch of ``n`` samples of ``per_sample`` elements of work each:
    ``fn(slice(lo, hi))`` for each range, pieces of at least :data:`MIN_PIECE` elements."""
    return parallel(lambda lo, hi: fn(slice(lo, hi)), n, -(-MIN_PIECE // max(1, per_sample)))


def map_outer(fn: Callable[[tuple], Any], a: np.ndarray) -> list[Any]:
    """:func:`parallel` over the physically outer of ``a``'s first two axes (the batch of an NCHW array,
    or its channels when it is laid out channel-major): ``fn(index)`` for each range, where ``index``
    selects that range of that axis (``a[index]``, and any array of the same layout). Pieces of at
    least :data:`MIN_PIECE` elements."""
    axis = 1 if a.ndim > 1 and abs(a.strides[1]) > abs(a.strides[0]) else 0
    n = a.shape[axis]
    per = a.size // max(1, n)
    lead = (slice(None),) * axis
    return parallel(lambda lo, hi: fn(lead + (slice(lo, hi),)), n, -(-MIN_PIECE // max(1, per)))
