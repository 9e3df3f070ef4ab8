"""batch_norm: forward against a float64 reference, running statistics (momentum, unbiased variance,
in-place update), numerical soundness with a large offset, gradient checks in float64 in train and
eval mode, and argument validation."""
import numpy as np
import pytest

import gpucnn
from gpucnn.errors import ArgumentError, DeviceError, ShapeError
from gpucnn.functions.batch_norm import batch_norm

SHAPES = [(6, 3), (4, 3, 5), (3, 2, 4, 5)]


def t(a, requires_grad=False):
    return gpucnn.tensor(np.asarray(a), requires_grad=requires_grad)


def axes_of(x):
    return (0,) + tuple(range(2, x.ndim))


def per_channel(v, ndim):
    return np.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


def ref_batch_norm(x, mean, var, w=None, b=None, eps=1e-5):
    x = x.astype(np.float64)
    y = (x - per_channel(mean, x.ndim)) / np.sqrt(per_channel(var, x.ndim) + eps)
    if w is not None:
        y = y * per_channel(w, x.ndim)
    if b is not None:
        y = y + per_channel(b, x.ndim)
    return y


# -- a worked example --------------------------------------------------------------------------------
def test_worked_example():
    # One channel, values 1 and 3: batch mean 2, biased variance 1, unbiased variance 2.
    x = t(np.array([[1.0], [3.0]], np.float32))
    rm, rv = np.array([0.0], np.float32), np.array([1.0], np.float32)
    y = batch_norm(x, rm, rv, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), [[-1 / np.sqrt(1 + 1e-5)], [1 / np.sqrt(1 + 1e-5)]], rtol=1e-6)
    np.testing.assert_allclose(rm, [0.9 * 0 + 0.1 * 2], rtol=1e-6)  # 0.2
    np.testing.assert_allclose(rv, [0.9 * 1 + 0.1 * 2], rtol=1e-6)  # 1.1: the UNBIASED variance
    # Eval mode now normalises with (0.2, 1.1).
    y = batch_norm(x, rm, rv, training=False)
    np.testing.assert_allclose(y.numpy(), (np.array([[1.0], [3.0]]) - 0.2) / np.sqrt(1.1 + 1e-5), rtol=1e-6)


# -- forward -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_train_forward_matches_reference(shape, affine):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    c = shape[1]
    w = rng.standard_normal(c).astype(np.float32) if affine else None
    b = rng.standard_normal(c).astype(np.float32) if affine else None
    y = batch_norm(t(x), None, None, None if w is None else t(w), None if b is None else t(b), training=True)
    assert y.dtype == np.float32 and y.shape == shape
    x64 = x.astype(np.float64)
    ref = ref_batch_norm(x, x64.mean(axis=axes_of(x)), x64.var(axis=axes_of(x)), w, b)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_eval_forward_uses_running_statistics(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    rm = rng.standard_normal(c).astype(np.float32)
    rv = rng.uniform(0.5, 2.0, c).astype(np.float32)
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm0, rv0 = rm.copy(), rv.copy()
    y = batch_norm(t(x), rm, rv, t(w), t(b), training=False, eps=1e-3)
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x, rm, rv, w, b, eps=1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rm, rm0)  # eval leaves the running statistics alone
    np.testing.assert_array_equal(rv, rv0)


def test_float64_running_stats_do_not_promote_a_float32_input():
    x = t(np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32))
    y = batch_norm(x, np.zeros(3), np.ones(3), training=False)
    assert y.dtype == np.float32
    rm, rv = np.zeros(3), np.ones(3)
    assert batch_norm(x, rm, rv, training=True).dtype == np.float32
    assert rm.dtype == np.float64 and rm.any()  # updated, keeping its dtype


# -- running statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_running_statistics_update_in_place(shape, momentum):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float64)
    c = shape[1]
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    rm, rv = rm0.copy(), rv0.copy()
    ids = id(rm), id(rv)
    batch_norm(t(x), rm, rv, training=True, momentum=momentum)
    assert (id(rm), id(rv)) == ids
    n = x.size // c
    mean = x.mean(axis=axes_of(x))
    unbiased = ((x - per_channel(mean, x.ndim)) ** 2).sum(axis=axes_of(x)) / (n - 1)  # by hand
    np.testing.assert_allclose(rm, (1 - momentum) * rm0 + momentum * mean, rtol=1e-12)
    np.testing.assert_allclose(rv, (1 - momentum) * rv0 + momentum * unbiased, rtol=1e-12)


