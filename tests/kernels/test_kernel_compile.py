"""Compile checks of every kernels_cuda/*.cu without a GPU (docs/kernels.md, gpucnn.kernel_check).

Each family x variant (kernel_check.variants) x arch is compiled to CUBIN exactly as the runtime compiles it
(the source specialised by ``gpucnn.kernels.specialise``, the options of ``compile_options()``) by NVRTC (the reference: what CuPy uses at run time) and, where it
is installed, by nvcc. A compile fails on an error, any warning, register spills or local memory; the
figures of every kernel are printed as a table at the end (``gpucnn kernels`` prints the same).

libnvrtc comes from the ``nvidia-cuda-nvrtc-cu12`` wheel of the test extra: without it these tests skip,
except in CI (``CI`` set), where they fail, since CI installs the extra.
"""
from __future__ import annotations

import os

import pytest

from gpucnn import kernel_check as kc
from gpucnn import nvrtc
from gpucnn.kernels import BASE_OPTIONS
from gpucnn.functions import _conv_tiles
from kernels_cuda import families

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
FULL = os.environ.get("GPUCNN_KERNEL_CHECK_FULL", "").lower() not in ("", "0", "false", "no")
FAMILIES = families()

# NVRTC, the reference (what CuPy compiles with at run time), checks every variant of every family
# (kernel_check.variants: T = float/double; conv with its default tile; conv_tc's TF32/FP16/BF16) on every
# arch it builds for. nvcc, a cross-check with another toolkit's ptxas (CUDA 13 here, NVRTC 12.9), builds
# them on sm_80 and sm_90; GPUCNN_KERNEL_CHECK_FULL=1 (or `gpucnn kernels --compiler nvcc`) on every arch.
NVCC_ARCHS = kc.ARCHS if FULL else ("sm_80", "sm_90")
NVRTC_CASES = kc.cases_for(FAMILIES, kc.ARCHS, compiler="nvrtc")
NVCC_CASES = kc.cases_for(FAMILIES, NVCC_ARCHS, compiler="nvcc")

# The conv kernels with every tile the autotuner may pick (_conv_tiles.CANDIDATES), float and double: NVRTC
# on every arch, nvcc on sm_80 and sm_90 (every arch with FULL). About 1-2 s a build (conv.cu at 2061d52);
# the whole file ~1.5 minutes on 2 cores.
TILE_CASES = (kc.cases_for(["conv"], kc.ARCHS, compiler="nvrtc", all_tiles=True)
              + kc.cases_for(["conv"], NVCC_ARCHS, compiler="nvcc", all_tiles=True))

def _param(case):
    family, arch, variant, compiler = case
    return pytest.param(case, id=f"{family}-{variant.label}-{arch}")


def _params(cases):
    return [_param(c) for c in cases] or [pytest.param(None, marks=pytest.mark.skip(reason="no kernels_cuda/*.cu yet"))]


@pytest.fixture
def need_nvrtc():
    if not nvrtc.available():
        reason = ("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12 (it is in the test extra), "
                  "or set GPUCNN_NVRTC to the library")
        if IN_CI:
            pytest.fail(f"{reason} -- CI installs the test extra, so the NVRTC compile checks must run there")
        pytest.skip(reason)


@pytest.fixture
def need_nvcc():
    if kc.find_nvcc() is None:
        pytest.skip("nvcc not installed (optional: the NVRTC checks are the reference)")


@pytest.fixture(scope="module")
def reports(request):
    """``get(case)``: the CompileReport of a (family, arch, variant, compiler) case. The first request
    compiles every case of that compiler that this session selected, in parallel."""
    cache: dict[tuple, kc.CompileReport] = {}

    def get(case: tuple) -> kc.CompileReport:
        if case not in cache:
            wanted = [case]
            for item in request.session.items:
                spec = getattr(item, "callspec", None)
                c = spec.params.get("case") if spec is not None else None
                if isinstance(c, tuple) and len(c) == 4 and isinstance(c[2], kc.Variant) and c[3] == case[3]:
                    wanted.append(c)
            wanted = list(dict.fromkeys(w for w in wanted if w not in cache))
            cache.update(zip(wanted, kc.check_cases(wanted, jobs=kc.default_jobs())))
        return cache[case]

    get.cache = cache
    return get


