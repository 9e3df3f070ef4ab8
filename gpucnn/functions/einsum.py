"""``einsum``: Einstein summation over tensors, as ``torch.einsum``, with a backward for every operand.

The equation is first normalised (:func:`_parse`): spaces dropped, each operand's ``...`` replaced by
letters of its own (right-aligned, so ellipsis dims broadcast as in NumPy), the implicit output (no ``->``)
made explicit (the ellipsis, then the letters seen once, sorted), and every size-1 dim that broadcasts
against a larger one squeezed out of its operand. What remains is plain ``xp.einsum`` with no broadcasting.

The gradient of operand ``k`` is another einsum, of the output gradient with the other operands, into
``k``'s distinct letters; then

- letters of ``k`` found nowhere else (summed inside ``k`` only, e.g. ``"ij->i"``'s ``j``) broadcast the
  result along them: every element of such a dim gets the same gradient;
- a letter repeated in ``k`` (a diagonal, ``"ii->i"``) puts the result on that diagonal, zeros elsewhere;
- the squeezed size-1 dims come back (the broadcast dims' gradients are summed by the einsum).
"""
from __future__ import annotations

import string
from typing import Sequence, Union

from ..errors import ArgumentError, DtypeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from ._checks import require_tensor

LETTERS = string.ascii_letters


def _subscripts(op: str, text: str, where: str, offset: int) -> tuple[list[str], bool]:
    """The letters of one operand's (or the output's) subscripts, and whether it has an ellipsis (``"."``
    marks the ellipsis' place in the list)."""
    labels: list[str] = []
    i, ellipsis = 0, False
    while i < len(text):
        c = text[i]
        if c == ".":
            if text[i:i + 3] != "...":
                raise ArgumentError(f"{op}: invalid subscript at index {offset + i} of the equation: a '.' that is "
                                    f"not part of an ellipsis '...'")
            if ellipsis:
                raise ArgumentError(f"{op}: {where} has more than one ellipsis '...'")
            ellipsis = True
            labels.append(".")
            i += 3
            continue
        if c not in LETTERS:
            raise ArgumentError(f"{op}: invalid subscript {c!r} at index {offset + i} of the equation; subscripts "
                                f"must be letters a-z, A-Z (or '...')")
        labels.append(c)
        i += 1
    return labels, ellipsis


