"""``F.one_hot``: class indices to one-hot int64 rows, as ``torch.nn.functional.one_hot``."""
from __future__ import annotations

from ..errors import ArgumentError, DtypeError
from ..tensor import Tensor
from ._checks import require_tensor
from .creation import as_int


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """An int64 tensor of shape ``tensor.shape + (num_classes,)`` with a 1 at each index's class.

    ``num_classes=-1`` takes the largest index + 1 (an error for an empty ``tensor``). Indices must lie in
    [0, num_classes). PyTorch takes int64 indices only; any integer dtype is accepted here (uint8 labels).
    No gradient flows through the result (it is an integer tensor).
    """
    op = "one_hot"
    require_tensor(op, "tensor", tensor)
    if tensor.dtype.kind not in "iu":
        raise DtypeError(f"{op}: tensor must hold integer class indices, got dtype {tensor.dtype} "
                         f"(convert with .long())")
    num_classes = as_int(op, "num_classes", num_classes)
    if num_classes < -1:
        raise ArgumentError(f"{op}: num_classes must be -1 (the largest index + 1) or a count >= 0, got {num_classes}")
    xp, x = tensor.device.xp, tensor.data
    if x.size:
        low, high = int(x.min()), int(x.max())
        if low < 0:
            raise ArgumentError(f"{op}: class values must be non-negative, got {low}")
        if num_classes == -1:
            num_classes = high + 1
        elif high >= num_classes:
            raise ArgumentError(f"{op}: class values must be smaller than num_classes={num_classes}, got {high}")
    elif num_classes == -1:
        raise ArgumentError(f"{op}: cannot infer the number of classes from an empty tensor (shape {tensor.shape}); "
                            f"pass num_classes")
    out = x[..., None] == xp.arange(num_classes)
    return Tensor(out.astype(xp.int64), tensor.device)
