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

What is compiled: each family's *variants* (:class:`Variant`: the element type T, a precision and a tile
where the family has them, the ``#define`` lines, and what the SASS must contain), declared in one place,
:func:`variants` (:data:`FAMILY_VARIANTS`; a family not listed there is T = float and double).

SASS: :func:`sass_by_kernel` disassembles a CUBIN with ``cuobjdump -sass`` (:func:`find_tool`: on PATH, in a
CUDA toolkit or in the ``nvidia-cuda-cuobjdump`` / ``nvidia-cuda-nvdisasm`` wheels) and counts each kernel's
instructions; :func:`inspect_sass` records them in the reports and fails a kernel whose SASS lacks what its
variant requires (a tensor-core variant: HMMA of its type, LDSM, LDGSTS). :func:`write_cubins` keeps the
CUBINs, one per compiled variant, under names :attr:`CompileReport.cubin_name` gives.

Entry points: :func:`check_family` / :func:`check_source` / :func:`check_variant` (one compile),
:func:`check_all` (families x variants x archs), :func:`inspect_sass`, :func:`write_cubins`,
:func:`format_table`. The ``gpucnn kernels`` command and ``tests/kernels/`` use them.
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from kernels_cuda import families as _families, kernel_path

from . import nvrtc
from .atomic import atomic_open
from .kernels import compile_options, specialise

#: Architectures checked by default: sm_75 (Turing, the oldest CUDA 13's nvcc takes: SIMT kernels only) and
#: the tensor-core generations the tensor-core kernels target, sm_80 (A100), sm_86 (A10, RTX 30xx), sm_89
#: (L4, RTX 40xx) and sm_90 (H100/H200).
ARCHS: tuple[str, ...] = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
#: Element types of the SIMT families (each compiled for both, ``#define T ...``).
DTYPES: tuple[str, ...] = ("float", "double")
#: The element types a variant may have, by the name used in tables, file names and ``--dtype``: its C type.
C_TYPES: dict[str, str] = {"float": "float", "double": "double", "half": "__half", "bfloat16": "__nv_bfloat16"}
COMPILERS: tuple[str, ...] = ("nvrtc", "nvcc")

#: nvcc's options for the same report NVRTC gives with :data:`gpucnn.nvrtc.PTXAS_REPORT_OPTIONS`.
NVCC_REPORT_OPTIONS: tuple[str, ...] = ("--resource-usage", "-Xptxas", "-warn-spills", "-Xptxas", "-warn-lmem-usage")


# -- what is compiled: each family's variants ----------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One specialisation of a kernel family, as the runtime compiles it.

    ``dtype``: the element type by name (a key of :data:`C_TYPES`); ``define_t``: whether it is written as
    ``#define T <C type>`` (unless ``defines`` sets T itself; False: a family that selects its element type
    with a define of its own, in ``defines``); ``precision``: the arithmetic where a family has a choice (``"tf32"``:
    float32 operands rounded to TF32 on the tensor cores), else ``None``; ``tile``: the tile's name where a
    family has tiles (e.g. ``"64x64x16/8x4"``), else ``None``; ``defines``: the further ``#define`` lines
    (tile knobs, switches). ``sass``: regular expressions of which each must match (``re.fullmatch``) at
    least one instruction mnemonic (``HMMA.16816.F32.BF16``) in every kernel whose name ``re.search``-es
    ``sass_kernels`` -- checked by :func:`inspect_sass`. ``min_sm``: the oldest architecture it builds for
    (80: cp.async, ldmatrix and the m16n8k16 mma.sync need sm_80)."""
    dtype: str = "float"
    define_t: bool = True
    precision: Optional[str] = None
    tile: Optional[str] = None
    defines: tuple[tuple[str, Any], ...] = ()
    sass: tuple[str, ...] = ()
    sass_kernels: str = ""
    min_sm: int = 0

    @property
    def ctype(self) -> str:
        """The C type of T: ``defines``' T if it sets one, else ``dtype``'s (a name not in :data:`C_TYPES` is
        taken as a C type itself)."""
        return str(dict(self.defines).get("T", C_TYPES.get(self.dtype, self.dtype)))

    def all_defines(self) -> tuple[tuple[str, Any], ...]:
        """Every ``#define`` of this variant (T with ``define_t``), in ``Device.kernel``'s order (by name)."""
        return tuple(sorted((({"T": self.ctype} if self.define_t else {}) | dict(self.defines)).items()))

    @property
    def label(self) -> str:
        """The variant in file names: ``float``, ``float-tf32``, ``float-64x64x16_8x4``."""
        return "-".join([self.dtype] + [p for p in (self.precision, self.tile) if p]).replace("/", "_")

    def describe(self) -> str:
        """The variant in messages: ``T=float``, ``T=double, tile 32x64x16/4x4``, ``half`` (no T define),
        ``float, tf32``."""
        return ", ".join([f"T={self.ctype}" if self.define_t or "T" in dict(self.defines) else self.dtype] + ([self.precision] if self.precision else [])
                         + ([f"tile {self.tile}"] if self.tile else []))

    def builds_for(self, arch: str) -> bool:
        """Whether this variant is compiled for ``arch`` (``sm_XX``)."""
        m = re.match(r"sm_(\d+)", arch)
        return m is None or int(m.group(1)) >= self.min_sm


