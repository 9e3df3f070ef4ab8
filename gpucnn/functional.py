"""The functional API, mirroring ``torch.nn.functional``: stateless ops on tensors."""
from __future__ import annotations

from .functions.activation import dropout, log_softmax, relu, softmax
from .functions.array import cat, flatten
from .functions.linear import linear
from .functions.loss import cross_entropy

__all__ = ["relu", "softmax", "log_softmax", "dropout", "linear", "flatten", "cat", "cross_entropy"]
