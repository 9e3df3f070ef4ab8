"""Prebuilt kernel binaries, so that a GPU run does not spend its first minutes in NVRTC.

On ``cuda`` every kernel family is compiled at first use (NVRTC through CuPy: ~25 s for a conv module, and
the conv autotuner builds every candidate tile in the first forward). A lent GPU has minutes, not hours, and
starts bare. So the binaries can be built beforehand, on any machine with NVRTC (no GPU needed), and
carried along::

    gpucnn kernels --build-cache .kcache --arch sm_90      # here: every runtime variant, one .cubin each
    GPUCNN_KERNEL_CACHE=.kcache python -m cli.main bench --device cuda     # there

With ``GPUCNN_KERNEL_CACHE`` set, :func:`gpucnn.kernels.get_kernel` loads a module from the cache when a
cubin for exactly its source, options and the device's architecture is there
(:func:`cache_name`: a hash of the specialised source text, the compile options and the arch), and
compiles as usual otherwise: a stale or missing entry costs time, never a wrong binary.

The cache holds what :mod:`gpucnn.kernel_check` compiles (its NVRTC path is the runtime's: the same
source text and options, plus ptxas's report flags, which change no code), for every variant the runtime
may ask for (the conv tiles the autotuner may pick included).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from kernels_cuda import KERNEL_DIR, kernel_path

from .atomic import atomic_open
from .kernels import compile_options, specialise

#: the environment variable naming the cache directory
ENV = "GPUCNN_KERNEL_CACHE"
#: architectures built by default: A100 and H100/H200
DEFAULT_ARCHS: tuple[str, ...] = ("sm_80", "sm_90")


def cache_name(family: str, defines: tuple[tuple[str, Any], ...], arch: str) -> str:
    """The file name of a module's cubin: family, a hash of what is compiled, the arch. The hash covers the
    family's source, every header of kernels_cuda (any may be included), the defines, the options and the
    arch, but not where the checkout lies (the source's #line path and -I differ between machines)."""
    h = hashlib.sha256()
    for text in (kernel_path(family).read_text(), specialise("", "", defines),
                 " ".join(o.replace(str(KERNEL_DIR), "<kernels_cuda>") for o in compile_options()), arch):
        h.update(text.encode() + b"\0")
    for header in sorted(KERNEL_DIR.glob("*.cuh")) + sorted(KERNEL_DIR.glob("*.h")):
        h.update(header.name.encode() + b"\0" + header.read_bytes() + b"\0")
    return f"{family}-{h.hexdigest()[:24]}-{arch}.cubin"


def directory() -> Optional[Path]:
    """The cache directory named by ``GPUCNN_KERNEL_CACHE``, or None."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else None


def lookup(family: str, defines: tuple[tuple[str, Any], ...], arch: str) -> Optional[Path]:
    """The cached cubin of this module for ``arch``, if the cache has it."""
    root = directory()
    if root is None:
        return None
    path = root / cache_name(family, defines, arch)
    return path if path.is_file() else None


def expected_names(archs: Sequence[str] = DEFAULT_ARCHS, families: Optional[Iterable[str]] = None) -> set[str]:
    """The file names :func:`build` writes for ``archs`` and ``families`` (without compiling anything)."""
    from . import kernel_check as kc

    fams = list(kc._families() if families is None else families)
    return {cache_name(f, v.all_defines(), a) for f, a, v, _ in kc.cases_for(fams, archs, all_tiles=True)}


def build(target: "os.PathLike[str] | str", archs: Sequence[str] = DEFAULT_ARCHS,
          families: Optional[Iterable[str]] = None, jobs: int = 1) -> list[Path]:
    """Compile every runtime variant of ``families`` (default: all) for ``archs`` with NVRTC into
    ``target`` (atomically, one cubin per module); returns the paths. A variant that fails to compile is
    an error naming it: a cache must not silently lack what the runtime asks for."""
    from . import kernel_check as kc

    fams = list(kc._families() if families is None else families)
    reports = kc.check_cases(kc.cases_for(fams, archs, compiler="nvrtc", all_tiles=True), jobs=jobs)
    failed = [r for r in reports if not r.compiled or r.cubin is None]
    if failed:
        raise RuntimeError("kernel cache: these variants did not compile: " + "; ".join(
            f"{r.family} {(r.variant or kc.Variant(r.dtype)).describe()} {r.arch}" for r in failed))
    root = Path(target)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in reports:
        variant = r.variant or kc.Variant(r.dtype)
        path = root / cache_name(r.family, variant.all_defines(), r.arch)
        with atomic_open(path, "wb") as f:
            f.write(r.cubin)
        paths.append(path)
    return paths
