"""Data-parallel wrappers, like ``torch.nn.parallel``: :class:`DistributedDataParallel`."""
from __future__ import annotations

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
