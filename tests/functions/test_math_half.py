"""The elementwise and reduction ops in float16 and bfloat16, on cpu and emu, against float64 on the same
16-bit values: each computed in float32 and rounded once (PyTorch's opmath), so within one epsilon of
the float64 result, relative, forward and backward (plus float32's own error where a sum cancels)."""
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F
from half_ref import check_against_float64

HALVES = [gpucnn.float16, gpucnn.bfloat16]

pos = np.abs  # inputs prepared in float64 before the cast, so that each case is ONE op on 16-bit values
OPS = {  # name: (op, input a, input b)
    "add": (lambda a, b: a + b, None, None), "sub": (lambda a, b: a - b, None, None),
    "mul": (lambda a, b: a * b, None, None), "div": (lambda a, b: a / b, None, lambda v: pos(v) + 0.5),
    "pow": (lambda a, b: a ** b, lambda v: pos(v) + 0.1, None),
    "maximum": (lambda a, b: gpucnn.maximum(a, b), None, None), "exp": (lambda a, b: a.exp(), None, None),
    "log": (lambda a, b: a.log(), lambda v: pos(v) + 0.1, None), "log1p": (lambda a, b: a.log1p(), pos, None),
    "sqrt": (lambda a, b: a.sqrt(), lambda v: pos(v) + 0.1, None), "tanh": (lambda a, b: a.tanh(), lambda v: 3 * v, None),
    "sigmoid": (lambda a, b: a.sigmoid(), lambda v: 3 * v, None), "abs": (lambda a, b: a.abs(), None, None),
    "neg": (lambda a, b: -a, None, None), "clamp": (lambda a, b: a.clamp(-0.5, 0.7), None, None),
    "square": (lambda a, b: a ** 2, None, None), "relu": (lambda a, b: F.relu(a), None, None),
    "sum": (lambda a, b: a.sum(1), None, None), "mean": (lambda a, b: a.mean(0), None, None),
    "amax": (lambda a, b: a.amax(1), None, None), "norm": (lambda a, b: a.norm(dim=1), None, None),
    "cumsum": (lambda a, b: a.cumsum(1), None, None), "logsumexp": (lambda a, b: a.logsumexp(1), None, None),
    "matmul": (lambda a, b: a @ b.T, None, None), "cat": (lambda a, b: gpucnn.cat([a, b], 1), None, None),
    "index": (lambda a, b: a[1:, ::2], None, None), "transpose": (lambda a, b: a.T, None, None),
    "where": (lambda a, b: gpucnn.where(a > 0, a, b), None, None),
    "pad reflect": (lambda a, b: F.pad(a[None], (2, 1), mode="reflect")[0], None, None),
    "pad constant": (lambda a, b: F.pad(a, (1, 2, 0, 1), value=0.5), None, None),
    "interpolate": (lambda a, b: F.interpolate(a[None, None], scale_factor=2)[0, 0], None, None),
    "reshape": (lambda a, b: a.reshape(3, 18), None, None),
}


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("dtype", HALVES, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(OPS))
def test_op_in_16_bits_is_within_an_epsilon_of_float64(name, dtype, device):
    op, *prepare = OPS[name]
    rng = np.random.default_rng(7)
    arrays = [(f or (lambda v: v))(rng.standard_normal((6, 9))).astype(dtype) for f in prepare]
    check_against_float64(op, arrays, dtype, device, rng, name)