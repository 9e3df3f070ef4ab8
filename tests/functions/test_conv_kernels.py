"""conv2d / conv1d CUDA kernels (kernels_cuda/conv.cu) on the kernel devices vs the NumPy path.

Every test runs on ``kernel_device``: the emulator in forward, reverse and shuffled thread order (and cuda
when a GPU is present). Forward, dx, dw and db are compared with the NumPy path (device cpu) on the same
data, in float32 and float64, over odd shapes and every option (a grid that covers each option at least
once with odd sizes, not the cartesian product).

Tolerances. Each compared element is a sum of ``n`` products (plus a bias). Any summation order or tree,
with or without FMA contraction, gives a result within ``gamma_n * S`` of the exact sum, where
``gamma_n = n*u / (1 - n*u)`` (u: the unit roundoff) and ``S`` is the sum of the products' magnitudes
(Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 4.2 and 3.1). The kernels (blocked
K loop, split-K, FMA on a GPU but not on the emulator) and the NumPy path (BLAS GEMM, col2im slice-adds,
border folds) are two such orders, so they may differ by up to ``2 * gamma_n * S``; ``S`` is computed
here by running the NumPy path in float64 on |x|, |w|, |b|, |gy|. That bound is ~n * 1.1e-16 relative
in float64 (about 1e-13 for the largest n here, within the ~1e-12 a float64 comparison should hold) and
n * 6e-8 in float32. Bit equality is never asked between devices; it is asked between thread orders of
the same device (the kernels are deterministic).
"""
import copy
import re
from pathlib import Path

import numpy as np
import pytest

import gpucnn
from gpucnn import ShapeError, emu, nn
from gpucnn.functions import _conv_tiles
from gpucnn.functions import conv as conv_mod
from gpucnn.functions.conv import Conv2d, conv1d, conv2d

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]


def case(id, N, C, size, Co, k, stride=1, padding=0, dilation=1, mode="zeros", bias=True):
    return pytest.param(dict(N=N, C=C, size=size, Co=Co, k=k, stride=stride, padding=padding,
                             dilation=dilation, mode=mode, bias=bias), id=id)


# (H, W) sizes are not multiples of the 64-wide tiles; C_out 5 / 70 (one and two M-tiles).
CASES_2D = [
    case("1ch-3x3-p1", 1, 1, (7, 9), 5, (3, 3), padding=1),
    case("1x1-s2-Co70-nobias", 3, 3, (9, 7), 70, (1, 1), stride=2, bias=False),
    case("7x7-p3-reflect", 2, 2, (7, 9), 5, (7, 7), padding=3, mode="reflect"),
    case("2x3-s21-p21-replicate", 3, 2, (9, 7), 4, (2, 3), stride=(2, 1), padding=(2, 1), mode="replicate"),
    case("same-s2-odd-even-circular", 2, 3, (9, 8), 5, (3, 3), stride=2, padding="same", mode="circular"),
    case("same-s2-2x2-even-odd", 1, 2, (8, 9), 3, (2, 2), stride=2, padding="same"),
    case("same-s2-3x2-reflect", 2, 2, (8, 7), 6, (3, 2), stride=2, padding="same", mode="reflect"),
    case("same-s1-2x3", 3, 3, (7, 7), 5, (2, 3), padding="same", bias=False),
    case("valid-dil2", 3, 2, (9, 9), 5, (3, 3), padding="valid", dilation=2),
    case("dil2-s2-p2-reflect", 2, 3, (9, 7), 5, (3, 3), stride=2, padding=2, dilation=2, mode="reflect"),
    case("dil12-replicate-p3-tiny", 1, 2, (3, 4), 3, (3, 3), padding=3, dilation=(1, 2), mode="replicate"),
    case("circular-p=n-s2", 2, 1, (3, 4), 2, (3, 3), stride=2, padding=(3, 4), mode="circular"),
    case("reflect-p=n-1-s12", 2, 2, (4, 5), 3, (3, 3), stride=(1, 2), padding=(3, 4), mode="reflect"),
    case("zeros-p2-s2-7x7", 1, 2, (9, 7), 4, (7, 7), stride=2, padding=2),
    # backward-filter K = 4*16*15 = 960: 60 K-steps, which the default heuristic splits 7 ways
    case("split-k-16x15", 4, 3, (16, 15), 8, (3, 3), padding=1, mode="replicate"),
]
CASES_1D = [
    case("conv1d-same-s2-reflect", 3, 2, (9,), 5, (3,), stride=2, padding="same", mode="reflect"),
    case("conv1d-dil2-p2-circular", 2, 3, (8,), 4, (3,), padding=2, dilation=2, mode="circular", bias=False),
    case("conv1d-k1-replicate", 1, 1, (5,), 70, (1,), padding=1, mode="replicate"),
]


