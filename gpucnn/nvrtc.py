"""A small ctypes binding of NVRTC, for compiling our kernels to CUBIN on a machine without a GPU.

CuPy's own NVRTC path queries the device, so the compile checks (:mod:`gpucnn.kernel_check`) call NVRTC
directly. NVRTC needs no GPU and no driver.

Where libnvrtc comes from (first found wins, see :func:`find_libnvrtc`):

1. ``$GPUCNN_NVRTC``: the path of a ``libnvrtc.so*`` (or ``nvrtc64_*.dll``) to use;
2. PyPI's ``nvidia-cuda-nvrtc-cu12`` wheel (in the ``test`` extra): ``site-packages/nvidia/cuda_nvrtc/lib/``,
   found through ``importlib.util.find_spec("nvidia.cuda_nvrtc")``, then any ``nvidia/*/lib`` (``bin`` on
   Windows) of the ``nvidia`` namespace package (the CUDA 13 wheels use ``nvidia/cu13/lib``);
3. a CUDA toolkit: ``$CUDA_HOME``/``$CUDA_PATH``, ``/usr/local/cuda``, then ``ctypes.util.find_library``.

When none is found, :func:`find_libnvrtc` returns ``None`` and :func:`load` raises :class:`NvrtcNotFound`
(deliberately not a :class:`gpucnn.errors.KernelError`: a missing tool is a reason to skip, not a kernel
bug).

Resource usage: NVRTC accepts ptxas options (``-Xptxas -v``, or ``--ptxas-options=-v``; one option per
``-Xptxas``, a comma list is passed to ptxas as one unknown option) when it compiles to CUBIN
(``-arch=sm_XX``), and ptxas's report ("Used N registers, ... N bytes smem", "N bytes stack frame, N bytes
spill stores, N bytes spill loads", "ptxas warning : Local memory used ...") lands in the program log,
exactly as nvcc prints it. Verified with NVRTC 12.9 for sm_75 ... sm_90. See
:data:`PTXAS_REPORT_OPTIONS`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

#: ptxas options that make NVRTC's log report each kernel's resource usage and warn about spills and
#: local memory. They change no generated code.
PTXAS_REPORT_OPTIONS: tuple[str, ...] = ("-Xptxas", "-v", "-Xptxas", "-warn-spills",
                                         "-Xptxas", "-warn-lmem-usage")

NVRTC_SUCCESS = 0


class NvrtcNotFound(RuntimeError):
    """No libnvrtc could be found or loaded (install the ``nvidia-cuda-nvrtc-cu12`` wheel)."""


class NvrtcError(RuntimeError):
    """An NVRTC API call failed for a reason other than the source not compiling."""


@dataclass(frozen=True)
class CompileResult:
    """What :func:`compile_cubin` gives back: NVRTC's log, the CUBIN (``None`` if the compile failed)."""
    log: str
    cubin: Optional[bytes]
    ok: bool
    status: str = "NVRTC_SUCCESS"  #: nvrtcCompileProgram's result, by name


def _is_main_library(name: str) -> bool:
    """``libnvrtc.so.12`` yes; ``libnvrtc-builtins.so.12.9`` and ``libnvrtc.alt.so.12`` no."""
    if "builtins" in name or ".alt." in name:
        return False
    return name.startswith("libnvrtc.so") or (name.startswith("nvrtc64_") and name.endswith(".dll"))


def _library_in(directory: Path) -> Optional[str]:
    if not directory.is_dir():
        return None
    names = sorted((p.name for p in directory.iterdir() if _is_main_library(p.name)), key=len)
    # The shortest name is the unversioned/soname link when present (libnvrtc.so before libnvrtc.so.12.9...).
    return str(directory / names[0]) if names else None


def _wheel_dirs() -> list[Path]:
    libdir = "bin" if sys.platform == "win32" else "lib"
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        dirs += [Path(p) / libdir for p in (spec.submodule_search_locations or [])]
    try:
        nvidia = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        nvidia = None
    if nvidia is not None:
        for root in nvidia.submodule_search_locations or []:
            dirs += [Path(p) for p in sorted(glob.glob(os.path.join(root, "*", libdir)))]
    return dirs


def find_libnvrtc() -> Optional[str]:
    """The path (or loader name) of the libnvrtc to use, or ``None`` when there is none."""
    override = os.environ.get("GPUCNN_NVRTC")
    if override:
        return override
    for d in _wheel_dirs():
        found = _library_in(d)
        if found:
            return found
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            for sub in ("lib64", "lib", "bin"):
                found = _library_in(Path(os.environ[var]) / sub)
                if found:
                    return found
    found = _library_in(Path("/usr/local/cuda/lib64"))
    if found:
        return found
    return ctypes.util.find_library("nvrtc")


