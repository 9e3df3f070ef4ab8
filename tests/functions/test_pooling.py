"""Pooling ops: worked examples, a direct-loop reference (forward and backward), first-maximum
tie-breaking, gradient checks in float64, and argument validation."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.functions.pooling import (adaptive_avg_pool2d, avg_pool1d, avg_pool2d, global_avg_pool2d,
                                      max_pool1d, max_pool2d)


# -- independent references: direct loops following PyTorch's CPU kernels ---------------------------
def ref_out(size, k, s, p, d=1, ceil_mode=False):
    q = (size + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(q) if ceil_mode else math.floor(q)) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside input/left padding
        out -= 1
    return out


def ref_max_pool2d(x, k, s, p, d=(1, 1), ceil_mode=False):
    """(y, flat argmax into H*W) by scanning each window's valid positions row-major, first max wins."""
    n_, c_, h_, w_ = x.shape
    oh, ow = ref_out(h_, k[0], s[0], p[0], d[0], ceil_mode), ref_out(w_, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.empty((n_, c_, oh, ow), x.dtype)
    idx = np.empty((n_, c_, oh, ow), np.int64)
    for n, c, i, j in itertools.product(range(n_), range(c_), range(oh), range(ow)):
        best, where = None, None
        for a in range(k[0]):
            for b in range(k[1]):
                h, w = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                if 0 <= h < h_ and 0 <= w < w_ and (best is None or x[n, c, h, w] > best):
                    best, where = x[n, c, h, w], h * w_ + w
        # A dilated window can hold only padding: -inf, and its gradient goes nowhere (index -1).
        y[n, c, i, j], idx[n, c, i, j] = (-np.inf, -1) if best is None else (best, where)
    return y, idx


def ref_max_pool2d_backward(x_shape, idx, gy):
    gx = np.zeros(x_shape, gy.dtype)
    n_, c_ = x_shape[:2]
    for n, c in itertools.product(range(n_), range(c_)):
        valid = idx[n, c] >= 0
        np.add.at(gx[n, c].reshape(-1), idx[n, c][valid], gy[n, c][valid])
    return gx


def _avg_windows(x_shape, k, s, p, ceil_mode, count_include_pad):
    """Yield (n, c, i, j, h-range, w-range, divisor) exactly as PyTorch's avg_pool2d computes them."""
    n_, c_, h_, w_ = x_shape
    oh, ow = ref_out(h_, k[0], s[0], p[0], 1, ceil_mode), ref_out(w_, k[1], s[1], p[1], 1, ceil_mode)
    for n, c, i, j in itertools.product(range(n_), range(c_), range(oh), range(ow)):
        hs, ws = i * s[0] - p[0], j * s[1] - p[1]
        he, we = min(hs + k[0], h_ + p[0]), min(ws + k[1], w_ + p[1])
        pool = (he - hs) * (we - ws)
        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h_), min(we, w_)
        div = pool if count_include_pad else (he - hs) * (we - ws)
        yield n, c, i, j, range(hs, he), range(ws, we), div


def ref_avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=True):
    n_, c_, h_, w_ = x.shape
    oh, ow = ref_out(h_, k[0], s[0], p[0], 1, ceil_mode), ref_out(w_, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n_, c_, oh, ow), np.float64)
    for n, c, i, j, hr, wr, div in _avg_windows(x.shape, k, s, p, ceil_mode, count_include_pad):
        y[n, c, i, j] = sum(float(x[n, c, h, w]) for h in hr for w in wr) / div
    return y


def ref_avg_pool2d_backward(x_shape, gy, k, s, p, ceil_mode=False, count_include_pad=True):
    gx = np.zeros(x_shape, np.float64)
    for n, c, i, j, hr, wr, div in _avg_windows(x_shape, k, s, p, ceil_mode, count_include_pad):
        for h in hr:
            for w in wr:
                gx[n, c, h, w] += gy[n, c, i, j] / div
    return gx


