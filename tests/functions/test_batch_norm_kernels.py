"""The batch-norm CUDA kernels (kernels_cuda/batch_norm.cu) against the NumPy path (device cpu) on the
same data: forward in training and eval mode, the in-place running-statistics update, and the backward
(dx, dgamma, dbeta), float32 and float64, on the `kernel_device` devices (emu in three thread orders;
cuda when present).

Tolerances (eps = the dtype's machine epsilon, n = N * L values per channel):
- A channel sum: the kernel splits the channel into S ranges of `per` values (bn_module._splits); each
  block adds ceil(per/256) values per thread, then 8 tree levels, and the finishing kernel adds the S
  block sums in sequence, all in double; the NumPy path adds runs of up to 128 values with einsum (at
  most min(n, 128) additions in sequence), then the runs' sums pairwise (<= 16 + log2(n) levels). So the
  two results differ by at most red(n, C) = ceil(per/256) + 8 + (S - 1) + 1 + min(n, 128) + 16 + log2(n)
  ulp of sum|terms| (the +1: the final cast to T). This bounds dgamma, dbeta and, in float64, the mean
  and variance.
- float32 mean and variance: both sides accumulate in double and round once to float32, so they agree
  to within one float32 rounding (we allow 2 ulp of max|x|, or of the variance).
- Elementwise results (y, dx): the kernels apply invstd and weight one after the other where the NumPy
  path multiplies by their product (one rounding of that product), and on a GPU NVRTC may fuse a
  multiply and an add into an FMA (the emulator never does): a few ulp of the operands' magnitudes,
  plus what the statistics' tolerances above propagate (a mean off by d moves y by d * invstd * |w|).
"""
import math

import numpy as np
import pytest

import gpucnn
from gpucnn import emu
from gpucnn.errors import ArgumentError, ShapeError
from gpucnn.functions import batch_norm as bn_module
from gpucnn.functions.batch_norm import batch_norm

DTYPES = [np.float32, np.float64]
# (N, C), (N, C, L), (N, C, H, W): batch 1, one channel, N * L below, at and far above the 256 threads of
# a reduction block (several rounds per thread), and L above it (the channel cursor's carry).
SHAPES = [(2, 1), (7, 3), (300, 2), (1, 3, 5), (4, 3, 5), (2, 2, 300), (1, 1, 17, 19), (3, 2, 5, 7),
          (4, 3, 23, 29)]


def red(n, channels):
    """Worst-case ulps (of sum|terms|) between the kernel's and NumPy's sum of n values (see above)."""
    splits, per = bn_module._splits(channels, n)
    return math.ceil(per / 256) + 8 + splits + min(n, 128) + 16 + math.log2(n)


def make(shape, dtype, seed=0, affine=(True, True), offset=0.0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 1.5 + 0.5 + offset).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal(c) + 1.0).astype(dtype) if affine[0] else None
    b = rng.standard_normal(c).astype(dtype) if affine[1] else None
    rm = rng.standard_normal(c).astype(dtype)
    rv = (rng.random(c) + 0.5).astype(dtype)
    return x, gy, w, b, rm, rv


def run(device, x, gy, w, b, rm, rv, training, momentum=0.1, eps=1e-5, grads=(True, True, True)):
    """Forward, backward and the updated running statistics on `device`, from copies of the inputs."""
    def tensor(a, requires_grad=False):
        return None if a is None else gpucnn.tensor(a.copy(), device=device, requires_grad=requires_grad)

    xt, wt, bt = tensor(x, grads[0]), tensor(w, grads[1]), tensor(b, grads[2])
    rmt, rvt = tensor(rm), tensor(rv)
    y = batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=momentum, eps=eps)
    assert y.dtype == x.dtype
    y.backward(gpucnn.tensor(gy, device=device))

    def grad(t):
        return None if t is None or t.grad is None else t.grad.numpy()

    return {"y": y.numpy(), "gx": grad(xt), "gw": grad(wt), "gb": grad(bt),
            "rm": None if rmt is None else rmt.numpy(), "rv": None if rvt is None else rvt.numpy()}


