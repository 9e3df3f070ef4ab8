"""Finite-difference gradient checking (what every op's backward is tested against)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .errors import ArgumentError
from .tensor import Tensor


def numerical_grads(fn: Callable[..., Tensor], inputs: Sequence[Tensor], projection: np.ndarray,
                    eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of ``sum(fn(*inputs) * projection)`` w.r.t. every input that requires grad."""
    grads = []
    for x in inputs:
        if not (isinstance(x, Tensor) and x.requires_grad):
            grads.append(None)
            continue
        host = x.numpy()
        g = np.zeros_like(host)
        for i in np.ndindex(host.shape):
            old = host[i]
            vals = []
            for step in (eps, -eps):
                host[i] = old + step
                x.data = x.device.asarray(host)
                vals.append(float((fn(*inputs).numpy() * projection).sum()))
            host[i] = old
            g[i] = (vals[0] - vals[1]) / (2 * eps)
        x.data = x.device.asarray(host)
        grads.append(g)
    return grads


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-5, seed: int = 0) -> bool:
    """Check ``fn``'s backward against central finite differences; raise AssertionError on a mismatch.

    Inputs must be float64 (float32 finite differences are too noisy to check anything). The output is
    projected onto a random tensor, so every output element's gradient path is exercised, not only their
    sum. Central differences have O(eps^2) truncation error and O(1e-16/eps) rounding error, so with
    eps=1e-6 on O(1) functions agreement to ~1e-8 is expected; the default tolerances leave 100x margin.
    """
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise ArgumentError(f"gradcheck needs float64 inputs, got {x.dtype}")
    out = fn(*inputs)
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    (out * Tensor(out.device.asarray(projection), out.device)).sum().backward()
    expected = numerical_grads(fn, inputs, projection, eps)
    for k, (x, num) in enumerate(zip(inputs, expected)):
        if num is None:
            continue
        got = np.zeros_like(num) if x.grad is None else x.grad.numpy()
        if got.shape != num.shape or not np.allclose(got, num, atol=atol, rtol=rtol):
            err = np.abs(got - num).max() if got.shape == num.shape else float("nan")
            raise AssertionError(f"gradient of input {k} (shape {num.shape}) differs from finite differences: "
                                 f"max abs error {err:.3g}\nanalytic:\n{got}\nnumerical:\n{num}")
    return True
