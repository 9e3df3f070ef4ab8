"""gpucnn: a CNN toolkit with its own CUDA kernels, a NumPy path and a CPU emulator for the kernels.

Quick start::

    import gpucnn
    from gpucnn import nn, functional as F

    x = gpucnn.tensor(images, device="cpu")       # or "cuda", or "emu" (our kernels, emulated on the CPU)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(), ...)
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import amp, distributed, functional, models, nn, optim, profiler, utils
from .backend import Device, cuda_available, get_device
from .errors import (ArgumentError, AutogradError, DataError, DeviceError, DtypeError, GpucnnError, KernelError,
                     ModelFormatError, OutOfMemoryError, ShapeError, TensorIndexError, TrainingError)
from .function import Function, is_grad_enabled, no_grad, set_grad_enabled
from .dtypes import (bfloat16, bool_, can_cast, float16, float32, float64, get_default_dtype, int8, int16, int32, int64,
                     promote_types, result_type, set_default_dtype, uint8)
from .functions.array import cat, stack
from .functions.creation import (arange, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand, randint,
                                 randn, randperm, zeros, zeros_like)
from .functions.einsum import einsum
from .functions.indexing import where
from .ops import *  # noqa: F401,F403  (gpucnn.exp(x), gpucnn.max(x, 1), ...: torch's function spellings)
from .ops import METHODS as _METHODS
from .gradcheck import gradcheck
from .precision import get_float32_matmul_precision, set_float32_matmul_precision
from .random import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .safetensors_io import load_state_dict_from
from .tensor import Tensor, tensor
from .training import Trainer, fit

# PyTorch's dtype spellings: gpucnn.long, gpucnn.half, ... (gpucnn.bool is NumPy's bool dtype)
bool = bool_  # noqa: A001
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "eye", "arange", "linspace", "zeros_like", "ones_like", "full_like",
    "rand", "randn", "randint", "randperm", "from_numpy", "cat", "stack", "where", "einsum",
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64", "half", "float", "double",
    "short", "int", "long", "get_default_dtype", "set_default_dtype", "result_type", "promote_types", "can_cast",
    "Device", "get_device", "cuda_available", "Function", "no_grad", "set_grad_enabled", "is_grad_enabled",
    "manual_seed", "get_rng_state", "set_rng_state", "gradcheck", "functional", "nn", "optim", "models", "profiler", "utils", "distributed",
    "save", "load", "load_state_dict_from", "Trainer", "fit", "set_float32_matmul_precision", "get_float32_matmul_precision",
    "GpucnnError", "ShapeError", "ArgumentError", "DeviceError", "DataError", "ModelFormatError",
    "TrainingError", "KernelError", "OutOfMemoryError", "DtypeError", "TensorIndexError", "AutogradError",
    *_METHODS,
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # gpucnn.onnx on first use: `import gpucnn` must not import the onnx package
    if name == "onnx":
        import importlib
        return importlib.import_module(".onnx", __name__)
    raise AttributeError(f"module 'gpucnn' has no attribute {name!r}")
