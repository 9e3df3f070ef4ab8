"""The backward pass, version counters and in-place updates of tensors in a graph.

The graph's nodes are :class:`~gpucnn.function.Function` objects: each remembers, per input, its *parent*
— the Function that produced that input when it was recorded, or the leaf tensor itself. Edges point at
nodes, not at tensors, so a tensor that is later changed in place (and so gets a new producing Function)
does not rewire the ops that used its old value.

Every tensor has a version counter, shared with its views (same storage) and bumped by each in-place
change. An op records the versions of the tensors its backward will read; :func:`run_backward` checks
them and raises :class:`~gpucnn.errors.AutogradError` where one moved, instead of giving a gradient
computed from overwritten values (PyTorch's rule).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from .dtypes import can_cast
from .errors import AutogradError, DtypeError, ShapeError
from .function import Function, is_grad_enabled

if TYPE_CHECKING:
    from .tensor import Tensor


class VersionCounter:
    """How many in-place changes a storage has had (shared by a tensor and its views)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


# -- backward ---------------------------------------------------------------------------------------
def _functions_in_order(root: Function) -> list[Function]:
    """Functions of root's graph, each before every function that produced one of its inputs (iterative:
    deep nets are fine)."""
    order: list[Function] = []
    seen: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
    while stack:
        fn, parents_done = stack.pop()
        if parents_done:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        stack.append((fn, True))
        for p in fn.parents:
            if isinstance(p, Function) and id(p) not in seen:
                stack.append((p, False))
    order.reverse()
    return order


def _accumulate_leaf(t: "Tensor", g: Any, handed_out: set[int]) -> None:
    """Add ``g`` to leaf ``t``'s ``.grad``. A leaf's first gradient is its own array: a backward may pass
    one array on to several inputs (add's is its output gradient), and ``a.grad.mul_(2)`` must not
    change ``b.grad``; so an array already handed out, or a view, is copied."""
    from .tensor import Tensor

    if t.grad is not None:
        t.grad = Tensor._wrap(t.grad.data + g, t.device)
        return
    if id(g) in handed_out or g.base is not None:
        g = g.copy(order="K")  # (in its memory layout: the layout policy of functions/_layout.py)
    handed_out.add(id(g))
    t.grad = Tensor._wrap(g, t.device)


def run_backward(root: "Tensor", g: Any, retain_graph: bool) -> None:
    """Accumulate d(root)/d(leaf), given d(root) = ``g``, into ``.grad`` of the leaves of root's graph.
    A leaf's post-accumulate-grad hooks run right after the last op with an edge to it has passed its
    gradient on (so once per backward, with the whole of it in ``.grad``)."""
    handed_out: set[int] = set()
    if root._ctx is None:
        _accumulate_leaf(root, g, handed_out)
        _run_post_accumulate_hooks(root)
        return
    order = _functions_in_order(root._ctx)
    due = _hooked_leaves_by_last_edge(order)
    accumulated: set[int] = set()
    grads: dict[int, Any] = {id(root._ctx): g}
    for position, fn in enumerate(order):
        g = grads.pop(id(fn), None)
        if g is not None:
            fn._check_saved_versions()
            xs = tuple(None if x is None else x.data for x in fn.inputs)
            gxs = fn._guarded("backward", fn.backward, xs, g)
            for parent, gx in zip(fn.parents, gxs):
                if parent is None or gx is None:
                    continue
                if isinstance(parent, Function):
                    key = id(parent)
                    grads[key] = gx if key not in grads else grads[key] + gx
                else:
                    _accumulate_leaf(parent, gx, handed_out)
                    accumulated.add(id(parent))
            if not retain_graph:
                fn._release()
        for leaf in due.get(position, ()):
            if id(leaf) in accumulated:
                _run_post_accumulate_hooks(leaf)


def _hooked_leaves_by_last_edge(order: list[Function]) -> dict[int, list["Tensor"]]:
    """position in ``order`` -> the leaves with post-accumulate-grad hooks whose last edge is there."""
    last: dict[int, tuple[int, "Tensor"]] = {}
    for position, fn in enumerate(order):
        for p in fn.parents:
            if p is not None and not isinstance(p, Function) and p._post_acc_hooks:
                last[id(p)] = (position, p)
    due: dict[int, list["Tensor"]] = {}
    for position, leaf in last.values():
        due.setdefault(position, []).append(leaf)
    return due


