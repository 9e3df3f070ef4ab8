"""A user's own nn.Module subclass, written as for PyTorch (layers assigned in __init__, a forward with a
skip connection, a ModuleList, a loss module): same outputs and gradients as the torch version, it
trains, summary() describes it, and its state_dict saves and loads with gpucnn.save/gpucnn.load."""
import numpy as np
import torch

import gpucnn
from gpucnn import nn
from toydata import sgd_losses


def residual_net(mod):
    """The same network for torch.nn and gpucnn.nn."""

    class ResNet(mod.Module):
        def __init__(self, channels=4, classes=3):
            super().__init__()
            self.stem = mod.Conv2d(1, channels, 3, padding=1)
            self.blocks = mod.ModuleList([
                mod.Sequential(mod.Conv2d(channels, channels, 3, padding=1, bias=False), mod.BatchNorm2d(channels),
                               mod.ReLU(), mod.Conv2d(channels, channels, 3, padding=1))
                for _ in range(2)])
            self.pool = mod.AdaptiveAvgPool2d(1)
            self.head = mod.Linear(channels, classes)

        def forward(self, x):
            x = self.stem(x).relu()
            for block in self.blocks:
                x = (block(x) + x).relu()  # the skip connection
            return self.head(self.pool(x).flatten(1))

    return ResNet


ResNet = residual_net(nn)


def data(n=8, seed=0):
    """Images whose class is their brightness (dark, mid, bright): learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 6, 6)) * 0.5 + (y[:, None, None, None] - 1.0)
    return x.astype(np.float32), y


def test_forward_and_backward_match_the_torch_module():
    gpucnn.manual_seed(0)
    model, tmodel = ResNet(), residual_net(torch.nn)()
    assert list(model.state_dict()) == list(tmodel.state_dict())
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    x, y = data()
    loss = nn.CrossEntropyLoss()(model(gpucnn.tensor(x)), gpucnn.tensor(y))
    tloss = torch.nn.CrossEntropyLoss()(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
    for name, b in model.named_buffers():  # batch-norm statistics updated alike
        np.testing.assert_allclose(b.numpy(), tmodel.get_buffer(name).numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_it_trains_summarises_and_saves(tmp_path):
    gpucnn.manual_seed(0)
    model = ResNet()
    x, y = data(16)
    losses = sgd_losses(model, nn.CrossEntropyLoss(), x, y, lr=0.1, momentum=0.9)
    assert losses[-1] < 0.5 * losses[0]

    text = model.summary((1, 6, 6))
    assert text.splitlines()[0] == 'Model: "ResNet"'
    for row in ("stem (Conv2d)", "blocks.0.0 (Conv2d)", "blocks.1.1 (BatchNorm2d)", "head (Linear)"):
        assert row in text
    params = sum(p.numel() for p in model.parameters())
    stats = 2 * 2 * 4  # two BatchNorm2d(4): running mean and variance
    assert f"Total params: {params + stats:,} " in text and f"Non-trainable params: {stats} " in text
    assert "(None, 3)" in text

    gpucnn.save(model.state_dict(), tmp_path / "resnet.pt")
    fresh = ResNet()
    fresh.load_state_dict(gpucnn.load(tmp_path / "resnet.pt"))
    model.eval(), fresh.eval()
    with gpucnn.no_grad():
        np.testing.assert_array_equal(fresh(gpucnn.tensor(x)).numpy(), model(gpucnn.tensor(x)).numpy())
