"""The random number generators behind initialisation and dropout, seedable and checkpointable.

Parameter initialisation always draws on the host generator (then moves to the device), so a seed gives
the same initial weights on every device. Dropout draws on the host generator on ``cpu``/``emu`` and on
CuPy's generator on ``cuda``.

:func:`get_rng_state` holds the host generator only. CuPy's generator (cuRAND's host API behind
``cupy.random``) has no readable state: CuPy offers no ``get_state``/``set_state`` and its ``RandomState``
cannot be serialised, so a checkpoint cannot hold it. :func:`manual_seed` seeds it; on ``cuda`` a resumed
run therefore draws other dropout masks than an uninterrupted one (see ``docs/reliability.md``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ArgumentError

_host = np.random.Generator(np.random.PCG64(0))
_cuda_seed = 0


def manual_seed(seed: int) -> None:
    """Seed every generator gpucnn uses (like ``torch.manual_seed``: any integer in the int64 or uint64
    range; negative seeds are taken modulo 2**64)."""
    global _host, _cuda_seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not -2**63 <= seed < 2**64:
        raise ArgumentError(f"manual_seed: seed must be an integer in [-2**63, 2**64), got {seed!r}")
    _host = np.random.Generator(np.random.PCG64(int(seed) % 2**64))
    _cuda_seed = int(seed) % 2**32  # CuPy's seeds are 32-bit
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
    """Restore a state from :func:`get_rng_state`; :class:`~gpucnn.errors.ArgumentError` (and nothing
    changes) if ``state`` is not one."""

    host = state.get("host") if isinstance(state, dict) else None
    if not isinstance(host, dict):
        raise ArgumentError(f"set_rng_state: expected a state from gpucnn.get_rng_state() (a dict with a 'host' "
                            f"generator state), got {type(state).__name__}")
    probe = np.random.PCG64()
    try:
        probe.state = host  # validate first, so a bad state leaves the generator as it was
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as exc:
        raise ArgumentError(f"set_rng_state: the 'host' state is not a PCG64 generator state ({exc})") from None
    _host.bit_generator.state = host
