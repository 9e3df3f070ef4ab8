"""Tensor-core conv kernels (kernels_cuda/conv_tc.cu through gpucnn/functions/_conv_tc.py) against
float64 NumPy references written here (padding through np.pad's own index maps, not the NumPy conv path).

Every kernel test runs on ``kernel_device``: the emulator in forward, reverse and shuffled thread order (and
cuda when a GPU of sm_80+ is present). On emu they need the emulator's PTX support (mma.sync, ldmatrix,
cp.async, cvt.rna.tf32); until it is there they skip, saying so, by a probe that compiles and runs a tiny
kernel using exactly those instructions (``_emu_ptx_missing``), so they start running once it lands.

References and tolerances. Each output element is a dot product of K terms a_i * b_i.
- TF32 (float32 under "high"): the kernel rounds both operands to TF32 (cvt.rna: ties away from zero);
  the reference rounds them the same way (``tf32``, written from the PTX ISA's definition) and sums in
  float64. TF32 x TF32 products are exact in float32 (11 + 11 significant bits), so the only error is the
  FP32 accumulation: at most gamma_K * sum|a_i b_i| with gamma_K ~ K * 2^-24 for any order (Higham 4.2);
  the tensor cores' internal adds may truncate instead of round, so we allow K * 2^-23 (twice that), plus
  one float32 rounding of the result.
- float16 / bfloat16: operands are exact in the dtype, products exact in FP32, FP32 accumulation, one
  rounding to the dtype: within 2 * eps(dtype) * max|y| of the float64 answer (the issue's bound; eps is
  2^-10 for float16, 2^-7 for bfloat16).
"""
import functools
import shutil
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import gpucnn
from gpucnn import emu
from gpucnn.backend import get_device
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.functions import _conv_tc as tc

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"tf32": np.dtype(np.float32), "f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
EPS = {"f16": 2.0**-10, "bf16": 2.0**-7}
NP_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

# -- the emulator's PTX support: a probe per kind, with the instructions and forms conv_tc.cu uses -------
_PROBE = r"""
extern "C" __global__ void probe(const float* x, float* out) {
  __shared__ __align__(16) unsigned s[256];
  const int lane = threadIdx.x;
  s[lane] = 0u; s[lane + 32] = 0u;
  __syncthreads();
#if PROBE_KIND == 0
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"((unsigned)__cvta_generic_to_shared(&s[lane])),
               "l"(x + lane), "r"(4));
  asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group %0;\n" ::"n"(0));
  __syncthreads();
  unsigned a[4], b0, b1, r;
  asm volatile("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(s[lane])));
  a[0] = a[1] = a[2] = a[3] = b0 = b1 = r;
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]));
#else
  s[lane] = 0x3c003c00u;  // float16 1.0 pairs (bfloat16: 1.0 is 0x3f80; any bits do for the probe)
  __syncthreads();
  unsigned a[4];
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"((unsigned)__cvta_generic_to_shared(&s[(lane & 7) * 4])));
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  asm volatile(PROBE_MMA " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(a[0]), "r"(a[1]), "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]));
#endif
  out[lane] = d[0] + d[1] + d[2] + d[3];
}
"""
_PROBE_DEFINES = {
    "tf32": ("-DPROBE_KIND=0",),
    "f16": ("-DPROBE_KIND=1", '-DPROBE_MMA="mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"'),
    "bf16": ("-DPROBE_KIND=2", '-DPROBE_MMA="mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"'),
}


@functools.lru_cache(maxsize=None)
def _emu_ptx_missing(kind: str):
    """None when the emulator runs the PTX that conv_tc.cu's ``kind`` path uses, else why not."""
    try:
        fn = emu.RawModule(code=_PROBE, options=_PROBE_DEFINES[kind], filename="conv_tc_probe.cu").get_function("probe")
        fn((1,), (32,), (np.ones(32, np.float32), np.zeros(32, np.float32)))
    except emu.EmuError as e:
        return f"the emulator does not run conv_tc.cu's {kind} PTX yet: {str(e).splitlines()[0][:200]}"
    return None


def _requires(device_name: str, kind: str) -> None:
    if device_name == "emu":
        why = _emu_ptx_missing(kind)
        if why:
            pytest.skip(why)
    else:
        why = tc.device_reason(get_device(device_name))
        if why:
            pytest.skip(why)


