"""batch_norm: forward against a float64 reference, running statistics (momentum, unbiased variance,
in-place update), numerical soundness with a large offset, gradient checks in float64 in train and
eval mode, argument validation, and the NumPy path's memory layouts (NCHW, conv outputs laid out
channel-major, channels-last, (N, C), (N, C, L), strided inputs) and its grouping over threads."""
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


# -- memory layouts (the NumPy path works on the input's memory as an (A, C, B) array) ----------------
# (shape, memory order of the axes, outermost first): NCHW; a conv output ((C, H, W, N) in memory: one
# block per channel); channels-last; (C, N, H, W); (N, C, L) both ways; (N, C) and its transpose.
LAYOUTS = [((4, 3, 5, 6), (0, 1, 2, 3)), ((4, 3, 5, 6), (1, 2, 3, 0)), ((4, 3, 5, 6), (0, 2, 3, 1)),
           ((4, 3, 5, 6), (1, 0, 2, 3)), ((5, 3, 7), (0, 1, 2)), ((5, 3, 7), (1, 2, 0)), ((6, 4), (0, 1)),
           ((6, 4), (1, 0))]


def laid_out(a, order):
    """A copy of ``a`` whose memory is laid out with the axes in ``order`` (outermost first)."""
    return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))


def memory_order(a):
    return tuple(sorted(range(a.ndim), key=lambda i: -a.strides[i]))


