"""The CUDA C sources of gpucnn's kernels, one ``<family>.cu`` per op family, shipped as package data.

They are compiled at run time: by NVRTC through ``cupy.RawModule`` on a GPU, and by g++ through
:mod:`gpucnn.emu` on the CPU (see :mod:`gpucnn.kernels`).
"""
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent


def kernel_path(family: str) -> Path:
    """The path of ``<family>.cu``."""
    return KERNEL_DIR / f"{family}.cu"


def families() -> list[str]:
    """The names of all kernel families (the .cu files here)."""
    return sorted(p.stem for p in KERNEL_DIR.glob("*.cu"))
