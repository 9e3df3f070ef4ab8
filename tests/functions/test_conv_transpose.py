"""conv_transpose2d / conv_transpose1d and the ConvTranspose layers: against PyTorch (values and gradients,
float32 and float64, the output-size rule), finite differences (float64), the kernels on ``kernel_device``
against the NumPy path, errors. Tolerances as tests/functions/test_conv_groups.py's."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
from gpucnn import ArgumentError, ShapeError, nn
from gpucnn.functions.conv_transpose import conv_transpose1d, conv_transpose2d
from tests.torch_ref import same

# (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation): stride 2 with output_padding,
# dilation, groups (depthwise-like C_out/groups = 1 too), output_padding > padding, output_padding >= stride
# (allowed by dilation), stride > kernel, 1x1
GRID = [
    (4, 6, 1, 3, 2, 1, 1, 1),
    (4, 6, 2, 3, 2, 0, 0, 1),
    (4, 4, 4, 3, 2, 1, 1, 1),
    (3, 6, 1, 2, 1, 0, 1, 2),
    (4, 8, 4, 3, 3, 2, 2, 2),
    (2, 3, 1, 3, 1, 0, 0, 1),
    (6, 4, 2, 1, 2, 0, 1, 1),
    (2, 2, 1, 3, 1, 0, 2, 3),
    (2, 5, 1, (2, 3), (3, 1), (0, 1), (2, 0), (1, 2)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", GRID, ids=lambda c: "-".join(map(str, c)))
def test_matches_torch(cfg, dtype):
    C, Co, g, k, s, p, op, d = cfg
    k2 = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(C * Co)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for N in (1, 2):
        x = rng.standard_normal((N, C, 4, 5)).astype(dtype)
        w = rng.standard_normal((C, Co // g) + k2).astype(dtype)
        b = rng.standard_normal(Co).astype(dtype)
        same(lambda x, w, b: conv_transpose2d(x, w, b, s, p, op, g, d), [x, w, b], rtol=tol, atol=tol,
             g=lambda x, w, b: TF.conv_transpose2d(x, w, b, s, p, op, g, d))
        same(lambda x, w: conv_transpose2d(x, w, None, s, p, op, g, d), [x, w], rtol=tol, atol=tol,
             g=lambda x, w: TF.conv_transpose2d(x, w, None, s, p, op, g, d))
        one = lambda v: v if isinstance(v, int) else v[1]  # noqa: E731
        same(lambda x, w, b: conv_transpose1d(x, w, b, one(s), one(p), one(op), g, one(d)),
             [x[:, :, 0], w[:, :, 0], b], rtol=tol, atol=tol,
             g=lambda x, w, b: TF.conv_transpose1d(x, w, b, one(s), one(p), one(op), g, one(d)))


@pytest.mark.parametrize("cfg", [GRID[0], GRID[1], GRID[2], GRID[4], GRID[8]], ids=lambda c: "-".join(map(str, c)))
def test_gradcheck(cfg):
    C, Co, g, k, s, p, op, d = cfg
    k2 = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(1)
    x = gpucnn.tensor(rng.standard_normal((2, C, 3, 4)), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((C, Co // g) + k2), requires_grad=True)
    b = gpucnn.tensor(rng.standard_normal(Co), requires_grad=True)
    gpucnn.gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, s, p, op, g, d), [x, w, b])


def test_is_the_input_gradient_of_conv2d():
    """conv_transpose2d(g, w) == d(sum(conv2d(x, w) * g))/dx: the definition, without torch."""
    rng = np.random.default_rng(3)
    x = gpucnn.tensor(rng.standard_normal((2, 6, 9, 8)), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((4, 3, 3, 3)))
    y = gpucnn.functional.conv2d(x, w, None, 2, 1, 1, 2)
    g = gpucnn.tensor(rng.standard_normal(y.shape))
    (y * g).sum().backward()
    t = conv_transpose2d(g, w, None, 2, 1, 0, 2)  # 9 = (5-1)*2 - 2 + 2 + 0 + 1; 8 needs output_padding 1
    np.testing.assert_allclose(t.numpy()[:, :, :, :7], x.grad.numpy()[:, :, :, :7], rtol=1e-12, atol=1e-12)
    t = conv_transpose2d(g, w, None, 2, 1, (0, 1), 2)
    np.testing.assert_allclose(t.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", [GRID[0], GRID[2], GRID[4], (2, 2, 1, 3, 1, 0, 2, 3)],
                         ids=lambda c: "-".join(map(str, c)))
def test_kernels_match_numpy_path(kernel_device, cfg, dtype):
    """The SIMT backward-data / forward / backward-filter GEMMs and the depthwise kernels (groups ==
    C_out), small shapes for the emulator."""
    C, Co, g, k, s, p, op, d = cfg
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, C, 3, 4)), rng.standard_normal((C, Co // g, k, k)), rng.standard_normal(Co)

    def run(device):
        tx, tw, tb = (gpucnn.tensor(a.astype(dtype), device=device, requires_grad=True) for a in (x, w, b))
        y = conv_transpose2d(tx, tw, tb, s, p, op, g, d)
        y.backward(gpucnn.tensor(np.cos(np.arange(int(np.prod(y.shape)))).reshape(y.shape).astype(dtype), device=device))
        return [a.numpy() for a in (y, tx.grad, tw.grad, tb.grad)]

    tol = 1e-11 if dtype == np.float64 else 2e-5
    for r, o, what in zip(run("cpu"), run(kernel_device), ("y", "gx", "gw", "gb")):
        np.testing.assert_allclose(o, r, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("dtype", [gpucnn.float16, gpucnn.bfloat16])
def test_half_dtypes_round_a_float32_result_once(dtype):
    rng = np.random.default_rng(2)
    x = gpucnn.tensor(rng.standard_normal((1, 4, 3, 3)).astype(np.float32)).to(dtype)
    w = gpucnn.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)).to(dtype)
    y = conv_transpose2d(x, w, None, 2, 1, 1)
    ref = conv_transpose2d(x.to(gpucnn.float32), w.to(gpucnn.float32), None, 2, 1, 1).to(dtype)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.to(gpucnn.float32).numpy(), ref.to(gpucnn.float32).numpy())


# -- errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,error,match", [
    (dict(stride=2, output_padding=2), ArgumentError,
     r"conv_transpose2d: output_padding must be smaller than the stride or the dilation, got output_padding 2, "
     r"stride 2, dilation 1"),
    (dict(output_padding=1), ArgumentError, r"output_padding must be smaller than the stride or the dilation"),
    (dict(groups=3), ShapeError, r"conv_transpose2d: weight has 4 input channels \(dim 0\), not divisible by groups=3"),
    (dict(padding="same"), ArgumentError, r"conv_transpose2d: padding must be an int >= 0"),
    (dict(padding=3), ShapeError, r"conv_transpose2d: output size -1x0 is empty"),
])
def test_errors(kw, error, match):
    with pytest.raises(error, match=match):
        conv_transpose2d(gpucnn.zeros((1, 4, 3, 4)), gpucnn.zeros((4, 2, 3, 3)), **kw)


def test_channel_and_bias_errors():
    with pytest.raises(ShapeError, match=r"conv_transpose2d: input has 3 channels, expected 4 \(weight dim 0\)"):
        conv_transpose2d(gpucnn.zeros((1, 3, 3, 3)), gpucnn.zeros((4, 2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv_transpose1d: bias has shape \(2,\), expected \(4,\)"):
        conv_transpose1d(gpucnn.zeros((1, 4, 3)), gpucnn.zeros((4, 2, 3)), gpucnn.zeros((2,)), groups=2)


# -- the layers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2])
def test_layer_matches_torch_and_round_trips_its_config(n):
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    ours = (nn.ConvTranspose2d if n == 2 else nn.ConvTranspose1d)(4, 6, 3, **kw)
    ref = (torch.nn.ConvTranspose2d if n == 2 else torch.nn.ConvTranspose1d)(4, 6, 3, **kw)
    assert ours.weight.shape == tuple(ref.weight.shape)
    assert sum(int(np.prod(p.shape)) for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.weight.numpy()))
        ref.bias.copy_(torch.tensor(ours.bias.numpy()))
    x = np.random.default_rng(0).standard_normal((2, 4) + (5,) * n).astype(np.float32)
    np.testing.assert_allclose(ours(gpucnn.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    back = nn.layer_from_config(nn.layer_to_config(ours))
    assert type(back) is type(ours) and back.config() == ours.config()


def test_layer_output_size_and_errors():
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    x = gpucnn.zeros((1, 4, 5, 5))
    assert up(x).shape == (1, 2, 9, 9)
    assert up(x, output_size=(10, 10)).shape == (1, 2, 10, 10)
    assert up(x, output_size=(1, 2, 10, 9)).shape == (1, 2, 10, 9)
    with pytest.raises(ShapeError, match=r"output_size 11 is out of reach|output_size \[11, 11\] is out of reach"):
        up(x, output_size=(11, 11))
    with pytest.raises(ArgumentError, match=r"ConvTranspose2d: output_padding must be smaller"):
        nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ArgumentError, match=r"ConvTranspose1d: padding_mode must be 'zeros'"):
        nn.ConvTranspose1d(4, 2, 3, padding_mode="reflect")
    with pytest.raises(ArgumentError, match=r"ConvTranspose2d: out_channels \(3\) must be divisible by groups \(2\)"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)


def test_summary_counts_and_shapes():
    model = nn.Sequential(nn.Conv2d(3, 6, 3, groups=3), nn.ConvTranspose2d(6, 4, 2, stride=2))
    text = model.summary((3, 8, 8))
    assert "(None, 6, 6, 6)" in text and "(None, 4, 12, 12)" in text
    assert "Total params: 160" in text  # 6*1*9 + 6 and 6*4*2*2 + 4


@pytest.mark.parametrize("dtype", [gpucnn.float32, gpucnn.bfloat16])
def test_tensor_core_path_for_groups_1(monkeypatch, dtype):
    """groups == 1 under TF32 / 16-bit runs the tensor-core GEMMs (forward = their backward-data, backward =
    their forward and backward-filter) and agrees with the NumPy path's same rounding, to an ulp of the
    result's dtype (the 16-bit result is rounded once, with the bias added in float32 on both)."""
    from gpucnn.functions import _conv_tc
    used = []
    for name in ("conv2d_tc_forward", "conv2d_tc_backward_data", "conv2d_tc_backward_filter"):
        orig = getattr(_conv_tc, name)
        monkeypatch.setattr(_conv_tc, name, lambda *a, _o=orig, _n=name: used.append(_n) or _o(*a))
    gpucnn.set_float32_matmul_precision("high")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 4, 3, 3)), rng.standard_normal((4, 5, 3, 3)), rng.standard_normal(5)

    def run(device):
        ts = [gpucnn.tensor(a.astype(np.float32), device=device).to(dtype) for a in (x, w, b)]
        for t in ts:
            t.requires_grad_()
        conv_transpose2d(*ts, 2, 1, 1).sum().backward()
        y = conv_transpose2d(*ts, 2, 1, 1)
        return [a.to(gpucnn.float32).numpy() for a in (y, ts[0].grad, ts[1].grad, ts[2].grad)]

    ref, got = run("cpu"), run("emu")
    assert sorted(set(used)) == ["conv2d_tc_backward_data", "conv2d_tc_backward_filter", "conv2d_tc_forward"]
    ulp = 2.0 ** -7 if dtype == gpucnn.bfloat16 else 2.0 ** -20
    for r, o in zip(ref, got):
        np.testing.assert_allclose(o, r, rtol=ulp, atol=ulp)
