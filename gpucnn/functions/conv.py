"""Convolutions: conv2d (NCHW) and conv1d (NCL, run as conv2d with H = 1), PyTorch semantics.

Like PyTorch these are cross-correlations: ``y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] *
xpad[n, c, i*sh + u*dh, j*sw + v*dw]``.

The NumPy path (device cpu), forward_cpu/backward_cpu, is :class:`._conv_numpy.ConvNumpy` (GEMMs over
activations kept laid out (C, H, W, N) in memory); the CUDA kernels (devices cuda and emu) are launched
below, forward_gpu/backward_gpu, from ``kernels_cuda/conv.cu``. The two share the geometry here.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional

import numpy as np

from .. import autotune, dtypes
from ..amp.autocast_mode import autocast_function
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..kernels import kernel_source
from ..precision import get_float32_matmul_precision, round_tf32, rounded, tf32_operands
from ..tensor import Tensor
from . import _conv_tc, _conv_tiles
from ._conv_numpy import ConvNumpy
from ._conv_tiles import Tile
from ._conv_util import (PADDING_MODES, effective_kernel, format_param, format_size, ntuple, out_size,
                         resolve_padding)

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), dtypes.float16, dtypes.bfloat16)
#: float16/bfloat16 convolutions compute in float32 (the products of halves are exact in float32, the
#: sums accumulate in float32, the result is rounded once to the input's dtype: what a tensor core's
#: fp32-accumulating MMA gives), and their gradients come back in the half dtype
_HALVES = (dtypes.float16, dtypes.bfloat16)


class Conv2d(ConvNumpy, Function):
    """2-D cross-correlation of NCHW ``x`` with ``w`` (C_out, C_in, kh, kw) plus an optional bias (C_out,).

    Arguments are already validated and normalised (see :func:`conv2d`): ``stride`` and ``dilation`` are
    (h, w) pairs, ``padding`` is (top, bottom, left, right).
    """

    name = "conv2d"

    def __init__(self, stride: tuple[int, int] = (1, 1), padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                 dilation: tuple[int, int] = (1, 1), padding_mode: str = "zeros", name: Optional[str] = None,
                 groups: int = 1):
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.padding_mode = padding_mode
        self.groups = groups
        if name is not None:
            self.name = name  # "conv1d" when conv1d runs through this op

    @property
    def depthwise(self) -> bool:
        """groups == C_in > 1 (known once the geometry is set): the direct depthwise paths run it."""
        return self.groups > 1 and self.groups == self.C

    # -- precision: under "high", both operands of each GEMM rounded to TF32 (gpucnn.precision) -----
    def forward(self, xs):
        x, w, b = xs
        # (decided once: backward runs as its forward did) the tensor-core kernels round their operands
        # themselves; elsewhere "high" rounds them here, for the NumPy path and the SIMT kernels alike
        self.tc = tensor_core_kind(self.device, x.dtype, self.groups)
        self.tf32 = tf32_operands(x.dtype) and self.tc is None
        return super().forward(rounded(self.xp, (x, w), self.tf32) + (b,))

    def backward(self, xs, gy):
        x, w, b = xs
        if not self.tf32:
            return super().backward(xs, gy)
        gx, gw, gb = super().backward(rounded(self.xp, (x, w), True) + (b,), round_tf32(self.xp, gy))
        if gb is not None:  # the bias gradient is a sum, not a GEMM: of the exact gy
            gb = gy.sum(axis=(0, 2, 3), dtype=gy.dtype)
        return gx, gw, gb

    # -- geometry -------------------------------------------------------------------------------
    def _geometry(self, x_shape: tuple, w_shape: tuple) -> None:
        N, C, H, W = x_shape
        _, _, kh, kw = w_shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        pt, pb, pl, pr = self.padding
        self.C = C
        self.Hp, self.Wp = H + pt + pb, W + pl + pr
        self.Ho = out_size(H, kh, sh, dh, pt, pb)
        self.Wo = out_size(W, kw, sw, dw, pl, pr)
        self.kh, self.kw = kh, kw

    # -- CUDA kernels (devices cuda and emu): kernels_cuda/conv.cu -------------------------------
    def _kernel(self, name: str, dtype: Any, tile: Tile) -> Any:
        return self.device.kernel("conv", name, T=_CTYPES[np.dtype(dtype)], **tile.defines)

    def _tiled(self, gemm: str, dtype: Any, geo: tuple, launch: Callable[[Tile], Any]) -> Any:
        """``launch(tile)`` with the tile for this layer's ``gemm`` pass: ``TILE`` (or GPUCNN_CONV_TILE)
        when set, else the autotuner's choice for the shape (the default tile when tuning is off). The
        choice is per layer shape, not per batch size (``geo[0]``): a last partial batch, or evaluation at
        another batch size, reuses it instead of timing every candidate again."""
        tile = _forced_tile()
        if tile is None:
            key = (f"conv.cu {_conv_source_hash()} | {gemm} {np.dtype(dtype).name} | geometry {geo[1:]} "
                   f"padding {self.padding} {self.padding_mode}" + (f" groups {self.groups}" if self.groups > 1 else ""))
            tile = autotune.pick(self.device, key, _conv_tiles.CANDIDATES, launch)
        return launch(tile)

    def _kernel_geometry(self, x_shape: tuple, w_shape: tuple) -> tuple:
        """The int32 scalars every conv kernel takes after its arrays: N, C, H, W, C_out, kH, kW, OH, OW,
        sh, sw, dh, dw (padding and mode follow, in a per-kernel order), C and C_out per group."""
        self._geometry(x_shape, w_shape)
        N, C, H, W = x_shape
        Co, _, kh, kw = w_shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        G = self.groups
        return N, C // G, H, W, Co // G, kh, kw, self.Ho, self.Wo, sh, sw, dh, dw

    def _check_int32(self, **sizes: int) -> None:
        """The kernels index with 32-bit ints: every array size and GEMM extent (plus a tile of headroom for
        the rounding-up of tile loops) must stay below 2**31."""
        for what, size in sizes.items():
            if size > _INT32_LIMIT:
                raise ShapeError(f"{self.name}: {what.replace('_', ' ')} is {size:,}, more than the CUDA "
                                 f"kernels' 32-bit index limit ({_INT32_LIMIT:,}); split the batch into "
                                 f"smaller ones")

    def forward_gpu(self, xs):
        xp = self.xp
        if self.tc:
            return _conv_tc.conv2d_tc_forward(self.device, *xs, *self._tc_geometry())
        x, w, b = (None if a is None else xp.ascontiguousarray(a) for a in xs)
        geo = self._kernel_geometry(x.shape, w.shape)
        N, Cg, H, W, Cog, kh, kw, Ho, Wo = geo[:9]
        G, Co = self.groups, w.shape[0]
        pt, _, pl, _ = self.padding
        Q, K = N * Ho * Wo, Cg * kh * kw
        self._check_int32(input_size=x.size, weight_size=w.size, output_size=Q * Co, gemm_N=Q, gemm_K=K)
        y = xp.empty((N, Co, Ho, Wo), dtype=x.dtype)
        # No bias: a dummy array and has_bias = 0 (CuPy < 14 passes None as a garbage pointer, cupy#9046).
        bias = (b, 1) if b is not None else (xp.zeros(1, dtype=x.dtype), 0)
        mode = _MODE_INDEX[self.padding_mode]
        if self.depthwise:
            args = (x, w, bias[0], np.int32(bias[1]), y) + _i32(N, G, H, W, Cog, *geo[5:], pt, pl, mode)
            self._dw_kernel("depthwise_forward", x.dtype)((_cdiv(y.size, _DW_THREADS), 1, 1), (_DW_THREADS, 1, 1), args)
            return y
        args = (x, w, bias[0], np.int32(bias[1]), y) + _i32(*geo, pt, pl, mode, G)

        def launch(tile: Tile) -> None:
            self._kernel("conv2d_forward", x.dtype, tile)((_cdiv(Q, tile.bn), _cdiv(Cog, tile.bm), G), tile.block, args)

        self._tiled("forward", x.dtype, geo, launch)
        return y

    def backward_gpu(self, xs, gy):
        xp = self.xp
        x, w, b = xs
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        w = xp.ascontiguousarray(w)
        gy = xp.ascontiguousarray(gy, dtype=w.dtype)  # (the kernels read gy as T*, like x)
        if need_w:  # (x's values are read for the weight gradient only)
            x = xp.ascontiguousarray(x)
        if self.tc:
            return self._tc_backward(x, w, b, gy, need_x, need_w, need_b)
        gx = self.data_grad_gpu(gy, w, x.shape) if need_x else None
        gw = self.filter_grad_gpu(x, gy, w.shape) if need_w else None
        gb = None
        if need_b and b is not None:
            N, Co, Ho, Wo = gy.shape
            gb = self._bias_grad(gy, N, Co, Ho * Wo)
        return gx, gw, gb

    def data_grad_gpu(self, gy, w, x_shape: tuple):
        """The input gradient (N, C, H, W) from gy and w alone (also a transposed conv's forward): the
        tensor-core GEMM when this op runs on them, else the depthwise gather or the SIMT GEMM
        (M = C_in/G, N = batch*H*W, K = C_out/G*kH*kW per group; a gather: one thread per element of gx)."""
        xp = self.xp
        w, gy = xp.ascontiguousarray(w), xp.ascontiguousarray(gy)
        if self.tc:
            return _conv_tc.conv2d_tc_backward_data(self.device, gy, w, tuple(x_shape), *self._tc_geometry())
        geo = self._kernel_geometry(tuple(x_shape), w.shape)
        N, Cg, H, W, Cog, kh, kw, Ho, Wo = geo[:9]
        G, C, size = self.groups, x_shape[1], int(np.prod(x_shape))
        pt, pb, pl, pr = self.padding
        mode = _MODE_INDEX[self.padding_mode]
        self._check_int32(input_size=size, weight_size=w.size, output_size=gy.size, gemm_N=size // C,
                          gemm_K=Cog * kh * kw)
        gx = xp.empty(tuple(x_shape), dtype=w.dtype)
        if self.depthwise:
            args = (gy, w, gx) + _i32(N, G, H, W, Cog, *geo[5:], pt, pb, pl, pr, mode)
            self._dw_kernel("depthwise_backward_data", w.dtype)((_cdiv(size, _DW_THREADS), 1, 1), (_DW_THREADS, 1, 1), args)
            return gx
        args = (gy, w, gx) + _i32(*geo, pt, pb, pl, pr, mode, G)

        def launch(tile: Tile) -> None:
            self._kernel("conv2d_backward_data", w.dtype, tile)(
                (_cdiv(size // C, tile.bn), _cdiv(Cg, tile.bm), G), tile.block, args)

        self._tiled("backward_data", w.dtype, geo, launch)
        return gx

    def filter_grad_gpu(self, x, gy, w_shape: tuple):
        """The weight gradient (C_out, C_in/G, kH, kW) from x and gy alone (also a transposed conv's):
        the tensor-core GEMM when this op runs on them, else the depthwise reduction or the SIMT GEMM."""
        xp = self.xp
        x, gy = xp.ascontiguousarray(x), xp.ascontiguousarray(gy)
        if self.tc:
            return _conv_tc.conv2d_tc_backward_filter(self.device, x, gy, tuple(w_shape), *self._tc_geometry())
        geo = self._kernel_geometry(x.shape, tuple(w_shape))
        mode = _MODE_INDEX[self.padding_mode]
        if self.depthwise:
            N, _, H, W, m, kh, kw = geo[:7]
            pt, _, pl, _ = self.padding
            self._check_int32(input_size=x.size, output_size=gy.size)
            gw = xp.empty(tuple(w_shape), dtype=x.dtype)
            args = (x, gy, gw) + _i32(N, self.groups, H, W, m, *geo[5:], pt, pl, mode)
            self._dw_kernel("depthwise_backward_filter", x.dtype)((kh * kw, w_shape[0], 1), (_DW_THREADS, 1, 1), args)
            return gw
        self._check_int32(input_size=x.size, output_size=gy.size, gemm_N=max(geo[0] * geo[7] * geo[8], x.size))
        return self._tiled("backward_filter", x.dtype, geo, lambda tile: self._weight_grad(x, gy, w_shape, geo, mode, tile))

    def _dw_kernel(self, name: str, dtype: Any) -> Any:
        return self.device.kernel("depthwise", name, T=_CTYPES[np.dtype(dtype)])

    # -- the three GEMMs one at a time, on any device (a transposed conv runs on these) --------------
    def prepare(self, device: Any, dtype: Any) -> None:
        """Set up this op to run its passes directly (not through ``__call__``): the device, and the
        precision decision :meth:`forward` makes (``tc``, ``tf32``) for operands of ``dtype``."""
        self.device, self.xp = device, device.xp
        self.tc = tensor_core_kind(device, dtype, self.groups)
        self.tf32 = tf32_operands(dtype) and self.tc is None

    def output(self, x, w, b):
        """y = conv(x, w) + b on raw arrays (operands already rounded as ``tf32`` says)."""
        return self.forward_gpu((x, w, b)) if self.device.uses_kernels else self.forward_cpu((x, w, b))

    def data_grad(self, gy, w, x_shape: tuple):
        """The input gradient (N, C, H, W) from gy and w alone."""
        if self.device.uses_kernels:
            return self.data_grad_gpu(gy, w, x_shape)
        return self.data_grad_cpu(gy, w, tuple(x_shape))

    def filter_grad(self, x, gy, w_shape: tuple):
        """The weight gradient (C_out, C_in/groups, kH, kW) from x and gy alone."""
        if self.device.uses_kernels:
            return self.filter_grad_gpu(x, gy, w_shape)
        return self.filter_grad_cpu(x, gy, tuple(w_shape))

    # -- the tensor-core kernels (kernels_cuda/conv_tc.cu, functions/_conv_tc.py) ---------------------
    def _tc_geometry(self) -> tuple:
        return self.stride, self.padding, self.dilation, self.padding_mode

    def _tc_backward(self, x, w, b, gy, need_x, need_w, need_b):
        geo = self._tc_geometry()
        gx = _conv_tc.conv2d_tc_backward_data(self.device, gy, w, x.shape, *geo) if need_x else None
        gw = _conv_tc.conv2d_tc_backward_filter(self.device, x, gy, w.shape, *geo) if need_w else None
        gb = None
        if need_b and b is not None:  # a sum of the exact gy (in float32 for the 16-bit dtypes)
            N, Co, Ho, Wo = gy.shape
            gy32 = gy if np.dtype(gy.dtype) in _CTYPES else gy.astype(np.float32)
            gb = self._bias_grad(gy32, N, Co, Ho * Wo).astype(b.dtype, copy=False)
        return gx, gw, gb

    def _bias_grad(self, gy, N: int, Co: int, OHW: int):
        """gb: each channel's sum split over enough blocks to fill the GPU (one block per channel was 64
        blocks for an H100's 132 SMs); the splits' partial sums are added in split order."""
        xp, Q = self.xp, N * OHW
        splits = max(1, min(_cdiv(_BIAS_TARGET_BLOCKS, Co), Q // _BIAS_MIN_PER_BLOCK))
        chunk = _cdiv(Q, splits)
        splits = _cdiv(Q, chunk)  # no empty split
        threads = 32
        while threads < _REDUCE_THREADS and threads * 8 < chunk:
            threads *= 2
        gb = xp.empty((Co,), dtype=gy.dtype)
        part = gb if splits == 1 else xp.empty((splits, Co), dtype=gy.dtype)
        self._kernel("conv2d_backward_bias", gy.dtype, _conv_tiles.DEFAULT)(
            (Co, splits, 1), (threads, 1, 1), (gy, part) + _i32(N, Co, OHW, chunk))
        if splits > 1:
            self._kernel("conv2d_splitk_reduce", gy.dtype, _conv_tiles.DEFAULT)(
                (_cdiv(Co, _REDUCE_THREADS), 1, 1), (_REDUCE_THREADS, 1, 1), (part, gb) + _i32(splits, Co))
        return gb

    def _weight_grad(self, x, gy, w_shape, geo, mode, tile: Tile):
        """gw via GEMM M = C_out/G, N = C_in/G*kH*kW, K = batch*OH*OW per group (the groups and the splits
        share gridDim.z), split over K when the M x N tiles alone cannot fill the GPU (K is the large dim
        here); the splits' partial sums are added in a fixed order by a second kernel: deterministic."""
        xp = self.xp
        N, C, H, W, Co, kh, kw, Ho, Wo = geo[:9]
        G = self.groups
        pt, _, pl, _ = self.padding
        Q, Kf = N * Ho * Wo, C * kh * kw
        splits, k_per_split = _split_k(Q, Co * G, Kf, tile)
        self._check_int32(weight_grad_workspace=splits * G * Co * Kf, gemm_K=Q)
        kernel = self._kernel("conv2d_backward_filter", x.dtype, tile)
        grid = (_cdiv(Kf, tile.bn), _cdiv(Co, tile.bm), G * splits)
        gw = xp.empty(tuple(w_shape), dtype=x.dtype)
        out = gw if splits == 1 else xp.empty((splits, G * Co, Kf), dtype=x.dtype)
        kernel(grid, tile.block, (x, gy, out) + _i32(*geo, pt, pl, mode, k_per_split, G))
        if splits > 1:
            count = G * Co * Kf
            self._kernel("conv2d_splitk_reduce", x.dtype, tile)(
                (_cdiv(count, _REDUCE_THREADS), 1, 1), (_REDUCE_THREADS, 1, 1), (out, gw) + _i32(splits, count))
        return gw


# -- launch configuration of kernels_cuda/conv.cu ----------------------------------------------------
#: Force one tile shape for every conv GEMM (a :class:`~._conv_tiles.Tile`; None: the autotuner's choice,
#: see :mod:`gpucnn.autotune`). The GPUCNN_CONV_TILE environment variable ("64x64x16/8x4") sets it for
#: a process. Tests run every candidate through it.
TILE: Optional[Tile] = None
#: Mirrors conv.cu's CONV_REDUCE_THREADS default (tests/functions/test_conv_kernels.py checks it).
_REDUCE_THREADS = 256
#: Largest size the kernels' int32 index arithmetic handles: 2**31 - 1 less a margin for tile rounding.
_INT32_LIMIT = 2**31 - 1 - 4 * max(_conv_tiles.MAX_SIDE, _REDUCE_THREADS)
#: Split-K of the weight gradient: aim for this many blocks (about 2 per SM on a 132-SM H100) ...
_DW_TARGET_BLOCKS = 264
#: ... but give every split at least this many K-steps (BK each) ...
_DW_MIN_KSTEPS_PER_SPLIT = 8
#: ... and at most this many splits, with a workspace of at most this many elements.
_DW_MAX_SPLITS = 64
_DW_MAX_WORKSPACE = 1 << 24
#: The bias gradient: aim for this many blocks (4 per SM of an H100), each summing at least this many positions.
_BIAS_TARGET_BLOCKS = 528
_BIAS_MIN_PER_BLOCK = 2048
#: Mirrors depthwise.cu's DW_THREADS (the block size of its kernels).
_DW_THREADS = 256
_MODE_INDEX = {mode: i for i, mode in enumerate(PADDING_MODES)}  # CONV_PAD_ZEROS, ... in conv.cu
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def tensor_core_kind(device: Any, dtype: Any, groups: int = 1) -> Optional[str]:
    """The tensor-core kernels' kind ("tf32", "f16", "bf16") a conv of ``dtype`` runs with on ``device``
    now, or None: the NumPy path, float64, float32 under "highest", a GPU before sm_80 (which runs the
    SIMT kernels with the same arithmetic, and says so once), or a grouped conv (``groups`` > 1: the
    tensor-core kernels are dense; grouped and depthwise convs run the SIMT / depthwise kernels with the
    same rounding of the operands, TF32 or through float32 for the 16-bit dtypes)."""
    if not device.uses_kernels:
        return None
    kind = _conv_tc.tc_kind(dtype, get_float32_matmul_precision())
    if kind is None:
        return None
    if groups > 1:
        _say_once(f"conv2d: grouped {kind} convolutions run on the SIMT (or depthwise) kernels with the "
                  f"same operand rounding, not on the tensor cores (slower)")
        return None
    reason = _conv_tc.device_reason(device)
    if reason is not None:
        _say_once(f"conv2d: {reason}: {kind} convolutions run on the FP32 SIMT kernels instead (the same "
                  f"rounding of the operands, slower)")
        return None
    return kind


@functools.lru_cache(maxsize=None)
def _say_once(message: str) -> None:
    import warnings
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _i32(*values: int) -> tuple:
    return tuple(np.int32(v) for v in values)


def _forced_tile() -> Optional[Tile]:
    """``TILE``, else the tile GPUCNN_CONV_TILE names (ArgumentError when it names none that runs)."""
    if TILE is not None:
        return TILE
    text = os.environ.get("GPUCNN_CONV_TILE")
    if not text:
        return None
    try:
        tile = Tile.parse(text)
    except ValueError as e:
        raise ArgumentError(f"conv2d: GPUCNN_CONV_TILE: {e}") from None
    problems = tile.problems()
    if problems:
        raise ArgumentError(f"conv2d: GPUCNN_CONV_TILE={text!r} cannot run conv.cu: {'; '.join(problems)}")
    return tile


@functools.lru_cache(maxsize=1)
def _conv_source_hash() -> str:
    from kernels_cuda import KERNEL_DIR  # (conv.cu includes conv_pad.cuh: both decide what a tile computes)
    return autotune.source_hash(kernel_source("conv") + (KERNEL_DIR / "conv_pad.cuh").read_text())


def _split_k(Q: int, Co: int, Kf: int, tile: Tile = _conv_tiles.DEFAULT) -> tuple[int, int]:
    """(splits, K elements per split, a multiple of BK) for the weight gradient's reduction over Q."""
    ksteps = _cdiv(Q, tile.bk)
    tiles = _cdiv(Co, tile.bm) * _cdiv(Kf, tile.bn)
    splits = min(_cdiv(_DW_TARGET_BLOCKS, tiles), ksteps // _DW_MIN_KSTEPS_PER_SPLIT, _DW_MAX_SPLITS,
                 _DW_MAX_WORKSPACE // (Co * Kf))
    splits = max(1, splits)
    steps_per_split = _cdiv(ksteps, splits)
    splits = _cdiv(ksteps, steps_per_split)  # no empty split
    return splits, steps_per_split * tile.bk


# -- validation and the public functions ---------------------------------------------------------

def check_tensors(op: str, input: Any, weight: Any, bias: Any, nd: int, w_layout: str) -> None:
    """The checks every convolution's public function starts with (conv and transposed conv): tensors,
    ``nd + 2`` dims, a dtype the kernels take, one dtype for all."""
    in_layout = "(N, C_in, L)" if nd == 1 else "(N, C_in, H, W)"
    for arg, name in ((input, "input"), (weight, "weight"), (bias, "bias")):
        if not (isinstance(arg, Tensor) or (name == "bias" and arg is None)):
            raise ArgumentError(f"{op}: {name} must be a gpucnn Tensor{' or None' if name == 'bias' else ''}, "
                                f"got {type(arg).__name__}")
    if input.ndim != nd + 2:
        raise ShapeError(f"{op}: input must be {nd + 2}-D {in_layout}, got {input.ndim}-D shape {input.shape}")
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: weight must be {nd + 2}-D {w_layout}, got {weight.ndim}-D shape {weight.shape}")
    for arg, name in ((input, "input"), (weight, "weight"), (bias, "bias")):
        if arg is not None and arg.dtype not in _DTYPES:
            raise ArgumentError(f"{op}: {name} has dtype {arg.dtype}, expected float32, float64, float16 or "
                                f"bfloat16")
    for arg, name in ((weight, "weight"), (bias, "bias")):
        if arg is not None and arg.dtype != input.dtype:
            raise ArgumentError(f"{op}: input and {name} have different dtypes ({input.dtype} and {arg.dtype}); "
                                f"convert one with .to(dtype=...)")


def _validate(op: str, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
              padding_mode: Any, nd: int, groups: Any = 1) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...],
                                                                     tuple[int, ...], int]:
    """Check conv arguments for ``nd`` spatial dims; return (stride, ((before, after), ...), dilation,
    groups)."""
    w_layout = "(C_out, C_in, k)" if nd == 1 else "(C_out, C_in, kH, kW)"  # (C_in per group)
    check_tensors(op, input, weight, bias, nd, w_layout)
    shapes = f"(input shape {input.shape}, weight shape {weight.shape})"
    if input.shape[0] == 0:
        raise ShapeError(f"{op}: input has an empty batch (N = 0), expected at least one sample "
                         f"(input shape {input.shape})")
    if 0 in input.shape:
        raise ShapeError(f"{op}: input has a zero-size dim, expected all dims >= 1 (input shape {input.shape})")
    if 0 in weight.shape:
        raise ShapeError(f"{op}: weight has a zero-size dim, expected all dims >= 1 (weight shape {weight.shape})")
    (groups,) = ntuple(groups, 1, "groups", op, 1)
    if input.shape[1] % groups:
        raise ShapeError(f"{op}: input has {input.shape[1]} channels, not divisible by groups={groups} {shapes}")
    if weight.shape[0] % groups:
        raise ShapeError(f"{op}: weight has {weight.shape[0]} output channels, not divisible by groups={groups} "
                         f"{shapes}")
    if input.shape[1] != weight.shape[1] * groups:
        per = f" ({weight.shape[1]} per group x groups={groups})" if groups > 1 else ""
        raise ShapeError(f"{op}: input has {input.shape[1]} channels, expected {weight.shape[1] * groups}{per} "
                         f"{shapes}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},) "
                         f"(one value per output channel; weight shape {weight.shape})")
    strides = ntuple(stride, nd, "stride", op, 1)
    dilations = ntuple(dilation, nd, "dilation", op, 1)
    if padding_mode not in PADDING_MODES:
        raise ArgumentError(f"{op}: padding_mode must be one of {', '.join(repr(m) for m in PADDING_MODES)}, "
                            f"got {padding_mode!r}")
    sizes = tuple(input.shape[2:])
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str) and padding == "causal":
        if nd != 1:
            raise ArgumentError(f"{op}: padding='causal' is for 1-D convolutions (conv1d, Conv1d), got a "
                                f"{nd}-D one; use padding='same' or sizes")
        # Keras's causal: all of the padding before, so output t sees inputs <= t (stride 1: L outputs)
        pads: tuple[tuple[int, int], ...] = ((dilations[0] * (kernel[0] - 1), 0),)
    else:
        pads = resolve_padding(padding, sizes, kernel, strides, dilations, op)
    padded = tuple(n + a + b for n, (a, b) in zip(sizes, pads))
    pad_text = format_param([p for ab in pads for p in ab]) if any(a != b for a, b in pads) \
        else format_param([a for a, _ in pads])
    if padding_mode in ("reflect", "circular"):
        # reflect mirrors without repeating the edge: it needs padding < n; circular wraps once: <= n.
        limit_ok = (lambda p, n: p < n) if padding_mode == "reflect" else (lambda p, n: p <= n)
        if not all(limit_ok(p, n) for n, ab in zip(sizes, pads) for p in ab):
            rule = "smaller than" if padding_mode == "reflect" else "at most"
            raise ArgumentError(f"{op}: padding_mode {padding_mode!r} needs padding {rule} the input size in "
                                f"each spatial dim, got padding {pad_text} for input {format_size(sizes)}")
    eff = tuple(effective_kernel(k, d) for k, d in zip(kernel, dilations))
    if any(e > p for e, p in zip(eff, padded)):
        dil = f"dilation {format_param(dilations)}"
        if any(d > 1 for d in dilations):
            dil += f", effective {format_size(eff)}"
        raise ShapeError(f"{op}: kernel {format_size(kernel)} ({dil}) is larger than the padded input "
                         f"{format_size(padded)} (input {format_size(sizes)}, padding {pad_text})")
    return strides, pads, dilations, groups


