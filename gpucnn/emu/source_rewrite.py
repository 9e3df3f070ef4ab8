"""Source-to-source rewrites applied to a .cu file before g++ sees it (line numbers are preserved).

* ``extern __shared__ T name[];`` (dynamic shared memory) becomes a reference to the runtime's pointer
  ``__emu_dyn_smem``, which points at ``shared_mem`` poisoned bytes that end at a guard page.
* ``__shared__`` inside an ``extern "C" __global__`` kernel body becomes ``__EMU_SHARED("emu_sh_<kernel>")``
  so each kernel's static shared memory lives in its own linker section (sized for the 48 KiB check and
  poisoned per block). Elsewhere ``__shared__`` keeps shim.h's meaning (a common section).
"""
from __future__ import annotations

import re
from pathlib import Path

_DYN_SHARED = re.compile(r"\bextern\s+(?P<decl>[^;{}\[\]]*?\b__shared__\b[^;{}\[\]]*?)\[\s*\]\s*;")
_ATTRS = re.compile(r"__align__\s*\(\s*\w+\s*\)|alignas\s*\(\s*\w+\s*\)|__attribute__\s*\(\(.*?\)\)|__shared__")
_SHARED = re.compile(r"\b__shared__\b")
_KERNEL_HEADER = re.compile(r"\b__global__\b")
_NAME_BEFORE_PAREN = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_SKIP_IN_HEADER = re.compile(r"__launch_bounds__\s*\([^)]*\)|__attribute__\s*\(\(.*?\)\)|__maxnreg__\s*\([^)]*\)")
_LINKAGE_OR_NAMESPACE = re.compile(r'^\s*(?:extern\s*"\s*"|namespace(?:\s+[\w:]+)?|inline\s+namespace\s+\w+)\s*$')
_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def mask(source: str) -> str:
    """Blank out comments, string/char literal contents and preprocessor lines, keeping every offset.

    The result is only used to find constructs; rewrites are applied to the original text.
    """
    out = list(source)
    n = len(source)
    i = 0
    line_start = True
    while i < n:
        c = source[i]
        if line_start and c == "#" or (line_start and c in " \t" and source[i:].lstrip(" \t").startswith("#")):
            # A directive (with backslash continuations): blank it out entirely.
            j = i
            while j < n:
                if source[j] == "\n" and source[j - 1] != "\\":
                    break
                j += 1
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        if c == "/" and source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
            continue
        if c == "/" and source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = " "
            i = j + 1
            line_start = False
            continue
        if c == "\n":
            line_start = True
        elif c not in " \t\r":
            line_start = False
        i += 1
    return "".join(out)


def _kernel_bodies(masked: str) -> list[tuple[int, int, str]]:
    """Return (start, end, kernel name) of every top-level ``__global__`` function body."""
    bodies = []
    depth_stack: list[bool] = []  # True for a transparent scope (extern "C" { or namespace {)
    decl_start = 0
    i = 0
    n = len(masked)
    while i < n:
        c = masked[i]
        if c == ";" :
            decl_start = i + 1
        elif c == "}":
            if depth_stack:
                depth_stack.pop()
            decl_start = i + 1
        elif c == "{":
            header = masked[decl_start:i]
            if _LINKAGE_OR_NAMESPACE.match(header):
                depth_stack.append(True)
                decl_start = i + 1
            else:
                end = matching_bracket(masked, i)
                end = len(masked) - 1 if end < 0 else end
                if _KERNEL_HEADER.search(header):
                    m = _NAME_BEFORE_PAREN.search(_SKIP_IN_HEADER.sub(" ", header))
                    if m:
                        bodies.append((i, end, m.group(1)))
                i = end
                decl_start = end + 1
        i += 1
    return bodies


def matching_bracket(text: str, open_at: int, pair: str = "{}") -> int:
    """Index of the bracket closing the ``pair[0]`` at ``open_at`` in masked text, or -1."""
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == pair[0]:
            depth += 1
        elif text[j] == pair[1]:
            depth -= 1
            if depth == 0:
                return j
    return -1


def rewrite(source: str) -> str:
    """Apply the shared-memory rewrites described in the module docstring."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _DYN_SHARED.finditer(masked):
        decl = _ATTRS.sub(" ", source[m.start("decl"):m.end("decl")])
        parts = re.match(r"(?s)(.*?)([A-Za-z_]\w*)\s*$", decl)
        if not parts or not parts.group(1).strip():
            continue
        ctype, name = " ".join(parts.group(1).split()), parts.group(2)
        newlines = "\n" * source.count("\n", m.start(), m.end())
        edits.append((m.start(), m.end(),
                      f"static {ctype}* const& {name} = reinterpret_cast<{ctype}* const&>(__emu_dyn_smem);{newlines}"))
        taken.append((m.start(), m.end()))
    for start, end, kernel in _kernel_bodies(masked):
        for m in _SHARED.finditer(masked, start, end):
            if any(a <= m.start() < b for a, b in taken):
                continue
            replacement = f'__EMU_SHARED("emu_sh_{kernel}")'
            s, e = m.start(), m.end()
            # `static __shared__` (legal CUDA) would become `static static`.
            before = re.search(r"\bstatic\s+$", masked[max(0, s - 40):s])
            if before:
                s -= len(before.group(0))
            after = re.match(r"\s+static\b", masked[e:e + 40])
            if after:
                e += len(after.group(0))
            edits.append((s, e, replacement))
    out = source
    for s, e, text in sorted(edits, reverse=True):
        out = out[:s] + text + out[e:]
    return out


def local_includes(source: str, source_dir: str | None, include_dirs: list[str]) -> dict[str, bytes]:
    """Contents of the ``#include "..."`` files reachable from ``source`` (for the cache key)."""
    found: dict[str, bytes] = {}
    todo = [(source, source_dir)]
    while todo:
        text, here = todo.pop()
        for name in _INCLUDE.findall(text):
            for d in ([here] if here else []) + list(include_dirs):
                path = Path(d, name)
                if path.is_file():
                    key = str(path.resolve())
                    if key not in found and len(found) < 256:
                        data = path.read_bytes()
                        found[key] = data
                        todo.append((data.decode("utf-8", "replace"), str(path.parent)))
                    break
    return found