# -- references ----------------------------------------------------------------------------------------
def tf32(a: np.ndarray) -> np.ndarray:
    """float32 -> TF32 as PTX's cvt.rna.tf32.f32: keep 10 mantissa bits, round to nearest, ties away from
    zero (add half of the 13 dropped bits' weight to the magnitude, then truncate); finite inputs only."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source index of every padded position along one dim (-1 = zero), from np.pad's own modes."""
    idx = np.arange(n)
    if mode == "zeros":
        return np.pad(idx, (before, after), mode="constant", constant_values=-1)
    return np.pad(idx, (before, after), mode=NP_PAD[mode])


def _taps(geo):
    """(r, s, row slice, column slice) of the padded input read by tap (r, s) for every output."""
    (N, C, H, W), (Co, _, kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw), mode = geo
    OH = (H + pt + pb - (kh - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (kw - 1) * dw - 1) // sw + 1
    for r in range(kh):
        for s in range(kw):
            yield r, s, slice(r * dh, r * dh + (OH - 1) * sh + 1, sh), slice(s * dw, s * dw + (OW - 1) * sw + 1, sw)


def _padded(x, geo):
    """x padded per the mode (float64), and the two index maps."""
    (_, _, H, W), _, _, (pt, pb, pl, pr), _, mode = geo
    ih, iw = _pad_index(H, pt, pb, mode), _pad_index(W, pl, pr, mode)
    xp = x.astype(np.float64)[:, :, np.maximum(ih, 0)][:, :, :, np.maximum(iw, 0)]
    xp = xp * ((ih >= 0)[:, None] & (iw >= 0)[None, :])
    return xp, ih, iw


def ref_forward(x, w, b, geo):
    xp, _, _ = _padded(x, geo)
    y = sum(np.einsum("oc,nchw->nohw", w[:, :, r, s].astype(np.float64), xp[:, :, hs, ws])
            for r, s, hs, ws in _taps(geo))
    return y if b is None else y + b.astype(np.float64)[None, :, None, None]


def ref_backward_data(gy, w, geo):
    (N, C, H, W) = geo[0]
    xp, ih, iw = _padded(np.zeros(geo[0]), geo)
    gxp = np.zeros_like(xp)
    for r, s, hs, ws in _taps(geo):
        gxp[:, :, hs, ws] += np.einsum("oc,nohw->nchw", w[:, :, r, s].astype(np.float64), gy.astype(np.float64))
    gx = np.zeros((N, C, H, W))
    for i, hi in enumerate(ih):  # fold the padded gradient onto the source pixels
        for j, wj in enumerate(iw):
            if hi >= 0 and wj >= 0:
                gx[:, :, hi, wj] += gxp[:, :, i, j]
    return gx


def ref_backward_filter(x, gy, geo):
    xp, _, _ = _padded(x, geo)
    gw = np.zeros(geo[1])
    for r, s, hs, ws in _taps(geo):
        gw[:, :, r, s] = np.einsum("nohw,nchw->oc", gy.astype(np.float64), xp[:, :, hs, ws])
    return gw


# -- cases ---------------------------------------------------------------------------------------------
def case(id, N, C, size, Co, k, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), mode="zeros", bias=True):
    return pytest.param(((N, C) + size, (Co, C) + k, stride, padding, dilation, mode, bias), id=id)


