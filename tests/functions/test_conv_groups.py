"""Grouped and depthwise conv2d / conv1d, padding="same" with dilation and padding="causal": against
PyTorch (values and gradients, float32 and float64), finite differences (float64), and every kernel
(grouped SIMT GEMMs, kernels_cuda/depthwise.cu) on ``kernel_device`` against the NumPy path.

Tolerances: float64 agrees with PyTorch to rounding (1e-10 on O(1) values summed over <= 72 terms);
float32 to 2e-4 relative/absolute (the NumPy path and PyTorch sum in different orders, ~sqrt(K) ulps of
sums of up to 72 products of N(0, 1) values). The emulator runs the kernels' float arithmetic without FMA
contraction, in the kernels' own summation order: float64 to 1e-11, float32 to 2e-5."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
from gpucnn import ArgumentError, ShapeError, emu, nn
from gpucnn.functions import _conv_numpy
from gpucnn.functions.conv import Conv2d, conv1d, conv2d
from tests.torch_ref import same

MODES = ("zeros", "reflect", "replicate", "circular")


def _torch_conv(nd, stride, padding, dilation, groups, mode):
    """PyTorch's conv with our padding: explicit F.pad for the non-zero modes (torch's F.conv has none)."""
    conv = TF.conv2d if nd == 2 else TF.conv1d

    def f(x, w, b):
        if mode == "zeros":
            return conv(x, w, b, stride, padding, dilation, groups)
        p = (padding,) * (2 * nd) if isinstance(padding, int) else padding
        return conv(TF.pad(x, p, mode=mode), w, b, stride, 0, dilation, groups)
    return f


# (C_in, C_out, groups, kernel, stride, padding, dilation, mode); groups=2 with C_in != C_out, depthwise
# with multiplier 1 and 2, stride > kernel, 1x1 kernels, every padding mode
GRID_2D = [
    (4, 6, 2, 3, 1, 1, 1, "zeros"),
    (6, 4, 2, 3, 2, 1, 1, "reflect"),
    (6, 9, 3, (3, 2), (2, 1), 1, (1, 2), "replicate"),
    (4, 4, 4, 3, 1, 1, 1, "zeros"),        # depthwise, multiplier 1
    (3, 6, 3, 3, 2, 2, 2, "circular"),     # depthwise, multiplier 2
    (4, 8, 4, 2, 3, 0, 1, "zeros"),        # depthwise, stride > kernel
    (8, 4, 4, 1, 1, 0, 1, "zeros"),        # 1x1, two input channels per group
    (5, 5, 5, 3, 1, 1, 2, "reflect"),      # depthwise, dilated
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", GRID_2D, ids=lambda c: f"{c[0]}-{c[1]}-g{c[2]}-{c[7]}")
@pytest.mark.parametrize("algorithm", ["rows", "im2col"])
def test_conv2d_groups_match_torch(monkeypatch, algorithm, cfg, dtype):
    monkeypatch.setattr(_conv_numpy, "ALGORITHM", algorithm)  # (groups > 1 run their own paths: no change)
    C, Co, g, k, s, p, d, mode = cfg
    k2 = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(C * Co + g)
    for N in (1, 2):
        x = rng.standard_normal((N, C, 7, 6)).astype(dtype)
        w = rng.standard_normal((Co, C // g) + k2).astype(dtype)
        b = rng.standard_normal(Co).astype(dtype)
        tol = 1e-10 if dtype == np.float64 else 2e-4
        same(lambda x, w, b: conv2d(x, w, b, s, p, d, g, padding_mode=mode), [x, w, b], rtol=tol, atol=tol,
             g=_torch_conv(2, s, p, d, g, mode))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", [(4, 6, 2, 3, 1, 1, 1, "zeros"), (6, 6, 3, 3, 2, 2, 2, "reflect"),
                                 (4, 8, 4, 5, 1, 2, 1, "circular"), (3, 3, 3, 3, 3, 0, 1, "replicate")],
                         ids=lambda c: f"{c[0]}-{c[1]}-g{c[2]}-{c[7]}")
def test_conv1d_groups_match_torch(cfg, dtype):
    C, Co, g, k, s, p, d, mode = cfg
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, C, 11)).astype(dtype)
    w = rng.standard_normal((Co, C // g, k)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    same(lambda x, w, b: conv1d(x, w, b, s, p, d, g, padding_mode=mode), [x, w, b], rtol=tol, atol=tol,
         g=_torch_conv(1, s, p, d, g, mode))


@pytest.mark.parametrize("cfg", [(4, 6, 2, 3, 2, 1, 1, "reflect"), (3, 6, 3, 3, 1, 1, 2, "zeros"),
                                 (4, 4, 4, 2, 2, 1, 1, "circular"), (2, 2, 2, 3, 1, 1, 1, "replicate")])
def test_gradcheck_groups(cfg):
    C, Co, g, k, s, p, d, mode = cfg
    rng = np.random.default_rng(5)
    x = gpucnn.tensor(rng.standard_normal((2, C, 5, 6)), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((Co, C // g, k, k)), requires_grad=True)
    b = gpucnn.tensor(rng.standard_normal(Co), requires_grad=True)
    gpucnn.gradcheck(lambda x, w, b: conv2d(x, w, b, s, p, d, g, padding_mode=mode), [x, w, b])
    x1 = gpucnn.tensor(rng.standard_normal((2, C, 9)), requires_grad=True)
    w1 = gpucnn.tensor(rng.standard_normal((Co, C // g, k)), requires_grad=True)
    gpucnn.gradcheck(lambda x, w, b: conv1d(x, w, b, s, p, d, g, padding_mode=mode), [x1, w1, b])


def test_depthwise_runs_its_own_path_not_a_gemm_per_channel(monkeypatch):
    """The depthwise NumPy path is the direct one (no GEMM at all); general groups the batched im2col."""
    calls = []
    for name in ("_depthwise_forward", "_grouped_forward", "_im2col_forward", "_rows_forward"):
        orig = getattr(_conv_numpy.ConvNumpy, name)
        monkeypatch.setattr(_conv_numpy.ConvNumpy, name,
                            lambda self, *a, _o=orig, _n=name: calls.append(_n) or _o(self, *a))
    x = gpucnn.randn(2, 8, 6, 6)
    conv2d(x, gpucnn.randn(16, 1, 3, 3), groups=8)
    conv2d(x, gpucnn.randn(16, 2, 3, 3), groups=4)
    conv2d(x, gpucnn.randn(16, 8, 3, 3))
    assert calls[:2] == ["_depthwise_forward", "_grouped_forward"] and calls[2] in ("_im2col_forward", "_rows_forward")


@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16])
def test_grouped_half_dtypes_round_a_float32_conv_once(dtype):
    """16-bit grouped/depthwise convs compute in float32 and round once (as the dense ones)."""
    rng = np.random.default_rng(2)
    x = gpucnn.tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32)).to(dtype)
    for g, co in ((2, 6), (4, 8)):
        w = gpucnn.tensor(rng.standard_normal((co, 4 // g, 3, 3)).astype(np.float32)).to(dtype)
        y = conv2d(x, w, None, 1, 1, 1, g)
        assert y.dtype == dtype
        ref = conv2d(x.to(gpucnn.float32), w.to(gpucnn.float32), None, 1, 1, 1, g).to(dtype)
        np.testing.assert_array_equal(y.to(gpucnn.float32).numpy(), ref.to(gpucnn.float32).numpy())


# -- "same" with dilation, "causal" --------------------------------------------------------------------

@pytest.mark.parametrize("k,d", [(3, 2), (4, 2), (2, 3), (5, 1), (4, 1)])
def test_same_padding_with_dilation_matches_torch(k, d):
    """PyTorch's "same" (stride 1): total d*(k-1), the odd one at the end; for conv1d and conv2d."""
    rng = np.random.default_rng(k * d)
    x, w, b = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, k)), rng.standard_normal(4)
    same(lambda x, w, b: conv1d(x, w, b, padding="same", dilation=d), [x, w, b], rtol=1e-10, atol=1e-10,
         g=lambda x, w, b: TF.conv1d(x, w, b, padding="same", dilation=d))
    x2, w2 = rng.standard_normal((1, 2, 7, 8)), rng.standard_normal((4, 1, k, 3))
    same(lambda x, w, b: conv2d(x, w, b, padding="same", dilation=(d, 1), groups=2), [x2, w2, b], rtol=1e-10,
         atol=1e-10, g=lambda x, w, b: TF.conv2d(x, w, b, padding="same", dilation=(d, 1), groups=2))


