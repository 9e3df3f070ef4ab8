"""Pooling: max (with PyTorch's ``return_indices``), average (``divisor_override``), adaptive average,
adaptive max, global average pooling and max unpooling (NCHW; 1-D variants as H = 1).

PyTorch semantics throughout (``torch.nn.functional.max_pool2d`` and friends). The NumPy path works on
strided sub-grids: a k x k window is k*k shifted, strided views of the (padded) input, one per window
offset, combined elementwise. That is ~20x faster than reshaping into windows and reducing over axes, and
handles overlapping windows (stride < kernel), dilation and ceil_mode with no special cases.

Max pooling records, per output, the offset of the FIRST maximum of its window (row-major scan order),
and its backward routes each output's gradient to exactly that one input element, as PyTorch does.
Feeding every tied maximum instead is wrong: on MNIST ~14 % of windows are exact ties (blank areas).
When the windows tile the input (stride = kernel, no padding or dilation: the usual 2x2 pooling) the
forward is a separable maximum (columns, then rows) and records nothing; the backward finds each
window's first element equal to its output, which is the same element unless the window holds a NaN
(then the scan decides). Large arrays are split over threads by their outer axis (gpucnn.workspace).

On the kernel devices (cuda, emu) the ops run ``kernels_cuda/pooling.cu``: one thread per output
element forward, and backward a gather (one thread per input element summing the outputs whose windows
hold it), so no atomics and deterministic results. Max and average pooling reproduce this NumPy path
bit for bit (same comparisons, same sums in the same order, same divisors; max pooling records the flat
input index of the first maximum instead of its window offset); adaptive and global average pooling
agree to rounding (see the kernels' comments). One difference: where a max-pool window holds a +0.0 and
a -0.0 as its maximum, the kernel keeps the first one and np.maximum may return the other (same value).
"""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import ArgumentError, ShapeError
from .. import workspace
from ..function import ON_NUMPY, Function
from ._checks import require_input
from ._kernel_types import bits, kernel_defines
from ._layout import axis_order, like
from ._conv_util import out_size
from ..tensor import Tensor

IntOrPair = Union[int, Sequence[int]]


# -- small helpers: argument parsing, output sizes, window slices -----------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _ntuple(value: Any, n: int, op: str, arg: str) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ``n`` ints) as an ``n``-tuple of ints."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    what = "an int" if n == 1 else f"an int or a sequence of {n} ints"
    raise ArgumentError(f"{op}: {arg} must be {what}, got {value!r}")


def _fmt(sizes: Sequence[int]) -> str:
    """(3, 3) -> '3x3'; (5,) -> '5'."""
    return "x".join(str(s) for s in sizes)


def _fmt_pad(pads: Sequence[int]) -> str:
    return str(pads[0]) if len(set(pads)) == 1 else str(tuple(pads))