def test_running_statistics_as_tensors_are_updated_in_place():
    x = np.random.default_rng(4).standard_normal((8, 2, 3, 3)).astype(np.float32)
    rm, rv = gpucnn.zeros(2), gpucnn.ones(2)
    data = rm.data
    batch_norm(t(x), rm, rv, training=True, momentum=0.25)
    assert rm.data is data
    np.testing.assert_allclose(rm.numpy(), 0.25 * x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    # ... and eval mode then uses them.
    y = batch_norm(t(x), rm, rv, training=False)
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x, rm.numpy(), rv.numpy()), rtol=1e-4, atol=1e-5)


def test_training_updates_running_statistics_under_no_grad_too():
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    with gpucnn.no_grad():
        batch_norm(t(np.arange(8, dtype=np.float32).reshape(4, 2)), rm, rv, training=True)
    np.testing.assert_allclose(rm, [0.3, 0.4], rtol=1e-6)  # 0.1 * (3, 4)


def test_large_offset_variance_is_right_in_float32():
    # 1e4 + N(0, 1) in float32: E[x^2] - E[x]^2 would cancel to garbage (float32 ulp at 1e8 is 8).
    rng = np.random.default_rng(5)
    x = (1e4 + rng.standard_normal((64, 3, 8, 8))).astype(np.float32)
    x64 = x.astype(np.float64)  # the exact float32 data, in float64
    naive = (x * x).mean(axis=(0, 2, 3)) - x.mean(axis=(0, 2, 3)) ** 2
    assert not np.allclose(naive, x64.var(axis=(0, 2, 3)), rtol=0.1)  # the test can tell the difference
    rm, rv = np.zeros(3, np.float32), np.zeros(3, np.float32)
    y = batch_norm(t(x), rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rv, x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-3)
    np.testing.assert_allclose(rm, x64.mean(axis=(0, 2, 3)), rtol=1e-6)
    out = y.numpy().astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-3)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)


