"""Compile checks of our CUDA kernels that need no GPU: every ``kernels_cuda/<family>.cu`` is compiled to
CUBIN for each architecture and dtype with exactly the runtime's options (:func:`gpucnn.kernels.compile_options`),
and fails on

- a compile error (NVRTC has no host headers: ``INFINITY``, ``<cmath>``, ``std::`` compile under nvcc and
  g++ but not at run time, which is why NVRTC is the reference compiler here),
- any warning in the compiler's log (front end or ptxas),
- register spills (spill stores or loads > 0),
- local memory: a stack frame (a per-thread array indexed dynamically, a spill) or ``lmem`` > 0.

Resource usage comes from ptxas's own report: NVRTC and nvcc are both given ``-Xptxas -v`` (plus
``-warn-spills``/``-warn-lmem-usage``; nvcc: ``--resource-usage``), and the log lines "Compiling entry
function 'k' for 'sm_80'", "N bytes stack frame, N bytes spill stores, N bytes spill loads" and "Used N
registers, used N barriers, N bytes smem, ..." are parsed (:func:`parse_ptxas_log`). The CUBIN (an ELF file)
is read too (:func:`cubin_kernels`): its symbol table lists the entry points (``st_other`` bit 0x10), and
its ``.nv.info`` section carries the attributes EIATTR_REGCOUNT (0x2f) and EIATTR_FRAME_SIZE (0x11) per
kernel. Every kernel of the CUBIN must appear in the log with the same register count; where a log lacks a
kernel's figures, the CUBIN's are used (spills are only in the log; a spill always needs a stack frame,
which the CUBIN shows). ``smem`` is the static shared memory ptxas reports (dynamic shared memory is
chosen at launch and is not part of it).

Entry points: :func:`check_family` / :func:`check_source` (one compile), :func:`check_all` (families x
archs x dtypes), :func:`format_table`. The ``gpucnn kernels`` command and
``tests/kernels/test_kernel_compile.py`` use them.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from kernels_cuda import families as _families, kernel_path

from . import nvrtc
from .kernels import compile_options, specialise

#: Architectures checked by default (CUDA 13's nvcc starts at sm_75).
ARCHS: tuple[str, ...] = ("sm_75", "sm_80", "sm_86", "sm_90")
#: Scalar types each family is compiled for (``-DT=...``).
DTYPES: tuple[str, ...] = ("float", "double")
COMPILERS: tuple[str, ...] = ("nvrtc", "nvcc")

#: nvcc's options for the same report NVRTC gives with :data:`gpucnn.nvrtc.PTXAS_REPORT_OPTIONS`.
NVCC_REPORT_OPTIONS: tuple[str, ...] = ("--resource-usage", "-Xptxas", "-warn-spills", "-Xptxas", "-warn-lmem-usage")


# -- ptxas's report -------------------------------------------------------------------------------------
@dataclass
class FunctionUsage:
    """One function's figures from ptxas's report (``None``: not reported)."""
    name: str
    entry: bool = False
    registers: Optional[int] = None
    barriers: Optional[int] = None
    smem: Optional[int] = None
    cmem: Optional[int] = None
    stack_frame: Optional[int] = None
    spill_stores: Optional[int] = None
    spill_loads: Optional[int] = None
    cumulative_stack: Optional[int] = None
    lmem: Optional[int] = None


_ENTRY_RE = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_PROPS_RE = re.compile(r"Function properties for (\S+)")
_FRAME_RE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED_RE = re.compile(r"Used (\d+) registers")
_FIELD_RES = {
    "barriers": re.compile(r"used (\d+) barriers"),
    "smem": re.compile(r"(\d+) bytes smem"),
    "cmem": re.compile(r"(\d+) bytes cmem\[0\]"),
    "cumulative_stack": re.compile(r"(\d+) bytes cumulative stack size"),
    "lmem": re.compile(r"(\d+) bytes lmem"),
}


def parse_ptxas_log(log: str) -> dict[str, FunctionUsage]:
    """The functions ptxas reported on in ``log`` (NVRTC's program log or nvcc's output), by name."""
    funcs: dict[str, FunctionUsage] = {}
    current: Optional[FunctionUsage] = None
    for line in log.splitlines():
        m = _ENTRY_RE.search(line)
        if m:
            current = funcs.setdefault(m.group(1), FunctionUsage(m.group(1)))
            current.entry = True
            continue
        m = _PROPS_RE.search(line)
        if m:
            current = funcs.setdefault(m.group(1), FunctionUsage(m.group(1)))
            continue
        if current is None:
            continue
        m = _FRAME_RE.search(line)
        if m:
            current.stack_frame, current.spill_stores, current.spill_loads = map(int, m.groups())
            continue
        m = _USED_RE.search(line)
        if m:
            current.registers = int(m.group(1))
            for attr, rx in _FIELD_RES.items():
                f = rx.search(line)
                setattr(current, attr, int(f.group(1)) if f else 0)
    return funcs


_WARNING_RE = re.compile(r"\bwarning\b", re.IGNORECASE)


def compiler_warnings(log: str) -> list[str]:
    """The warning lines of a compiler log (front end ``file(12): warning #177-D: ...``, ``ptxas warning :``,
    ``nvlink warning``, ...)."""
    return [line.strip() for line in log.splitlines()
            if _WARNING_RE.search(line) and not line.lstrip().startswith(("ptxas info", "Remark"))]


# -- the CUBIN ------------------------------------------------------------------------------------------
@dataclass
class CubinKernel:
    """What a CUBIN's ELF says about one entry point."""
    name: str
    registers: Optional[int] = None
    frame_size: Optional[int] = None


