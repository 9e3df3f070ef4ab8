"""``RawModule`` / ``RawKernel`` / ``Function``: CuPy's raw-kernel API, running on the CPU."""
from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from gpucnn.errors import ArgumentError

from . import limits
from . import native as N
from .compiler import LoadedModule, build_module, runtime
from .errors import (DeadlockError, EmuError, KernelNotFoundError, KernelTrap, LaunchError, OutOfBoundsError,
                     WarpSyncError)
from .ordering import get_thread_order

# The runtime keeps one launch's state in globals and swaps signal handlers: one launch at a time.
_LAUNCH_LOCK = threading.Lock()


class RawModule:
    """A CUDA C source compiled for the emulator; mirrors ``cupy.RawModule``.

    Give exactly one of ``code`` (the source text) or ``path`` (a .cu file; ``#include "..."`` is then
    resolved next to it), keyword-only as in CuPy. ``options`` are NVRTC
    options: ``-D``/``-U``/``-I``/``-include`` are honoured, GPU code-generation flags are ignored,
    ``--use_fast_math`` is rejected. ``filename`` (emulator only) names ``code`` in error messages.
    Compilation happens on the first ``get_function``.
    """

    def __init__(self, *, code: str | None = None, path: str | os.PathLike | None = None,
                 options: Sequence[str] = (), backend: str = "nvrtc", translate_cucomplex: bool = False,
                 enable_cooperative_groups: bool = False, name_expressions: Sequence[str] | None = None,
                 jitify: bool = False, filename: str | None = None) -> None:
        if (code is None) == (path is None):
            raise ArgumentError("RawModule needs exactly one of code= and path=")
        if translate_cucomplex or enable_cooperative_groups or name_expressions or jitify:
            raise ArgumentError("the emulator supports neither cuComplex translation, cooperative groups, "
                                "name_expressions (templated kernels) nor jitify: use extern \"C\" kernels "
                                "specialised with -D options")
        if backend not in ("nvrtc", "nvcc"):
            raise ArgumentError(f"unknown backend {backend!r}")
        if isinstance(options, str):
            raise ArgumentError(f"options must be a sequence of strings, got the string {options!r}")
        if path is not None:
            p = Path(path)
            try:
                self._source = p.read_text()
            except OSError as exc:
                raise ArgumentError(f"cannot read kernel file {p}: {exc}") from exc
            self._filename = filename or str(p)
            self._source_dir: str | None = str(p.resolve().parent)
        else:
            self._source = code
            self._filename = filename or "<code>"
            self._source_dir = None
        self._options = tuple(options)
        self._module: LoadedModule | None = None
        self._functions: dict[str, Function] = {}

    def compile(self) -> None:
        """Compile now rather than on the first ``get_function`` (raises ``CompileError``)."""
        self._load()

    def _load(self) -> LoadedModule:
        if self._module is None:
            self._module = build_module(self._source, self._filename, self._source_dir, self._options)
        return self._module

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """Names of the ``extern "C" __global__`` kernels the module defines."""
        return tuple(self._load().kernels)

    def get_function(self, name: str) -> "Function":
        """Return the kernel ``name`` (an ``extern "C" __global__`` function of the source)."""
        module = self._load()
        if name not in self._functions:
            if name not in module.kernels:
                known = ", ".join(module.kernels) or "none"
                raise KernelNotFoundError(f"{self._filename}: no extern \"C\" __global__ kernel named {name!r} "
                                          f"(kernels: {known})", kernel=name)
            self._functions[name] = Function(module, name)
        return self._functions[name]


def RawKernel(code: str, name: str, options: Sequence[str] = (), **kwargs) -> "Function":  # noqa: N802
    """Mirror of ``cupy.RawKernel(code, name, options)``: compile ``code`` and return kernel ``name``."""
    return RawModule(code=code, options=options, **kwargs).get_function(name)


def _dims(what: str, value: object) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, int) else value
    if not isinstance(dims, (tuple, list)) or not 1 <= len(dims) <= 3:
        raise LaunchError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    out = []
    for d in dims:
        if not hasattr(d, "__index__") or isinstance(d, bool):
            raise LaunchError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
        d = int(d)
        if d < 0:
            raise LaunchError(f"{what} {value!r} has a negative dimension")
        out.append(max(d, 1))  # CuPy launches max(1, d): a kernel must cope with an empty problem
    return tuple(out + [1] * (3 - len(out)))  # type: ignore[return-value]


