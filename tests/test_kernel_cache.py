"""gpucnn.kernel_cache: prebuilt cubins for GPU runs. Every module the runtime asks for in a training step
(conv tiles, tensor-core kinds, pooling, batch norm, in float32/float64/float16/bfloat16) has its entry
among what `gpucnn kernels --build-cache` builds; the cuda path loads a cached cubin instead of compiling
(a stand-in CuPy: no GPU here); names do not depend on where the checkout lies."""
import types

import numpy as np
import pytest

import gpucnn
from gpucnn import kernel_cache, kernels, nvrtc


def _requested_modules(monkeypatch, run):
    """The (family, defines) of every kernel module ``run()`` asks the emu device for."""
    seen = set()
    real = kernels.get_kernel

    def spy(device_name, family, name, defines=()):
        seen.add((family, tuple(defines)))
        return real(device_name, family, name, defines)

    monkeypatch.setattr(kernels, "get_kernel", spy)
    run()
    return seen


def _step(dtype):
    def run():
        model = gpucnn.nn.Sequential(gpucnn.nn.Conv2d(3, 8, 3, padding=1), gpucnn.nn.BatchNorm2d(8),
                                     gpucnn.nn.ReLU(), gpucnn.nn.MaxPool2d(2), gpucnn.nn.Conv2d(8, 4, 1),
                                     gpucnn.nn.AdaptiveAvgPool2d(1)).to("emu", dtype=dtype)
        x = gpucnn.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)), dtype=dtype, device="emu",
                          requires_grad=True)
        model(x).sum().backward()
    return run


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_every_module_a_step_asks_for_is_in_the_cache(monkeypatch, dtype):
    dt = gpucnn.dtypes.as_dtype(dtype)
    requested = _requested_modules(monkeypatch, _step(dt))
    assert {f for f, _ in requested} >= {"conv" if dtype in ("float32", "float64") else "conv_tc", "batch_norm",
                                         "pooling"}
    names = kernel_cache.expected_names(("sm_90",))
    missing = [(f, d) for f, d in requested if kernel_cache.cache_name(f, d, "sm_90") not in names]
    assert not missing


def test_the_cuda_path_loads_a_cached_cubin_and_compiles_otherwise(tmp_path, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(compute_capability="90")),
        RawModule=lambda **kw: calls.append(kw) or kw)
    defines = (("T", "float"),)
    source, options = kernels.kernel_source("pooling", defines), kernels.compile_options()
    monkeypatch.delenv(kernel_cache.ENV, raising=False)
    kernels._cuda_module(fake, "pooling", defines, source, options)
    assert calls[-1] == {"code": source, "options": options}  # no cache: NVRTC through CuPy
    monkeypatch.setenv(kernel_cache.ENV, str(tmp_path))
    kernels._cuda_module(fake, "pooling", defines, source, options)
    assert "code" in calls[-1]  # a cache without the entry: compiled as usual
    entry = tmp_path / kernel_cache.cache_name("pooling", defines, "sm_90")
    entry.write_bytes(b"cubin")
    kernels._cuda_module(fake, "pooling", defines, source, options)
    assert calls[-1] == {"path": str(entry)}


def test_names_follow_the_source_headers_defines_and_arch_not_the_checkout(monkeypatch, tmp_path):
    a = kernel_cache.cache_name("pooling", (("T", "float"),), "sm_90")
    assert a != kernel_cache.cache_name("pooling", (("T", "double"),), "sm_90")
    assert a != kernel_cache.cache_name("pooling", (("T", "float"),), "sm_80")
    assert a.startswith("pooling-") and a.endswith("-sm_90.cubin")
    # the same sources in another directory give the same name
    import shutil
    import kernels_cuda
    copy = tmp_path / "kernels_cuda"
    shutil.copytree(kernels_cuda.KERNEL_DIR, copy)
    monkeypatch.setattr(kernel_cache, "KERNEL_DIR", copy)
    monkeypatch.setattr(kernel_cache, "kernel_path", lambda f: copy / f"{f}.cu")
    moved = tuple(o.replace(str(kernels_cuda.KERNEL_DIR), str(copy)) for o in kernels.compile_options())
    monkeypatch.setattr(kernel_cache, "compile_options", lambda: moved)
    assert kernel_cache.cache_name("pooling", (("T", "float"),), "sm_90") == a
    (copy / "common.cuh").write_text((copy / "common.cuh").read_text() + "\n// changed\n")
    assert kernel_cache.cache_name("pooling", (("T", "float"),), "sm_90") != a  # a header is part of it


@pytest.mark.skipif(not nvrtc.available(), reason="libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12)")
def test_build_writes_one_cubin_per_variant(tmp_path):
    paths = kernel_cache.build(tmp_path, ("sm_80",), ["pooling"])
    assert {p.name for p in paths} == kernel_cache.expected_names(("sm_80",), ["pooling"])
    assert len(paths) == 4 and all(p.read_bytes()[:4] == b"\x7fELF" for p in paths)
