"""Correctness of small kernels on the emulator: indexing, shared memory, barriers, warp ops, atomics,
float64 and #define-specialised kernels. Each runs in the three thread orders."""
from __future__ import annotations

import numpy as np
import pytest

from emu_testing import kernel
from gpucnn import emu

rng = np.random.default_rng(0)


@pytest.mark.parametrize("n", [1, 255, 1001])
def test_vector_add_odd_sizes(order, n):
    f = kernel("vector_add.cu", "vector_add")
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    # Guard elements around c show the bounds check keeps the extra threads of the last block out.
    c = np.full(n + 2, -7.0, np.float32)
    out = c[1:-1]
    assert out.flags.c_contiguous
    f(((n + 127) // 128,), (128,), (a, b, out, np.int32(n)))
    np.testing.assert_array_equal(out, a + b)
    assert c[0] == c[-1] == -7.0


def test_grid_of_zero_blocks_runs_one_block_like_cupy():
    # CuPy launches max(1, d) blocks per dimension: an empty problem still runs one block.
    f = kernel("vector_add.cu", "vector_add")
    z = np.zeros(0, np.float32)
    f((0,), (128,), (z, z, z, np.int32(0)))


def test_same_array_twice_shares_memory():
    # In place (c is a): both arguments must see one buffer, as on a GPU.
    f = kernel("vector_add.cu", "vector_add")
    a = np.arange(10, dtype=np.float32)
    b = np.ones(10, np.float32)
    f((1,), (32,), (a, b, a, np.int32(10)))
    np.testing.assert_array_equal(a, np.arange(10) + 1)


def test_int_grid_and_block_are_accepted():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(40, np.float32)
    c = np.zeros(40, np.float32)
    f(2, 32, (a, a, c, np.int32(40)))
    np.testing.assert_array_equal(c, 2)


def test_3d_grid_and_blocks(order):
    f = kernel("indexing.cu", "index_3d")
    nx, ny, nz = 37, 11, 5
    out = np.full((nz, ny, nx), -1, np.int32)
    f(((nx + 7) // 8, (ny + 3) // 4, (nz + 1) // 2), (8, 4, 2), (out, np.int32(nx), np.int32(ny), np.int32(nz)))
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    np.testing.assert_array_equal(out, x + 1000 * y + 1000000 * z)


def test_2d_launch_dims_visible_to_kernel():
    f = kernel("indexing.cu", "launch_dims")
    dims = np.zeros(6, np.uint32)
    f((3, 2), (5, 6, 7), (dims,))
    np.testing.assert_array_equal(dims, [3, 2, 1, 5, 6, 7])


@pytest.mark.parametrize("ctype,dtype", [("float", np.float32), ("double", np.float64)])
def test_define_specialised_axpy(order, ctype, dtype):
    f = kernel("axpy.cu", "axpy", f"-DT={ctype}", "-std=c++17", "--gpu-architecture=sm_90", "-lineinfo")
    x = rng.standard_normal(1000).astype(dtype)
    y = rng.standard_normal(1000).astype(dtype)
    expected = dtype(2.5) * x + y
    f((3,), (128,), (np.int32(1000), dtype(2.5), x, y))  # grid-stride loop: 384 threads for 1000 items
    np.testing.assert_array_equal(y, expected)  # one multiply and one add: exactly NumPy's rounding


def test_define_flag_changes_the_kernel():
    f = kernel("axpy.cu", "axpy", "-DT=double", "-DNEGATE")
    x = np.ones(8)
    y = np.zeros(8)
    f((1,), (32,), (np.int32(8), np.float64(3), x, y))
    np.testing.assert_array_equal(y, -3)


@pytest.mark.parametrize("ctype,dtype,rtol", [("float", np.float32, 1e-6), ("double", np.float64, 1e-14)])
def test_overloaded_math_keeps_precision(ctype, dtype, rtol):
    # exp/sqrt/tanh/max on float must stay float (CUDA's overloads), on double stay double.
    f = kernel("axpy.cu", "math_mix", f"-DT={ctype}")
    x = rng.standard_normal(500).astype(dtype)
    y = np.zeros(500, dtype)
    f((4,), (128,), (np.int32(500), x, y))
    expected = np.exp(x) * np.sqrt(np.abs(x)) + np.tanh(x) + np.maximum(x, 0)
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=rtol)


def test_block_reduction_with_barriers_is_correct(order):
    f = kernel("block_sum.cu", "block_sum")
    x = rng.random(1000).astype(np.float32)
    partial = np.zeros(4, np.float32)
    f((4,), (256,), (x, partial, np.int32(1000)))
    expected = np.pad(x, (0, 24)).reshape(4, 256).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(partial, expected, rtol=1e-5)


def test_block_reduction_without_barriers_is_caught():
    # The same kernel with its __syncthreads() removed reads shared memory before it is written: the
    # poisoned (NaN) shared memory and the thread orders must expose it in at least one order.
    f = kernel("block_sum.cu", "block_sum", "-DDROP_SYNC")
    x = rng.random(1000).astype(np.float32)
    expected = np.pad(x, (0, 24)).reshape(4, 256).sum(axis=1, dtype=np.float64)
    wrong = []
    for o in emu.ORDERS:
        with emu.thread_order(o, seed=1234):
            partial = np.zeros(4, np.float32)
            f((4,), (256,), (x, partial, np.int32(1000)))
        wrong.append(not np.allclose(partial, expected, rtol=1e-5))
    assert any(wrong)
    assert wrong[0]  # forward order: thread 0 reads s[128] before thread 128 has written it -> NaN


def test_dynamic_shared_memory(order):
    f = kernel("block_sum.cu", "reverse_blocks")
    x = rng.standard_normal(1000).astype(np.float32)
    y = np.zeros_like(x)
    f((4,), (250,), (x, y), shared_mem=250 * 4)
    np.testing.assert_array_equal(y, x.reshape(4, 250)[:, ::-1].ravel())


def test_static_shared_memory_is_poisoned_with_nan():
    f = kernel("block_sum.cu", "read_uninitialised_shared")
    out = np.zeros(64, np.float32)
    f((1,), (64,), (out,))
    assert np.isnan(out).all()


def test_syncthreads_count_and_or(order):
    f = kernel("block_sum.cu", "barrier_votes")
    flags = (np.arange(64) % 3 == 0).astype(np.int32)
    out = np.zeros(3, np.int32)
    f((1,), (64,), (flags, out))
    np.testing.assert_array_equal(out, [flags.sum(), 0, 1])


def test_warp_shuffle_down_reduction(order):
    f = kernel("warp_ops.cu", "warp_sum_down")
    x = rng.standard_normal(256).astype(np.float32)
    sums = np.zeros(8, np.float32)
    f((2,), (128,), (x, sums))
    np.testing.assert_allclose(sums, x.reshape(8, 32).sum(axis=1), rtol=1e-5, atol=1e-5)


def test_warp_shuffle_xor_butterfly_float64(order):
    f = kernel("warp_ops.cu", "warp_sum_xor")
    x = rng.standard_normal(256)
    out = np.zeros(256)
    f((2,), (128,), (x, out))
    np.testing.assert_allclose(out, np.repeat(x.reshape(8, 32).sum(axis=1), 32), rtol=1e-13)


def test_warp_shuffle_up_scan_and_broadcast(order):
    f = kernel("warp_ops.cu", "warp_scan")
    x = rng.integers(-5, 5, 256).astype(np.int32)
    scan = np.zeros(256, np.int32)
    bcast = np.zeros(256, np.int32)
    f((2,), (128,), (x, scan, bcast))
    np.testing.assert_array_equal(scan, np.cumsum(x.reshape(8, 32), axis=1).ravel())
    np.testing.assert_array_equal(bcast, np.repeat(x.reshape(8, 32)[:, 5], 32))


def test_warp_ballot_any_all(order):
    f = kernel("warp_ops.cu", "warp_vote")
    x = rng.standard_normal(256).astype(np.float32)
    x[64:96] = 1.0  # warp 2: all positive
    x[96:128] = -1.0  # warp 3: none
    ballots = np.zeros(8, np.uint32)
    any_all = np.zeros(16, np.int32)
    f((2,), (128,), (x, ballots, any_all))
    bits = (x.reshape(8, 32) > 0).astype(np.uint64) << np.arange(32, dtype=np.uint64)
    np.testing.assert_array_equal(ballots, bits.sum(axis=1).astype(np.uint32))
    pos = x.reshape(8, 32) > 0
    np.testing.assert_array_equal(any_all.reshape(8, 2), np.stack([pos.any(1), pos.all(1)], 1).astype(np.int32))


def test_warp_subgroups_reduce_match(order):
    f = kernel("warp_ops.cu", "warp_extras")
    x = rng.integers(-100, 100, 64).astype(np.int32)
    outs = [np.zeros(64, np.int32) for _ in range(3)] + [np.zeros(64, np.uint32) for _ in range(2)]
    f((1,), (64,), (x, *outs))
    down8, idx8, red, match, active = outs
    lane = np.arange(64) % 32
    i = np.arange(64)
    np.testing.assert_array_equal(down8, np.where(lane % 8 + 3 < 8, x[np.minimum(i + 3, 63)], x))
    np.testing.assert_array_equal(idx8, x[i // 8 * 8 + 2])
    np.testing.assert_array_equal(red, np.repeat(x.reshape(2, 32).sum(axis=1), 32))
    key = (x & 3).reshape(2, 32)
    expected = [sum(1 << k for k in range(32) if key[w, k] == key[w, l]) for w in range(2) for l in range(32)]
    np.testing.assert_array_equal(match, np.array(expected, np.uint64).astype(np.uint32))
    np.testing.assert_array_equal(active, 0xFFFFFFFF)


def test_atomics_from_many_threads(order):
    f = kernel("atomics.cu", "histogram")
    n = 5000
    bins = rng.integers(0, 10, n).astype(np.int32)
    x = rng.random(n).astype(np.float32)
    hist = np.zeros(10, np.int32)
    total = np.zeros(1, np.float32)
    max_bin = np.zeros(1, np.int32)
    count = np.zeros(1, np.uint32)
    f(((n + 127) // 128,), (128,), (bins, x, np.int32(n), hist, total, max_bin, count))
    np.testing.assert_array_equal(hist, np.bincount(bins, minlength=10))
    # 5000 float32 additions in some order: each rounding errs by at most half an ulp of the running sum.
    assert abs(total[0] - x.sum(dtype=np.float64)) <= n * np.spacing(np.float32(x.sum()))
    assert max_bin[0] == bins.max() and count[0] == n


def test_atomic_cas_loop(order):
    f = kernel("atomics.cu", "cas_add")
    x = rng.random(3000)
    total = np.zeros(1)
    f((24,), (128,), (x, np.int32(3000), total))
    np.testing.assert_allclose(total[0], x.sum(), rtol=1e-12)


def test_intrinsics_sample():
    f = kernel("intrinsics.cu", "intrinsics")
    v4 = np.arange(8, dtype=np.float32)  # two float4
    iout = np.zeros(21, np.int32)
    fout = np.zeros(12, np.float32)
    lout = np.zeros(5, np.int64)
    f((1,), (1,), (v4, iout, fout, lout))
    expected_i = [8, 31, 4, np.int32(-2**31), 2, 4, -2, -3, 3, 2**31 - 1, 0x3F800000, 0x55441100, -4, 7, 2, 3,
                  0, 7, 9, 8, 11]
    np.testing.assert_array_equal(iout, expected_i)
    # exp(1.0f) is glibc's correctly rounded expf: compare with float64 exp rounded to float32.
    np.testing.assert_array_equal(fout, np.array([1, 0, 0.5, np.exp(1.0), 10, 4 + 5 + 6 + 7, np.inf, 1,
                                                  2, 0.25, 3, 2], np.float32))
    np.testing.assert_array_equal(lout, [0x3FF0000000000000, -4, 4, 2**40 + 1, 2])