def _conv_variants(all_tiles: bool) -> list[Variant]:
    """conv.cu (SIMT): float and double with the default tile, or with every tile the autotuner may pick."""
    from .functions import _conv_tiles  # (imports nothing heavy; deferred like the other families' sources)

    tiles = _conv_tiles.CANDIDATES if all_tiles else (_conv_tiles.DEFAULT,)
    return [Variant(d, tile=str(t), defines=tuple(t.defines.items())) for d in DTYPES for t in tiles]


#: The tensor-core mma.sync of each element type as it appears in the SASS (sm_80 ... sm_90, NVRTC 12.9 and
#: nvcc 13.0; tests/kernels/sources/tc_probe.cu): m16n8k8 TF32 is ``HMMA.1688.F32.TF32`` (``1684`` would be
#: m16n8k4), m16n8k16 f16 ``HMMA.16816.F32``, bf16 ``HMMA.16816.F32.BF16`` (f32 accumulators all).
TC_HMMA: dict[str, str] = {"float": r"HMMA\.1688\.F32\.TF32", "half": r"HMMA\.16816\.F32",
                           "bfloat16": r"HMMA\.16816\.F32\.BF16"}
#: ldmatrix and cp.async in SASS.
LDSM, LDGSTS = r"LDSM(\..+)?", r"LDGSTS(\..+)?"
#: The kernels of a tensor-core family that must show them: its three implicit GEMMs.
TC_GEMM_KERNELS = r"(forward|backward_data|backward_filter)"


def tensor_core_variant(dtype: str, **fields: Any) -> Variant:
    """A tensor-core GEMM variant of ``dtype`` (float: TF32), sm_80+: its GEMM kernels must show the HMMA of
    that type and LDGSTS (cp.async: every operand of the TF32 kernels; the contiguous operands -- weights,
    gy, a pointwise conv's x -- of the 16-bit ones) and -- 16-bit types, whose fragments come from
    ldmatrix -- LDSM. (conv_tc stages 16-bit im2col gathers through registers: cp.async moves at least 4
    bytes, two neighbouring K elements, which such a gather does not have.)"""
    sass = (TC_HMMA[dtype],) + ((LDGSTS,) if dtype == "float" else (LDSM, LDGSTS))
    base = dict(precision="tf32" if dtype == "float" else None, sass=sass, sass_kernels=TC_GEMM_KERNELS, min_sm=80)
    return Variant(dtype, **(base | fields))


#: conv_tc's element kinds (the keys of ``gpucnn.functions._conv_tc.ELEM``) by dtype name.
TC_KINDS: dict[str, str] = {"tf32": "float", "f16": "half", "bf16": "bfloat16"}


