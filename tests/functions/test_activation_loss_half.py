"""Activations, softmax, dropout and the losses in float16 and bfloat16 on cpu and emu: computed in float32
on the 16-bit values and rounded once (PyTorch's opmath), so within one epsilon (relative) of float64 on
the same values, forward and backward; the result keeps the input's dtype."""
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F
from half_ref import check_against_float64

HALVES = [gpucnn.float16, gpucnn.bfloat16]
LABELS = np.array([0, 3, 8, 2, 5, 1])
ACTIVATIONS = ["leaky_relu", "elu", "selu", "gelu", "silu", "mish", "hardtanh", "relu6", "hardsigmoid",
               "hardswish", "softplus", "sigmoid", "tanh"]


def _cases():
    cases = {name: (lambda f: lambda a, b: f(a))(getattr(F, name)) for name in ACTIVATIONS}
    cases.update({
        "gelu tanh": lambda a, b: F.gelu(a, approximate="tanh"),
        "softmax": lambda a, b: F.softmax(a, 1), "log_softmax": lambda a, b: F.log_softmax(a, 1),
        "prelu": lambda a, b: F.prelu(a, b[0, :1]),
        "cross_entropy": lambda a, b: F.cross_entropy(a, gpucnn.tensor(LABELS, device=a.device)),
        "cross_entropy smoothed": lambda a, b: F.cross_entropy(a, gpucnn.tensor(LABELS, device=a.device),
                                                               label_smoothing=0.1),
        "nll_loss": lambda a, b: F.nll_loss(a, gpucnn.tensor(LABELS, device=a.device), reduction="sum"),
        "mse_loss": lambda a, b: F.mse_loss(a, b), "l1_loss": lambda a, b: F.l1_loss(a, b, reduction="none"),
        "smooth_l1_loss": lambda a, b: F.smooth_l1_loss(a, b), "huber_loss": lambda a, b: F.huber_loss(a, b),
        "bce_with_logits": lambda a, b: F.binary_cross_entropy_with_logits(a, b),
        "kl_div": lambda a, b: F.kl_div(a, b, reduction="batchmean"),
    })
    return cases


def _log_softmax(v):
    v = v - v.max(axis=1, keepdims=True)
    return v - np.log(np.exp(v).sum(axis=1, keepdims=True))


# Inputs made in float64 before the cast, where a case needs probabilities: each case is then ONE op on
# 16-bit values, compared with float64 on the same values.
PREPARE = {"bce_with_logits": (None, lambda v: 1 / (1 + np.exp(-v))),
           "kl_div": (_log_softmax, lambda v: np.exp(_log_softmax(v)))}


CASES = _cases()


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(CASES))
def test_16_bit_activation_or_loss_is_within_an_epsilon_of_float64(name, dtype, device):
    op = CASES[name]
    rng = np.random.default_rng(11)
    arrays = [(f or (lambda v: v))(2 * rng.standard_normal((6, 10))).astype(dtype)
              for f in PREPARE.get(name, (None, None))]
    check_against_float64(op, arrays, dtype, device, rng, name)


@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
def test_16_bit_dropout_keeps_the_float32_mask(dtype):
    x = np.ones((50, 40), np.float32)
    gpucnn.manual_seed(3)
    y32 = F.dropout(gpucnn.tensor(x), 0.3).numpy()
    gpucnn.manual_seed(3)
    y16 = F.dropout(gpucnn.tensor(x.astype(dtype)), 0.3)
    assert y16.dtype == dtype
    np.testing.assert_array_equal(y16.numpy().astype(np.float32), y32.astype(dtype).astype(np.float32))
