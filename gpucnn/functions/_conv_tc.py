"""Host side of the tensor-core convolution kernels (``kernels_cuda/conv_tc.cu``): which dtypes and devices
run them, the launch of each pass, the workspaces.

The three passes are functions on raw arrays (NumPy on ``emu``, CuPy on ``cuda``), so that
:mod:`gpucnn.functions.conv` can call them from ``forward_gpu`` / ``backward_gpu`` in place of the SIMT
kernels when :func:`tc_kind` says so:

- float32 under ``set_float32_matmul_precision("high")``: TF32 operands (the kernel rounds x, w, gy with
  ``cvt.rna.tf32.f32`` as it reads them), FP32 accumulation, float32 result;
- float16 / bfloat16: the 16-bit MMA, FP32 accumulation, the result rounded once to the input dtype.

float64, float32 under "highest" and GPUs before sm_80 keep the SIMT kernels of ``conv.cu``.

Geometry arguments are conv.py's: ``stride`` (sh, sw), ``padding`` (top, bottom, left, right), ``dilation``
(dh, dw), ``padding_mode`` one of ``PADDING_MODES``; conv1d is conv2d with H = 1. The arguments must
already be valid (conv.py's ``_validate``): here only what the kernels themselves need is checked.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, ShapeError
from ._conv_util import PADDING_MODES, out_size

#: CONV_TC_ELEM of conv_tc.cu per kind
ELEM = {"tf32": 0, "f16": 1, "bf16": 2}
#: conv_tc.cu's block tile (TC_BM = TC_BN), threads per block and K-step per kind (TC_BK)
TILE = 64
THREADS = 128
KSTEP = {"tf32": 16, "f16": 32, "bf16": 32}
#: conv_tc_fold / conv_tc_splitk_reduce block size
_SIMT_THREADS = 256
#: split-K of the weight gradient: aim for about 2 blocks per SM of a 132-SM H100, give each split at
#: least this many K-steps, and keep the float32 workspace below this many elements
_TARGET_BLOCKS = 264
_MIN_STEPS_PER_SPLIT = 8
_MAX_SPLITS = 64
_MAX_WORKSPACE = 1 << 24
#: the kernels index with int32; keep a tile of headroom for the rounded-up tile loops
_INT32_LIMIT = 2**31 - 1 - 4 * TILE


def tc_kind(dtype: Any, precision: str) -> Optional[str]:
    """The tensor-core path for operands of ``dtype`` under float32 ``precision`` ("highest" | "high"):
    "tf32", "f16", "bf16", or None (the SIMT kernels: float64, or float32 under "highest")."""
    d = np.dtype(dtype)
    if d == dtypes.float16:
        return "f16"
    if d == dtypes.bfloat16:
        return "bf16"
    if d == dtypes.float32 and precision == "high":
        return "tf32"
    return None


def device_reason(device: Any) -> Optional[str]:
    """Why ``device`` cannot run the tensor-core kernels (None when it can): they need sm_80 or newer
    (cp.async, TF32/BF16 mma.sync); ``emu`` runs them."""
    if device.name == "emu":
        return None
    if device.name != "cuda":
        return f"device {device.name!r} runs no CUDA kernels"
    import cupy
    cc = int(cupy.cuda.Device().compute_capability)
    if cc < 80:
        return (f"the tensor-core convolution kernels need compute capability 8.0 or newer (cp.async, TF32 and "
                f"BF16 mma.sync); this GPU has {cc // 10}.{cc % 10}")
    return None


def _kernel(device: Any, name: str, kind: str) -> Any:
    return device.kernel("conv_tc", name, CONV_TC_ELEM=ELEM[kind])


def _kind_of(op: str, *arrays: Any) -> str:
    """The kind of the operands (float32 -> "tf32": the caller decided that precision is "high"), which
    must share one dtype."""
    d = np.dtype(arrays[0].dtype)
    for a in arrays[1:]:
        if np.dtype(a.dtype) != d:
            raise ArgumentError(f"{op}: tensor-core conv operands have different dtypes ({d} and {a.dtype})")
    kind = tc_kind(d, "high")
    if kind is None:
        raise ArgumentError(f"{op}: the tensor-core conv kernels take float32 (TF32), float16 or bfloat16, "
                            f"got {d}")
    return kind


def _bits(xp: Any, a: Any) -> Any:
    """What the kernels' pointer parameters take: float32 as it is, 16-bit dtypes as their uint16 bits
    (conv_tc.cu declares them unsigned short: no cuda_fp16.h under the wheel's NVRTC)."""
    a = xp.ascontiguousarray(a)
    return a if a.dtype == np.float32 else a.view(np.uint16)


def _address(a: Any) -> int:
    """The address of an array's first element (CuPy: device memory; NumPy: host memory, which the
    emulator copies to 16-byte aligned buffers, so a NumPy address only ever narrows the choice)."""
    ptr = getattr(getattr(a, "data", None), "ptr", None)
    return int(ptr) if ptr is not None else int(a.__array_interface__["data"][0])


def copy_width(a: Any, run: int, max_vec: int = 16) -> int:
    """The ``vec`` of a contiguous operand (conv_tc.cu's TcRuns): the bytes per cp.async, the widest of 16,
    8, 4 (at most ``max_vec``) that divides both the run's bytes (``run`` elements of ``a``'s dtype: no copy
    may straddle two runs) and ``a``'s address (alignment); 0 when none does (16-bit runs of odd length:
    the kernel then loads element by element through registers). float32 always has 4-byte copies."""
    run_bytes, address = run * a.dtype.itemsize, _address(a)
    for v in (16, 8, 4):
        if v <= max_vec and run_bytes % v == 0 and address % v == 0:
            return v
    return 4 if a.dtype.itemsize == 4 else 0


def _check_runs(op: str, what: str, rows: int, run: int, images: int, kstep: int) -> None:
    """A TcRuns cursor walks up to about two K-steps and a run past its operand's end (it is not read
    there, but its offset must not overflow int32)."""
    _check_int32(op, **{what: rows * (run * images + 2 * kstep + run)})


def _i32(*values: int) -> tuple:
    return tuple(np.int32(v) for v in values)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check_int32(op: str, **sizes: int) -> None:
    for what, size in sizes.items():
        if size > _INT32_LIMIT:
            raise ShapeError(f"{op}: {what.replace('_', ' ')} is {size:,}, more than the tensor-core kernels' "
                             f"32-bit index limit ({_INT32_LIMIT:,}); split the batch into smaller ones")


def _geometry(x_shape: tuple, w_shape: tuple, stride: tuple, padding: tuple, dilation: tuple,
              padding_mode: str) -> tuple:
    """The int32 geometry every GEMM kernel takes: N, C, H, W, C_out, kH, kW, OH, OW, sh, sw, dh, dw."""
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ShapeError(f"conv_tc: expected x (N, C, H, W) and w (C_out, C, kH, kW), got shapes {tuple(x_shape)} "
                         f"and {tuple(w_shape)}")
    if padding_mode not in PADDING_MODES:
        raise ArgumentError(f"conv_tc: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    N, C, H, W = x_shape
    Co, _, kh, kw = w_shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, padding
    OH, OW = out_size(H, kh, sh, dh, pt, pb), out_size(W, kw, sw, dw, pl, pr)
    if OH < 1 or OW < 1:
        raise ShapeError(f"conv_tc: empty output {OH}x{OW} for x {tuple(x_shape)}, w {tuple(w_shape)}")
    return N, C, H, W, Co, kh, kw, OH, OW, sh, sw, dh, dw


def conv2d_tc_forward(device: Any, x: Any, w: Any, b: Optional[Any], stride: tuple, padding: tuple,
                      dilation: tuple, padding_mode: str, max_vec: int = 16) -> Any:
    """y = conv2d(x, w) + b on the tensor cores: x (N, C, H, W), w (C_out, C, kH, kW), b (C_out,) or None,
    all of one dtype (float32: TF32 operands; float16 / bfloat16); y (N, C_out, OH, OW) in that dtype.
    w's rows go through cp.async copies of :func:`copy_width` bytes (at most ``max_vec``: the tests lower
    it to run the narrower copies and the register path on the same shapes)."""
    xp = device.xp
    kind = _kind_of("conv2d_tc_forward", *(a for a in (x, w, b) if a is not None))
    geo = _geometry(x.shape, w.shape, stride, padding, dilation, padding_mode)
    N, C, H, W, Co, kh, kw, OH, OW = geo[:9]
    pt, _, pl, _ = padding
    Q = N * OH * OW
    _check_int32("conv2d_tc_forward", input_size=x.size, weight_size=w.size, output_size=Q * Co, gemm_K=C * kh * kw)
    _check_runs("conv2d_tc_forward", "weight_cursor", Co, C * kh * kw, 1, KSTEP[kind])
    y = xp.empty((N, Co, OH, OW), dtype=x.dtype)
    # No bias: a dummy array and has_bias = 0 (CuPy < 14 passes None as a garbage pointer, cupy#9046).
    bias, has_bias = (b, 1) if b is not None else (xp.zeros(1, dtype=x.dtype), 0)
    wb = _bits(xp, w)
    args = (_bits(xp, x), wb, _bits(xp, bias), np.int32(has_bias), _bits(xp, y)) + _i32(
        *geo, pt, pl, PADDING_MODES.index(padding_mode), copy_width(wb, C * kh * kw, max_vec))
    _kernel(device, "conv_tc_forward", kind)((_cdiv(Q, TILE), _cdiv(Co, TILE), 1), (THREADS, 1, 1), args)
    return y


def conv2d_tc_backward_data(device: Any, gy: Any, w: Any, x_shape: tuple, stride: tuple, padding: tuple,
                            dilation: tuple, padding_mode: str, max_vec: int = 16) -> Any:
    """gx = d(loss)/dx (N, C, H, W) from gy (N, C_out, OH, OW) and w, on the tensor cores (GEMM operands gy
    and w). Zeros padding: one GEMM over the input positions. Other modes: the GEMM over the padded input
    into a float32 workspace, then conv_tc_fold adds each border position onto its source pixel (a fixed
    order), rounding once to the dtype. The GEMM reads w transposed to (C, C_out, kH, kW) (a copy of the
    weight: its rows, one c, are then contiguous in the GEMM's K = (co, r, s) and go through cp.async
    copies of :func:`copy_width` bytes, at most ``max_vec``)."""
    xp = device.xp
    kind = _kind_of("conv2d_tc_backward_data", gy, w)
    geo = _geometry(tuple(x_shape), w.shape, stride, padding, dilation, padding_mode)
    N, C, H, W, Co, kh, kw, OH, OW = geo[:9]
    if tuple(gy.shape) != (N, Co, OH, OW):
        raise ShapeError(f"conv2d_tc_backward_data: gy has shape {tuple(gy.shape)}, expected {(N, Co, OH, OW)}")
    pt, pb, pl, pr = padding
    gx = xp.empty(tuple(x_shape), dtype=gy.dtype)
    if padding_mode == "zeros":
        oh0, ow0, HD, WD = pt, pl, H, W
        ws, to_ws = xp.zeros(1, dtype=np.float32), 0
    else:
        oh0, ow0, HD, WD = 0, 0, H + pt + pb, W + pl + pr
        ws, to_ws = xp.empty((N, C, HD, WD), dtype=np.float32), 1
    P = N * HD * WD
    _check_int32("conv2d_tc_backward_data", input_size=N * C * HD * WD, weight_size=w.size, output_size=gy.size,
                 gemm_N=P, gemm_K=Co * kh * kw)
    _check_runs("conv2d_tc_backward_data", "weight_cursor", C, Co * kh * kw, 1, KSTEP[kind])
    wt = _bits(xp, xp.ascontiguousarray(w.transpose(1, 0, 2, 3)))
    args = (_bits(xp, gy), wt, _bits(xp, gx), ws, np.int32(to_ws)) + _i32(
        *geo, oh0, ow0, HD, WD, copy_width(wt, Co * kh * kw, max_vec))
    _kernel(device, "conv_tc_backward_data", kind)((_cdiv(P, TILE), _cdiv(C, TILE), 1), (THREADS, 1, 1), args)
    if to_ws:
        count = N * C * H * W
        _kernel(device, "conv_tc_fold", kind)(
            (_cdiv(count, _SIMT_THREADS), 1, 1), (_SIMT_THREADS, 1, 1),
            (ws, _bits(xp, gx)) + _i32(N * C, H, W, HD, WD, pt, pl, PADDING_MODES.index(padding_mode)))
    return gx


def split_k(Q: int, Co: int, Kf: int, kstep: int) -> tuple[int, int]:
    """(splits, K elements per split, a multiple of ``kstep``) for the weight gradient's reduction over
    Q = N*OH*OW, when its C_out x C*kH*kW tiles alone cannot fill the GPU."""
    steps = _cdiv(Q, kstep)
    tiles = _cdiv(Co, TILE) * _cdiv(Kf, TILE)
    splits = max(1, min(_cdiv(_TARGET_BLOCKS, tiles), steps // _MIN_STEPS_PER_SPLIT, _MAX_SPLITS,
                        _MAX_WORKSPACE // (Co * Kf)))
    per_split = _cdiv(steps, splits)
    return _cdiv(steps, per_split), per_split * kstep  # (no empty split)


def is_pointwise(w_shape: tuple, stride: tuple, padding: tuple) -> bool:
    """A 1x1 kernel of stride 1 without padding: backward-filter's x operand is then contiguous in its K
    (x's (n, c) planes are the rows of the im2col), conv_tc_backward_filter_pointwise's case."""
    return tuple(w_shape[2:]) == (1, 1) and tuple(stride) == (1, 1) and not any(padding)


def conv2d_tc_backward_filter(device: Any, x: Any, gy: Any, w_shape: tuple, stride: tuple, padding: tuple,
                              dilation: tuple, padding_mode: str, splits: Optional[int] = None,
                              max_vec: int = 16) -> Any:
    """gw = d(loss)/dw (C_out, C, kH, kW) from x and gy on the tensor cores (GEMM operands gy and x),
    split over N*OH*OW (``splits``: None for :func:`split_k`'s choice) into a float32 workspace that
    conv_tc_splitk_reduce sums in split order (deterministic) and rounds once to the dtype. gy (runs of
    OH*OW per (n, co)) and, for a pointwise conv (:func:`is_pointwise`), x go through cp.async copies of
    :func:`copy_width` bytes (at most ``max_vec``)."""
    xp = device.xp
    kind = _kind_of("conv2d_tc_backward_filter", x, gy)
    geo = _geometry(x.shape, tuple(w_shape), stride, padding, dilation, padding_mode)
    N, C, H, W, Co, kh, kw, OH, OW = geo[:9]
    if tuple(gy.shape) != (N, Co, OH, OW):
        raise ShapeError(f"conv2d_tc_backward_filter: gy has shape {tuple(gy.shape)}, expected {(N, Co, OH, OW)}")
    pt, _, pl, _ = padding
    Q, Kf, kstep = N * OH * OW, C * kh * kw, KSTEP[kind]
    if splits is None:
        splits, per_split = split_k(Q, Co, Kf, kstep)
    else:
        per_split = _cdiv(_cdiv(Q, kstep), splits) * kstep
        splits = _cdiv(Q, per_split)
    _check_int32("conv2d_tc_backward_filter", input_size=x.size, output_size=gy.size, gemm_K=Q,
                 weight_grad_workspace=splits * Co * Kf)
    _check_runs("conv2d_tc_backward_filter", "gy_cursor", Co, OH * OW, N, kstep)
    pointwise = is_pointwise(w_shape, stride, padding)
    if pointwise:
        _check_runs("conv2d_tc_backward_filter", "input_cursor", C, H * W, N, kstep)
    gw = xp.empty(tuple(w_shape), dtype=x.dtype)
    ws = xp.empty((splits, Co, Kf), dtype=np.float32) if splits > 1 else xp.zeros(1, dtype=np.float32)
    xb, gyb = _bits(xp, x), _bits(xp, gy)
    head = (xb, gyb, _bits(xp, gw), ws, np.int32(splits > 1))
    if pointwise:
        name, args = "conv_tc_backward_filter_pointwise", head + _i32(
            N, C, H, W, Co, per_split, copy_width(gyb, OH * OW, max_vec), copy_width(xb, H * W, max_vec))
    else:
        name, args = "conv_tc_backward_filter", head + _i32(
            *geo, pt, pl, PADDING_MODES.index(padding_mode), per_split, copy_width(gyb, OH * OW, max_vec))
    _kernel(device, name, kind)((_cdiv(Kf, TILE), _cdiv(Co, TILE), splits), (THREADS, 1, 1), args)
    if splits > 1:
        count = Co * Kf
        _kernel(device, "conv_tc_splitk_reduce", kind)(
            (_cdiv(count, _SIMT_THREADS), 1, 1), (_SIMT_THREADS, 1, 1), (ws, _bits(xp, gw)) + _i32(splits, count))
    return gw
