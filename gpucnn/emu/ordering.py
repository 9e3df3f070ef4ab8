"""The order in which the emulator starts and resumes the threads (and blocks) of a launch.

A correct kernel gives the same result in every order; a missing ``__syncthreads()`` or a race usually
does not. ``forward`` runs thread 0 first, ``reverse`` the last thread first, ``shuffled`` draws a fresh
seeded permutation of a block's threads at every resume round (and a seeded permutation of the blocks).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from gpucnn.errors import ArgumentError

ORDERS = ("forward", "reverse", "shuffled")
ENV_VAR = "GPUCNN_EMU_THREAD_ORDER"

_explicit: tuple[str, int] | None = None


def _check(order: str, seed: int) -> tuple[str, int]:
    if order not in ORDERS:
        raise ArgumentError(f"thread order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"thread order seed must be a non-negative int, got {seed!r}")
    return order, seed


def set_thread_order(order: str | None, seed: int = 0) -> None:
    """Select the order for later launches: ``"forward"``, ``"reverse"`` or ``"shuffled"`` (with ``seed``).

    ``None`` forgets the explicit choice: the environment variable ``GPUCNN_EMU_THREAD_ORDER``
    (``forward``, ``reverse``, ``shuffled`` or ``shuffled:<seed>``) applies again, else ``forward``.
    """
    global _explicit
    _explicit = None if order is None else _check(order, seed)


def get_thread_order() -> tuple[str, int]:
    """Return the ``(order, seed)`` the next launch will use."""
    if _explicit is not None:
        return _explicit
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return ("forward", 0)
    name, _, seed = value.partition(":")
    try:
        return _check(name.strip(), int(seed) if seed.strip() else 0)
    except ValueError:
        raise ArgumentError(f"{ENV_VAR}={value!r}: expected one of {', '.join(ORDERS)}, "
                       "optionally followed by :<seed> (e.g. shuffled:7)") from None


@contextlib.contextmanager
def thread_order(order: str, seed: int = 0) -> Iterator[None]:
    """Context manager: launches inside the ``with`` block use ``order`` (and ``seed``)."""
    global _explicit
    previous = _explicit
    _explicit = _check(order, seed)
    try:
        yield
    finally:
        _explicit = previous
