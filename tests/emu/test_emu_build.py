"""Compilation, caching, source handling, thread-order control and performance of the emulator."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emu_testing import KERNELS
from gpucnn import emu
from gpucnn.emu.options import translate
from gpucnn.emu.signatures import find_kernels
from gpucnn.emu.source_rewrite import rewrite

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_disk_cache_skips_compilation_in_a_fresh_process(tmp_path):
    code = ("import json, numpy as np; from gpucnn import emu\n"
            f"f = emu.RawModule(path={str(KERNELS / 'vector_add.cu')!r}, options=('-DUNUSED=1',))"
            ".get_function('vector_add')\n"
            "a = np.ones(3, np.float32); c = np.zeros(3, np.float32)\n"
            "f((1,), (32,), (a, a, c, np.int32(3))); assert (c == 2).all()\n"
            "print(json.dumps(emu.cache_stats()))")
    env = {"GPUCNN_CACHE_DIR": str(tmp_path)}
    first = json.loads(run_python(code, env).splitlines()[-1])
    second = json.loads(run_python(code, env).splitlines()[-1])
    assert first["module_compiles"] == 1 and first["runtime_compiles"] == 1
    assert second["module_compiles"] == 0 and second["runtime_compiles"] == 0 and second["disk_hits"] == 1
    assert [p.name for p in (tmp_path / "emu").iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_modules_are_memoized_in_process():
    emu.RawModule(path=KERNELS / "vector_add.cu").get_function("vector_add")
    before = emu.cache_stats()
    f = emu.RawModule(path=KERNELS / "vector_add.cu").get_function("vector_add")
    after = emu.cache_stats()
    assert after["memory_hits"] == before["memory_hits"] + 1
    assert after["module_compiles"] == before["module_compiles"] and after["disk_hits"] == before["disk_hits"]
    assert f.name == "vector_add"


def test_import_is_light():
    # gpucnn.emu on its own (the parent package stubbed out) must not import NumPy or run a compiler.
    code = ("import sys, types; pkg = types.ModuleType('gpucnn'); pkg.__path__ = ['gpucnn']; "
            "sys.modules['gpucnn'] = pkg\n"
            "import subprocess; calls = []; real = subprocess.run\n"
            "subprocess.run = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
            "import gpucnn.emu\n"
            "print('numpy' in sys.modules, len(calls))")
    assert run_python(code, {}).split() == ["False", "0"]


def test_thread_order_api(monkeypatch):
    monkeypatch.delenv("GPUCNN_EMU_THREAD_ORDER", raising=False)
    assert emu.get_thread_order() == ("forward", 0)
    monkeypatch.setenv("GPUCNN_EMU_THREAD_ORDER", "shuffled:7")
    assert emu.get_thread_order() == ("shuffled", 7)
    with emu.thread_order("reverse"):
        assert emu.get_thread_order() == ("reverse", 0)
    assert emu.get_thread_order() == ("shuffled", 7)
    emu.set_thread_order("forward", seed=3)
    try:
        assert emu.get_thread_order() == ("forward", 3)
    finally:
        emu.set_thread_order(None)
    monkeypatch.setenv("GPUCNN_EMU_THREAD_ORDER", "sideways")
    with pytest.raises(ValueError, match="GPUCNN_EMU_THREAD_ORDER"):
        emu.get_thread_order()
    with pytest.raises(ValueError):
        emu.set_thread_order("backwards")


def test_shuffled_order_depends_on_seed():
    # Which thread first leaves the array is decided by the order: shuffled seeds give different ones.
    f = emu.RawModule(path=KERNELS / "faulty.cu").get_function("read_shifted")
    args = (np.zeros(256, np.float32),) * 3 + (np.int32(256), np.int32(200))
    seen = set()
    for seed in range(4):
        with emu.thread_order("shuffled", seed), pytest.raises(emu.OutOfBoundsError) as info:
            f((1,), (256,), args)
        seen.add(info.value.thread)
    assert len(seen) > 1


# ---------------------------------------------------------------- source handling


def test_rewrite_keeps_lines_and_handles_shared_declarations():
    src = ('// __shared__ in a comment {\n'
           '#define X(a) { __shared__ float q[a]; }\n'
           'extern "C" {\n'
           '__global__ void __launch_bounds__(256) k1(const float* __restrict__ x) {\n'
           '  __shared__ float tile[16][16];\n'
           '  static __shared__ int count;\n'
           '  extern __shared__ __align__(16) unsigned char smem[];\n'
           '  const char* s = "__shared__ {";\n'
           '}\n'
           '}\n'
           '__device__ float helper() { __shared__ float h[8]; return h[0]; }\n'
           'extern "C" __global__ void k2(float* y)\n'
           '{\n'
           '  extern __shared__\n'
           '      float dyn[];\n'
           '}\n')
    out = rewrite(src)
    assert out.count("\n") == src.count("\n")
    lines = out.splitlines()
    assert lines[4] == '  __EMU_SHARED("emu_sh_k1") float tile[16][16];'
    assert lines[5] == '  __EMU_SHARED("emu_sh_k1") int count;'
    assert "unsigned char* const& smem = reinterpret_cast<unsigned char* const&>(__emu_dyn_smem);" in lines[6]
    assert lines[7] == '  const char* s = "__shared__ {";'
    assert lines[1] == src.splitlines()[1]  # macros keep shim.h's generic __shared__
    assert lines[10] == src.splitlines()[10]  # device functions too
    assert "float* const& dyn = " in lines[13]


def test_kernel_signatures_from_preprocessed_source():
    pre = ('# 1 "k.cu"\n'
           'extern "C" { __global__ void a(const float* __restrict__ x, int n) { } }\n'
           'namespace ns { extern "C" __global__ void __launch_bounds__(16 * 16, 2) b(float*, double y[]) {} }\n'
           'extern "C" __global__ void declared_only(int);\n'
           'template <int N> __global__ void templated(float* x) {}\n'
           '__global__ void cpp_linkage(float* x) {}\n'
           'struct S { int v; };\n'
           'extern "C" __global__ void c(void) { if (1) { } }\n')
    ks = {k.name: k for k in find_kernels(pre)}
    assert sorted(ks) == ["a", "b", "c"]
    assert [(p.name, p.text) for p in ks["a"].params] == [("x", "const float* __restrict__ x"), ("n", "int n")]
    assert ks["b"].qualified == "ns::b" and ks["b"].launch_bounds == 256
    assert [p.name for p in ks["b"].params] == ["arg0", "y"]
    assert ks["c"].params == []


def test_option_translation():
    opts = translate(("-DT=float", "-D", "TILE=16", "-DFLAG", "-UOLD", "-I/inc", "--include-path=/inc2",
                      "-std=c++17", "--std=c++14", "-arch=sm_80", "--gpu-architecture=sm_90", "-arch", "sm_90",
                      "-lineinfo", "--fmad=true", "-ftz=false", "--maxrregcount=64"), "k.cu")
    assert opts.prelude == ["#define T float", "#define TILE 16", "#define FLAG 1", "#undef OLD"]
    assert opts.include_dirs == ["/inc", "/inc2"]


def test_namespaced_and_block_extern_c_kernels_run():
    src = ('namespace ops { extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; } }\n'
           'extern "C" {\n'
           '__global__ void thrice(float* x) { x[threadIdx.x] *= 3.0f; }\n'
           '}\n')
    mod = emu.RawModule(code=src)
    assert set(mod.kernel_names) == {"twice", "thrice"}
    x = np.ones(4, np.float32)
    mod.get_function("twice")((1,), (4,), (x,))
    mod.get_function("thrice")((1,), (4,), (x,))
    np.testing.assert_array_equal(x, 6)


def test_raw_kernel_and_printf(capfd):
    f = emu.RawKernel('extern "C" __global__ void hello(int v) { if (threadIdx.x == 0) printf("v=%d\\n", v); }',
                      "hello")
    f((2,), (8,), (np.int32(42),))
    assert capfd.readouterr().out.count("v=42") == 2


# ---------------------------------------------------------------- performance

BENCH = r'''
// 8 iterations x 2 barriers = 16 __syncthreads() per thread.
extern "C" __global__ void barrier_bench(float* out) {
  __shared__ float s[256];
  const int t = threadIdx.x;
  float acc = 0.0f;
  for (int it = 0; it < 8; ++it) {
    s[t] = acc + it;
    __syncthreads();
    acc += s[(t + 1) & 255];
    __syncthreads();
  }
  out[blockIdx.x * 256 + t] = acc;
}
'''


def test_barrier_heavy_launch_is_fast():
    f = emu.RawKernel(BENCH, "barrier_bench")
    out = np.zeros(64 * 256, np.float32)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        f((64,), (256,), (out,))
        times.append(time.perf_counter() - t0)
    expected = np.zeros(256, np.float64)
    for it in range(8):
        expected = expected + np.roll(expected + it, -1)
    np.testing.assert_allclose(out.reshape(64, 256), np.tile(expected, (64, 1)), rtol=1e-6)
    print(f"64 blocks x 256 threads x 16 barriers: {min(times) * 1e3:.1f} ms")
    assert min(times) < 0.1  # about 12 ms on the development machine


def test_context_switch_cost():
    ns = emu.context_switch_ns(100_000)
    print(f"fiber context switch: {ns:.1f} ns")
    assert 0 < ns < 500


# ---------------------------------------------------------------- the test kernels are genuine CUDA


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("file,ctype", [("vector_add.cu", "float"), ("matmul.cu", "float"),
                                        ("matmul.cu", "double"), ("block_sum.cu", "float"),
                                        ("warp_ops.cu", "float"), ("atomics.cu", "float"),
                                        ("axpy.cu", "double"), ("indexing.cu", "float"), ("faulty.cu", "float"),
                                        ("intrinsics.cu", "float"), ("tensor_core.cu", "float"),
                                        ("lowp.cu", "float")])
def test_kernels_compile_with_nvcc(tmp_path, file, ctype):
    # nvcc pre-includes the CUDA runtime headers, which a -DT=... on its command line would break (NVRTC
    # does not), so the macro goes in a wrapper file.
    wrapper = tmp_path / "wrap.cu"
    wrapper.write_text(f'#define T {ctype}\n#include "{KERNELS / file}"\n')
    proc = subprocess.run(["nvcc", "-arch=sm_80", "-cubin", "-o", os.devnull, str(wrapper)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
