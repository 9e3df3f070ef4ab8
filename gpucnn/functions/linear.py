"""Fully connected layer: y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""
from __future__ import annotations

import numpy as np

from .. import workspace
from ..amp.autocast_mode import autocast_function
from ..errors import ShapeError
from ..function import Function
from ..precision import rounded, tf32_operands
from ._checks import require_float


class Linear(Function):
    name = "linear"
    halves_in_float32 = True

    def forward(self, xs):
        x, w, b = xs
        self.tf32 = tf32_operands(x.dtype)  # "high": TF32 operands (gpucnn.precision)
        x, w = rounded(self.xp, (x, w), self.tf32)
        if x.ndim < 1 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
            raise ShapeError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (input shape "
                             f"{tuple(x.shape)}), expected {w.shape[1]} (weight shape {tuple(w.shape)})")
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise ShapeError(f"linear: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
        if self.xp is np and x.ndim == 2 and x.shape[0] > 1:
            return self._forward_numpy(x, w, b)
        y = x @ w.T
        return y + b if b is not None else y

    def backward(self, xs, gy):
        x, w, b = xs
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if b is not None and self.needs_input_grad[2] else None
        x, w, gy = rounded(self.xp, (x, w, gy), self.tf32)  # (the bias gradient above sums the exact gy)
        if self.xp is np and x.ndim == 2 and x.shape[0] > 1:
            gx, gw = self._backward_numpy(x, w, gy, need_x, need_w)
            return gx, gw, gb
        gx = gy @ w if need_x else None
        gw = None
        if need_w:
            gw = gy.reshape(-1, gy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return gx, gw, gb

    # The NumPy path splits large layers over threads (see gpucnn.workspace) by features, not by batch
    # rows: every thread's GEMM then spans the whole batch (M = 32 rows a thread at batch 64 ran at half
    # speed: forward 0.83 -> 0.57 ms, backward 1.30 -> 0.81 ms for 3136->128 at batch 64 on 2 cores), and
    # each element of gW is one thread's whole sum over the batch: no partial sums to add.
    def _forward_numpy(self, x, w, b):
        y = np.empty((x.shape[0], w.shape[0]), dtype=np.result_type(x, w))

        def outputs(lo: int, hi: int) -> None:  # output features lo..hi-1: columns of y
            np.matmul(x, w[lo:hi].T, out=y[:, lo:hi])
            if b is not None:
                y[:, lo:hi] += b[lo:hi]

        with workspace.cpu_op():
            workspace.parallel(outputs, w.shape[0], _min_features(x.shape[0], w.shape[1]))
        return y

    def _backward_numpy(self, x, w, gy, need_x, need_w):
        # gx in x's layout: a Flatten of a conv's or pool's channel-major output is a column-major view
        # (batch innermost), and the layers below want their gradient laid out like their output (a
        # row-major gx cost the ReLU below it a transposing copy and ~3x in its own pass). BLAS writes
        # column-major as gx.T = w.T @ gy.T (NumPy's matmul wants unit stride along an output row).
        by_column = x.flags.f_contiguous and not x.flags.c_contiguous
        dtype = np.result_type(gy, w)
        gx = np.empty(x.shape[::-1], dtype=dtype).T if need_x and by_column else \
            np.empty(x.shape, dtype=dtype) if need_x else None
        gw = np.empty(w.shape, dtype=np.result_type(gy, x)) if need_w else None

        def inputs(lo: int, hi: int) -> None:  # input features lo..hi-1: columns of gx and gW
            if need_x:
                if by_column:
                    np.matmul(w[:, lo:hi].T, gy.T, out=gx.T[lo:hi])
                else:
                    np.matmul(gy, w[:, lo:hi], out=gx[:, lo:hi])
            if need_w:
                np.matmul(gy.T, x[:, lo:hi], out=gw[:, lo:hi])

        with workspace.cpu_op():
            workspace.parallel(inputs, w.shape[1], _min_features(x.shape[0], w.shape[0]))
        return gx, gw


def _min_features(batch: int, other: int) -> int:
    """Features per thread worth splitting for: a million multiply-adds each (``other``: the features
    on the far side of the weight)."""
    return max(1, (1 << 20) // max(1, batch * other))


@autocast_function("lower")  # (before the checks: they want one dtype)
def linear(x, weight, bias=None):
    """x @ weight.T + bias; ``weight`` is (out_features, in_features)."""
    require_float("linear", "input", x, halves=True)
    require_float("linear", "weight", weight, like=x, halves=True)
    if bias is not None:
        require_float("linear", "bias", bias, like=x, halves=True)
    return Linear()(x, weight, bias)
