"""Creation functions against torch: shapes, dtypes (PyTorch's inference), values, devices, errors; the random
ones by range, distribution and reproducibility under manual_seed (their values are not torch's)."""
import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import dtypes
from gpucnn.errors import ArgumentError, DtypeError, GpucnnError, ShapeError
from gpucnn.functions import creation as C

DEVICES = ["cpu", "emu"]


def torch_dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def assert_like_torch(ours, theirs: torch.Tensor, exact: bool = True):
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == torch_dtype_name(theirs)
    if exact:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    else:  # PyTorch's vectorised float loops round the last bit differently from one multiply-add
        rtol = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3}[str(ours.dtype)]
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=rtol, atol=rtol)


def torch_dtype(name):
    return None if name is None else getattr(torch, name)


@pytest.fixture
def default_float64():
    dtypes.set_default_dtype("float64")
    try:
        yield
    finally:
        dtypes.set_default_dtype("float32")


# -- arange ----------------------------------------------------------------------------------------------
ARANGE = [
    ((5,), None), ((2, 9), None), ((1, 10, 3), None), ((10, 1, -3), None), ((3, 3), None), ((True,), None),
    ((0, 1, 0.1), None), ((1, 2.5, 0.5), None), ((-1, -2.5, -0.5), None), ((0, 0.3, 0.1), None),
    ((0, 1 - 1e-9, 0.1), None), ((0, 100, 0.3), None), ((2.5,), None),
    ((5,), "float64"), ((0, 5.5), "int64"), ((0, 5.5), "int32"), ((0.5, 5), "int32"), ((0, 5, 1.5), "int32"),
    ((0, 5, 1.5), "int64"), ((-0.5, -5, -1.5), "int64"), ((-3, 3), "uint8"), ((5, 0, -1), "uint8"),
    ((0, 5, 0.5), "int32"), ((0, 1, 0.125), "float16"), ((-4, 4, 0.7), "float64"),
]


@pytest.mark.parametrize("args, dtype", ARANGE)
def test_arange_matches_torch(args, dtype):
    ours = C.arange(*args, dtype=dtype)
    theirs = torch.arange(*args, dtype=torch_dtype(dtype))
    assert_like_torch(ours, theirs, exact=ours.dtype.kind != "f")


def test_arange_keywords_and_tensor_arguments():
    assert_like_torch(C.arange(end=4), torch.arange(end=4))
    assert_like_torch(C.arange(start=1, end=4, step=2), torch.arange(start=1, end=4, step=2))
    assert_like_torch(C.arange(gpucnn.tensor(3)), torch.arange(torch.tensor(3)))
    assert_like_torch(C.arange(np.float32(2.5)), torch.arange(np.float32(2.5)))


def test_arange_uses_the_default_float_dtype(default_float64):
    assert C.arange(0, 1, 0.5).dtype == np.float64
    assert C.arange(3).dtype == np.int64


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0, 1, 0), {}, ShapeError, "step must be nonzero"),
    ((0, 5, 0.5), {"dtype": "int64"}, ShapeError, "truncated to 0 for dtype int64"),
    ((0, 5, -1), {}, ShapeError, "inconsistent with the sign of step=-1"),
    ((0, float("inf")), {}, ShapeError, "must be finite"),
    ((0, 1e30), {}, ShapeError, "too many"),
    (("a",), {}, DtypeError, "end must be a real number, got str"),
    ((3,), {"dtype": "bool"}, DtypeError, "dtype bool is not supported"),
    ((3,), {"dtype": "complex64"}, DtypeError, "unknown or unsupported dtype"),
])
def test_arange_errors_are_torchs_types(args, kwargs, error, match):
    with pytest.raises(error, match=match) as ours:
        C.arange(*args, **kwargs)
    if kwargs.get("dtype") not in ("bool", "complex64"):  # (torch: NotImplementedError / a dtype object)
        with pytest.raises(Exception) as theirs:
            torch.arange(*args, dtype=torch_dtype(kwargs.get("dtype")))
        assert isinstance(ours.value, type(theirs.value)), (type(ours.value), type(theirs.value))