def _assert_passes(report: kc.CompileReport) -> None:
    print(kc.format_table([report], max_status=300))
    assert report.ok, "\n".join(report.failures())


@pytest.mark.parametrize("case", _params(NVRTC_CASES))
def test_nvrtc_compile(need_nvrtc, reports, case):
    """The runtime's compiler: no error, no warning, no spills, no local memory."""
    _assert_passes(reports(case))


@pytest.mark.parametrize("case", _params(NVCC_CASES))
def test_nvcc_compile(need_nvcc, reports, case):
    """nvcc, on the same specialised source as NVRTC (a cross-check of the resource figures)."""
    _assert_passes(reports(case))


@pytest.mark.parametrize("case", _params(TILE_CASES))
def test_every_conv_tile_compiles(request, reports, case):
    """Every conv tile, both compilers: clean, and the GEMMs' static shared memory is what the host expects
    of the tile. (This cross-check found spills in float kernels that ptxas held to 64 registers under
    `__launch_bounds__(CONV_THREADS)`: wgrad 32x64x16/4x4, CUDA 13.0 nvcc sm_80/sm_90 12 B and NVRTC 12.9
    sm_80 8 B; forward 32x64x16/4x4 NVRTC sm_90 20 B and 64x128x8/4x8 nvcc sm_75/sm_80 4 B; fixed in
    9c0ba78 and 63f7655 by `__launch_bounds__(CONV_THREADS, 1)`.)"""
    family, arch, variant, compiler = case
    request.getfixturevalue("need_nvrtc" if compiler == "nvrtc" else "need_nvcc")
    report = reports(case)
    _assert_passes(report)
    tile = _conv_tiles.Tile.parse(variant.tile)
    gemms = [k for k in report.kernels if k.kernel in ("conv2d_forward", "conv2d_backward_data",
                                                       "conv2d_backward_filter")]
    assert len(gemms) == 3 and all(k.smem == tile.smem_bytes(8 if variant.dtype == "double" else 4) for k in gemms)


# -- the check bites: throwaway kernels (not in kernels_cuda/) ------------------------------------------
TRIVIAL = '#include "common.cuh"\nextern "C" __global__ void trivial(T* x) { x[threadIdx.x] = gpucnn_neg_inf(T(0)); }\n'


@pytest.mark.parametrize("dtype", kc.DTYPES)
def test_nvrtc_accepts_the_runtime_options(need_nvrtc, dtype):
    """The runtime's options themselves must be usable by NVRTC on a trivial kernel."""
    report = kc.check_source(TRIVIAL, "trivial.cu", "sm_80", dtype)
    assert report.ok, "\n".join(report.failures())


CLEAN = r'''
#include "common.cuh"
// One block of 256 threads sums 256 values per block; a static shared scratch of 32 T.
extern "C" __global__ void clean_block_sum(const T* x, T* out, int n) {
    __shared__ T scratch[32];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    T v = i < n ? x[i] : T(0);
    v = gpucnn_block_sum(v, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
'''


@pytest.mark.parametrize("arch", kc.ARCHS)
def test_clean_kernel_passes_with_figures(need_nvrtc, arch):
    report = kc.check_source(CLEAN, "clean.cu", arch, options=BASE_OPTIONS)
    assert report.ok, "\n".join(report.failures())
    (k,) = report.kernels
    assert k.kernel == "clean_block_sum"
    assert 0 < k.registers <= 255
    assert k.smem == 32 * 4
    assert (k.stack, k.spill_stores, k.spill_loads) == (0, 0, 0)
    elf = kc.cubin_kernels(nvrtc.compile_cubin(CLEAN, "clean.cu", list(BASE_OPTIONS) + [f"-arch={arch}"]).cubin)
    assert elf["clean_block_sum"].registers == k.registers  # the CUBIN agrees with ptxas's report
    assert elf["clean_block_sum"].frame_size == 0


HOST_ONLY = {
    "INFINITY": 'extern "C" __global__ void k(float* x) { x[0] = -INFINITY; }\n',
    "cmath": '#include <cmath>\nextern "C" __global__ void k(float* x) { x[0] = std::fabs(x[1]); }\n',
}