def tolerances(x, gy, w, b, rm, rv, training, eps_bn=1e-5):
    """Absolute tolerances per result, following the module docstring."""
    eps = np.finfo(x.dtype).eps
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    x64, gy64 = x.astype(np.float64), gy.astype(np.float64)
    if training:
        mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    stat_ulps = 2 if x.dtype == np.float32 else red(n, x.shape[1])
    mean_err = stat_ulps * eps * np.abs(x64).max() if training else 0.0
    var_rel = stat_ulps * eps if training else 0.0
    invstd = 1 / np.sqrt(var + eps_bn)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xhat = (x64 - mean.reshape(shape)) * invstd.reshape(shape)
    xhat_err = invstd.max() * mean_err + var_rel * np.abs(xhat).max() + 4 * eps * np.abs(xhat).max()
    wmax = 1.0 if w is None else np.abs(w).max()
    bmax = 0.0 if b is None else np.abs(b).max()
    scale = invstd.max() * wmax
    y_max = np.abs(xhat).max() * wmax + bmax
    tol = {"y": wmax * xhat_err + 6 * eps * y_max}
    sum_gy = np.abs(gy64).sum(axis=axes).max()
    sum_gy_xhat = np.abs(gy64 * xhat).sum(axis=axes).max()
    tol["gb"] = red(n, x.shape[1]) * eps * sum_gy
    tol["gw"] = red(n, x.shape[1]) * eps * sum_gy_xhat + xhat_err * sum_gy
    if training:
        # gx = scale * ((gy - S1/n) - xhat * S2/n): S1/n and S2/n carry the sums' tolerances over n.
        m2 = sum_gy_xhat / n
        tol["gx"] = scale * (tol["gb"] / n + np.abs(xhat).max() * tol["gw"] / n + xhat_err * m2
                             + 6 * eps * (np.abs(gy64).max() + np.abs(xhat).max() * m2)) \
            + wmax * np.abs(gy64).max() * var_rel * invstd.max()
    else:
        tol["gx"] = 2 * eps * scale * np.abs(gy64).max()
    if rm is not None:  # running = (1 - m) * running + m * statistic (m <= 1), each product rounded
        tol["rm"] = mean_err + 4 * eps * max(np.abs(rm).max(), np.abs(mean).max())
        tol["rv"] = (var_rel + 4 * eps) * var.max() * n / max(n - 1, 1) + 4 * eps * np.abs(rv).max()
    return tol


def compare(device, x, gy, w, b, rm, rv, training, grads=(True, True, True), **kw):
    got = run(device, x, gy, w, b, rm, rv, training, grads=grads, **kw)
    ref = run("cpu", x, gy, w, b, rm, rv, training, grads=grads, **kw)
    tol = tolerances(x, gy, w, b, rm, rv, training)
    for key in ("y", "gx", "gw", "gb", "rm", "rv"):
        if ref[key] is None:
            assert got[key] is None, key
            continue
        assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape, key
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=tol[key], err_msg=key)
    return got, ref


# -- forward and backward, train and eval ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [(True, True), (False, False), (True, False)], ids=["affine", "plain", "w-only"])
def test_batch_norm(kernel_device, dtype, shape, training, affine):
    x, gy, w, b, rm, rv = make(shape, dtype, seed=sum(shape), affine=affine)
    got, ref = compare(kernel_device, x, gy, w, b, rm, rv, training)
    if not training:  # eval leaves the running statistics alone
        np.testing.assert_array_equal(got["rm"], rm)
        np.testing.assert_array_equal(got["rv"], rv)


@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_with_one_value_per_channel(kernel_device, dtype):
    x, gy, w, b, rm, rv = make((1, 4), dtype, seed=3)
    compare(kernel_device, x, gy, w, b, rm, rv, training=False)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("grads", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True)])
