"""Window arithmetic shared by convolution and pooling: argument tuples, output sizes, "same" padding.

Everything here is plain Python on ints (no arrays), so it is device independent and cheap to call in
validation. Conventions, per spatial dim:

- ``n``: input size, ``k``: kernel (window) size, ``s``: stride, ``d``: dilation;
- the *effective* kernel of a dilated window spans ``(k - 1) * d + 1`` input positions;
- padding is a ``(before, after)`` pair (top/bottom or left/right); symmetric padding ``p`` is ``(p, p)``.

Errors are :class:`gpucnn.errors.ArgumentError` and name the op and the argument, e.g.
``conv2d: stride must be an int >= 1 or a pair of them, got 0``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, Union

from ..errors import ArgumentError

#: the padding modes, in the order of the kernels' mode indices (CONV_PAD_ZEROS, ... in conv.cu, conv_tc.cu)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

PaddingArg = Union[int, str, Sequence[int]]


def ntuple(value: Any, n: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ``n`` ints) as an ``n``-tuple of Python ints ``>= minimum``.

    ``bool`` and non-integral numbers (``1.5``, ``2.0``) are rejected: a stride of ``True`` or ``2.0``
    is almost certainly a bug in the caller.
    """
    what = f"an int >= {minimum}" + ("" if n == 1 else f" or a {'pair' if n == 2 else f'{n}-tuple'} of them")
    if _is_int(value):
        items = (value,) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(_is_int(v) for v in value):
        items = tuple(value)
    else:
        raise ArgumentError(f"{op}: {name} must be {what}, got {value!r}")
    if any(v < minimum for v in items):
        raise ArgumentError(f"{op}: {name} must be {what}, got {value!r}")
    return tuple(int(v) for v in items)


def pair(value: Any, name: str, op: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as a pair of ints ``>= minimum`` (see :func:`ntuple`)."""
    return ntuple(value, 2, name, op, minimum)  # type: ignore[return-value]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def effective_kernel(k: int, d: int = 1) -> int:
    """The number of input positions a kernel of size ``k`` with dilation ``d`` spans."""
    return (k - 1) * d + 1


def out_size(n: int, k: int, s: int = 1, d: int = 1, pad_before: int = 0, pad_after: int = 0,
             ceil_mode: bool = False) -> int:
    """The output size of a window op along one dim (may be <= 0: the caller reports that).

    ``floor((n + pad_before + pad_after - effective_kernel) / s) + 1``, as in PyTorch. With ``ceil_mode``
    (pooling), the division rounds up, but, as in PyTorch, a last window that would start in the
    bottom/right padding (beyond the input) is dropped.
    """
    span = n + pad_before + pad_after - effective_kernel(k, d)
    if span < 0:
        return span // s + 1  # <= 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + pad_before:
        out -= 1
    return out


def same_padding(n: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """``(before, after)`` padding that makes the output ``ceil(n / s)`` long, like Keras/TensorFlow "same".

    Total padding is ``max((ceil(n / s) - 1) * s + effective_kernel - n, 0)``; the smaller half goes
    before (top/left), the extra one after (bottom/right). For ``s == 1`` and an odd effective kernel this
    is symmetric and equals PyTorch's ``padding="same"``.
    """
    total = max((math.ceil(n / s) - 1) * s + effective_kernel(k, d) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: PaddingArg, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int], op: str) -> tuple[tuple[int, int], ...]:
    """Per spatial dim ``(before, after)`` padding for ``padding`` = an int >= 0, a tuple of them (one per
    dim), ``"valid"`` (no padding) or ``"same"`` (see :func:`same_padding`; output ``ceil(n / s)``)."""
    nd = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))
        raise ArgumentError(f"{op}: padding must be 'same', 'valid', an int >= 0 or a tuple of {nd} int"
                            f"{'s' if nd > 1 else ''} >= 0, got {padding!r}")
    if not (_is_int(padding) or isinstance(padding, (tuple, list))):
        raise ArgumentError(f"{op}: padding must be 'same', 'valid', an int >= 0 or a tuple of {nd} int"
                            f"{'s' if nd > 1 else ''} >= 0, got {padding!r}")
    pads = ntuple(padding, nd, "padding", op, minimum=0)
    return tuple((p, p) for p in pads)


def format_size(sizes: Sequence[int]) -> str:
    """``(28, 28)`` -> ``"28x28"`` (for messages)."""
    return "x".join(str(v) for v in sizes)


def format_param(values: Sequence[Any]) -> str:
    """``(2, 2)`` -> ``"2"``, ``(2, 1)`` -> ``"(2, 1)"`` (for messages)."""
    values = tuple(values)
    if all(v == values[0] for v in values):
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"
