"""Bugs the emulator must report instead of hanging, crashing or computing garbage."""
from __future__ import annotations

import re

import numpy as np
import pytest

from emu_testing import KERNELS, kernel
from gpucnn import emu
from gpucnn.errors import KernelError


def f32(*shape):
    return np.zeros(shape, np.float32)


def line_of(text: str, nth: int = 0) -> int:
    """1-based line number of the nth line of faulty.cu containing `text`."""
    lines = [i + 1 for i, ln in enumerate((KERNELS / "faulty.cu").read_text().splitlines()) if text in ln]
    return lines[nth]


def test_errors_are_kernel_errors():
    assert issubclass(emu.EmuError, KernelError)
    for cls in (emu.CompileError, emu.LaunchError, emu.ArgumentTypeError, emu.DeadlockError,
                emu.OutOfBoundsError, emu.KernelTrap, emu.WarpSyncError, emu.KernelNotFoundError):
        assert issubclass(cls, emu.EmuError)


# ---------------------------------------------------------------- deadlocks


def test_barrier_in_divergent_branch_is_a_deadlock(order):
    f = kernel("faulty.cu", "barrier_in_branch")
    x = f32(64)
    with pytest.raises(emu.DeadlockError) as info:
        f((1,), (64,), (x,))
    msg = str(info.value)
    assert "barrier_in_branch" in msg and "block (0, 0, 0)" in msg
    assert f"16 thread(s) wait at __syncthreads() ({KERNELS / 'faulty.cu'}:{line_of('__syncthreads')})" in msg
    assert "48 thread(s) have exited" in msg
    assert not x.any()  # nothing is copied back after a failed launch


def test_threads_at_different_barriers_are_reported():
    f = kernel("faulty.cu", "divergent_barriers")
    with pytest.raises(emu.DeadlockError, match=rf"divergent barrier.*faulty\.cu:({line_of('__syncthreads', 1)}|"
                                                rf"{line_of('__syncthreads', 2)})"):
        f((1,), (64,), (f32(64),))


def test_warp_op_missing_lanes_is_a_deadlock(order):
    f = kernel("faulty.cu", "warp_op_mismatch")
    with pytest.raises(emu.WarpSyncError, match=r"__shfl_down_sync.*__ballot_sync|__ballot_sync.*__shfl_down_sync"):
        f((1,), (32,), (f32(32),))
    g = kernel("warp_ops.cu", "warp_partial_shuffle")
    with pytest.raises(emu.DeadlockError, match=r"__shfl_down_sync\(mask=0xffffffff\).*lane 16 = thread "
                                                r"\(16,0,0\) which has exited"):
        g((1,), (64,), (f32(64),))


# ---------------------------------------------------------------- memory errors


def test_out_of_bounds_write_names_the_argument_and_process_survives(order):
    f = kernel("faulty.cu", "write_past_end")
    dst = f32(64)
    with pytest.raises(emu.OutOfBoundsError) as info:
        f((2,), (64,), (dst, np.int32(64), np.int32(8)))
    msg = str(info.value)
    assert "invalid write of args[0] (float* __restrict__ dst)" in msg
    assert re.search(r"element (6[4-9]|7[01])\) of a 64-element float32 array \(256 bytes\), past its end", msg)
    assert info.value.block == (1, 0, 0)
    assert not dst.any()
    # The process (and the emulator) carry on normally after the fault.
    g = kernel("vector_add.cu", "vector_add")
    a = np.ones(100, np.float32)
    c = f32(100)
    g((1,), (128,), (a, a, c, np.int32(100)))
    np.testing.assert_array_equal(c, 2)


def test_out_of_bounds_read_names_the_right_argument():
    f = kernel("faulty.cu", "read_shifted")
    expected = (re.escape("invalid read of args[1] (const float* __restrict__ src)")
                + r".*element 64\) of a 64-element float32 array \(256 bytes\), past its end")
    with emu.thread_order("forward"), pytest.raises(emu.OutOfBoundsError, match=expected) as info:
        f((1,), (64,), (f32(64), f32(64), f32(64), np.int32(64), np.int32(3)))
    assert info.value.thread == (61, 0, 0)  # forward order: the first thread whose read leaves the array


def test_read_before_the_start():
    f = kernel("faulty.cu", "read_before_start")
    with pytest.raises(emu.OutOfBoundsError, match=r"args\[0\].*element -40[6-9][0-9]\).*before its start"):
        f((1,), (32,), (np.zeros(64), np.zeros(64)))