def _check_bool(op: str, arg: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{op}: {arg} must be True or False, got {value!r}")
    return bool(value)


def _check_window(op: str, x: Tensor, n: int, kernel_size: Any, stride: Any, padding: Any,
                  dilation: Any = 1) -> tuple[tuple[int, ...], ...]:
    """Parse and check the window arguments of an ``n``-D pooling op; returns (kernel, stride, padding,
    dilation) as ``n``-tuples."""
    k = _ntuple(kernel_size, n, op, "kernel_size")
    s = k if stride is None else _ntuple(stride, n, op, "stride")
    p = _ntuple(padding, n, op, "padding")
    d = _ntuple(dilation, n, op, "dilation")
    if min(k) < 1:
        raise ArgumentError(f"{op}: kernel_size must be >= 1, got {kernel_size!r}")
    if min(s) < 1:
        raise ArgumentError(f"{op}: stride must be >= 1, got {stride!r}")
    if min(d) < 1:
        raise ArgumentError(f"{op}: dilation must be >= 1, got {dilation!r}")
    if min(p) < 0:
        raise ArgumentError(f"{op}: padding must be >= 0, got {padding!r}")
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise ArgumentError(f"{op}: padding {_fmt_pad(p)} is more than half the kernel size {_fmt(k)}; "
                            f"expected padding <= {_fmt_pad([ki // 2 for ki in k])}")
    size = x.shape[-n:]
    span = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    padded = tuple(si + 2 * pi for si, pi in zip(size, p))
    if any(w > q for w, q in zip(span, padded)):
        kernel = _fmt(k) if span == k else f"{_fmt(k)} with dilation {_fmt_pad(d)} (spanning {_fmt(span)})"
        raise ShapeError(f"{op}: kernel {kernel} is larger than the padded input {_fmt(padded)} "
                         f"(input {_fmt(size)}, padding {_fmt_pad(p)})")
    return k, s, p, d


# -- the CUDA kernel launches (kernels_cuda/pooling.cu; devices cuda and emu) -----------------------
#: threads per block of the one-thread-per-element kernels (POOL_THREADS in pooling.cu, the kernels'
#: __launch_bounds__) and of global average pooling (GAP_THREADS: 8 warps, one plane per warp)
_THREADS = 256
_GAP_THREADS = 256
_INT32_MAX = 2**31 - 1




def _check_int32(op: str, **sizes: int) -> None:
    """The kernels index with 32-bit ints: every size (an element count or a product they form) must fit."""
    for what, size in sizes.items():
        if size > _INT32_MAX:
            raise ShapeError(f"{op}: {what.replace('_', ' ')} is {size}, more than the CUDA kernels' "
                             f"32-bit indexing allows ({_INT32_MAX}); split the batch")


def _grid(total: int, threads: int = _THREADS) -> tuple[int]:
    return (max(1, -(-total // threads)),)


def _i32(*values: int) -> tuple[np.int32, ...]:
    return tuple(np.int32(v) for v in values)


class _Pool2d(Function):
    """Shared geometry of the windowed 2-D pooling ops: padded extent and one strided view per offset."""
    halves_in_float32 = ON_NUMPY  # (the kernels read and write 16 bits themselves)

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def _setup(self, x: np.ndarray) -> None:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        _, _, h, w = x.shape
        self.oh = out_size(h, kh, sh, dh, ph, ph, self.ceil_mode)
        self.ow = out_size(w, kw, sw, dw, pw, pw, self.ceil_mode)
        # Extent the windows reach in padded coordinates (ceil_mode may reach past the padding).
        self.hp = max(h + 2 * ph, (self.oh - 1) * sh + dh * (kh - 1) + 1)
        self.wp = max(w + 2 * pw, (self.ow - 1) * sw + dw * (kw - 1) + 1)
        # One (rows, cols) strided view per window offset, in row-major scan order of the window.
        self.windows = [(slice(i * dh, i * dh + (self.oh - 1) * sh + 1, sh),
                         slice(j * dw, j * dw + (self.ow - 1) * sw + 1, sw))
                        for i in range(kh) for j in range(kw)]

    def _pad(self, x: np.ndarray, fill: float) -> np.ndarray:
        n, c, h, w = x.shape
        ph, pw = self.padding
        if (self.hp, self.wp) == (h, w):
            return x
        out = np.full((n, c, self.hp, self.wp), fill, dtype=x.dtype)
        out[:, :, ph:ph + h, pw:pw + w] = x
        return out

    def _gpu_setup(self, x: Any) -> tuple[Any, dict, tuple[np.int32, ...]]:
        """For the kernels: (x as a C-contiguous array, the dtype's defines, the geometry arguments planes,
        H, W, OH, OW, kh, kw, sh, sw, ph, pw)."""
        x = self.xp.ascontiguousarray(x)
        self._setup(x)
        n, c, h, w = x.shape
        self.in_shape = x.shape
        _check_int32(self.name, input_elements=x.size, output_elements=n * c * self.oh * self.ow)
        geometry = _i32(n * c, h, w, self.oh, self.ow, *self.kernel_size, *self.stride, *self.padding)
        return x, kernel_defines(self.name, x.dtype), geometry

    def _crop(self, gxp: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        _, _, h, w = shape
        ph, pw = self.padding
        if gxp.shape[2:] == (h, w):
            return gxp
        return np.ascontiguousarray(gxp[:, :, ph:ph + h, pw:pw + w])


class MaxPool2d(_Pool2d):
    name = "max_pool2d"
    saves_output = True  # the tiled NumPy backward compares x with the kept y

    #: set by max_pool2d(return_indices=True): the NumPy path records the scan's argmax for every shape
    want_indices = False

    def _tiles(self, x: np.ndarray) -> bool:
        """Whether the windows tile ``x`` (stride = kernel, no padding or dilation, none past the edge):
        the common 2x2 pooling, which has a faster NumPy path."""
        (kh, kw), (h, w) = self.kernel_size, x.shape[2:]
        return (not self.want_indices and self.stride == self.kernel_size and self.padding == (0, 0) and self.dilation == (1, 1)
                and kh * kw > 1 and self.oh * kh <= h and self.ow * kw <= w)

    def forward_cpu(self, xs):
        x, = xs
        self._setup(x)
        if self._tiles(x):
            # Separable: the maximum over each window's columns, then over its rows (np.maximum propagates
            # NaN like the scan below). The backward finds each window's first maximum from x and y.
            (kh, kw), oh, ow = self.kernel_size, self.oh, self.ow
            y = np.empty_like(x[:, :, :oh, :ow])  # (in x's memory layout)

            def tile_max(s: tuple) -> None:
                rows = x[s][:, :, :oh * kh]
                m = np.maximum(rows[:, :, :, 0:ow * kw:kw], rows[:, :, :, 1:ow * kw:kw]) if kw > 1 \
                    else rows[:, :, :, :ow]
                for j in range(2, kw):
                    np.maximum(m, rows[:, :, :, j:ow * kw:kw], out=m)
                if kh == 1:
                    y[s] = m
                    return
                ys = y[s]
                np.maximum(m[:, :, 0::kh], m[:, :, 1::kh], out=ys)
                for i in range(2, kh):
                    np.maximum(ys, m[:, :, i::kh], out=ys)

            workspace.map_outer(tile_max, x)
            self.y = y
            return y
        self.y = None
        y, self.argmax = self._scan(x)
        return y

    def _scan(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y, the window offset of each output's first maximum), scanning the window offsets in order."""
        xp = self._pad(x, -np.inf)
        rows, cols = self.windows[0]
        y = xp[:, :, rows, cols].copy()
        # The window offset of each output's first maximum (strict '>' keeps the earliest of tied values).
        argmax = np.zeros(y.shape, np.uint8 if len(self.windows) <= 256 else np.int32)
        better = np.empty(y.shape, dtype=bool)
        for k, (rows, cols) in enumerate(self.windows[1:], 1):
            sub = xp[:, :, rows, cols]
            np.greater(sub, y, out=better)
            np.maximum(y, sub, out=y)  # (np.maximum also propagates NaN)
            np.copyto(argmax, k, where=better)
        return y, argmax

    def backward_cpu(self, xs, gy):
        x, = xs
        if self.y is not None and not np.isnan(self.y.sum()):
            return (self._tiled_backward(x, gy),)
        # The scan's argmax (recomputed for tiled windows that hold a NaN: the scan decides those).
        argmax = self._scan(x)[1] if self.y is not None else self.argmax
        gxp = np.zeros((x.shape[0], x.shape[1], self.hp, self.wp), dtype=gy.dtype)
        routed = np.empty_like(gy)
        for k, (rows, cols) in enumerate(self.windows):
            # Each output's gradient goes to its one recorded maximum; overlapping windows accumulate.
            np.multiply(gy, argmax == k, out=routed)
            gxp[:, :, rows, cols] += routed
        return (self._crop(gxp, x.shape),)

    def _tiled_backward(self, x: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """The gradient when the windows tile x: each output's gradient goes to the first position (in
        row-major order) of its window that equals the output. Without NaNs that is the scan's choice."""
        y = self.y
        if axis_order(gy) != axis_order(y):
            # e.g. NCHW from a Flatten while x and y are (C, N, H, W) in memory: elementwise ops over
            # operands of different layouts are ~3x slower than one copy into y's layout first.
            gy = like(y, gy)
        gx = np.empty_like(x, dtype=gy.dtype)  # (in x's memory layout)
        (kh, kw), oh, ow = self.kernel_size, self.oh, self.ow
        last = len(self.windows) - 1

        def route(s: tuple) -> None:
            gxs, xs_ = gx[s], x[s]
            gxs[:, :, oh * kh:] = 0  # rows and columns that no window covers
            gxs[:, :, :, ow * kw:] = 0
            ys, gys = y[s], gy[s]
            first = np.empty_like(ys, dtype=bool)  # (temporaries in y's memory layout: fast elementwise ops)
            rest = np.ones_like(ys, dtype=bool)  # windows whose maximum is still to be found
            for k, (rows, cols) in enumerate(self.windows):
                if k < last:
                    np.equal(xs_[:, :, rows, cols], ys, out=first)
                    np.logical_and(first, rest, out=first)
                    np.logical_xor(rest, first, out=rest)
                else:
                    first = rest  # a window with no maximum so far has it here
                np.multiply(gys, first, out=gxs[:, :, rows, cols])

        workspace.map_outer(route, x)
        return gx

    def indices(self, width: int, height: int) -> Any:
        """PyTorch's ``return_indices``: per output, the flat index ``ih * W + iw`` of its window's maximum
        within its (H, W) input plane, as int64 (call right after the forward). A window whose maximum is
        -inf padding (its real pixels all -inf) gets its first real pixel, as PyTorch's."""
        xp = self.xp
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        h0 = np.arange(self.oh) * sh - ph
        w0 = np.arange(self.ow) * sw - pw
        # The first real row/column of each window (padding <= kernel // 2: every window has one).
        first_h = h0 + (-(-np.maximum(-h0, 0) // dh)) * dh
        first_w = w0 + (-(-np.maximum(-w0, 0) // dw)) * dw
        fallback = xp.asarray((first_h[:, None] * width + first_w[None, :]).astype(np.int64))
        if hasattr(self, "argmax_index"):  # the kernels' flat index, -1 in the padding
            flat = self.argmax_index.astype(np.int64)
            return xp.where(flat < 0, fallback, flat)
        k = self.argmax.astype(np.int64)
        ih = h0[:, None] + (k // kw) * dh
        iw = w0[None, :] + (k % kw) * dw
        inside = (ih >= 0) & (ih < height) & (iw >= 0) & (iw < width)
        return np.where(inside, ih * width + iw, fallback)

    def forward_gpu(self, xs):
        x, defines, geometry = self._gpu_setup(xs[0])
        n, c = x.shape[:2]
        y = self.xp.empty((n, c, self.oh, self.ow), dtype=x.dtype)
        # The flat index (ih * W + iw) of each output's first maximum, -1 for a maximum in the padding.
        self.argmax_index = self.xp.empty(y.shape, dtype=np.int32)
        self.geometry, self.defines = geometry, defines
        kernel = self.device.kernel("pooling", "max_pool2d_forward", **defines)
        kernel(_grid(y.size), (_THREADS,), (bits(x), *geometry, *_i32(*self.dilation), bits(y), self.argmax_index))
        return y

    def backward_gpu(self, xs, gy):
        gy = self.xp.ascontiguousarray(gy, dtype=xs[0].dtype)
        gx = self.xp.empty(self.in_shape, dtype=gy.dtype)
        kernel = self.device.kernel("pooling", "max_pool2d_backward", **self.defines)
        kernel(_grid(gx.size), (_THREADS,),
               (bits(gy), self.argmax_index, *self.geometry, *_i32(*self.dilation), bits(gx)))
        return (gx,)


def _avg_divisor(size: int, out: int, kernel: int, stride: int, padding: int, count_include_pad: bool,
                 ) -> np.ndarray:
    """Per-output window sizes along one axis, by PyTorch's rule: a window is clipped to the padded
    input (windows that ceil_mode lets run past it count only up to it); ``count_include_pad=False``
    counts only real pixels."""
    div = np.empty(out, dtype=np.int64)
    for o in range(out):
        start = o * stride - padding
        end = min(start + kernel, size + padding)
        div[o] = end - start if count_include_pad else min(end, size) - max(start, 0)
    return div


class AvgPool2d(_Pool2d):
    name = "avg_pool2d"

    def __init__(self, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__(kernel_size, stride, padding, (1, 1), ceil_mode)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override  # (every window's divisor, when given; PyTorch's)

    def forward_cpu(self, xs):
        x, = xs
        self._setup(x)
        h, w = x.shape[2:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        div_h = _avg_divisor(h, self.oh, kh, sh, ph, self.count_include_pad)
        div_w = _avg_divisor(w, self.ow, kw, sw, pw, self.count_include_pad)
        self.divisor = np.multiply.outer(div_h, div_w).astype(x.dtype) if self.divisor_override is None else \
            x.dtype.type(self.divisor_override)
        xp = self._pad(x, 0.0)
        rows, cols = self.windows[0]
        y = xp[:, :, rows, cols].copy()
        for rows, cols in self.windows[1:]:
            y += xp[:, :, rows, cols]
        y /= self.divisor
        return y

    @property
    def _override(self) -> int:
        """The kernels' divisor_override argument: 0 for none (the public function refuses 0)."""
        return 0 if self.divisor_override is None else self.divisor_override

    def backward_cpu(self, xs, gy):
        x, = xs
        g = gy / self.divisor
        gxp = np.zeros((x.shape[0], x.shape[1], self.hp, self.wp), dtype=gy.dtype)
        for rows, cols in self.windows:
            gxp[:, :, rows, cols] += g
        return (self._crop(gxp, x.shape),)

    def forward_gpu(self, xs):
        x, defines, geometry = self._gpu_setup(xs[0])
        n, c = x.shape[:2]
        y = self.xp.empty((n, c, self.oh, self.ow), dtype=x.dtype)
        self.geometry, self.defines = geometry, defines
        kernel = self.device.kernel("pooling", "avg_pool2d_forward", **defines)
        kernel(_grid(y.size), (_THREADS,), (bits(x), *geometry, *_i32(self.count_include_pad, self._override),
                                            bits(y)))
        return y

    def backward_gpu(self, xs, gy):
        gy = self.xp.ascontiguousarray(gy, dtype=xs[0].dtype)
        gx = self.xp.empty(self.in_shape, dtype=gy.dtype)
        kernel = self.device.kernel("pooling", "avg_pool2d_backward", **self.defines)
        kernel(_grid(gx.size), (_THREADS,),
               (bits(gy), *self.geometry, *_i32(self.count_include_pad, self._override), bits(gx)))
        return (gx,)


def _adaptive_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """(out, size) averaging matrix: row i averages input[start:end] with PyTorch's
    start = floor(i*size/out), end = ceil((i+1)*size/out)."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class AdaptiveAvgPool2d(Function):
    name = "adaptive_avg_pool2d"
    halves_in_float32 = ON_NUMPY

    def __init__(self, output_size: tuple[int, int]) -> None:
        self.output_size = output_size

    def forward_cpu(self, xs):
        x, = xs
        if self.output_size == (1, 1):
            return x.mean(axis=(2, 3), keepdims=True)
        h, w = x.shape[2:]
        oh, ow = self.output_size
        # y = Ph @ x @ Pw^T: rows then columns averaged over their (possibly overlapping) ranges.
        self.ph = _adaptive_matrix(h, oh, x.dtype)
        self.pw = _adaptive_matrix(w, ow, x.dtype)
        return self.ph @ x @ self.pw.T

    def backward_cpu(self, xs, gy):
        x, = xs
        if self.output_size == (1, 1):
            gx = np.empty_like(x, dtype=gy.dtype)
            gx[...] = gy / (x.shape[2] * x.shape[3])
            return (gx,)
        return (self.ph.T @ gy @ self.pw,)

    def forward_gpu(self, xs):
        x = self.xp.ascontiguousarray(xs[0])
        n, c, h, w = x.shape
        if self.output_size == (1, 1):  # global average pooling (a per-plane reduction)
            return _global_avg_pool_gpu(self, x).reshape(n, c, 1, 1)
        oh, ow = self.output_size
        _check_int32(self.name, input_elements=x.size, output_elements=n * c * oh * ow,
                     H_times_output_height=h * oh, W_times_output_width=w * ow)
        y = self.xp.empty((n, c, oh, ow), dtype=x.dtype)
        kernel = self.device.kernel("pooling", "adaptive_avg_pool2d_forward", **kernel_defines(self.name, x.dtype))
        kernel(_grid(y.size), (_THREADS,), (bits(x), *_i32(n * c, h, w, oh, ow), bits(y)))
        return y

    def backward_gpu(self, xs, gy):
        x = xs[0]
        n, c, h, w = x.shape
        gy = self.xp.ascontiguousarray(gy, dtype=x.dtype)
        if self.output_size == (1, 1):
            return (_global_avg_pool_backward_gpu(self, x.shape, gy),)
        gx = self.xp.empty(x.shape, dtype=gy.dtype)
        kernel = self.device.kernel("pooling", "adaptive_avg_pool2d_backward", **kernel_defines(self.name, x.dtype))
        kernel(_grid(gx.size), (_THREADS,), (bits(gy), *_i32(n * c, h, w, *self.output_size), bits(gx)))
        return (gx,)


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins along one axis: bin i is [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class AdaptiveMaxPool2d(Function):
    """The maximum of each of PyTorch's adaptive bins (``adaptive_avg_pool2d``'s, which may overlap); the
    gradient of an output goes to the FIRST maximum of its bin (row-major; the first NaN where the bin
    holds one). ``self.index`` keeps, per output, the flat index ih * W + iw of that element (int64 on
    the NumPy path, int32 from the kernels), which ``return_indices`` returns."""
    name = "adaptive_max_pool2d"
    halves_in_float32 = ON_NUMPY  # (the kernels read and write 16 bits themselves)

    def __init__(self, output_size: tuple[int, int]) -> None:
        self.output_size = output_size

    def reads_inputs(self):
        return ()  # (backward needs only the recorded indices)

    def forward_cpu(self, xs):
        x, = xs
        n, c, h, w = x.shape
        oh, ow = self.output_size
        y = np.empty((n, c, oh, ow), dtype=x.dtype)
        self.index = index = np.empty((n, c, oh, ow), dtype=np.int64)
        for i, (hs, he) in enumerate(_bins(h, oh)):
            for j, (ws, we) in enumerate(_bins(w, ow)):
                block = x[:, :, hs:he, ws:we].reshape(n, c, -1)
                a = block.argmax(axis=-1)  # (the first maximum; the first NaN where there is one)
                y[:, :, i, j] = np.take_along_axis(block, a[..., None], axis=-1)[..., 0]
                index[:, :, i, j] = (hs + a // (we - ws)) * w + ws + a % (we - ws)
        return y

    def backward_cpu(self, xs, gy):
        n, c, h, w = xs[0].shape
        gx = np.zeros((n * c, h * w), dtype=gy.dtype)
        rows = np.arange(n * c)[:, None]
        # np.add.at adds in index order: the outputs row-major, as the kernel's gather visits them.
        np.add.at(gx, (rows, self.index.reshape(n * c, -1)), np.ascontiguousarray(gy).reshape(n * c, -1))
        return (gx.reshape(n, c, h, w),)

    def forward_gpu(self, xs):
        x = self.xp.ascontiguousarray(xs[0])
        n, c, h, w = x.shape
        oh, ow = self.output_size
        _check_int32(self.name, input_elements=x.size, output_elements=n * c * oh * ow,
                     H_times_output_height=h * oh, W_times_output_width=w * ow)
        y = self.xp.empty((n, c, oh, ow), dtype=x.dtype)
        self.index = self.xp.empty(y.shape, dtype=np.int32)
        self.defines = kernel_defines(self.name, x.dtype)
        kernel = self.device.kernel("pooling", "adaptive_max_pool2d_forward", **self.defines)
        kernel(_grid(y.size), (_THREADS,), (bits(x), *_i32(n * c, h, w, oh, ow), bits(y), self.index))
        return y

    def backward_gpu(self, xs, gy):
        n, c, h, w = xs[0].shape
        gy = self.xp.ascontiguousarray(gy, dtype=xs[0].dtype)
        gx = self.xp.empty((n, c, h, w), dtype=gy.dtype)
        kernel = self.device.kernel("pooling", "adaptive_max_pool2d_backward", **self.defines)
        kernel(_grid(gx.size), (_THREADS,), (bits(gy), self.index, *_i32(n * c, h, w, *self.output_size), bits(gx)))
        return (gx,)


class MaxUnpool2d(Function):
    """The inverse of max pooling: zeros of (N, C, *output_size) with each input value written at its
    flat index ``ih * W + iw`` of its plane (PyTorch's ``max_unpool2d``); the gradient reads ``gy`` back
    at the same indices. Array code (``xp``): the same on every device. Where two inputs of a plane
    name the same index the later one (in row-major order) is written, and both read its gradient."""
    name = "max_unpool2d"
    halves_in_float32 = True  # (copies only: exact in float32; CuPy has no bfloat16)

    def __init__(self, indices: Any, output_size: tuple[int, int]) -> None:
        self.index = indices  # (N, C, h, w) int64 array, on the input's device
        self.output_size = output_size

    def reads_inputs(self):
        return ()

    def forward(self, xs):
        x, = xs
        n, c = x.shape[:2]
        oh, ow = self.output_size
        y = self.xp.zeros((n * c, oh * ow), dtype=x.dtype)
        rows = self.xp.arange(n * c)[:, None]
        y[rows, self.index.reshape(n * c, -1)] = x.reshape(n * c, -1)
        return y.reshape(n, c, oh, ow)

    def backward(self, xs, gy):
        x, = xs
        n, c = x.shape[:2]
        rows = self.xp.arange(n * c)[:, None]
        return (gy.reshape(n * c, -1)[rows, self.index.reshape(n * c, -1)].reshape(x.shape),)


class GlobalAvgPool2d(Function):
    name = "global_avg_pool2d"
    halves_in_float32 = ON_NUMPY

    def forward_cpu(self, xs):
        return xs[0].mean(axis=(2, 3))

    def backward_cpu(self, xs, gy):
        x, = xs
        gx = np.empty_like(x, dtype=gy.dtype)
        gx[...] = (gy / (x.shape[2] * x.shape[3]))[:, :, None, None]
        return (gx,)

    def forward_gpu(self, xs):
        return _global_avg_pool_gpu(self, self.xp.ascontiguousarray(xs[0]))

    def backward_gpu(self, xs, gy):
        x = xs[0]
        return (_global_avg_pool_backward_gpu(self, x.shape, self.xp.ascontiguousarray(gy, dtype=x.dtype)),)


def _global_avg_pool_gpu(op: Function, x: Any) -> Any:
    """(N, C) means of the (N, C, H, W) C-contiguous ``x``: one warp per plane."""
    n, c, h, w = x.shape
    _check_int32(op.name, input_elements=x.size)
    y = op.xp.empty((n, c), dtype=x.dtype)
    kernel = op.device.kernel("pooling", "global_avg_pool2d_forward", **kernel_defines(op.name, x.dtype))
    kernel(_grid(n * c, _GAP_THREADS // 32), (_GAP_THREADS,), (bits(x), *_i32(n * c, h * w), bits(y)))
    return y


def _global_avg_pool_backward_gpu(op: Function, shape: tuple[int, ...], gy: Any) -> Any:
    """The (N, C, H, W) gradient of global average pooling for the C-contiguous gradient ``gy`` of
    its N * C means (any shape holding them)."""
    n, c, h, w = shape
    gx = op.xp.empty(shape, dtype=gy.dtype)
    kernel = op.device.kernel("pooling", "global_avg_pool2d_backward", **kernel_defines(op.name, gy.dtype))
    kernel(_grid(gx.size), (_THREADS,), (bits(gy), *_i32(n * c, h * w), bits(gx)))
    return gx


# -- the public functions: validate, then run the op ------------------------------------------------
def _indices_tensor(op: MaxPool2d, input: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The ``return_indices`` output of a max pooling op just run on ``input`` (int64, no gradient)."""
    h, w = input.shape[-2:] if input.ndim == 4 else (1, input.shape[-1])
    return Tensor._wrap(op.indices(w, h).reshape(shape), input.device)


def _check_divisor(op: str, divisor_override: Any) -> Optional[int]:
    if divisor_override is None:
        return None
    if not _is_int(divisor_override) or divisor_override == 0:
        raise ArgumentError(f"{op}: divisor_override must be None or a nonzero integer (every window's "
                            f"divisor), got {divisor_override!r}")
    if abs(int(divisor_override)) > _INT32_MAX:
        raise ArgumentError(f"{op}: divisor_override must fit in 32 bits, got {divisor_override!r}")
    return int(divisor_override)


def max_pool2d(input: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """2-D max pooling of an (N, C, H, W) tensor, like ``torch.nn.functional.max_pool2d``.

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with -inf. The
    gradient of each output goes to the first maximum of its window (row-major order). With
    ``return_indices=True`` also returns, as int64, the flat index ``ih * W + iw`` of that maximum in its
    input plane (what ``max_unpool2d`` takes).
    """
    op = "max_pool2d"
    require_input(op, input, 4, 4, "N, C, H, W", halves=True)
    k, s, p, d = _check_window(op, input, 2, kernel_size, stride, padding, dilation)
    ceil_mode = _check_bool(op, "ceil_mode", ceil_mode)
    if not _check_bool(op, "return_indices", return_indices):
        return MaxPool2d(k, s, p, d, ceil_mode)(input)
    pool = MaxPool2d(k, s, p, d, ceil_mode)
    pool.want_indices = True
    y = pool(input)
    return y, _indices_tensor(pool, input, y.shape)


def avg_pool2d(input: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """2-D average pooling of an (N, C, H, W) tensor, like ``torch.nn.functional.avg_pool2d``.

    Zero padding; with ``count_include_pad=False`` each window's divisor counts only real pixels;
    ``divisor_override`` (a nonzero integer) divides every window's sum by itself instead.
    """
    op = "avg_pool2d"
    require_input(op, input, 4, 4, "N, C, H, W", halves=True)
    k, s, p, _ = _check_window(op, input, 2, kernel_size, stride, padding)
    ceil_mode = _check_bool(op, "ceil_mode", ceil_mode)
    count_include_pad = _check_bool(op, "count_include_pad", count_include_pad)
    divisor_override = _check_divisor(op, divisor_override)
    return AvgPool2d(k, s, p, ceil_mode, count_include_pad, divisor_override)(input)


def max_pool1d(input: Tensor, kernel_size: int, stride: Optional[int] = None, padding: int = 0,
               dilation: int = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """1-D max pooling of an (N, C, L) tensor (the 2-D op with H = 1); ``return_indices=True`` also
    returns the index (along L) of each window's maximum, as int64."""
    op = "max_pool1d"
    require_input(op, input, 3, 3, "N, C, L", halves=True)
    (k,), (s,), (p,), (d,) = _check_window(op, input, 1, kernel_size, stride, padding, dilation)
    ceil_mode = _check_bool(op, "ceil_mode", ceil_mode)
    return_indices = _check_bool(op, "return_indices", return_indices)
    n, c, length = input.shape
    pool = MaxPool2d((1, k), (1, s), (0, p), (1, d), ceil_mode)
    pool.want_indices = return_indices
    y = pool(input.reshape(n, c, 1, length))
    y = y.reshape(n, c, y.shape[-1])
    return (y, _indices_tensor(pool, input, y.shape)) if return_indices else y


def avg_pool1d(input: Tensor, kernel_size: int, stride: Optional[int] = None, padding: int = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """1-D average pooling of an (N, C, L) tensor (the 2-D op with H = 1). ``divisor_override`` as in
    :func:`avg_pool2d` (an addition: PyTorch's avg_pool1d has none)."""
    op = "avg_pool1d"
    require_input(op, input, 3, 3, "N, C, L", halves=True)
    (k,), (s,), (p,), _ = _check_window(op, input, 1, kernel_size, stride, padding)
    ceil_mode = _check_bool(op, "ceil_mode", ceil_mode)
    count_include_pad = _check_bool(op, "count_include_pad", count_include_pad)
    divisor_override = _check_divisor(op, divisor_override)
    n, c, length = input.shape
    y = AvgPool2d((1, k), (1, s), (0, p), ceil_mode, count_include_pad, divisor_override)(
        input.reshape(n, c, 1, length))
    return y.reshape(n, c, y.shape[-1])


def _adaptive_size(op: str, input: Tensor, output_size: Any) -> tuple[int, int]:
    """``output_size`` (an int, or a pair whose ``None`` keeps that input size) as a pair of ints >= 1."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        sizes = tuple(input.shape[2 + i] if v is None else v for i, v in enumerate(output_size))
    else:
        sizes = output_size
    out = _ntuple(sizes, 2, op, "output_size")
    if min(out) < 1:
        raise ArgumentError(f"{op}: output_size must be >= 1, got {output_size!r}")
    return out


def adaptive_avg_pool2d(input: Tensor, output_size: Union[int, Sequence[Optional[int]]]) -> Tensor:
    """Average pooling of an (N, C, H, W) tensor to (N, C, *output_size), like PyTorch's: output row i
    averages input rows floor(i*H/out) .. ceil((i+1)*H/out) - 1 (likewise columns). ``None`` in
    ``output_size`` keeps that input size; ``output_size=1`` is global average pooling (N, C, 1, 1)."""
    op = "adaptive_avg_pool2d"
    require_input(op, input, 4, 4, "N, C, H, W", halves=True)
    return AdaptiveAvgPool2d(_adaptive_size(op, input, output_size))(input)


def adaptive_max_pool2d(input: Tensor, output_size: Union[int, Sequence[Optional[int]]],
                        return_indices: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Max pooling of an (N, C, H, W) tensor to (N, C, *output_size) over the bins of
    :func:`adaptive_avg_pool2d`, like ``torch.nn.functional.adaptive_max_pool2d``. The gradient of an
    output goes to its bin's first maximum; ``return_indices=True`` also returns its flat index
    ``ih * W + iw`` in the input plane (int64)."""
    op = "adaptive_max_pool2d"
    require_input(op, input, 4, 4, "N, C, H, W", halves=True)
    out = _adaptive_size(op, input, output_size)
    return_indices = _check_bool(op, "return_indices", return_indices)
    pool = AdaptiveMaxPool2d(out)
    y = pool(input)
    if not return_indices:
        return y
    return y, Tensor._wrap(pool.index.astype(np.int64, copy=False), input.device)


def _unpool_size(op: str, input: Tensor, k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...],
                 output_size: Any) -> tuple[int, ...]:
    """PyTorch's unpooled size: (in - 1) * stride - 2 * padding + kernel per spatial dim, or
    ``output_size`` (its last len(k) entries), which must lie within a stride of that."""
    n = len(k)
    spatial = input.shape[-n:]
    default = tuple((i - 1) * si - 2 * pi + ki for i, ki, si, pi in zip(spatial, k, s, p))
    if output_size is None:
        sizes = default
    else:
        given = tuple(output_size) if isinstance(output_size, (tuple, list)) else output_size
        if isinstance(given, tuple) and len(given) in (n + 2, n + 1):
            given = given[-n:]
        sizes = _ntuple(given, n, op, "output_size")
        for size, d, si in zip(sizes, default, s):
            if not d - si < size < d + si:
                raise ShapeError(f"{op}: output_size {_fmt(sizes)} is not reachable from input {_fmt(spatial)}: "
                                 f"each size must be between {_fmt([a - b + 1 for a, b in zip(default, s)])} and "
                                 f"{_fmt([a + b - 1 for a, b in zip(default, s)])} (the default is {_fmt(default)})")
    if min(sizes) < 1:
        raise ShapeError(f"{op}: the output size {_fmt(sizes)} is empty (input {_fmt(spatial)}, kernel {_fmt(k)}, "
                         f"stride {_fmt(s)}, padding {_fmt_pad(p)})")
    return sizes


def _check_indices(op: str, input: Tensor, indices: Any, plane: int) -> Any:
    if not isinstance(indices, Tensor):
        raise ArgumentError(f"{op}: indices must be a gpucnn Tensor (the indices max pooling returned), got "
                            f"{type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: indices must have an integer dtype (int64, as max pooling returns), got "
                            f"{indices.dtype}")
    if indices.shape != input.shape:
        raise ShapeError(f"{op}: indices have shape {indices.shape}, expected the input's {input.shape}")
    if indices.device != input.device:
        raise ArgumentError(f"{op}: indices are on {indices.device}, the input on {input.device}")
    idx = indices.data.astype(np.int64, copy=False)
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= plane:
        bad = lo if lo < 0 else hi
        raise ArgumentError(f"{op}: index {bad} is out of range for output planes of {plane} elements "
                            f"(expected 0 <= index < {plane})")
    return idx


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """The partial inverse of :func:`max_pool2d` (``return_indices=True``), like
    ``torch.nn.functional.max_unpool2d``: zeros of (N, C, OH, OW) with ``input[n, c, i, j]`` at flat index
    ``indices[n, c, i, j]`` of its plane. OH = (H - 1) * stride - 2 * padding + kernel (likewise OW) unless
    ``output_size`` ((OH, OW) or (N, C, OH, OW)) says otherwise, within a stride of that."""
    op = "max_unpool2d"
    require_input(op, input, 4, 4, "N, C, H, W", halves=True)
    k = _ntuple(kernel_size, 2, op, "kernel_size")
    s = k if stride is None else _ntuple(stride, 2, op, "stride")
    p = _ntuple(padding, 2, op, "padding")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ArgumentError(f"{op}: kernel_size and stride must be >= 1 and padding >= 0, got kernel_size="
                            f"{kernel_size!r}, stride={stride!r}, padding={padding!r}")
    out = _unpool_size(op, input, k, s, p, output_size)
    idx = _check_indices(op, input, indices, out[0] * out[1])
    return MaxUnpool2d(idx, out)(input)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: int, stride: Optional[int] = None,
                 padding: int = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """The partial inverse of :func:`max_pool1d` (``return_indices=True``) on (N, C, L) tensors, like
    ``torch.nn.functional.max_unpool1d``: OL = (L - 1) * stride - 2 * padding + kernel."""
    op = "max_unpool1d"
    require_input(op, input, 3, 3, "N, C, L", halves=True)
    k = _ntuple(kernel_size, 1, op, "kernel_size")
    s = k if stride is None else _ntuple(stride, 1, op, "stride")
    p = _ntuple(padding, 1, op, "padding")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ArgumentError(f"{op}: kernel_size and stride must be >= 1 and padding >= 0, got kernel_size="
                            f"{kernel_size!r}, stride={stride!r}, padding={padding!r}")
    (ol,) = _unpool_size(op, input, k, s, p, output_size)
    idx = _check_indices(op, input, indices, ol)
    n, c, length = input.shape
    y = MaxUnpool2d(idx.reshape(n, c, 1, length), (1, ol))(input.reshape(n, c, 1, length))
    return y.reshape(n, c, ol)


def global_avg_pool2d(input: Tensor) -> Tensor:
    """The mean over H and W of an (N, C, H, W) tensor, as (N, C) (what a GlobalAvgPool2d layer feeds
    to a Dense layer, like Keras's GlobalAveragePooling2D)."""
    require_input("global_avg_pool2d", input, 4, 4, "N, C, H, W", halves=True)
    return GlobalAvgPool2d()(input)