# -- linspace --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, dtype", [
    ((0, 1, 5), None), ((0, 1, 7), None), ((3, 10, 1), None), ((3, 10, 0), None), ((-2.5, 7.25, 11), None),
    ((0, 1, 7), "float64"), ((0, 10, 4), "int64"), ((-10, 10, 7), "int64"), ((0.5, 10.9, 4), "int64"),
    ((0, 255, 4), "uint8"), ((1, -1, 9), "float64"), ((0, 1, 6), "float16"),
])
def test_linspace_matches_torch(args, dtype):
    ours = C.linspace(*args, dtype=dtype)
    theirs = torch.linspace(*args, dtype=torch_dtype(dtype))
    assert_like_torch(ours, theirs, exact=ours.dtype.kind != "f")
    if ours.numel() > 1:  # both ends exact
        assert ours.numpy()[0] == theirs.numpy()[0] and ours.numpy()[-1] == theirs.numpy()[-1]


def test_linspace_defaults_and_errors(default_float64):
    assert C.linspace(0, 1, 3).dtype == np.float64  # integer ends still give the default float dtype
    assert C.linspace(0, 1, np.int64(3)).shape == (3,)
    with pytest.raises(ShapeError, match="number of steps must be non-negative, got -1"):
        C.linspace(0, 1, -1)
    with pytest.raises(DtypeError, match="steps must be an int, got float 2.0"):
        C.linspace(0, 1, 2.0)
    with pytest.raises(DtypeError, match="dtype bool is not supported"):
        C.linspace(0, 1, 2, dtype="bool")
    with pytest.raises(TypeError):
        C.linspace(0, 1)  # steps is required, as in torch 2


# -- zeros, ones, full, eye ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 1],), ((),), (0, 4), (np.int64(2),),
                                  (gpucnn.tensor(2),)])
@pytest.mark.parametrize("name", ["zeros", "ones", "rand", "randn"])
def test_sizes_as_varargs_or_one_sequence(name, size):
    torch_size = tuple(torch.tensor(2) if isinstance(s, gpucnn.Tensor) else s for s in size)
    assert getattr(C, name)(*size).shape == tuple(getattr(torch, name)(*torch_size).shape)


@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("dtype", [None, "float64", "int32", "bool", "uint8", "float16"])
def test_zeros_ones_dtype_and_values(name, dtype):
    assert_like_torch(getattr(C, name)(2, 3, dtype=dtype), getattr(torch, name)(2, 3, dtype=torch_dtype(dtype)))


@pytest.mark.parametrize("size, error, match", [
    ((-1,), ShapeError, r"sizes must be non-negative, got size \(-1,\)"),
    ((2.5,), DtypeError, "size must be a tuple of ints, got an element of type float"),
    ((True,), DtypeError, "element of type bool"),
    (((2,), 3), DtypeError, "element of type tuple"),
    ((), DtypeError, r"missing the size: give sizes such as zeros\(2, 3\), or zeros\(\(\)\) for a 0-d tensor"),
])
def test_size_errors_are_torchs_types(size, error, match):
    with pytest.raises(error, match=match) as ours:
        C.zeros(*size)
    with pytest.raises(Exception) as theirs:
        torch.zeros(*size)
    assert isinstance(ours.value, type(theirs.value))


@pytest.mark.parametrize("value, dtype", [(3, None), (True, None), (3.0, None), (2.7, "int64"), (-1, "int8"),
                                          (gpucnn.tensor(3), None), (0.5, "float64")])
def test_full_infers_the_dtype_from_the_value(value, dtype):
    torch_value = torch.tensor(3) if isinstance(value, gpucnn.Tensor) else value
    assert_like_torch(C.full((2, 2), value, dtype=dtype), torch.full((2, 2), torch_value, dtype=torch_dtype(dtype)))


def test_full_errors_and_default_dtype(default_float64):
    assert C.full([3], 1.5).dtype == np.float64
    with pytest.raises(DtypeError, match=r"full: size must be a tuple of ints, got int 2"):
        C.full(2, 3.0)  # as torch: size is one sequence
    with pytest.raises(ArgumentError, match="fill_value 300 cannot be converted to dtype uint8"):
        C.full((2,), 300, dtype="uint8")
    with pytest.raises(ArgumentError, match="fill_value inf cannot be converted to dtype int64"):
        C.full((2,), float("inf"), dtype="int64")
    with pytest.raises(ArgumentError, match="fill_value nan cannot be converted to dtype int32"):
        C.full((2,), float("nan"), dtype="int32")
    with pytest.raises(ArgumentError, match="fill_value 1000000.0 cannot be converted to dtype float16"):
        C.full((2,), 1e6, dtype="float16")
    assert np.isinf(C.full((1,), float("-inf")).item()) and C.full((1,), 5, dtype="bool").item() is True
    with pytest.raises(DtypeError, match="fill_value must be a real number, got complex"):
        C.full((2,), 1j)


