"""Automatic mixed precision, PyTorch's ``torch.amp``: :class:`GradScaler` (loss scaling for float16)."""
from .grad_scaler import GradScaler, GradScalerError

__all__ = ["GradScaler", "GradScalerError"]