def _conv_tc_variants(all_tiles: bool) -> list[Variant]:
    """conv_tc.cu (tensor cores), as ``gpucnn.functions._conv_tc`` launches it: one variant per element kind
    of its ``ELEM`` (``#define CONV_TC_ELEM <value>``; no T), with the source's tile. Should that module
    come to compile more (tiles, stages), it declares them as ``COMPILE_VARIANTS``: :class:`Variant`
    objects or dicts of their fields completed by :func:`tensor_core_variant`, or a function of
    ``all_tiles`` giving them."""
    from .functions import _conv_tc

    declared = getattr(_conv_tc, "COMPILE_VARIANTS", None)
    if declared is None:
        return [tensor_core_variant(TC_KINDS[kind], define_t=False, defines=(("CONV_TC_ELEM", value),))
                for kind, value in _conv_tc.ELEM.items()]
    if callable(declared):
        declared = declared(all_tiles)
    out = []
    for v in declared:
        if not isinstance(v, Variant):
            v = dict(v)
            v["defines"] = tuple(dict(v.get("defines", ())).items())
            v = tensor_core_variant(**v)
        out.append(v)
    return out


def _element_variants(all_tiles: bool) -> list[Variant]:
    """The element-wise families that also take 16-bit tensors (pooling, batch norm), as
    ``gpucnn.functions._kernel_types`` specialises them: T = float, double, and the 16-bit float types as
    bit patterns (``T=gpucnn_u16`` with ``GPUCNN_F16`` / ``GPUCNN_BF16``)."""
    from .functions import _kernel_types

    names = {"float32": "float", "float64": "double", "float16": "half", "bfloat16": "bfloat16"}
    return [Variant(names[dt.name], define_t=False, defines=tuple(defines.items()))
            for dt, defines in _kernel_types._DEFINES.items()]


#: Families compiled as more than T = float and double, by name: a function of ``all_tiles`` (False: the
#: variants the runtime uses by default; True: also every tile its autotuner may pick) giving the variants.
FAMILY_VARIANTS: dict[str, Callable[[bool], list[Variant]]] = {
    "conv": _conv_variants,
    "conv_tc": _conv_tc_variants,
    "pooling": _element_variants,
    "batch_norm": _element_variants,
}


def variants(family: str, all_tiles: bool = False) -> list[Variant]:
    """The variants ``kernels_cuda/<family>.cu`` is compiled in (:data:`FAMILY_VARIANTS`, else T = each of
    :data:`DTYPES`)."""
    make = FAMILY_VARIANTS.get(family)
    return list(make(all_tiles)) if make else [Variant(d) for d in DTYPES]


def missing_families(known: Iterable[str]) -> list[str]:
    """Families with declared variants whose source is not in ``known`` (e.g. conv_tc before its .cu lands)."""
    known = set(known)
    return [f for f in FAMILY_VARIANTS if f not in known]


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
    variant: Optional[Variant] = None  #: None: ``Variant(dtype)``
    sass: Optional[Counter] = None     #: instruction mnemonic -> count, once :func:`inspect_sass` has run

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        spec = (self.variant or Variant(self.dtype)).describe()
        return (f"{self.family}.cu kernel {self.kernel} ({self.arch}, {spec}): {self.registers} registers, "
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
    variant: Optional[Variant] = None  #: what was compiled (None: ``Variant(dtype)``)
    cubin: Optional[bytes] = field(default=None, repr=False)  #: the compiled CUBIN (None: it did not compile)

    @property
    def ok(self) -> bool:
        return not self.problems and all(k.ok for k in self.kernels)

    @property
    def cubin_name(self) -> str:
        """The CUBIN's file name: family, variant (dtype, precision, tile) and arch, e.g.
        ``conv-float-64x64x16_8x4-sm_80.cubin``, ``conv_tc-bfloat16-sm_90.cubin``."""
        return f"{self.family}-{(self.variant or Variant(self.dtype)).label}-{self.arch}.cubin"

    def failures(self) -> list[str]:
        """One message per problem, naming the family, arch, variant, compiler and (where it is one) kernel."""
        where = f"{self.family}.cu ({self.compiler}, {self.arch}, {(self.variant or Variant(self.dtype)).describe()})"
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
            result: nvrtc.CompileResult, variant: Optional[Variant] = None) -> CompileReport:
    """Turn a compile's log and CUBIN into a :class:`CompileReport` (of ``variant``, default ``Variant(dtype)``)."""
    report = CompileReport(family, arch, dtype, compiler, tuple(options), result.log, result.ok,
                           warnings=compiler_warnings(result.log), variant=variant, cubin=result.cubin)
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
                         spill_stores=u.spill_stores if u else None, spill_loads=u.spill_loads if u else None,
                         variant=variant)
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


