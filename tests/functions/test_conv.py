"""conv2d / conv1d (NumPy path): worked examples, a direct-loop reference, gradients, errors.

Every test runs under both NumPy algorithms (kernel rows and im2col, see gpucnn.functions._conv_numpy)."""
import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import ArgumentError, ShapeError
from gpucnn.functions._conv_util import out_size, pair, resolve_padding, same_padding
from gpucnn import blas
from gpucnn.functions import _conv_numpy
from gpucnn.functions.conv import Conv2d, conv1d, conv2d

MODES = ("zeros", "reflect", "replicate", "circular")
_NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# -- an independent reference ---------------------------------------------------------------------

def _ref_pads(padding, sizes, kernel, stride, dilation):
    """(before, after) per dim, computed here from the definitions (not with gpucnn's helpers)."""
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "same":
        pads = []
        for n, k, s, d in zip(sizes, kernel, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))  # the extra one at the bottom/right
        return pads
    p = (padding, padding) if isinstance(padding, int) else padding
    return [(q, q) for q in p]


def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, mode="zeros"):
    """Direct loop over output pixels in float64: y[n,o,i,j] = b[o] + sum x_pad[n,c,i*s+u*d,j*s+v*d] w[o,c,u,v]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    stride = (stride, stride) if isinstance(stride, int) else stride
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    kh, kw = w.shape[2:]
    pads = _ref_pads(padding, x.shape[2:], (kh, kw), stride, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads), mode=_NP_MODE[mode])
    (sh, sw), (dh, dw) = stride, dilation
    Ho = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    Wo = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * sh:i * sh + (kh - 1) * dh + 1:dh, j * sw:j * sw + (kw - 1) * dw + 1:dw]
            y[:, :, i, j] = np.einsum("ncuv,ocuv->no", patch, w)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


@pytest.fixture(scope="module", params=["rows", "im2col"], autouse=True)
def conv_algorithm(request):
    """Force one NumPy algorithm for the whole module (module-scoped: hypothesis tests may use it)."""
    saved = _conv_numpy.ALGORITHM
    _conv_numpy.ALGORITHM = request.param
    yield request.param
    _conv_numpy.ALGORITHM = saved


def t(a, dtype=np.float64, requires_grad=False):
    return gpucnn.tensor(np.asarray(a, dtype=dtype), requires_grad=requires_grad)


def rand(shape, seed, dtype=np.float64, requires_grad=False):
    return t(np.random.default_rng(seed).standard_normal(shape), dtype, requires_grad)


# -- worked examples --------------------------------------------------------------------------------

def test_worked_example_3_2_3_1():
    # A 4x4 binary image and the 3x3 "X" filter (corners + centre), valid padding, stride 1.
    # Values verified by hand (the filter picks the 4 corners and the centre of each 3x3 window):
    #   window rows 0-2, cols 0-2: [[1,1,1],[1,1,1],[0,0,0]] -> 1+1+0+0 + centre 1 = 3
    #   window rows 0-2, cols 1-3: [[1,1,0],[1,1,0],[0,0,0]] -> 1+0+0+0 + centre 1 = 2
    #   window rows 1-3, cols 0-2: [[1,1,1],[0,0,0],[0,0,1]] -> 1+1+0+1 + centre 0 = 3
    #   window rows 1-3, cols 1-3: [[1,1,0],[0,0,0],[0,1,0]] -> 1+0+0+0 + centre 0 = 1
    # (The pair recalled for the seed article, image [[1,1,1,0],[0,1,1,1],[0,0,1,1],[0,0,1,1]] with this
    # filter, gives [[4,3],[2,4]] instead -- checked below -- and an exhaustive search found no 3x3 binary
    # filter that maps that image to [[3,2],[3,1]]; so this test uses a pair verified by hand.)
    image = [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    x_filter = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    y = conv2d(t([[image]], np.float32), t([[x_filter]], np.float32), padding="valid")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy()[0, 0], [[3, 2], [3, 1]])


def test_worked_example_classic_top_left():
    # The classic 5x5 example's image [[1,1,1,0,0],[0,1,1,1,0],[0,0,1,1,1],[0,0,1,1,0],[0,1,1,0,0]] with the
    # X filter gives [[4,3,4],[2,4,3],[2,3,4]]; its top-left 4x4 gives the top-left 2x2 of that. By hand:
    #   rows 0-2, cols 0-2: [[1,1,1],[0,1,1],[0,0,1]] -> corners 1+1+0+1, centre 1 = 4
    #   rows 0-2, cols 1-3: [[1,1,0],[1,1,1],[0,1,1]] -> corners 1+0+0+1, centre 1 = 3
    #   rows 1-3, cols 0-2: [[0,1,1],[0,0,1],[0,0,1]] -> corners 0+1+0+1, centre 0 = 2
    #   rows 1-3, cols 1-3: [[1,1,1],[0,1,1],[0,1,1]] -> corners 1+1+0+1, centre 1 = 4
    image5 = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    x_filter = t([[[[1, 0, 1], [0, 1, 0], [1, 0, 1]]]])
    np.testing.assert_array_equal(conv2d(t([[image5]]), x_filter).numpy()[0, 0],
                                  [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    image4 = [row[:4] for row in image5[:4]]
    np.testing.assert_array_equal(conv2d(t([[image4]]), x_filter).numpy()[0, 0], [[4, 3], [2, 4]])


def test_cross_correlation_not_convolution():
    # A kernel with a single 1 at (0, 0) shifts the image: y[i, j] = x[i, j] (no flip).
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1
    np.testing.assert_array_equal(conv2d(t(x), t(w)).numpy()[0, 0], x[0, 0, :2, :2])


# -- forward against the reference ----------------------------------------------------------------

KERNELS = [(1, 1), (3, 3), (2, 3), (7, 7)]
STRIDES = [1, 2, (2, 1)]
PADDINGS = [0, 1, (2, 1), "valid", "same"]
DILATIONS = [1, 2]
SHAPES = list(itertools.product([1, 3], [1, 3], [1, 4]))  # (N, C_in, C_out)
_rng = random.Random(0)
GRID = [(k, s, p, d, m, _rng.choice(SHAPES))
        for k, s, p, d, m in itertools.product(KERNELS, STRIDES, PADDINGS, DILATIONS, MODES)]


@pytest.mark.parametrize("kernel,stride,padding,dilation,mode,shapes", GRID)
def test_forward_matches_reference(kernel, stride, padding, dilation, mode, shapes):
    N, C, O = shapes
    H, W = 9, 8  # odd and even
    x, w, b = rand((N, C, H, W), 1), rand((O, C) + kernel, 2), rand((O,), 3)
    eff = [(k - 1) * dilation + 1 for k in kernel]
    pads = _ref_pads(padding, (H, W), kernel, pair(stride, "s", "t"), (dilation, dilation))
    if any(e > n + a + z for e, n, (a, z) in zip(eff, (H, W), pads)):
        with pytest.raises(ShapeError, match="is larger than the padded input"):
            conv2d(x, w, b, stride, padding, dilation, padding_mode=mode)
        return
    y = conv2d(x, w, b, stride, padding, dilation, padding_mode=mode)
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x.numpy(), w.numpy(), b.numpy(), stride, padding,
                                                     dilation, mode), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_forward_batch_and_channels(shapes, mode):
    N, C, O = shapes
    x, w, b = rand((N, C, 6, 5), 4), rand((O, C, 3, 3), 5), rand((O,), 6)
    for bias in (b, None):
        y = conv2d(x, w, bias, padding=1, padding_mode=mode)
        ref = ref_conv2d(x.numpy(), w.numpy(), None if bias is None else bias.numpy(), 1, 1, 1, mode)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 9, 14, 28])
@pytest.mark.parametrize("k,s,d", [(1, 1, 1), (2, 1, 1), (3, 1, 1), (3, 2, 1), (2, 2, 1), (3, 3, 1),
                                   (4, 2, 1), (3, 2, 2), (5, 1, 1), (2, 1, 3)])
def test_same_padding_size_and_placement(n, k, s, d):
    x, w = rand((1, 2, n, n + 1), 7), rand((3, 2, k, k), 8)
    y = conv2d(x, w, stride=s, dilation=d, padding="same")
    assert y.shape == (1, 3, math.ceil(n / s), math.ceil((n + 1) / s))
    # The same as explicit zero padding with the smaller half before and the extra one after.
    total_h = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    total_w = max((math.ceil((n + 1) / s) - 1) * s + (k - 1) * d + 1 - (n + 1), 0)
    xp = np.pad(x.numpy(), [(0, 0), (0, 0), (total_h // 2, total_h - total_h // 2),
                            (total_w // 2, total_w - total_w // 2)])
    np.testing.assert_allclose(y.numpy(), ref_conv2d(xp, w.numpy(), None, s, 0, d), rtol=1e-12, atol=1e-12)


def test_same_padding_extra_row_goes_bottom_right():
    # 4x4 input, 3x3 ones kernel, stride 2: total padding 1 per dim -> 0 top/left, 1 bottom/right.
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = conv2d(t(x), t(np.ones((1, 1, 3, 3))), stride=2, padding="same").numpy()[0, 0]
    assert y[0, 0] == x[0, 0, 0:3, 0:3].sum()     # no padding at the top/left
    assert y[1, 1] == x[0, 0, 2:4, 2:4].sum()     # the last window covers the bottom/right padding
    # Stride 1, odd kernel: symmetric, equals PyTorch's "same" (padding k // 2).
    w5 = rand((2, 1, 5, 5), 9)
    np.testing.assert_array_equal(conv2d(t(x), w5, padding="same").numpy(), conv2d(t(x), w5, padding=2).numpy())


def test_same_padding_helpers():
    assert same_padding(28, 3) == (1, 1)
    assert same_padding(4, 3, 2) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(4, 2) == (0, 1)
    assert same_padding(7, 3, 1, 2) == (2, 2)
    assert same_padding(8, 1, 3) == (0, 0)
    assert out_size(28, 3, 1, 1, 1, 1) == 28
    assert out_size(5, 2, 2) == 2 and out_size(5, 2, 2, ceil_mode=True) == 3
    # ceil_mode never starts a window in the bottom/right padding (PyTorch's rule).
    assert out_size(4, 2, 2, 1, 1, 1, ceil_mode=True) == 3
    assert out_size(2, 3) == 0
    assert resolve_padding("same", (4, 5), (3, 3), (2, 2), (1, 1), "op") == ((0, 1), (1, 1))
    assert resolve_padding((2, 1), (4, 5), (3, 3), (1, 1), (1, 1), "op") == ((2, 2), (1, 1))
    with pytest.raises(ArgumentError, match=r"pool: kernel_size must be an int >= 1 or a pair of them, got 0"):
        pair(0, "kernel_size", "pool")


def test_padding_modes_by_hand():
    # One row 1 2 3 4, kernel 1x1 of weight 1: the output is the padded input itself.
    x = t([[[[1, 2, 3, 4]]]])
    w = t([[[[1.0]]]])
    expect = {"zeros": [0, 0, 1, 2, 3, 4, 0, 0], "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
              "replicate": [1, 1, 1, 2, 3, 4, 4, 4], "circular": [3, 4, 1, 2, 3, 4, 1, 2]}
    for mode, row in expect.items():
        y = conv2d(x, w, padding=(0, 2), padding_mode=mode).numpy()
        np.testing.assert_array_equal(y[0, 0, 0], row, err_msg=mode)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 4), O=st.integers(1, 4), H=st.integers(1, 10),
       W=st.integers(1, 10), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), dh=st.integers(1, 3), dw=st.integers(1, 3),
       padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3),
                         st.tuples(st.integers(0, 3), st.integers(0, 3))),
       mode=st.sampled_from(MODES), bias=st.booleans(), seed=st.integers(0, 2**31))
def test_forward_hypothesis(N, C, O, H, W, kh, kw, sh, sw, dh, dw, padding, mode, bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, kh, kw))
    b = rng.standard_normal(O) if bias else None
    pads = _ref_pads(padding, (H, W), (kh, kw), (sh, sw), (dh, dw))
    fits = all((k - 1) * d + 1 <= n + p0 + p1 for k, d, n, (p0, p1) in zip((kh, kw), (dh, dw), (H, W), pads))
    limit_ok = {"zeros": True, "replicate": True,
                "reflect": all(p < n for n, pp in zip((H, W), pads) for p in pp),
                "circular": all(p <= n for n, pp in zip((H, W), pads) for p in pp)}[mode]
    args = (t(x), t(w), None if b is None else t(b), (sh, sw), padding, (dh, dw), 1, mode)
    if not limit_ok:
        with pytest.raises(ArgumentError, match=f"padding_mode '{mode}' needs padding"):
            conv2d(*args)
    elif not fits:
        with pytest.raises(ShapeError, match="is larger than the padded input"):
            conv2d(*args)
    else:
        y = conv2d(*args).numpy()
        np.testing.assert_allclose(y, ref_conv2d(x, w, b, (sh, sw), padding, (dh, dw), mode),
                                   rtol=1e-11, atol=1e-11)


def test_float32_matches_float64_reference():
    # Each output is a K-term dot product (K = C_in*kh*kw = 32*9 = 288) plus a bias, computed in float32
    # from float32 inputs that the float64 reference sees exactly. With unit roundoff u = 2**-24 ~ 6e-8
    # and S = sum of |terms| (the same conv of |x| and |w|, plus |b|), any summation order satisfies
    # |err| <= (K+1)*u*S (the classic dot-product bound, ~1.7e-5*S), so that is the tolerance. Rounding
    # errors behave like a random walk, so the typical error is ~sqrt(K)*u*S (1e-6*S) or less: assert that
    # too, as the tight, practical bound (seen: max 2e-7*S, i.e. 4e-5 absolute for outputs of size ~20).
    x, w = rand((4, 32, 14, 14), 10, np.float32), rand((64, 32, 3, 3), 11, np.float32)
    b = rand((64,), 12, np.float32)
    y = conv2d(x, w, b, padding="same")
    assert y.dtype == np.float32
    ref = ref_conv2d(x.numpy(), w.numpy(), b.numpy(), 1, "same")
    S = ref_conv2d(np.abs(x.numpy()), np.abs(w.numpy()), np.abs(b.numpy()), 1, "same")
    u, K = 2.0 ** -24, 32 * 9
    err = np.abs(y.numpy() - ref)
    assert np.all(err <= (K + 1) * u * S)
    assert np.all(err <= math.sqrt(K) * u * S)


def test_noncontiguous_input():
    x = rand((3, 2, 7, 6), 13)
    xt = x.permute(0, 1, 3, 2)  # a transposed view
    w = rand((4, 2, 3, 2), 14)
    np.testing.assert_allclose(conv2d(xt, w, stride=(1, 2), padding=1).numpy(),
                               ref_conv2d(xt.numpy(), w.numpy(), None, (1, 2), 1), rtol=1e-12, atol=1e-12)


# -- gradients ------------------------------------------------------------------------------------

GRAD_CASES = [
    dict(stride=1, padding=0, dilation=1),
    dict(stride=1, padding=1, dilation=1),
    dict(stride=2, padding=1, dilation=1),
    dict(stride=(2, 1), padding=(2, 1), dilation=1),
    dict(stride=(1, 2), padding=(1, 0), dilation=1),
    dict(stride=1, padding="same", dilation=1),
    dict(stride=2, padding="same", dilation=1),      # asymmetric: (0, 1) and (1, 1)
    dict(stride=3, padding="same", dilation=1),
    dict(stride=1, padding="valid", dilation=2),
    dict(stride=1, padding=2, dilation=2),
    dict(stride=2, padding="same", dilation=(2, 1)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_gradcheck_conv2d(case, mode):
    x = rand((2, 2, 5, 6), 20, requires_grad=True)
    w = rand((3, 2, 3, 2), 21, requires_grad=True)
    b = rand((3,), 22, requires_grad=True)
    gpucnn.gradcheck(lambda x, w, b: conv2d(x, w, b, padding_mode=mode, **case), [x, w, b])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (1, "same", 1), (2, "same", 1), (2, 3, 2),
                                                     (1, "same", 2)])
def test_gradcheck_conv1d(stride, padding, dilation, mode):
    x = rand((2, 3, 7), 23, requires_grad=True)
    w = rand((2, 3, 3), 24, requires_grad=True)
    b = rand((2,), 25, requires_grad=True)
    gpucnn.gradcheck(lambda x, w, b: conv1d(x, w, b, stride, padding, dilation, padding_mode=mode), [x, w, b])


def test_gradcheck_large_padding_folds_many_rows():
    # Padding as large as the modes allow: reflect 4 on 5 rows, circular 5 on 5, replicate 7.
    for mode, p in (("reflect", 4), ("circular", 5), ("replicate", 7)):
        x = rand((1, 1, 5, 5), 26, requires_grad=True)
        w = rand((2, 1, 3, 3), 27, requires_grad=True)
        gpucnn.gradcheck(lambda x, w: conv2d(x, w, None, 2, p, 1, padding_mode=mode), [x, w])


def test_only_needed_gradients_are_computed():
    # The first layer's input does not require grad: backward skips its (expensive) gradient.
    x = rand((2, 3, 6, 6), 30)
    w = rand((4, 3, 3, 3), 31, requires_grad=True)
    b = rand((4,), 32, requires_grad=True)
    y = conv2d(x, w, b, padding=1)
    fn = y._ctx
    assert fn.needs_input_grad == (False, True, True)
    gx, gw, gb = fn.backward((x.data, w.data, b.data), np.ones(y.shape))
    assert gx is None and gw is not None and gb is not None
    # and weight-only / input-only requests give exactly the full computation's values
    x2 = rand((2, 3, 6, 6), 30, requires_grad=True)
    full = conv2d(x2, w, b, padding=1)._ctx.backward((x2.data, w.data, b.data), np.ones(y.shape))
    np.testing.assert_array_equal(gw, full[1])
    np.testing.assert_array_equal(gb, full[2])
    w_frozen = gpucnn.tensor(w.numpy())
    only_x = conv2d(x2, w_frozen, None, padding=1)._ctx.backward((x2.data, w.data, None), np.ones(y.shape))
    assert only_x[1] is None and only_x[2] is None
    np.testing.assert_array_equal(only_x[0], full[0])


def test_float32_gradients_stay_float32():
    x = rand((2, 3, 8, 8), 33, np.float32, requires_grad=True)
    w = rand((4, 3, 3, 3), 34, np.float32, requires_grad=True)
    b = rand((4,), 35, np.float32, requires_grad=True)
    conv2d(x, w, b, stride=2, padding="same", padding_mode="reflect").sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    x64, w64, b64 = (gpucnn.tensor(a.numpy().astype(np.float64), requires_grad=True) for a in (x, w, b))
    conv2d(x64, w64, b64, stride=2, padding="same", padding_mode="reflect").sum().backward()
    for a, a64 in ((x, x64), (w, w64), (b, b64)):
        np.testing.assert_allclose(a.grad.numpy(), a64.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_no_grad_keeps_no_graph():
    x, w = rand((1, 1, 5, 5), 36, requires_grad=True), rand((1, 1, 3, 3), 37, requires_grad=True)
    with gpucnn.no_grad():
        y = conv2d(x, w)
    assert not y.requires_grad and y._ctx is None


# -- conv1d ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (1, 2, 1), (2, "same", 1), (3, "same", 2),
                                                     (1, "valid", 3), ((2,), (1,), (1,))])
def test_conv1d_matches_reference(stride, padding, dilation, mode):
    x, w, b = rand((3, 2, 11), 40), rand((4, 2, 3), 41), rand((4,), 42)
    y = conv1d(x, w, b, stride, padding, dilation, padding_mode=mode)
    s = stride[0] if isinstance(stride, tuple) else stride
    d = dilation[0] if isinstance(dilation, tuple) else dilation
    p = padding[0] if isinstance(padding, tuple) else padding
    pads = _ref_pads(p, (11,), (3,), (s,), (d,))[0]
    xp = np.pad(x.numpy(), [(0, 0), (0, 0), pads], mode=_NP_MODE[mode])
    ref = ref_conv2d(xp[:, :, None, :], w.numpy()[:, :, None, :], b.numpy(), (1, s), 0, (1, d))[:, :, 0, :]
    assert y.shape == ref.shape
    if p == "same":
        assert y.shape[2] == math.ceil(11 / s)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


# -- validation -----------------------------------------------------------------------------------

def _err(exc, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_channel_mismatch_message():
    msg = _err(ShapeError, conv2d, rand((8, 16, 14, 14), 0, np.float32), rand((64, 32, 3, 3), 1, np.float32))
    assert msg == ("conv2d: input has 16 channels, expected 32 (input shape (8, 16, 14, 14), "
                   "weight shape (64, 32, 3, 3))")
    msg = _err(ShapeError, conv1d, rand((8, 16, 30), 0), rand((64, 32, 3), 1))
    assert msg == "conv1d: input has 16 channels, expected 32 (input shape (8, 16, 30), weight shape (64, 32, 3))"


def test_kernel_larger_than_padded_input_message():
    msg = _err(ShapeError, conv2d, rand((1, 1, 3, 3), 0), rand((1, 1, 5, 5), 1))
    assert msg == "conv2d: kernel 5x5 (dilation 1) is larger than the padded input 3x3 (input 3x3, padding 0)"
    msg = _err(ShapeError, conv2d, rand((1, 1, 4, 6), 0), rand((1, 1, 3, 3), 1), dilation=2, padding=(0, 1))
    assert msg == ("conv2d: kernel 3x3 (dilation 2, effective 5x5) is larger than the padded input 4x8 "
                   "(input 4x6, padding (0, 1))")
    msg = _err(ShapeError, conv1d, rand((1, 1, 3), 0), rand((1, 1, 5), 1))
    assert msg == "conv1d: kernel 5 (dilation 1) is larger than the padded input 3 (input 3, padding 0)"


@pytest.mark.parametrize("op,x_shape,w_shape,expect", [
    (conv2d, (1, 28, 28), (4, 1, 3, 3), "conv2d: input must be 4-D (N, C_in, H, W), got 3-D shape (1, 28, 28)"),
    (conv2d, (1, 1, 8, 8), (4, 9), "conv2d: weight must be 4-D (C_out, C_in, kH, kW), got 2-D shape (4, 9)"),
    (conv1d, (1, 1, 8, 8), (4, 1, 3), "conv1d: input must be 3-D (N, C_in, L), got 4-D shape (1, 1, 8, 8)"),
    (conv1d, (1, 1, 8), (4, 1, 3, 3), "conv1d: weight must be 3-D (C_out, C_in, k), got 4-D shape (4, 1, 3, 3)"),
    (conv2d, (0, 1, 8, 8), (4, 1, 3, 3), "conv2d: input has an empty batch (N = 0), expected at least one "
                                         "sample (input shape (0, 1, 8, 8))"),
    (conv2d, (2, 1, 0, 8), (4, 1, 3, 3), "conv2d: input has a zero-size dim, expected all dims >= 1 "
                                         "(input shape (2, 1, 0, 8))"),
    (conv1d, (2, 1, 0), (4, 1, 3), "conv1d: input has a zero-size dim"),
    (conv2d, (2, 1, 8, 8), (0, 1, 3, 3), "conv2d: weight has a zero-size dim, expected all dims >= 1 "
                                         "(weight shape (0, 1, 3, 3))"),
])
def test_shape_errors(op, x_shape, w_shape, expect):
    msg = _err(ShapeError, op, t(np.zeros(x_shape)), t(np.zeros(w_shape)))
    assert msg.startswith(expect)


def test_bias_shape_error():
    msg = _err(ShapeError, conv2d, rand((1, 3, 5, 5), 0), rand((4, 3, 3, 3), 1), rand((3,), 2))
    assert msg.startswith("conv2d: bias has shape (3,), expected (4,)")
    msg = _err(ShapeError, conv2d, rand((1, 3, 5, 5), 0), rand((4, 3, 3, 3), 1), rand((4, 1), 2))
    assert msg.startswith("conv2d: bias has shape (4, 1), expected (4,)")


@pytest.mark.parametrize("name,value,shown", [
    ("stride", 0, "0"), ("stride", -1, "-1"), ("stride", 1.5, "1.5"), ("stride", 2.0, "2.0"),
    ("stride", (1, 0), "(1, 0)"), ("stride", (1, 2, 3), "(1, 2, 3)"), ("stride", True, "True"),
    ("stride", "2", "'2'"), ("dilation", 0, "0"), ("dilation", (2, 0.5), "(2, 0.5)"),
])
def test_stride_and_dilation_errors(name, value, shown):
    msg = _err(ArgumentError, conv2d, rand((1, 1, 5, 5), 0), rand((1, 1, 3, 3), 1), **{name: value})
    assert msg == f"conv2d: {name} must be an int >= 1 or a pair of them, got {shown}"
    msg = _err(ArgumentError, conv1d, rand((1, 1, 5), 0), rand((1, 1, 3), 1), **{name: value})
    assert msg.startswith(f"conv1d: {name} must be an int >= 1")


@pytest.mark.parametrize("padding,expect", [
    (-1, "conv2d: padding must be an int >= 0 or a pair of them, got -1"),
    ((1, -2), "conv2d: padding must be an int >= 0 or a pair of them, got (1, -2)"),
    (1.5, "conv2d: padding must be 'same', 'valid', an int >= 0 or a tuple of 2 ints >= 0, got 1.5"),
    ("full", "conv2d: padding must be 'same', 'valid', an int >= 0 or a tuple of 2 ints >= 0, got 'full'"),
    ("SAME", "conv2d: padding must be 'same', 'valid', an int >= 0 or a tuple of 2 ints >= 0, got 'SAME'"),
])
def test_padding_errors(padding, expect):
    assert _err(ArgumentError, conv2d, rand((1, 1, 5, 5), 0), rand((1, 1, 3, 3), 1), padding=padding) == expect


def test_padding_mode_errors():
    x, w = rand((1, 1, 3, 5), 0), rand((1, 1, 3, 3), 1)
    msg = _err(ArgumentError, conv2d, x, w, padding=1, padding_mode="mirror")
    assert msg == ("conv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
                   "got 'mirror'")
    msg = _err(ArgumentError, conv2d, x, w, padding=3, padding_mode="reflect")
    assert msg == ("conv2d: padding_mode 'reflect' needs padding smaller than the input size in each spatial "
                   "dim, got padding 3 for input 3x5")
    conv2d(x, w, padding=2, padding_mode="reflect")  # 2 < 3 is fine
    msg = _err(ArgumentError, conv2d, x, w, padding=(4, 1), padding_mode="circular")
    assert msg == ("conv2d: padding_mode 'circular' needs padding at most the input size in each spatial "
                   "dim, got padding (4, 1) for input 3x5")
    conv2d(x, w, padding=9, padding_mode="replicate")  # replicate has no limit
    msg = _err(ArgumentError, conv1d, rand((1, 1, 1), 0), rand((1, 1, 3), 1), padding="same",
               padding_mode="reflect")
    assert "conv1d: padding_mode 'reflect' needs padding smaller than the input size" in msg


def test_dtype_errors():
    x32, w32 = rand((1, 1, 5, 5), 0, np.float32), rand((1, 1, 3, 3), 1, np.float32)
    x64, w64 = rand((1, 1, 5, 5), 0), rand((1, 1, 3, 3), 1)
    msg = _err(ArgumentError, conv2d, x32, w64)
    assert msg == ("conv2d: input and weight have different dtypes (float32 and float64); "
                   "convert one with .to(dtype=...)")
    msg = _err(ArgumentError, conv2d, x32, w32, rand((1,), 2))
    assert msg.startswith("conv2d: input and bias have different dtypes (float32 and float64)")
    xi = gpucnn.tensor(np.ones((1, 1, 5, 5), dtype=np.int64))
    assert _err(ArgumentError, conv2d, xi, w32) == \
        "conv2d: input has dtype int64, expected float32, float64, float16 or bfloat16"
    wi = gpucnn.tensor(np.ones((1, 1, 3), dtype=np.int32))
    assert _err(ArgumentError, conv1d, rand((1, 1, 5), 0), wi) == \
        "conv1d: weight has dtype int32, expected float32, float64, float16 or bfloat16"
    x16 = gpucnn.tensor(np.ones((1, 1, 5, 5), dtype=np.float16))
    assert _err(ArgumentError, conv2d, x16, w32) == ("conv2d: input and weight have different dtypes (float16 and "
                                                     "float32); convert one with .to(dtype=...)")


def test_non_tensor_arguments():
    w = rand((1, 1, 3, 3), 1)
    assert _err(ArgumentError, conv2d, np.zeros((1, 1, 5, 5)), w) == \
        "conv2d: input must be a gpucnn Tensor, got ndarray"
    assert _err(ArgumentError, conv2d, rand((1, 1, 5, 5), 0), w, [1.0]) == \
        "conv2d: bias must be a gpucnn Tensor or None, got list"


def test_errors_are_raised_before_any_computation():
    # A bad argument is reported even when the shapes would also make the computation fail.
    msg = _err(ArgumentError, conv2d, rand((1, 1, 2, 2), 0), rand((1, 1, 5, 5), 1), stride=0)
    assert "stride" in msg


# -- which NumPy algorithm runs ---------------------------------------------------------------------

@pytest.mark.parametrize("cin,k,stride,expect", [
    (1, 3, 1, "im2col"), (3, 3, 1, "im2col"), (8, 1, 1, "im2col"), (16, 1, 1, "rows"), (6, 3, 1, "rows"),
    (32, 3, 1, "rows"), (32, 3, 2, "im2col")])
def test_automatic_choice_of_algorithm(monkeypatch, cin, k, stride, expect):
    """Kernel rows at stride 1 when its GEMMs have C_in*kW >= ROWS_MIN_K rows and BLAS can accumulate;
    else im2col."""
    monkeypatch.setattr(_conv_numpy, "ALGORITHM", None)
    op = Conv2d((stride, stride), (1, 1, 1, 1))
    x, w = t(np.zeros((2, cin, 5, 5))), t(np.zeros((4, cin, k, k)))
    op(x, w, None)
    assert op.cpu_algorithm == (expect if blas.accelerated(np.float64) else "im2col")
    monkeypatch.setattr(blas, "accelerated", lambda dtype=None: False)
    op(x, w, None)
    assert op.cpu_algorithm == "im2col"


def test_unknown_algorithm_is_refused(monkeypatch):
    monkeypatch.setattr(_conv_numpy, "ALGORITHM", "winograd")
    with pytest.raises(ArgumentError, match="GPUCNN_CONV_ALGORITHM.*'rows', 'im2col' or unset, got 'winograd'"):
        conv2d(t(np.zeros((1, 2, 4, 4))), t(np.zeros((3, 2, 3, 3))))


def test_algorithms_agree_in_float32(conv_algorithm):
    """Both algorithms on a net-sized float32 case against the float64 reference, gradients included."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 12, 10, 11)).astype(np.float32)
    w = rng.standard_normal((7, 12, 3, 3)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    gy = rng.standard_normal((9, 7, 5, 7)).astype(np.float32)
    xt, wt, bt = t(x, np.float32, True), t(w, np.float32, True), t(b, np.float32, True)
    y = conv2d(xt, wt, bt, stride=2, padding=(1, 2))
    y.backward(t(gy, np.float32))
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x, w, b, stride=2, padding=(1, 2)), rtol=1e-5, atol=1e-5)
    x64, w64, b64 = t(x, requires_grad=True), t(w, requires_grad=True), t(b, requires_grad=True)
    conv2d(x64, w64, b64, stride=2, padding=(1, 2)).backward(t(gy))
    for got, ref in ((xt, x64), (wt, w64), (bt, b64)):
        np.testing.assert_allclose(got.grad.numpy(), ref.grad.numpy(), rtol=1e-4, atol=1e-4)
