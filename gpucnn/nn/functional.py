"""``gpucnn.nn.functional``: the same module as :mod:`gpucnn.functional` (so PyTorch habits work:
``import gpucnn.nn.functional as F``), plus ``upsample_nearest2d``.

Everything :mod:`gpucnn.functional` exports is re-exported here, including names added to it later.
"""
from __future__ import annotations

from typing import Any

from .. import functional as _functional
from ..functional import *  # noqa: F401,F403
from .upsample import upsample_nearest2d  # noqa: F401

__all__ = list(dict.fromkeys(list(getattr(_functional, "__all__", [])) + ["upsample_nearest2d"]))


def __getattr__(name: str) -> Any:
    # Anything gpucnn.functional has (a name missing from its __all__) is reachable here too.
    try:
        return getattr(_functional, name)
    except AttributeError:
        raise AttributeError(f"module 'gpucnn.nn.functional' has no attribute {name!r}") from None


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_functional)))