def ref_backward(x, gy, mean, var, w, training, eps=1e-5):
    """Float64 (gx, gw, gb) of batch norm: gx through the batch statistics when training."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    axes, n = axes_of(x), x.size // x.shape[1]
    inv = 1 / np.sqrt(per_channel(var, x.ndim) + eps)
    xhat = (x - per_channel(mean, x.ndim)) * inv
    scale = inv * (1.0 if w is None else per_channel(w, x.ndim))
    gb, gw = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
    gx = scale * (gy - per_channel(gb, x.ndim) / n - xhat * per_channel(gw, x.ndim) / n) if training else gy * scale
    return gx, gw, gb


@pytest.mark.parametrize("shape,order", LAYOUTS, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", ["wb", "w", "none"])
def test_layouts_match_the_reference(shape, order, training, affine):
    rng = np.random.default_rng(20)
    c = shape[1]
    x = laid_out((rng.standard_normal(shape) * 3 + 2).astype(np.float32), order)
    gy = laid_out(rng.standard_normal(shape).astype(np.float32), order)
    w = rng.standard_normal(c).astype(np.float32) if affine != "none" else None
    b = rng.standard_normal(c).astype(np.float32) if affine == "wb" else None
    rm, rv = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    rm0, rv0 = rm.copy(), rv.copy()
    xt = gpucnn.Tensor(x, requires_grad=True)
    wt = None if w is None else gpucnn.Tensor(w, requires_grad=True)
    bt = None if b is None else gpucnn.Tensor(b, requires_grad=True)
    y = batch_norm(xt, rm, rv, wt, bt, training=training, momentum=0.25)
    y.backward(gpucnn.Tensor(gy))
    x64 = x.astype(np.float64)
    mean, var = (x64.mean(axis=axes_of(x)), x64.var(axis=axes_of(x))) if training else (rm0, rv0)
    assert y.dtype == np.float32 and memory_order(y.data) == memory_order(x)  # y in x's layout
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x, mean, var, w, b), rtol=1e-5, atol=1e-5)
    gx, gw, gb = ref_backward(x, gy, mean, var, w, training)
    assert xt.grad.dtype == np.float32 and memory_order(xt.grad.data) == memory_order(x)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-4, atol=1e-5)
    if w is not None:
        np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-5, atol=1e-5)
    if b is not None:
        np.testing.assert_allclose(bt.grad.numpy(), gb, rtol=1e-5, atol=1e-5)
    if training:
        n = x.size // c
        np.testing.assert_allclose(rm, 0.75 * rm0 + 0.25 * mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rv, 0.75 * rv0 + 0.25 * var * n / (n - 1), rtol=1e-5)


@pytest.mark.parametrize("shape,order", LAYOUTS, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_layouts(shape, order, training):
    rng = np.random.default_rng(21)
    c = shape[1]
    x = gpucnn.Tensor(laid_out(rng.standard_normal(shape) * 2 + 1, order), requires_grad=True)
    w = t(rng.standard_normal(c), requires_grad=True)
    b = t(rng.standard_normal(c), requires_grad=True)
    rm, rv = t(rng.standard_normal(c)), t(rng.uniform(0.5, 2.0, c))
    assert gpucnn.gradcheck(lambda x_, w_, b_: batch_norm(x_, rm, rv, w_, b_, training=training), [x, w, b])
    x = gpucnn.Tensor(laid_out(rng.standard_normal(shape), order), requires_grad=True)
    assert gpucnn.gradcheck(lambda x_: batch_norm(x_, rm, rv, training=training, eps=1e-3), [x])  # weight None


def test_input_without_dense_memory_and_gradient_in_another_layout_or_dtype():
    # A strided slice (copied to NCHW first); an output gradient laid out unlike the input, or float64 for
    # a float32 input (brought to the input's layout and dtype: gx stays float32).
    rng = np.random.default_rng(22)
    big = (rng.standard_normal((4, 3, 6, 10)) + 1).astype(np.float32)
    x = big[:, :, 1:, ::2]
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    gy = rng.standard_normal(x.shape)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    gx, gw, gb = ref_backward(x, gy, mean, var, w, True)
    for xa, gya in [(x, gy.astype(np.float32)), (laid_out(x, (1, 2, 3, 0)), gy.astype(np.float32)),
                    (laid_out(x, (1, 2, 3, 0)), gy), (x, laid_out(gy, (0, 2, 3, 1)))]:
        xt, wt, bt = gpucnn.Tensor(xa, requires_grad=True), t(w, True), t(b, True)
        y = batch_norm(xt, None, None, wt, bt, training=True)
        np.testing.assert_allclose(y.numpy(), ref_batch_norm(x, mean, var, w, b), rtol=1e-5, atol=1e-5)
        y.backward(gpucnn.Tensor(gya))
        assert xt.grad.dtype == np.float32
        np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(bt.grad.numpy(), gb, rtol=1e-5, atol=1e-5)


def _run_all(x, gy, w, b, training):
    rm, rv = np.zeros(x.shape[1], x.dtype), np.ones(x.shape[1], x.dtype)
    xt, wt, bt = gpucnn.Tensor(x, requires_grad=True), gpucnn.Tensor(w, requires_grad=True), \
        gpucnn.Tensor(b, requires_grad=True)
    y = batch_norm(xt, rm, rv, wt, bt, training=training)
    y.backward(gpucnn.Tensor(gy))
    return [y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), rm, rv]


# Channel runs B (memory order) that take each path of the sums: runs of 128 or of a divisor in [32, 128]
# (1024, 49 * 64, 3136), none (262 = 2 * 131), and B < 16 (one group of all channels).
GROUPING_CASES = [((8, 6, 32, 32), (0, 1, 2, 3)), ((8, 6, 32, 32), (1, 2, 3, 0)), ((64, 5, 7, 7), (1, 2, 3, 0)),
                  ((3, 4, 56, 56), (0, 1, 2, 3)), ((5, 4, 262), (0, 1, 2)), ((4, 6, 3, 3), (0, 1, 2, 3)),
                  ((300, 7), (1, 0))]


@pytest.mark.parametrize("shape,order", GROUPING_CASES, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_grouping_or_threads(shape, order, dtype, monkeypatch):
    # The NumPy path normalises groups of channels (sized by the number of threads) on several threads:
    # every channel's sums are taken in the same order in any group, so the results are bit-identical.
    from gpucnn import workspace
    from gpucnn.functions import batch_norm as bn
    rng = np.random.default_rng(23)
    x = laid_out((rng.standard_normal(shape) * 2 + 50).astype(dtype), order)
    gy = laid_out(rng.standard_normal(shape).astype(dtype), order)
    w, b = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    for training in (True, False):
        runs = []
        for threads, group in [(1, bn._GROUP), (1, 1), (2, 1), (2, 3 * x.size // shape[1]), (2, 1 << 30)]:
            monkeypatch.setattr(workspace, "threads", lambda n=threads: n)
            monkeypatch.setattr(workspace, "THREADS", max(workspace.THREADS, threads))
            monkeypatch.setattr(workspace, "MIN_PIECE", 1)  # (split even these small inputs)
            monkeypatch.setattr(bn, "_GROUP", group)
            monkeypatch.setattr(bn, "_GROUP_THREADED", group)
            runs.append(_run_all(x, gy, w, b, training))
        runs.append(_run_all(x, gy, w, b, training))  # (run to run)
        for other in runs[1:]:
            for name, a, b_ in zip(["y", "gx", "gw", "gb", "running_mean", "running_var"], runs[0], other):
                np.testing.assert_array_equal(a, b_, err_msg=name)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 2, 3, 0)])
def test_sums_are_accurate_on_long_channels(order):
    # 64 x 32 x 32 values per channel: the mean and variance (float64 accumulators) to float32 rounding even
    # at a large offset, the backward's float32 sums (runs, then pairwise) to a few ulps.
    rng = np.random.default_rng(24)
    shape = (64, 4, 32, 32)
    x = laid_out((1e3 + rng.standard_normal(shape)).astype(np.float32), order)
    gy = laid_out((rng.standard_normal(shape) + 0.5).astype(np.float32), order)
    rm, rv = np.zeros(4, np.float32), np.zeros(4, np.float32)
    xt, wt, bt = gpucnn.Tensor(x, requires_grad=True), t(np.ones(4, np.float32), True), t(np.zeros(4, np.float32), True)
    batch_norm(xt, rm, rv, wt, bt, training=True, momentum=1.0).backward(gpucnn.Tensor(gy))
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(rm, mean, rtol=np.finfo(np.float32).eps, atol=0)  # within one rounding
    np.testing.assert_allclose(rv, var * x.size / 4 / (x.size / 4 - 1), rtol=1e-3)  # inputs quantised at 6e-5
    gx, gw, gb = ref_backward(x, gy, rm, var, None, True)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(bt.grad.numpy(), gb, rtol=2 * eps)  # (all terms ~0.5: no cancellation)
    xhat = (x64 - rm.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5)
    terms = np.abs(gy * xhat).sum(axis=(0, 2, 3))  # ~5e4, the sums ~2e2: 2 ulps of the terms' size
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=0, atol=2 * eps * terms.max())
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-5, atol=1e-5)
