"""Our CUDA kernels, compiled lazily once per process and launched the same way on `cuda` and `emu`.

``get_kernel(device, family, name, defines)`` returns a callable ``k(grid, block, args, shared_mem=0)``
for the kernel ``name`` of ``kernels_cuda/<family>.cu`` compiled with ``-D`` ``defines``:

- on ``cuda`` a ``cupy.RawKernel`` (NVRTC; CuPy also caches the binary on disk; a prebuilt cubin from
  ``GPUCNN_KERNEL_CACHE`` when it has one: :mod:`gpucnn.kernel_cache`),
- on ``emu`` an :class:`gpucnn.emu.RawKernel` running the same source on the CPU.

Specialisation is by ``#define`` (e.g. ``T=float``), not C++ templates, because CuPy's disk cache and the
emulator both handle plain ``extern "C"`` entry points best. The defines are written as ``#define`` lines at
the top of the source (:func:`kernel_source`), NOT passed as ``-D`` options: NVRTC applies command-line
macros to its own built-in header too, where ``-DT=float`` turns ``template<typename T>`` into an error.
:func:`kernel_source` and :func:`compile_options` are the single source of what is compiled, also for the
NVRTC compile checks (:mod:`gpucnn.kernel_check`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from kernels_cuda import KERNEL_DIR, kernel_path

from .errors import KernelError

#: Options for every kernel on every path: NVRTC has no host headers, so sources include only our own.
BASE_OPTIONS: tuple[str, ...] = ("--std=c++14", f"-I{KERNEL_DIR}")


def compile_options() -> tuple[str, ...]:
    """The compiler options of every kernel (the specialisation is in the source: :func:`kernel_source`)."""
    return BASE_OPTIONS


def specialise(source: str, filename: str, defines: tuple[tuple[str, Any], ...] = ()) -> str:
    """``source`` preceded by a ``#define`` line per (name, value) pair; ``#line 1`` keeps the compilers'
    messages pointing at ``filename``'s own lines."""
    prelude = "".join(f"#define {k} {v}\n" for k, v in defines)
    return f'{prelude}#line 1 "{filename}"\n{source}'


def kernel_source(family: str, defines: tuple[tuple[str, Any], ...] = ()) -> str:
    """The text compiled for ``kernels_cuda/<family>.cu`` specialised by ``defines``."""
    path = kernel_path(family)
    if not path.is_file():
        raise KernelError(f"no kernel family {family!r}: {path} does not exist")
    return specialise(path.read_text(), str(path), defines)


@functools.lru_cache(maxsize=None)
def _module(device_name: str, family: str, defines: tuple[tuple[str, Any], ...]) -> Any:
    path, source, options = kernel_path(family), kernel_source(family, defines), compile_options()
    if device_name == "emu":
        from . import emu
        return emu.RawModule(code=source, options=options, filename=str(path))
    import cupy
    return _cuda_module(cupy, family, defines, source, options)


def _cuda_module(cupy: Any, family: str, defines: tuple[tuple[str, Any], ...], source: str,
                 options: tuple[str, ...]) -> Any:
    """A CuPy module: from the prebuilt cubin in ``GPUCNN_KERNEL_CACHE`` when it has this exact module for the
    device's architecture (:mod:`gpucnn.kernel_cache`), else compiled by NVRTC."""
    from . import kernel_cache

    if kernel_cache.directory() is not None:
        arch = f"sm_{cupy.cuda.Device().compute_capability}"
        path = kernel_cache.lookup(family, defines, arch)
        if path is not None:
            return cupy.RawModule(path=str(path))
    return cupy.RawModule(code=source, options=options)


@functools.lru_cache(maxsize=None)
def get_kernel(device_name: str, family: str, name: str,
               defines: tuple[tuple[str, Any], ...] = ()) -> Callable[..., None]:
    """The launchable kernel ``name`` from ``kernels_cuda/<family>.cu`` (memoized per process)."""
    module = _module(device_name, family, defines)
    try:
        return module.get_function(name)
    except Exception as e:
        # The compiler's log: CuPy's CompileException has NVRTC's in get_message(), the emulator's errors g++'s.
        log = getattr(e, "get_message", lambda: str(e))()
        spec = " ".join(f"{k}={v}" for k, v in defines)
        raise KernelError(f"kernel {name!r} of {kernel_path(family).name} ({spec}) failed to build with options "
                          f"{' '.join(compile_options())}:\n{log}") from e
