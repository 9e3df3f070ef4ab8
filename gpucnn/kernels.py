"""Our CUDA kernels, compiled lazily once per process and launched the same way on `cuda` and `emu`.

``get_kernel(device, family, name, defines)`` returns a callable ``k(grid, block, args, shared_mem=0)``
for the kernel ``name`` of ``kernels_cuda/<family>.cu`` compiled with ``-D`` ``defines``:

- on ``cuda`` a ``cupy.RawKernel`` (NVRTC; CuPy also caches the binary on disk),
- on ``emu`` an :class:`gpucnn.emu.RawKernel` running the same source on the CPU.

Specialisation is by ``#define`` (e.g. ``T=float``), not C++ templates, because CuPy's disk cache and the
emulator both handle plain ``extern "C"`` entry points best. ``compile_options`` is the single source of
the options, also used by the NVRTC compile checks.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from kernels_cuda import KERNEL_DIR, kernel_path

from .errors import KernelError

#: Options for every kernel on every path: NVRTC has no host headers, so sources include only our own.
BASE_OPTIONS: tuple[str, ...] = ("--std=c++14", f"-I{KERNEL_DIR}")


def compile_options(defines: tuple[tuple[str, Any], ...] = ()) -> tuple[str, ...]:
    """The compiler options for a kernel specialised by ``defines`` ((name, value) pairs)."""
    return BASE_OPTIONS + tuple(f"-D{k}={v}" for k, v in defines)


@functools.lru_cache(maxsize=None)
def _module(device_name: str, family: str, options: tuple[str, ...]) -> Any:
    path = kernel_path(family)
    if not path.is_file():
        raise KernelError(f"no kernel family {family!r}: {path} does not exist")
    source = path.read_text()
    if device_name == "emu":
        from . import emu
        return emu.RawModule(code=source, options=options, filename=str(path))
    import cupy
    return cupy.RawModule(code=source, options=options)


@functools.lru_cache(maxsize=None)
def get_kernel(device_name: str, family: str, name: str,
               defines: tuple[tuple[str, Any], ...] = ()) -> Callable[..., None]:
    """The launchable kernel ``name`` from ``kernels_cuda/<family>.cu`` (memoized per process)."""
    options = compile_options(defines)
    module = _module(device_name, family, options)
    try:
        return module.get_function(name)
    except KernelError:
        raise  # the emulator's errors already name the file, the options and the compiler's log
    except Exception as e:  # CuPy: CompileException (with NVRTC's log) or a missing kernel name
        log = getattr(e, "get_message", lambda: str(e))()
        raise KernelError(f"kernel {name!r} of {kernel_path(family).name} failed to build with options "
                          f"{' '.join(options)}:\n{log}") from e