def _stack_bytes() -> int:
    """Stack per emulated thread: GPUCNN_EMU_STACK_KIB (KiB), else limits.DEFAULT_STACK_BYTES."""
    kib = os.environ.get("GPUCNN_EMU_STACK_KIB")
    if not kib:
        return limits.DEFAULT_STACK_BYTES
    try:
        value = int(kib)
    except ValueError:
        value = 0
    if value < 16:
        raise ArgumentError(f"GPUCNN_EMU_STACK_KIB={kib!r}: expected an integer >= 16")
    return value * 1024


class Function:
    """An emulated kernel; call it like a CuPy kernel: ``f(grid, block, args, shared_mem=0)``."""

    def __init__(self, module: LoadedModule, name: str) -> None:
        from .arguments import ParamSpec  # numpy is imported on first use, not with gpucnn.emu

        self._module = module
        self.name = name
        meta = module.kernels[name]
        self._info = module.kernel_info(name)
        parsed = meta["params"]
        n = self._info.nparams
        if len(parsed) != n:  # unusual declarations: fall back to positional names
            parsed = [{"name": f"arg{i}", "text": f"arg{i}"} for i in range(n)]
        self.params: tuple[ParamSpec, ...] = tuple(
            ParamSpec(index=i, name=parsed[i]["name"], text=parsed[i]["text"], code=p.code, is_ptr=bool(p.is_ptr),
                      is_const=bool(p.is_const), size=p.size)
            for i, p in enumerate(self._info.params[k] for k in range(n)))
        self.launch_bounds: int | None = meta.get("launch_bounds")
        own = (self._info.smem_end or 0) - (self._info.smem_begin or 0)
        common = module.common_smem[1] - module.common_smem[0]
        #: Bytes of static ``__shared__`` memory (shared memory declared outside kernel bodies is counted
        #: for every kernel of the module).
        self.static_shared_bytes: int = own + common
        self._max_dyn: int | None = None
        self._err = N.EmuErrorInfo()

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        """Dynamic shared memory a launch may request (``cudaFuncAttributeMaxDynamicSharedMemorySize``)."""
        if self._max_dyn is not None:
            return self._max_dyn
        return max(0, limits.MAX_SHARED_MEMORY_PER_BLOCK - self.static_shared_bytes)

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        if value < 0 or self.static_shared_bytes + value > limits.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
            raise LaunchError(f"kernel '{self.name}': static {self.static_shared_bytes} + dynamic {value} bytes of "
                              f"shared memory exceed the opt-in limit of {limits.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN}",
                              kernel=self.name)
        self._max_dyn = int(value)

    def __repr__(self) -> str:
        return f"<emu.Function {self.name}({', '.join(p.text for p in self.params)}) from {self._module.filename}>"

    def _check_launch(self, grid: tuple[int, int, int], block: tuple[int, int, int], shared_mem: int) -> None:
        name = self.name
        threads = block[0] * block[1] * block[2]
        if threads > limits.MAX_THREADS_PER_BLOCK:
            raise LaunchError(f"kernel '{name}': block {block} has {threads} threads, more than "
                              f"MAX_THREADS_PER_BLOCK={limits.MAX_THREADS_PER_BLOCK}", kernel=name)
        for axis, (b, mb) in enumerate(zip(block, limits.MAX_BLOCK_DIM)):
            if b > mb:
                raise LaunchError(f"kernel '{name}': blockDim.{'xyz'[axis]}={b} exceeds {mb}", kernel=name)
        for axis, (g, mg) in enumerate(zip(grid, limits.MAX_GRID_DIM)):
            if g > mg:
                raise LaunchError(f"kernel '{name}': gridDim.{'xyz'[axis]}={g} exceeds {mg}", kernel=name)
        if self.launch_bounds is not None and threads > self.launch_bounds:
            raise LaunchError(f"kernel '{name}' declares __launch_bounds__({self.launch_bounds}) but was launched "
                              f"with {threads} threads per block", kernel=name)
        if not isinstance(shared_mem, int) or shared_mem < 0:
            raise LaunchError(f"kernel '{name}': shared_mem must be a non-negative int, got {shared_mem!r}",
                              kernel=name)
        static = self.static_shared_bytes
        if static > limits.MAX_SHARED_MEMORY_PER_BLOCK:
            raise LaunchError(f"kernel '{name}' uses {static} bytes of static shared memory, more than "
                              f"{limits.MAX_SHARED_MEMORY_PER_BLOCK}", kernel=name)
        if shared_mem > self.max_dynamic_shared_size_bytes:
            raise LaunchError(
                f"kernel '{name}': {static} bytes of static plus {shared_mem} bytes of dynamic shared memory "
                f"exceed the limit of {static + self.max_dynamic_shared_size_bytes} bytes per block "
                f"(MAX_SHARED_MEMORY_PER_BLOCK={limits.MAX_SHARED_MEMORY_PER_BLOCK}; raise "
                "max_dynamic_shared_size_bytes to opt in to more)", kernel=name)

    def __call__(self, grid: int | Sequence[int], block: int | Sequence[int], args: Sequence[object], *,
                 shared_mem: int = 0, stream: object = None, enable_cooperative_groups: bool = False) -> None:
        """Launch on the CPU; returns when the kernel has finished and outputs are copied back.

        Raises ``LaunchError`` (bad configuration), ``ArgumentTypeError`` (arguments that do not match the
        parameters), and, from the running kernel, ``OutOfBoundsError``, ``DeadlockError``,
        ``WarpSyncError`` or ``KernelTrap``; after such an error the arrays are left unchanged.
        """
        from .arguments import marshal

        g, b = _dims("grid", grid), _dims("block", block)
        if enable_cooperative_groups:
            raise LaunchError("cooperative launches are not supported by the emulator", kernel=self.name)
        self._check_launch(g, b, shared_mem)
        if not isinstance(args, (tuple, list)):
            raise LaunchError(f"kernel '{self.name}': args must be a tuple, got {type(args).__name__}",
                              kernel=self.name)
        order, seed = get_thread_order()
        lib, _ = runtime()
        with _LAUNCH_LOCK:
            staged = marshal(self.name, list(self.params), tuple(args), lib)
            try:
                launch = N.EmuLaunch()
                launch.tramp = self._info.tramp
                launch.args = staged.argv.ctypes.data
                launch.grid[:] = g
                launch.block[:] = b
                launch.dyn_smem = shared_mem
                launch.smem[:] = [self._info.smem_begin, self._info.smem_end, self._module.common_smem[0] or None,
                                  self._module.common_smem[1] or None]
                launch.order = N.ORDER_CODES[order]
                launch.seed = seed
                launch.stack_bytes = _stack_bytes()
                err = self._err
                if lib.emu_launch(ctypes.byref(launch), ctypes.byref(err)) != N.OK:
                    raise self._error(err, staged, shared_mem)
                staged.copy_back()
            finally:
                staged.free(lib)

    def _error(self, err: N.EmuErrorInfo, staged, shared_mem: int) -> EmuError:
        block = tuple(err.block)
        thread = tuple(err.thread)
        msg = err.message.decode("utf-8", "replace")
        where = f"kernel '{self.name}' ({self._module.filename}), block {block}"
        ctx = dict(kernel=self.name, block=block, thread=thread)
        if err.kind in (N.ERR_TRAP, N.ERR_ASSERT):
            return KernelTrap(f"{where}, thread {thread}: {msg}", **ctx)
        if err.kind == N.ERR_DEADLOCK:
            return DeadlockError(f"{where}: deadlock: {msg}", **ctx)
        if err.kind == N.ERR_WARP:
            return WarpSyncError(f"{where}, thread {thread}: {msg}", **ctx)
        if err.kind == N.ERR_ADDRESS:
            return OutOfBoundsError(f"{where}, thread {thread}: {msg} ({err.file.decode('utf-8', 'replace')}:"
                                    f"{err.line})", **ctx)
        if err.kind == N.ERR_FAULT:
            access = {1: "read", 2: "write"}.get(err.access, "access")
            addr = err.addr
            if err.region == N.REGION_DYN_SMEM:
                what = (f"dynamic shared memory byte offset {err.region_offset}, but the launch requested "
                        f"shared_mem={shared_mem} bytes")
            elif err.region == N.REGION_STACK:
                what = (f"its stack (overflow: {_stack_bytes() // 1024} KiB per emulated thread; set "
                        "GPUCNN_EMU_STACK_KIB for kernels with large local arrays)")
            else:
                found = staged.describe_address(addr)
                if found is not None:
                    what = found[0]
                elif addr < 65536:
                    what = f"address {addr:#x}: a null pointer (was None passed for an array argument?)"
                else:
                    what = (f"address {addr:#x}, which is outside every argument array and shared memory "
                            "(a wild pointer, or an index far out of range)")
            return OutOfBoundsError(f"{where}, thread {thread}: invalid {access} of {what}", **ctx)
        return EmuError(f"{where}: emulator failure: {msg}", **ctx)