def _run_post_accumulate_hooks(leaf: "Tensor") -> None:
    for hook in list((leaf._post_acc_hooks or {}).values()):
        hook(leaf)


# -- in-place updates -------------------------------------------------------------------------------
def assign(t: "Tensor", compute: Callable[["Tensor"], "Tensor"], reads_old: bool, op: str,
           others_require_grad: bool = False, direct: Optional[Callable[[], None]] = None) -> "Tensor":
    """Make ``t`` hold ``compute(t)`` in its own storage (an in-place op: same object, same array, views
    see the change) and, when the graph records, make ``t``'s value in the graph the computed one.

    ``compute`` builds the new value out of place with ordinary (differentiable) ops. ``reads_old`` says
    whether its backward reads the old value of ``t`` (``mul_`` by a tensor that requires grad,
    ``clamp_``): the old value is then kept as a copy for that backward, since the storage is
    overwritten. ``direct``, when given, does the whole update in place where no graph is involved
    (``t[i] = v`` outside autograd writes the indexed part only).
    """
    from .tensor import Tensor

    recording = is_grad_enabled()
    if recording and t.requires_grad and t._ctx is None:
        raise AutogradError(f"{op}: a leaf tensor that requires grad (shape {t.shape}) is being used in an "
                            f"in-place operation; update parameters inside `with gpucnn.no_grad():`")
    base = t._view[0] if t._view is not None else None
    involved = recording and (t.requires_grad or others_require_grad or (base is not None and base.requires_grad))
    if not involved and direct is not None:
        direct()
        t._vc.value += 1
        return t
    old = t
    if involved and reads_old:
        old = Tensor._wrap(t.data.copy(), t.device, t.requires_grad)  # the old value, for backward
        old._ctx = t._ctx
    new = compute(old)
    if new.shape != t.shape:
        raise ShapeError(f"{op}: the result has the broadcast shape {new.shape}, which does not match the "
                         f"shape {t.shape} of the tensor updated in place")
    if new.dtype != t.dtype:
        if not can_cast(new.dtype, t.dtype):
            raise DtypeError(f"{op}: the result type {new.dtype} can't be cast to the dtype {t.dtype} of the "
                             f"tensor updated in place (use an out-of-place op, or .to() the tensor first)")
        new = new.to(dtype=t.dtype)
    if involved and base is not None:
        return _assign_through_base(t, new, op)
    _write(t, new.data, op)
    if involved and new.requires_grad:
        t._ctx, t.requires_grad = new._ctx, True
    return t


def _write(t: "Tensor", data: Any, op: str) -> None:
    if data is not t.data:
        try:
            t.data[...] = data
        except ValueError as e:  # a read-only view: expand() output, a broadcast
            raise AutogradError(f"{op}: cannot write into this tensor ({e}); an expand()ed tensor shares one "
                                f"element among many positions: clone() it first") from e
    t._vc.value += 1


def _assign_through_base(t: "Tensor", new: "Tensor", op: str) -> "Tensor":
    """An in-place change of a view ``t = base[index]`` while the graph records: the base gets
    ``base[index] = new`` (so its graph knows), then ``t`` becomes ``base[index]`` of the new base."""
    base, index = t._view
    if index is None:
        raise AutogradError(f"{op}: in-place change of a view made by reshape/permute/expand/... of a tensor "
                            f"in a graph that requires grad is not supported; use the out-of-place op, or "
                            f"change the base tensor (or an indexed part of it) instead")
    base.__setitem__(index, new)
    from .functions.indexing import GetItem

    again = GetItem(index)(base)
    t._ctx, t.requires_grad = again._ctx, again.requires_grad
    return t


def saved_version_error(fn: Function, what: str, shape: tuple, dtype: Any, now: int, then: int) -> AutogradError:
    return AutogradError(
        f"one of the tensors needed for gradient computation has been modified by an in-place operation: "
        f"{what} of {fn.name} (a {dtype} tensor of shape {shape}) is at version {now}; expected version "
        f"{then} instead. Clone it before changing it in place, or change it after backward()")