def test_only_the_needed_gradients(kernel_device, training, grads):
    x, gy, w, b, rm, rv = make((3, 2, 4, 5), np.float32, seed=4)
    got, _ = compare(kernel_device, x, gy, w, b, rm, rv, training, grads=grads)
    assert [got[k] is not None for k in ("gx", "gw", "gb")] == list(grads)


def test_no_running_statistics_in_training(kernel_device):
    x, gy, w, b, _, _ = make((5, 3, 7), np.float64, seed=5)
    compare(kernel_device, x, gy, w, b, None, None, True)


@pytest.mark.parametrize("momentum", [0.0, 0.1, 1.0])
def test_running_statistics_update_in_place(kernel_device, momentum):
    x, gy, w, b, rm, rv = make((6, 3, 4, 5), np.float32, seed=6)
    got, ref = compare(kernel_device, x, gy, w, b, rm, rv, True, momentum=momentum)
    if momentum == 0.0:
        np.testing.assert_array_equal(got["rm"], rm)
        np.testing.assert_array_equal(got["rv"], rv)


@pytest.mark.parametrize("x_dtype,stat_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_running_statistics_of_another_dtype(kernel_device, x_dtype, stat_dtype):
    # Updated by the NumPy path's formula (not the kernel), in their own dtype, as on cpu.
    x, gy, w, b, rm, rv = make((4, 3, 6), x_dtype, seed=7)
    rm, rv = rm.astype(stat_dtype), rv.astype(stat_dtype)
    for training in (True, False):
        got, ref = compare(kernel_device, x, gy, w, b, rm, rv, training)
        assert got["rm"].dtype == stat_dtype and got["y"].dtype == x_dtype


def test_running_statistics_as_strided_views_are_updated_in_place():
    # Non-contiguous buffers (views of every other element) cannot go to the kernel; the base arrays
    # are still updated in place, as on cpu.
    x, gy, w, b, rm, rv = make((4, 3, 6), np.float32, seed=8)
    bases = {}
    for device in ("cpu", "emu"):
        base_m, base_v = np.zeros(6, np.float32), np.ones(6, np.float32)
        batch_norm(gpucnn.tensor(x, device=device), base_m[::2], base_v[::2], training=True)
        bases[device] = (base_m, base_v)
    for a, b_ in zip(bases["cpu"], bases["emu"]):
        np.testing.assert_allclose(a, b_, rtol=4e-7, atol=1e-7)
    assert np.all(bases["emu"][0][1::2] == 0) and np.all(bases["emu"][0][::2] != 0)


def test_running_statistics_arrays_are_updated_in_place_on_emu():
    x, _, _, _, rm, rv = make((4, 3, 6), np.float32, seed=9)
    rm0, rv0 = rm.copy(), rv.copy()
    batch_norm(gpucnn.tensor(x, device="emu"), rm, rv, training=True)
    assert np.all(rm != rm0) and np.all(rv != rv0)


def test_many_chunks_per_channel(kernel_device, monkeypatch):
    # Cap grid-y at 2 blocks so the elementwise kernels' threads stride over several chunks each.
    monkeypatch.setattr(bn_module, "_MAX_GRID_Y", 2)
    for training in (True, False):
        x, gy, w, b, rm, rv = make((5, 2, 13, 17), np.float32, seed=10)
        compare(kernel_device, x, gy, w, b, rm, rv, training)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_split_over_blocks(kernel_device, monkeypatch, dtype):
    # Channels of 5*13*17 = 1105 elements in splits of at least 23: 47 splits of 24, the last of 1, most
    # starting in the middle of a row of 17; and batch 1 with the channel in one run.
    monkeypatch.setattr(bn_module, "_STAT_MIN_PER_BLOCK", 23)
    splits, per = bn_module._splits(2, 5 * 13 * 17)
    assert (splits, per) == (47, 24) and per % 17 and (splits - 1) * per < 1105 <= splits * per
    for shape in ((5, 2, 13, 17), (1, 3, 40, 41)):
        for training in (True, False):
            x, gy, w, b, rm, rv = make(shape, dtype, seed=13)
            compare(kernel_device, x, gy, w, b, rm, rv, training)


@pytest.mark.parametrize("channels,count", [(1, 1), (64, 1 << 20), (3, 5000), (1000, 1 << 16), (1, 2**31 - 512)])
def test_split_partition(channels, count):
    splits, per = bn_module._splits(channels, count)
    assert 1 <= splits <= bn_module._MAX_GRID_Y and (splits - 1) * per < count <= splits * per
    assert splits == 1 or per >= bn_module._STAT_MIN_PER_BLOCK
    assert channels * splits <= max(channels, bn_module._STAT_TARGET_BLOCKS + channels)
    assert bn_module._splits(channels, count) == (splits, per)  # shapes alone decide (determinism)


# -- numerical soundness ------------------------------------------------------------------------------
def test_large_offset_variance_matches(kernel_device):
    # 1e4 + N(0, 1) in float32: E[x^2] - E[x]^2 would cancel catastrophically (x^2 ~ 1e8, float32 ulp
    # 8); the two-pass, double-accumulated statistics match the NumPy path's to float32 rounding.
    rng = np.random.default_rng(11)
    shape = (16, 3, 16, 16)
    x = (1e4 + rng.standard_normal(shape)).astype(np.float32)
    stats = {}
    for device in ("cpu", kernel_device):
        rm, rv = np.zeros(3, np.float32), np.zeros(3, np.float32)
        rmt, rvt = gpucnn.tensor(rm, device=device), gpucnn.tensor(rv, device=device)
        y = batch_norm(gpucnn.tensor(x, device=device), rmt, rvt, training=True, momentum=1.0)
        stats[device] = (rmt.numpy(), rvt.numpy(), y.numpy())  # momentum 1: the batch statistics
    (m_ref, v_ref, y_ref), (m, v, y) = stats["cpu"], stats[kernel_device]
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(m, m_ref, rtol=2 * eps, atol=0)  # within one float32 rounding of 1e4
    np.testing.assert_allclose(v, v_ref, rtol=4 * eps, atol=0)
    truth = x.astype(np.float64).var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(v, truth, rtol=1e-3)  # ~1: float32 inputs are quantised at 1e-3
    # A mean one ulp (~1e-3) apart would move every y by ~1e-3.
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=2 * eps * 1e4 + 1e-5)


