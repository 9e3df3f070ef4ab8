"""Helpers for the emulator tests: the test kernels and a way to compile them."""
from __future__ import annotations

from pathlib import Path

from gpucnn import emu

KERNELS = Path(__file__).parent / "kernels"


def kernel(file: str, name: str, *options: str) -> emu.Function:
    """Kernel `name` of tests/emu/kernels/`file`, compiled with NVRTC-style `options` (memoized by emu)."""
    return emu.RawModule(path=KERNELS / file, options=options).get_function(name)