# Sizes are not multiples of the 64-wide tiles; K from 3 (one partial K-step) to 144 (9 TF32 K-steps:
# deeper than the 3-stage pipeline); C_out 70 spans two M tiles.
CASES = [
    case("3x3-p1", 2, 3, (7, 9), 5, (3, 3), padding=(1, 1, 1, 1)),
    case("deep-K-16ch", 1, 16, (5, 6), 9, (3, 3), padding=(1, 1, 1, 1), bias=False),
    case("reflect-s2-d2", 2, 2, (9, 8), 4, (3, 3), stride=(2, 2), padding=(2, 2, 2, 2), dilation=(2, 2),
         mode="reflect"),
    case("replicate-2x3-s21-Co70", 1, 3, (6, 7), 70, (2, 3), stride=(2, 1), padding=(2, 1, 1, 0), mode="replicate"),
    case("circular-p=n-s2", 2, 1, (3, 4), 2, (3, 3), stride=(2, 2), padding=(3, 3, 4, 4), mode="circular"),
    case("1x1-s2-K40", 2, 40, (5, 5), 8, (1, 1), stride=(2, 2), bias=False),
    case("conv1d-reflect-s2", 3, 2, (1, 20), 5, (1, 3), stride=(1, 2), padding=(0, 0, 1, 1), mode="reflect"),
    # pointwise (1x1, stride 1, no padding): backward-filter's x is contiguous (its own kernel); H*W = 24
    # (16-byte copies of x and gy) and 15 (odd: 16-bit runs through registers, TF32 4-byte copies)
    case("pointwise-HW24", 2, 12, (4, 6), 6, (1, 1), bias=False),
    case("pointwise-HW15-Co70", 3, 5, (3, 5), 70, (1, 1)),
]
# The contiguous operands' run lengths and the copies they get in 16 bits (_conv_tc.copy_width; R: through
# registers): forward's w rows C*kH*kW = 27 R, 144 16 B, 18 4 B, 18 4 B, 9 R, 40 16 B, 6 4 B, 12 8 B, 5 R;
# backward-data's transposed w rows C_out*kH*kW = 45 R, 81 R, 36 8 B, 420 8 B, 18 4 B, 8 16 B, 15 R, 6 4 B,
# 70 4 B; gy's OH*OW runs 63 R, 30 4 B, 20 8 B, 24 16 B, 20 8 B, 9 R, 10 4 B, 24 16 B, 15 R: every width and
# the register path, runs shorter and longer than a K-step, tails zero-filled.


def _data(geo, kind, seed=0):
    """Inputs exactly representable in the kernel's operand type, so the reference sees what the kernel sees
    (float32 inputs stay unrounded: the kernel's own cvt.rna is under test)."""
    rng = np.random.default_rng(seed)
    x_shape, w_shape, stride, padding, dilation, mode, with_bias = geo
    dt = KINDS[kind]
    x = rng.standard_normal(x_shape).astype(dt)
    w = rng.standard_normal(w_shape).astype(dt)
    b = rng.standard_normal(w_shape[0]).astype(dt) if with_bias else None
    return x, w, b


def _geo(geo):
    x_shape, w_shape, stride, padding, dilation, mode, _ = geo
    return x_shape, w_shape, stride, padding, dilation, mode


def _out_shape(geo):
    (N, _, H, W), (Co, _, kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw), _ = _geo(geo)
    return N, Co, (H + pt + pb - (kh - 1) * dh - 1) // sh + 1, (W + pl + pr - (kw - 1) * dw - 1) // sw + 1


def _check(got, exact, bound, what):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == exact.shape, what
    err = np.abs(got - exact)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (f"{what}: |error| {err[worst]:.3g} > bound {np.broadcast_to(bound, err.shape)[worst]:.3g} "
                                  f"at {worst} (got {got[worst]!r}, exact {exact[worst]!r})")


def _compare(kind, got, a, b, ref, extra=None):
    """got vs ref(a, b) (a float64 reference of the GEMM's operands a, b) with the bound of the module doc."""
    if kind == "tf32":
        a, b = tf32(a), tf32(b)
        exact = ref(a, b)
        K = ref(np.ones_like(a), np.ones_like(b)).max()  # terms per element (an upper bound)
        bound = K * 2.0**-23 * ref(np.abs(a), np.abs(b)) + 2.0**-24 * np.abs(exact)
        if extra is not None:
            exact = exact + extra
            bound = bound + 2.0**-24 * np.abs(exact)
    else:
        exact = ref(a.astype(np.float64), b.astype(np.float64))
        if extra is not None:
            exact = exact + extra
        bound = 2 * EPS[kind] * np.abs(exact).max() + 1e-30
    return exact, bound


# -- the three passes ---------------------------------------------------------------------------------
def _setup(device_name, kind, geo, gy_seed):
    """(device, x, w, b, gy, geometry) for one case, skipping where the device cannot run ``kind``."""
    _requires(device_name, kind)
    x, w, b = _data(geo, kind)
    gy = np.random.default_rng(gy_seed).standard_normal(_out_shape(geo)).astype(KINDS[kind])
    return get_device(device_name), x, w, b, gy, _geo(geo)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("geo", CASES)