class Nvrtc:
    """The loaded library with typed entry points."""

    def __init__(self, path: str):
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise NvrtcNotFound(f"cannot load libnvrtc from {path}: {exc}") from exc
        self.path = path
        self.lib = lib
        c_int, c_size_t, c_char_p, c_void_p = ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p
        p_prog = ctypes.POINTER(c_void_p)
        signatures = {
            "nvrtcGetErrorString": (c_char_p, [c_int]),
            "nvrtcVersion": (c_int, [ctypes.POINTER(c_int), ctypes.POINTER(c_int)]),
            "nvrtcCreateProgram": (c_int, [p_prog, c_char_p, c_char_p, c_int,
                                           ctypes.POINTER(c_char_p), ctypes.POINTER(c_char_p)]),
            "nvrtcDestroyProgram": (c_int, [p_prog]),
            "nvrtcCompileProgram": (c_int, [c_void_p, c_int, ctypes.POINTER(c_char_p)]),
            "nvrtcGetProgramLogSize": (c_int, [c_void_p, ctypes.POINTER(c_size_t)]),
            "nvrtcGetProgramLog": (c_int, [c_void_p, c_char_p]),
            "nvrtcGetCUBINSize": (c_int, [c_void_p, ctypes.POINTER(c_size_t)]),
            "nvrtcGetCUBIN": (c_int, [c_void_p, c_char_p]),
        }
        for name, (restype, argtypes) in signatures.items():
            try:
                fn = getattr(lib, name)
            except AttributeError as exc:  # CUBIN output needs NVRTC 11.1 or newer
                raise NvrtcNotFound(f"{path} has no {name} (NVRTC too old; 11.1 or newer is needed)") from exc
            fn.restype, fn.argtypes = restype, argtypes

    def error_string(self, code: int) -> str:
        s = self.lib.nvrtcGetErrorString(code)
        return s.decode() if s else f"NVRTC error {code}"

    def _check(self, code: int, what: str) -> None:
        if code != NVRTC_SUCCESS:
            raise NvrtcError(f"{what} failed: {self.error_string(code)}")

    def version(self) -> tuple[int, int]:
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def compile_cubin(self, source: str, name: str, options: Sequence[str]) -> CompileResult:
        prog = ctypes.c_void_p()
        self._check(self.lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
                    "nvrtcCreateProgram")
        try:
            opts = [o.encode() for o in options]
            argv = (ctypes.c_char_p * max(len(opts), 1))(*opts)
            code = self.lib.nvrtcCompileProgram(prog, len(opts), argv)
            size = ctypes.c_size_t()
            self._check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
            buf = ctypes.create_string_buffer(size.value)
            self._check(self.lib.nvrtcGetProgramLog(prog, buf), "nvrtcGetProgramLog")
            log = buf.value.decode(errors="replace")
            cubin = None
            if code == NVRTC_SUCCESS:
                self._check(self.lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
                if size.value == 0:
                    raise NvrtcError(f"NVRTC produced no CUBIN for {name} (options {' '.join(options)}): "
                                     f"pass a real architecture, -arch=sm_XX, not compute_XX")
                data = ctypes.create_string_buffer(size.value)
                self._check(self.lib.nvrtcGetCUBIN(prog, data), "nvrtcGetCUBIN")
                cubin = data.raw
            return CompileResult(log=log, cubin=cubin, ok=code == NVRTC_SUCCESS, status=self.error_string(code))
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


@functools.lru_cache(maxsize=None)
def _load(path: Optional[str]) -> Nvrtc:
    if path is None:
        raise NvrtcNotFound("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12 (or the test extra, "
                            "pip install -e .[test]), or set GPUCNN_NVRTC to the library's path")
    return Nvrtc(path)


def load() -> Nvrtc:
    """The loaded NVRTC library (memoized); raises :class:`NvrtcNotFound` when there is none."""
    return _load(find_libnvrtc())


def available() -> bool:
    """Whether a usable libnvrtc was found."""
    try:
        load()
    except NvrtcNotFound:
        return False
    return True


def version() -> tuple[int, int]:
    """NVRTC's (major, minor) version."""
    return load().version()


def compile_cubin(source: str, name: str, options: Sequence[str]) -> CompileResult:
    """Compile CUDA C++ ``source`` (``name`` appears in messages) with ``options``, which must contain
    ``-arch=sm_XX`` for a CUBIN. A source that does not compile gives ``ok=False`` with NVRTC's log; an
    API failure raises :class:`NvrtcError`."""
    return load().compile_cubin(source, name, options)