#: Where a CUDA toolkit is looked for after ``$CUDA_HOME`` and ``$CUDA_PATH``.
CUDA_DEFAULT_ROOT = "/usr/local/cuda"


def _wheel_bin_dirs() -> list[Path]:
    """The ``bin`` folders of the ``nvidia`` namespace package's wheels (``nvidia/cu13/bin`` of the CUDA 13
    wheels, ``nvidia/cuda_cuobjdump/bin`` of the CUDA 12 ones)."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    return [Path(p) for root in roots for p in sorted(glob.glob(os.path.join(root, "*", "bin")))]


def find_tool(name: str) -> Optional[str]:
    """The path of a CUDA tool (``nvcc``, ``cuobjdump``, ``nvdisasm``): on PATH, else under
    ``$CUDA_HOME``/``$CUDA_PATH`` or /usr/local/cuda, else in a wheel of the ``nvidia`` namespace package
    (``pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm``); ``None`` if absent."""
    found = shutil.which(name)
    if found:
        return found
    exe = name + (".exe" if sys.platform == "win32" else "")
    roots = [Path(r) / "bin" for r in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), CUDA_DEFAULT_ROOT) if r]
    for d in roots + _wheel_bin_dirs():
        if (d / exe).is_file():
            return str(d / exe)
    return None


def find_nvcc() -> Optional[str]:
    """nvcc's path (:func:`find_tool`); ``None`` if absent."""
    return find_tool("nvcc")


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
                 compiler: str = "nvrtc", defines: Sequence[tuple[str, Any]] = (),
                 variant: Optional[Variant] = None) -> CompileReport:
    """Check CUDA C++ ``source`` (``name``: its file name, e.g. ``conv.cu``; may ``#include "common.cuh"``)
    for ``arch``, specialised for ``dtype`` (and any further ``defines``, e.g. a conv tile's knobs) -- or
    as ``variant`` -- exactly as the runtime does it (:func:`gpucnn.kernels.specialise`) and compiled with
    ``options`` (default: the runtime's)."""
    options = tuple(compile_options() if options is None else options)
    variant = variant or Variant(dtype, defines=tuple(defines))
    text = specialise(source, name, variant.all_defines())
    if compiler == "nvrtc":
        opts, result = _nvrtc_compile(text, Path(name).name, arch, options)
    elif compiler == "nvcc":
        with tempfile.TemporaryDirectory(prefix="gpucnn-src-") as tmp:
            path = Path(tmp) / Path(name).name
            path.write_text(text)
            opts, result = _nvcc_compile(path, arch, options)
    else:
        raise ValueError(f"compiler must be one of {', '.join(COMPILERS)}, got {compiler!r}")
    return analyse(Path(name).stem, arch, variant.dtype, compiler, opts, result, variant=variant)


def check_variant(family: str, arch: str, variant: Variant, compiler: str = "nvrtc") -> CompileReport:
    """Check ``kernels_cuda/<family>.cu`` for ``arch`` as ``variant``, as the runtime compiles it."""
    path = kernel_path(family)
    return check_source(path.read_text(), str(path), arch, compiler=compiler, variant=variant)