def test_forward(kernel_device, kind, geo):
    dev, x, w, b, _, g = _setup(kernel_device, kind, geo, 0)
    y = tc.conv2d_tc_forward(dev, dev.xp.asarray(x), dev.xp.asarray(w), None if b is None else dev.xp.asarray(b),
                             *g[2:])
    assert y.dtype == KINDS[kind] and y.shape == _out_shape(geo)
    extra = None if b is None else b.astype(np.float64)[None, :, None, None]
    exact, bound = _compare(kind, y, x, w, lambda xx, ww: ref_forward(xx, ww, None, g), extra)
    _check(_host(y), exact, bound, f"forward {kind}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("geo", CASES)
def test_backward_data(kernel_device, kind, geo):
    dev, _, w, _, gy, g = _setup(kernel_device, kind, geo, 1)
    gx = tc.conv2d_tc_backward_data(dev, dev.xp.asarray(gy), dev.xp.asarray(w), g[0], *g[2:])
    assert gx.dtype == KINDS[kind] and gx.shape == g[0]
    exact, bound = _compare(kind, gx, gy, w, lambda gg, ww: ref_backward_data(gg, ww, g))
    _check(_host(gx), exact, bound, f"backward-data {kind}")


@pytest.mark.parametrize("splits", [None, 3])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("geo", CASES)
def test_backward_filter(kernel_device, kind, geo, splits):
    dev, x, w, _, gy, g = _setup(kernel_device, kind, geo, 2)
    gw = tc.conv2d_tc_backward_filter(dev, dev.xp.asarray(x), dev.xp.asarray(gy), w.shape, *g[2:], splits=splits)
    assert gw.dtype == KINDS[kind] and gw.shape == w.shape
    exact, bound = _compare(kind, gw, x, gy, lambda xx, gg: ref_backward_filter(xx, gg, g))
    _check(_host(gw), exact, bound, f"backward-filter {kind} splits={splits}")


def _host(a):
    return a.get() if hasattr(a, "get") else a


# -- the contiguous operands' copy widths -------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("geo", [CASES[1], CASES[5], CASES[7]], ids=["deep-K-16ch", "1x1-s2-K40", "pointwise-HW24"])
def test_copy_width_changes_no_bit(kind, geo):
    """The same cases with the contiguous operands' cp.async copies capped at 8, 4 and 0 bytes (0: 16-bit
    runs through registers; float32 keeps 4-byte copies) give bit-identical results to the widest copies
    (16 bytes for these shapes), and those match the float64 references (test_forward & co)."""
    dev, x, w, b, gy, g = _setup("emu", kind, geo, 3)
    def passes(max_vec):
        return (tc.conv2d_tc_forward(dev, x, w, b, *g[2:], max_vec=max_vec),
                tc.conv2d_tc_backward_data(dev, gy, w, g[0], *g[2:], max_vec=max_vec),
                tc.conv2d_tc_backward_filter(dev, x, gy, w.shape, *g[2:], splits=2, max_vec=max_vec))
    widest = passes(16)
    exact, bound = _compare(kind, widest[0], x, w, lambda xx, ww: ref_forward(xx, ww, None, g),
                            None if b is None else b.astype(np.float64)[None, :, None, None])
    _check(widest[0], exact, bound, f"forward {kind}")
    for max_vec in (8, 4, 0):
        for what, a, ref in zip(("forward", "backward-data", "backward-filter"), passes(max_vec), widest):
            assert a.tobytes() == ref.tobytes(), f"{what} {kind}: max_vec={max_vec} differs from 16-byte copies"


def test_copy_width_choice():
    """The widest copy that divides the run's bytes and the address, at most max_vec; 16-bit odd runs get
    the register path (0), float32 never less than 4 bytes."""
    h = np.zeros(64, np.float16)
    f = np.zeros(64, np.float32)
    assert tc._address(h) % 16 == 0  # (NumPy aligns allocations of this size to 16 bytes and more)
    assert [tc.copy_width(h, run) for run in (8, 16, 4, 12, 2, 6, 1, 27)] == [16, 16, 8, 8, 4, 4, 0, 0]
    assert [tc.copy_width(f, run) for run in (4, 2, 6, 1, 27)] == [16, 8, 8, 4, 4]
    assert [tc.copy_width(h, 8, m) for m in (16, 8, 4, 0)] == [16, 8, 4, 0]
    assert tc.copy_width(f, 8, 0) == 4
    assert tc.copy_width(h[2:], 8) == 4 and tc.copy_width(h[1:], 8) == 0  # a view: 4- and 2-byte aligned
    assert tc.copy_width(f[1:], 8) == 4 and tc.copy_width(f[2:], 8) == 8
    assert tc.is_pointwise((4, 3, 1, 1), (1, 1), (0, 0, 0, 0))
    assert not tc.is_pointwise((4, 3, 1, 1), (2, 1), (0, 0, 0, 0))
    assert not tc.is_pointwise((4, 3, 1, 1), (1, 1), (0, 1, 0, 0))
    assert not tc.is_pointwise((4, 3, 1, 3), (1, 1), (0, 0, 0, 0))


@pytest.mark.parametrize("kind", list(KINDS))
def test_deterministic_across_thread_orders(kind):
    """Bit-equal results whatever order the emulator runs the threads in (fixed summation order, split-K
    reduced in split order, no atomics)."""
    dev, x, w, b, gy, g = _setup("emu", kind, CASES[3].values[0], 6)
    runs = []
    for order in ("forward", "reverse", "shuffled"):
        with emu.thread_order(order, seed=7):
            runs.append((tc.conv2d_tc_forward(dev, x, w, b, *g[2:]),
                         tc.conv2d_tc_backward_data(dev, gy, w, g[0], *g[2:]),
                         tc.conv2d_tc_backward_filter(dev, x, gy, w.shape, *g[2:], splits=2)))
    for other in runs[1:]:
        for a, b2 in zip(runs[0], other):
            assert a.tobytes() == b2.tobytes()


# -- the float32 -> float16 / bfloat16 rounding of the epilogues ----------------------------------------
_SPECIAL = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, 65520.0, -1e6, 2.0**-14, 2.0**-24, 2.0**-25,
                     2.0**-25 * 1.0000001, 3 * 2.0**-25, 2.0**-26, 1e-30, 5.960464477539063e-08,
                     1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.4e38, np.inf, -np.inf],
                    dtype=np.float32)


