"""Inline-PTX instructions on the emulator, each against a reference written here from the PTX ISA
(sections cited per test): small-integer inputs, exact equality, in the three thread orders."""
from __future__ import annotations

import numpy as np
import pytest

from emu_testing import kernel
from gpucnn import emu

rng = np.random.default_rng(14)
LANES = np.arange(32)
G, T = LANES >> 2, LANES & 3  # groupID, threadID_in_group (PTX ISA 9.7.14.5.7)


def f32_bits(x) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.uint32)


def pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two 16-bit patterns in one .b32 register, the lower-indexed element in the low half."""
    return lo.astype(np.uint32) | (hi.astype(np.uint32) << 16)


# ---------------------------------------------------------------- mma.sync (PTX ISA 9.7.14.5.14)

def tf32_fragments(A, B, C):
    """m16n8k8 .tf32 (PTX ISA 9.7.14.5.7): row = g for a0,a2 / g+8 for a1,a3; col = t for a0,a1 / t+4
    for a2,a3; b0 at (t, g), b1 at (t+4, g); C: row g for c0,c1 / g+8 for c2,c3, col 2t + (i & 1)."""
    a = np.stack([A[G + 8 * (i & 1), T + 4 * (i >> 1)] for i in range(4)], 1)
    b = np.stack([B[T + 4 * i, G] for i in range(2)], 1)
    return f32_bits(a), f32_bits(b), c_fragments(C)


def c_fragments(C):
    return np.stack([C[G + 8 * (i >> 1), 2 * T + (i & 1)] for i in range(4)], 1).astype(np.float32)


def d_matrix(d):
    D = np.zeros((16, 8), np.float32)
    for i in range(4):
        D[G + 8 * (i >> 1), 2 * T + (i & 1)] = d[:, i]
    return D


def f16_fragments(A, B, C, to_bits):
    """m16n8k16 .f16/.bf16 (PTX ISA 9.7.14.5.8): a_i at row g for i in {0,1,4,5}, else g+8; col
    2t + (i & 1), +8 for i >= 4. b_i at row 2t + (i & 1), +8 for i >= 2; col g. Register r holds
    elements 2r (low half) and 2r+1 (high half)."""
    def a_elem(i):
        row = G + (0 if i in (0, 1, 4, 5) else 8)
        col = 2 * T + (i & 1) + (8 if i >= 4 else 0)
        return to_bits(A[row, col])

    def b_elem(i):
        return to_bits(B[2 * T + (i & 1) + (8 if i >= 2 else 0), G])

    a = np.stack([pack16(a_elem(2 * r), a_elem(2 * r + 1)) for r in range(4)], 1)
    b = np.stack([pack16(b_elem(2 * r), b_elem(2 * r + 1)) for r in range(2)], 1)
    return a, b, c_fragments(C)


def run_mma(kind, a, b, c):
    d = np.zeros((32, 4), np.float32)
    kernel("tensor_core.cu", "mma_regs")((1,), (32,), (a, b, c, d, np.int32(kind)))
    return d_matrix(d)


def small_ints(shape, lo=-4, hi=5):
    return rng.integers(lo, hi, shape).astype(np.float64)


@pytest.mark.parametrize("kind", [0, 3])
def test_mma_m16n8k8_tf32(order, kind):
    A, B, C = small_ints((16, 8)), small_ints((8, 8)), small_ints((16, 8), -50, 50)
    a, b, c = tf32_fragments(A, B, C)
    np.testing.assert_array_equal(run_mma(kind, a, b, c), A @ B + C)


@pytest.mark.parametrize("kind,to_bits", [(1, lambda x: np.asarray(x, np.float16).view(np.uint16)),
                                          (2, lambda x: f32_bits(x) >> 16)], ids=["f16", "bf16"])
def test_mma_m16n8k16_half(order, kind, to_bits):
    A, B, C = small_ints((16, 16)), small_ints((16, 8)), small_ints((16, 8), -50, 50)
    A[3, 5], B[5, 2] = 0.5, -0.25  # halves and quarters are exact in both formats
    a, b, c = f16_fragments(A, B, C, to_bits)
    np.testing.assert_array_equal(run_mma(kind, a, b, c), A @ B + C)


def test_mma_tf32_ignores_the_low_13_bits():
    # 1 + 2^-11 is not a TF32 value: the hardware reads the top 19 bits, so it counts as 1 (truncation).
    A = np.ones((16, 8))
    B = np.full((8, 8), 1 + 2.0 ** -11)
    a, b, c = tf32_fragments(A, B, np.zeros((16, 8)))
    np.testing.assert_array_equal(run_mma(0, a, b, c), np.full((16, 8), 8.0))


def test_mma_needs_the_whole_warp():
    f = kernel("tensor_core.cu", "mma_divergent")
    d = np.zeros(64, np.float32)
    f((1,), (64,), (d, np.int32(0)))
    np.testing.assert_array_equal(d, 8.0)  # A = B = ones, K = 8
    with pytest.raises(emu.DeadlockError, match=r"mma\.sync\.aligned\.m16n8k8.*tensor_core\.cu:\d+"):
        f((1,), (64,), (d, np.int32(1)))
    with pytest.raises(emu.WarpSyncError, match="needs all 32 lanes of a warp.*only 16"):
        f((1,), (48,), (np.zeros(48, np.float32), np.int32(0)))


def test_mma_at_two_different_instructions_is_an_error():
    with pytest.raises(emu.WarpSyncError, match=r"mismatch.*tensor_core\.cu:(\d+).*tensor_core\.cu:(?!\1)\d+"):
        kernel("tensor_core.cu", "mma_two_sites")((1,), (32,), (np.zeros(32, np.float32),))


# ---------------------------------------------------------------- cvt.rna.tf32.f32 (PTX ISA 9.7.9.21)

def rna_tf32_reference(x: np.ndarray) -> np.ndarray:
    """Round to 10 mantissa bits, to nearest, ties away from zero, computed on exact float64 values."""
    x64 = x.astype(np.float64)
    out = np.empty_like(x64)
    finite = np.isfinite(x64) & (x64 != 0)
    mag = np.abs(x64[finite])
    exp = np.maximum(np.floor(np.log2(mag)), -126)  # TF32 has FP32's exponent range and subnormals
    exp = np.where(2.0 ** exp > mag, exp - 1, exp)   # log2 rounding at exact powers of two
    exp = np.where(2.0 ** (exp + 1) <= mag, exp + 1, exp)
    exp = np.maximum(exp, -126)
    quantum = 2.0 ** (exp - 10)
    out[finite] = np.sign(x64[finite]) * np.floor(mag / quantum + 0.5) * quantum
    out[~finite] = x64[~finite]
    with np.errstate(over="ignore"):
        return out.astype(np.float32)


def test_cvt_rna_tf32(order):
    u = np.concatenate([
        rng.integers(0, 2 ** 32, 3000, dtype=np.uint64),
        [0x3f801000, 0x3f803000, 0xbf801000, 0x3f800fff, 0x3f801fff,  # ties away, just below and above ties
         0x00000001, 0x00001000, 0x00000fff, 0x80001000, 0x007ff000,  # subnormals
         0x7f7ff000, 0x7f7fefff, 0xff7ff000, 0x7f800000, 0xff800000, 0, 0x80000000,
         0x7fc00000, 0x7f800001, 0xffffffff, 0x7fffffff]]).astype(np.uint32)
    x = u.view(np.float32)
    y, z = np.zeros_like(u), np.zeros_like(u)
    kernel("tensor_core.cu", "cvt_tf32")((12,), (256,), (x, y, z, np.int32(x.size)))
    nan = np.isnan(x)
    assert (y[nan] == 0x7fffffff).all() and (z[nan] == 0x7fffffff).all()  # canonical NaN
    np.testing.assert_array_equal(y[~nan], f32_bits(rna_tf32_reference(x[~nan])))
    assert ((y[~nan] & 0x1fff) == 0).all()
    # .satfinite: Inf and overflow saturate to the largest finite TF32 value, sign kept.
    expect = y[~nan].view(np.float32).copy()
    max_tf32 = np.uint32(0x7f7fe000).view(np.float32)
    expect[np.isinf(expect)] = np.copysign(max_tf32, expect[np.isinf(expect)])
    np.testing.assert_array_equal(z[~nan], f32_bits(expect))


# ---------------------------------------------------------------- ldmatrix (PTX ISA 9.7.14.5.15)

ROW_PITCH = 16  # elements: rows padded to 32 bytes, so consecutive rows are not contiguous


def ldmatrix_reference(tile, rows, num, trans):
    """Lanes 8j..8j+7 give the row addresses of matrix j; lane l receives in register j the pair
    (row g, columns 2t, 2t+1), or with .trans (rows 2t, 2t+1, column g), low element in the low half."""
    out = np.zeros((32, 4), np.uint32)
    for j in range(num):
        M = np.stack([tile[rows[8 * j + r]:rows[8 * j + r] + 8] for r in range(8)])  # 8 x 8
        if trans:
            M = M.T
        out[:, j] = pack16(M[G, 2 * T], M[G, 2 * T + 1])
    return out


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("trans", [0, 1])
def test_ldmatrix(order, num, trans):
    nrows = 40
    tile = rng.integers(0, 2 ** 16, nrows * ROW_PITCH).astype(np.uint16)
    rows = (rng.permutation(nrows)[:32] * ROW_PITCH).astype(np.int32)
    rows[8 * num:] = -1  # the addresses of lanes the variant does not use are ignored: garbage here
    out = np.zeros((32, 4), np.uint32)
    kernel("tensor_core.cu", "ldmatrix_regs")((1,), (32,), (tile, rows, out, np.int32(tile.size),
                                                            np.int32(2 * num + trans)), shared_mem=tile.nbytes)
    np.testing.assert_array_equal(out, ldmatrix_reference(tile, rows, num, trans))


def test_ldmatrix_address_errors():
    f = kernel("tensor_core.cu", "ldmatrix_shifted")
    out = np.zeros(32, np.uint32)
    f((1,), (32,), (out, np.int32(16)))  # aligned, one row further: fine
    first = 16 + 16 * G + 4 * T  # tile[i] = i: lane l gets bytes first..first+3 of row g (x1, no .trans)
    np.testing.assert_array_equal(out, first | (first + 1) << 8 | (first + 2) << 16 | (first + 3) << 24)
    with pytest.raises(emu.OutOfBoundsError, match=r"ldmatrix row.*not aligned to 16 bytes.*tensor_core\.cu:\d+"):
        f((1,), (32,), (out, np.int32(8)))
    with pytest.raises(emu.OutOfBoundsError, match=r"ldmatrix row.*static __shared__ memory, which holds 160"):
        f((1,), (32,), (out, np.int32(48)))  # the last rows run past the end of the array
    rows = np.zeros(32, np.int32)
    rows[5] = -1  # lane 5 supplies a garbage address to .x4
    with pytest.raises(emu.OutOfBoundsError, match="outside every shared-memory region"):
        kernel("tensor_core.cu", "ldmatrix_regs")((1,), (32,), (np.zeros(64, np.uint16), rows,
                                                                np.zeros((32, 4), np.uint32), np.int32(64),
                                                                np.int32(8)), shared_mem=128)


def test_cvta_of_a_global_pointer_is_an_error():
    with pytest.raises(emu.OutOfBoundsError, match=r"__cvta_generic_to_shared.*not in shared memory"):
        kernel("tensor_core.cu", "cvta_global")((1,), (1,), (np.zeros(4, np.float32), np.zeros(1, np.uint32)))


# ---------------------------------------------------------------- cp.async (PTX ISA 9.7.9.25.3)

@pytest.mark.parametrize("src_bytes", [2 * 8 * 16, 8 * 16 + 44, 60])
def test_cp_async_lands_at_the_wait(order, src_bytes):
    nt = 8
    src = (np.arange(8 * nt) + 1).astype(np.float32)
    outs = [np.zeros(4 * nt, np.float32) for _ in range(4)]
    kernel("tensor_core.cu", "cp_async_stages")((1,), (nt,), (src, np.int32(src_bytes), *outs),
                                                 shared_mem=2 * nt * 16)
    early, mid0, mid1, late = outs
    # Global bytes past src-size are not read; shared memory receives zeros for them.
    staged = np.where(np.arange(src.size) < src_bytes // 4, src, 0)
    poison = np.full(4 * nt, 0xFFFFFFFF, np.uint32)
    np.testing.assert_array_equal(early.view(np.uint32), poison)  # nothing lands before a wait
    np.testing.assert_array_equal(mid0, staged[:4 * nt])           # wait_group 1: the older group is done
    np.testing.assert_array_equal(mid1.view(np.uint32), poison)    # ... the newer one is still pending
    np.testing.assert_array_equal(late, np.roll(staged[:4 * nt], -4))


@pytest.mark.parametrize("skip", [-1, 2])
def test_cp_async_ca_sizes_offsets_and_predicates(order, skip):
    src = (np.arange(16) + 1).astype(np.float32)
    out = np.full(16, -1, np.float32)
    f = kernel("tensor_core.cu", "cp_async_small")
    f((1,), (4,), (src, out, np.int32(skip), np.int32(1)))
    expect = src.copy()
    if skip >= 0:
        expect[4 * skip + 2:4 * skip + 4] = 0  # the predicated copy did not run: the zeros written first stay
    np.testing.assert_array_equal(out, expect)
    # Copies not committed to a group are not waited for by wait_group (PTX ISA 9.7.9.25.3.3).
    f((1,), (4,), (src, out, np.int32(skip), np.int32(0)))
    np.testing.assert_array_equal(out, 0)


def test_cp_async_source_out_of_bounds():
    f = kernel("tensor_core.cu", "cp_async_overrun")
    f((1,), (1,), (np.zeros(8, np.float32), np.int32(4)))
    with pytest.raises(emu.OutOfBoundsError, match=r"read of args\[0\].*element 8\b.*past its end"):
        f((1,), (1,), (np.zeros(8, np.float32), np.int32(8)))


def test_compiler_barrier_asm(order):
    x = np.arange(4, dtype=np.float32)
    kernel("tensor_core.cu", "asm_barrier")((1,), (4,), (x,))
    np.testing.assert_array_equal(x, (np.arange(4) + 1) * 2)


# ---------------------------------------------------------------- what the emulator refuses

@pytest.mark.parametrize("body,match", [
    ('asm volatile("mov.u32 %0, %%laneid;" : "=r"(r));', r"k\.cu:3: inline PTX `mov\.u32 %0, %laneid`: "
                                                          r"instruction 'mov\.u32' is not supported"),
    ('asm volatile("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "r"(r));', r'k\.cu:3: .*%1 needs constraint "f"'),
    ('asm volatile("cvt.rna.tf32.f32 %0, %1;" : "=h"(h) : "f"(x));', r"k\.cu:3: asm operand 0 has constraint '=h'"),
    ('asm volatile("cp.async.cg.shared.global [%0], [%1], 8;" :: "r"(r), "l"(p));', r"cp-size must be 16 for \.cg"),
    ('asm volatile("cp.async.wait_group %0;" :: "r"(r));', r'%0 needs constraint "n"'),
    ('asm volatile(MISSING "x;");', r"must be string literals"),
])
def test_unsupported_asm_is_a_compile_error(body, match):
    src = ('extern "C" __global__ void k(float* p, float x) {\n  unsigned r = 0; unsigned short h;\n  ' + body +
           '\n  p[0] = r + h;\n}\n')
    with pytest.raises(emu.CompileError, match=match):
        emu.RawModule(code=src, filename="k.cu").compile()


def test_asm_from_a_macro_and_an_included_header(tmp_path):
    (tmp_path / "ptx.cuh").write_text(
        '#define TF32(d, x) asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(d) : "f"(x))\n'
        '#ifdef USE_BAD\n'
        '__device__ inline unsigned bad(float x) {\n'
        '  unsigned r; asm("bogus.op %0, %1;" : "=r"(r) : "f"(x)); return r; }\n'
        '#endif\n')
    (tmp_path / "k.cu").write_text('#include "ptx.cuh"\n'
                                   'extern "C" __global__ void k(const float* x, unsigned* y) { TF32(y[0], x[0]); }\n'
                                   '#ifdef USE_BAD\nextern "C" __global__ void k2(unsigned* y) { y[0] = bad(1.0f); }\n'
                                   '#endif\n')
    y = np.zeros(1, np.uint32)
    emu.RawModule(path=tmp_path / "k.cu").get_function("k")((1,), (1,), (np.float32([1 + 2 ** -11 * 1.5]), y))
    assert y[0] == 0x3f802000  # 1 + 0.75 ulp of TF32 rounds up to 1 + 2^-10
    with pytest.raises(emu.CompileError, match=r"ptx\.cuh:4: inline PTX `bogus\.op %0, %1`"):
        emu.RawModule(path=tmp_path / "k.cu", options=("-DUSE_BAD",)).compile()
