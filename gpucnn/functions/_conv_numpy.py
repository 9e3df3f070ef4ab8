"""The NumPy path (device cpu) of :class:`gpucnn.functions.conv.Conv2d`: a mixin with its forward_cpu
and backward_cpu.

Layout. Activations are kept laid out (C, H, W, N) in memory, batch innermost, and handed to the rest of
gpucnn as NCHW *views* (``y.transpose(3, 0, 1, 2)``: no copy). In that layout every window of the input
is a long contiguous run (W*N elements per padded row at stride 1), pooling and elementwise ops run over
N-long inner loops, and the GEMMs below read and write it directly. The input is first copied into a
padded workspace buffer (C, Hp, Wp, N) (a plain copy when the input is a conv's own output;
reflect/replicate/circular borders are filled from the interior), except by the kernel-rows forward with
zero padding, which fills its own buffer straight from the input.

Two algorithms, each a forward and its backward, all GEMMs on that layout:

- **Kernel rows** (convs with vertical stride 1 and C_in*kW >= ``ROWS_MIN_K``, when
  :mod:`gpucnn.blas` can accumulate into its output; it runs any conv, as the tests make it). One
  buffer Z (C_in*kW + 1, Hp, Wo, N) holds kW copies of the padded input, copy v shifted left by v*dw
  columns (every sw-th column), and a row of ones. Kernel row u is then one GEMM: output rows i..i'
  read Z's rows i*sh+u*dh.., which at stride 1 are one contiguous run of Z's columns. So
  ``y = sum_u W_u @ Z_u`` with W_u (C_out, C_in*kW) and Z_u that run (the bias rides in u = 0 as a
  column against the ones row), accumulated by BLAS (beta = 1). It copies kW values per output pixel
  where im2col copies kh*kw, and its GEMMs keep K = C_in*kW, long enough for OpenBLAS's full speed (one
  GEMM per kernel offset, K = C_in, ran at half of it). Measured on 2 cores against im2col: 10-25 %
  faster at stride 1; 15 % slower at stride 2 (one GEMM per output row), hence im2col there.
  Its backward reads Z, kept from the forward instead of the padded input (kW times its size):
  ``[gW_u | gb].T = [Z_u; ones] @ g.T`` and ``gZ_u += W_u.T @ g``, then each shifted copy of gZ adds
  back onto the columns it came from (kW adds, where im2col's col2im has kh*kW). Measured on 2 cores,
  the keras-mnist net's 32->64 conv: backward 32 -> 29 ms in the training step at batch 256 (it
  rebuilt no columns and ran its GEMMs at 130-170 GFLOP/s).
- **im2col** (convs with few input channels, like a first layer on grey images, or strided). The
  output is produced in chunks of output rows (or of one row) of about CHUNK_BYTES (the column buffer
  never exists whole): the chunk's column matrix (C*kh*kw [+1], pixels*N) is one strided copy of the
  padded buffer (rows in ``weight.reshape(C_out, -1)`` order),
  and ``y[:, chunk] = [W | b] @ [cols; ones]`` is one GEMM per chunk. Backward: per chunk, the
  columns are rebuilt from the kept padded input, ``[gW | gb].T += [cols; ones] @ g.T`` and
  ``gcols = W.T @ g``, and col2im adds each kernel offset's block of gcols onto the padded gradient.

Both produce y as (C_out, Ho, Wo, N): no garbage columns, no transposing copy. The padded gradient's
border is folded back (reflect/replicate/circular) and its interior returned as an NCHW view.

Threads (:mod:`gpucnn.workspace`): forwards split the output columns (each thread writes its own
columns of y). im2col's backward splits the input channels (each thread owns its columns of gW and its
channels of the input gradient, so nothing is shared; with one input channel it runs on one thread, see
CHUNK_BYTES_ONE_CHANNEL). The kernel-rows backward splits y's columns for gW (one partial sum per
thread), gZ's columns for its GEMMs and the channels for the fold.
Scratch buffers come from the workspace pool; what the backward reads is kept until the op is freed.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import blas, workspace
from ..errors import ArgumentError
from ..function import is_grad_enabled

#: Fewest GEMM rows (C_in * kW) for the kernel-rows algorithm; below, im2col's K = C_in*kH*kW GEMM is
#: faster (a first layer with C_in = 1: K = 3 against 9).
ROWS_MIN_K = 16
#: Largest block of output that one GEMM of the kernel-rows forward writes; smaller blocks stay in cache
#: across the kernel rows, but OpenBLAS prefers long ones (measured on 2 cores: 1-64 MiB within 5 %)
ROWS_CHUNK_BYTES = 16 << 20
#: Force one algorithm ("rows" or "im2col"; None: choose as above). Tests run both on every case; the
#: GPUCNN_CONV_ALGORITHM environment variable sets it for a process.
ALGORITHM: Optional[str] = os.environ.get("GPUCNN_CONV_ALGORITHM") or None
#: Target size of one chunk of the im2col algorithm, its column buffer plus its GEMM output (see
#: _chunks), in the forward and in the backward. Larger than the 2 MiB of L2 per core: OpenBLAS's
#: per-call packing costs more than the cache saves (measured on 2 cores, Sapphire Rapids, at 2/4/8/16
#: MiB: forwards of 1->32 at b256, 3->16 and 16->64 stride 2 at b64, 16->32 and 32->64 stride 2 at b128
#: ran 10-20 % faster at 8 MiB than at 2; the backward of 32->64 at 14x14, batch 64 and 128, 8 % faster
#: at 16 MiB than at 8, other backwards within 5 % from 8 to 32 MiB, 10-25 % slower at 2-4).
CHUNK_BYTES = 8 << 20
CHUNK_BYTES_BACKWARD = 16 << 20
#: ... and of the backward of a conv with one input channel (a first layer on grey images), which runs
#: on one thread: its GEMMs ((kh*kw + 1) x pixels x C_out) are memory-bound, and two threads splitting its
#: chunks slowed each other's copies ~10x (measured at batch 256 on 2 cores: 8.9 ms on two threads,
#: 6.6 ms on one with 8 MiB chunks, 4.5 ms on one with these, whose columns stay in L2).
CHUNK_BYTES_ONE_CHANNEL = 512 << 10
#: Column-buffer plus output elements from which a conv splits over threads. (OpenBLAS runs
#: single-threaded inside the NumPy path's ops, see gpucnn.workspace, so a conv that does not split uses
#: one core: split all but tiny ones.)
SPLIT_ELEMENTS = 1 << 20


class ConvNumpy:
    """forward_cpu/backward_cpu of Conv2d (which supplies the geometry: ``stride``, ``padding``,
    ``dilation``, ``padding_mode``, ``_geometry``)."""

    def forward_cpu(self, xs):
        x, w, b = xs
        self._geometry(x.shape, w.shape)
        if self.groups > 1:
            self.cpu_algorithm = "depthwise" if self.depthwise else "grouped"
        else:
            self.cpu_algorithm = _algorithm(x.shape[1] * w.shape[3], self.stride[0], x.dtype)
        with workspace.cpu_op():
            return getattr(self, f"_{self.cpu_algorithm}_forward")(x, w, b)

    def backward_cpu(self, xs, gy):
        with workspace.cpu_op():  # (each forward kept what its backward reads: Z, or the padded input)
            return getattr(self, f"_{self.cpu_algorithm}_backward")(*xs, gy)

    def data_grad_cpu(self, gy: np.ndarray, w: np.ndarray, x_shape: tuple) -> np.ndarray:
        """The input gradient alone (N, C, H, W) from gy and w, with no forward before it: what a
        transposed convolution's forward is. (im2col's and the grouped backwards read no kept buffer for
        it; the kernel-rows one is not used here, its gZ needs the layout of its forward.)"""
        self._geometry(x_shape, w.shape)
        if self.groups > 1:
            self.cpu_algorithm = "depthwise" if self.depthwise else "grouped"
        else:
            self.cpu_algorithm = "im2col"
        x = np.broadcast_to(np.zeros((), gy.dtype), x_shape)  # only its shape is read
        keep = self.needs_input_grad
        self.needs_input_grad = (True, False, False)
        try:
            with workspace.cpu_op():
                return getattr(self, f"_{self.cpu_algorithm}_backward")(x, w, None, gy)[0]
        finally:
            self.needs_input_grad = keep

    def filter_grad_cpu(self, x: np.ndarray, gy: np.ndarray, w_shape: tuple) -> np.ndarray:
        """The weight gradient alone (C_out, C/groups, kH, kW) from x and gy, with no forward before it
        (a transposed convolution's weight gradient): the padded input, then the backward's gW part."""
        self._geometry(x.shape, w_shape)
        if self.groups > 1:
            self.cpu_algorithm = "depthwise" if self.depthwise else "grouped"
        else:
            self.cpu_algorithm = "im2col"
        w = np.broadcast_to(np.zeros((), gy.dtype), w_shape)  # only its shape is read
        keep = self.needs_input_grad
        self.needs_input_grad = (False, True, False)
        try:
            with workspace.cpu_op():
                self.kept = self._padded(x)
                try:
                    return getattr(self, f"_{self.cpu_algorithm}_backward")(x, w, None, gy)[1]
                finally:
                    workspace.give(self.kept)
                    self.kept = None
        finally:
            self.needs_input_grad = keep

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


    # -- kernel rows: one GEMM per kernel row over the shifted-columns buffer Z --------------------
    def _row_pieces(self, N: int, parts: int, max_cols: int = 1 << 62) -> list[list[tuple[int, int, int]]]:
        """The output's columns as ``parts`` lists of pieces ``(y0, z0, n)``: columns y0..y0+n-1 of y
        (C_out, Ho*Wo*N) read, for kernel row u, Z's columns from z0 + u*dh*Wo*N on. At stride 1 the output
        rows are one run (z0 = y0), split evenly; at stride sh output row i reads Z's row i*sh, so each
        row is a piece of its own (rows split between the parts, or each row's columns when they are
        fewer than the parts); pieces longer than ``max_cols`` are cut into near-equal ones."""
        Ho, row, sh = self.Ho, self.Wo * N, self.stride[0]
        if sh == 1:
            parts_ = [[(a, a, b - a)] for a, b in workspace.split(Ho * row, parts)]
        elif Ho >= parts:
            parts_ = [[(i * row, i * sh * row, row) for i in range(lo, hi)] for lo, hi in workspace.split(Ho, parts)]
        else:
            parts_ = [[(i * row + a, i * sh * row + a, b - a) for i in range(Ho)]
                      for a, b in workspace.split(row, parts)]
        return [[(y0 + a, z0 + a, b - a) for y0, z0, n in pieces for a, b in workspace.split(n, -(-n // max_cols))]
                for pieces in parts_]

    def _rows_forward(self, x, w, b):
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        Hp, Ho, Wo = self.Hp, self.Ho, self.Wo
        dh = self.dilation[0]
        K, row = C * kw, Wo * N
        z = workspace.take((K + 1) * Hp * row, x.dtype)
        self._rows_fill(x, z[:K * Hp * row].reshape(C, kw, Hp, Wo, N))
        z[K * Hp * row:] = 1  # the ones row, the bias's
        zf = z.reshape(K + 1, Hp * row)
        # Weight rows wr[u] (C_out, C*kW) in Z's (c, v) row order; kernel row 0 carries the bias column.
        wr = np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, Co, K)
        w0 = wr[0] if b is None else np.concatenate([wr[0], b.reshape(Co, 1)], axis=1)
        y = np.empty((Co, Ho * row), dtype=x.dtype)  # (C_out, Ho, Wo, N): NCHW through a transpose
        step = dh * row  # Z's columns between kernel rows

        def work(pieces: list) -> None:
            for y0, z0, n in pieces:
                out = y[:, y0:y0 + n]
                blas.gemm(w0, zf[:w0.shape[1], z0:z0 + n], out)
                for u in range(1, kh):
                    blas.gemm(wr[u], zf[:K, z0 + u * step:z0 + u * step + n], out, beta=1.0)

        parts = self._row_pieces(N, _threads_for(N * Ho * Wo * (K + Co)), ROWS_CHUNK_BYTES // (Co * x.itemsize))
        workspace.parallel(lambda lo, hi: [work(p) for p in parts[lo:hi]], len(parts))
        self._keep(z)  # the backward reads Z, not the padded input
        return y.reshape(Co, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _rows_fill(self, x: np.ndarray, z5: np.ndarray) -> None:
        """Z's rows (c, v), ``z5`` (C, kW, Hp, Wo, N): the padded input's channel c shifted left by v*dw
        columns, every sw-th column. With zero padding straight from ``x``, the borders written as zeros
        (no padded copy: a 64->64 conv's forward at 32x32, batch 64, went 50 -> 38-43 ms on 2 cores);
        other modes copy from the padded buffer."""
        N, C, H, W = x.shape
        pt, _, pl, _ = self.padding
        _, kw, Hp, Wo, _ = z5.shape
        (_, sw), (_, dw) = self.stride, self.dilation
        min_piece = -(-workspace.MIN_PIECE // (kw * Hp * Wo * N))
        if self.padding_mode != "zeros":
            xp = self._padded(x)

            def fill_padded(c0: int, c1: int) -> None:
                for v in range(kw):
                    z5[c0:c1, v] = xp[c0:c1, :, v * dw:v * dw + (Wo - 1) * sw + 1:sw]

            workspace.parallel(fill_padded, C, min_piece)
            workspace.give(xp)
            return
        xc = x.transpose(1, 2, 3, 0)  # (C, H, W, N): a plain view of a conv's own output

        def fill(c0: int, c1: int) -> None:
            for v in range(kw):
                zv = z5[c0:c1, v]
                zv[:, :pt] = 0
                zv[:, pt + H:] = 0
                # Output column j reads input column j*sw + v*dw - pl: inside the input for j0 <= j < j1.
                j0 = min(Wo, max(0, -(-(pl - v * dw) // sw)))
                j1 = max(j0, min(Wo, (W - 1 + pl - v * dw) // sw + 1))
                zv[:, pt:pt + H, :j0] = 0
                zv[:, pt:pt + H, j1:] = 0
                if j1 > j0:
                    s0 = j0 * sw + v * dw - pl
                    zv[:, pt:pt + H, j0:j1] = xc[c0:c1, :, s0:s0 + (j1 - j0 - 1) * sw + 1:sw]

        workspace.parallel(fill, C, min_piece)

    def _rows_backward(self, x, w, b, gy):
        """Backward of :meth:`_rows_forward` from the Z it kept: gW and gb from GEMMs over the forward's
        pieces of y's columns (each thread sums its pieces; the threads' sums are added in order), the
        input's gradient from :meth:`_rows_input_grad`."""
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        need_b = need_b and b is not None
        Hp, Ho, Wo = self.Hp, self.Ho, self.Wo
        dh = self.dilation[0]
        K, row = C * kw, Wo * N
        step = dh * row  # Z's columns between kernel rows
        zf = self.kept.reshape(K + 1, Hp * row)
        g, staged = _gy_matrix(gy)
        threads = _threads_for(N * Ho * Wo * (K + Co))
        gw = gb = gx = None
        if need_w or need_b:
            # [gW_u | gb].T = [Z_u; ones] @ g.T, summed over the forward's pieces of y's columns (rows lo..hi
            # of Z: the ones row only for gb). Transposed, as in im2col's backward: ~10 % faster.
            lo, hi = (0 if need_w else K), (K + 1 if need_b else K)
            parts = self._row_pieces(N, threads, ROWS_CHUNK_BYTES // (Co * x.itemsize))

            def grads(pieces: list) -> np.ndarray:
                acc = np.zeros((kh, hi - lo, Co), dtype=gy.dtype)
                for y0, z0, n in pieces:
                    gc = g[:, y0:y0 + n].T
                    blas.gemm(zf[lo:hi, z0:z0 + n], gc, acc[0], beta=1.0)
                    for u in range(1, kh if need_w else 1):
                        blas.gemm(zf[:K, z0 + u * step:z0 + u * step + n], gc, acc[u, :K], beta=1.0)
                return acc

            results = workspace.parallel(lambda a, b_: [grads(p) for p in parts[a:b_]], len(parts))
            total = results[0][0]
            for part in [r for rs in results for r in rs][1:]:  # in piece order: same bits every run
                total += part
            if need_w:  # total[u, c*kW + v, o] is gW[o, c, u, v]
                gw = np.ascontiguousarray(total[:, :K].reshape(kh, C, kw, Co).transpose(3, 1, 0, 2))
            if need_b:
                gb = total[0, -1].copy()
        if need_x:
            gx = self._unpad_grad(self._rows_input_grad(g, w, threads), x.shape)
        if staged is not None:
            workspace.give(staged)
        return gx, gw, gb

    def _rows_input_grad(self, g: np.ndarray, w: np.ndarray, threads: int) -> np.ndarray:
        """The padded input's gradient (C, Hp, Wp, N) from g (C_out, Ho*Wo*N): ``gZ_u += W_u.T @ g`` on
        the Z rows that kernel row u read (i*sh + u*dh for output row i), then Z's fill undone: each
        shifted copy v adds back onto the columns it was copied from: kh GEMMs and kW adds, where
        im2col's backward has one GEMM and kh*kW adds."""
        Co, C, kh, kw = w.shape
        Hp, Ho, Wo, N = self.Hp, self.Ho, self.Wo, g.shape[1] // (self.Ho * self.Wo)
        (sh, sw), (dh, dw) = self.stride, self.dilation
        K, row = C * kw, Wo * N
        wr = np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, Co, K)  # W_u, as in the forward
        gz = workspace.take((K, Hp * row), g.dtype)

        def segments(u: int, a: int, b: int):
            """(g column, gZ column, count) runs of kernel row u's GEMM inside gZ's columns a..b-1."""
            if sh == 1:
                s, e = max(a, u * dh * row), min(b, (u * dh + Ho) * row)
                if e > s:
                    yield s - u * dh * row, s, e - s
                return
            for i in range(Ho):
                r = (i * sh + u * dh) * row
                s, e = max(a, r), min(b, r + row)
                if e > s:
                    yield i * row + s - r, s, e - s

        def fill(a: int, b: int) -> None:  # gZ's columns a..b-1
            # At stride 1, kernel row 0 writes gZ's first Ho rows (beta 0) and the rest start at zero; at
            # larger strides some rows get no write at all: zero everything first.
            z0 = max(a, Ho * row) if sh == 1 else a
            if b > z0:
                gz[:, z0:b] = 0
            for u in range(kh):
                for gs, zs, n in segments(u, a, b):
                    blas.gemm(wr[u].T, g[:, gs:gs + n], gz[:, zs:zs + n], beta=0.0 if sh == 1 and u == 0 else 1.0)

        workspace.parallel(fill, Hp * row, 1 if threads > 1 else Hp * row)
        gxp = np.empty((C, Hp, self.Wp, N), dtype=g.dtype)
        gz5 = gz.reshape(C, kw, Hp, Wo, N)
        span = (Wo - 1) * sw + 1

        def fold(c0: int, c1: int) -> None:  # channels c0..c1-1; copy v = 0 is a plain copy at stride 1
            first = 0
            if sw == 1:
                gxp[c0:c1, :, Wo:] = 0
                np.copyto(gxp[c0:c1, :, :Wo], gz5[c0:c1, 0])
                first = 1
            else:
                gxp[c0:c1] = 0
            for v in range(first, kw):
                view = gxp[c0:c1, :, v * dw:v * dw + span:sw]
                view += gz5[c0:c1, v]

        workspace.parallel(fold, C, -(-workspace.MIN_PIECE // (kw * Hp * self.Wp * N)))
        workspace.give(gz)
        return gxp

    # -- im2col: the column buffer, some output rows at a time ---------------------------------
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


    def _im2col_forward(self, x, w, b):
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        Ho, Wo = self.Ho, self.Wo
        K = C * kh * kw
        buf = self._padded(x)
        # The bias rides in the GEMM: weight (C_out, K) plus a bias column, columns plus a ones row.
        wm = w.reshape(Co, K) if b is None else np.concatenate([w.reshape(Co, K), b.reshape(Co, 1)], axis=1)
        threads = _threads_for(N * Ho * Wo * (wm.shape[1] + Co))
        chunks = self._chunks(N, wm.shape[1] + Co, x.dtype.itemsize, threads, CHUNK_BYTES)
        y = np.empty((Co, Ho * Wo * N), dtype=x.dtype)  # (C_out, Ho, Wo, N): NCHW through a transpose
        width = max(ni * nj for _, ni, _, nj in chunks) * N  # columns of the largest chunk

        def work(lo: int, hi: int) -> None:  # chunks lo..hi-1, each its own columns of y
            scratch = workspace.take(wm.shape[1] * width, x.dtype)
            for chunk in chunks[lo:hi]:
                cols = self._im2col(buf, scratch, 0, C, chunk, b is not None)
                start = (chunk[0] * Wo + chunk[2]) * N
                blas.gemm(wm, cols, y[:, start:start + cols.shape[1]])
            workspace.give(scratch)

        workspace.parallel(work, len(chunks), 1 if threads > 1 else len(chunks))
        self._keep(buf)
        return y.reshape(Co, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _keep(self, buf: np.ndarray) -> None:
        """Keep what the backward reads (the padded input, from which im2col's backward rebuilds the
        columns; the kernel-rows Z) as ``self.kept``, or return it to the pool when no backward can
        follow."""
        if is_grad_enabled():
            self.kept = buf
            workspace.hold(self, buf)
        else:
            workspace.give(buf)

    def _im2col_backward(self, x, w, b, gy):
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        need_b = need_b and b is not None
        Ho, Wo = self.Ho, self.Wo
        khw = kh * kw
        g, staged = _gy_matrix(gy)
        # Threads split the input channels: each owns its columns of gW and its channels of the padded
        # input gradient, so nothing is shared. (With one input channel: one thread, see
        # CHUNK_BYTES_ONE_CHANNEL; without threads, the chunks add their parts of gW in order.) The split
        # does not depend on which gradients are needed: gW comes out the same bits either way.
        threads = _threads_for(N * Ho * Wo * (2 * C * khw + 1 + Co)) if C >= 2 else 1
        by_channel = threads > 1
        parts = workspace.split(C, threads) if by_channel else [(0, C)]
        chunks = self._chunks(N, 2 * (parts[0][1] - parts[0][0]) * khw + 1 + Co, gy.dtype.itemsize, 1,
                              CHUNK_BYTES_BACKWARD if C >= 2 else CHUNK_BYTES_ONE_CHANNEL)
        width = max(ni * nj for _, ni, _, nj in chunks) * N  # columns of the largest chunk
        gbuf = np.zeros((C, self.Hp, self.Wp, N), dtype=gy.dtype) if need_x else None
        wt = w.reshape(Co, C * khw).T

        def work(c0: int, c1: int) -> Optional[np.ndarray]:
            """Channels c0..c1-1: [gW | gb].T of those (gb in the part with channel 0) and their col2im
            into gbuf, chunk by chunk."""
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
            for chunk in chunks:
                i0, ni, j0, nj = chunk
                start, L = (i0 * Wo + j0) * N, ni * nj * N
                gc = g[:, start:start + L]
                if gwb is not None:
                    np.matmul(self._im2col(self.kept, scratch, c0, c1, chunk, ones), gc.T, out=part)
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

        results = workspace.parallel(work, C) if by_channel else [work(0, C)]
        if staged is not None:
            workspace.give(staged)
        gw = gb = None
        if by_channel:
            if need_w:
                gw = np.concatenate([r[:(c1 - c0) * khw] for r, (c0, c1) in zip(results, parts)], axis=0).T
            gb = results[0][-1].copy() if need_b else None
        elif need_w or need_b:
            total = results[0]
            gw = total[:C * khw].T if need_w else None
            gb = total[-1].copy() if need_b else None
        if gw is not None:
            gw = np.ascontiguousarray(gw).reshape(w.shape)
        gx = self._unpad_grad(gbuf, x.shape) if need_x else None
        return gx, gw, gb


    # -- groups: the channels split into G groups, group g's outputs reading only its inputs -----------
    def _grouped_forward(self, x, w, b):
        """1 < groups < C_in: im2col as above, each chunk's GEMM batched over the groups (one np.matmul
        of (G, C_out/G, C_in/G*kh*kw) by (G, C_in/G*kh*kw, pixels*N): the column rows of a group are
        contiguous, in weight order)."""
        N, C, H, W = x.shape
        Co, Cg, kh, kw = w.shape
        G, Ho, Wo = self.groups, self.Ho, self.Wo
        Kg = Cg * kh * kw
        buf = self._padded(x)
        wg = w.reshape(G, Co // G, Kg)
        threads = _threads_for(N * Ho * Wo * (C * kh * kw + Co))
        chunks = self._chunks(N, C * kh * kw + Co, x.dtype.itemsize, threads, CHUNK_BYTES)
        y = np.empty((Co, Ho * Wo * N), dtype=x.dtype)  # (C_out, Ho, Wo, N): NCHW through a transpose
        width = max(ni * nj for _, ni, _, nj in chunks) * N

        def work(lo: int, hi: int) -> None:
            scratch = workspace.take(C * kh * kw * width, x.dtype)
            for chunk in chunks[lo:hi]:
                cols = self._im2col(buf, scratch, 0, C, chunk, False)
                start = (chunk[0] * Wo + chunk[2]) * N
                L = cols.shape[1]
                out = y[:, start:start + L].reshape(G, Co // G, L)
                np.matmul(wg, cols.reshape(G, Kg, L), out=out)
                if b is not None:
                    out += b.reshape(G, Co // G, 1)
            workspace.give(scratch)

        workspace.parallel(work, len(chunks), 1 if threads > 1 else len(chunks))
        self._keep(buf)
        return y.reshape(Co, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _grouped_backward(self, x, w, b, gy):
        """Backward of :meth:`_grouped_forward`, chunk by chunk in order (deterministic): gW_g +=
        g_g @ cols_g.T and gcols_g = W_g.T @ g_g batched over the groups, then col2im as im2col's."""
        N, C, H, W = x.shape
        Co, Cg, kh, kw = w.shape
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        G, Wo = self.groups, self.Wo
        khw, Kg, Cog = kh * kw, Cg * kh * kw, Co // G
        g, staged = _gy_matrix(gy)
        chunks = self._chunks(N, 2 * C * khw + Co, gy.dtype.itemsize, 1, CHUNK_BYTES_BACKWARD)
        width = max(ni * nj for _, ni, _, nj in chunks) * N
        wg = w.reshape(G, Cog, Kg)
        gw = np.zeros((G, Cog, Kg), dtype=gy.dtype) if need_w else None
        part = np.empty_like(gw) if need_w else None
        gbuf = np.zeros((C, self.Hp, self.Wp, N), dtype=gy.dtype) if need_x else None
        scratch = workspace.take(C * khw * width, gy.dtype) if need_w else None
        gcols = workspace.take(C * khw * width, gy.dtype) if need_x else None
        for chunk in chunks:
            i0, ni, j0, nj = chunk
            start, L = (i0 * Wo + j0) * N, ni * nj * N
            gc = g[:, start:start + L].reshape(G, Cog, L)
            if need_w:
                cols = self._im2col(self.kept, scratch, 0, C, chunk, False).reshape(G, Kg, L)
                np.matmul(gc, cols.transpose(0, 2, 1), out=part)
                gw += part
            if need_x:
                gc6 = np.matmul(wg.transpose(0, 2, 1), gc, out=gcols[:C * khw * L].reshape(G, Kg, L))
                gc6 = gc6.reshape(C, kh, kw, ni, nj, N)
                win = self._windows(gbuf, 0, C, chunk)
                for u in range(kh):
                    for v in range(kw):
                        view = win[:, u, v]
                        view += gc6[:, u, v]
        workspace.give(scratch, gcols)
        gb = g.sum(axis=1) if need_b and b is not None else None
        if staged is not None:
            workspace.give(staged)
        gx = self._unpad_grad(gbuf, x.shape) if need_x else None
        return gx, (gw.reshape(w.shape) if need_w else None), gb

    # -- depthwise (groups == C_in, C_out = m * C_in): direct, vectorised over the channels ---------
    def _taps(self, buf: np.ndarray, u: int, v: int) -> np.ndarray:
        """The (C, Ho, Wo, N) view of the padded ``buf`` (C, Hp, Wp, N) that kernel tap (u, v) reads."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        return buf[:, u * dh:u * dh + (self.Ho - 1) * sh + 1:sh, v * dw:v * dw + (self.Wo - 1) * sw + 1:sw]

    def _depthwise_forward(self, x, w, b):
        """y[c*m + j] = sum_{u, v} w[c*m + j, 0, u, v] * tap_{u,v}(x[c]): kh*kW multiply-adds over whole
        (Ho, Wo, N) planes, threads splitting the channels (no GEMM: each has K = kh*kW only)."""
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        m, Ho, Wo = Co // C, self.Ho, self.Wo
        buf = self._padded(x)
        w4 = w.reshape(C, m, kh, kw)
        y = np.empty((C, m, Ho, Wo, N), dtype=x.dtype)

        def work(c0: int, c1: int) -> None:
            tmp = np.empty((c1 - c0, Ho, Wo, N), dtype=x.dtype)
            for j in range(m):
                out = y[c0:c1, j]
                for t, (u, v) in enumerate(np.ndindex(kh, kw)):
                    wt = w4[c0:c1, j, u, v].reshape(-1, 1, 1, 1)
                    if t == 0:
                        np.multiply(self._taps(buf, u, v)[c0:c1], wt, out=out)
                    else:
                        out += np.multiply(self._taps(buf, u, v)[c0:c1], wt, out=tmp)
                if b is not None:
                    out += b.reshape(C, m)[c0:c1, j].reshape(-1, 1, 1, 1)

        workspace.parallel(work, C, -(-workspace.MIN_PIECE // (m * kh * kw * Ho * Wo * N)))
        self._keep(buf)
        return y.reshape(Co, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _depthwise_backward(self, x, w, b, gy):
        """gx's padded planes += w * g per tap (summed over the multiplier in order), gW[c*m + j, u, v] =
        <g[c*m + j], tap_{u,v}(x[c])> as one batched dot per tap; threads split the channels."""
        N, C, H, W = x.shape
        Co, _, kh, kw = w.shape
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        m, Ho, Wo = Co // C, self.Ho, self.Wo
        g, staged = _gy_matrix(gy)
        g5 = g.reshape(C, m, Ho, Wo, N)
        w4 = w.reshape(C, m, kh, kw)
        gw = np.empty((C, m, kh, kw), dtype=gy.dtype) if need_w else None
        gbuf = np.zeros((C, self.Hp, self.Wp, N), dtype=gy.dtype) if need_x else None
        L = Ho * Wo * N

        def work(c0: int, c1: int) -> None:
            tmp = np.empty((c1 - c0, Ho, Wo, N), dtype=gy.dtype)
            gs = g5[c0:c1].reshape(c1 - c0, m, L)
            for u, v in np.ndindex(kh, kw):
                if need_w:
                    tap = np.ascontiguousarray(self._taps(self.kept, u, v)[c0:c1]).reshape(c1 - c0, L, 1)
                    gw[c0:c1, :, u, v] = np.matmul(gs, tap)[:, :, 0]
                if need_x:
                    view = self._taps(gbuf, u, v)[c0:c1]
                    for j in range(m):
                        view += np.multiply(g5[c0:c1, j], w4[c0:c1, j, u, v].reshape(-1, 1, 1, 1), out=tmp)

        workspace.parallel(work, C, -(-workspace.MIN_PIECE // (m * kh * kw * L)))
        gb = g.sum(axis=1) if need_b and b is not None else None
        if staged is not None:
            workspace.give(staged)
        gx = self._unpad_grad(gbuf, x.shape) if need_x else None
        return gx, (gw.reshape(w.shape) if need_w else None), gb


def _algorithm(k_rows: int, stride_h: int, dtype: Any) -> str:
    """Which algorithm runs a conv with ``k_rows`` = C_in*kW GEMM rows per kernel row (module docstring)."""
    if ALGORITHM in ("rows", "im2col"):
        return ALGORITHM  # (rows without BLAS accumulation is slower, not wrong: blas.gemm falls back)
    if ALGORITHM is not None:
        raise ArgumentError(f"conv2d: GPUCNN_CONV_ALGORITHM (gpucnn.functions._conv_numpy.ALGORITHM) must be "
                            f"'rows', 'im2col' or unset, got {ALGORITHM!r}")
    return "rows" if k_rows >= ROWS_MIN_K and stride_h == 1 and blas.accelerated(dtype) else "im2col"


def _gy_matrix(gy: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """gy (N, C_out, Ho, Wo) as the matrix g (C_out, Ho*Wo*N), and the workspace buffer it was staged in
    (None when gy already is laid out (C_out, Ho, Wo, N), as the next layer's gradients usually are)."""
    N, Co, Ho, Wo = gy.shape
    g4 = gy.transpose(1, 2, 3, 0)
    staged = None
    if not g4.flags.c_contiguous:
        staged = workspace.take((Co, Ho, Wo, N), gy.dtype)
        workspace.map_batch(lambda s: np.copyto(staged[s], g4[s]), Co, Ho * Wo * N)
        g4 = staged
    return g4.reshape(Co, Ho * Wo * N), staged


def _threads_for(elements: int) -> int:
    """Threads a NumPy-path conv splits over, given the elements its column buffers and GEMM output
    hold: all of them (gpucnn.workspace.threads()) for large convs, one for small ones."""
    return workspace.threads() if elements >= SPLIT_ELEMENTS else 1


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

