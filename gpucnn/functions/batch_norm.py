"""Batch normalization, with PyTorch's ``torch.nn.functional.batch_norm`` signature and semantics.

Statistics are per channel (axis 1) over every other axis, so one op serves (N, C), (N, C, L) and
(N, C, H, W). Training normalises with the batch mean and the biased batch variance and updates the
running statistics in place (the running variance with the unbiased n/(n-1) estimate, as PyTorch does);
eval normalises with the running statistics. The variance is computed in two passes (the mean, then the
mean of squared deviations): E[x^2] - E[x]^2 cancels catastrophically in float32 when |mean| >> std.

The NumPy path (device cpu) works on the input's memory as it is laid out. It views it as an (A, C, B)
array, A and B the sizes before and after the channel axis in memory order: a conv output (memory
(C, H, W, N), see conv.py) is (1, C, H*W*N), one contiguous block per channel; an NCHW array is
(N, C, H*W); (N, C) is (N, C, 1). y and the input gradient get the input's layout. Channels are handled
in groups sized to stay in L2 between the passes over them (larger when split over threads, see
_GROUP_THREADED), the groups split over the threads; a strided group (NCHW) is first copied to
contiguous scratch, since its rows evict each other from the caches.

- forward, training, per group: the mean (float64 sums: einsum converts and adds each run of B values,
  then the runs' sums are added pairwise), d = x - mean (into y's memory or scratch), the float64 sum of
  d * d (squared in the input's dtype) for the biased variance, inv_std = 1 / sqrt(var + eps), then
  y = d * (inv_std * weight) + bias: two passes. The running statistics are updated afterwards.
- forward, eval: y = (x - running_mean) * (inv_std * weight) + bias.
- backward, per group: d = x - mean again (not kept from the forward), the sums of gy and of gy * d
  (runs of up to 128 values by einsum, then pairwise; gy * x_hat = inv_std * gy * d), then
  gx = ((gy - mean(gy)) - d * (inv_std * mean(gy * x_hat))) * (weight * inv_std); eval: gx = gy * scale.
- Every channel's sums are taken in the same order whatever its group, so the results are bit-identical
  run to run and for any number of threads.

On the kernel devices (cuda, emu) the op runs ``kernels_cuda/batch_norm.cu``: per-channel reductions
split over several blocks per channel (:func:`_splits`) and finished per channel in split order, for
the statistics (the same two passes, accumulated in double like this NumPy path, and the running
statistics updated in the kernel with the same rounding) and for the backward's per-channel sums, and
elementwise kernels for y and dx, which apply inv_std and weight one after the other ((x - mean) *
inv_std * weight): a rounding apart from the NumPy path's folded factors. Fixed reduction order, no
atomics: deterministic.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Optional

import numpy as np

from .. import workspace
from ..backend import array_device
from ..dtypes import is_floating_point
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor
from ._checks import require_input
from ._kernel_types import bits, kernel_defines
from ._layout import axis_order

# -- the CUDA kernel launches (kernels_cuda/batch_norm.cu; devices cuda and emu) --------------------
#: threads per block of the per-channel reductions (BN_THREADS) and of the elementwise kernels
#: (BN_APPLY_THREADS): the kernels' __launch_bounds__
_THREADS = 256
_APPLY_THREADS = 256
#: most blocks along grid-y (CUDA's limit); the elementwise kernels stride over the rest
_MAX_GRID_Y = 65535
_INT32_MAX = 2**31 - 1
#: The per-channel reductions split each channel over several blocks (see batch_norm.cu) to put about
#: this many blocks in flight (4 per SM on a 132-SM H100; 64 channels alone would be 64 blocks) ...
_STAT_TARGET_BLOCKS = 528
#: ... each summing at least this many elements (16 per thread: the finishing kernel's sequential sum
#: over the splits stays short).
_STAT_MIN_PER_BLOCK = 16 * 256


def _splits(channels: int, count: int) -> tuple[int, int]:
    """(splits per channel, elements per split) of the reductions over ``count`` elements per channel:
    a function of the shapes only, so the summation order (and the result) is too."""
    splits = max(1, min(-(-_STAT_TARGET_BLOCKS // channels), count // _STAT_MIN_PER_BLOCK, _MAX_GRID_Y))
    per = -(-count // splits)
    return -(-count // per), per  # (no empty split)


def _stats_dtype(dtype: Any) -> np.dtype:
    """The dtype of the statistics (and of the arithmetic) for an input of ``dtype``: float32 for the
    16-bit types (PyTorch's rule; their range and precision would not hold a variance), else itself."""
    return np.dtype(np.float32) if np.dtype(dtype).itemsize == 2 else np.dtype(dtype)


def _check_int32(x: Any) -> None:
    """The kernels index with 32-bit ints; a channel cursor may also run one grid stride (< 2^24
    elements) past the batch size before it stops, and a split's first thread starts up to a block
    (_THREADS elements) past the split's start."""
    n = x.shape[0]
    if x.size + _THREADS > _INT32_MAX or n + 2**24 > _INT32_MAX:
        raise ShapeError(f"batch_norm: the input has {x.size} elements (shape {x.shape}), more than the CUDA "
                         f"kernels' 32-bit indexing allows ({_INT32_MAX}); split the batch")


# -- the NumPy path's layout handling and per-channel steps (see the module docstring) ---------------
#: elements per group of channels that the NumPy path normalises in one go, on one thread: the group
#: and its scratch buffers stay in L2 (2 MiB a core here) between the passes over it
_GROUP = 1 << 16
#: ... when the groups are split over threads: each NumPy call must then run long enough that the
#: threads' waits for the GIL between calls (~5-10 us each) do not dominate. Measured on 2 cores:
#: elementwise calls over 64K float32 values ran 1.15x as fast on 2 threads as on one, over 256K 1.8x;
#: the op ran 1.3-1.7x faster with groups of this size than of _GROUP (the L2 misses cost less).
_GROUP_THREADED = 1 << 18
#: the backward's sums add runs of up to this many contiguous values first (see _sum)
_RUN = 128
#: below this many contiguous elements per channel run, groups of channels would make short strided
#: runs: one group of all channels then (an (N, C) input, channels-last memory)
_MIN_RUN = 16


def _channels_view(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(``a3``, ``order``): ``a``'s memory as a C-contiguous (A, C, B) array, where ``order`` lists
    ``a``'s axes from the outermost in memory to the innermost and A and B are the products of the sizes
    before and after the channel axis 1 in it. A conv output (memory (C, H, W, N)) gives (1, C, H*W*N),
    an NCHW-contiguous array (N, C, H*W), an (N, C) array (N, C, 1). An array whose memory is not dense
    in any order (a slice, a broadcast) is copied to NCHW first."""
    order = tuple(range(a.ndim)) if a.flags.c_contiguous else axis_order(a)
    t = a.transpose(order)
    if not t.flags.c_contiguous:
        order = tuple(range(a.ndim))
        t = np.ascontiguousarray(a)
    p = order.index(1)
    return t.reshape(math.prod(t.shape[:p]), a.shape[1], -1), order


def _unview(a3: np.ndarray, shape: tuple[int, ...], order: tuple[int, ...]) -> np.ndarray:
    """The array of ``shape`` whose memory is ``a3`` laid out in ``order`` (the inverse of
    :func:`_channels_view`)."""
    return a3.reshape([shape[i] for i in order]).transpose(sorted(range(len(order)), key=order.__getitem__))


def _view_like(a: np.ndarray, ref3: np.ndarray, order: tuple[int, ...]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(``a`` viewed like ``ref3``, None) when ``a`` has the layout (``order``) and dtype of the array
    that ``ref3`` views; else (a copy of ``a`` in a workspace buffer of that layout, the buffer to give
    back). Elementwise work over operands of different layouts would run ~3x slower."""
    t = a.transpose(order)
    if t.flags.c_contiguous and a.dtype == ref3.dtype:
        return t.reshape(ref3.shape), None
    buf = workspace.take(ref3.shape, ref3.dtype)
    _unview(buf, a.shape, order)[...] = a
    return buf, buf


def _by_channel_groups(x3: np.ndarray, fn: Callable[..., None], scratch: int) -> None:
    """``fn(c0, c1, *buffers)`` for consecutive groups of channels [c0, c1) of the (A, C, B) array
    ``x3``, of about :data:`_GROUP` (:data:`_GROUP_THREADED`) elements each (at least one channel), with
    ``scratch`` C-contiguous workspace buffers of the group's shape (A, c1 - c0, B), the groups split
    over the threads. Each channel's results are the same in any group (see _sum64, _sum), so they do
    not depend on the grouping or the number of threads."""
    A, C, B = x3.shape
    per = A * B
    threads = workspace.threads()
    target = _GROUP if threads == 1 else max(_GROUP, min(_GROUP_THREADED, x3.size // threads))
    k = C if B < _MIN_RUN else max(1, min(C, target // per))
    groups = -(-C // k)

    pooled = A * k * B >= _GROUP  # (small scratch: np.empty costs less than the pool's bookkeeping)

    def piece(lo: int, hi: int) -> None:
        bufs = [workspace.take(A * k * B, x3.dtype) if pooled else np.empty(A * k * B, x3.dtype)
                for _ in range(scratch)]
        try:
            for g in range(lo, hi):
                c0, c1 = g * k, min(C, g * k + k)
                size = A * (c1 - c0) * B
                fn(c0, c1, *(buf[:size].reshape(A, c1 - c0, B) for buf in bufs))
        finally:
            if pooled:
                workspace.give(*bufs)

    if groups == 1:
        piece(0, 1)  # (small inputs: no thread machinery)
    else:
        workspace.parallel(piece, groups, -(-workspace.MIN_PIECE // (k * per)))


def _add_rows(part: np.ndarray) -> np.ndarray:
    """(A, k) partial sums -> (k,): each channel's A values summed pairwise (reduced along a contiguous
    axis; NumPy would add the rows of the (A, k) array in sequence for k > 1 but pairwise for k = 1), so
    a channel's sum does not depend on the group it is in."""
    if part.shape[0] == 1:
        return part[0]
    return np.add.reduce(np.ascontiguousarray(part.T), axis=1)


def _sum64(a: np.ndarray) -> np.ndarray:
    """The per-channel sums of an (A, k, B) array, accumulated in float64: each run of B values summed,
    then the runs' sums (:func:`_add_rows`). float32 goes through einsum, whose conversion to float64
    and sum run ~1.25x faster than np.add.reduce's; float64 through np.add.reduce (einsum's order over
    a long float64 run depends on the array's shape, which would tie the result to the grouping)."""
    if a.shape[2] < _MIN_RUN:  # (one group: _by_channel_groups) rows, vectorised across channels
        return np.add.reduce(a, axis=(0, 2), dtype=np.float64)
    if a.dtype == np.float64:
        return _add_rows(np.add.reduce(a, axis=2))
    return _add_rows(np.einsum("abc->ab", a, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _run_length(b: int) -> int:
    """The longest run, of 32 to :data:`_RUN` values, that tiles a channel run of ``b`` values (0: none)."""
    return next((r for r in range(min(b, _RUN), 31, -1) if b % r == 0), 0)


def _sum(a: np.ndarray, b: Optional[np.ndarray] = None, tmp: Optional[np.ndarray] = None) -> np.ndarray:
    """The per-channel sums of an (A, k, B) array ``a`` (of ``a * b`` with ``b`` given; ``tmp``: scratch of
    its shape or None), in its dtype. One einsum sums runs of 32 to :data:`_RUN` values (SIMD, no
    product array) and a pairwise sum adds the runs' sums: about as accurate as NumPy's pairwise sum,
    and ~1.6x (with a product ~2.3x) faster."""
    A, k, B = a.shape
    if B < _MIN_RUN:  # (see _sum64)
        return np.add.reduce(a if b is None else np.multiply(a, b, out=tmp), axis=(0, 2))
    r = _run_length(B)
    if r:
        runs = (A, k, B // r, r)
        part = np.einsum("akrj->akr", a.reshape(runs)) if b is None else \
            np.einsum("akrj,akrj->akr", a.reshape(runs), b.reshape(runs))
    else:
        part = a if b is None else np.multiply(a, b, out=tmp)
    return _add_rows(np.add.reduce(part, axis=2))  # (each (a, channel) row pairwise)


def _scale_shift(d: np.ndarray, out: np.ndarray, scale: np.ndarray, shift: Optional[np.ndarray]) -> None:
    """``out = d * scale + shift`` per channel ((k, 1) arrays; ``shift`` may be None), in two passes
    at most: the product in place in ``d`` (which may be ``out``), then the sum into ``out``."""
    if shift is None:
        np.multiply(d, scale, out=out)
    else:
        np.multiply(d, scale, out=d)
        np.add(d, shift, out=out)


class BatchNorm(Function):
    """Inputs: (x, weight, bias, running_mean, running_var); weight, bias and the running statistics may
    be None. The running statistics are not differentiable; in training they are updated in place."""

    name = "batch_norm"

    def __init__(self, training: bool, momentum: float, eps: float) -> None:
        self.training, self.momentum, self.eps = training, momentum, eps

    # -- the NumPy path (device cpu): see the module docstring ----------------------------------------
    def forward_cpu(self, xs):
        x, w, b, running_mean, running_var = xs
        if x.dtype.itemsize == 2:
            return self._forward_cpu_16bit(xs)
        x3, order = _channels_view(x)
        A, C, B = x3.shape
        dt, eps = x.dtype, self.eps
        y3 = np.empty_like(x3)
        if self.training:
            n = A * B
            self.mean = mean = np.empty(C, dt)
            self.inv_std = inv_std = np.empty(C, dt)
            var = np.empty(C, dt)

            def group(c0: int, c1: int, s: np.ndarray, t: np.ndarray) -> None:
                xg, yg = x3[:, c0:c1], y3[:, c0:c1]
                if not xg.flags.c_contiguous:
                    # The rows of an NCHW group lie C*H*W apart (often a power of two) and evict each
                    # other from the caches: one pass copies the group to contiguous scratch, the
                    # others read that.
                    np.copyto(s, xg)
                    xg = s
                # Two passes (mean, then mean of squared deviations), with float64 accumulators (the
                # results are cast back): the mean is then right to float32 rounding even when
                # |mean| >> std, where float32 accumulation drifts by several ulps.
                m = (_sum64(xg) / n).astype(dt)
                d = s if xg is s else yg
                np.subtract(xg, m[:, None], out=d)  # x - mean
                np.square(d, out=t)
                v = (_sum64(t) / n).astype(dt)  # biased
                mean[c0:c1], var[c0:c1] = m, v
                inv_std[c0:c1] = s_ = 1 / np.sqrt(v + eps)
                # y = (x - mean) * (inv_std * weight) + bias: one pass fewer than ((x - mean) *
                # inv_std) * weight + bias (the kernels' order), a rounding apart. (Not x * scale +
                # shift: that would cancel ulps of mean / std when |mean| >> std.)
                _scale_shift(d, yg, (s_ if w is None else s_ * w[c0:c1])[:, None],
                             None if b is None else b[c0:c1, None])

            _by_channel_groups(x3, group, 2)
            if running_mean is not None:
                m = self.momentum
                running_mean[...] = (1 - m) * running_mean + m * mean
                running_var[...] = (1 - m) * running_var + m * (var * (n / (n - 1)))
        else:
            # Copies in the input's dtype: a later in-place update of the running statistics must not
            # change what backward sees, and float64 statistics must not promote a float32 input.
            self.mean = mean = np.array(running_mean, dtype=dt)
            self.inv_std = inv_std = 1 / np.sqrt(np.array(running_var, dtype=dt) + eps)
            scale = inv_std if w is None else inv_std * w

            def group(c0: int, c1: int, s: np.ndarray) -> None:
                xg, yg = x3[:, c0:c1], y3[:, c0:c1]
                d = yg if yg.flags.c_contiguous else s  # (see above: strided groups work in scratch)
                np.subtract(xg, mean[c0:c1, None], out=d)
                _scale_shift(d, yg, scale[c0:c1, None], None if b is None else b[c0:c1, None])

            _by_channel_groups(x3, group, 1)
        return _unview(y3, x.shape, order)

    def _forward_cpu_16bit(self, xs):
        """float16/bfloat16 x: the float32 path on the same values (statistics float32), y rounded once;
        16-bit running statistics (a ``model.half()``) are updated through float32 copies."""
        x, w, b, running_mean, running_var = xs
        f32 = np.float32
        stats = [None if a is None else a if a.dtype == f32 else a.astype(f32) for a in (running_mean, running_var)]
        y = self.forward_cpu((x.astype(f32), *(None if a is None else a.astype(f32, copy=False) for a in (w, b)),
                              *stats))
        for kept, updated in zip((running_mean, running_var), stats):
            if kept is not None and updated is not kept:
                kept[...] = updated
        return y.astype(x.dtype)

    def backward_cpu(self, xs, gy):
        x, w, b = xs[:3]
        if x.dtype.itemsize == 2:  # (see _forward_cpu_16bit)
            f32 = np.float32
            grads = self.backward_cpu((x.astype(f32), *(None if a is None else a.astype(f32, copy=False)
                                                        for a in xs[1:])), gy.astype(f32))
            return tuple(None if g is None else g.astype(a.dtype) for g, a in zip(grads, xs))
        need_x, need_w, need_b = self.needs_input_grad[:3]
        need_w, need_b = need_w and w is not None, need_b and b is not None
        x3, order = _channels_view(x)
        g3, staged = _view_like(gy, x3, order)
        A, C, B = x3.shape
        n, dt, training = A * B, x.dtype, self.training
        mean, inv_std = self.mean, self.inv_std
        scale = inv_std if w is None else w * inv_std
        # training: gx = gamma * inv_std * (gy - mean(gy) - x_hat * mean(gy * x_hat)), d/dx of
        # gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta through mean and var; eval: gx = gy * scale.
        want_sg = need_b or (need_x and training)
        want_sgx = need_w or (need_x and training)
        sum_gy = np.empty(C, dt) if want_sg else None
        sum_gy_xhat = np.empty(C, dt) if want_sgx else None
        gx3 = np.empty_like(x3) if need_x else None

        def group(c0: int, c1: int, s: Any = None, t: Any = None) -> None:
            xg, gyg = x3[:, c0:c1], g3[:, c0:c1]
            gxg = None if gx3 is None else gx3[:, c0:c1]
            if not want_sgx:  # eval (or training for dbeta alone): x is not needed
                if want_sg:
                    sum_gy[c0:c1] = _sum(gyg)
                if gxg is not None:
                    np.multiply(gyg, scale[c0:c1, None], out=gxg)
                return
            contiguous = xg.flags.c_contiguous
            if not contiguous:  # strided (NCHW) group: gy is read several times; from scratch (see forward)
                np.copyto(s, gyg)
                gyg = s
            np.subtract(xg, mean[c0:c1, None], out=t)  # x - mean; x_hat = t * inv_std, folded below
            if want_sg:
                sum_gy[c0:c1] = sg = _sum(gyg)
            sum_gy_xhat[c0:c1] = sgx = _sum(gyg, t, s if gyg is not s else None) * inv_std[c0:c1]
            if gxg is None:
                return
            if training:
                d = gxg if contiguous else gyg  # (gathered gy: not read again)
                np.subtract(gyg, (sg / n)[:, None], out=d)
                t *= (inv_std[c0:c1] * (sgx / n))[:, None]  # x_hat * mean(gy * x_hat)
                d -= t
                np.multiply(d, scale[c0:c1, None], out=gxg)
            else:
                np.multiply(gyg, scale[c0:c1, None], out=gxg)

        _by_channel_groups(x3, group, 2 if want_sgx else 0)
        workspace.give(staged)
        gx = None if gx3 is None else _unview(gx3, x.shape, order)
        return gx, sum_gy_xhat if need_w else None, sum_gy if need_b else None, None, None

    # -- CUDA kernels: the same algorithm, per channel (see kernels_cuda/batch_norm.cu) -------------
    def _gpu_layout(self, x: Any) -> tuple[int, int, int]:
        """(N, C, L) of the (N, C, L) view the kernels take (L = product of the spatial sizes)."""
        n, c = x.shape[:2]
        return n, c, x.size // (n * c)

    def _apply_grid(self, n: int, c: int, length: int) -> tuple[int, int]:
        return c, min(max(1, -(-(n * length) // _APPLY_THREADS)), _MAX_GRID_Y)

    def forward_gpu(self, xs):
        x, w, b, running_mean, running_var = xs
        xp = self.xp
        x = xp.ascontiguousarray(x)
        _check_int32(x)
        n, c, length = self._gpu_layout(x)
        self.defines = defines = kernel_defines(self.name, x.dtype)
        sdt = _stats_dtype(x.dtype)
        scalar = sdt.type
        self.mean = mean = xp.empty(c, dtype=sdt)
        self.inv_std = invstd = xp.empty(c, dtype=sdt)
        if self.training:
            count = n * length
            var = xp.empty(c, dtype=sdt)
            # Running statistics of the statistics' dtype, contiguous, are updated in place by the kernel;
            # others (e.g. float64 buffers for a float32 input) by the NumPy path's formula below.
            stats = (running_mean, running_var)
            in_kernel = running_mean is not None and all(
                a.dtype == sdt and a.flags.c_contiguous for a in stats)
            m = self.momentum
            splits, per = _splits(c, count)
            part = xp.empty((c, splits), dtype=np.float64)
            partial = self.device.kernel("batch_norm", "batch_norm_stats_partial", **defines)
            finish = self.device.kernel("batch_norm", "batch_norm_stats_finish", **defines)
            for stage in (0, 1):  # the mean, then the variance about it (two passes over x)
                partial((c, splits), (_THREADS,),
                        (bits(x), np.int32(n), np.int32(c), np.int32(length), np.int32(per), np.int32(stage), mean,
                         part))
                finish((-(-c // _APPLY_THREADS),), (_APPLY_THREADS,),
                       (part, np.int32(splits), np.int32(c), np.int32(count), np.int32(stage), scalar(self.eps),
                        np.int32(in_kernel), scalar(m), scalar(1 - m), scalar(count / (count - 1)), mean, var,
                        invstd, *(stats if in_kernel else (var, var))))  # (not touched when in_kernel is 0)
            if running_mean is not None and not in_kernel:
                running_mean[...] = (1 - m) * running_mean + m * mean
                running_var[...] = (1 - m) * running_var + m * (var * (count / (count - 1)))
        else:
            # Copies in the input's dtype (as the NumPy path): later in-place updates of the running
            # statistics must not change what backward sees.
            mean[...] = running_mean
            var = xp.array(running_var, dtype=sdt)
            kernel = self.device.kernel("batch_norm", "batch_norm_invstd", **defines)
            kernel((max(1, -(-c // _APPLY_THREADS)),), (_APPLY_THREADS,),
                   (var, np.int32(c), scalar(self.eps), invstd))
        y = xp.empty_like(x)
        kernel = self.device.kernel("batch_norm", "batch_norm_forward_apply", **defines)
        kernel(self._apply_grid(n, c, length), (_APPLY_THREADS,),
               (bits(x), mean, invstd, mean if w is None else xp.ascontiguousarray(w, dtype=sdt),
                np.int32(w is not None), mean if b is None else xp.ascontiguousarray(b, dtype=sdt),
                np.int32(b is not None), np.int32(n), np.int32(c), np.int32(length), bits(y)))
        return y

    def backward_gpu(self, xs, gy):
        x, w = xs[:2]
        xp = self.xp
        x = xp.ascontiguousarray(x)
        gy = xp.ascontiguousarray(gy, dtype=x.dtype)
        sdt = _stats_dtype(x.dtype)
        w = None if w is None else xp.ascontiguousarray(w, dtype=sdt)
        n, c, length = self._gpu_layout(x)
        defines = self.defines
        need_x, need_w, need_b = self.needs_input_grad[:3]
        sum_gy = sum_gy_xhat = None
        if need_w or need_b or (need_x and self.training):
            sum_gy, sum_gy_xhat = xp.empty(c, dtype=sdt), xp.empty(c, dtype=sdt)
            splits, per = _splits(c, n * length)
            parts = xp.empty((2, c, splits), dtype=np.float64)
            self.device.kernel("batch_norm", "batch_norm_backward_partial", **defines)(
                (c, splits), (_THREADS,), (bits(x), bits(gy), self.mean, self.inv_std, np.int32(n), np.int32(c),
                                           np.int32(length), np.int32(per), parts[0], parts[1]))
            self.device.kernel("batch_norm", "batch_norm_backward_finish", **defines)(
                (-(-c // _APPLY_THREADS),), (_APPLY_THREADS,),
                (parts[0], parts[1], np.int32(splits), np.int32(c), sum_gy, sum_gy_xhat))
        gx = None
        if need_x:
            gx = xp.empty_like(x)
            sums = (sum_gy, sum_gy_xhat) if self.training else (self.mean, self.mean)  # (not read in eval)
            kernel = self.device.kernel("batch_norm", "batch_norm_backward_dx", **defines)
            kernel(self._apply_grid(n, c, length), (_APPLY_THREADS,),
                   (bits(x), bits(gy), self.mean, self.inv_std, self.mean if w is None else w, np.int32(w is not None),
                    *sums, np.int32(self.training), sdt.type(n * length), np.int32(n), np.int32(c),
                    np.int32(length), bits(gx)))
        # The parameter gradients in the parameters' dtypes (float32 sums; 16-bit for a model.half()).
        gw = sum_gy_xhat.astype(xs[1].dtype, copy=False) if need_w and w is not None else None
        gb = sum_gy.astype(xs[2].dtype, copy=False) if need_b and xs[2] is not None else None
        return gx, gw, gb, None, None


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _as_tensor(value: Any, arg: str, x: Tensor) -> Optional[Tensor]:
    """A Tensor for a Tensor, NumPy or CuPy array (wrapping, not copying: running statistics are
    updated in place), or None."""
    if value is None or isinstance(value, Tensor):
        return value
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise ArgumentError(f"batch_norm: {arg} must be a Tensor, an array or None, got {type(value).__name__}")
    device = x.device if isinstance(value, type(x.data)) else array_device(value)
    return Tensor._wrap(value, device)


def batch_norm(input: Tensor, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization of an (N, C, ...) tensor, like ``torch.nn.functional.batch_norm``.

    ``training=True``: normalise each channel with the batch mean and biased variance, and, when
    ``running_mean``/``running_var`` (tensors or arrays of length C) are given, update them IN PLACE:
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the unbiased variance for
    ``running_var``). ``training=False``: normalise with the running statistics. Then
    ``y = x_hat * weight + bias`` per channel where ``weight``/``bias`` are given.
    """
    op = "batch_norm"
    require_input(op, input, 2, None, "N, C, ...", halves=True)
    shape = input.shape
    if not isinstance(training, (bool, np.bool_)):
        raise ArgumentError(f"{op}: training must be True or False, got {training!r}")
    if not _is_number(momentum) or not 0.0 <= momentum <= 1.0:
        raise ArgumentError(f"{op}: momentum must be a number in [0, 1], got {momentum!r}")
    if not _is_number(eps) or not eps > 0.0:
        raise ArgumentError(f"{op}: eps must be a number > 0, got {eps!r}")

    channels = shape[1]
    args = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    tensors = {name: _as_tensor(value, name, input) for name, value in args.items()}
    for name, t in tensors.items():
        if t is None:
            continue
        if t.ndim != 1:
            raise ShapeError(f"{op}: {name} must be 1-D with one value per channel, got shape {t.shape} "
                             f"(input shape {shape})")
        if t.shape[0] != channels:
            raise ShapeError(f"{op}: input has {channels} channels, expected {t.shape[0]} "
                             f"(input shape {shape}, {name} shape {t.shape})")
        if not is_floating_point(t.dtype):
            raise ArgumentError(f"{op}: {name} must have a floating-point dtype, got {t.dtype}")
    # A 16-bit input may come with float32 parameters (autocast over a float32 model), as in PyTorch.
    allowed = {input.dtype} | ({np.dtype(np.float32)} if input.dtype.itemsize == 2 else set())
    for name in ("weight", "bias"):
        t = tensors[name]
        if t is not None and t.dtype not in allowed:
            expected = " or ".join(str(d) for d in sorted(allowed, key=str))
            raise ArgumentError(f"{op}: {name} has dtype {t.dtype}, expected {expected} (the input is "
                                f"{input.dtype}); convert one with .to(dtype=...)")
    rm, rv = tensors["running_mean"], tensors["running_var"]
    if (rm is None) != (rv is None):
        raise ArgumentError(f"{op}: pass both running_mean and running_var, or neither "
                            f"(got running_mean={'None' if rm is None else 'given'}, "
                            f"running_var={'None' if rv is None else 'given'})")
    for name, t in (("running_mean", rm), ("running_var", rv)):
        if t is not None and t.requires_grad:
            raise ArgumentError(f"{op}: {name} must not require grad (running statistics are buffers, "
                                f"not parameters)")
        if training and t is not None and isinstance(t.data, np.ndarray) and not t.data.flags.writeable:
            raise ArgumentError(f"{op}: {name} is read-only, but training updates it in place")
    if not training and rm is None:
        raise ArgumentError(f"{op}: running_mean and running_var are required when training=False "
                            f"(eval mode normalises with them); pass them, or training=True")
    if training and input.numel() // channels == 1:
        raise ArgumentError(f"{op}: expected more than 1 value per channel when training, got input "
                            f"shape {shape}")
    return BatchNorm(bool(training), float(momentum), float(eps))(input, tensors["weight"], tensors["bias"], rm, rv)