@pytest.mark.parametrize("k,d,s,g", [(2, 1, 1, 1), (3, 2, 1, 1), (3, 4, 1, 2), (2, 8, 1, 4), (3, 1, 2, 1)])
def test_causal_padding(k, d, s, g):
    """Keras's causal: d*(k-1) zeros on the left only; L outputs at stride 1; output t reads inputs <= t."""
    rng = np.random.default_rng(k + d)
    x, w, b = rng.standard_normal((2, 4, 10)), rng.standard_normal((4, 4 // g, k)), rng.standard_normal(4)
    y = same(lambda x, w, b: conv1d(x, w, b, s, "causal", d, g), [x, w, b], rtol=1e-10, atol=1e-10,
             g=lambda x, w, b: TF.conv1d(TF.pad(x, (d * (k - 1), 0)), w, b, s, 0, d, g))
    assert y.shape[2] == (10 - 1) // s + 1
    if s == 1:  # changing the future leaves the past alone
        x2 = x.copy()
        x2[:, :, 6:] += 1
        y2 = conv1d(gpucnn.tensor(x2), gpucnn.tensor(w), gpucnn.tensor(b), 1, "causal", d, g)
        np.testing.assert_array_equal(y2.numpy()[:, :, :6], y.numpy()[:, :, :6])
    layer = nn.Conv1d(4, 4, k, stride=s, padding="causal", dilation=d, groups=g)
    assert layer(gpucnn.tensor(x.astype(np.float32))).shape == y.shape
    assert nn.layer_from_config(nn.layer_to_config(layer)).padding == "causal"


def test_wavenet_stack_keeps_the_length():
    stack = nn.Sequential(*[nn.Conv1d(4, 4, 2, padding="causal", dilation=2 ** i) for i in range(4)])
    assert stack(gpucnn.randn(2, 4, 16)).shape == (2, 4, 16)


# -- errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,w_shape,groups,error,match", [
    ((1, 6, 5, 5), (4, 3, 3, 3), 4, ShapeError, r"conv2d: input has 6 channels, not divisible by groups=4"),
    ((1, 6, 5, 5), (5, 3, 3, 3), 2, ShapeError, r"conv2d: weight has 5 output channels, not divisible by groups=2"),
    ((1, 6, 5, 5), (4, 2, 3, 3), 2, ShapeError, r"conv2d: input has 6 channels, expected 4 \(2 per group x groups=2\)"),
    ((1, 6, 5, 5), (6, 1, 3, 3), 0, ArgumentError, r"conv2d: groups must be an int >= 1, got 0"),
    ((1, 6, 5, 5), (6, 1, 3, 3), 1.5, ArgumentError, r"conv2d: groups must be an int >= 1, got 1.5"),
])
def test_group_errors(x_shape, w_shape, groups, error, match):
    with pytest.raises(error, match=match):
        conv2d(gpucnn.zeros(x_shape), gpucnn.zeros(w_shape), groups=groups)


