"""The ONNX form of resampling: ``F.interpolate`` (so also :class:`gpucnn.nn.Upsample`, which is traced
through to it) and :class:`gpucnn.nn.PixelShuffle`.

The converters are on the interpolate ops, not on Upsample: the ops hold exactly what was computed (the
nearest source indices; the linear sizes, scales and align_corners), so ``F.interpolate`` in a model's
own forward exports the same way. ``Resize`` is written wherever ONNX Runtime's index rule gives
PyTorch's result; a nearest resize it would index differently is a ``Gather`` of the exact indices.
PixelUnshuffle needs nothing: it is a reshape, a permutation and a reshape, each converted as an op
(ONNX's SpaceToDepth orders the channels differently).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..functions.interpolate import InterpolateLinear, InterpolateNearest
from ..nn import PixelShuffle
from .graph import ExportError, GraphBuilder, Value, converter, op_converter


def _sizes(g: GraphBuilder, x: Value, spatial: Sequence[int]) -> str:
    """Resize's ``sizes`` for any batch: N and C read off the input, the traced spatial sizes after them."""
    lead = g.node("Slice", [g.node("Shape", [x.name]), g.ints([0]), g.ints([2]), g.ints([0])])
    return g.node("Concat", [lead, g.ints(spatial, "sizes")], axis=0)


def _resize(g: GraphBuilder, x: Value, spatial: Sequence[int], scales: Optional[Sequence[float]],
            **attrs: Any) -> str:
    """Resize to ``spatial`` by ``scales`` (its own index rule uses them) or, when None, by ``sizes``."""
    if scales is None:
        return g.node("Resize", [x.name, "", "", _sizes(g, x, spatial)], **attrs)
    constant = g.constant(np.asarray([1.0, 1.0, *scales], dtype=np.float32), "scales")
    return g.node("Resize", [x.name, "", constant], **attrs)


def _float32_scale(n_in: int, n_out: int, scale: float) -> Optional[float]:
    """``scale`` as the float32 Resize stores, nudged by ulps where the output size ``floor(n_in * scale)``
    would miss gpucnn's (``int(n_in * scale)`` in double): onnx's shape inference multiplies in double,
    ONNX Runtime in float32, and both must give ``n_out``; the index rule then moves by ~1e-7 of a pixel.
    None when no nearby float32 does."""
    s = np.float32(scale)
    for _ in range(4):
        sizes = {int(np.floor(np.float32(n_in) * s)), int(np.floor(n_in * float(s)))}
        if sizes == {n_out}:
            return float(s)
        s = np.nextafter(s, np.float32(np.inf) if min(sizes) < n_out else np.float32(0))
    return None


@op_converter(InterpolateNearest)
def interpolate_nearest(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    """Resize (nearest, asymmetric, floor: source ``floor(j / k)``) when every dim is a whole factor ``k``
    whose sources are ``j // k``; otherwise, along each dim that changes, a Gather of gpucnn's own
    source indices (PyTorch's float32 rule and its shortcuts, reproduced by no ONNX index rule)."""
    spatial = out.shape[2:]
    whole = [o % n == 0 and np.array_equal(src, np.arange(o) // (o // n))
             for n, o, src in zip(x.shape[2:], spatial, op.sources)]
    if all(whole):
        return _resize(g, x, spatial, [o // n for n, o in zip(x.shape[2:], spatial)], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    name = x.name
    for d, (n, src) in enumerate(zip(x.shape[2:], op.sources)):
        if not np.array_equal(src, np.arange(n)):
            name = g.node("Gather", [name, g.ints(np.asarray(src), "indices")], axis=2 + d)
    return name


@op_converter(InterpolateLinear)
def interpolate_linear(g: GraphBuilder, op: Any, x: Value, *, out: Value) -> str:
    """Resize (linear). align_corners: ONNX's ``align_corners`` (source ``j (in - 1) / (out - 1)``);
    otherwise ``half_pixel`` (``(j + 0.5) / scale - 0.5``, clamped at 0 in both; not ``pytorch_half_pixel``,
    which maps a single output to 0 where PyTorch maps it to the centre). PyTorch's scale is the
    scale factor when one was given (and not recomputed): Resize's scales; else ``out / in``: its sizes."""
    spatial = out.shape[2:]
    attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if op.align_corners else "half_pixel")
    if op.align_corners or any(s is None for s in op.scales):
        return _resize(g, x, spatial, None, **attrs)
    scales = [_float32_scale(n, o, s) for n, o, s in zip(x.shape[2:], spatial, op.scales)]
    if any(s is None for s in scales):
        raise ExportError(f"interpolate: scale_factor {op.scales} of input size {x.shape[2:]} gives {spatial}, which "
                          f"ONNX's float32 scales do not; give size=... or recompute_scale_factor=True")
    return _resize(g, x, spatial, scales, **attrs)


@converter(PixelShuffle)
def pixel_shuffle(g: GraphBuilder, layer: Any, x: Value, *, out: Value) -> str:
    """DepthToSpace in CRD order: output channel c, offset (i, j) reads input channel c r^2 + i r + j, as
    PyTorch's (DCR, ONNX's default, would read i r C + j C + c)."""
    if x.ndim != 4:
        raise ExportError(f"has a {x.ndim}-D input {x.shape}; ONNX's DepthToSpace takes (N, C, H, W) only")
    return g.node("DepthToSpace", [x.name], blocksize=int(layer.upscale_factor), mode="CRD")
