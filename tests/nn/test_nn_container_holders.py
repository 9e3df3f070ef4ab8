"""ModuleList, ModuleDict, ParameterList, ParameterDict against torch.nn's: registration (parameters,
state_dict keys), the list/dict protocols, to(), train()/eval(), repr, errors of PyTorch's types."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import nn


def copy_to_torch(model, tmodel):
    """Copy gpucnn's state into the torch model (same keys) so both compute the same function."""
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    tmodel.load_state_dict(sd)


def stack_class(mod):
    """The same model written for ``torch.nn`` or ``gpucnn.nn``."""
    lib = torch if mod is torch.nn else gpucnn

    class Stack(mod.Module):
        def __init__(self):
            super().__init__()
            self.layers = mod.ModuleList([mod.Linear(4, 4) for _ in range(3)])
            self.heads = mod.ModuleDict({"a": mod.Linear(4, 2), "b": mod.Linear(4, 3)})
            self.scales = mod.ParameterList([mod.Parameter(lib.ones(4)) for _ in range(2)])
            self.extra = mod.ParameterDict({"bias": mod.Parameter(lib.zeros(2))})

        def forward(self, x):
            for layer, scale in zip(self.layers, list(self.scales) * 2):
                x = layer(x).relu() * scale
            return self.heads["a"](x) + self.extra["bias"], self.heads["b"](x)

    return Stack


Stack = stack_class(nn)


def test_registration_state_dict_and_forward_backward_match_torch():
    gpucnn.manual_seed(0)
    model, tmodel = Stack(), stack_class(torch.nn)()
    assert list(model.state_dict()) == list(tmodel.state_dict())  # layers.0.weight, scales.0, extra.bias, ...
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()]
    assert len(list(model.parameters())) == 3 * 2 + 2 * 2 + 2 + 1
    for p in model.scales:  # non-trivial scales, so a wrong pairing shows
        p.data[...] = np.random.default_rng(1).uniform(0.5, 1.5, p.shape)
    copy_to_torch(model, tmodel)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    a, b = model(gpucnn.tensor(x))
    ta, tb = tmodel(torch.from_numpy(x))
    np.testing.assert_allclose(a.numpy(), ta.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    (a.sum() + (b * b).sum()).backward()
    (ta.sum() + (tb * tb).sum()).backward()
    tgrads = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_train_eval_to_and_state_dict_round_trip():
    model = Stack()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.layers[2].training and m.heads["b"].training for m in [model])
    model.to("emu")
    assert all(p.device == "emu" for p in model.parameters())
    model.to("cpu").double()
    assert model.scales[0].dtype == np.float64 and model.extra["bias"].dtype == np.float64
    other = Stack().double()
    other.load_state_dict(model.state_dict())
    for (k, v), w in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=k)


