"""Batch norm in float16 and bfloat16 on cpu (the float32 NumPy path on the same values) and emu
(batch_norm.cu reading and writing 16 bits, statistics in float32/double): the statistics and the
running buffers stay float32, the output has the input's dtype, and every result is within one rounding
to the dtype (eps |ref|) plus float32's own error (a few float32 ulps of max |ref|) of float64."""
import ml_dtypes
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F
from gpucnn.errors import ArgumentError

HALVES = [gpucnn.float16, gpucnn.bfloat16]
F32_SLACK = 64 * float(np.finfo(np.float32).eps)


def _close(got, ref, dtype):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    eps = float(ml_dtypes.finfo(dtype).eps)
    err = np.abs(got - ref)
    assert np.all(err <= eps * np.abs(ref) + F32_SLACK * np.abs(ref).max()), err.max()


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("param_dtype", ["float32", "input"])
def test_16_bit_batch_norm_against_float64(device, dtype, training, param_dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 3).astype(dtype)
    pdt = np.float32 if param_dtype == "float32" else dtype
    w = rng.uniform(0.5, 1.5, 3).astype(pdt)
    b = rng.uniform(-0.5, 0.5, 3).astype(pdt)
    rm0, rv0 = rng.uniform(-1, 1, 3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(dtype)

    def run(xa, wa, ba, dev, stat_dtype):
        rm, rv = rm0.astype(stat_dtype), rv0.astype(stat_dtype)
        xt = gpucnn.tensor(xa, device=dev, requires_grad=True)
        wt = gpucnn.tensor(wa, device=dev, requires_grad=True)
        bt = gpucnn.tensor(ba, device=dev, requires_grad=True)
        rmt, rvt = gpucnn.tensor(rm, device=dev), gpucnn.tensor(rv, device=dev)
        y = F.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.25)
        y.backward(gpucnn.tensor(gy.astype(xa.dtype), device=dev))
        return y, xt.grad, wt.grad, bt.grad, rmt, rvt

    y, gx, gw, gb, rm, rv = run(x, w, b, device, np.float32)
    ref = run(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), "cpu", np.float64)
    assert y.dtype == dtype and gx.dtype == dtype
    assert gw.dtype == pdt and gb.dtype == pdt and rm.dtype == np.float32 and rv.dtype == np.float32
    _close(y.numpy(), ref[0].numpy(), dtype)
    _close(gx.numpy(), ref[1].numpy(), dtype)
    _close(gw.numpy(), ref[2].numpy(), pdt)
    _close(gb.numpy(), ref[3].numpy(), pdt)
    for got, want in ((rm, ref[4]), (rv, ref[5])):  # float32 statistics of the 16-bit values
        _close(got.numpy(), want.numpy(), np.float32)


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_16_bit_running_statistics_of_a_half_model_are_updated(device):
    """model.half(): the buffers are float16 too; they are updated (through float32) like PyTorch's."""
    bn = gpucnn.nn.BatchNorm2d(3).to(device).half()
    x = gpucnn.tensor(np.random.default_rng(0).standard_normal((4, 3, 3, 3)) + 2, dtype=gpucnn.float16,
                      device=device)
    bn(x)
    assert bn.running_mean.dtype == gpucnn.float16
    np.testing.assert_allclose(bn.running_mean.numpy().astype(np.float64),
                               0.1 * x.numpy().astype(np.float64).mean(axis=(0, 2, 3)), rtol=2e-3)


def test_a_float16_input_with_bfloat16_weights_is_refused():
    x = gpucnn.zeros(2, 3, 2, 2, dtype=gpucnn.float16)
    w = gpucnn.ones(3, dtype=gpucnn.bfloat16)
    with pytest.raises(ArgumentError, match="batch_norm: weight has dtype bfloat16, expected float16 or float32 "
                                            r"\(the input is float16\)"):
        F.batch_norm(x, None, None, w, None, training=True)
