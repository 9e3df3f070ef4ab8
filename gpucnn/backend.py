"""Devices: where a tensor's array lives and how its ops run.

This module is the one seam between devices. Ops never test a device's name; they ask the device:

- ``device.xp``: the array module (``numpy`` or ``cupy``) for array glue (elementwise math, reductions).
- ``device.uses_kernels``: whether the op runs our CUDA kernels (``forward_gpu``) or its NumPy path
  (``forward_cpu``).  :class:`gpucnn.function.Function` makes that choice in one place.
- ``device.kernel(family, name, **defines)``: a launchable kernel compiled from
  ``kernels_cuda/<family>.cu``.

The three devices:

=======  ===========  ==================================================================
name     arrays       ops
=======  ===========  ==================================================================
cpu      NumPy        NumPy code paths
cuda     CuPy         our CUDA kernels through ``cupy.RawModule``
emu      NumPy        the same CUDA kernels, run on the CPU by :mod:`gpucnn.emu`
=======  ===========  ==================================================================
"""
from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable, Union

import numpy as np

from .errors import ArgumentError, DeviceError

DEVICE_NAMES = ("cpu", "cuda", "emu")


@functools.lru_cache(maxsize=None)
def _cupy() -> ModuleType | None:
    try:
        import cupy  # noqa: F401  (imported lazily: it is slow and optional)
    except Exception:  # ImportError, or a broken CUDA install
        return None
    return cupy


def cuda_available() -> bool:
    """True when CuPy is installed and finds at least one CUDA GPU."""
    cp = _cupy()
    if cp is None:
        return False
    try:
        return bool(cp.cuda.is_available())
    except Exception:
        return False


#: the first CuPy with bfloat16 arrays (through ml_dtypes; cupy#9494)
CUPY_BFLOAT16 = (14, 0)


def _is_bfloat16(dtype: Any) -> bool:
    try:
        return dtype is not None and np.dtype(dtype).name == "bfloat16"
    except TypeError:
        return False


def require_cupy_bfloat16(version: str) -> None:
    """Refuse bfloat16 on ``cuda`` with a CuPy older than 14, which has no bfloat16 arrays."""
    try:
        found = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return  # a development build: let CuPy decide
    if found < CUPY_BFLOAT16:
        raise DeviceError(f"bfloat16 tensors on device 'cuda' need CuPy >= 14 (found CuPy {version}, which has "
                          f"no bfloat16 arrays): pip install -U 'cupy-cuda12x>=14' (or cupy-cuda13x); float16 "
                          f"runs on this CuPy")


class Device:
    """A place for arrays plus the way ops run there (see the module docstring)."""

    def __init__(self, name: str, xp: ModuleType, uses_kernels: bool) -> None:
        self.name = name
        self.xp = xp
        self.uses_kernels = uses_kernels

    # Devices compare equal to their names so users can write ``t.device == "cpu"``.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        # Devices are singletons holding a module: copies and pickles refer back to the registry.
        return get_device, (self.name,)

    def __repr__(self) -> str:
        return f"device({self.name!r})"

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """``array`` as an array of this device (a copy only when it has to move or change dtype)."""
        if self.xp is np:
            cp = _cupy()
            if cp is not None and isinstance(array, cp.ndarray):
                array = array.get()
            return np.asarray(array, dtype=dtype)
        if _is_bfloat16(dtype if dtype is not None else getattr(array, "dtype", None)):
            require_cupy_bfloat16(self.xp.__version__)
        return self.xp.asarray(array, dtype=dtype)

    def synchronize(self) -> None:
        """Wait until the work queued on this device has finished (on the CPU devices it already has)."""
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()

    def kernel(self, family: str, name: str, **defines: Any) -> Callable[..., None]:
        """The kernel ``name`` of ``kernels_cuda/<family>.cu`` compiled with ``-D`` ``defines``.

        Called like a CuPy RawKernel: ``k(grid, block, args, shared_mem=0)``.
        """
        if not self.uses_kernels:
            raise DeviceError(f"device {self.name!r} runs NumPy code and has no CUDA kernels")
        from .kernels import get_kernel  # deferred: kernels import cupy / the emulator

        return get_kernel(self.name, family, name, tuple(sorted(defines.items())))


DeviceLike = Union[str, Device]

_devices: dict[str, Device] = {}


def get_device(spec: DeviceLike = "cpu") -> Device:
    """The :class:`Device` for ``spec``: ``"cpu"``, ``"cuda"``, ``"emu"`` or ``"auto"`` (cuda if a GPU is
    found, else cpu). A ``"cuda:0"``-style index is accepted for device 0 only."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise ArgumentError(f"device must be one of {', '.join(DEVICE_NAMES)} or 'auto', got {spec!r}")
    name = spec.strip().lower()
    if name == "auto":
        name = "cuda" if cuda_available() else "cpu"
    if name == "cuda:0":
        name = "cuda"
    if name in _devices:
        return _devices[name]
    if name == "cpu":
        dev = Device("cpu", np, uses_kernels=False)
    elif name == "emu":
        dev = Device("emu", np, uses_kernels=True)
    elif name == "cuda":
        if not cuda_available():
            why = "CuPy is not installed (pip install 'gpucnn[cuda12]' or 'gpucnn[cuda13]')" \
                if _cupy() is None else "CuPy finds no CUDA GPU"
            raise DeviceError(f"device 'cuda' is not available: {why}; use device 'cpu' or 'emu'")
        dev = Device("cuda", _cupy(), uses_kernels=True)
    else:
        raise ArgumentError(f"device must be one of {', '.join(DEVICE_NAMES)} or 'auto', got {spec!r}")
    _devices[name] = dev
    return dev


def array_device(array: Any) -> Device:
    """The device an array belongs to when nothing else says (numpy -> cpu, cupy -> cuda)."""
    cp = _cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return get_device("cuda")
    return get_device("cpu")
