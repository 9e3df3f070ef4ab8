"""The random number generators behind initialisation and dropout, seedable and checkpointable.

Parameter initialisation always draws on the host generator (then moves to the device), so a seed gives
the same initial weights on every device. Dropout draws on the host generator on ``cpu``/``emu`` and on
CuPy's generator on ``cuda``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_host = np.random.Generator(np.random.PCG64(0))
_cuda_seed = 0


def manual_seed(seed: int) -> None:
    """Seed every generator gpucnn uses (like ``torch.manual_seed``)."""
    global _host, _cuda_seed
    _host = np.random.Generator(np.random.PCG64(int(seed)))
    _cuda_seed = int(seed)
    from .backend import _cupy, cuda_available
    if cuda_available():
        _cupy().random.seed(_cuda_seed)


def host_generator() -> np.random.Generator:
    """The host generator (initialisation; dropout on cpu/emu)."""
    return _host


def get_rng_state() -> dict[str, Any]:
    """The host generator's state as JSON-serialisable data (for checkpoints)."""
    return {"host": _host.bit_generator.state}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state from :func:`get_rng_state`."""
    _host.bit_generator.state = state["host"]
