"""gpucnn.nvrtc (the ctypes binding) and gpucnn.kernel_check's parsers, on fixed inputs where possible."""
from __future__ import annotations

import pytest

from gpucnn import kernel_check as kc
from gpucnn import nvrtc

NVRTC_LOG = """\
ptxas warning : Local memory used for function 'spill', size of stack frame: 1024 bytes
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'ok' for 'sm_80'
ptxas info    : Function properties for ok
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 9 registers, used 1 barriers, 512 bytes smem, 360 bytes cmem[0]
ptxas info    : Compile time = 2.155 ms
ptxas info    : Compiling entry function 'spill' for 'sm_80'
ptxas info    : Function properties for spill
ptxas         .     1024 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 1024 bytes cumulative stack size, 372 bytes cmem[0]
ptxas info    : Function properties for _Z6helperPfi
ptxas         .     16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
"""

# nvcc --resource-usage indents the frame line instead of "ptxas ." and may report lmem (older ptxas).
NVCC_LOG = """\
ptxas info    : Compiling entry function 'k' for 'sm_75'
ptxas info    : Function properties for k
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, 8 bytes lmem, 2048 bytes smem, 352 bytes cmem[0]
"""


def test_parse_nvrtc_log():
    funcs = kc.parse_ptxas_log(NVRTC_LOG)
    ok, spill, helper = funcs["ok"], funcs["spill"], funcs["_Z6helperPfi"]
    assert ok.entry and (ok.registers, ok.barriers, ok.smem, ok.cmem) == (9, 1, 512, 360)
    assert (ok.stack_frame, ok.spill_stores, ok.spill_loads, ok.lmem) == (0, 0, 0, 0)
    assert spill.entry and (spill.registers, spill.smem, spill.cumulative_stack) == (32, 0, 1024)
    assert (spill.stack_frame, spill.spill_stores, spill.spill_loads) == (1024, 8, 12)
    assert not helper.entry and helper.stack_frame == 16 and helper.registers is None


def test_parse_nvcc_log():
    k = kc.parse_ptxas_log(NVCC_LOG)["k"]
    assert (k.registers, k.lmem, k.smem, k.stack_frame) == (40, 8, 2048, 0)


def test_warnings():
    log = NVRTC_LOG + 'k.cu(3): warning #177-D: variable "u" was declared but never referenced\n' \
                      'Remark: The warnings can be suppressed with "-diag-suppress <warning-number>"\n'
    assert kc.compiler_warnings(log) == [
        "ptxas warning : Local memory used for function 'spill', size of stack frame: 1024 bytes",
        'k.cu(3): warning #177-D: variable "u" was declared but never referenced']


def test_analyse_fails_every_problem_with_its_figures():
    result = nvrtc.CompileResult(log=NVRTC_LOG, cubin=None, ok=True)
    report = kc.analyse("fam", "sm_80", "float", "nvrtc", (), result)
    assert not report.ok
    by_name = {k.kernel: k for k in report.kernels}
    assert by_name["ok"].ok and (by_name["ok"].registers, by_name["ok"].smem) == (9, 512)
    text = "\n".join(report.failures())
    assert ("fam.cu kernel spill (sm_80, T=float): 32 registers, 0 bytes smem, 1024 bytes stack frame, "
            "8 bytes spill stores, 12 bytes spill loads [nvrtc]: register spills: 8 bytes spill stores, "
            "12 bytes spill loads; local memory: 1024 bytes stack frame") in text
    assert "device function _Z6helperPfi: 16 bytes stack frame" in text
    assert "cannot read the CUBIN" in text  # no CUBIN given
    table = kc.format_table([report])
    assert table.splitlines()[0].split() == ["family", "kernel", "arch", "dtype", "registers", "smem", "stack",
                                             "spills", "st/ld", "status"]
    assert any(line.split()[:9] == ["fam", "ok", "sm_80", "float", "9", "512", "0", "0/0", "ok"]
               for line in table.splitlines())


def test_compile_error_hint_for_command_line_macros():
    log = '__nv_nvrtc_builtin_header.h(3181): error: expected an identifier\n  template<typename T>\n'
    result = nvrtc.CompileResult(log=log, cubin=None, ok=False, status="NVRTC_ERROR_COMPILATION")
    report = kc.analyse("fam", "sm_80", "float", "nvrtc", ("-DT=float",), result)
    (message,) = report.failures()
    assert "does not compile (NVRTC_ERROR_COMPILATION)" in message and "hint" in message and "-DT=float" in message


def test_cubin_kernels_rejects_non_elf():
    with pytest.raises(ValueError):
        kc.cubin_kernels(b"not an ELF file")


def test_libnvrtc_override_that_does_not_exist(monkeypatch, tmp_path):
    missing = str(tmp_path / "libnvrtc.so.99")
    monkeypatch.setenv("GPUCNN_NVRTC", missing)
    assert nvrtc.find_libnvrtc() == missing
    with pytest.raises(nvrtc.NvrtcNotFound, match="cannot load libnvrtc"):
        nvrtc.load()
    assert not nvrtc.available()


def test_nvrtc_binding():
    if not nvrtc.available():
        pytest.skip("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12")
    assert nvrtc.version() >= (11, 1)
    good = nvrtc.compile_cubin('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', "k.cu", ["-arch=sm_80"])
    assert good.ok and good.cubin[:4] == b"\x7fELF" and good.status == "NVRTC_SUCCESS"
    assert set(kc.cubin_kernels(good.cubin)) == {"k"}
    bad = nvrtc.compile_cubin('extern "C" __global__ void k(float* x) { x[0] = y; }', "bad.cu", ["-arch=sm_80"])
    assert not bad.ok and bad.cubin is None and 'bad.cu(1): error: identifier "y" is undefined' in bad.log
    with pytest.raises(nvrtc.NvrtcError, match="no CUBIN"):
        nvrtc.compile_cubin('extern "C" __global__ void k() {}', "k.cu", ["-arch=compute_80"])


def test_figures_fall_back_to_the_cubin():
    """Without ptxas's report in the log (no -Xptxas -v), registers and frame size come from the CUBIN."""
    if not nvrtc.available():
        pytest.skip("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12")
    source = 'extern "C" __global__ void k(const float* x, float* y) { y[threadIdx.x] = 2.0f * x[threadIdx.x]; }'
    result = nvrtc.compile_cubin(source, "k.cu", ["-arch=sm_80"])
    assert result.ok and "Used" not in result.log
    report = kc.analyse("k", "sm_80", "float", "nvrtc", ("-arch=sm_80",), result)
    (k,) = report.kernels
    assert report.ok, report.failures()
    assert k.registers == kc.cubin_kernels(result.cubin)["k"].registers > 0 and k.stack == 0
    assert k.spill_stores is None  # only ptxas's report has spills (a spill needs a stack frame, which is 0)
