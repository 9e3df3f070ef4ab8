"""Automatic mixed precision, PyTorch's ``torch.amp``: :class:`autocast` (each op in the dtype it is
safe and fast in) and :class:`GradScaler` (loss scaling for float16)."""
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler, GradScalerError

__all__ = ["autocast", "get_autocast_dtype", "is_autocast_enabled", "GradScaler", "GradScalerError"]
