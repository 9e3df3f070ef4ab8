"""Transposed convolutions: conv_transpose2d (NCHW) and conv_transpose1d (NCL, as 2-D with H = 1), PyTorch
semantics (``torch.nn.functional.conv_transpose2d``: the gradient of conv2d with respect to its input).

A transposed convolution of x (N, C_in, H, W) with w (C_in, C_out/groups, kH, kW) is the backward-data
GEMM of the convolution :class:`~gpucnn.functions.conv.Conv2d` that maps (N, C_out, H_out, W_out) to
(N, C_in, H, W) with the same weight, stride, padding, dilation and groups:

    y[n, o, i*sh + u*dh - ph, j*sw + v*dw - pw] += x[n, c, i, j] * w[c, o, u, v]

so its forward runs that conv's ``data_grad``, and its backward that conv's forward (the input gradient)
and its ``filter_grad`` (the weight gradient, with the roles of the conv's input and output gradient
taken by gy and x). Every device, path and kernel is the convolution's: the NumPy path, the SIMT and
depthwise kernels, the tensor-core kernels (groups == 1 under TF32 / float16 / bfloat16), with their
rounding rules. The output size is PyTorch's:
``H_out = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1``; output_padding adds rows at the
bottom (columns at the right) that only the kernel's far taps reach, and must be smaller than the stride
or the dilation. Zero padding only, as PyTorch.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import dtypes
from ..amp.autocast_mode import autocast_function
from ..errors import ArgumentError, ShapeError
from ..function import Function, no_grad
from ..precision import round_tf32, rounded
from ..tensor import Tensor
from ._conv_util import format_param, format_size, ntuple, out_size
from .conv import _HALVES, Conv2d, check_tensors, tensor_core_kind


class ConvTranspose2d(Function):
    """2-D transposed convolution of NCHW ``x`` with ``w`` (C_in, C_out/groups, kh, kw) plus an optional
    bias (C_out,), as the backward-data pass of :class:`Conv2d`.

    Arguments are already validated (see :func:`conv_transpose2d`): ``stride``, ``dilation`` are (h, w)
    pairs, ``padding`` (h, w), ``output_padding`` (h, w).
    """

    name = "conv_transpose2d"

    def __init__(self, stride: tuple[int, int], padding: tuple[int, int], output_padding: tuple[int, int],
                 dilation: tuple[int, int], groups: int = 1, name: Optional[str] = None):
        self.groups = groups
        self.output_padding = output_padding
        if name is not None:
            self.name = name  # "conv_transpose1d"
        (ph, pw), (oph, opw) = padding, output_padding
        # The conv's padding: (p, p) less the output padding at the bottom/right, so that it has exactly H
        # outputs; when output_padding > padding that is not possible with padding >= 0, and the conv gets
        # (p, 0) and a few more outputs (extra rows of zeros in x, cropped off the gradient; see _fit).
        self.conv = Conv2d(stride, (ph, max(ph - oph, 0), pw, max(pw - opw, 0)), dilation, "zeros",
                           name=self.name, groups=groups)

    def _shapes(self, x_shape: tuple, w_shape: tuple) -> tuple[tuple, tuple]:
        """(y's shape, the conv's output shape) for x and w."""
        N, _, H, W = x_shape
        _, Cog, kh, kw = w_shape
        (sh, sw), (dh, dw) = self.conv.stride, self.conv.dilation
        pt, pb, pl, pr = self.conv.padding
        oph, opw = self.output_padding
        Ho = (H - 1) * sh - 2 * pt + dh * (kh - 1) + oph + 1
        Wo = (W - 1) * sw - 2 * pl + dw * (kw - 1) + opw + 1
        conv_out = (N, x_shape[1], out_size(Ho, kh, sh, dh, pt, pb), out_size(Wo, kw, sw, dw, pl, pr))
        return (N, Cog * self.groups, Ho, Wo), conv_out

    def _fit(self, a: Any, shape: tuple) -> Any:
        """``a`` (N, C, H, W) zero-extended at the bottom/right to ``shape`` (no copy when it fits)."""
        if tuple(a.shape) == tuple(shape):
            return a
        out = self.xp.zeros(shape, dtype=a.dtype)
        out[:, :, :a.shape[2], :a.shape[3]] = a
        return out

    def forward(self, xs):
        x, w, b = xs
        conv = self.conv
        conv.prepare(self.device, x.dtype)
        x, w = rounded(self.xp, (x, w), conv.tf32)
        y_shape, conv_out = self._shapes(x.shape, w.shape)
        y = conv.data_grad(self._fit(x, conv_out), w, y_shape)
        if b is not None:
            # (16-bit dtypes: the bias in float32, one rounding, as the conv forward's epilogue)
            y = (y.astype(np.float32) + b.astype(np.float32).reshape(1, -1, 1, 1)).astype(y.dtype) \
                if np.dtype(y.dtype) in _HALVES else y + b.reshape(1, -1, 1, 1)
        return y

    def backward(self, xs, gy):
        x, w, b = xs
        need_x, need_w, need_b = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        conv, xp = self.conv, self.xp
        g = round_tf32(xp, gy) if conv.tf32 else gy
        g = xp.ascontiguousarray(g, dtype=w.dtype)
        x, w = rounded(xp, (x, w), conv.tf32)
        _, conv_out = self._shapes(x.shape, w.shape)
        gx = gw = gb = None
        with no_grad():  # (the conv's NumPy forward keeps no buffer for a backward)
            if need_x:
                gx = conv.output(g, w, None)
                if tuple(gx.shape) != tuple(x.shape):
                    gx = gx[:, :, :x.shape[2], :x.shape[3]]
            if need_w:
                gw = conv.filter_grad(g, self._fit(x, conv_out), w.shape)
        if need_b and b is not None:  # a sum of the exact gy (in float32 for the 16-bit dtypes)
            acc = np.float32 if np.dtype(gy.dtype) in _HALVES else gy.dtype
            gb = gy.sum(axis=(0, 2, 3), dtype=acc).astype(b.dtype)
        return gx, gw, gb


def _validate(op: str, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, output_padding: Any,
              groups: Any, dilation: Any, nd: int) -> tuple:
    """Check transposed-conv arguments for ``nd`` spatial dims; return (stride, padding, output_padding,
    dilation, groups) as tuples (groups an int)."""
    w_layout = "(C_in, C_out/groups, k)" if nd == 1 else "(C_in, C_out/groups, kH, kW)"
    check_tensors(op, input, weight, bias, nd, w_layout)
    if 0 in input.shape or 0 in weight.shape:
        raise ShapeError(f"{op}: expected all dims >= 1, got input shape {input.shape}, weight shape {weight.shape}")
    shapes = f"(input shape {input.shape}, weight shape {weight.shape})"
    (groups,) = ntuple(groups, 1, "groups", op, 1)
    if weight.shape[0] % groups:
        raise ShapeError(f"{op}: weight has {weight.shape[0]} input channels (dim 0), not divisible by "
                         f"groups={groups} {shapes}")
    if input.shape[1] != weight.shape[0]:
        raise ShapeError(f"{op}: input has {input.shape[1]} channels, expected {weight.shape[0]} (weight dim 0) "
                         f"{shapes}")
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise ShapeError(f"{op}: bias has shape {bias.shape}, expected ({c_out},) (one value per output "
                         f"channel: weight dim 1 x groups; weight shape {weight.shape})")
    if isinstance(padding, str):
        raise ArgumentError(f"{op}: padding must be an int >= 0 or a tuple of {nd} of them (PyTorch's transposed "
                            f"convolutions take no 'same'/'valid'), got {padding!r}")
    strides = ntuple(stride, nd, "stride", op, 1)
    dilations = ntuple(dilation, nd, "dilation", op, 1)
    pads = ntuple(padding, nd, "padding", op, 0)
    out_pads = ntuple(output_padding, nd, "output_padding", op, 0)
    for p, s, d in zip(out_pads, strides, dilations):
        if p >= s and p >= d:
            raise ArgumentError(f"{op}: output_padding must be smaller than the stride or the dilation, got "
                                f"output_padding {format_param(out_pads)}, stride {format_param(strides)}, "
                                f"dilation {format_param(dilations)}")
    sizes = tuple(input.shape[2:])
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + q + 1
                for n, s, p, d, k, q in zip(sizes, strides, pads, dilations, weight.shape[2:], out_pads))
    if any(o < 1 for o in out):
        raise ShapeError(f"{op}: output size {format_size(out)} is empty for input {format_size(sizes)}, kernel "
                         f"{format_size(weight.shape[2:])}, stride {format_param(strides)}, padding "
                         f"{format_param(pads)}, dilation {format_param(dilations)}; expected sizes >= 1: reduce the padding")
    return strides, pads, out_pads, dilations, groups


def _in_float32(op: ConvTranspose2d, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """As conv's: 16-bit dtypes run as such on the tensor-core kernels, elsewhere through float32."""
    if input.dtype not in _HALVES or tensor_core_kind(input.device, input.dtype, op.groups) is not None:
        return op(input, weight, bias)
    up = [None if t is None else t.to(dtypes.float32) for t in (input, weight, bias)]
    return op(*up).to(input.dtype)


