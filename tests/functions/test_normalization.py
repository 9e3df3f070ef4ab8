"""layer_norm, group_norm, instance_norm (running statistics too), local_response_norm and dropout1d/2d
against PyTorch (values and gradients) on cpu and emu, gradcheck in float64 for every option, their
autocast policies and errors.

Tolerance 1e-5 (relative and absolute) in float32: both compute a mean, a biased variance and 1/sqrt per
row, then a closed-form backward; the summation orders differ (NumPy's pairwise sums, PyTorch's Welford
or vectorised sums), a few float32 ulps of the row's values times the (small) row lengths used here.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gpucnn
import gpucnn.nn.functional as F
from gpucnn.errors import ArgumentError, ShapeError

from tests.torch_ref import same

DEVICES = ["cpu", "emu"]
TOL = dict(rtol=1e-5, atol=1e-5)


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, normalized, affine", [
    ((2, 3, 4, 5), (4, 5), "both"), ((2, 7), 7, "both"), ((3, 2, 6), (6,), "weight"), ((2, 3, 4), (2, 3, 4), "none"),
    ((1, 1, 1, 3), 3, "both"), ((5,), 5, "both"),
])
def test_layer_norm_matches_torch(device, shape, normalized, affine):
    ns = (normalized,) if isinstance(normalized, int) else normalized
    arrays = [_x(shape), _x(ns, 1) + 1.0, _x(ns, 2)]
    if affine == "weight":
        arrays = arrays[:2]
    elif affine == "none":
        arrays = arrays[:1]
    same(lambda t, *wb: F.layer_norm(t, normalized, *wb, eps=1e-5), arrays, device=device, **TOL,
         g=lambda t, *wb: TF.layer_norm(t, ns, *wb, eps=1e-5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, groups, affine", [
    ((2, 6, 4, 5), 3, True), ((2, 6, 4, 5), 1, True), ((2, 6, 4, 5), 6, False), ((3, 4, 7), 2, True),
    ((2, 4), 2, True), ((1, 8, 2, 2, 2), 4, True),
])
def test_group_norm_matches_torch(device, shape, groups, affine):
    c = shape[1]
    arrays = [_x(shape), _x((c,), 1) + 1.0, _x((c,), 2)] if affine else [_x(shape)]
    same(lambda t, *wb: F.group_norm(t, groups, *wb, eps=1e-4), arrays, device=device, **TOL,
         g=lambda t, *wb: TF.group_norm(t, groups, *wb, eps=1e-4))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 7), (1, 2, 3, 3)])
def test_instance_norm_matches_torch(device, shape):
    c = shape[1]
    same(lambda t, w, b: F.instance_norm(t, weight=w, bias=b), [_x(shape), _x((c,), 1), _x((c,), 2)], device=device,
         **TOL, g=lambda t, w, b: TF.instance_norm(t, weight=w, bias=b))
    same(lambda t: F.instance_norm(t), [_x(shape, 3)], device=device, **TOL, g=lambda t: TF.instance_norm(t))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_instance_norm_running_statistics_as_torch(device, momentum):
    c = 3
    rm, rv = _x((c,), 5), np.abs(_x((c,), 6)) + 0.5
    ours = [gpucnn.tensor(a.copy(), device=device) for a in (rm, rv)]
    theirs = [torch.tensor(a.copy()) for a in (rm, rv)]
    for step in range(2):
        x = _x((4, c, 3, 5), 10 + step)
        F.instance_norm(gpucnn.tensor(x, device=device), *ours, momentum=momentum)
        TF.instance_norm(torch.tensor(x), *theirs, momentum=momentum)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)
    # use_input_stats=False: normalise with the running statistics (eval mode with track_running_stats)
    same(lambda t, w, b: F.instance_norm(t, *ours, w, b, use_input_stats=False), [_x((2, c, 4, 4)), _x((c,), 1),
         _x((c,), 2)], device=device, **TOL,
         g=lambda t, w, b: TF.instance_norm(t, *theirs, w, b, use_input_stats=False))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, size, alpha, beta, k", [
    ((2, 7, 4, 5), 5, 1e-4, 0.75, 1.0), ((2, 6, 3, 3), 2, 0.5, 0.75, 2.0), ((2, 5, 6), 3, 1.0, 0.5, 1.0),
    ((1, 3, 2, 2), 7, 2.0, 1.5, 0.5), ((2, 4, 2, 2, 2), 4, 0.3, 0.75, 1.0), ((1, 3, 4), 1, 0.7, 0.75, 1.0),
])
def test_local_response_norm_matches_torch(device, shape, size, alpha, beta, k):
    same(lambda t: F.local_response_norm(t, size, alpha, beta, k), [_x(shape)], device=device, **TOL,
         g=lambda t: TF.local_response_norm(t, size, alpha, beta, k))


def _t64(shape, seed=0, shift=0.0):
    return gpucnn.tensor(_x(shape, seed, np.float64) + shift, requires_grad=True)


@pytest.mark.parametrize("case", ["layer", "layer no affine", "group", "group one", "instance", "instance affine",
                                  "lrn", "lrn even"])
def test_gradcheck_float64(case):
    x = _t64((2, 4, 3, 3))
    w, b = _t64((4,), 1, 1.0), _t64((4,), 2)
    lw, lb = _t64((3, 3), 3, 1.0), _t64((3, 3), 4)
    fn, inputs = {
        "layer": (lambda t, w, b: F.layer_norm(t, (3, 3), w, b), [x, lw, lb]),
        "layer no affine": (lambda t: F.layer_norm(t, 3), [x]),
        "group": (lambda t, w, b: F.group_norm(t, 2, w, b), [x, w, b]),
        "group one": (lambda t, w: F.group_norm(t, 1, w), [x, w]),
        "instance": (lambda t: F.instance_norm(t), [x]),
        "instance affine": (lambda t, w, b: F.instance_norm(t, weight=w, bias=b), [x, w, b]),
        "lrn": (lambda t: F.local_response_norm(t, 3, 0.5, 0.75, 1.0), [x]),
        "lrn even": (lambda t: F.local_response_norm(t, 4, 0.8, 1.2, 2.0), [x]),
    }[case]
    gpucnn.gradcheck(fn, inputs)


@pytest.mark.parametrize("fn, shape", [(F.dropout2d, (8, 16, 3, 2)), (F.dropout2d, (8, 16, 5)),
                                       (F.dropout1d, (8, 16, 5)), (F.dropout1d, (16, 5))])
@pytest.mark.parametrize("device", DEVICES)
def test_channel_dropout_zeroes_whole_channels(fn, shape, device):
    gpucnn.manual_seed(0)
    x = gpucnn.tensor(np.ones(shape, np.float32), device=device, requires_grad=True)
    y = fn(x, 0.25)
    y.backward(gpucnn.tensor(np.full(shape, 2.0, np.float32), device=device))
    planes = y.numpy().reshape(-1 if len(shape) == 2 else shape[0] * shape[1], int(np.prod(shape[-1 if len(shape) == 2 else 2:])))
    kept = planes[:, 0] != 0
    assert np.all(planes[kept] == np.float32(1 / 0.75)) and np.all(planes[~kept] == 0)
    assert 0.5 < kept.mean() < 0.95
    np.testing.assert_array_equal(x.grad.numpy(), 2 * y.numpy())
    assert fn(x, 0.25, training=False) is x and fn(x, 0.0) is x
    assert not fn(x, 1.0).numpy().any()


def test_channel_dropout_is_repeatable_and_in_place():
    gpucnn.manual_seed(3)
    a = F.dropout2d(gpucnn.ones(4, 6, 2, 2)).numpy()
    gpucnn.manual_seed(3)
    x = gpucnn.ones(4, 6, 2, 2)
    y = F.dropout2d(x, inplace=True)
    assert y is x
    np.testing.assert_array_equal(x.numpy(), a)


def test_autocast_policies():
    from gpucnn import amp

    x = gpucnn.tensor(_x((2, 4, 3, 3)).astype(np.float16))
    with amp.autocast("cpu", dtype=gpucnn.float16):
        assert F.layer_norm(x, 3).dtype == np.float32  # PyTorch's CUDA list: layer_norm, group_norm in float32
        assert F.group_norm(x, 2).dtype == np.float32
        assert F.local_response_norm(x, 3).dtype == np.float32  # (its pow is on the float32 list)
        assert F.instance_norm(x).dtype == np.float16  # (on no list: the input's dtype)


def _raises(exc, fn, *facts):
    with pytest.raises(exc) as info:
        fn()
    for fact in facts:
        assert fact in str(info.value), (fact, str(info.value))


def test_errors_name_the_op_the_argument_and_the_value():
    x = gpucnn.tensor(_x((2, 6, 3, 3)))
    _raises(ShapeError, lambda: F.layer_norm(x, (4, 3)), "layer_norm", "normalized_shape (4, 3)", "(2, 6, 3, 3)")
    _raises(ArgumentError, lambda: F.layer_norm(x, 0), "layer_norm", "normalized_shape", "got 0")
    _raises(ShapeError, lambda: F.layer_norm(x, 3, gpucnn.ones(4)), "layer_norm", "weight has shape (4,)",
            "expected (3,)")
    _raises(ArgumentError, lambda: F.layer_norm(x, 3, gpucnn.ones(3, dtype=gpucnn.float64)), "layer_norm",
            "weight has dtype float64", "float32")
    _raises(ShapeError, lambda: F.group_norm(x, 4), "group_norm", "6 channels", "num_groups 4")
    _raises(ArgumentError, lambda: F.group_norm(x, 0), "group_norm", "num_groups", "got 0")
    _raises(ShapeError, lambda: F.group_norm(x, 3, gpucnn.ones(3)), "group_norm", "weight has shape (3,)",
            "expected (6,)")
    _raises(ArgumentError, lambda: F.group_norm(x, 3, eps=-1), "group_norm", "eps", "-1")
    _raises(ShapeError, lambda: F.instance_norm(x[0, 0]), "instance_norm", "rank 3 or more")
    _raises(ShapeError, lambda: F.instance_norm(x, gpucnn.zeros(5), gpucnn.ones(5)), "instance_norm",
            "running_mean has shape (5,)", "expected (6,)")
    _raises(ArgumentError, lambda: F.instance_norm(x, gpucnn.zeros(6)), "instance_norm", "both running_mean")
    _raises(ArgumentError, lambda: F.instance_norm(x, use_input_stats=False), "instance_norm",
            "use_input_stats=False needs running_mean")
    _raises(ShapeError, lambda: F.instance_norm(x[:, :, :1, :1], gpucnn.zeros(6), gpucnn.ones(6)), "instance_norm",
            "more than 1 spatial element")
    _raises(ArgumentError, lambda: F.local_response_norm(x, 0), "local_response_norm", "size", "got 0")
    _raises(ShapeError, lambda: F.local_response_norm(x[0, 0], 2), "local_response_norm", "rank 3 or more")
    _raises(ArgumentError, lambda: F.dropout2d(x, 1.5), "dropout2d", "p", "[0, 1]", "1.5")
    _raises(ShapeError, lambda: F.dropout2d(x[0, 0], 0.5), "dropout2d", "rank 3 or 4", "got rank 2")
    _raises(ShapeError, lambda: F.dropout1d(x, 0.5), "dropout1d", "rank 2 or 3", "got rank 4")
    _raises(ArgumentError, lambda: F.layer_norm(gpucnn.tensor(np.ones((2, 3), np.int64)), 3), "layer_norm",
            "floating-point")
