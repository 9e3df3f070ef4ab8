"""gpucnn.amp.autocast: which dtype each op runs in, the casts being part of the graph (float32 master
gradients), nesting, the decorator, and bad arguments. The op lists are PyTorch's CUDA lists on every
device type (PyTorch's CPU autocast keeps exp/log/sum/softmax in bfloat16; see the module docstring)."""
import numpy as np
import pytest

import gpucnn
import gpucnn.nn.functional as F
from gpucnn.amp import autocast, get_autocast_dtype, is_autocast_enabled
from gpucnn.errors import ArgumentError

LOW = [gpucnn.float16, gpucnn.bfloat16]


def _data(device="cpu"):
    rng = np.random.default_rng(0)
    x = gpucnn.tensor(rng.standard_normal((4, 8)).astype(np.float32), device=device)
    w = gpucnn.tensor(rng.standard_normal((3, 8)).astype(np.float32), device=device, requires_grad=True)
    b = gpucnn.tensor(rng.standard_normal(3).astype(np.float32), device=device, requires_grad=True)
    return x, w, b


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("low", LOW)
def test_each_op_runs_in_its_policys_dtype(device, low):
    x, w, b = _data(device)
    with autocast(device, dtype=low):
        y = F.linear(x, w, b)
        got = {"linear": y.dtype, "matmul": (x @ w.T).dtype, "exp": y.exp().dtype, "log": y.abs().log().dtype,
               "pow": (y ** 2).dtype, "sum": y.sum().dtype, "mean": y.mean().dtype, "norm": y.norm().dtype,
               "cumsum": y.cumsum(1).dtype, "logsumexp": y.logsumexp(1).dtype,
               "relu": F.relu(y).dtype, "times a python float": (y * 2.0).dtype,
               "plus a float32 tensor": (y + x[:, :3]).dtype, "cat with float32": gpucnn.cat([y, x[:, :3]], 1).dtype,
               "float64 linear": F.linear(x.double(), w.double()).dtype,
               "int tensor sum": gpucnn.tensor([1, 2]).sum().dtype}
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert got == {"linear": low, "matmul": low, "exp": f32, "log": f32, "pow": f32, "sum": f32, "mean": f32,
                   "norm": f32, "cumsum": f32, "logsumexp": f32, "relu": low, "times a python float": low,
                   "plus a float32 tensor": f32, "cat with float32": f32, "float64 linear": f64,
                   "int tensor sum": np.dtype(np.int64)}


@pytest.mark.parametrize("low", LOW)
def test_the_low_precision_linear_matches_pytorchs_autocast(low):
    torch = pytest.importorskip("torch")
    x, w, b = _data()
    with autocast("cpu", dtype=low):
        y = F.linear(x, w, b)
        loss = (y.float() ** 2).sum()
    loss.backward()
    tdt = {gpucnn.float16: torch.float16, gpucnn.bfloat16: torch.bfloat16}[low]
    tx, tw, tb = (torch.tensor(t.numpy(), requires_grad=t.requires_grad) for t in (x, w, b))
    with torch.autocast("cpu", dtype=tdt):
        ty = torch.nn.functional.linear(tx, tw, tb)
        tloss = (ty.float() ** 2).sum()
    tloss.backward()
    # Both round x, w, b once to the low dtype, accumulate in float32 and round y once: equal up to the
    # order of the float32 sums (well below one ulp of y); the gradients are float32, as the weights.
    eps = {gpucnn.float16: 2.0 ** -10, gpucnn.bfloat16: 2.0 ** -7}[low]
    np.testing.assert_allclose(y.numpy().astype(np.float32), ty.detach().float().numpy(), rtol=eps, atol=0)
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=2 ** -6, atol=1e-3)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=2 ** -6, atol=1e-3)


