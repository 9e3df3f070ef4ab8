"""``gpucnn.nn.functional``: the same module as :mod:`gpucnn.functional` (so PyTorch habits work:
``import gpucnn.nn.functional as F``), plus ``upsample_nearest2d``.

Everything :mod:`gpucnn.functional` exports is re-exported here, including names added to it later.
"""
from __future__ import annotations

from typing import Any

from .. import functional as _functional
from ..functional import *  # noqa: F401,F403
from ..functions import activation as _activation
from ..functions import loss as _loss
from ..functions.conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: F401
from .upsample import upsample_nearest2d  # noqa: F401

__all__ = list(dict.fromkeys(list(getattr(_functional, "__all__", [])) + ["upsample_nearest2d"]
                             + _activation.FUNCTIONALS + _loss.FUNCTIONALS))
globals().update({name: getattr(_activation, name) for name in _activation.FUNCTIONALS})  # elu, gelu, prelu, ...
globals().update({name: getattr(_loss, name) for name in _loss.FUNCTIONALS})  # nll_loss, mse_loss, ...

__all__ += ["conv_transpose1d", "conv_transpose2d"]


def __getattr__(name: str) -> Any:
    # Anything gpucnn.functional has (a name missing from its __all__) is reachable here too.
    try:
        return getattr(_functional, name)
    except AttributeError:
        raise AttributeError(f"module 'gpucnn.nn.functional' has no attribute {name!r}") from None


def __dir__() -> list:
    return sorted(set(globals()) | set(dir(_functional)))
