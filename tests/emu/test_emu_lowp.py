"""cuda_fp16.h / cuda_bf16.h on the emulator: round-to-nearest-even conversions checked against NumPy's
float16 and ml_dtypes' bfloat16 (every bit pattern to float; ties, subnormals, overflow, Inf and NaN from
float), arithmetic and comparisons in kernels, and __half / __nv_bfloat16 kernel arguments."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from emu_testing import kernel
from gpucnn import emu

BF16 = ml_dtypes.bfloat16
rng = np.random.default_rng(16)
FORMATS = [("half", np.float16), ("bfloat16", BF16)]


def midpoints(dtype) -> np.ndarray:
    """Every value exactly halfway between two neighbouring finite values of `dtype` (exact in float32)."""
    finite = np.arange(0, 0x7c00 if dtype is np.float16 else 0x7f80, dtype=np.uint16).view(dtype)
    v = finite.astype(np.float64)
    mids = (v[:-1] + v[1:]) / 2
    return np.concatenate([mids, -mids]).astype(np.float32)


def float_inputs(dtype) -> np.ndarray:
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.996, 65520, -65520, 2 ** -24, 2 ** -25,
                        2 ** -25 * 1.0000001, 2 ** -26, 1e-45, 3.4e38, -3.4e38], np.float32)
    random_bits = rng.integers(0, 2 ** 32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    near_one = (1 + rng.standard_normal(2000) * 1e-3).astype(np.float32)
    return np.concatenate([special, random_bits, near_one, midpoints(dtype)])


@pytest.mark.parametrize("name,dtype", FORMATS)
def test_conversions_match_numpy_and_ml_dtypes(name, dtype):
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    x = float_inputs(dtype)
    to_float = np.zeros(bits.size, np.float32)
    from_float = np.zeros(x.size, np.uint16)
    n = max(bits.size, x.size)
    kernel("lowp.cu", f"{name}_conversions")(((n + 255) // 256,), (256,),
                                            (bits, to_float, x, from_float, np.int32(bits.size), np.int32(x.size)))
    expect = bits.view(dtype).astype(np.float32)  # exact
    nan = np.isnan(expect)
    np.testing.assert_array_equal(to_float.view(np.uint32)[~nan], expect.view(np.uint32)[~nan])
    assert np.isnan(to_float[nan]).all()
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = x.astype(dtype).view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(from_float[~nan], rounded[~nan])
    assert (from_float[nan] == 0x7fff).all()  # CUDA's canonical NaN


@pytest.mark.parametrize("name,dtype", FORMATS)
def test_arithmetic_and_comparisons(order, name, dtype):
    n = 300
    x = (rng.standard_normal(n) * 8).astype(dtype)
    x[:3] = [0.5, -2.0, 3.0]
    s = dtype(3.0)
    y = np.zeros(n, dtype)
    flags = np.zeros(n, np.int32)
    pair = np.zeros(2 * n, np.float32)
    kernel("lowp.cu", f"{name}_arith")((2,), (256,), (x, y, flags, pair, s, np.int32(n)))
    # NumPy's float16 and ml_dtypes' bfloat16 round every operation to the type, as the kernel does.
    np.testing.assert_array_equal(y.view(np.uint16), ((x * s + x) - s).view(np.uint16))
    np.testing.assert_array_equal(flags, (x < s) | ((x == s) << 1) | ((x >= s) << 2))
    np.testing.assert_array_equal(pair[0::2], (x * s + x).astype(np.float32))
    np.testing.assert_array_equal(pair[1::2], (s * x + x).astype(np.float32))


def test_half2_parameter_takes_float16_pairs():
    a, b = np.float32([1.5, -2.25, 65519]), np.float32([0.1, 7, -1e-8])
    out = np.zeros(6, np.float16)
    kernel("lowp.cu", "pack_half2")((1,), (32,), (a, b, out, np.int32(3)))
    np.testing.assert_array_equal(out, np.stack([a, b], 1).astype(np.float16).ravel())


def test_low_precision_arguments_are_checked():
    f = kernel("lowp.cu", "half_arith")
    x16 = np.ones(4, np.float16)
    good = (x16, np.zeros(4, np.float16), np.zeros(4, np.int32), np.zeros(8, np.float32), np.float16(1), np.int32(4))
    f((1,), (32,), good)
    with pytest.raises(emu.ArgumentTypeError, match=r"args\[0\] \(const __half\* __restrict__ x\) needs an array of "
                                                    r"dtype float16, got dtype float32"):
        f((1,), (32,), (np.ones(4, np.float32),) + good[1:])
    with pytest.raises(emu.ArgumentTypeError, match=r"args\[4\] \(__half s\) needs a numpy\.float16 scalar, got "
                                                    r"numpy\.float32"):
        f((1,), (32,), good[:4] + (np.float32(1),) + good[5:])
    g = kernel("lowp.cu", "bfloat16_arith")
    xb = np.ones(4, BF16)
    args = (xb, np.zeros(4, BF16), np.zeros(4, np.int32), np.zeros(8, np.float32))
    g((1,), (32,), args + (BF16(2), np.int32(4)))
    with pytest.raises(emu.ArgumentTypeError, match=r"ml_dtypes\.bfloat16 scalar, got Python float 2\.0.*"
                                                    r"ml_dtypes\.bfloat16\(2\.0\)"):
        g((1,), (32,), args + (2.0, np.int32(4)))
    with pytest.raises(emu.ArgumentTypeError, match="needs an array of dtype bfloat16, got dtype float16"):
        g((1,), (32,), (x16,) + args[1:] + (BF16(2), np.int32(4)))


def test_half_types_need_their_header():
    src = 'extern "C" __global__ void k(__half* x) { x[0] = __float2half(1.0f); }\n'
    with pytest.raises(emu.CompileError, match="__half"):
        emu.RawModule(code=src).compile()