def _data(p, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((p["N"], p["C"]) + p["size"])
    w = rng.standard_normal((p["Co"], p["C"]) + p["k"])
    b = rng.standard_normal(p["Co"]) if p["bias"] else None
    return x, w, b


def _run(device, dtype, p, x, w, b, gy=None, need_x=True):
    """y, gx, gw, gb (NumPy arrays; None where absent) of conv2d/conv1d on ``device`` in ``dtype``."""
    op = conv1d if len(p["size"]) == 1 else conv2d
    tx = gpucnn.tensor(x.astype(dtype), device=device, requires_grad=need_x)
    tw = gpucnn.tensor(w.astype(dtype), device=device, requires_grad=True)
    tb = None if b is None else gpucnn.tensor(b.astype(dtype), device=device, requires_grad=True)
    y = op(tx, tw, tb, stride=p["stride"], padding=p["padding"], dilation=p["dilation"], padding_mode=p["mode"])
    assert y.dtype == dtype and y.device == device
    if gy is None:
        return y.numpy(), None, None, None
    y.backward(gpucnn.tensor(gy.astype(dtype), device=device))
    grads = [None if t is None or t.grad is None else t.grad.numpy() for t in (tx, tw, tb)]
    for g in grads:
        assert g is None or g.dtype == dtype
    return (y.numpy(), *grads)


def _pads(p):
    """(top, bottom, left, right) as conv2d / conv1d resolve them (conv1d: rows unpadded)."""
    nd = len(p["size"])
    x, w, _ = _data(p)
    _, pads, _, _ = conv_mod._validate("conv", gpucnn.tensor(x), gpucnn.tensor(w), None, p["stride"], p["padding"],
                                    p["dilation"], p["mode"], nd)
    return ((0, 0),) * (2 - nd) + tuple(pads)


def _terms(p):
    """Upper bounds on the number of products summed into one element of y, gx, gw, gb."""
    kk = int(np.prod(p["k"]))
    (pt, pb), (pl, pr) = _pads(p)
    y = _run("cpu", np.float64, p, *_data(p))[0]
    q = y.shape[0] * int(np.prod(y.shape[2:]))  # N * output positions
    # A pixel of gx collects every padded position mapped onto it (replicate: a whole border strip).
    preimages = (1 + pt + pb) * (1 + pl + pr)
    return p["C"] * kk + 1, p["Co"] * kk * preimages, q, q


def _check(got, ref, mag, n, dtype, what):
    assert got.shape == ref.shape, what
    assert np.all(np.isfinite(got)), f"{what}: non-finite values"
    u = np.finfo(dtype).eps / 2
    n = n + 1  # the rounding of each product
    tol = 2 * (n * u / (1 - n * u)) * mag + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(err - tol), err.shape)
    assert np.all(err <= tol), (f"{what}: |diff| {err[worst]:.3g} > tol {tol[worst]:.3g} at {worst} "
                                f"(got {got[worst]!r}, NumPy path {ref[worst]!r})")


def _compare(device, dtype, p, seed=0):
    x, w, b = _data(p, seed)
    y_shape = _run("cpu", np.float64, p, x, w, b)[0].shape
    gy = np.random.default_rng(seed + 1).standard_normal(y_shape)
    ref = _run("cpu", dtype, p, x, w, b, gy)
    got = _run(device, dtype, p, x, w, b, gy)
    mag = _run("cpu", np.float64, p, np.abs(x), np.abs(w), None if b is None else np.abs(b), np.abs(gy))
    for name, g, r, m, n in zip(("y", "gx", "gw", "gb"), got, ref, mag, _terms(p)):
        if r is None:
            assert g is None, name
            continue
        _check(g, r, m, n, dtype, f"{name} on {device}")
    return got