@autocast_function("lower")
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """2-D transposed convolution of ``input`` (N, C_in, H, W) with ``weight`` (C_in, C_out/groups, kH, kW),
    PyTorch's ``F.conv_transpose2d`` (argument order and output size included).

    - ``bias``: (C_out,) or None.
    - ``stride``, ``dilation``: an int >= 1 or an (h, w) pair; ``padding``: an int >= 0 or a pair (it
      removes ``dilation*(k-1) - padding`` ... rows from each side of the full output, as PyTorch).
    - ``output_padding``: an int >= 0 or a pair, each smaller than the stride or the dilation: extra
      rows/columns at the bottom/right (which of the input sizes a strided conv came from).
    - ``groups``: C_in and C_out split into that many groups (C_in divisible by it).

    Returns (N, C_out, H_out, W_out), ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) +
    output_padding + 1``.
    """
    s, p, op, d, g = _validate("conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups,
                               dilation, 2)
    return _in_float32(ConvTranspose2d(s, p, op, d, g), input, weight, bias)


@autocast_function("lower")
def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """1-D transposed convolution of ``input`` (N, C_in, L) with ``weight`` (C_in, C_out/groups, k), as
    :func:`conv_transpose2d` along L (it runs as that on (N, C_in, 1, L));
    ``L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``."""
    (s,), (p,), (op,), (d,), g = _validate("conv_transpose1d", input, weight, bias, stride, padding,
                                           output_padding, groups, dilation, 1)
    N, C, L = input.shape
    Ci, Cog, k = weight.shape
    y = _in_float32(ConvTranspose2d((1, s), (0, p), (0, op), (1, d), g, name="conv_transpose1d"),
                    input.reshape(N, C, 1, L), weight.reshape(Ci, Cog, 1, k), bias)
    return y.reshape(N, y.shape[1], y.shape[3])