def _rounding_inputs(kind: str) -> np.ndarray:
    """float32 values where rounding to ``kind`` is decided: every value of the dtype, the exact midpoints
    between neighbours (ties: round half to even), the float32 values one ulp either side of both, plus
    specials (overflow, values below the smallest subnormal, infinities)."""
    with np.errstate(invalid="ignore"):  # (the NaN patterns, dropped next)
        every = np.arange(65536, dtype=np.uint16).view(KINDS[kind]).astype(np.float64)
    every = np.sort(every[np.isfinite(every)])
    mid = ((every[:-1] + every[1:]) / 2).astype(np.float32)  # exact: 12 (or 9) significant bits
    both = np.concatenate([mid, every.astype(np.float32)])
    near = np.concatenate([np.nextafter(both, np.float32(np.inf)), np.nextafter(both, np.float32(-np.inf))])
    return np.concatenate([every.astype(np.float32), mid, near, _SPECIAL, -_SPECIAL])


@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_epilogue_rounding_matches_numpy(kind):
    """conv_tc_splitk_reduce with one split is the epilogues' float32 -> dtype conversion alone: it must
    round to nearest even exactly as NumPy's float16 / ml_dtypes' bfloat16 casts, over every tie, the
    subnormals, overflow and infinities, and keep NaN a NaN."""
    _requires("emu", kind)
    dev = get_device("emu")
    v = np.concatenate([_rounding_inputs(kind), np.array([np.nan], np.float32)])
    out = np.empty(v.size, KINDS[kind])
    tc._kernel(dev, "conv_tc_splitk_reduce", kind)((tc._cdiv(v.size, 256), 1, 1), (256, 1, 1),
                                                   (v, out.view(np.uint16), np.int32(1), np.int32(v.size)))
    with np.errstate(over="ignore"):
        want = v.astype(KINDS[kind])
    assert np.isnan(out[-1].astype(np.float32))
    bad = np.flatnonzero(out[:-1].view(np.uint16) != want[:-1].view(np.uint16))
    assert bad.size == 0, [(float(v[i]), hex(out.view(np.uint16)[i]), hex(want.view(np.uint16)[i])) for i in bad[:5]]