# -- the option grid -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", CASES_2D + CASES_1D)
def test_matches_numpy_path(kernel_device, dtype, p):
    _compare(kernel_device, dtype, p)


# -- tile boundaries, split-K, determinism ---------------------------------------------------------

# K = C*kH*kW = 72 spans 5 K-steps of 16 (forward), N = 2*9*9 = 162 spans 3 N-tiles of 64, C_out = 70
# spans 2 M-tiles; backward-data K = 70*9 = 630; backward-filter K = N*OH*OW = 162 (11 K-steps).
TILES = dict(N=2, C=8, size=(9, 9), Co=70, k=(3, 3), stride=1, padding=1, dilation=1, mode="reflect", bias=True)


@pytest.mark.parametrize("splits", ["auto", "one", "many"])
def test_tile_boundaries_and_split_k(kernel_device, monkeypatch, splits):
    if splits == "one":
        monkeypatch.setattr(conv_mod, "_DW_TARGET_BLOCKS", 1)
    elif splits == "many":
        monkeypatch.setattr(conv_mod, "_DW_MIN_KSTEPS_PER_SPLIT", 1)  # 11 splits of one K-step each
    _compare(kernel_device, np.float32, TILES, seed=3)


@pytest.mark.parametrize("min_per_block", [2048, 37, 1])
def test_bias_gradient_split_over_blocks(kernel_device, monkeypatch, min_per_block):
    # 162 positions per channel: one block per channel, 4 splits of 41 (the last 39), or 8 splits (528
    # target blocks / 70 channels) of 21 (the last 15); the partial sums are added in split order.
    monkeypatch.setattr(conv_mod, "_BIAS_MIN_PER_BLOCK", min_per_block)
    grids = []
    orig = Conv2d._kernel

    def spy(self, name, dtype, tile):
        kernel = orig(self, name, dtype, tile)
        if name != "conv2d_backward_bias":
            return kernel
        return lambda grid, block, args, **kw: (grids.append(grid), kernel(grid, block, args, **kw))

    monkeypatch.setattr(Conv2d, "_kernel", spy)
    for dtype in (np.float32, np.float64):
        _compare(kernel_device, dtype, TILES, seed=4)
    assert {g[1] for g in grids} == {{2048: 1, 37: 4, 1: 8}[min_per_block]} and {g[0] for g in grids} == {70}


@pytest.mark.parametrize("tile", _conv_tiles.CANDIDATES, ids=str)
@pytest.mark.parametrize("Q, Co, Kf", [(1, 1, 1), (162, 70, 72), (16 * 100 + 3, 8, 9), (50176, 32, 27),
                                       (10**6, 512, 4608), (64, 1, 1)])
def test_split_k_partition(Q, Co, Kf, tile):
    splits, per = conv_mod._split_k(Q, Co, Kf, tile)
    assert 1 <= splits <= conv_mod._DW_MAX_SPLITS and per % tile.bk == 0
    assert (splits - 1) * per < Q <= splits * per  # every split non-empty, together they cover Q
    assert splits == 1 or splits * Co * Kf <= conv_mod._DW_MAX_WORKSPACE


def test_deterministic_across_thread_orders():
    # No atomics, fixed summation orders: every thread order gives the same bits (split-K included).
    x, w, b = _data(TILES, seed=5)
    gy = np.random.default_rng(6).standard_normal((2, 70, 9, 9))
    results = []
    for order in ("forward", "reverse", "shuffled"):
        with emu.thread_order(order, seed=99):
            results.append(_run("emu", np.float32, TILES, x, w, b, gy))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


# -- wiring ----------------------------------------------------------------------------------------

def test_first_layer_skips_input_gradient(monkeypatch):
    launched = []
    orig = Conv2d._kernel

    def spy(self, name, dtype, tile):
        launched.append(name)
        return orig(self, name, dtype, tile)

    monkeypatch.setattr(Conv2d, "_kernel", spy)
    p = dict(CASES_2D[0].values[0])
    x, w, b = _data(p)
    y, gx, gw, gb = _run("emu", np.float32, p, x, w, b, np.ones((1, 5, 7, 9)), need_x=False)
    assert gx is None and gw is not None and gb is not None
    assert "conv2d_backward_data" not in launched
    assert {"conv2d_forward", "conv2d_backward_filter", "conv2d_backward_bias"} <= set(launched)