def test_tail_padding_is_not_detected():
    # Documented limit: buffers end on a 16-byte boundary, so up to 15 bytes past the end go unnoticed.
    f = kernel("faulty.cu", "write_past_end")
    dst = f32(61)  # 244 bytes, padded to 256
    f((1,), (64,), (dst, np.int32(61), np.int32(3)))  # writes elements 61..63: inside the padding
    np.testing.assert_array_equal(dst, 1)
    with pytest.raises(emu.OutOfBoundsError):
        f((2,), (64,), (dst, np.int32(61), np.int32(4)))  # element 64 is the first byte of the guard page


def test_none_for_a_pointer_is_refused_as_on_cupy_before_14():
    # CuPy < 14 passes None as a garbage pointer (cupy#9046): a kernel handed None works nowhere portably.
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(4, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match=r"args\[2\].*got None: CuPy < 14"):
        f((1,), (4,), (a, a, None, np.int32(4)))


def test_dynamic_shared_memory_overflow():
    f = kernel("faulty.cu", "dyn_shared_overflow")
    with pytest.raises(emu.OutOfBoundsError, match=r"dynamic shared memory byte offset 256.*shared_mem=256"):
        f((1,), (64,), (f32(64),), shared_mem=256)


def test_stack_overflow():
    f = kernel("faulty.cu", "huge_local_array")
    with pytest.raises(emu.OutOfBoundsError, match="stack"):
        f((1,), (1,), (f32(1), np.int32(0)))


# ---------------------------------------------------------------- traps


def test_trap_raises_kernel_trap():
    f = kernel("faulty.cu", "trap_on_negative")
    x = np.ones(100, np.float32)
    f((1,), (128,), (x, np.int32(100)))  # no negative value: no trap
    x[37] = -1
    with pytest.raises(emu.KernelTrap, match=r"trap_on_negative.*block \(0, 0, 0\), thread \(37, 0, 0\).*"
                                             rf"__trap\(\) called at .*faulty\.cu:{line_of('__trap()')}") as info:
        f((1,), (128,), (x, np.int32(100)))
    assert info.value.thread == (37, 0, 0) and info.value.kernel == "trap_on_negative"


def test_assert_raises_kernel_trap():
    f = kernel("faulty.cu", "assert_non_negative")
    x = np.ones(64, np.float32)
    x[5] = -2
    with pytest.raises(emu.KernelTrap, match=r"assertion `x\[i\] >= 0.0f` failed"):
        f((1,), (64,), (x, np.int32(64)))


# ---------------------------------------------------------------- argument checking


def test_python_int_for_int_parameter():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(4, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match=re.escape("args[3] (int n) needs a numpy.int32 scalar, got "
                                                              "Python int 4")):
        f((1,), (4,), (a, a, a, 4))


def test_python_float_and_wrong_numpy_scalar():
    f = kernel("axpy.cu", "axpy", "-DT=float")
    x = np.ones(4, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match=r"args\[1\] \(float alpha\).*Python float"):
        f((1,), (4,), (np.int32(4), 2.0, x, x))
    with pytest.raises(emu.ArgumentTypeError, match=r"needs a numpy.float32 scalar, got numpy.float64"):
        f((1,), (4,), (np.int32(4), np.float64(2), x, x))
    with pytest.raises(emu.ArgumentTypeError, match=r"args\[0\] \(int n\) needs a numpy.int32 scalar, got numpy.int64"):
        f((1,), (4,), (np.int64(4), np.float32(2), x, x))


def test_wrong_array_dtype():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(4, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match=re.escape("kernel 'vector_add': args[1] (const float* "
                                                              "__restrict__ b) needs an array of dtype float32, "
                                                              "got dtype float64")):
        f((1,), (4,), (a, np.ones(4), a, np.int32(4)))


def test_wrong_argument_count():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(4, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match=r"takes 4 argument\(s\) .*got 3"):
        f((1,), (4,), (a, a, a))


def test_non_contiguous_and_read_only_arrays():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(8, np.float32)
    with pytest.raises(emu.ArgumentTypeError, match="not C-contiguous"):
        f((1,), (4,), (a[::2], a[:4], a[:4], np.int32(4)))
    ro = np.ones(4, np.float32)
    ro.flags.writeable = False
    f((1,), (4,), (ro, ro, a[:4], np.int32(4)))  # read-only is fine for const parameters
    with pytest.raises(emu.ArgumentTypeError, match="read-only"):
        f((1,), (4,), (a[:4], a[:4], ro, np.int32(4)))
    with pytest.raises(emu.ArgumentTypeError, match="needs a numpy array"):
        f((1,), (4,), ([1.0] * 4, a[:4], a[:4], np.int32(4)))