def check_family(family: str, arch: str, dtype: str, compiler: str = "nvrtc",
                 defines: Sequence[tuple[str, Any]] = ()) -> CompileReport:
    """Check ``kernels_cuda/<family>.cu`` for ``arch`` and ``dtype`` (and ``defines``) as the runtime
    compiles it."""
    return check_variant(family, arch, Variant(dtype, defines=tuple(defines)), compiler)


def _case(case: Sequence) -> tuple[str, str, Variant, str]:
    """A case of :func:`check_cases` as (family, arch, Variant, compiler)."""
    family, arch, what, compiler, *rest = case
    return family, arch, what if isinstance(what, Variant) else Variant(what, defines=tuple(rest[0] if rest else ())), \
        compiler


def _check_case(case: tuple) -> CompileReport:
    return check_variant(*_case(case))


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
    """A :class:`CompileReport` for each (family, arch, variant, compiler) of ``cases`` -- ``variant`` a
    :class:`Variant`, or a dtype followed by ``defines`` (a tuple of (name, value) pairs, e.g. a conv tile's
    knobs) as (family, arch, dtype, compiler[, defines]) --, in order. ``jobs`` > 1
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


def cases_for(families: Iterable[str], archs: Iterable[str] = ARCHS, dtypes: Optional[Iterable[str]] = None,
              compiler: str = "nvrtc", all_tiles: bool = False) -> list[tuple[str, str, Variant, str]]:
    """The (family, arch, variant, compiler) cases of every family x variant (:func:`variants`; of
    ``dtypes`` only, where given) x arch the variant builds for, in that order."""
    archs = list(archs)
    wanted = None if dtypes is None else set(dtypes)
    return [(f, a, v, compiler) for f in families for v in variants(f, all_tiles)
            if wanted is None or v.dtype in wanted for a in archs if v.builds_for(a)]


def check_all(families: Optional[Iterable[str]] = None, archs: Iterable[str] = ARCHS,
              dtypes: Optional[Iterable[str]] = None, compiler: str = "nvrtc", jobs: int = 1,
              all_tiles: bool = False) -> list[CompileReport]:
    """:func:`check_variant` for every family (default: all of ``kernels_cuda``) x variant x arch
    (:func:`cases_for`; ``jobs``: see :func:`check_cases`)."""
    fams = list(_families() if families is None else families)
    return check_cases(cases_for(fams, archs, dtypes, compiler, all_tiles), jobs=jobs)


# -- SASS -----------------------------------------------------------------------------------------------
class SassToolsNotFound(RuntimeError):
    """cuobjdump (or the nvdisasm it runs) is not installed."""


def sass_tools_missing() -> Optional[str]:
    """Why SASS cannot be read here (which tool is missing and how to get it), or ``None`` when it can."""
    missing = [t for t in ("cuobjdump", "nvdisasm") if find_tool(t) is None]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not found (cuobjdump -sass runs nvdisasm): pip install "
            f"{' '.join('nvidia-cuda-' + t for t in missing)} (in the test extra), or put a CUDA toolkit's bin on PATH")


def sass_text(cubin: bytes, timeout: float = 120) -> str:
    """``cuobjdump -sass`` of a CUBIN. Raises :class:`SassToolsNotFound` when the tools are missing and
    ``RuntimeError`` (with cuobjdump's message) when it fails."""
    reason = sass_tools_missing()
    if reason:
        raise SassToolsNotFound(reason)
    cuobjdump, nvdisasm = find_tool("cuobjdump"), find_tool("nvdisasm")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(nvdisasm).parent), os.environ.get("PATH", "")]))
    with tempfile.TemporaryDirectory(prefix="gpucnn-sass-") as tmp:
        path = Path(tmp) / "k.cubin"
        path.write_bytes(cubin)
        proc = subprocess.run([cuobjdump, "-sass", str(path)], capture_output=True, text=True, env=env,
                              timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"cuobjdump -sass failed (exit status {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


_SASS_FUNCTION_RE = re.compile(r"^\s*Function\s*:\s*(\S+)")
# "/*0110*/   @!P0 LDGSTS.E.BYPASS.128 [R9], [R4.64] ;": an address, an optional guard predicate, the mnemonic.
_SASS_INSTRUCTION_RE = re.compile(r"^\s*/\*[0-9a-fA-F]+\*/\s+(?:@!?U?P(?:T|\d+)\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Za-z0-9_]+)*)")


def parse_sass(text: str) -> dict[str, Counter]:
    """``cuobjdump -sass``'s listing -> instruction mnemonic (``HMMA.16816.F32``) -> count, per kernel."""
    out: dict[str, Counter] = {}
    current: Optional[Counter] = None
    for line in text.splitlines():
        m = _SASS_FUNCTION_RE.match(line)
        if m:
            current = out.setdefault(m.group(1), Counter())
            continue
        m = _SASS_INSTRUCTION_RE.match(line)
        if m and current is not None:
            current[m.group(1)] += 1
    return out


def sass_by_kernel(cubin: bytes) -> dict[str, Counter]:
    """Each kernel's instruction mnemonics in a CUBIN, counted (:func:`sass_text`, :func:`parse_sass`)."""
    return parse_sass(sass_text(cubin))


def sass_opcodes(cubin: bytes, kernel: Optional[str] = None) -> Counter:
    """The instruction mnemonics of one kernel of a CUBIN (default: all its kernels together), counted."""
    by_kernel = sass_by_kernel(cubin)
    if kernel is not None:
        if kernel not in by_kernel:
            raise KeyError(f"no kernel {kernel!r} in the CUBIN's SASS (has: {', '.join(sorted(by_kernel))})")
        return by_kernel[kernel]
    return sum(by_kernel.values(), Counter())


def count_base(opcodes: Counter, base: str) -> int:
    """How many instructions of ``opcodes`` have the base mnemonic ``base`` (``HMMA`` counts
    ``HMMA.16816.F32`` and ``HMMA.1688.F32.TF32``, not ``HFMA2.MMA``)."""
    return sum(n for op, n in opcodes.items() if op.split(".")[0] == base)


#: The instructions the table counts (``--sass``): tensor-core mma.sync, ldmatrix, cp.async.
SASS_COLUMNS: tuple[str, ...] = ("HMMA", "LDSM", "LDGSTS")


def _pattern_name(pattern: str) -> str:
    """A :attr:`Variant.sass` pattern as a reader would write it: ``LDSM(\\..+)?`` -> ``LDSM``."""
    return pattern.replace(r"(\..+)?", "").replace("\\", "")


def sass_problems(kernel: str, opcodes: Counter, variant: Variant) -> list[str]:
    """What ``variant`` requires of the SASS of ``kernel`` (:attr:`Variant.sass`) and ``opcodes`` lacks."""
    if not variant.sass or not re.search(variant.sass_kernels, kernel):
        return []
    missing = [p for p in variant.sass if not any(re.fullmatch(p, op) for op in opcodes)]
    if not missing:
        return []
    have = ", ".join(f"{op} x{n}" for op, n in sorted(opcodes.items()) if op.split(".")[0] in SASS_COLUMNS)
    return [f"SASS lacks {', '.join(map(_pattern_name, missing))} (required of {variant.describe()}; it has "
            f"{have or 'no ' + '/'.join(SASS_COLUMNS)})"]


def inspect_sass(reports: Iterable[CompileReport], jobs: int = 1) -> None:
    """Disassemble every compiled report's CUBIN and record each kernel's instruction counts
    (:attr:`KernelReport.sass`); a kernel whose SASS lacks what its variant requires fails (a problem
    naming what is missing and what it has), as does a required kernel pattern that no kernel matches.
    Raises :class:`SassToolsNotFound` when cuobjdump/nvdisasm are missing."""
    reason = sass_tools_missing()
    if reason:
        raise SassToolsNotFound(reason)
    todo = [r for r in reports if r.cubin]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        listings = list(pool.map(lambda r: sass_by_kernel(r.cubin), todo))
    for report, by_kernel in zip(todo, listings):
        variant = report.variant or Variant(report.dtype)
        for k in report.kernels:
            k.sass = by_kernel.get(k.kernel, Counter())
            k.problems += sass_problems(k.kernel, k.sass, variant)
        if variant.sass and not any(re.search(variant.sass_kernels, k.kernel) for k in report.kernels):
            report.problems.append(f"no kernel name matches {variant.sass_kernels!r}, the kernels whose SASS "
                                   f"must have {', '.join(map(_pattern_name, variant.sass))} ({variant.describe()})")


def write_cubins(reports: Iterable[CompileReport], directory: "os.PathLike[str] | str") -> list[Path]:
    """Write each compiled report's CUBIN to ``directory`` (created if need be) as its
    :attr:`CompileReport.cubin_name`, atomically; returns the paths. Two reports of one name (the same
    variant compiled twice, e.g. by both compilers) are an error: neither would be what its name says."""
    todo = [r for r in reports if r.cubin]
    names = Counter(r.cubin_name for r in todo)
    twice = sorted(n for n, c in names.items() if c > 1)
    if twice:
        raise ValueError(f"write_cubins: {', '.join(twice)} compiled more than once (write each compiler's "
                         f"cubins to a folder of its own)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in todo:
        path = directory / r.cubin_name
        with atomic_open(path, "wb") as f:
            f.write(r.cubin)
        paths.append(path)
    return paths


# -- the table ------------------------------------------------------------------------------------------
def _fig(v: Any) -> str:
    return "?" if v is None else str(v)


def _variant_cell(r: "CompileReport | KernelReport") -> str:
    v = r.variant or Variant(r.dtype)
    return "/".join(x for x in (v.precision, v.tile) if x) or "-"


def table_rows(reports: Iterable[CompileReport], sass: Optional[bool] = None) -> list[tuple[str, ...]]:
    """Rows family / kernel / arch / dtype / registers / smem / stack / spills / variant (precision, tile;
    ``-``: none) [/ HMMA / LDSM / LDGSTS: instruction counts, with ``sass``] / status. ``sass=None``: the
    SASS columns when any kernel's SASS was inspected."""
    reports = list(reports)
    if sass is None:
        sass = any(k.sass is not None for r in reports for k in r.kernels)
    rows = []
    for r in reports:
        blank = ("",) * (len(SASS_COLUMNS) if sass else 0)
        for p in r.problems:
            rows.append((r.family, "-", r.arch, r.dtype, "", "", "", "", _variant_cell(r)) + blank + (f"FAIL: {p}",))
        for k in r.kernels:
            spills = f"{_fig(k.spill_stores)}/{_fig(k.spill_loads)}"
            counts = tuple("?" if k.sass is None else str(count_base(k.sass, b)) for b in SASS_COLUMNS) if sass else ()
            rows.append((k.family, k.kernel, k.arch, k.dtype, _fig(k.registers), _fig(k.smem), _fig(k.stack),
                         spills, _variant_cell(k)) + counts + ("ok" if k.ok else "FAIL: " + "; ".join(k.problems),))
    return rows


TABLE_HEADER = ("family", "kernel", "arch", "dtype", "registers", "smem", "stack", "spills st/ld", "variant", "status")


def format_table(reports: Iterable[CompileReport], max_status: int = 100, sass: Optional[bool] = None) -> str:
    """A plain-text table of :func:`table_rows` (smem and stack in bytes)."""
    reports = list(reports)
    if sass is None:
        sass = any(k.sass is not None for r in reports for k in r.kernels)
    header = TABLE_HEADER[:-1] + (SASS_COLUMNS if sass else ()) + TABLE_HEADER[-1:]
    rows = [tuple(r[:-1]) + (r[-1] if len(r[-1]) <= max_status else r[-1][:max_status - 3] + "...",)
            for r in table_rows(reports, sass)]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    numeric = {4, 5, 6, 7} | (set(range(9, 9 + len(SASS_COLUMNS))) if sass else set())

    def fmt(row: Sequence[str]) -> str:
        cells = [str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)
