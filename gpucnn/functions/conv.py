"""Convolutions: conv2d (NCHW) and conv1d (NCL, run as conv2d with H = 1), PyTorch semantics.

Like PyTorch these are cross-correlations: ``y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] *
xpad[n, c, i*sh + u*dh, j*sw + v*dw]``.

The NumPy path (device cpu) keeps activations laid out (C, H, W, N) in memory, batch innermost, and
hands NCHW *views* of them to the rest of gpucnn (``y.transpose(3, 0, 1, 2)``: no copy). In that layout
every window of the input is a long contiguous run (W*N elements per padded row at stride 1), pooling and
elementwise ops run over N-long inner loops, and the GEMMs below read and write it directly:

- The input is copied once into a padded workspace buffer (C, Hp, Wp, N) (a plain copy when the input is
  this op's own output; reflect/replicate/circular borders are filled from the interior).
- The output is produced in chunks of output rows (or of one row) sized to stay in cache: the chunk's
  column matrix (C*kh*kw [+1], pixels*N) is one strided copy of the padded buffer (rows in
  ``weight.reshape(C_out, -1)`` order), and ``y[:, chunk] = [W | b] @ [cols; ones]`` is one GEMM per chunk
  (the bias rides in the GEMM). y is (C_out, Ho, Wo, N): no garbage columns, no transposing copy.
- Backward: gy (a (C_out, Ho, Wo, N) array, or staged into one) is the (C_out, Ho*Wo*N) matrix g as it
  is. Per chunk, the columns are rebuilt from the kept padded input, ``[gW | gb].T += [cols; ones] @ g.T``
  and ``gcols = W.T @ g``, and col2im adds each kernel offset's block of gcols onto the padded gradient
  (kh*kw strided adds over long runs); the border's gradient is then folded back (reflect/replicate/
  circular) and the interior returned as an NCHW view.
- Large convs are split over threads (:mod:`gpucnn.workspace`): the forward by chunks (each writes its
  own columns of y); the backward by input channels (each thread owns its columns of gW and its
  channels of the input gradient, so nothing is shared), or by chunks when there is one input channel.
  Scratch buffers come from the workspace pool, and the padded input is held until the op is freed.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ArgumentError, ShapeError
from .. import workspace
from ..function import Function, is_grad_enabled
from ..tensor import Tensor
from ._conv_util import effective_kernel, format_param, format_size, ntuple, out_size, resolve_padding

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Conv2d(Function):
    """2-D cross-correlation of NCHW ``x`` with ``w`` (C_out, C_in, kh, kw) plus an optional bias (C_out,).

    Arguments are already validated and normalised (see :func:`conv2d`): ``stride`` and ``dilation`` are
    (h, w) pairs, ``padding`` is (top, bottom, left, right).
    """

    name = "conv2d"

    def __init__(self, stride: tuple[int, int] = (1, 1), padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                 dilation: tuple[int, int] = (1, 1), padding_mode: str = "zeros", name: Optional[str] = None):
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.padding_mode = padding_mode
        if name is not None:
            self.name = name  # "conv1d" when conv1d runs through this op

    # -- geometry -------------------------------------------------------------------------------
    def _geometry(self, x_shape: tuple, w_shape: tuple) -> None:
        N, C, H, W = x_shape
        _, _, kh, kw = w_shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        pt, pb, pl, pr = self.padding
        self.Hp, self.Wp = H + pt + pb, W + pl + pr
        self.Ho = out_size(H, kh, sh, dh, pt, pb)
        self.Wo = out_size(W, kw, sw, dw, pl, pr)
        self.kh, self.kw = kh, kw

    # -- padding and its adjoint (NumPy path: (C, H, W, N) in memory) ---------------------------
    def _padded(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) padded into a workspace buffer laid out (C, Hp, Wp, N). (A plain copy when
        ``x`` is physically (C, H, W, N), as this op's own outputs are.)"""
        N, C, H, W = x.shape
        pt, pb, pl, pr = self.padding
        Hp, Wp = self.Hp, self.Wp
        xp = workspace.take((C, Hp, Wp, N), x.dtype)
        if self.padding_mode == "zeros":  # a reused buffer: zero just the border
            if pt:
                xp[:, :pt] = 0
            if pb:
                xp[:, pt + H:] = 0
            if pl:
                xp[:, pt:pt + H, :pl] = 0
            if pr:
                xp[:, pt:pt + H, pl + W:] = 0

        def interior(s: slice) -> None:
            xp[s, pt:pt + H, pl:pl + W] = x[:, s].transpose(1, 2, 3, 0)

        workspace.map_batch(interior, C, H * W * N)
        if self.padding_mode != "zeros":
            # Rows first (interior columns), then whole columns (so corners come out right).
            for r, src in _border_sources(H, pt, Hp, self.padding_mode):
                xp[:, r, pl:pl + W] = xp[:, src, pl:pl + W]
            for c, src in _border_sources(W, pl, Wp, self.padding_mode):
                xp[:, :, c] = xp[:, :, src]
        return xp

    def _unpad_grad(self, gp: np.ndarray, x_shape: tuple) -> np.ndarray:
        """The adjoint of :meth:`_padded`: the (N, C, H, W) gradient (a view into ``gp``) from the padded
        buffer's gradient ``gp`` (C, Hp, Wp, N)."""
        N, C, H, W = x_shape
        pt, _, pl, _ = self.padding
        if self.padding_mode != "zeros":
            # Undo the fill in reverse order: columns (whole height), then rows (interior columns).
            # Sources are always interior pixels, never border ones, so the order within a loop is free.
            for c, src in _border_sources(W, pl, self.Wp, self.padding_mode):
                gp[:, :, src] += gp[:, :, c]
            for r, src in _border_sources(H, pt, self.Hp, self.padding_mode):
                gp[:, src, pl:pl + W] += gp[:, r, pl:pl + W]
        return gp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)

    # -- the column buffer, some output rows at a time ------------------------------------------
    def _chunks(self, N: int, rows: int, itemsize: int, parts: int, target: int) -> list[tuple[int, int, int, int]]:
        """Pieces ``(i0, ni, j0, nj)`` of the output (rows i0.., columns j0..; several whole rows, or part of
        one row) whose column buffer (``rows`` rows, N columns per output pixel) and GEMM output take
        about ``target`` bytes, as equal as possible and as many as a multiple of ``parts``, the
        threads that share them. Each is a contiguous range of the (Ho, Wo, N) columns."""
        Ho, Wo = self.Ho, self.Wo
        per_pixel = N * itemsize * rows
        count = max(1, -(-(Ho * Wo * per_pixel) // target))
        count = -(-count // parts) * parts
        if count <= Ho:
            return [(Ho * k // count, Ho * (k + 1) // count - Ho * k // count, 0, Wo) for k in range(count)]
        per_row = min(Wo, -(-count // Ho))  # pieces of each row
        return [(i, 1, Wo * k // per_row, Wo * (k + 1) // per_row - Wo * k // per_row)
                for i in range(Ho) for k in range(per_row)]

    def _windows(self, buf: np.ndarray, c0: int, c1: int, chunk: tuple) -> np.ndarray:
        """The (c1-c0, kh, kw, ni, nj, N) view of the padded ``buf`` (C, Hp, Wp, N) for output piece
        ``chunk``: element [c, u, v, i, j, n] is padded pixel (c0+c, (i0+i)*sh + u*dh, (j0+j)*sw + v*dw)
        of image n."""
        i0, ni, j0, nj = chunk
        _, Hp, Wp, N = buf.shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        row = Wp * N
        shape = (c1 - c0, self.kh, self.kw, ni, nj, N)
        strides = (Hp * row, dh * row, dw * N, sh * row, sw * N, 1)
        return _strided_view(buf.reshape(-1), shape, strides, c0 * Hp * row + i0 * sh * row + j0 * sw * N)

    def _im2col(self, buf: np.ndarray, scratch: np.ndarray, c0: int, c1: int, chunk: tuple, ones: bool):
        """The ((c1-c0)*kh*kw [+1], ni*nj*N) columns of output piece ``chunk`` for input channels
        c0..c1-1, contiguous in the front of ``scratch``; rows in ``weight.reshape(C_out, -1)`` order, with
        ``ones`` a last row of ones (the bias's column)."""
        _, ni, _, nj = chunk
        N = buf.shape[3]
        K, L = (c1 - c0) * self.kh * self.kw, ni * nj * N
        cols = scratch[:(K + ones) * L].reshape(K + ones, L)
        np.copyto(cols[:K].reshape(c1 - c0, self.kh, self.kw, ni, nj, N), self._windows(buf, c0, c1, chunk))
        if ones:
            cols[K] = 1
        return cols

    # -- forward / backward ---------------------------------------------------------------------
    def forward_cpu(self, xs):
        with workspace.cpu_op():
            return self._forward_cpu(*xs)

    def backward_cpu(self, xs, gy):
        with workspace.cpu_op():
            return self._backward_cpu(*xs, gy)

    def _forward_cpu(self, x, w, b):
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        self._geometry(x.shape, w.shape)
        Ho, Wo = self.Ho, self.Wo
        K = C * kh * kw
        buf = self._padded(x)
        # The bias rides in the GEMM: weight (C_out, K) plus a bias column, columns plus a ones row.
        wm = w.reshape(Co, K) if b is None else np.concatenate([w.reshape(Co, K), b.reshape(Co, 1)], axis=1)
        threads = _threads_for(N * Ho * Wo * (wm.shape[1] + Co))
        chunks = self._chunks(N, wm.shape[1] + Co, x.dtype.itemsize, threads, _CHUNK_BYTES)
        y = np.empty((Co, Ho * Wo * N), dtype=x.dtype)  # (C_out, Ho, Wo, N): NCHW through a transpose
        width = max(ni * nj for _, ni, _, nj in chunks) * N  # columns of the largest chunk

        def work(lo: int, hi: int) -> None:  # chunks lo..hi-1, each its own columns of y
            scratch = workspace.take(wm.shape[1] * width, x.dtype)
            for chunk in chunks[lo:hi]:
                cols = self._im2col(buf, scratch, 0, C, chunk, b is not None)
                start = (chunk[0] * Wo + chunk[2]) * N
                np.matmul(wm, cols, out=y[:, start:start + cols.shape[1]])
            workspace.give(scratch)

        workspace.parallel(work, len(chunks), 1 if threads > 1 else len(chunks))
        if is_grad_enabled():
            self.xbuf = buf  # the backward rebuilds the columns from it
            workspace.hold(self, buf)
        else:
            workspace.give(buf)
        return y.reshape(Co, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _backward_cpu(self, x, w, b, gy):
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        need_b = need_b and b is not None
        Ho, Wo = self.Ho, self.Wo
        khw = kh * kw
        # gy (N, C_out, Ho, Wo) as g (C_out, Ho*Wo*N): free when gy is laid out (C_out, Ho, Wo, N).
        g4 = gy.transpose(1, 2, 3, 0)
        staged = None
        if not g4.flags.c_contiguous:
            staged = workspace.take((Co, Ho, Wo, N), gy.dtype)
            src = g4
            workspace.map_batch(lambda s: np.copyto(staged[s], src[s]), Co, Ho * Wo * N)
            g4 = staged
        g = g4.reshape(Co, Ho * Wo * N)
        # Threads split the input channels: each owns its columns of gW and its channels of the padded
        # input gradient, so nothing is shared. (With one input channel they split the output rows and
        # add their parts of gW.) The split does not depend on which gradients are needed: gW comes out
        # the same bits either way.
        threads = _threads_for(N * Ho * Wo * (2 * C * khw + 1 + Co))
        by_channel = C >= 2 and threads > 1
        parts = workspace.split(C, threads) if by_channel else [(0, C)]
        chunks = self._chunks(N, 2 * (parts[0][1] - parts[0][0]) * khw + 1 + Co, gy.dtype.itemsize,
                              1 if by_channel else threads, _CHUNK_BYTES_BACKWARD)
        width = max(ni * nj for _, ni, _, nj in chunks) * N  # columns of the largest chunk
        gbuf = np.zeros((C, self.Hp, self.Wp, N), dtype=gy.dtype) if need_x else None
        wt = w.reshape(Co, C * khw).T

        def work(c0: int, c1: int, lo: int, hi: int) -> Optional[np.ndarray]:
            """Channels c0..c1-1, output rows of chunks lo..hi-1: [gW | gb].T of those (gb in the part with
            channel 0) and the col2im into gbuf."""
            ones = need_b and c0 == 0
            K = (c1 - c0) * khw
            gwb = part = scratch = gcols = None
            if need_w or ones:
                # Transposed: [cols; ones] @ g.T runs ~20 % faster in OpenBLAS than g @ [cols; ones].T.
                gwb = np.zeros((K + ones, Co), dtype=gy.dtype)
                part = np.empty_like(gwb)
                scratch = workspace.take((K + ones) * width, gy.dtype)
            if need_x:
                gcols = workspace.take(K * width, gy.dtype)
            for chunk in chunks[lo:hi]:
                i0, ni, j0, nj = chunk
                start, L = (i0 * Wo + j0) * N, ni * nj * N
                gc = g[:, start:start + L]
                if gwb is not None:
                    np.matmul(self._im2col(self.xbuf, scratch, c0, c1, chunk, ones), gc.T, out=part)
                    gwb += part
                if need_x:
                    # col2im: add each kernel offset's columns onto the padded pixels they were read from.
                    gc6 = np.matmul(wt[c0 * khw:c1 * khw], gc, out=gcols[:K * L].reshape(K, L))
                    gc6 = gc6.reshape(c1 - c0, kh, kw, ni, nj, N)
                    win = self._windows(gbuf, c0, c1, chunk)
                    for u in range(kh):
                        for v in range(kw):
                            view = win[:, u, v]
                            view += gc6[:, u, v]
            workspace.give(scratch, gcols)
            return gwb

        if by_channel:
            results = workspace.parallel(lambda c0, c1: work(c0, c1, 0, len(chunks)), C)
        else:
            results = workspace.parallel(lambda lo, hi: work(0, C, lo, hi), len(chunks),
                                         1 if threads > 1 else len(chunks))
        if staged is not None:
            workspace.give(staged)
        gw = gb = None
        if by_channel:
            if need_w:
                gw = np.concatenate([r[:(c1 - c0) * khw] for r, (c0, c1) in zip(results, parts)], axis=0).T
            gb = results[0][-1].copy() if need_b else None
        elif need_w or need_b:
            total = results[0]
            for r in results[1:]:
                total += r
            gw = total[:C * khw].T if need_w else None
            gb = total[-1].copy() if need_b else None
        if gw is not None:
            gw = np.ascontiguousarray(gw).reshape(w.shape)
        gx = self._unpad_grad(gbuf, x.shape) if need_x else None
        return gx, gw, gb

    # -- CUDA kernels (devices cuda and emu): kernels_cuda/conv.cu -------------------------------
    def _kernel(self, name: str, dtype: Any) -> Any:
        return self.device.kernel("conv", name, T=_CTYPES[np.dtype(dtype)])

    def _kernel_geometry(self, x_shape: tuple, w_shape: tuple) -> tuple:
        """The int32 scalars every conv kernel takes after its arrays: N, C, H, W, C_out, kH, kW, OH, OW,
        sh, sw, dh, dw (padding and mode follow, in a per-kernel order)."""
        self._geometry(x_shape, w_shape)
        N, C, H, W = x_shape
        Co, _, kh, kw = w_shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        return N, C, H, W, Co, kh, kw, self.Ho, self.Wo, sh, sw, dh, dw

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
        x, w, b = (None if a is None else xp.ascontiguousarray(a) for a in xs)
        geo = self._kernel_geometry(x.shape, w.shape)
        N, C, H, W, Co, kh, kw, Ho, Wo = geo[:9]
        pt, _, pl, _ = self.padding
        Q, K = N * Ho * Wo, C * kh * kw
        self._check_int32(input_size=x.size, weight_size=w.size, output_size=Q * Co, gemm_N=Q, gemm_K=K)
        y = xp.empty((N, Co, Ho, Wo), dtype=x.dtype)
        grid = (_cdiv(Q, _BN), _cdiv(Co, _BM), 1)
        # b may be None: CuPy and the emulator pass a null pointer, which the kernel reads as "no bias".
        self._kernel("conv2d_forward", x.dtype)(
            grid, _GEMM_BLOCK, (x, w, b, y) + _i32(*geo, pt, pl, _MODE_INDEX[self.padding_mode]))
        return y

    def backward_gpu(self, xs, gy):
        xp = self.xp
        x, w, b = (None if a is None else xp.ascontiguousarray(a) for a in xs)
        gy = xp.ascontiguousarray(gy)
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        geo = self._kernel_geometry(x.shape, w.shape)
        N, C, H, W, Co, kh, kw, Ho, Wo = geo[:9]
        pt, pb, pl, pr = self.padding
        mode = _MODE_INDEX[self.padding_mode]
        Q, Kf = N * Ho * Wo, C * kh * kw
        self._check_int32(input_size=x.size, weight_size=w.size, output_size=gy.size, gemm_N=max(Q, x.size),
                          gemm_K=max(Kf, Co * kh * kw))
        gx = gw = gb = None
        if need_x:
            # GEMM M = C_in, N = batch*H*W, K = C_out*kH*kW (a gather: one thread per element of gx).
            gx = xp.empty(x.shape, dtype=x.dtype)
            grid = (_cdiv(x.size // C, _BN), _cdiv(C, _BM), 1)
            self._kernel("conv2d_backward_data", x.dtype)(
                grid, _GEMM_BLOCK, (gy, w, gx) + _i32(*geo, pt, pb, pl, pr, mode))
        if need_w:
            gw = self._weight_grad(x, w, gy, geo, mode)
        if need_b and b is not None:
            gb = xp.empty((Co,), dtype=gy.dtype)
            threads = 32  # one block per channel; more threads only for long channels
            while threads < _REDUCE_THREADS and threads * 8 < Q:
                threads *= 2
            self._kernel("conv2d_backward_bias", gy.dtype)((Co, 1, 1), (threads, 1, 1),
                                                           (gy, gb) + _i32(N, Co, Ho * Wo))
        return gx, gw, gb

    def _weight_grad(self, x, w, gy, geo, mode):
        """gw via GEMM M = C_out, N = C_in*kH*kW, K = batch*OH*OW, split over K when the M x N tiles alone
        cannot fill the GPU (K is the large dim here); the splits' partial sums are added in a fixed order
        by a second kernel, so the result is deterministic."""
        xp = self.xp
        N, C, H, W, Co, kh, kw, Ho, Wo = geo[:9]
        pt, _, pl, _ = self.padding
        Q, Kf = N * Ho * Wo, C * kh * kw
        splits, k_per_split = _split_k(Q, Co, Kf)
        self._check_int32(weight_grad_workspace=splits * Co * Kf)
        kernel = self._kernel("conv2d_backward_filter", x.dtype)
        grid = (_cdiv(Kf, _BN), _cdiv(Co, _BM), splits)
        gw = xp.empty(w.shape, dtype=w.dtype)
        out = gw if splits == 1 else xp.empty((splits, Co, Kf), dtype=w.dtype)
        kernel(grid, _GEMM_BLOCK, (x, gy, out) + _i32(*geo, pt, pl, mode, k_per_split))
        if splits > 1:
            count = Co * Kf
            self._kernel("conv2d_splitk_reduce", w.dtype)(
                (_cdiv(count, _REDUCE_THREADS), 1, 1), (_REDUCE_THREADS, 1, 1), (out, gw) + _i32(splits, count))
        return gw


# -- launch configuration of kernels_cuda/conv.cu ----------------------------------------------------
# These mirror the #ifndef defaults of conv.cu (CONV_BM, CONV_BN, CONV_BK, CONV_TM, CONV_TN,
# CONV_REDUCE_THREADS); tests/functions/test_conv_kernels.py checks that they agree.
_BM, _BN, _BK, _TM, _TN = 64, 64, 16, 8, 4
_GEMM_BLOCK = (_BN // _TN, _BM // _TM, 1)
_REDUCE_THREADS = 256
#: Largest size the kernels' int32 index arithmetic handles: 2**31 - 1 less a margin for tile rounding.
_INT32_LIMIT = 2**31 - 1 - 4 * max(_BM, _BN, _BK, _REDUCE_THREADS)
#: Split-K of the weight gradient: aim for this many blocks (about 2 per SM on a 132-SM H100) ...
_DW_TARGET_BLOCKS = 264
#: ... but give every split at least this many K-steps (BK each) ...
_DW_MIN_KSTEPS_PER_SPLIT = 8
#: ... and at most this many splits, with a workspace of at most this many elements.
_DW_MAX_SPLITS = 64
_DW_MAX_WORKSPACE = 1 << 24
#: Target size of one chunk of the NumPy path, its column buffer plus its GEMM output (see _chunks), in
#: the forward and in the backward (measured best on 2 cores with 2 MiB of L2 each: the forward's GEMM
#: likes its columns in cache; the backward's per-chunk overhead, 2 GEMMs and kh*kw adds, likes fewer).
_CHUNK_BYTES = 2 << 20
_CHUNK_BYTES_BACKWARD = 8 << 20
#: Column-buffer plus output elements from which a conv splits over threads. (OpenBLAS runs
#: single-threaded inside the NumPy path's ops, see gpucnn.workspace, so a conv that does not split uses
#: one core: split all but tiny ones.)
_SPLIT_ELEMENTS = 1 << 20
#: Chunks per thread below which the NumPy path keeps a conv in one piece (and OpenBLAS's own threads)
_MIN_CHUNKS = 1
_MODE_INDEX = {mode: i for i, mode in enumerate(PADDING_MODES)}  # CONV_PAD_ZEROS, ... in conv.cu
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _threads_for(elements: int) -> int:
    """Threads a NumPy-path conv splits over, given the elements its column buffers and GEMM output
    hold: all of them (gpucnn.workspace.threads()) for large convs, one for small ones."""
    return workspace.threads() if elements >= _SPLIT_ELEMENTS else 1


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _i32(*values: int) -> tuple:
    return tuple(np.int32(v) for v in values)


def _split_k(Q: int, Co: int, Kf: int) -> tuple[int, int]:
    """(splits, K elements per split, a multiple of BK) for the weight gradient's reduction over Q."""
    ksteps = _cdiv(Q, _BK)
    tiles = _cdiv(Co, _BM) * _cdiv(Kf, _BN)
    splits = min(_cdiv(_DW_TARGET_BLOCKS, tiles), ksteps // _DW_MIN_KSTEPS_PER_SPLIT, _DW_MAX_SPLITS,
                 _DW_MAX_WORKSPACE // (Co * Kf))
    splits = max(1, splits)
    steps_per_split = _cdiv(ksteps, splits)
    splits = _cdiv(ksteps, steps_per_split)  # no empty split
    return splits, steps_per_split * _BK


def _strided_view(buf: np.ndarray, shape: tuple, strides: tuple, offset: int = 0) -> np.ndarray:
    """``as_strided`` on the flat, contiguous ``buf`` with ``strides`` in elements, starting ``offset``
    elements in; checks that the view stays inside ``buf`` (a bug otherwise: as_strided does not check)."""
    last = offset + sum((n - 1) * st for n, st in zip(shape, strides))
    if offset < 0 or last >= buf.size:
        raise AssertionError(f"conv: strided view {shape} {strides} +{offset} overruns a buffer of {buf.size}")
    e = buf.itemsize
    return as_strided(buf[offset:], shape, tuple(st * e for st in strides))


def _border_sources(n: int, before: int, padded: int, mode: str):
    """(border index, interior index it copies) pairs of a padded dim of input size ``n``, in padded
    coordinates (the input occupies ``before .. before+n-1``)."""
    for r in list(range(before)) + list(range(before + n, padded)):
        i = r - before  # position relative to the input: < 0 before it, >= n after it
        if mode == "reflect":
            src = -i if i < 0 else 2 * (n - 1) - i
        elif mode == "replicate":
            src = min(max(i, 0), n - 1)
        else:  # circular
            src = i % n
        yield r, before + src


# -- validation and the public functions ---------------------------------------------------------

def _validate(op: str, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
              padding_mode: Any, nd: int) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Check conv arguments for ``nd`` spatial dims; return (stride, ((before, after), ...), dilation)."""
    in_layout = "(N, C_in, L)" if nd == 1 else "(N, C_in, H, W)"
    w_layout = "(C_out, C_in, k)" if nd == 1 else "(C_out, C_in, kH, kW)"
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
            raise ArgumentError(f"{op}: {name} has dtype {arg.dtype}, expected float32 or float64")
    for arg, name in ((weight, "weight"), (bias, "bias")):
        if arg is not None and arg.dtype != input.dtype:
            raise ArgumentError(f"{op}: input and {name} have different dtypes ({input.dtype} and {arg.dtype}); "
                                f"convert one with .to(dtype=...)")
    shapes = f"(input shape {input.shape}, weight shape {weight.shape})"
    if input.shape[0] == 0:
        raise ShapeError(f"{op}: input has an empty batch (N = 0), expected at least one sample "
                         f"(input shape {input.shape})")
    if 0 in input.shape:
        raise ShapeError(f"{op}: input has a zero-size dim, expected all dims >= 1 (input shape {input.shape})")
    if 0 in weight.shape:
        raise ShapeError(f"{op}: weight has a zero-size dim, expected all dims >= 1 (weight shape {weight.shape})")
    if input.shape[1] != weight.shape[1]:
        raise ShapeError(f"{op}: input has {input.shape[1]} channels, expected {weight.shape[1]} {shapes}")
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
    return strides, pads, dilations


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, padding_mode: str = "zeros") -> Tensor:
    """2-D convolution (cross-correlation) of ``input`` (N, C_in, H, W) with ``weight`` (C_out, C_in, kH, kW).

    - ``bias``: (C_out,) or None.
    - ``stride``, ``dilation``: an int >= 1 or an (h, w) pair.
    - ``padding``: an int >= 0 or an (h, w) pair; ``"valid"`` (no padding); or ``"same"``: output size
      ``ceil(n / stride)`` per dim, as in Keras/TensorFlow, with the extra row/column (when the total
      padding is odd) at the bottom/right. For stride 1 and an odd kernel it is PyTorch's "same".
    - ``padding_mode``: ``"zeros"``, ``"reflect"`` (mirror without repeating the edge; padding < input
      size), ``"replicate"`` (repeat the edge) or ``"circular"`` (wrap around; padding <= input size).

    Returns (N, C_out, H_out, W_out) with ``H_out = floor((H + pad_h - (kH-1)*dilation_h - 1) / stride_h) + 1``.
    """
    strides, pads, dilations = _validate("conv2d", input, weight, bias, stride, padding, dilation,
                                         padding_mode, 2)
    (pt, pb), (pl, pr) = pads
    return Conv2d(strides, (pt, pb, pl, pr), dilations, padding_mode)(input, weight, bias)


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, padding_mode: str = "zeros") -> Tensor:
    """1-D convolution (cross-correlation) of ``input`` (N, C_in, L) with ``weight`` (C_out, C_in, k).

    The arguments behave as in :func:`conv2d` along L (``stride``, ``padding``, ``dilation`` are ints, or
    1-tuples; ``padding="same"`` gives ``ceil(L / stride)`` outputs). It runs as :func:`conv2d` on
    (N, C_in, 1, L), so both share one implementation.
    """
    (s,), ((pl, pr),), (d,) = _validate("conv1d", input, weight, bias, stride, padding, dilation,
                                        padding_mode, 1)
    N, C, L = input.shape
    Co, _, k = weight.shape
    y = Conv2d((1, s), (0, 0, pl, pr), (1, d), padding_mode, name="conv1d")(
        input.reshape(N, C, 1, L), weight.reshape(Co, C, 1, k), bias)
    return y.reshape(N, Co, y.shape[3])