# ---------------------------------------------------------------- launch configuration


def test_launch_limits():
    f = kernel("vector_add.cu", "vector_add")
    a = np.ones(4, np.float32)
    args = (a, a, a, np.int32(4))
    with pytest.raises(emu.LaunchError, match="1025 threads"):
        f((1,), (1025,), args)
    with pytest.raises(emu.LaunchError, match=r"blockDim.z=65"):
        f((1,), (1, 1, 65), args)
    with pytest.raises(emu.LaunchError, match=r"gridDim.y=65536"):
        f((1, 65536), (1,), args)
    with pytest.raises(emu.LaunchError, match="negative"):
        f((-1,), (1,), args)
    assert emu.MAX_THREADS_PER_BLOCK == 1024 and emu.MAX_SHARED_MEMORY_PER_BLOCK == 48 * 1024


def test_shared_memory_limits():
    f = kernel("block_sum.cu", "reverse_blocks")
    x = np.ones(64, np.float32)
    f((1,), (64,), (x, x.copy()), shared_mem=48 * 1024)
    with pytest.raises(emu.LaunchError, match="shared memory"):
        f((1,), (64,), (x, x.copy()), shared_mem=48 * 1024 + 4)
    g = kernel("matmul.cu", "matmul_tiled", "-DT=double")  # 4 KiB of static shared memory
    with pytest.raises(emu.LaunchError, match=r"4096 bytes of static plus 45072 bytes of dynamic"):
        g((1,), (8, 8), (np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.int32(1), np.int32(1),
                         np.int32(1)), shared_mem=44 * 1024 + 16)


def test_opting_in_to_more_dynamic_shared_memory():
    f = emu.RawModule(path=KERNELS / "block_sum.cu").get_function("reverse_blocks")
    x = np.arange(64, dtype=np.float32)
    y = f32(64)
    f.max_dynamic_shared_size_bytes = 100 * 1024
    try:
        f((1,), (64,), (x, y), shared_mem=100 * 1024)
        np.testing.assert_array_equal(y, x[::-1])
        with pytest.raises(emu.LaunchError, match="opt-in limit"):
            f.max_dynamic_shared_size_bytes = 228 * 1024
    finally:
        f._max_dyn = None  # the Function object is shared through the module cache


def test_launch_bounds_are_enforced():
    f = kernel("matmul.cu", "matmul_tiled", "-DT=float")
    with pytest.raises(emu.LaunchError, match=r"__launch_bounds__\(64\).*256 threads"):
        f((1,), (16, 16), (f32(1, 1), f32(1, 1), f32(1, 1), np.int32(1), np.int32(1), np.int32(1)))


# ---------------------------------------------------------------- compilation


def test_compile_error_shows_gxx_message_and_cu_line(tmp_path):
    path = tmp_path / "broken_kernel.cu"
    path.write_text('extern "C" __global__ void broken(float* x) {\n'
                    "  int i = threadIdx.x;\n"
                    "  x[i] = undeclared_thing * 2.0f;\n"
                    "}\n")
    mod = emu.RawModule(path=path, options=("-DT=float",))
    with pytest.raises(emu.CompileError) as info:
        mod.get_function("broken")
    msg = str(info.value)
    assert f"{path}:3:" in msg and "undeclared_thing" in msg and "was not declared" in msg
    assert "-DT=float" in msg


def test_compile_error_in_code_string_uses_filename():
    mod = emu.RawModule(code='extern "C" __global__ void k(float* x) { x[0] = nope; }', filename="mine.cu")
    with pytest.raises(emu.CompileError, match=r"mine\.cu:1:.*nope"):
        mod.compile()


def test_undefined_device_function_fails_at_link_time():
    mod = emu.RawModule(code='__device__ float helper(float);\n'
                             'extern "C" __global__ void k(float* x) { x[0] = helper(x[0]); }')
    with pytest.raises(emu.CompileError, match="helper"):
        mod.compile()


def test_unknown_kernel_name():
    mod = emu.RawModule(path=KERNELS / "vector_add.cu")
    with pytest.raises(emu.KernelNotFoundError, match=r"no extern \"C\" __global__ kernel named 'vec_add'.*vector_add"):
        mod.get_function("vec_add")


@pytest.mark.parametrize("option,match", [("--use_fast_math", "fast math"), ("--bogus-flag", "unknown NVRTC option")])
def test_rejected_options(option, match):
    with pytest.raises(emu.CompileError, match=match):
        emu.RawModule(path=KERNELS / "vector_add.cu", options=(option,)).compile()