def test_nesting_enabled_false_and_the_decorator():
    x, w, b = _data()
    assert not is_autocast_enabled("cpu")
    with autocast("cpu", dtype=gpucnn.float16):
        assert is_autocast_enabled("cpu") and get_autocast_dtype("cpu") == gpucnn.float16
        with autocast("cpu", enabled=False):
            assert not is_autocast_enabled("cpu")
            assert F.linear(x, w, b).dtype == np.float32
        with autocast("cpu", dtype=gpucnn.bfloat16):
            assert F.linear(x, w, b).dtype == gpucnn.bfloat16
        assert F.linear(x, w, b).dtype == gpucnn.float16
    assert F.linear(x, w, b).dtype == np.float32 and get_autocast_dtype("cpu") == gpucnn.bfloat16

    @autocast("cpu", dtype=gpucnn.float16)
    def forward(a):
        return F.linear(a, w, b)

    assert forward(x).dtype == gpucnn.float16 and forward.__name__ == "forward"
    assert F.linear(x, w, b).dtype == np.float32


def test_a_region_for_another_device_type_changes_nothing():
    x, w, b = _data("cpu")
    with autocast("emu"):
        assert F.linear(x, w, b).dtype == np.float32


def test_a_weight_is_cast_once_per_region_and_again_after_it_changes():
    x, w, b = _data()
    with autocast("cpu", dtype=gpucnn.float16):
        y1 = F.linear(x, w, b)
        y2 = F.linear(x, w, b)
        assert y1._ctx.parents[1] is y2._ctx.parents[1]  # the same cast node of w
        with gpucnn.no_grad():
            w.mul_(2.0)
        y3 = F.linear(x, w, b)
        np.testing.assert_allclose(y3.numpy().astype(np.float32) - b.numpy().astype(np.float16),
                                   2 * (y1.numpy().astype(np.float32) - b.numpy().astype(np.float16)),
                                   rtol=2e-2, atol=2e-2)
    with autocast("cpu", dtype=gpucnn.float16, cache_enabled=False):
        z1, z2 = F.linear(x, w, b), F.linear(x, w, b)
        assert z1._ctx.parents[1] is not z2._ctx.parents[1]


def test_bad_arguments_are_refused():
    with pytest.raises(ArgumentError, match="device_type must be one of 'cpu', 'cuda', 'emu', got 'tpu'"):
        autocast("tpu")
    with pytest.raises(ArgumentError, match="dtype must be gpucnn.float16 or gpucnn.bfloat16, got"):
        autocast("cpu", dtype=gpucnn.float32)
    with pytest.raises(ArgumentError, match="dtype must be gpucnn.float16 or gpucnn.bfloat16"):
        autocast("cpu", dtype="int8")
    with pytest.raises(ArgumentError, match="enabled must be True or False"):
        autocast("cpu", enabled="yes")


@pytest.mark.parametrize("low", LOW)
def test_activations_softmax_and_losses_follow_the_lists(low):
    x, w, b = _data()
    y = gpucnn.tensor(np.array([0, 2, 1, 0]))
    with autocast("cpu", dtype=low):
        h = F.linear(x, w, b)  # low
        got = {"softmax": F.softmax(h, 1).dtype, "log_softmax": F.log_softmax(h, 1).dtype,
               "cross_entropy": F.cross_entropy(h, y).dtype, "nll_loss": F.nll_loss(h, y).dtype,
               "mse_loss": F.mse_loss(h, h.detach().float()).dtype, "softplus": F.softplus(h).dtype,
               "bce_with_logits": F.binary_cross_entropy_with_logits(h, h.detach().float().sigmoid()).dtype,
               "gelu": F.gelu(h).dtype, "relu": F.relu(h).dtype, "dropout": F.dropout(h, 0.5).dtype,
               "prelu": F.prelu(x, gpucnn.tensor([0.25])).dtype}
        with pytest.raises(gpucnn.amp.autocast_mode.AutocastError,
                           match="binary_cross_entropy is unsafe to autocast .*binary_cross_entropy_with_logits"):
            F.binary_cross_entropy(h.float().sigmoid(), h.detach().float().sigmoid())
    f32 = np.dtype(np.float32)
    assert got == {"softmax": f32, "log_softmax": f32, "cross_entropy": f32, "nll_loss": f32, "mse_loss": f32,
                   "softplus": f32, "bce_with_logits": f32, "gelu": low, "relu": low, "dropout": low, "prelu": low}
    # outside the region binary_cross_entropy runs
    assert F.binary_cross_entropy(x.sigmoid(), x.sigmoid().detach()).dtype == f32


