"""The pooling CUDA kernels (kernels_cuda/pooling.cu) against the NumPy path (device cpu) on the same
data, forward and backward, float32 and float64, on the `kernel_device` devices (emu in three thread
orders; cuda when present).

Tolerances:
- max pooling: exact. The forward only compares and copies; the backward gathers the same gradients
  in the NumPy path's order (window offset k = i * kw + j), and adding the NumPy path's extra zeros
  changes nothing. No product exists to be contracted into an FMA on a GPU.
- average pooling: exact. Both sum the same real pixels in the same row-major order (zero padding adds
  nothing) and divide by the same integer divisor (correctly rounded division on both); the backward
  divides gy by the same divisor and adds in the same window order.
- adaptive average pooling: the NumPy path multiplies by rounded 1/rows and 1/cols weights through BLAS
  (in its own order, possibly with FMAs) where the kernel sums a bin and divides once: both are within
  (cells + 3) ulp of the exact average of |x| over a bin of `cells` values, so we allow
  2 * (cells + 3) * eps * max|x| (likewise for the backward with the number of bins covering one input).
- global average pooling: each lane sums HW/32 values, then a 5-level shuffle tree: error
  <= (HW/32 + 6) ulp of mean|x|; NumPy's pairwise mean <= (log2(HW) + 16) ulp: we allow their sum
  times eps * max|x|. Its backward (gy / HW, the same operation) is exact.
"""
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import emu
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.functions import pooling
from gpucnn.functions.pooling import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d, avg_pool2d, global_avg_pool2d,
                                      max_pool1d, max_pool2d)

DTYPES = [np.float32, np.float64]
# Odd shapes: batch 1, one channel, sizes that are not multiples of anything, and planes * H * W
# well past one block of 256 threads.
SHAPES = [(1, 1, 5, 5), (2, 3, 7, 6), (1, 2, 9, 4), (2, 3, 17, 19)]
WINDOWS = [(k, s, p) for k in (1, 2, 3) for s in (1, 2, 3) for p in (0, 1) if 2 * p <= k]


def run(device, fn, x, gy=None, seed=0):
    """(y, gx, gy) of `fn` on `device` for a copy of `x`; gy drawn from `seed` unless given."""
    xt = gpucnn.tensor(x.copy(), device=device, requires_grad=True)
    y = fn(xt)
    if gy is None:
        gy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    y.backward(gpucnn.tensor(gy, device=device))
    assert y.dtype == x.dtype and xt.grad.dtype == x.dtype
    return y.numpy(), xt.grad.numpy(), gy


def compare(device, fn, x, atol_y=0.0, atol_gx=0.0, gy=None):
    """Run `fn` on the kernel device and on cpu with the same x and gy; compare within the tolerances
    (exactly when 0)."""
    y, gx, gy = run(device, fn, x, gy)
    y_ref, gx_ref, _ = run("cpu", fn, x, gy)
    assert y.shape == y_ref.shape
    if atol_y == 0.0:
        np.testing.assert_array_equal(y, y_ref)
    else:
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=atol_y)
    if atol_gx == 0.0:
        np.testing.assert_array_equal(gx, gx_ref)
    else:
        np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=atol_gx)
    return y, gx


def data(shape, dtype, seed=0, kind="normal"):
    rng = np.random.default_rng(seed)
    if kind == "ties":  # small integers: many exact ties inside windows
        return rng.integers(0, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# -- max pooling -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d(kernel_device, dtype, k, s, p, ceil_mode):
    for i, shape in enumerate(SHAPES):
        if k > shape[2] + 2 * p or k > shape[3] + 2 * p:
            continue
        for kind in ("normal", "ties"):
            compare(kernel_device, lambda t: max_pool2d(t, k, s, p, ceil_mode=ceil_mode),
                    data(shape, dtype, seed=i, kind=kind))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (2, 1, 0, 2), (3, 2, 1, 2), (3, 1, 1, (2, 1)), ((2, 3), (1, 2), (1, 0), (2, 3)), (3, 3, 0, 2)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d_dilation(kernel_device, dtype, kernel, stride, padding, dilation, ceil_mode):
    for i, shape in enumerate([(1, 1, 7, 8), (2, 3, 11, 9)]):
        for kind in ("normal", "ties"):
            compare(kernel_device, lambda t: max_pool2d(t, kernel, stride, padding, dilation, ceil_mode),
                    data(shape, dtype, seed=i, kind=kind))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 1)])