def test_no_kernel_gets_a_none_argument(monkeypatch):
    # CuPy < 14 passes None as a garbage pointer (cupy#9046): a bias-less conv (every conv+BN model)
    # must give the kernels a real array, with a flag saying there is no bias.
    calls = []
    orig = Conv2d._kernel

    def spy(self, name, dtype, tile):
        kernel = orig(self, name, dtype, tile)
        return lambda grid, block, args, **kw: (calls.append((name, args)), kernel(grid, block, args, **kw))

    monkeypatch.setattr(Conv2d, "_kernel", spy)
    p = dict(CASES_2D[0].values[0], bias=False)
    x, w, b = _data(p)
    y, gx, gw, gb = _run("emu", np.float32, p, x, w, b, np.ones((1, 5, 7, 9)))
    assert {name for name, _ in calls} >= {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter"}
    for name, args in calls:
        assert all(a is not None for a in args), f"{name} got None among its arguments"
    _compare("emu", np.float32, p, seed=3)  # and the bias-less result is still right


def test_int32_guard():
    op = Conv2d()
    op._check_int32(ok=conv_mod._INT32_LIMIT)
    with pytest.raises(ShapeError, match=r"conv2d: input size is 2,147,483,648, more than the CUDA kernels' "
                                         r"32-bit index limit"):
        op._check_int32(input_size=2**31)


def test_host_tile_constants_match_kernel_defaults():
    src = Path(conv_mod.__file__).resolve().parents[2].joinpath("kernels_cuda", "conv.cu").read_text()
    defaults = {m[0]: int(m[1]) for m in re.findall(r"#ifndef (CONV_\w+)\n#define \1 (\d+)", src)}
    assert {k: defaults[k] for k in _conv_tiles.DEFAULT.defines} == _conv_tiles.DEFAULT.defines
    assert defaults["CONV_SMEM_PAD"] == _conv_tiles._SMEM_PAD
    assert defaults["CONV_REDUCE_THREADS"] == conv_mod._REDUCE_THREADS
    assert _conv_tiles.CANDIDATES[0] == _conv_tiles.DEFAULT  # what runs with tuning off
    for name in ("conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter"):
        assert gpucnn.get_device("emu").kernel("conv", name, T="float").launch_bounds == _conv_tiles.DEFAULT.threads


# -- tile shapes (the autotuner's candidates) ------------------------------------------------------

@pytest.mark.parametrize("tile", _conv_tiles.CANDIDATES[1:], ids=str)
def test_every_candidate_tile_matches_numpy(monkeypatch, tile):
    # Each tile compiles its own module: the GEMM loops, load mappings and split-K change with it. TILES
    # and the 1x1 stride-2 case cross tile edges in M, N and K for every candidate.
    monkeypatch.setattr(conv_mod, "TILE", tile)
    assert gpucnn.get_device("emu").kernel("conv", "conv2d_forward", T="float",
                                           **tile.defines).launch_bounds == tile.threads
    for dtype in (np.float32, np.float64):
        _compare("emu", dtype, TILES, seed=11)
    _compare("emu", np.float32, dict(CASES_2D[1].values[0]), seed=12)


def test_tiles_reject_shapes_the_kernels_cannot_run():
    assert all(not t.problems() for t in _conv_tiles.CANDIDATES)
    assert len(set(_conv_tiles.CANDIDATES)) == len(_conv_tiles.CANDIDATES)
    T = _conv_tiles.Tile
    assert any("must divide" in p for p in T(64, 64, 16, 8, 3).problems())
    assert any("1024" in p for p in T(256, 256, 16, 4, 4).problems())
    assert any("shared memory" in p for p in T(32, 32, 64, 4, 4).problems())     # 67,584 bytes in double
    assert not T(32, 32, 64, 4, 4).problems(itemsize=4)                           # 33,792 in float
    assert any("A-tile" in p for p in T(64, 64, 256, 8, 4).problems())            # 128 threads, BK 256
    assert T(32, 64, 4, 8, 8).problems()[0].startswith("B-tile")                  # 32 threads, BN 64
    assert T.parse("64x128x8/4x8") == T(64, 128, 8, 4, 8) and str(T(64, 128, 8, 4, 8)) == "64x128x8/4x8"
    with pytest.raises(ValueError, match="BMxBNxBK/TMxTN"):
        T.parse("64x64")


def test_forced_tile_from_the_environment(monkeypatch):
    monkeypatch.setenv("GPUCNN_CONV_TILE", "32x64x16/4x4")
    assert conv_mod._forced_tile() == _conv_tiles.Tile(32, 64, 16, 4, 4)
    monkeypatch.setenv("GPUCNN_CONV_TILE", "64x64x16/8x3")
    with pytest.raises(gpucnn.ArgumentError, match=r"GPUCNN_CONV_TILE='64x64x16/8x3' cannot run conv.cu: "
                                                   r"the micro-tile 8x3 must divide"):
        conv_mod._forced_tile()
    monkeypatch.setenv("GPUCNN_CONV_TILE", "big")
    with pytest.raises(gpucnn.ArgumentError, match="GPUCNN_CONV_TILE: expected BMxBNxBK/TMxTN"):
        conv_mod._forced_tile()


# -- through the layers ----------------------------------------------------------------------------

def _model():
    gpucnn.manual_seed(7)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 5, (2, 3), stride=2, padding="same", padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv2d(5, 3, 1, bias=False),
    )


