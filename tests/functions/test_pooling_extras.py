"""Pooling extras against PyTorch (values, int64 indices, gradients) and float64 gradchecks: avg pooling's
divisor_override, max pooling's return_indices, max unpooling and adaptive max pooling; their errors.

Tolerances: max pooling, unpooling and adaptive max pooling only compare and copy (values and indices
exact; gradients are sums of the same gy values, exact for these small overlaps up to the order of
additions: 1e-6); avg pooling with divisor_override divides one sum by one integer (1e-6 relative).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
import gpucnn.nn.functional as F
from gpucnn.errors import ArgumentError, ShapeError

from tests.torch_ref import same


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2),
                                    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), ceil_mode=True),
                                    dict(kernel_size=2, stride=1, dilation=2)])
@pytest.mark.parametrize("divisor", [None, 5, -2])
def test_avg_pool2d_divisor_override_matches_torch(device, kwargs, divisor):
    kwargs = {k: v for k, v in kwargs.items() if k != "dilation"}
    same(lambda t: F.avg_pool2d(t, **kwargs, divisor_override=divisor), [_x((2, 3, 7, 6))], device=device,
         g=lambda t: TF.avg_pool2d(t, **kwargs, divisor_override=divisor))


def test_avg_pool1d_divisor_override_is_the_2d_op_with_height_1():
    x = _x((2, 3, 9))
    y = F.avg_pool1d(gpucnn.tensor(x), 3, 2, 1, divisor_override=4).numpy()
    ref = TF.avg_pool2d(torch.tensor(x)[:, :, None], (1, 3), (1, 2), (0, 1), divisor_override=4)[:, :, 0]
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-6)


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2),
                                    dict(kernel_size=3, stride=1, dilation=2, padding=1),
                                    dict(kernel_size=(2, 3), stride=(3, 1), ceil_mode=True)])
def test_max_pool2d_return_indices_and_unpool_match_torch(device, kwargs):
    x = _x((2, 3, 8, 7))

    def run(lib):
        def f(t):
            y, i = (F.max_pool2d if lib == "ours" else TF.max_pool2d)(t, **kwargs, return_indices=True)
            k, s = kwargs["kernel_size"], kwargs.get("stride")
            unpool = F.max_unpool2d if lib == "ours" else TF.max_unpool2d
            return y, i, unpool(y * 2.0, i, k, s, kwargs.get("padding", 0), output_size=x.shape[2:]) \
                if "dilation" not in kwargs else y * 2.0
        return f

    y, i, _ = same(run("ours"), [x], device=device, g=run("torch"))
    assert i.dtype == np.int64 and not i.requires_grad


def test_max_pool2d_tiled_windows_return_the_scan_indices():
    # 2x2 tiling pooling has a separable NumPy forward that records nothing; with indices it scans.
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)  # ties everywhere: the first of each window
    x[0, 0, 1, 1] = 1.0
    y, i = F.max_pool2d(gpucnn.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), [[[[5, 2], [8, 10]]]])
    np.testing.assert_array_equal(i.numpy(), TF.max_pool2d(torch.tensor(x), 2, return_indices=True)[1].numpy())


def test_max_pool_indices_of_an_all_minus_inf_window_are_its_first_real_pixel():
    x = np.full((1, 1, 3, 3), -np.inf, dtype=np.float32)
    for device in ("cpu", "emu"):
        _, i = F.max_pool2d(gpucnn.tensor(x, device=device), 3, 2, 1, return_indices=True)
        np.testing.assert_array_equal(i.numpy(), TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)[1])


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_max_pool1d_return_indices_and_unpool1d_match_torch(device):
    def f(lib):
        pool, unpool = (F.max_pool1d, F.max_unpool1d) if lib == "ours" else (TF.max_pool1d, TF.max_unpool1d)

        def run(t):
            y, i = pool(t, 3, 2, 1, return_indices=True)
            return y, i, unpool(y, i, 3, 2, 1, output_size=(10,)), unpool(y[:, :, :4], i[:, :, :4], 2)
        return run

    same(f("ours"), [_x((2, 3, 10))], device=device, g=f("torch"))


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 5), (5, 5)), ((2, 1, 4, 9), 1),
                                       ((1, 2, 3, 4), (5, 7)), ((2, 2, 8, 6), (None, 4))])
def test_adaptive_max_pool2d_matches_torch(device, shape, out):
    y, i = same(lambda t: F.adaptive_max_pool2d(t, out, return_indices=True), [_x(shape, 1)], device=device,
                g=lambda t: TF.adaptive_max_pool2d(t, out, return_indices=True))
    assert i.dtype == np.int64
    same(lambda t: F.adaptive_max_pool2d(t, out), [_x(shape, 2)], device=device,
         g=lambda t: TF.adaptive_max_pool2d(t, out))


def test_adaptive_max_pool2d_ties_and_nan():
    # Ties: the first maximum (row-major) takes the gradient. A NaN is the maximum and takes it.
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, np.nan]]]], dtype=np.float32)
    for device in ("cpu", "emu"):
        t = gpucnn.tensor(x, device=device, requires_grad=True)
        y, i = F.adaptive_max_pool2d(t, (1, 2), return_indices=True)
        np.testing.assert_array_equal(i.numpy(), [[[[1, 5]]]])
        assert y.numpy()[0, 0, 0, 0] == 3.0 and np.isnan(y.numpy()[0, 0, 0, 1])
        y.backward(gpucnn.tensor(np.ones((1, 1, 1, 2), np.float32), device=device))
        np.testing.assert_array_equal(t.grad.numpy(), [[[[0, 1, 0], [0, 0, 1]]]])


@pytest.mark.parametrize("fn", [
    lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=3),
    lambda t: F.avg_pool1d(t.reshape(2, 3, 30), 4, 3, 2, ceil_mode=True, divisor_override=7),
    lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True)[0],
    lambda t: F.adaptive_max_pool2d(t, (4, 3)),
    lambda t: F.adaptive_max_pool2d(t, (7, 8)),  # (bins overlap: an input in several)
    lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2, output_size=(6, 5)),
    # (windows that do not overlap: overlapping ones can share a maximum, which unpooling writes once
    # and whose gradient it reads twice, in PyTorch too)
    lambda t: F.max_unpool2d(*F.max_pool2d(t, 3, 3, 1, return_indices=True), 3, 3, 1, output_size=(6, 5)),
])
def test_gradcheck_float64(fn):
    gpucnn.gradcheck(fn, [gpucnn.tensor(_x((2, 3, 6, 5), 4, np.float64), requires_grad=True)])


def _raises(exc, fn, *facts):
    with pytest.raises(exc) as info:
        fn()
    for fact in facts:
        assert fact in str(info.value), (fact, str(info.value))


def test_errors_name_the_op_the_argument_and_the_value():
    x = gpucnn.tensor(_x((1, 2, 6, 6)))
    _raises(ArgumentError, lambda: F.avg_pool2d(x, 2, divisor_override=0), "avg_pool2d", "divisor_override",
            "nonzero", "got 0")
    _raises(ArgumentError, lambda: F.avg_pool1d(x[0], 2, divisor_override=1.5), "avg_pool1d", "divisor_override",
            "1.5")
    _raises(ArgumentError, lambda: F.max_pool2d(x, 2, return_indices="yes"), "max_pool2d", "return_indices",
            "'yes'")
    _raises(ArgumentError, lambda: F.adaptive_max_pool2d(x, 0), "adaptive_max_pool2d", "output_size", ">= 1")
    _raises(ShapeError, lambda: F.adaptive_max_pool2d(x[0], 2), "adaptive_max_pool2d", "rank 4", "rank 3")
    y, i = F.max_pool2d(x, 2, return_indices=True)
    _raises(ShapeError, lambda: F.max_unpool2d(y, i, 2, output_size=(9, 6)), "max_unpool2d", "output_size 9x6",
            "between 5x5 and 7x7")
    _raises(ArgumentError, lambda: F.max_unpool2d(y, i.float(), 2), "max_unpool2d", "indices", "integer dtype",
            "float32")
    _raises(ShapeError, lambda: F.max_unpool2d(y, i[:, :1], 2), "max_unpool2d", "indices", "(1, 1, 3, 3)",
            "(1, 2, 3, 3)")
    _raises(ArgumentError, lambda: F.max_unpool2d(y, i + 100, 2), "max_unpool2d", "index 1", "out of range",
            "36")
    _raises(ShapeError, lambda: F.max_unpool2d(y, i, 2, output_size=(2, 2)), "max_unpool2d",
            "between 5x5 and 7x7")