# -- host side -----------------------------------------------------------------------------------------
def test_kind_selection():
    assert tc.tc_kind(np.float32, "high") == "tf32"
    assert tc.tc_kind(np.float32, "highest") is None
    assert tc.tc_kind(np.float64, "high") is None
    assert tc.tc_kind(np.float16, "highest") == "f16"
    assert tc.tc_kind(ml_dtypes.bfloat16, "high") == "bf16"
    assert tc.device_reason(get_device("emu")) is None
    assert "runs no CUDA kernels" in tc.device_reason(get_device("cpu"))


def test_bad_operands_are_named():
    dev = get_device("emu")
    x, w = np.zeros((1, 2, 4, 4), np.float16), np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ArgumentError, match="different dtypes .float16 and float32"):
        tc.conv2d_tc_forward(dev, x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), "zeros")
    with pytest.raises(ArgumentError, match="got float64"):
        tc.conv2d_tc_forward(dev, x.astype(np.float64), w.astype(np.float64), None, (1, 1), (0, 0, 0, 0), (1, 1), "zeros")
    with pytest.raises(ShapeError, match="gy has shape"):
        tc.conv2d_tc_backward_data(dev, np.zeros((1, 3, 3, 3), np.float32), w, x.shape, (1, 1), (0, 0, 0, 0), (1, 1),
                                   "zeros")


def test_split_k_covers_q_without_empty_splits():
    for Q, Co, Kf, step in [(100, 64, 64, 16), (50000, 64, 576, 32), (257, 3, 27, 16), (10**6, 512, 4608, 16)]:
        splits, per = tc.split_k(Q, Co, Kf, step)
        assert per % step == 0 and splits >= 1
        assert (splits - 1) * per < Q <= splits * per  # every split non-empty, Q covered
        assert splits * Co * Kf <= max(tc._MAX_WORKSPACE, Co * Kf)


# -- SASS: the tensor-core instructions are really emitted --------------------------------------------
def _cuobjdump():
    try:
        import nvidia
    except ImportError:
        return shutil.which("cuobjdump")
    for base in nvidia.__path__:
        for p in Path(base).glob("*/bin/cuobjdump"):
            return str(p)
    return shutil.which("cuobjdump")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (the CUDA toolkit) is not installed")
@pytest.mark.skipif(_cuobjdump() is None, reason="cuobjdump not found: pip install nvidia-cuda-cuobjdump")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_sass_has_tensor_core_instructions(tmp_path, arch):
    """Each kind compiles with nvcc with zero spills, and its GEMM kernels' SASS holds 16 HMMA each (2
    slices x 2 x 4 mma per K-step), LDGSTS (cp.async) in every kind -- the 16-byte LDGSTS.E.BYPASS.128
    (cp.async.cg) of the contiguous operands among them -- and LDSM (ldmatrix) for 16-bit."""
    from gpucnn.kernels import compile_options, kernel_source
    for kind, elem in tc.ELEM.items():
        src = tmp_path / f"conv_tc_{kind}.cu"
        src.write_text(kernel_source("conv_tc", (("CONV_TC_ELEM", elem),)))
        cubin = tmp_path / f"conv_tc_{kind}_{arch}.cubin"
        proc = subprocess.run(["nvcc", *compile_options(), f"-arch={arch}", "-cubin", "-o", str(cubin), str(src),
                               "-Xptxas", "-v", "-Xptxas", "-warn-spills"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "spill stores" in proc.stderr
        assert all(line.split("bytes spill stores")[0].split(",")[-1].strip() == "0"
                   for line in proc.stderr.splitlines() if "spill stores" in line), proc.stderr
        sass = subprocess.run([_cuobjdump(), "-sass", str(cubin)], capture_output=True, text=True, check=True).stdout
        for kernel in ("conv_tc_forward", "conv_tc_backward_data", "conv_tc_backward_filter",
                       "conv_tc_backward_filter_pointwise"):
            body = sass.split(f"Function : {kernel}\n")[1].split("Function :")[0]
            assert body.count("HMMA") == 16, (kind, arch, kernel)
            assert "LDGSTS.E.BYPASS.128" in body and ("LDSM" in body) == (kind != "tf32"), (kind, arch, kernel)