@pytest.mark.parametrize("device", ["cpu", "emu"])
@pytest.mark.parametrize("low", LOW)
def test_convolutions_run_in_the_low_dtype_with_float32_master_gradients(device, low):
    rng = np.random.default_rng(2)
    x = gpucnn.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), device=device)
    conv = gpucnn.nn.Conv2d(3, 4, 3, padding=1).to(device)
    deconv = gpucnn.nn.ConvTranspose2d(4, 2, 2, stride=2).to(device)
    conv1 = gpucnn.nn.Conv1d(3, 2, 3).to(device)
    with autocast(device, dtype=low):
        h = conv(x)
        z = deconv(h)
        s = conv1(x[:, :, 0, :])
        loss = z.float().sum() + s.float().sum()
    assert (h.dtype, z.dtype, s.dtype) == (low, low, low)
    loss.backward()
    for p in list(conv.parameters()) + list(deconv.parameters()) + list(conv1.parameters()):
        assert p.dtype == np.float32 and p.grad.dtype == np.float32
    # the same values as the 16-bit conv on the casts (one cast of x, w and b; FP32 accumulation)
    ref = F.conv2d(x.to(low), conv.weight.to(low), conv.bias.to(low), padding=1)
    np.testing.assert_array_equal(h.numpy().view(np.uint16), ref.numpy().view(np.uint16))


@pytest.mark.parametrize("low", LOW, ids=["float16", "bfloat16"])
def test_keras_mnist_gradients_under_autocast_match_pytorchs(low):
    """One batch of keras-mnist through gpucnn's and PyTorch's CPU autocast from the same weights: our
    float32 master gradients are as close to the float32 gradients as PyTorch's are (within 10 %), and in
    bfloat16 equal PyTorch's (most bit for bit, the rest a float32 summation-order rounding apart).
    (PyTorch's CPU float16 convolutions differ from its bfloat16 ones: ~10 % of the float16 error apart.)"""
    torch = pytest.importorskip("torch")
    from gpucnn.bench import _keras_data, torch_module
    from gpucnn.models import build_model

    xa, ya = _keras_data(32)
    gpucnn.manual_seed(0)
    gm = build_model("keras-mnist")
    tm = torch_module(gm, torch)
    tlow = {gpucnn.float16: torch.float16, gpucnn.bfloat16: torch.bfloat16}[low]

    def ours(amp):
        for p in gm.parameters():
            p.grad = None
        with autocast("cpu", dtype=low, enabled=amp):
            loss = F.cross_entropy(gm(gpucnn.tensor(xa)), gpucnn.tensor(ya))
        loss.backward()
        return [p.grad.numpy().astype(np.float64) for p in gm.parameters()]

    def theirs(amp):
        tm.zero_grad()
        with torch.autocast("cpu", dtype=tlow, enabled=amp):
            loss = torch.nn.functional.cross_entropy(tm(torch.tensor(xa)), torch.tensor(ya))
        loss.backward()
        return [p.grad.double().numpy() for p in tm.parameters()]

    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    eps = {gpucnn.float16: 2.0 ** -10, gpucnn.bfloat16: 2.0 ** -7}[low]
    for g, g32, t, t32 in zip(ours(True), ours(False), theirs(True), theirs(False)):
        assert rel(g, g32) <= 1.1 * rel(t, t32)
        if low == gpucnn.bfloat16:
            assert rel(g, t) <= eps / 8