def ref_adaptive_avg_pool2d(x, out):
    n_, c_, h_, w_ = x.shape
    y = np.zeros(x.shape[:2] + tuple(out))
    for i, j in itertools.product(range(out[0]), range(out[1])):
        hs, he = (i * h_) // out[0], math.ceil((i + 1) * h_ / out[0])
        ws, we = (j * w_) // out[1], math.ceil((j + 1) * w_ / out[1])
        y[:, :, i, j] = x[:, :, hs:he, ws:we].mean(axis=(2, 3))
    return y


def t(a, requires_grad=False):
    return gpucnn.tensor(np.asarray(a), requires_grad=requires_grad)


def distinct(shape, seed=0):
    """float64 values 0.1 apart in random order: every window has a unique max, robust to eps=1e-6."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0).astype(np.float64)


# -- the worked example ------------------------------------------------------------------------------
# Windows of 2x2 / stride 2 (top-left, top-right, bottom-left, bottom-right):
#   TL rows 0-1, cols 0-1: {1, 0, 0, 2}  max 2  mean 3/4 = 0.75   first max at (1, 1)
#   TR rows 0-1, cols 2-3: {1, 0, 0, 1}  max 1  mean 2/4 = 0.5    tie: first max at (0, 2), not (1, 3)
#   BL rows 2-3, cols 0-1: {3, 0, 0, 0}  max 3  mean 3/4 = 0.75   first max at (2, 0)
#   BR rows 2-3, cols 2-3: {0, 0, 1, 0}  max 1  mean 1/4 = 0.25   first max at (3, 2)
WORKED = np.array([[1, 0, 1, 0],
                   [0, 2, 0, 1],
                   [3, 0, 0, 0],
                   [0, 0, 1, 0]], dtype=np.float32).reshape(1, 1, 4, 4)


def test_worked_example_max_pool():
    x = t(WORKED, requires_grad=True)
    y = max_pool2d(x, 2, stride=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy()[0, 0], [[2, 1], [3, 1]])
    y.sum().backward()
    expected = np.zeros((4, 4), np.float32)
    expected[1, 1] = expected[0, 2] = expected[2, 0] = expected[3, 2] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_worked_example_avg_pool():
    x = t(WORKED, requires_grad=True)
    y = avg_pool2d(x, 2, stride=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy()[0, 0], [[0.75, 0.5], [0.75, 0.25]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 4, 4), 0.25, np.float32))


def test_stride_defaults_to_kernel_size():
    x = t(distinct((2, 3, 6, 6)))
    np.testing.assert_array_equal(max_pool2d(x, 3).numpy(), max_pool2d(x, 3, stride=3).numpy())
    np.testing.assert_array_equal(avg_pool2d(x, 2).numpy(), avg_pool2d(x, 2, stride=2).numpy())


# -- forward and backward against the loop reference --------------------------------------------------
SHAPES = [(1, 1, 5, 5), (2, 3, 7, 6), (1, 2, 4, 9)]
WINDOWS = [(k, s, p) for k in (1, 2, 3) for s in (1, 2, 3) for p in (0, 1) if 2 * p <= k]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k,s,p", WINDOWS)
def test_max_pool2d_matches_reference(shape, k, s, p):
    rng = np.random.default_rng(1)
    # Small integers: plenty of exact ties, so first-maximum routing is compared too.
    x = rng.integers(0, 3, shape).astype(np.float32)
    xt = t(x, requires_grad=True)
    y = max_pool2d(xt, k, s, p)
    ref, idx = ref_max_pool2d(x, (k, k), (s, s), (p, p))
    np.testing.assert_array_equal(y.numpy(), ref)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    y.backward(gy)
    np.testing.assert_allclose(xt.grad.numpy(), ref_max_pool2d_backward(x.shape, idx, gy), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k,s,p", WINDOWS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_matches_reference(shape, k, s, p, count_include_pad):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    xt = t(x, requires_grad=True)
    y = avg_pool2d(xt, k, s, p, count_include_pad=count_include_pad)
    ref = ref_avg_pool2d(x, (k, k), (s, s), (p, p), False, count_include_pad)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    y.backward(gy)
    ref_gx = ref_avg_pool2d_backward(x.shape, gy, (k, k), (s, s), (p, p), False, count_include_pad)
    np.testing.assert_allclose(xt.grad.numpy(), ref_gx, rtol=1e-5, atol=1e-6)


@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       dh=st.integers(1, 2), dw=st.integers(1, 2), pad=st.data(), ceil_mode=st.booleans(),
       ties=st.booleans(), seed=st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_max_pool2d_random_cases(n, c, h, w, kh, kw, sh, sw, dh, dw, pad, ceil_mode, ties, seed):
    ph, pw = pad.draw(st.integers(0, kh // 2)), pad.draw(st.integers(0, kw // 2))
    assume(dh * (kh - 1) + 1 <= h + 2 * ph and dw * (kw - 1) + 1 <= w + 2 * pw)
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, (n, c, h, w)) if ties else rng.standard_normal((n, c, h, w))).astype(np.float64)
    xt = t(x, requires_grad=True)
    y = max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    ref, idx = ref_max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    np.testing.assert_array_equal(y.numpy(), ref)
    gy = rng.standard_normal(ref.shape)
    y.backward(gy)
    np.testing.assert_allclose(xt.grad.numpy(), ref_max_pool2d_backward(x.shape, idx, gy), rtol=1e-12, atol=1e-12)


@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       pad=st.data(), ceil_mode=st.booleans(), count_include_pad=st.booleans(), seed=st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_avg_pool2d_random_cases(n, c, h, w, kh, kw, sh, sw, pad, ceil_mode, count_include_pad, seed):
    ph, pw = pad.draw(st.integers(0, kh // 2)), pad.draw(st.integers(0, kw // 2))
    assume(kh <= h + 2 * ph and kw <= w + 2 * pw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    xt = t(x, requires_grad=True)
    y = avg_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad)
    ref = ref_avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(ref.shape)
    y.backward(gy)
    ref_gx = ref_avg_pool2d_backward(x.shape, gy, (kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad)
    np.testing.assert_allclose(xt.grad.numpy(), ref_gx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("h,k,s,p,floor_size,ceil_size", [
    (5, 2, 2, 0, 2, 3),   # ceil_mode keeps the partial last window
    (6, 3, 2, 1, 3, 4),
    (3, 2, 2, 1, 2, 2),   # a last window starting in the right padding is dropped
    (4, 2, 2, 0, 2, 2),
])
def test_ceil_mode_output_sizes(h, k, s, p, floor_size, ceil_size):
    x = t(np.ones((1, 1, h, h), np.float32))
    assert max_pool2d(x, k, s, p).shape == (1, 1, floor_size, floor_size)
    assert max_pool2d(x, k, s, p, ceil_mode=True).shape == (1, 1, ceil_size, ceil_size)
    assert avg_pool2d(x, k, s, p, ceil_mode=True).shape == (1, 1, ceil_size, ceil_size)


def test_avg_pool_ceil_mode_divisor_stops_at_the_padded_input():
    # 5x5 ones, 2x2/2 with ceil_mode: the last row/column of windows holds one real row/column and its
    # divisor counts only the part inside the (unpadded) input, so every output is exactly 1.
    y = avg_pool2d(t(np.ones((1, 1, 5, 5), np.float32)), 2, 2, ceil_mode=True)
    np.testing.assert_array_equal(y.numpy(), np.ones((1, 1, 3, 3), np.float32))


def test_avg_pool_count_include_pad():
    x = t(np.ones((1, 1, 3, 3), np.float32))
    # The corner 3x3 window at padding 1 covers 4 real ones out of 9 positions.
    assert avg_pool2d(x, 3, 1, 1).numpy()[0, 0, 0, 0] == pytest.approx(4 / 9)
    assert avg_pool2d(x, 3, 1, 1, count_include_pad=False).numpy()[0, 0, 0, 0] == 1.0


def test_max_pool_padding_is_minus_infinity():
    x = t(np.full((1, 1, 2, 2), -5.0, np.float32))
    np.testing.assert_array_equal(max_pool2d(x, 2, 1, 1).numpy(), np.full((1, 1, 3, 3), -5.0, np.float32))


def test_dtypes_are_kept():
    for dtype in (np.float32, np.float64):
        x = t(np.ones((1, 2, 4, 4), dtype))
        for y in (max_pool2d(x, 2), avg_pool2d(x, 2, padding=1), adaptive_avg_pool2d(x, 3),
                  adaptive_avg_pool2d(x, 1), global_avg_pool2d(x)):
            assert y.dtype == dtype


# -- ties: the gradient goes to exactly one element per window, the first -----------------------------
def test_ties_route_to_the_first_maximum_only():
    x = t(np.zeros((2, 3, 4, 4), np.float32), requires_grad=True)
    y = max_pool2d(x, 2, 2)
    y.sum().backward()
    g = x.grad.numpy()
    assert g.sum() == y.numpy().size == 2 * 3 * 2 * 2
    expected = np.zeros((4, 4), np.float32)
    expected[::2, ::2] = 1  # the top-left element of every window
    np.testing.assert_array_equal(g, np.broadcast_to(expected, g.shape))


def test_ties_with_overlapping_windows_accumulate():
    x = t(np.zeros((1, 1, 5, 5), np.float64), requires_grad=True)
    y = max_pool2d(x, 3, stride=1)  # nine overlapping 3x3 windows
    y.sum().backward()
    g = x.grad.numpy()[0, 0]
    assert g.sum() == 9
    expected = np.zeros((5, 5))
    expected[:3, :3] = 1  # window (i, j)'s first element is (i, j)
    np.testing.assert_array_equal(g, expected)


def test_overlapping_windows_accumulate_on_a_shared_maximum():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the one maximum of all nine 3x3/1 windows
    xt = t(x, requires_grad=True)
    max_pool2d(xt, 3, stride=1).sum().backward()
    expected = np.zeros((1, 1, 5, 5))
    expected[0, 0, 2, 2] = 9
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


def test_ties_in_a_constant_region_with_padding():
    x = np.ones((1, 1, 4, 4), np.float32)
    xt = t(x, requires_grad=True)
    y = max_pool2d(xt, 3, 2, 1)  # 2x2 windows; each's first real element takes the gradient
    y.sum().backward()
    g = xt.grad.numpy()[0, 0]
    assert g.sum() == 4
    expected = np.zeros((4, 4), np.float32)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = 1
    np.testing.assert_array_equal(g, expected)


# -- adaptive and global average pooling -------------------------------------------------------------
@pytest.mark.parametrize("shape,out", [((2, 3, 5, 7), (3, 3)), ((1, 2, 6, 6), (4, 2)), ((1, 1, 3, 4), (5, 7)),
                                       ((2, 2, 8, 8), (2, 2)), ((2, 3, 5, 7), (1, 1))])
def test_adaptive_avg_pool2d_matches_reference(shape, out):
    x = np.random.default_rng(3).standard_normal(shape)
    y = adaptive_avg_pool2d(t(x), out)
    assert y.shape == shape[:2] + out
    np.testing.assert_allclose(y.numpy(), ref_adaptive_avg_pool2d(x, out), rtol=1e-12, atol=1e-12)


def test_adaptive_output_size_forms():
    x = t(np.random.default_rng(4).standard_normal((2, 3, 6, 5)))
    assert adaptive_avg_pool2d(x, 1).shape == (2, 3, 1, 1)
    assert adaptive_avg_pool2d(x, (1, 1)).shape == (2, 3, 1, 1)
    assert adaptive_avg_pool2d(x, (2, None)).shape == (2, 3, 2, 5)
    np.testing.assert_allclose(adaptive_avg_pool2d(x, 1).numpy()[:, :, 0, 0], global_avg_pool2d(x).numpy())


def test_global_avg_pool2d():
    x = np.random.default_rng(5).standard_normal((4, 3, 5, 6)).astype(np.float32)
    y = global_avg_pool2d(t(x))
    assert y.shape == (4, 3)
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3)), rtol=1e-6)


# -- 1-D variants ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 1, 1), (3, 2, 0), (1, 1, 0)])
def test_pool1d_matches_the_2d_reference(k, s, p):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, (2, 3, 9)).astype(np.float64)
    st_ = k if s is None else s
    xt = t(x, requires_grad=True)
    y = max_pool1d(xt, k, s, p)
    ref, idx = ref_max_pool2d(x[:, :, None, :], (1, k), (1, st_), (0, p))
    np.testing.assert_array_equal(y.numpy(), ref[:, :, 0])
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    ref_gx = ref_max_pool2d_backward((2, 3, 1, 9), idx, gy[:, :, None])[:, :, 0]
    np.testing.assert_allclose(xt.grad.numpy(), ref_gx, rtol=1e-12, atol=1e-12)
    for cip in (True, False):
        ya = avg_pool1d(t(x), k, s, p, count_include_pad=cip)
        np.testing.assert_allclose(ya.numpy(), ref_avg_pool2d(x[:, :, None, :], (1, k), (1, st_), (0, p), False, cip)[:, :, 0])


# -- gradient checks in float64 ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=1), dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)), dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=2, stride=2, ceil_mode=True)])
def test_max_pool2d_gradcheck(kwargs):
    x = t(distinct((2, 2, 5, 5)), requires_grad=True)
    assert gpucnn.gradcheck(lambda a: max_pool2d(a, **kwargs), [x])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True)])
def test_avg_pool2d_gradcheck(kwargs, count_include_pad):
    x = t(np.random.default_rng(7).standard_normal((2, 2, 5, 5)), requires_grad=True)
    assert gpucnn.gradcheck(lambda a: avg_pool2d(a, count_include_pad=count_include_pad, **kwargs), [x])


@pytest.mark.parametrize("out", [1, (1, 1), (3, 3), (2, 4), (6, 2)])
def test_adaptive_avg_pool2d_gradcheck(out):
    x = t(np.random.default_rng(8).standard_normal((2, 2, 5, 7)), requires_grad=True)
    assert gpucnn.gradcheck(lambda a: adaptive_avg_pool2d(a, out), [x])


def test_global_avg_pool2d_gradcheck():
    x = t(np.random.default_rng(9).standard_normal((2, 3, 4, 5)), requires_grad=True)
    assert gpucnn.gradcheck(global_avg_pool2d, [x])


def test_pool1d_gradcheck():
    x = t(distinct((2, 2, 7)), requires_grad=True)
    assert gpucnn.gradcheck(lambda a: max_pool1d(a, 3, 2, 1), [x])
    assert gpucnn.gradcheck(lambda a: avg_pool1d(a, 3, 2, 1, count_include_pad=False), [x])


def test_no_grad_forward():
    x = t(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)
    with gpucnn.no_grad():
        y = max_pool2d(x, 2)
    assert not y.requires_grad


# -- validation ---------------------------------------------------------------------------------------
def _raises(exc, fn, *facts):
    with pytest.raises(exc) as info:
        fn()
    for fact in facts:
        assert fact in str(info.value), f"{fact!r} not in {str(info.value)!r}"


X = t(np.zeros((1, 1, 4, 4), np.float32))


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d])
def test_validation_window_arguments(op):
    name = op.__name__
    _raises(ShapeError, lambda: op(t(np.zeros((4, 4), np.float32)), 2), name, "rank 4", "(4, 4)")
    _raises(ArgumentError, lambda: op(X, 0), name, "kernel_size", ">= 1", "0")
    _raises(ArgumentError, lambda: op(X, (2, -1)), name, "kernel_size", "(2, -1)")
    _raises(ArgumentError, lambda: op(X, 2, 0), name, "stride", ">= 1", "0")
    _raises(ArgumentError, lambda: op(X, 2, 2, -1), name, "padding", ">= 0", "-1")
    _raises(ArgumentError, lambda: op(X, 3, 1, 2), name, "padding 2", "half the kernel size 3x3", "<= 1")
    _raises(ArgumentError, lambda: op(X, 2.5), name, "kernel_size", "2.5")
    _raises(ArgumentError, lambda: op(X, (2, 2, 2)), name, "kernel_size", "(2, 2, 2)")
    _raises(ArgumentError, lambda: op(X, 2, ceil_mode="yes"), name, "ceil_mode", "'yes'")
    _raises(ShapeError, lambda: op(t(np.zeros((0, 1, 4, 4), np.float32)), 2), name, "empty", "(0, 1, 4, 4)")
    _raises(ShapeError, lambda: op(t(np.zeros((1, 0, 4, 4), np.float32)), 2), name, "empty", "(1, 0, 4, 4)")
    _raises(ArgumentError, lambda: op(t(np.zeros((1, 1, 4, 4), np.int64)), 2), name, "floating-point", "int64")
    _raises(ArgumentError, lambda: op(np.zeros((1, 1, 4, 4), np.float32), 2), name, "Tensor", "ndarray")


def test_validation_kernel_larger_than_padded_input():
    x = t(np.zeros((1, 1, 2, 2), np.float32))
    _raises(ShapeError, lambda: max_pool2d(x, 3),
            "max_pool2d: kernel 3x3 is larger than the padded input 2x2 (input 2x2, padding 0)")
    _raises(ShapeError, lambda: avg_pool2d(x, 3),
            "avg_pool2d: kernel 3x3 is larger than the padded input 2x2 (input 2x2, padding 0)")
    _raises(ShapeError, lambda: max_pool2d(t(np.zeros((1, 1, 4, 4), np.float32)), 2, dilation=4),
            "max_pool2d: kernel 2x2 with dilation 4 (spanning 5x5) is larger than the padded input 4x4")
    assert max_pool2d(x, 3, padding=1).shape == (1, 1, 1, 1)  # fits once padded (2x2 -> 4x4)


def test_validation_max_pool_dilation_and_avg_pool_flags():
    _raises(ArgumentError, lambda: max_pool2d(X, 2, dilation=0), "max_pool2d", "dilation", ">= 1")
    _raises(ArgumentError, lambda: avg_pool2d(X, 2, count_include_pad=None), "avg_pool2d", "count_include_pad")


def test_validation_1d():
    x = t(np.zeros((1, 1, 2), np.float32))
    _raises(ShapeError, lambda: max_pool1d(X, 2), "max_pool1d", "rank 3", "(1, 1, 4, 4)")
    _raises(ShapeError, lambda: avg_pool1d(x, 3), "avg_pool1d: kernel 3 is larger than the padded input 2 "
                                                  "(input 2, padding 0)")
    _raises(ArgumentError, lambda: max_pool1d(x, (2, 2)), "max_pool1d", "kernel_size", "an int")
    _raises(ArgumentError, lambda: max_pool1d(x, 2, padding=2), "max_pool1d", "padding 2", "kernel size 2")


def test_validation_adaptive_and_global():
    _raises(ArgumentError, lambda: adaptive_avg_pool2d(X, 0), "adaptive_avg_pool2d", "output_size", "0")
    _raises(ArgumentError, lambda: adaptive_avg_pool2d(X, (2, 0)), "adaptive_avg_pool2d", "output_size")
    _raises(ArgumentError, lambda: adaptive_avg_pool2d(X, "2"), "adaptive_avg_pool2d", "output_size")
    _raises(ShapeError, lambda: adaptive_avg_pool2d(t(np.zeros((1, 4, 4), np.float32)), 1),
            "adaptive_avg_pool2d", "rank 4", "(1, 4, 4)")
    _raises(ShapeError, lambda: global_avg_pool2d(t(np.zeros((2, 3), np.float32))),
            "global_avg_pool2d", "rank 4", "(2, 3)")
    _raises(ArgumentError, lambda: global_avg_pool2d(t(np.zeros((1, 1, 2, 2), np.int64))),
            "global_avg_pool2d", "floating-point")