@pytest.mark.parametrize("what", sorted(HOST_ONLY))
def test_host_only_constructs_fail_under_nvrtc(need_nvrtc, what):
    report = kc.check_source(HOST_ONLY[what], "host_only.cu", "sm_80", options=BASE_OPTIONS)
    assert not report.ok and not report.compiled
    message = "\n".join(report.failures())
    assert "does not compile" in message and what in message, message


@pytest.mark.parametrize("what", sorted(HOST_ONLY))
def test_host_only_constructs_compile_under_nvcc(need_nvcc, what):
    """...which is why nvcc alone is not enough: it has the host headers."""
    report = kc.check_source(HOST_ONLY[what], "host_only.cu", "sm_80", options=BASE_OPTIONS, compiler="nvcc")
    assert report.compiled, report.log


LOCAL_ARRAY = r'''
extern "C" __global__ void local_array(const float* x, const int* idx, float* y, int n) {
    float a[64];                                   // indexed with run-time values: lives in local memory
    for (int i = 0; i < 64; i++) a[i] = x[i * n + threadIdx.x];
    for (int i = 0; i < 4; i++) a[idx[i]] += 1.0f;
    y[threadIdx.x] = a[idx[4]] + a[idx[5]];
}
'''


@pytest.mark.parametrize("compiler", kc.COMPILERS)
def test_local_array_is_reported_as_local_memory(request, compiler):
    request.getfixturevalue("need_nvrtc" if compiler == "nvrtc" else "need_nvcc")
    report = kc.check_source(LOCAL_ARRAY, "local.cu", "sm_80", options=BASE_OPTIONS, compiler=compiler)
    assert report.compiled, report.log
    (k,) = report.kernels
    assert k.stack >= 64 * 4
    message = "\n".join(report.failures())
    assert not report.ok
    assert "kernel local_array (sm_80, T=float)" in message and f"local memory: {k.stack} bytes stack frame" in message


PRESSURE = r'''
extern "C" __global__ void __launch_bounds__(1024, 2) pressure(const float* x, float* y, int n) {
    float v[48];                                   // 48 live values, but at most 32 registers per thread
#pragma unroll
    for (int i = 0; i < 48; i++) v[i] = x[threadIdx.x + i * n];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 48; i++)
#pragma unroll
        for (int k = 0; k < 48; k += 7) s += v[i] * v[(i + k) % 48];
    y[threadIdx.x] = s;
}
'''


def test_register_spills_are_reported(need_nvrtc):
    report = kc.check_source(PRESSURE, "pressure.cu", "sm_80", options=BASE_OPTIONS)
    (k,) = report.kernels
    assert k.registers <= 32 and k.spill_stores > 0 and k.spill_loads > 0
    message = "\n".join(report.failures())
    assert f"register spills: {k.spill_stores} bytes spill stores, {k.spill_loads} bytes spill loads" in message


def test_a_warning_fails(need_nvrtc):
    source = 'extern "C" __global__ void warns(float* x) { int unused; x[0] = 1.0f; }\n'
    report = kc.check_source(source, "warns.cu", "sm_80", options=BASE_OPTIONS)
    assert report.compiled and [k.ok for k in report.kernels] == [True]
    assert not report.ok
    assert "compiler warning: warns.cu(1): warning #177-D" in "\n".join(report.failures())


# -- the table (last: it prints what the tests above compiled) ------------------------------------------
def test_print_resource_table(need_nvrtc, reports, capsys):
    """Registers and shared memory per kernel, printed to the terminal (also: ``gpucnn kernels``)."""
    if not FAMILIES:
        pytest.skip("no kernels_cuda/*.cu yet")
    for case in NVRTC_CASES:  # whatever was not compiled yet (e.g. when run alone)
        reports(case)
    rank = {v: i for i, v in enumerate(kc.COMPILERS + kc.ARCHS)}
    done = sorted(reports.cache.items(),  # key: (family, arch, variant, compiler)
                  key=lambda kv: (rank[kv[0][3]], kv[0][0], kv[0][2].label, rank.get(kv[0][1], 99), kv[0][1]))
    text = []
    for compiler in kc.COMPILERS:
        chosen = [r for key, r in done if key[3] == compiler]
        if chosen:
            text.append(f"\nkernel resource usage ({compiler}; smem = static shared memory, bytes):\n"
                        + kc.format_table(chosen))
    with capsys.disabled():
        print("\n".join(text))