def test_model_to_kernel_device_matches_cpu(kernel_device):
    cpu = _model()
    dev = copy.deepcopy(cpu).to(kernel_device)
    x = np.random.default_rng(8).standard_normal((3, 2, 9, 7)).astype(np.float32)
    y_cpu = cpu(gpucnn.tensor(x))
    y_dev = dev(gpucnn.tensor(x, device=kernel_device))
    assert y_dev.device == kernel_device and y_dev.shape == (3, 3, 5, 4)
    np.testing.assert_allclose(y_dev.numpy(), y_cpu.numpy(), rtol=1e-5, atol=1e-5)
    gy = np.random.default_rng(9).standard_normal(y_cpu.shape).astype(np.float32)
    y_cpu.backward(gpucnn.tensor(gy))
    y_dev.backward(gpucnn.tensor(gy, device=kernel_device))
    named_dev = dict(dev.named_parameters())
    for name, param in cpu.named_parameters():
        other = named_dev[name]
        assert other.grad is not None and other.grad.device == kernel_device, name
        # float32 sums of <= 3*5*4 = 60 (dw) or 2*9 + 1 products of O(1) values: 1e-5 is ample.
        np.testing.assert_allclose(other.grad.numpy(), param.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("dtype,precision,family", [
    (np.float32, "highest", "conv"), (np.float64, "high", "conv"), (np.float32, "high", "conv_tc"),
    (np.float16, "highest", "conv_tc"), (gpucnn.bfloat16, "highest", "conv_tc")])
def test_conv_picks_the_tensor_core_kernels(monkeypatch, dtype, precision, family):
    # float32 under "high" and the 16-bit dtypes run conv_tc.cu's kernels (all three passes, the 16-bit
    # dtypes without a detour through float32); float64 and float32 "highest" the SIMT kernels of conv.cu.
    gpucnn.set_float32_matmul_precision(precision)
    dev = gpucnn.get_device("emu")
    families = []
    orig = type(dev).kernel
    monkeypatch.setattr(type(dev), "kernel", lambda self, fam, name, **kw: (
        families.append((fam, name)), orig(self, fam, name, **kw))[1])
    p = dict(TILES, mode="zeros")
    x, w, b = _data(p)
    y, gx, gw, gb = _run("emu", dtype, p, x, w, b, np.ones((2, 70, 9, 9)))
    gemms = {name for fam, name in families if fam != "conv" or name != "conv2d_backward_bias"}
    assert {fam for fam, name in families if name != "conv2d_backward_bias"
            and not name.endswith("reduce")} == {family}, families
    assert len(gemms) >= 3 and y.dtype == gx.dtype == gw.dtype == gb.dtype == np.dtype(dtype)
