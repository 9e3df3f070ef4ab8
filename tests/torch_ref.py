"""Checking gpucnn ops against PyTorch: the same inputs through both, values, dtypes and gradients compared.

``same(f, arrays)`` runs ``f(*tensors)`` once with gpucnn tensors and once with torch tensors made from the
same NumPy arrays (float arrays require grad), compares the outputs (values, shapes, dtypes) and the
gradients of ``sum(out * w)`` for a fixed random ``w``, and returns the gpucnn outputs.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

import gpucnn

#: torch dtype -> NumPy dtype
DTYPES = {t: np.dtype(n) for t, n in [
    (torch.bool, np.bool_), (torch.uint8, np.uint8), (torch.int8, np.int8), (torch.int16, np.int16),
    (torch.int32, np.int32), (torch.int64, np.int64), (torch.float16, np.float16), (torch.float32, np.float32),
    (torch.float64, np.float64), (torch.bfloat16, gpucnn.bfloat16)]}


def to_numpy(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, gpucnn.Tensor):
        return x.numpy()
    return x


def _flat(out: Any) -> list:
    if isinstance(out, (tuple, list)):
        return [o for item in out for o in _flat(item)]
    return [out]


def assert_same_value(ours: Any, ref: Any, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """One output: a tensor (shape, dtype and values) or a Python value."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, gpucnn.Tensor), f"expected a tensor, got {type(ours).__name__}"
        assert ours.shape == tuple(ref.shape), f"shape {ours.shape} != torch's {tuple(ref.shape)}"
        assert ours.dtype == DTYPES[ref.dtype], f"dtype {ours.dtype} != torch's {ref.dtype}"
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert type(ours) is type(ref) and ours == ref, f"{ours!r} != torch's {ref!r}"


def same(f: Callable[..., Any], arrays: Sequence[Any], grad: bool = True, device: str = "cpu",
         rtol: float = 1e-6, atol: float = 1e-6, g: Callable[..., Any] = None) -> Any:
    """Run ``f`` (or ``g`` for torch, where the spelling differs) on both libraries; see the module doc."""
    g = g or f

    def wants_grad(a: Any) -> bool:
        return grad and isinstance(a, np.ndarray) and a.dtype.kind == "f"

    ours_in = [gpucnn.tensor(a, device=device, requires_grad=wants_grad(a)) if isinstance(a, np.ndarray) else a
               for a in arrays]
    ref_in = [torch.tensor(a, requires_grad=wants_grad(a)) if isinstance(a, np.ndarray) else a for a in arrays]
    ours, ref = f(*ours_in), g(*ref_in)
    ours_flat, ref_flat = _flat(ours), _flat(ref)
    assert len(ours_flat) == len(ref_flat)
    for o, r in zip(ours_flat, ref_flat):
        assert_same_value(o, r, rtol, atol)
    pairs = [(o, r) for o, r in zip(ours_flat, ref_flat)
             if isinstance(r, torch.Tensor) and r.requires_grad and o.requires_grad]
    if grad and pairs:
        rng = np.random.default_rng(7)
        loss_o = loss_r = 0
        for o, r in pairs:
            w = rng.standard_normal(o.shape).astype(o.dtype)
            loss_o = (o * gpucnn.tensor(w, device=device)).sum() + loss_o
            loss_r = (r * torch.tensor(w)).sum() + loss_r
        loss_o.backward()
        loss_r.backward()
        for a, t in zip(ours_in, ref_in):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                if t.grad is None:
                    assert a.grad is None or not a.grad.numpy().any(), "gpucnn has a gradient where torch has none"
                    continue
                assert a.grad is not None, "torch has a gradient where gpucnn has none"
                np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)
    return ours