def _parse(op: str, equation: str, shapes: Sequence[tuple[int, ...]]) -> tuple[list[list[str]], list[str],
                                                                               dict[str, int]]:
    """Each operand's letters (one per dim), the output's letters and every letter's size (see the
    module docstring); errors name the operand, the letter and the sizes."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ArgumentError(f"{op}: the equation {equation!r} has {len(terms)} operand(s), got {len(shapes)} "
                            f"tensor(s)")
    offsets = [0]
    for t in terms:
        offsets.append(offsets[-1] + len(t) + 1)
    parsed = [_subscripts(op, t, f"operand {k}", offsets[k]) for k, t in enumerate(terms)]
    used = set(eq) & set(LETTERS)
    spare = iter(c for c in LETTERS if c not in used)
    n_ell = 0
    for k, ((labels, ell), shape) in enumerate(zip(parsed, shapes)):
        named = len(labels) - ell
        if len(shape) < named or not ell and len(shape) != named:
            raise ShapeError(f"{op}: operand {k} has {len(shape)} dims (shape {shape}) but {named} subscripts "
                             f"{terms[k]!r}" + ("" if ell else " and no ellipsis"))
        n_ell = max(n_ell, len(shape) - named if ell else 0)
    try:
        ell_letters = [next(spare) for _ in range(n_ell)]
    except StopIteration:
        raise ArgumentError(f"{op}: the equation {equation!r} needs more than 52 distinct subscripts") from None
    subs: list[list[str]] = []
    for (labels, ell), shape in zip(parsed, shapes):
        if ell:
            k = labels.index(".")
            width = len(shape) - (len(labels) - 1)
            labels = labels[:k] + ell_letters[n_ell - width:] + labels[k + 1:]
        subs.append(labels)
    if arrow:
        out_labels, out_ell = _subscripts(op, rhs, "the output", len(lhs) + 2)
        out = [c for c in out_labels if c != "."]
        for c in out:
            if out.count(c) > 1:
                raise ArgumentError(f"{op}: output subscript {c!r} appears more than once in {equation!r}")
            if not any(c in s for s in subs):
                raise ArgumentError(f"{op}: output subscript {c!r} does not appear in any operand of {equation!r}")
        if out_ell:
            k = out_labels.index(".")
            out = out[:k] + ell_letters + out[k:]
    else:
        counts = [c for s in parsed for c in s[0] if c != "."]
        out = ell_letters + sorted(c for c in set(counts) if counts.count(c) == 1)
    sizes: dict[str, int] = {}
    for k, (labels, shape) in enumerate(zip(subs, shapes)):
        mine: dict[str, int] = {}
        for c, n in zip(labels, shape):
            if mine.setdefault(c, n) != n:
                raise ShapeError(f"{op}: subscript {c!r} is repeated in operand {k} with different sizes "
                                 f"({mine[c]} and {n}; operand shape {shape})")
        for c, n in mine.items():
            seen = sizes.setdefault(c, n)
            if seen != n and 1 not in (seen, n):
                what = "an ellipsis dim" if c in ell_letters else f"subscript {c!r}"
                raise ShapeError(f"{op}: {what} has size {n} in operand {k} (shape {shape}), which does not "
                                 f"broadcast with size {seen} of another operand")
            sizes[c] = n if seen == 1 else seen  # (1 broadcasts to any size, 0 included)
    return subs, out, sizes


class Einsum(Function):
    name = "einsum"

    def __init__(self, subs: list[list[str]], out: list[str], sizes: dict[str, int],
                 shapes: Sequence[tuple[int, ...]]) -> None:
        # each operand's letters once its broadcast size-1 dims are squeezed out (see the module docstring)
        self.subs = [[c for c, n in zip(s, shape) if n == sizes[c]] for s, shape in zip(subs, shapes)]
        self.out = out
        self.sizes = sizes

    def _squeezed(self, xs: tuple) -> list:
        return [x.reshape(tuple(self.sizes[c] for c in s)) for x, s in zip(xs, self.subs)]

    def forward(self, xs):
        arrays = self._squeezed(xs)
        eq = ",".join("".join(s) for s in self.subs) + "->" + "".join(self.out)
        y = self.xp.einsum(eq, *arrays, optimize=len(arrays) > 1)
        return y.copy() if len(arrays) == 1 else y  # (a one-operand einsum may be a view of its input)

    def backward(self, xs, gy):
        arrays = self._squeezed(xs)
        grads = []
        for k, (x, s) in enumerate(zip(xs, self.subs)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [j for j in range(len(arrays)) if j != k]
            distinct = list(dict.fromkeys(s))
            found = [c for c in distinct if c in self.out or any(c in self.subs[j] for j in others)]
            eq = ",".join(["".join(self.out)] + ["".join(self.subs[j]) for j in others]) + "->" + "".join(found)
            g = self.xp.einsum(eq, gy, *[arrays[j] for j in others], optimize=len(others) > 0)
            # letters only k holds: the same gradient along them
            g = self.xp.broadcast_to(g.reshape(tuple(self.sizes[c] if c in found else 1 for c in distinct)),
                                     tuple(self.sizes[c] for c in distinct))
            if len(distinct) < len(s):  # a diagonal: the gradient on it, zeros elsewhere
                gx = self.xp.zeros(tuple(self.sizes[c] for c in s), dtype=gy.dtype)
                index = tuple(self.xp.arange(self.sizes[c]).reshape(
                    tuple(-1 if d == c else 1 for d in distinct)) for c in s)
                gx[index] = g
            elif not others or len(found) < len(distinct):
                gx = self.xp.array(g)  # a copy of a broadcast view, or of gy itself (a one-operand einsum)
            else:
                gx = g
            grads.append(gx.reshape(x.shape))
        return grads


def einsum(equation: str, *operands: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """Sum of products of ``operands``' elements over the subscripts ``equation`` names, like
    ``torch.einsum``: ``einsum("ij,jk->ik", a, b)`` is ``a @ b``, ``einsum("ii", a)`` the trace,
    ``einsum("...ij->...ji", a)`` a batched transpose. Operands may also be one list; they must share a
    dtype and a device. Without ``->`` the output is the ellipsis dims, then the subscripts used once, sorted.
    """
    op = "einsum"
    if not isinstance(equation, str):
        raise DtypeError(f"{op}: equation must be a str, got {type(equation).__name__} {equation!r}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ArgumentError(f"{op}: needs at least one operand after the equation {equation!r}")
    for k, t in enumerate(operands):
        require_tensor(op, f"operand {k}", t)
    for k, t in enumerate(operands[1:], 1):
        if t.dtype != operands[0].dtype:
            raise DtypeError(f"{op}: operands must have the same dtype, got {operands[0].dtype} (operand 0) and "
                             f"{t.dtype} (operand {k}); convert one with .to(dtype)")
    subs, out, sizes = _parse(op, equation, [t.shape for t in operands])
    return Einsum(subs, out, sizes, [t.shape for t in operands])(*operands)