# -- gradients ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_train(shape):
    rng = np.random.default_rng(6)
    c = shape[1]
    x = t(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = t(rng.standard_normal(c), requires_grad=True)
    b = t(rng.standard_normal(c), requires_grad=True)
    rm, rv = np.zeros(c), np.ones(c)  # updated on every call; the train output does not depend on them
    assert gpucnn.gradcheck(lambda x_, w_, b_: batch_norm(x_, rm, rv, w_, b_, training=True), [x, w, b])


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_train_without_affine(shape):
    x = t(np.random.default_rng(7).standard_normal(shape), requires_grad=True)
    assert gpucnn.gradcheck(lambda x_: batch_norm(x_, None, None, training=True, eps=1e-3), [x])


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_eval(shape):
    rng = np.random.default_rng(8)
    c = shape[1]
    x = t(rng.standard_normal(shape), requires_grad=True)
    w = t(rng.standard_normal(c), requires_grad=True)
    b = t(rng.standard_normal(c), requires_grad=True)
    rm, rv = t(rng.standard_normal(c)), t(rng.uniform(0.5, 2.0, c))
    assert gpucnn.gradcheck(lambda x_, w_, b_: batch_norm(x_, rm, rv, w_, b_, training=False), [x, w, b])
    assert gpucnn.gradcheck(lambda x_: batch_norm(x_, rm, rv, training=False), [x])


@pytest.mark.parametrize("training", [True, False])
def test_partial_gradients_match_full(training):
    # Only some inputs requiring grad (the skipped branches of backward) gives the same values.
    rng = np.random.default_rng(9)
    x0, w0, b0 = rng.standard_normal((5, 3, 4)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    gy = rng.standard_normal((5, 3, 4))

    def grads(flags):
        x, w, b = (t(a, requires_grad=f) for a, f in zip((x0, w0, b0), flags))
        batch_norm(x, rm.copy(), rv.copy(), w, b, training=training).backward(gy)
        return [None if a.grad is None else a.grad.numpy() for a in (x, w, b)]

    full = grads((True, True, True))
    for flags in [(True, False, False), (False, True, False), (False, False, True), (False, True, True)]:
        for f, got, want in zip(flags, grads(flags), full):
            if f:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            else:
                assert got is None


def test_train_input_gradient_sums_to_zero_per_channel():
    # Mean subtraction makes the input gradient orthogonal to constants, for any upstream gradient.
    rng = np.random.default_rng(10)
    x = t(rng.standard_normal((4, 3, 5, 5)), requires_grad=True)
    batch_norm(x, None, None, training=True).backward(rng.standard_normal((4, 3, 5, 5)))
    np.testing.assert_allclose(x.grad.numpy().sum(axis=(0, 2, 3)), 0, atol=1e-12)


# -- validation ---------------------------------------------------------------------------------------
def _raises(exc, fn, *facts):
    with pytest.raises(exc) as info:
        fn()
    for fact in facts:
        assert fact in str(info.value), f"{fact!r} not in {str(info.value)!r}"


X = t(np.zeros((8, 16, 14, 14), np.float32))
RM, RV = np.zeros(16, np.float32), np.ones(16, np.float32)


def test_validation_channel_counts():
    _raises(ShapeError, lambda: batch_norm(X, np.zeros(32, np.float32), np.ones(32, np.float32)),
            "batch_norm: input has 16 channels, expected 32 (input shape (8, 16, 14, 14)", "running_mean")
    _raises(ShapeError, lambda: batch_norm(X, RM, np.ones(32, np.float32)),
            "input has 16 channels, expected 32", "running_var")
    _raises(ShapeError, lambda: batch_norm(X, RM, RV, weight=gpucnn.ones(32)),
            "input has 16 channels, expected 32", "weight shape (32,)")
    _raises(ShapeError, lambda: batch_norm(X, RM, RV, bias=gpucnn.zeros(8)),
            "input has 16 channels, expected 8", "bias shape (8,)")
    _raises(ShapeError, lambda: batch_norm(X, RM.reshape(1, 16), RV),
            "batch_norm", "running_mean", "1-D", "(1, 16)")


def test_validation_input():
    _raises(ShapeError, lambda: batch_norm(t(np.zeros(5, np.float32)), None, None, training=True),
            "batch_norm", "rank", "(5,)")
    _raises(ShapeError, lambda: batch_norm(t(np.zeros((0, 16, 4, 4), np.float32)), RM, RV),
            "batch_norm", "empty", "(0, 16, 4, 4)")
    _raises(ArgumentError, lambda: batch_norm(t(np.zeros((4, 16), np.int64)), RM, RV),
            "batch_norm", "floating-point", "int64")
    _raises(ArgumentError, lambda: batch_norm(np.zeros((4, 16), np.float32), RM, RV), "batch_norm", "Tensor")


def test_validation_one_value_per_channel_when_training():
    for shape in [(1, 16), (1, 16, 1), (1, 16, 1, 1)]:
        _raises(ArgumentError, lambda: batch_norm(t(np.zeros(shape, np.float32)), RM.copy(), RV.copy(), training=True),
                "batch_norm", "expected more than 1 value per channel when training", str(shape))
    # Eval mode is fine with a single value per channel.
    assert batch_norm(t(np.zeros((1, 16), np.float32)), RM, RV).shape == (1, 16)


def test_validation_momentum_and_eps():
    for m in (-0.1, 1.5, None, float("nan"), True):
        _raises(ArgumentError, lambda: batch_norm(X, RM, RV, momentum=m), "batch_norm", "momentum", "[0, 1]", repr(m))
    for e in (0, -1e-5, float("nan"), "1e-5"):
        _raises(ArgumentError, lambda: batch_norm(X, RM, RV, eps=e), "batch_norm", "eps", "> 0", repr(e))


def test_validation_running_statistics_and_affine():
    _raises(ArgumentError, lambda: batch_norm(X, None, None, training=False),
            "batch_norm", "running_mean and running_var are required", "training=False")
    _raises(ArgumentError, lambda: batch_norm(X, RM, None, training=True), "batch_norm", "running_var")
    _raises(ArgumentError, lambda: batch_norm(X, t(RM, requires_grad=True), RV), "batch_norm", "running_mean",
            "must not require grad")
    _raises(ArgumentError, lambda: batch_norm(X, [0.0] * 16, RV), "batch_norm", "running_mean", "list")
    _raises(ArgumentError, lambda: batch_norm(X, np.zeros(16, np.int64), RV), "batch_norm", "running_mean", "int64")
    _raises(ArgumentError, lambda: batch_norm(X, RM, RV, weight=gpucnn.ones(16, dtype=np.float64)),
            "batch_norm", "weight has dtype float64, expected float32")
    frozen = RM.copy()
    frozen.flags.writeable = False
    _raises(ArgumentError, lambda: batch_norm(X, frozen, RV.copy(), training=True), "batch_norm", "running_mean",
            "read-only")
    _raises(ArgumentError, lambda: batch_norm(X, RM, RV, training="yes"), "batch_norm", "training")


def test_running_statistics_on_another_device_is_a_device_error():
    emu_rm = gpucnn.tensor(RM, device="emu")
    _raises(DeviceError, lambda: batch_norm(X, emu_rm, RV), "batch_norm", "different devices")
