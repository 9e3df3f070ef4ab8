"""What a PyTorch user types without thinking, run with ``lib = torch`` and with ``lib = gpucnn``: the
results must agree (values, shapes, dtypes). Each idiom is a snippet that leaves its answer in ``out``."""
import numpy as np
import pytest
import torch

import gpucnn
from torch_ref import assert_same_value

IDIOMS = {
    "scalar float on int": "out = lib.tensor([1, 2]) * 2.5",
    "int true division": "out = lib.tensor([3, 4]) / 2",
    "max over dim": "v, i = lib.tensor([[1., 5., 2.], [7., 0., 1.]]).max(1); out = (v, i)",
    "max(1)[1] is the index": "out = lib.tensor([[1., 5., 2.], [7., 0., 1.]]).max(1)[1]",
    "accuracy": "p = lib.tensor([[.1, .9], [.8, .2]]); y = lib.tensor([1, 1]); "
                "out = (p.argmax(1) == y).float().mean()",
    "argmax flat": "out = lib.tensor([[1, 9], [3, 4]]).argmax()",
    "sum keepdim": "out = lib.ones(2, 3).sum(1, keepdim=True)",
    "mean of dims": "out = lib.arange(24.).reshape(2, 3, 4).mean((1, 2))",
    "arange float step": "out = lib.arange(0, 1, 0.25)",
    "linspace": "out = lib.linspace(0, 1, 5)",
    "zeros like": "out = lib.zeros_like(lib.ones(2, 2, dtype=lib.float64))",
    "full": "out = lib.full((2, 2), 7)",
    "eye": "out = lib.eye(3)",
    "unsqueeze squeeze": "out = lib.ones(3).unsqueeze(0).unsqueeze(-1).squeeze(0).shape",
    "view -1": "out = lib.arange(6).view(2, -1)",
    "permute contiguous": "out = lib.arange(6).reshape(1, 2, 3).permute(2, 0, 1).contiguous()",
    "transpose": "out = lib.arange(6).reshape(2, 3).transpose(0, 1)",
    "expand": "out = lib.tensor([[1], [2]]).expand(2, 3)",
    "repeat": "out = lib.tensor([1, 2]).repeat(2, 2)",
    "chunk": "out = lib.arange(5).chunk(2)",
    "split": "out = lib.arange(5).split([2, 3])",
    "stack": "out = lib.stack([lib.ones(2), lib.zeros(2)], dim=1)",
    "cat": "out = lib.cat([lib.ones(1, 2), lib.zeros(2, 2)])",
    "where": "x = lib.tensor([-1., 2.]); out = lib.where(x > 0, x, lib.zeros_like(x))",
    "clamp": "out = lib.tensor([-2., .5, 3.]).clamp(min=0, max=1)",
    "masked_fill": "x = lib.tensor([1., 2., 3.]); out = x.masked_fill(x > 1, 0.)",
    "gather": "out = lib.tensor([[1, 2], [3, 4]]).gather(1, lib.tensor([[0], [1]]))",
    "fancy index": "lp = lib.arange(6.).reshape(2, 3); out = lp[lib.arange(2), lib.tensor([2, 0])]",
    "bool mask": "x = lib.arange(5); out = x[x % 2 == 0]",
    "ellipsis none": "out = lib.arange(6).reshape(2, 3)[..., None, 1]",
    "negative index": "out = lib.arange(5)[-2:]",
    "setitem": "x = lib.zeros(3); x[1] = 5; out = x",
    "setitem mask": "x = lib.arange(5.); x[x > 2] = 0; out = x",
    "setitem slice broadcast": "x = lib.zeros(2, 3); x[:, 1:] = lib.tensor([1., 2.]); out = x",
    "iadd": "x = lib.ones(2); y = x; x += 1; out = (y, x is y)",
    "add_ alpha": "out = lib.ones(2).add_(lib.ones(2), alpha=3)",
    "sgd by hand": "w = lib.tensor([1., 2.], requires_grad=True); (w * w).sum().backward()\n"
                   "with lib.no_grad():\n    w -= 0.5 * w.grad\nout = w.detach()",
    "zero_ grad": "w = lib.tensor([1.], requires_grad=True); (w * 3).sum().backward(); w.grad.zero_(); out = w.grad",
    "for row": "out = [r.sum() for r in lib.arange(6).reshape(3, 2)]",
    "unpack": "a, b = lib.tensor([3, 4]); out = a + b",
    "len": "out = len(lib.zeros(4, 2))",
    "item": "out = lib.tensor([2.5]).item()",
    "tolist": "out = lib.tensor([[1, 2]]).tolist()",
    "numpy roundtrip": "out = lib.from_numpy(np.arange(3.)) * 2",
    "asarray": "out = np.asarray(lib.tensor([1., 2.])).sum()",
    "to dtype": "out = lib.tensor([1.7]).to(lib.float64)",
    "long": "out = lib.tensor([1.7, -1.7]).long()",
    "bool ops": "m = lib.tensor([True, False]); out = (~m, m & m, m | ~m)",
    "floordiv mod": "x = lib.tensor([-7, 7]); out = (x // 2, x % 3)",
    "pow": "out = (lib.tensor([2, 3]) ** 2, 2 ** lib.tensor([1., 2.]))",
    "std var": "x = lib.tensor([1., 2., 4.]); out = (x.std(), x.var(unbiased=False))",
    "norm": "out = lib.tensor([3., 4.]).norm()",
    "sort": "out = tuple(lib.tensor([3, 1, 2]).sort(descending=True))",
    "topk": "out = tuple(lib.tensor([3., 1., 2., 5.]).topk(2))",
    "cumsum": "out = lib.tensor([1, 2, 3]).cumsum(0)",
    "logsumexp": "out = lib.tensor([[1., 2.], [3., 4.]]).logsumexp(1)",
    "any all": "x = lib.tensor([0, 1]); out = (x.any(), x.all())",
    "isnan": "out = lib.tensor([1., float('nan')]).isnan()",
    "allclose": "out = lib.allclose(lib.tensor([1.]), lib.tensor([1. + 1e-9]))",
    "equal": "out = lib.equal(lib.tensor([1, 2]), lib.tensor([1, 2]))",
    "matmul broadcast": "out = lib.ones(2, 3, 4) @ lib.ones(4)",
    "einsum": "out = lib.einsum('ij,jk->ik', lib.ones(2, 3), lib.ones(3, 2))",
    "sigmoid tanh": "x = lib.tensor([0., 1.]); out = (x.sigmoid(), x.tanh(), lib.exp(x), x.log1p())",
    "one_hot": "out = F.one_hot(lib.tensor([0, 2]), 3)",
    "pad reflect": "out = F.pad(lib.arange(4.).reshape(1, 1, 4), (2, 1), mode='reflect')",
    "interpolate": "out = F.interpolate(lib.arange(4.).reshape(1, 1, 2, 2), scale_factor=2, mode='nearest')",
    "relu inplace": "x = lib.tensor([-1., 1.]); F.relu(x, inplace=True); out = x",
    "cross entropy module": "out = lib.nn.CrossEntropyLoss()(lib.tensor([[2., 1.], [0., 3.]]), lib.tensor([0, 1]))",
    "backward gradient": "x = lib.tensor([1., 2.], requires_grad=True); (x * x).backward(gradient=lib.ones(2))\n"
                         "out = x.grad",
    "detach clone": "x = lib.tensor([1.], requires_grad=True); y = x.clone(); out = (y.requires_grad, "
                    "x.detach().requires_grad, y.is_leaf)",
    "default dtype": "out = lib.tensor([1.]).dtype == lib.get_default_dtype()",
    "is_cuda": "out = lib.ones(1).is_cuda",
    "f-string of a loss": "out = f'{lib.tensor(0.12345):.3f}'",
    "moduleList": "m = lib.nn.ModuleList([lib.nn.Linear(2, 2), lib.nn.ReLU()]); out = len(list(m.parameters()))",
    "randint shape": "out = lib.randint(0, 10, (2, 3)).shape",
    "randperm sorted": "out = lib.randperm(5).sort().values",
}


def _normal(value):
    """torch.Size and shapes compare as tuples."""
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_normal(v) for v in value) if not hasattr(value, "_fields") else tuple(map(_normal, value))
    return value


def _run(code: str, lib):
    scope = {"lib": lib, "F": lib.nn.functional, "np": np}
    exec(code, scope)  # noqa: S102  (the idioms above)
    return _normal(scope["out"])


@pytest.mark.parametrize("name", list(IDIOMS))
def test_idiom_agrees_with_torch(name):
    ours, ref = _run(IDIOMS[name], gpucnn), _run(IDIOMS[name], torch)
    ours_flat = list(ours) if isinstance(ours, (tuple, list)) else [ours]
    ref_flat = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    assert len(ours_flat) == len(ref_flat)
    for o, r in zip(ours_flat, ref_flat):
        if isinstance(r, torch.Tensor):
            assert_same_value(o, r)
        else:
            assert o == r, f"{o!r} != torch's {r!r}"
