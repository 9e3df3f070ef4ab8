"""einsum against torch: forward and every operand's gradient over contractions, diagonals, sums inside one
operand, broadcasting (ellipsis and size-1 dims), implicit outputs; gradcheck on cpu and emu; bad equations."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn.errors import ArgumentError, DtypeError, ShapeError
from gpucnn.functions.einsum import einsum

DEVICES = ["cpu", "emu"]
CASES = [  # (equation, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("i,j->ij", [(3,), (4,)]),
    ("ijk,jl,lk->i", [(2, 3, 4), (3, 5), (5, 4)]), ("ij,kl->", [(2, 3), (1, 2)]), (",->", [(), ()]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iji->j", [(2, 3, 2)]), ("iij,jk->ik", [(2, 2, 3), (3, 4)]),
    ("ij->i", [(2, 3)]), ("ij->", [(2, 3)]), ("ij,j->", [(2, 3), (3,)]), ("ij->ji", [(2, 3)]),
    ("...ij->...ji", [(2, 2, 3)]), ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("...ij->ij", [(5, 2, 3)]),
    ("i...j->j...i", [(2, 3, 4, 5)]), ("i->...i", [(3,)]), ("...", [(2, 3)]), ("...ji", [(4, 2, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]), ("ij,jk->ik", [(2, 1), (3, 4)]), ("ba,Ab", [(2, 3), (4, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]), ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ii,i->i", [(1, 1), (3,)]), ("ij,jk->ik", [(2, 0), (0, 3)]), ("ij,j->i", [(2, 1), (0,)]),
]


def operands(shapes, device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    return ([gpucnn.tensor(a, device=device, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("equation, shapes", CASES)
def test_einsum_matches_torch(equation, shapes, device):
    ours, theirs = operands(shapes, device)
    y, ty = einsum(equation, *ours), torch.einsum(equation, *theirs)
    assert y.shape == tuple(ty.shape) and y.device == device
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gpucnn.tensor(gy, device=device))
    ty.backward(torch.tensor(gy))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"operand {k}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]), ("iij,jk->ik", [(2, 2, 3), (3, 2)]), ("ij->i", [(2, 3)]),
    ("...i,...i->...", [(2, 1, 3), (2, 3)]), ("ij,kl->", [(2, 3), (1, 2)]), ("i...j->j...i", [(2, 1, 3)]),
    ("ijk,jl,lk->i", [(2, 2, 3), (2, 2), (2, 3)]),
])
def test_einsum_gradcheck(equation, shapes, device):
    ours, _ = operands(shapes, device, seed=3)
    gpucnn.gradcheck(lambda *xs: einsum(equation, *xs), ours)


def test_einsum_operands_as_a_list_dtypes_and_views():
    a, b = gpucnn.tensor(np.ones((2, 3), np.float32)), gpucnn.tensor(np.ones((3, 4), np.float32))
    assert einsum("ij,jk", [a, b]).shape == (2, 4) and einsum("ij,jk", (a, b)).dtype == np.float32
    ints = einsum("ij,jk->ik", gpucnn.tensor(np.arange(6).reshape(2, 3)), gpucnn.tensor(np.arange(3).reshape(3, 1)))
    assert ints.dtype == np.int64 and ints.numpy().tolist() == [[5], [14]]
    x = gpucnn.tensor(np.arange(9.0).reshape(3, 3))
    d = einsum("ii->i", x)
    d.data[0] = 100  # the result is no view of the input
    assert x.numpy()[0, 0] == 0
    w = gpucnn.tensor(np.ones((2, 2)), requires_grad=True)
    g = np.ones((2, 2))
    einsum("ij->ji", w).backward(gpucnn.tensor(g))
    w.grad.data[...] = 5  # nor is a gradient a view of the output gradient
    assert g[0, 0] == 1


@pytest.mark.parametrize("equation, shapes, error, match", [
    ("ij,jk->ik", [(2, 3)], ArgumentError, r"the equation 'ij,jk->ik' has 2 operand\(s\), got 1 tensor\(s\)"),
    ("ij,jk->ik", [(2, 2), (3, 4)], ShapeError, r"subscript 'j' has size 3 in operand 1 \(shape \(3, 4\)\), which "
                                                r"does not broadcast with size 2"),
    ("...,...->...", [(2,), (3,)], ShapeError, r"an ellipsis dim has size 3 in operand 1"),
    ("ii->i", [(3, 2)], ShapeError, r"subscript 'i' is repeated in operand 0 with different sizes \(3 and 2"),
    ("ij->ii", [(3, 3)], ArgumentError, r"output subscript 'i' appears more than once"),
    ("ij->k", [(3, 3)], ArgumentError, r"output subscript 'k' does not appear in any operand"),
    ("ijk->i", [(3, 3)], ShapeError, r"operand 0 has 2 dims \(shape \(3, 3\)\) but 3 subscripts 'ijk' and no "
                                     r"ellipsis"),
    ("i1->i", [(3, 3)], ArgumentError, r"invalid subscript '1' at index 1 of the equation"),
    ("i->i->i", [(2,)], ArgumentError, r"invalid subscript '-' at index 4"),
    ("i.->i", [(2, 2)], ArgumentError, r"a '.' that is not part of an ellipsis"),
    ("...i->......", [(2, 3)], ArgumentError, r"the output has more than one ellipsis"),
])
def test_einsum_errors_are_torchs_types(equation, shapes, error, match):
    ours, theirs = operands(shapes)
    with pytest.raises(error, match=match):
        einsum(equation, *ours)
    with pytest.raises(RuntimeError):  # torch rejects each too (a RuntimeError: ShapeError is one)
        torch.einsum(equation, *theirs)


def test_einsum_argument_errors():
    a = gpucnn.tensor(np.ones((2, 3), np.float32))
    with pytest.raises(DtypeError, match=r"operands must have the same dtype, got float32 \(operand 0\) and "
                                         r"float64 \(operand 1\)"):
        einsum("ij,jk->ik", a, gpucnn.tensor(np.ones((3, 4))))
    with pytest.raises(DtypeError, match="equation must be a str, got int"):
        einsum(3, a)
    with pytest.raises(ArgumentError, match="needs at least one operand"):
        einsum("->")
    with pytest.raises(ArgumentError, match="einsum: operand 1 must be a gpucnn Tensor, got list"):
        einsum("i,i", gpucnn.tensor([1.0]), [1.0])