@pytest.mark.parametrize("args, dtype", [((3,), None), ((2, 3), None), ((3, 2), "int64"), ((0,), None),
                                         ((2,), "bool")])
def test_eye_matches_torch(args, dtype):
    assert_like_torch(C.eye(*args, dtype=dtype), torch.eye(*args, dtype=torch_dtype(dtype)))


def test_eye_errors():
    with pytest.raises(ShapeError, match="eye: n must be greater or equal to 0, got -1"):
        C.eye(-1)
    with pytest.raises(ShapeError, match="eye: m must be greater or equal to 0, got -1"):
        C.eye(2, -1)
    with pytest.raises(DtypeError, match="eye: n must be an int, got float 2.0"):
        C.eye(2.0)


# -- *_like ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_like_functions_follow_the_input(device):
    x = gpucnn.tensor(np.arange(6, dtype=np.int32).reshape(2, 3), device=device)
    tx = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    for ours, theirs in [(C.zeros_like(x), torch.zeros_like(tx)), (C.ones_like(x), torch.ones_like(tx)),
                         (C.full_like(x, 2.5), torch.full_like(tx, 2.5)),  # truncated to the int dtype
                         (C.zeros_like(x, dtype="float64"), torch.zeros_like(tx, dtype=torch.float64)),
                         (C.full_like(x, 7, dtype="int64"), torch.full_like(tx, 7, dtype=torch.int64))]:
        assert ours.device == device
        assert_like_torch(ours, theirs)
    assert C.ones_like(x, device="cpu").device == "cpu"
    y = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    assert not C.zeros_like(y).requires_grad  # no graph, no inherited requires_grad: torch's rule
    assert C.zeros_like(y, requires_grad=True).requires_grad
    with pytest.raises(ArgumentError, match="zeros_like: input must be a gpucnn Tensor, got ndarray"):
        C.zeros_like(np.zeros(2))


# -- devices and requires_grad ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_every_function_places_its_result_on_the_device(device):
    made = [C.arange(3, device=device), C.linspace(0, 1, 3, device=device), C.zeros(2, device=device),
            C.ones(2, device=device), C.full((2,), 1.0, device=device), C.eye(2, device=device),
            C.rand(2, device=device), C.randn(2, device=device), C.randint(3, (2,), device=device),
            C.randperm(3, device=device)]
    for t in made:
        assert t.device == device and isinstance(t.data, np.ndarray)


def test_requires_grad_makes_leaves_and_needs_a_float_dtype():
    for t in [C.zeros(2, requires_grad=True), C.arange(0.0, 2.0, requires_grad=True),
              C.randn(2, requires_grad=True), C.randint(0, 3, (2,), dtype="float32", requires_grad=True),
              C.linspace(0, 1, 3, requires_grad=True)]:
        assert t.requires_grad and t.is_leaf
    (C.ones(3, requires_grad=True) * 2).sum().backward()  # a leaf that accumulates a gradient
    for make in [lambda: C.arange(3, requires_grad=True), lambda: C.ones(2, dtype="int64", requires_grad=True),
                 lambda: C.randint(5, (3,), requires_grad=True)]:
        with pytest.raises(GpucnnError, match="floating-point"):
            make()


# -- random ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [None, "float64", "float16"])
def test_rand_is_uniform_in_0_1(dtype):
    gpucnn.manual_seed(0)
    x = C.rand(20000, dtype=dtype).numpy()
    assert x.dtype == np.dtype(dtype or "float32")
    assert x.min() >= 0 and x.max() < 1
    assert abs(x.mean() - 0.5) < 0.01 and abs(x.var() - 1 / 12) < 0.005
    assert len(np.unique(x)) > 1000


@pytest.mark.parametrize("dtype", [None, "float64", "float16"])
def test_randn_is_standard_normal(dtype):
    gpucnn.manual_seed(0)
    x = C.randn(20000, dtype=dtype).numpy().astype(np.float64)
    assert abs(x.mean()) < 0.03 and abs(x.std() - 1) < 0.03
    assert 0.30 < (x > 0.5).mean() < 0.32  # P(Z > 0.5) = 0.3085


def test_random_functions_are_reproducible_under_manual_seed():
    def draw():
        return [C.rand(3, 2), C.randn(4), C.randint(0, 100, (5,)), C.randperm(10)]

    gpucnn.manual_seed(123)
    first = [t.numpy() for t in draw()]
    gpucnn.manual_seed(123)
    again = [t.numpy() for t in draw()]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(draw()[1].numpy(), first[1])  # the generator moves on


