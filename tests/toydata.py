"""Small learnable datasets shared by the training, CLI and reliability tests (importable from any test
file: pyproject's pytest ``pythonpath`` holds tests/)."""
import numpy as np


def make_images(n, size=8, channels=1, classes=3, seed=0):
    """Learnable toy data: class k has a bright horizontal bar at rows 2k+1..2k+2, plus noise. Returns
    (x uint8 (n, channels, size, size), y int64 (n,))."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int64)
    x = rng.integers(0, 60, (n, channels, size, size)).astype(np.uint8)
    for k in range(classes):
        x[y == k, :, 2 * k + 1:2 * k + 3, :] = 220
    return x, y


def sgd_losses(model, loss_fn, x, y, steps=20, **sgd):
    """The losses of ``steps`` full-batch SGD steps (``sgd``: the optimizer's arguments) of ``model``
    on NumPy ``x``, ``y``: a quick check that something trains."""
    import gpucnn

    opt = gpucnn.optim.SGD(model.parameters(), **sgd)
    xt, yt = gpucnn.tensor(x), gpucnn.tensor(y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
