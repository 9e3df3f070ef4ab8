"""``gpucnn.utils``: where PyTorch users look for ``torch.utils`` (``gpucnn.utils.data``)."""
from __future__ import annotations

from . import data

__all__ = ["data"]
