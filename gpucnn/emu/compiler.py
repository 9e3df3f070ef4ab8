"""Building kernel modules (and the emulator runtime) with g++, cached on disk and memoized per process.

Cache layout, under ``$GPUCNN_CACHE_DIR/emu`` (default ``~/.cache/gpucnn/emu``):
``libgpucnn_emu_rt_<hash>.so`` (the runtime) and ``<hash>.so`` per (source, options, emulator files,
compiler version). Files are written under a temporary name and renamed, so concurrent processes never
see a half-written library.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from . import native
from .errors import CompileError
from .options import CompileOptions, translate
from .ptx_rewrite import translate as translate_asm
from .signatures import find_kernels
from .source_rewrite import local_includes, rewrite
from .trampolines import generate

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim.h"
RUNTIME_SOURCES = ("fiber.cpp", "scheduler.cpp", "faults.cpp", "ptx.cpp", "context_x86_64.S")
RUNTIME_HEADERS = ("emu_abi.h", "emu_internal.h")
#: Macros every emulated kernel sees (NVRTC defines the first three; GPUCNN_EMU lets a kernel tell).
BASE_DEFINES = ["-D__CUDACC__", "-D__CUDACC_RTC__", "-D__CUDA_ARCH__=800", "-DGPUCNN_EMU=1"]
#: -ffp-contract=off: a*b+c is never fused, so results match NumPy's float32/float64 arithmetic.
#: -fstack-clash-protection: a large frame probes page by page and hits the fiber's guard page.
#: -fno-strict-aliasing: kernels reinterpret_cast float* to float4* as CUDA code does.
KERNEL_FLAGS = ["-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno",
                "-fno-strict-aliasing", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics",
                "-fstack-clash-protection", "-Wno-unknown-pragmas", "-D__assert_fail=__emu_assert_fail"]
#: No _FORTIFY_SOURCE: its longjmp check rejects jumping from a fiber's signal back to the scheduler.
RUNTIME_FLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-U_FORTIFY_SOURCE", "-ffp-contract=off",
                 "-fno-exceptions", "-fno-rtti", "-pthread"]

_stats = {"module_compiles": 0, "runtime_compiles": 0, "disk_hits": 0, "memory_hits": 0}
_lock = threading.RLock()
_runtime: ctypes.CDLL | None = None
_runtime_path: Path | None = None
_modules: dict[str, "LoadedModule"] = {}
_compiler_ids: dict[str, str] = {}


def cache_stats() -> dict[str, int]:
    """Counters for this process: ``module_compiles``, ``runtime_compiles`` (g++ runs), ``disk_hits``
    (libraries loaded from the disk cache) and ``memory_hits`` (modules reused within the process)."""
    return dict(_stats)


def cache_dir() -> Path:
    """The directory holding compiled emulator libraries (created on first use)."""
    root = os.environ.get("GPUCNN_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "gpucnn"
    path = base / "emu"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        if root:
            raise CompileError(f"GPUCNN_CACHE_DIR={root!r}: cannot create {path}") from None
        # An unwritable home (some CI sandboxes): fall back to a per-user temporary directory.
        path = Path(tempfile.gettempdir()) / f"gpucnn-{os.getuid()}" / "emu"
        path.mkdir(parents=True, exist_ok=True)
    return path


def _load_library(path: Path, mode: int = ctypes.DEFAULT_MODE) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(str(path), mode=mode)
    except OSError as exc:
        raise CompileError(f"cannot load the compiled emulator library {path}: {exc} (a cache directory on a "
                           "noexec filesystem? set GPUCNN_CACHE_DIR elsewhere)") from exc


def _compiler() -> str:
    return os.environ.get("GPUCNN_EMU_CXX") or "g++"


def _compiler_id(cxx: str) -> str:
    if cxx not in _compiler_ids:
        exe = shutil.which(cxx)
        if exe is None:
            raise CompileError(f"the CUDA emulator needs a C++ compiler: {cxx!r} was not found on PATH "
                               "(install g++ or set GPUCNN_EMU_CXX)")
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
        _compiler_ids[cxx] = f"{os.path.realpath(exe)}\n{out.splitlines()[0] if out else ''}"
    return _compiler_ids[cxx]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _files_digest(names: tuple[str, ...] | list[str]) -> str:
    return _digest(*(name.encode() + b"\0" + (HERE / name).read_bytes() for name in sorted(names)))


_emulator_digest_value: str | None = None


def _emulator_digest() -> str:
    """Everything in this package that shapes a compiled module (C/C++ sources, shim, Python codegen)."""
    global _emulator_digest_value
    if _emulator_digest_value is None:
        names = sorted(p.name for p in HERE.iterdir() if p.suffix in (".h", ".cpp", ".S", ".py"))
        _emulator_digest_value = _files_digest(names)
    return _emulator_digest_value


def _run_gxx(cmd: list[str], what: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CompileError(f"cannot run the C++ compiler for {what}: {exc}") from exc
    return proc


def _atomic_output(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def runtime() -> tuple[ctypes.CDLL, Path]:
    """Load (building it on first use) the emulator runtime shared by all kernel modules."""
    global _runtime, _runtime_path
    with _lock:
        if _runtime is not None and _runtime_path is not None:
            return _runtime, _runtime_path
        cxx = _compiler()
        key = _digest(_files_digest(list(RUNTIME_SOURCES + RUNTIME_HEADERS)), _compiler_id(cxx),
                      " ".join(RUNTIME_FLAGS))[:20]
        name = f"libgpucnn_emu_rt_{key}.so"
        path = cache_dir() / name
        if not path.exists():
            tmp = _atomic_output(path)
            cmd = [cxx, *RUNTIME_FLAGS, f"-Wl,-soname,{name}", "-o", str(tmp),
                   *(str(HERE / s) for s in RUNTIME_SOURCES)]
            proc = _run_gxx(cmd, "the emulator runtime")
            if proc.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise CompileError(f"building the emulator runtime failed:\n{proc.stderr}\ncommand: {' '.join(cmd)}")
            os.replace(tmp, path)
            _stats["runtime_compiles"] += 1
        # RTLD_GLOBAL: kernel modules must bind to this very copy (its globals hold the launch state).
        lib = native.bind_runtime(_load_library(path, ctypes.RTLD_GLOBAL))
        if lib.emu_abi_version() != native.ABI_VERSION:
            raise CompileError(f"{path}: emulator runtime ABI {lib.emu_abi_version()} != {native.ABI_VERSION}")
        _runtime, _runtime_path = lib, path
        return lib, path


class LoadedModule:
    """A compiled kernel module loaded into the process, with its kernel table."""

    def __init__(self, path: Path, lib: ctypes.CDLL) -> None:
        self.path = path
        self.lib = lib
        get_json = lib["__emu_module_json"]
        get_json.restype = ctypes.c_char_p
        meta = json.loads(get_json().decode("utf-8"))
        self.filename: str = meta["filename"]
        self.options: tuple[str, ...] = tuple(meta["options"])
        self.kernels: dict[str, dict] = {k["name"]: k for k in meta["kernels"]}
        info = native.EmuModuleInfo()
        lib["__emu_module_info"](ctypes.byref(info))
        if info.abi != native.ABI_VERSION:
            raise CompileError(f"{path}: module ABI {info.abi} != {native.ABI_VERSION}")
        self.common_smem = (info.common_smem_begin or 0, info.common_smem_end or 0)

    def kernel_info(self, name: str) -> native.EmuKernelInfo:
        info = native.EmuKernelInfo()
        self.lib[f"__emu_kernel_info_{name}"](ctypes.byref(info))
        return info


def _compile_error(filename: str, options: tuple[str, ...], log: str, cmd: list[str]) -> CompileError:
    return CompileError(f"g++ could not compile {filename} (options {options!r}):\n{log.rstrip()}\n"
                        f"[emulator command: {' '.join(cmd)}]")


def build_module(source: str, filename: str, source_dir: str | None, options: tuple[str, ...]) -> LoadedModule:
    """Compile (or fetch from the caches) the module for ``source`` compiled with NVRTC ``options``."""
    opts = translate(options, filename)
    with _lock:
        cxx = _compiler()
        _, rt_path = runtime()
        includes = local_includes("\n".join(opts.prelude) + "\n" + source, source_dir, opts.include_dirs)
        key = _digest(source, filename, json.dumps(list(options)), source_dir or "",
                      *(k.encode() + b"\0" + v for k, v in sorted(includes.items())),
                      _emulator_digest(), _compiler_id(cxx), rt_path.name)[:40]
        if key in _modules:
            _stats["memory_hits"] += 1
            return _modules[key]
        path = cache_dir() / f"{key}.so"
        module = None
        if path.exists():
            try:
                module = LoadedModule(path, ctypes.CDLL(str(path)))
                _stats["disk_hits"] += 1
            except (OSError, ValueError, KeyError):
                module = None  # truncated or stale file: rebuild it
        if module is None:
            _compile(source, filename, source_dir, options, opts, cxx, rt_path, path)
            module = LoadedModule(path, _load_library(path))
        _modules[key] = module
        return module


def _compile(source: str, filename: str, source_dir: str | None, options: tuple[str, ...], opts: CompileOptions,
             cxx: str, rt_path: Path, path: Path) -> None:
    rewritten = rewrite(source)
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    prelude = "".join(line + "\n" for line in opts.prelude)
    text = f'{prelude}#line 1 "{quoted}"\n{rewritten}'
    # -isystem HERE: <cuda_fp16.h> and <cuda_bf16.h> are the emulator's own (NVRTC ships its own too).
    common = [cxx, "-x", "c++", f"-std={opts.std}", *BASE_DEFINES, *opts.gxx_args, "-isystem", str(HERE)]
    if source_dir:
        common += ["-iquote", source_dir]
    pre_cmd = common + ["-E", "-"]
    pre = _run_gxx(pre_cmd, filename, stdin=text)
    if pre.returncode != 0:
        raise _compile_error(filename, options, pre.stderr, pre_cmd)
    kernels = find_kernels(pre.stdout)
    generated = generate(kernels, {"filename": filename, "options": list(options)})
    # The preprocessed text is what gets compiled: asm statements are translated after macro expansion and
    # #include, and its line markers keep g++'s messages (and __FILE__/__LINE__) on the original source.
    body = translate_asm(pre.stdout)
    build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
    try:
        src = build_dir / "kernel.cpp"
        src.write_text(body + "\n" + generated)
        tmp = _atomic_output(path)
        cmd = common + KERNEL_FLAGS + ["-include", str(SHIM), "-o", str(tmp), str(src),
                                      "-x", "none", str(rt_path), "-Wl,-rpath,$ORIGIN", "-Wl,-z,defs"]
        proc = _run_gxx(cmd, filename)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise _compile_error(filename, options, proc.stderr, cmd)
        os.replace(tmp, path)
        _stats["module_compiles"] += 1
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