def test_reductions_are_deterministic_across_thread_orders(monkeypatch):
    monkeypatch.setattr(bn_module, "_STAT_MIN_PER_BLOCK", 100)  # 8 splits per channel, finished in order
    x, gy, w, b, rm, rv = make((6, 3, 11, 13), np.float32, seed=12, offset=50.0)
    results = []
    for order in ("forward", "reverse", "shuffled"):
        with emu.thread_order(order, seed=5):
            results.append(run("emu", x, gy, w, b, rm, rv, True))
    for r in results[1:]:
        for key, value in r.items():
            np.testing.assert_array_equal(value, results[0][key], err_msg=key)


# -- launcher checks ---------------------------------------------------------------------------------
def test_other_dtypes_are_refused_on_kernel_devices():
    # Refused at the boundary, as on cpu, before any kernel is specialised.
    x = gpucnn.tensor(np.zeros((4, 2), np.int16), device="emu")
    with pytest.raises(ArgumentError, match=r"batch_norm: input must have a floating-point dtype \(float16, "
                                            r"bfloat16, float32 or float64\), got int16"):
        batch_norm(x, None, None, training=True)


def test_sizes_past_int32_are_refused():
    class Big:  # only the shape matters to the check
        shape, size = (2**28, 4, 2), 2**31

    with pytest.raises(ShapeError, match="32-bit indexing"):
        bn_module._check_int32(Big)
    Big.shape, Big.size = (2**20, 4, 2), 2**23
    bn_module._check_int32(Big)