def test_causal_is_for_conv1d_only():
    with pytest.raises(ArgumentError, match=r"conv2d: padding='causal' is for 1-D convolutions"):
        conv2d(gpucnn.zeros((1, 1, 5, 5)), gpucnn.zeros((1, 1, 3, 3)), padding="causal")
    with pytest.raises(ArgumentError, match=r"Conv2d: padding must be 'same', 'valid' or a size, got 'causal'"):
        nn.Conv2d(1, 1, 3, padding="causal")


def test_layer_group_errors_name_the_layer():
    with pytest.raises(ArgumentError, match=r"Conv2d: in_channels \(6\) must be divisible by groups \(4\)"):
        nn.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ArgumentError, match=r"Conv1d: out_channels \(6\) must be divisible by groups \(4\)"):
        nn.Conv1d(8, 6, 3, groups=4)


# -- the kernels (grouped SIMT GEMMs, depthwise.cu) against the NumPy path -------------------------------

def _passes(device, dtype, x, w, b, gy, conv, **kw):
    tx, tw, tb = (gpucnn.tensor(a.astype(dtype), device=device, requires_grad=True) for a in (x, w, b))
    y = conv(tx, tw, tb, **kw)
    y.backward(gpucnn.tensor(gy.astype(dtype), device=device))
    return [a.numpy() for a in (y, tx.grad, tw.grad, tb.grad)]