@pytest.mark.parametrize("mod", [nn, torch.nn], ids=["gpucnn", "torch"])
def test_module_list_protocol(mod):
    """The same script runs on torch.nn and gpucnn.nn with the same results."""
    a, b, c, d = mod.Linear(1, 1), mod.ReLU(), mod.Linear(1, 2), mod.Tanh() if mod is torch.nn else mod.Identity()
    ml = mod.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and ml[0] is a and ml[-1] is c and list(ml) == [a, b, c]
    s = ml[1:]
    assert type(s) is mod.ModuleList and list(s) == [b, c] and list(s._modules) == ["0", "1"]
    ml.insert(1, d)
    assert list(ml) == [a, d, b, c] and list(ml._modules) == ["0", "1", "2", "3"]
    del ml[0]
    assert list(ml) == [d, b, c] and list(ml._modules) == ["0", "1", "2"]
    assert ml.pop(1) is b and list(ml) == [d, c]
    ml[0] = a
    assert list(ml) == [a, c]
    ml += [b]
    ml.extend(mod.ModuleList([d]))
    assert list(ml) == [a, c, b, d]
    assert list(ml + mod.ModuleList([a])) == [a, c, b, d, a]
    del ml[1:3]
    assert list(ml) == [a, d] and [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(IndexError):
        ml[2]
    with pytest.raises(IndexError):
        ml[-3]
    with pytest.raises(TypeError):
        mod.ModuleList([1])
    with pytest.raises(TypeError):
        ml.append("relu")
    with pytest.raises(TypeError):
        ml.extend(a)  # a Linear is not an iterable of modules
    with pytest.raises(NotImplementedError):
        ml(torch.zeros(1) if mod is torch.nn else gpucnn.zeros(1))


@pytest.mark.parametrize("mod", [nn, torch.nn], ids=["gpucnn", "torch"])
def test_module_dict_protocol(mod):
    a, b, c = mod.Linear(1, 1), mod.ReLU(), mod.Linear(1, 2)
    md = mod.ModuleDict({"b": a, "a": b})
    assert list(md) == ["b", "a"] and list(md.keys()) == ["b", "a"] and len(md) == 2  # insertion order
    assert md["b"] is a and "a" in md and "c" not in md and list(md.values()) == [a, b]
    md.update([("c", c)])
    md.update({"a": c})
    assert [(k, v) for k, v in md.items()] == [("b", a), ("a", c), ("c", c)]
    assert md.pop("b") is a and list(md) == ["a", "c"]
    del md["a"]
    assert list(md) == ["c"] and [n for n, _ in md.named_parameters()] == ["c.weight", "c.bias"]
    with pytest.raises(KeyError):
        md["missing"]
    with pytest.raises(KeyError):
        md["x.y"] = b  # PyTorch's KeyError for a dotted name
    with pytest.raises(KeyError):
        md[""] = b
    with pytest.raises(TypeError):
        md[1] = b
    with pytest.raises(KeyError):
        md["train"] = b  # would hide Module.train
    with pytest.raises(TypeError):
        md["d"] = 3
    with pytest.raises(TypeError):
        md.update(["ab"])  # not (key, value) pairs ('ab' unpacks, 'a' is not a module: TypeError either way)
    md.clear()
    assert len(md) == 0 and list(md.parameters()) == []


@pytest.mark.parametrize("mod", [nn, torch.nn], ids=["gpucnn", "torch"])
def test_parameter_list_and_dict_protocols(mod):
    lib = torch if mod is torch.nn else gpucnn
    p, q = mod.Parameter(lib.ones(2)), mod.Parameter(lib.zeros(3))
    pl = mod.ParameterList([p])
    pl.append(lib.ones(4))  # a plain tensor becomes a Parameter
    assert type(pl[1]) is mod.Parameter and pl[1].requires_grad and pl[0] is p
    pl.extend([q])
    assert len(pl) == 3 and pl[-1] is q and [t.shape[0] for t in pl] == [2, 4, 3]
    assert [t.shape[0] for t in pl[1:]] == [4, 3] and type(pl[1:]) is mod.ParameterList
    pl[0] = q
    assert list(dict(pl.named_parameters())) == ["0", "1"]  # q is listed once (shared)
    with pytest.raises(IndexError):
        pl[3]
    with pytest.raises(TypeError):
        pl.extend(lib.ones(2))
    pd = mod.ParameterDict({"w": p})
    pd["b"] = lib.zeros(2)
    assert type(pd["b"]) is mod.Parameter and list(pd) == ["w", "b"] and "w" in pd
    assert list(pd.state_dict()) == ["w", "b"] and pd.get("nope") is None
    assert pd.pop("w") is p and list(pd.keys()) == ["b"]


def test_reprs_match_torch():
    gm = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)])
    tm = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 3)])
    assert repr(gm) == repr(tm)  # "(0-1): 2 x Linear(...)"
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    gd = nn.ModuleDict({"x": nn.Linear(1, 1), "act": nn.ReLU()})
    td = torch.nn.ModuleDict({"x": torch.nn.Linear(1, 1), "act": torch.nn.ReLU()})
    assert repr(gd) == repr(td)
    text = repr(nn.ParameterList([gpucnn.ones((2, 3)), gpucnn.zeros(1, device="emu")]))
    assert text == ("ParameterList(\n    (0): Parameter containing: [float32 of size 2x3]\n"
                    "    (1): Parameter containing: [float32 of size 1 (emu)]\n)")


def test_summary_of_a_model_with_holders():
    model = Stack()
    text = model.summary((4,))
    assert "layers.0 (Linear)" in text and "heads.b (Linear)" in text
    assert "scales (ParameterList)" in text and "ModuleList" not in text
    total = sum(p.numel() for p in model.parameters())
    assert f"Total params: {total:,} " in text and total == 3 * 20 + 10 + 15 + 8 + 2


def test_registration_names_follow_pytorch_rules():
    m = nn.Module()
    with pytest.raises(KeyError, match='cannot contain "."'):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match='cannot contain "."'):
        m.register_parameter("a.b", nn.Parameter(gpucnn.ones(1)))
    with pytest.raises(KeyError, match="cannot be an empty string"):
        m.register_buffer("", gpucnn.ones(1))
    with pytest.raises(TypeError, match="should be a string"):
        m.add_module(3, nn.ReLU())
    with pytest.raises(KeyError, match="already exists"):
        m.add_module("eval", nn.ReLU())
    m.add_module("act", nn.ReLU())
    m.add_module("act", nn.Identity())  # replacing a child is fine
    assert type(m.act) is nn.Identity
