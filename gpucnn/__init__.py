"""gpucnn: a CNN toolkit with its own CUDA kernels, a NumPy path and a CPU emulator for the kernels.

Quick start::

    import gpucnn
    from gpucnn import nn, functional as F

    x = gpucnn.tensor(images, device="cpu")       # or "cuda", or "emu" (our kernels, emulated on the CPU)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(), ...)
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import functional, models, nn, optim, profiler
from .backend import Device, cuda_available, get_device
from .errors import (ArgumentError, DataError, DeviceError, GpucnnError, KernelError, ModelFormatError,
                     OutOfMemoryError, ShapeError, TrainingError)
from .function import Function, is_grad_enabled, no_grad, set_grad_enabled
from .functions.array import cat
from .gradcheck import gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .tensor import Tensor, float32, float64, int32, int64, ones, tensor, zeros
from .training import Trainer, fit

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "cat", "float32", "float64", "int32", "int64",
    "Device", "get_device", "cuda_available", "Function", "no_grad", "set_grad_enabled", "is_grad_enabled",
    "manual_seed", "get_rng_state", "set_rng_state", "gradcheck", "functional", "nn", "optim", "models", "profiler",
    "save", "load", "Trainer", "fit",
    "GpucnnError", "ShapeError", "ArgumentError", "DeviceError", "DataError", "ModelFormatError",
    "TrainingError", "KernelError", "OutOfMemoryError",
]