# small shapes: the emulator runs every thread in Python-driven C++; each case is a few 100 ms
KERNEL_CASES = [
    ("grouped-g2", (2, 4, 5, 6), (6, 2, 3, 3), dict(stride=1, padding=1, groups=2)),
    ("grouped-g3-s2-reflect", (1, 6, 6, 5), (3, 2, 2, 3), dict(stride=2, padding=1, groups=3, padding_mode="reflect")),
    ("depthwise-m1", (2, 3, 5, 6), (3, 1, 3, 3), dict(stride=1, padding=1, groups=3)),
    ("depthwise-m2-s2-d2-circular", (1, 2, 7, 6), (4, 1, 3, 2), dict(stride=2, padding=2, dilation=2, groups=2,
                                                                       padding_mode="circular")),
    ("depthwise-replicate", (1, 3, 4, 5), (3, 1, 3, 3), dict(padding=(2, 1), groups=3, padding_mode="replicate")),
    ("depthwise-reflect-s3", (2, 2, 6, 7), (2, 1, 2, 2), dict(stride=3, padding=1, groups=2, padding_mode="reflect")),
    ("conv1d-depthwise-causal", (2, 3, 9), (6, 1, 3), dict(padding="causal", dilation=2, groups=3)),
    ("conv1d-grouped", (1, 4, 8), (4, 2, 3), dict(stride=2, padding=1, groups=2)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,x_shape,w_shape,kw", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernels_match_numpy_path(kernel_device, name, x_shape, w_shape, kw, dtype):
    conv = conv1d if len(x_shape) == 3 else conv2d
    rng = np.random.default_rng(len(name))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    y = conv(gpucnn.tensor(x), gpucnn.tensor(w), **kw)
    gy = rng.standard_normal(y.shape)
    ref = _passes("cpu", dtype, x, w, b, gy, conv, **kw)
    got = _passes(kernel_device, dtype, x, w, b, gy, conv, **kw)
    tol = 1e-11 if dtype == np.float64 else 2e-5
    for r, o, what in zip(ref, got, ("y", "gx", "gw", "gb")):
        np.testing.assert_allclose(o, r, rtol=tol, atol=tol, err_msg=f"{name}: {what}")


def test_depthwise_uses_the_depthwise_kernels(monkeypatch):
    names = []
    orig = Conv2d._dw_kernel
    monkeypatch.setattr(Conv2d, "_dw_kernel", lambda self, name, dtype: names.append(name) or orig(self, name, dtype))
    x = gpucnn.randn(1, 3, 4, 4, device="emu", requires_grad=True)
    w = gpucnn.randn(6, 1, 3, 3, device="emu", requires_grad=True)
    conv2d(x, w, padding=1, groups=3).sum().backward()
    assert names == ["depthwise_forward", "depthwise_backward_data", "depthwise_backward_filter"]


def test_depthwise_kernels_deterministic_across_thread_orders():
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((2, 2, 9, 9)), rng.standard_normal((4, 1, 3, 3)), rng.standard_normal(4)
    gy = rng.standard_normal((2, 4, 9, 9))
    runs = []
    for order in ("forward", "reverse", "shuffled"):
        with emu.thread_order(order, seed=5):
            runs.append(_passes("emu", np.float32, x, w, b, gy, conv2d, padding=1, groups=2))
    for run in runs[1:]:
        for a, r in zip(run, runs[0]):
            np.testing.assert_array_equal(a, r)


def test_grouped_tf32_runs_the_simt_kernels_with_rounded_operands():
    """Under "high" a grouped conv is not on the tensor cores; its operands are still rounded to TF32, so
    emu (SIMT kernels) and cpu (NumPy path) agree, and both differ from "highest"."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    gy = rng.standard_normal((1, 4, 5, 5))
    exact = _passes("cpu", np.float32, x, w, b, gy, conv2d, padding=1, groups=2)
    gpucnn.set_float32_matmul_precision("high")
    with pytest.warns(RuntimeWarning, match="grouped tf32 convolutions run on the SIMT"):
        from gpucnn.functions import conv as conv_mod
        conv_mod._say_once.cache_clear()
        emu_high = _passes("emu", np.float32, x, w, b, gy, conv2d, padding=1, groups=2)
    cpu_high = _passes("cpu", np.float32, x, w, b, gy, conv2d, padding=1, groups=2)
    for e, c, ex in zip(emu_high, cpu_high, exact):
        np.testing.assert_allclose(e, c, rtol=2e-5, atol=2e-5)
    assert np.abs(emu_high[0] - exact[0]).max() > 1e-5  # TF32 rounding is visible


def test_host_block_size_matches_depthwise_cu():
    import re

    from gpucnn.functions import conv as conv_mod
    from kernels_cuda import kernel_path
    text = kernel_path("depthwise").read_text()
    assert int(re.search(r"#define DW_THREADS (\d+)", text).group(1)) == conv_mod._DW_THREADS