@autocast_function("lower")
def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros") -> Tensor:
    """2-D convolution (cross-correlation) of ``input`` (N, C_in, H, W) with ``weight``
    (C_out, C_in/groups, kH, kW), PyTorch's ``F.conv2d`` (``padding_mode`` is gpucnn's addition).

    - ``bias``: (C_out,) or None.
    - ``stride``, ``dilation``: an int >= 1 or an (h, w) pair.
    - ``padding``: an int >= 0 or an (h, w) pair; ``"valid"`` (no padding); or ``"same"``: output size
      ``ceil(n / stride)`` per dim, as in Keras/TensorFlow, with the extra row/column (when the total
      padding is odd) at the bottom/right. At stride 1 (any kernel, any dilation) it is PyTorch's "same".
    - ``groups``: C_in and C_out split into that many groups, output group g reading input group g only
      (both divisible by it); ``groups == C_in`` is a depthwise convolution (C_out = m * C_in).
    - ``padding_mode``: ``"zeros"``, ``"reflect"`` (mirror without repeating the edge; padding < input
      size), ``"replicate"`` (repeat the edge) or ``"circular"`` (wrap around; padding <= input size).

    Returns (N, C_out, H_out, W_out) with ``H_out = floor((H + pad_h - (kH-1)*dilation_h - 1) / stride_h) + 1``.
    """
    strides, pads, dilations, groups = _validate("conv2d", input, weight, bias, stride, padding, dilation,
                                                 padding_mode, 2, groups)
    (pt, pb), (pl, pr) = pads
    return _in_float32(Conv2d(strides, (pt, pb, pl, pr), dilations, padding_mode, groups=groups), input, weight,
                       bias)