def test_max_pool2d_exact_ties_route_like_numpy(kernel_device, dtype, kernel, stride, padding):
    # All zeros: every window is a tie; the gradient must go to the same (first) element as on cpu.
    x = np.zeros((2, 3, 6, 7), dtype)
    _, gx = compare(kernel_device, lambda t: max_pool2d(t, kernel, stride, padding), x)
    n_out = max_pool2d(gpucnn.tensor(x), kernel, stride, padding).numel()
    assert np.count_nonzero(gx) <= n_out  # one winner per window (some windows share it)


def test_max_pool2d_window_of_padding_only(kernel_device):
    # 1x1 input, kernel 2 dilated by 2 with padding 1: the one window holds two padding positions and no
    # pixel, so the output is -inf and the gradient goes nowhere (as on cpu).
    x = np.full((1, 2, 1, 1), 3.0, np.float32)
    y, gx = compare(kernel_device, lambda t: max_pool2d(t, (1, 2), 1, (0, 1), (1, 2)), x)
    assert np.all(y == -np.inf) and np.all(gx == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_minus_inf_inputs_and_padding(kernel_device, dtype):
    # Real -inf values tie with the -inf padding: windows whose first position is padding keep it, and
    # their gradient is dropped, exactly as on cpu.
    x = np.full((1, 2, 5, 4), -np.inf, dtype)
    x[0, 1, 2, 2] = 1.0
    compare(kernel_device, lambda t: max_pool2d(t, 3, 2, 1, ceil_mode=True), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_like_numpy(kernel_device, dtype):
    # A NaN makes its window's output NaN (np.maximum propagates it) and freezes the argmax at the first
    # maximum seen before it (nothing is > NaN): the kernel does the same.
    x = data((2, 2, 7, 7), dtype, seed=3)
    x[0, 0, 0, 0] = np.nan  # first position of a window
    x[0, 1, 3, 4] = np.nan  # inside windows
    x[1, 0, 6, 6] = np.nan  # last position of a window
    y, _ = compare(kernel_device, lambda t: max_pool2d(t, 3, 2, 1, ceil_mode=True), x)
    assert np.isnan(y).sum() >= 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool1d(kernel_device, dtype):
    x = data((2, 3, 23), dtype, seed=4, kind="ties")
    compare(kernel_device, lambda t: max_pool1d(t, 3, 2, 1, 2, True), x)


# -- average pooling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(kernel_device, dtype, k, s, p, ceil_mode, count_include_pad):
    for i, shape in enumerate(SHAPES):
        if k > shape[2] + 2 * p or k > shape[3] + 2 * p:
            continue
        compare(kernel_device, lambda t: avg_pool2d(t, k, s, p, ceil_mode, count_include_pad),
                data(shape, dtype, seed=i))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_rectangular_windows(kernel_device, dtype, count_include_pad):
    x = data((2, 3, 10, 13), dtype, seed=5)
    for kernel, stride, padding in [((2, 3), (1, 2), (1, 1)), ((3, 1), (3, 1), (1, 0)), ((1, 4), (2, 3), (0, 2))]:
        for ceil_mode in (False, True):
            compare(kernel_device, lambda t: avg_pool2d(t, kernel, stride, padding, ceil_mode, count_include_pad), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool1d(kernel_device, dtype):
    x = data((2, 3, 23), dtype, seed=6)
    compare(kernel_device, lambda t: avg_pool1d(t, 3, 2, 1, True, False), x)


# -- adaptive and global average pooling -------------------------------------------------------------
def _adaptive_cells(size, out):
    """(largest bin, most bins covering one input position) along one axis."""
    bins = [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]
    cover = max(sum(a <= j < b for a, b in bins) for j in range(size))
    return max(b - a for a, b in bins), cover


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, 2, 3, (2, 3), (3, 1), (1, 2), (7, 4), (5, 5)])
def test_adaptive_avg_pool2d(kernel_device, dtype, output_size):
    eps = np.finfo(dtype).eps
    out = (output_size, output_size) if isinstance(output_size, int) else output_size
    for i, shape in enumerate([(1, 1, 5, 4), (2, 3, 7, 9), (2, 5, 40, 37)]):
        (bh, ch), (bw, cw) = _adaptive_cells(shape[2], out[0]), _adaptive_cells(shape[3], out[1])
        x = data(shape, dtype, seed=i)
        if out == (1, 1):  # the global reduction, see test_global_avg_pool2d
            hw = shape[2] * shape[3]
            atol_y, atol_gx = (hw / 32 + 6 + math.log2(hw) + 16) * eps * np.abs(x).max(), 0.0
        else:
            atol_y = 2 * (bh * bw + 3) * eps * np.abs(x).max()
            atol_gx = 2 * (ch * cw + 3) * eps * 4.0  # |gy| < 4 here (a few standard normals per cell)
        y, _ = compare(kernel_device, lambda t: adaptive_avg_pool2d(t, output_size), x, atol_y, atol_gx)
        assert y.shape == shape[:2] + out


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avg_pool2d(kernel_device, dtype):
    eps = np.finfo(dtype).eps
    # planes not a multiple of the 8 warps of a block; planes of 1, fewer than 32 and many more values.
    for i, shape in enumerate([(1, 1, 1, 1), (1, 1, 3, 3), (2, 5, 7, 7), (3, 7, 40, 37), (17, 1, 2, 3)]):
        hw = shape[2] * shape[3]
        x = data(shape, dtype, seed=i) + 2.0
        y, _ = compare(kernel_device, global_avg_pool2d, x,
                       atol_y=(hw / 32 + 6 + math.log2(hw) + 16) * eps * np.abs(x).max())
        assert y.shape == shape[:2]


def test_reductions_are_deterministic_across_thread_orders():
    # The same bits in every thread order (the kernel_device fixture runs each order separately).
    x = data((3, 5, 33, 31), np.float32, seed=9) + 100.0
    results = []
    for order in ("forward", "reverse", "shuffled"):
        with emu.thread_order(order, seed=7):
            results.append(run("emu", global_avg_pool2d, x)[0])
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


# -- launcher checks ---------------------------------------------------------------------------------
def test_other_dtypes_are_refused_on_kernel_devices():
    # Refused at the boundary, as on cpu, before any kernel is specialised.
    x = gpucnn.tensor(np.zeros((1, 1, 4, 4), np.int32), device="emu")
    with pytest.raises(ArgumentError, match=r"max_pool2d: input must have a floating-point dtype \(float16, "
                                            r"bfloat16, float32 or float64\), got int32"):
        max_pool2d(x, 2)


def test_sizes_past_int32_are_refused():
    pooling._check_int32("avg_pool2d", input_elements=2**31 - 1)
    with pytest.raises(ShapeError, match=r"avg_pool2d: input elements is 2147483648, more than the CUDA "
                                         r"kernels' 32-bit indexing allows \(2147483647\)"):
        pooling._check_int32("avg_pool2d", input_elements=2**31)


# -- divisor_override, return_indices, adaptive max pooling (exact: compares, copies and one division) ----
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (2, 1, 0), (3, 3, 1)])
@pytest.mark.parametrize("divisor", [3, -7])
def test_avg_pool2d_divisor_override(kernel_device, dtype, k, s, p, divisor):
    x = data((2, 3, 7, 6), dtype)
    compare(kernel_device, lambda t: avg_pool2d(t, k, s, p, ceil_mode=True, divisor_override=divisor), x)
    compare(kernel_device, lambda t: avg_pool1d(t[:, :, 0], k, s, p, divisor_override=divisor), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,padding,dilation", [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 2)])
def test_max_pool2d_indices_like_numpy(kernel_device, dtype, kernel, stride, padding, dilation):
    x = data((2, 3, 9, 8), dtype, kind="ties")
    _, i = max_pool2d(gpucnn.tensor(x, device=kernel_device), kernel, stride, padding, dilation, return_indices=True)
    _, i_ref = max_pool2d(gpucnn.tensor(x), kernel, stride, padding, dilation, return_indices=True)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i.numpy(), i_ref.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 5), (5, 5)), ((2, 1, 4, 9), (1, 1)),
                                       ((1, 2, 3, 4), (5, 7)), ((2, 3, 17, 19), (6, 5))])
@pytest.mark.parametrize("kind", ["normal", "ties"])
def test_adaptive_max_pool2d(kernel_device, dtype, shape, out, kind):
    x = data(shape, dtype, kind=kind)
    compare(kernel_device, lambda t: adaptive_max_pool2d(t, out), x)
    _, i = adaptive_max_pool2d(gpucnn.tensor(x, device=kernel_device), out, return_indices=True)
    _, i_ref = adaptive_max_pool2d(gpucnn.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), i_ref.numpy())


def test_adaptive_max_pool2d_nan_and_inf_like_numpy(kernel_device):
    x = data((1, 2, 6, 6), np.float32)
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 4, 1] = np.nan
    x[0, 1, 2, :] = np.inf
    x[0, 1, 5, 5] = -np.inf
    compare(kernel_device, lambda t: adaptive_max_pool2d(t, (2, 3)), x)