_EIATTR_FRAME_SIZE = 0x11
_EIATTR_REGCOUNT = 0x2F
_EIFMT_SVAL = 0x04
_STO_CUDA_ENTRY = 0x10


def cubin_kernels(cubin: bytes) -> dict[str, CubinKernel]:
    """The entry points of a CUBIN (64-bit little-endian ELF), with EIATTR_REGCOUNT and EIATTR_FRAME_SIZE
    from its ``.nv.info`` section. Raises ``ValueError`` for something that is not such an ELF."""
    if cubin[:4] != b"\x7fELF" or cubin[4] != 2 or cubin[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", cubin, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", cubin, 0x3A)
    sections = []
    for i in range(shnum):
        name, stype, _flags, _addr, offset, size, link, info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", cubin, shoff + i * shentsize)
        sections.append((name, stype, offset, size, link, entsize))

    def cstr(table_offset: int, index: int) -> str:
        end = cubin.index(b"\0", table_offset + index)
        return cubin[table_offset + index:end].decode(errors="replace")

    shstr_offset = sections[shstrndx][2]
    names = [cstr(shstr_offset, s[0]) for s in sections]
    symbols: list[tuple[str, int]] = []  # (name, st_other) by symbol index
    for (_n, stype, offset, size, link, entsize), sname in zip(sections, names):
        if stype == 2 and entsize:  # SHT_SYMTAB
            str_offset = sections[link][2]
            for k in range(size // entsize):
                st_name, _info, st_other = struct.unpack_from("<IBB", cubin, offset + k * entsize)
                symbols.append((cstr(str_offset, st_name), st_other))
    kernels = {name: CubinKernel(name) for name, other in symbols if other & _STO_CUDA_ENTRY}
    for (_n, _t, offset, size, _l, _e), sname in zip(sections, names):
        if sname != ".nv.info":
            continue
        pos, end = offset, offset + size
        while pos + 4 <= end:
            fmt, attr, value = struct.unpack_from("<BBH", cubin, pos)
            pos += 4
            if fmt != _EIFMT_SVAL:
                continue
            if attr in (_EIATTR_REGCOUNT, _EIATTR_FRAME_SIZE) and value >= 8:
                sym, figure = struct.unpack_from("<II", cubin, pos)
                kernel = kernels.get(symbols[sym][0]) if sym < len(symbols) else None
                if kernel is not None:
                    if attr == _EIATTR_REGCOUNT:
                        kernel.registers = figure
                    else:
                        kernel.frame_size = figure
            pos += value
    return kernels


# -- reports --------------------------------------------------------------------------------------------
@dataclass
class KernelReport:
    """One kernel of one compile: its figures and what is wrong with it (nothing: it passes)."""
    family: str
    kernel: str
    arch: str
    dtype: str
    registers: Optional[int]
    smem: Optional[int]
    stack: Optional[int]
    spill_stores: Optional[int]
    spill_loads: Optional[int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return (f"{self.family}.cu kernel {self.kernel} ({self.arch}, T={self.dtype}): {self.registers} registers, "
                f"{self.smem} bytes smem, {self.stack} bytes stack frame, {self.spill_stores} bytes spill stores, "
                f"{self.spill_loads} bytes spill loads")


@dataclass
class CompileReport:
    """One compile of one family (or source) for one architecture and dtype."""
    family: str
    arch: str
    dtype: str
    compiler: str
    options: tuple[str, ...]
    log: str
    compiled: bool
    warnings: list[str] = field(default_factory=list)
    kernels: list[KernelReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  #: about the compile as a whole

    @property
    def ok(self) -> bool:
        return not self.problems and all(k.ok for k in self.kernels)

    def failures(self) -> list[str]:
        """One message per problem, naming the family, arch, dtype, compiler and (where it is one) kernel."""
        where = f"{self.family}.cu ({self.compiler}, {self.arch}, T={self.dtype})"
        out = [f"{where}: {p}" for p in self.problems]
        out += [f"{k.describe()} [{self.compiler}]: {'; '.join(k.problems)}" for k in self.kernels if k.problems]
        return out


def _kernel_problems(k: KernelReport, usage: Optional[FunctionUsage], elf: Optional[CubinKernel]) -> None:
    if k.registers is None or k.stack is None:  # neither ptxas's report nor the CUBIN had the figures
        k.problems.append("no resource usage reported for it (neither in the compiler's log nor in the CUBIN)")
    if elf is not None and elf.registers is not None and usage is not None and usage.registers is not None \
            and elf.registers != usage.registers:
        k.problems.append(f"ptxas says {usage.registers} registers but the CUBIN says {elf.registers}")
    if (k.spill_stores or 0) > 0 or (k.spill_loads or 0) > 0:
        k.problems.append(f"register spills: {k.spill_stores} bytes spill stores, {k.spill_loads} bytes spill loads")
    if (k.stack or 0) > 0:
        k.problems.append(f"local memory: {k.stack} bytes stack frame")
    lmem = max((usage.lmem or 0) if usage else 0, (usage.cumulative_stack or 0) if usage else 0)
    if lmem > 0 and not (k.stack or 0) > 0:
        k.problems.append(f"local memory: {lmem} bytes (lmem/cumulative stack)")


def analyse(family: str, arch: str, dtype: str, compiler: str, options: Sequence[str],
            result: nvrtc.CompileResult) -> CompileReport:
    """Turn a compile's log and CUBIN into a :class:`CompileReport`."""
    report = CompileReport(family, arch, dtype, compiler, tuple(options), result.log, result.ok,
                           warnings=compiler_warnings(result.log))
    if not result.ok:
        report.problems.append(f"does not compile ({result.status}): {_error_summary(result.log, options)}")
        return report
    usage = parse_ptxas_log(result.log)
    try:
        elf = cubin_kernels(result.cubin or b"")
    except (ValueError, struct.error, IndexError) as exc:
        elf = {}
        report.problems.append(f"cannot read the CUBIN's kernels: {exc}")
    names = sorted(set(elf) | {n for n, u in usage.items() if u.entry})
    for name in names:
        u, e = usage.get(name), elf.get(name)
        registers = u.registers if u and u.registers is not None else (e.registers if e else None)
        stack = u.stack_frame if u and u.stack_frame is not None else (e.frame_size if e else None)
        k = KernelReport(family, name, arch, dtype, registers=registers, smem=u.smem if u else None, stack=stack,
                         spill_stores=u.spill_stores if u else None, spill_loads=u.spill_loads if u else None)
        _kernel_problems(k, u, e)
        report.kernels.append(k)
    # Non-inlined device functions: their own frames and spills (an entry's frame already includes them).
    for name, u in usage.items():
        if not u.entry and ((u.spill_stores or 0) > 0 or (u.spill_loads or 0) > 0 or (u.stack_frame or 0) > 0):
            report.problems.append(f"device function {name}: {u.stack_frame} bytes stack frame, "
                                   f"{u.spill_stores} bytes spill stores, {u.spill_loads} bytes spill loads")
    if not names:
        report.problems.append("no kernels in the CUBIN")
    # Every warning fails the compile; ptxas's spill/local-memory warnings about a kernel that already
    # fails for them (with its figures) are not repeated.
    failing = {k.kernel for k in report.kernels if k.problems}
    for w in report.warnings:
        m = _PTXAS_KERNEL_WARNING_RE.search(w)
        if not (m and m.group(1) in failing):
            report.problems.append(f"compiler warning: {w}")
    return report


_PTXAS_KERNEL_WARNING_RE = re.compile(r"ptxas warning\s*:\s*(?:Local memory used|Registers are spilled to local "
                                      r"memory) (?:for|in) function '([^']+)'")


def _error_summary(log: str, options: Sequence[str]) -> str:
    """The first few distinct error lines of a failed compile's log, with a hint for a known pitfall."""
    errors: list[str] = []
    for line in log.splitlines():
        if re.search(r"\b(error|fatal)\b", line) and line.strip() not in errors:
            errors.append(line.strip())
    text = "; ".join(errors[:3]) + (f"; ... ({len(errors) - 3} more)" if len(errors) > 3 else "")
    text = text or log.strip() or "(empty log)"
    macros = [o for o in options if o.startswith("-D")]
    if "__nv_nvrtc_builtin_header" in log and macros:
        text += (f" -- hint: the errors are in NVRTC's built-in header, which NVRTC processes after the "
                 f"command-line macros ({' '.join(macros)}): a macro named like an identifier in that header "
                 f"(e.g. T in `template<typename T>`) breaks it. Define such macros in the source instead "
                 f"(a `#define` line before the family's code), or give them a prefixed name")
    return text


# -- compiling ------------------------------------------------------------------------------------------
def _nvrtc_compile(source: str, name: str, arch: str, options: Sequence[str]) -> tuple[tuple[str, ...],
                                                                                      nvrtc.CompileResult]:
    opts = tuple(options) + (f"-arch={arch}",) + nvrtc.PTXAS_REPORT_OPTIONS
    return opts, nvrtc.compile_cubin(source, name, opts)


def find_nvcc() -> Optional[str]:
    """nvcc's path: on PATH, else under ``$CUDA_HOME``/``$CUDA_PATH`` or /usr/local/cuda; ``None`` if absent."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    return None


class NvccNotFound(RuntimeError):
    """nvcc is not installed (it is optional: NVRTC is the reference compiler)."""


def _nvcc_compile(source_path: Path, arch: str, options: Sequence[str],
                  timeout: float = 300) -> tuple[tuple[str, ...], nvrtc.CompileResult]:
    """Compile ``source_path`` to a CUBIN with nvcc and its resource report."""
    nvcc = find_nvcc()
    if nvcc is None:
        raise NvccNotFound("nvcc not found (not on PATH, nor under $CUDA_HOME or /usr/local/cuda)")
    with tempfile.TemporaryDirectory(prefix="gpucnn-nvcc-") as tmp:
        out = Path(tmp) / "out.cubin"
        cmd = (nvcc, "-cubin", f"-arch={arch}", *NVCC_REPORT_OPTIONS, *options, "-o", str(out), str(source_path))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        ok = proc.returncode == 0 and out.is_file()
        cubin = out.read_bytes() if ok else None
    log = proc.stdout + proc.stderr
    return tuple(cmd[1:]), nvrtc.CompileResult(log=log, cubin=cubin, ok=ok,
                                               status="ok" if ok else f"nvcc exit status {proc.returncode}")


def check_source(source: str, name: str, arch: str, dtype: str = "float", options: Optional[Sequence[str]] = None,
                 compiler: str = "nvrtc", defines: Sequence[tuple[str, Any]] = ()) -> CompileReport:
    """Check CUDA C++ ``source`` (``name``: its file name, e.g. ``conv.cu``; may ``#include "common.cuh"``)
    for ``arch``, specialised for ``dtype`` (and any further ``defines``, e.g. a conv tile's knobs) exactly
    as the runtime does it (:func:`gpucnn.kernels.specialise`) and compiled with ``options`` (default: the
    runtime's)."""
    options = tuple(compile_options() if options is None else options)
    text = specialise(source, name, tuple(sorted((("T", dtype),) + tuple(defines))))  # (Device.kernel's order)
    if compiler == "nvrtc":
        opts, result = _nvrtc_compile(text, Path(name).name, arch, options)
    elif compiler == "nvcc":
        with tempfile.TemporaryDirectory(prefix="gpucnn-src-") as tmp:
            path = Path(tmp) / Path(name).name
            path.write_text(text)
            opts, result = _nvcc_compile(path, arch, options)
    else:
        raise ValueError(f"compiler must be one of {', '.join(COMPILERS)}, got {compiler!r}")
    return analyse(Path(name).stem, arch, dtype, compiler, opts, result)


def check_family(family: str, arch: str, dtype: str, compiler: str = "nvrtc",
                 defines: Sequence[tuple[str, Any]] = ()) -> CompileReport:
    """Check ``kernels_cuda/<family>.cu`` for ``arch`` and ``dtype`` (and ``defines``) as the runtime
    compiles it."""
    path = kernel_path(family)
    return check_source(path.read_text(), str(path), arch, dtype, compiler=compiler, defines=defines)


def _check_case(case: tuple) -> CompileReport:
    return check_family(*case)


def _worker() -> None:
    """A child of :func:`check_all`: pickled cases on stdin, pickled reports on stdout."""
    import pickle
    import sys

    cases = pickle.load(sys.stdin.buffer)
    reports = [_check_case(c) for c in cases]
    sys.stdout.buffer.write(pickle.dumps(reports))


def _run_children(chunks: list[list[tuple]]) -> list[list[CompileReport]]:
    """Compile ``chunks[1:]`` in child processes (NVRTC through ctypes in separate processes rather than in
    threads sharing one library) and ``chunks[0]`` here, at the same time."""
    import pickle
    import sys

    root = str(Path(__file__).resolve().parents[1])  # holds gpucnn/ and kernels_cuda/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    children = []
    try:
        for chunk in chunks[1:]:
            err = tempfile.TemporaryFile()
            child = subprocess.Popen([sys.executable, "-c", "from gpucnn.kernel_check import _worker; _worker()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
            children.append((child, err))
            assert child.stdin is not None
            child.stdin.write(pickle.dumps(chunk))
            child.stdin.close()
        results = [[_check_case(c) for c in chunks[0]]]
        for child, err in children:
            out = child.stdout.read()  # type: ignore[union-attr]
            if child.wait() != 0:
                err.seek(0)
                raise RuntimeError(f"a compile-check worker failed (exit status {child.returncode}):\n"
                                   f"{err.read().decode(errors='replace')}")
            results.append(pickle.loads(out))
        return results
    finally:
        for child, err in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()  # type: ignore[union-attr]
            err.close()


def default_jobs() -> int:
    """How many compiles :func:`check_all` runs at once by default: the CPUs, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def check_cases(cases: Sequence[tuple], jobs: int = 1) -> list[CompileReport]:
    """:func:`check_family` for each (family, arch, dtype, compiler[, defines]) of ``cases`` (``defines``:
    a tuple of (name, value) pairs, e.g. a conv tile's knobs), in order. ``jobs`` > 1
    compiles in parallel: nvcc in threads (each a subprocess), NVRTC in ``jobs - 1`` child processes plus
    this one (nothing is cached on disk either way)."""
    cases = [tuple(c) for c in cases]  # type: ignore[misc]
    for compiler in {c[3] for c in cases}:
        if compiler not in COMPILERS:
            raise ValueError(f"compiler must be one of {', '.join(COMPILERS)}, got {compiler!r}")
        if compiler == "nvrtc":
            nvrtc.load()  # NvrtcNotFound here, not in a worker
        elif find_nvcc() is None:
            raise NvccNotFound("nvcc not found (not on PATH, nor under $CUDA_HOME or /usr/local/cuda)")
    jobs = max(1, min(jobs, len(cases)))
    if jobs == 1:
        return [_check_case(c) for c in cases]
    done: dict[tuple, CompileReport] = {}
    nvcc_cases = [c for c in cases if c[3] == "nvcc"]
    if nvcc_cases:
        with ThreadPoolExecutor(jobs) as pool:
            done.update(zip(nvcc_cases, pool.map(_check_case, nvcc_cases)))
    nvrtc_cases = [c for c in cases if c[3] == "nvrtc"]
    if nvrtc_cases:
        chunks = [nvrtc_cases[i::jobs] for i in range(min(jobs, len(nvrtc_cases)))]  # round robin: a share
        for chunk, reports in zip(chunks, _run_children(chunks)):                    # of the slow families each
            done.update(zip(chunk, reports))
    return [done[c] for c in cases]


def check_all(families: Optional[Iterable[str]] = None, archs: Iterable[str] = ARCHS,
              dtypes: Iterable[str] = DTYPES, compiler: str = "nvrtc", jobs: int = 1) -> list[CompileReport]:
    """:func:`check_family` for every family (default: all of ``kernels_cuda``) x dtype x arch, in that
    order (``jobs``: see :func:`check_cases`)."""
    fams = list(_families() if families is None else families)
    archs, dtypes = list(archs), list(dtypes)
    return check_cases([(f, a, d, compiler) for f in fams for d in dtypes for a in archs], jobs=jobs)


# -- the table ------------------------------------------------------------------------------------------
def _fig(v: Any) -> str:
    return "?" if v is None else str(v)


def table_rows(reports: Iterable[CompileReport]) -> list[tuple[str, ...]]:
    """Rows family / kernel / arch / dtype / registers / smem / stack / spills / status."""
    rows = []
    for r in reports:
        for p in r.problems:
            rows.append((r.family, "-", r.arch, r.dtype, "", "", "", "", f"FAIL: {p}"))
        for k in r.kernels:
            spills = f"{_fig(k.spill_stores)}/{_fig(k.spill_loads)}"
            rows.append((k.family, k.kernel, k.arch, k.dtype, _fig(k.registers), _fig(k.smem), _fig(k.stack),
                         spills, "ok" if k.ok else "FAIL: " + "; ".join(k.problems)))
    return rows


TABLE_HEADER = ("family", "kernel", "arch", "dtype", "registers", "smem", "stack", "spills st/ld", "status")


def format_table(reports: Iterable[CompileReport], max_status: int = 100) -> str:
    """A plain-text table of :func:`table_rows` (smem and stack in bytes)."""
    rows = [tuple(r[:-1]) + (r[-1] if len(r[-1]) <= max_status else r[-1][:max_status - 3] + "...",)
            for r in table_rows(reports)]
    widths = [max(len(str(row[i])) for row in [TABLE_HEADER, *rows]) for i in range(len(TABLE_HEADER))]
    numeric = {4, 5, 6, 7}

    def fmt(row: Sequence[str]) -> str:
        cells = [str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    lines = [fmt(TABLE_HEADER), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)