def _in_float32(op: Function, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``op(input, weight, bias)``; float16/bfloat16 run as such on the tensor-core kernels, elsewhere
    through float32 (see ``_HALVES``): the same arithmetic (exact products, FP32 sums, one rounding)."""
    if input.dtype not in _HALVES or tensor_core_kind(input.device, input.dtype, op.groups) is not None:
        return op(input, weight, bias)
    up = [None if t is None else t.to(dtypes.float32) for t in (input, weight, bias)]
    return op(*up).to(input.dtype)


@autocast_function("lower")
def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros") -> Tensor:
    """1-D convolution (cross-correlation) of ``input`` (N, C_in, L) with ``weight`` (C_out, C_in/groups, k).

    The arguments behave as in :func:`conv2d` along L (``stride``, ``padding``, ``dilation`` are ints, or
    1-tuples; ``padding="same"`` gives ``ceil(L / stride)`` outputs). ``padding="causal"`` (Keras's name,
    for WaveNet-style stacks) pads ``dilation * (k - 1)`` on the left only: output t reads inputs <= t,
    and at stride 1 the output is as long as the input. It runs as :func:`conv2d` on (N, C_in, 1, L), so
    both share one implementation.
    """
    (s,), ((pl, pr),), (d,), groups = _validate("conv1d", input, weight, bias, stride, padding, dilation,
                                                padding_mode, 1, groups)
    N, C, L = input.shape
    Co, Cg, k = weight.shape
    y = _in_float32(Conv2d((1, s), (0, 0, pl, pr), (1, d), padding_mode, name="conv1d", groups=groups),
                    input.reshape(N, C, 1, L), weight.reshape(Co, Cg, 1, k), bias)
    return y.reshape(N, Co, y.shape[3])