def test_random_float_dtypes_only():
    for f in (C.rand, C.randn):
        with pytest.raises(DtypeError, match="must be a floating-point dtype"):
            f(2, dtype="int64")


@pytest.mark.parametrize("args, kwargs", [
    ((10, (2000,)), {}), ((3, 10, (2000,)), {}), ((), {"high": 4, "size": (2000,)}), ((-5, 5, [2000]), {"dtype": "int8"}),
    ((0, 2, (2000,)), {"dtype": "bool"}), ((5, (2000,)), {"dtype": "float32"}), ((np.int64(5), (2000,)), {}),
])
def test_randint_overloads_range_and_dtype(args, kwargs):
    gpucnn.manual_seed(0)
    ours = C.randint(*args, **kwargs)
    theirs = torch.randint(*args, **{k: torch_dtype(v) if k == "dtype" else v for k, v in kwargs.items()})
    assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == torch_dtype_name(theirs)
    values = ours.numpy().astype(np.int64)
    t_values = theirs.numpy().astype(np.int64)
    assert values.min() == t_values.min() and values.max() == t_values.max()  # 2000 draws hit every value
    assert len(np.unique(values)) == len(np.unique(t_values))


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((5, 3, (2,)), {}, ArgumentError, "low must be less than high, got low=5 >= high=3"),
    ((0, 300, (3,)), {"dtype": "uint8"}, ArgumentError, r"range \[0, 299\] is out of the range of dtype uint8"),
    ((0, 3, (3,)), {"dtype": "bool"}, ArgumentError, "out of the range of dtype bool"),
    ((5, 3), {}, DtypeError, r"expected randint\(high, size\) or randint\(low, high, size\).*size=None"),
    ((5,), {}, DtypeError, r"expected randint\(high, size\)"),
    ((0.5, 5, (3,)), {}, DtypeError, "low must be an int, got float"),
])
def test_randint_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        C.randint(*args, **kwargs)


def test_randperm_is_a_permutation():
    gpucnn.manual_seed(0)
    for n, dtype in [(0, None), (1, None), (50, None), (50, "float32"), (200, "uint8")]:
        p = C.randperm(n, dtype=dtype)
        assert str(p.dtype) == torch_dtype_name(torch.randperm(n, dtype=torch_dtype(dtype)))
        np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(n))
    assert not np.array_equal(C.randperm(50).numpy(), np.arange(50))
    with pytest.raises(ShapeError, match="n must be non-negative, got -1"):
        C.randperm(-1)
    with pytest.raises(ArgumentError, match=r"values \[0, 299\] is out of the range of dtype uint8"):
        C.randperm(300, dtype="uint8")
    with pytest.raises(ArgumentError, match="out of the range of dtype float16"):
        C.randperm(3000, dtype="float16")
    assert C.randperm(2049, dtype="float16").shape == (2049,)  # torch's limit for half: 2049
    with pytest.raises(DtypeError, match="dtype bool is not supported"):
        C.randperm(2, dtype="bool")


# -- from_numpy ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32, np.int8, np.uint8,
                                   np.bool_])
def test_from_numpy_shares_memory(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = C.from_numpy(a)
    assert t.device == "cpu" and t.dtype == a.dtype and t.shape == (2, 3)
    assert np.shares_memory(t.data, a)
    a[0, 0] = 1
    t.data[1, 2] = 0
    assert t.numpy()[0, 0] == 1 and a[1, 2] == 0
    assert C.from_numpy(np.array(3.0)).shape == ()


@pytest.mark.parametrize("value, match, torch_rejects", [
    ([1, 2], "expected a NumPy ndarray, got list", True),
    (np.float64(3.0), "expected a NumPy ndarray, got float64", True),
    (np.array([1, None]), "cannot convert an ndarray of dtype dtype\\('O'\\)", True),
    (np.zeros(2, ">f4"), "native byte order", True),
    (np.zeros(2, np.complex64), "complex64", False),  # (torch holds complex numbers, gpucnn does not)
])
def test_from_numpy_rejects_what_it_cannot_hold(value, match, torch_rejects):
    with pytest.raises(DtypeError, match=match):
        C.from_numpy(value)
    if torch_rejects:
        with pytest.raises((TypeError, ValueError)):  # (byte order: torch's is a ValueError)
            torch.from_numpy(value)
