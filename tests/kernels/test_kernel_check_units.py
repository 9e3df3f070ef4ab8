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
                                             "spills", "st/ld", "variant", "status"]
    assert any(line.split() == ["fam", "ok", "sm_80", "float", "9", "512", "0", "0/0", "-", "ok"]
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


# -- variants -------------------------------------------------------------------------------------------
def test_variant_names_defines_and_archs():
    v = kc.Variant("float", precision="tf32", tile="64x64x16/8x4", defines=(("CONV_BM", 64),), min_sm=80)
    assert v.label == "float-tf32-64x64x16_8x4" and v.describe() == "T=float, tf32, tile 64x64x16/8x4"
    assert v.all_defines() == (("CONV_BM", 64), ("T", "float"))  # Device.kernel's order: sorted by name
    assert kc.Variant("bfloat16").all_defines() == (("T", "__nv_bfloat16"),)
    assert kc.Variant("half", defines=(("T", "half_t"),)).all_defines() == (("T", "half_t"),)  # T given: kept
    own = kc.Variant("half", define_t=False, defines=(("CONV_TC_ELEM", "TC_F16"),))  # its own element switch
    assert own.all_defines() == (("CONV_TC_ELEM", "TC_F16"),) and own.describe() == "half"
    assert not v.builds_for("sm_75") and v.builds_for("sm_80") and v.builds_for("sm_90a")
    report = kc.CompileReport("conv_tc", "sm_90", "float", "nvrtc", (), "", True, variant=v)
    assert report.cubin_name == "conv_tc-float-tf32-64x64x16_8x4-sm_90.cubin"
    assert kc.CompileReport("pooling", "sm_80", "double", "nvrtc", (), "", True).cubin_name == "pooling-double-sm_80.cubin"


def test_family_variants():
    """conv: float and double with the default tile (every candidate with all_tiles); a family not declared:
    T = float and double; conv_tc: TF32, half and bfloat16, tensor-core SASS required of its GEMMs, sm_80+."""
    from gpucnn.functions import _conv_tiles

    assert [v.label for v in kc.variants("conv")] == ["float-64x64x16_8x4", "double-64x64x16_8x4"]
    assert len(kc.variants("conv", all_tiles=True)) == 2 * len(_conv_tiles.CANDIDATES)
    assert dict(kc.variants("conv")[0].defines) == _conv_tiles.DEFAULT.defines
    assert [v.label for v in kc.variants("pooling")] == ["float", "double", "half", "bfloat16"]
    # depthwise.cu: the runtime passes only T = float / double (16-bit depthwise convs run in float32;
    # DW_THREADS is its default, mirrored by conv.py), so the undeclared-family default is what runs
    assert [v.label for v in kc.variants("depthwise")] == ["float", "double"]
    assert [v.defines for v in kc.variants("depthwise")] == [(), ()]
    tc = {v.dtype: v for v in kc.variants("conv_tc")}
    assert set(tc) == {"float", "half", "bfloat16"} and tc["float"].precision == "tf32"
    assert all(v.min_sm == 80 and v.sass for v in tc.values())
    from gpucnn.functions import _conv_tc  # what the runtime passes: Device.kernel(..., CONV_TC_ELEM=ELEM[kind])

    assert {d: v.all_defines() for d, v in tc.items()} == {
        kc.TC_KINDS[kind]: (("CONV_TC_ELEM", value),) for kind, value in _conv_tc.ELEM.items()}
    assert tc["float"].sass == (kc.TC_HMMA["float"], kc.LDGSTS)
    assert tc["half"].sass == (kc.TC_HMMA["half"], kc.LDSM, kc.LDGSTS)  # (16-bit: cp.async for the contiguous runs)
    cases = kc.cases_for(["conv_tc"], archs=("sm_75", "sm_80"))
    assert {(c[1], c[2].dtype) for c in cases} == {("sm_80", d) for d in tc}  # no sm_75 build
    assert [c[2].dtype for c in kc.cases_for(["conv", "conv_tc"], ("sm_80",), dtypes=["half"])] == ["half"]


# -- SASS -----------------------------------------------------------------------------------------------
# Shaped as cuobjdump -sass prints it (CUDA 13, an sm_80 cubin), abridged: note HFMA2.MMA, which is no HMMA.
SASS = """
\tcode for sm_80
\t.target\tsm_80

\t\tFunction : fma_only
\t.headerflags\t@"EF_CUDA_SM80 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM80)"
        /*0000*/                   MOV R1, c[0x0][0x28] ;                              /* 0x00000a0000017a02 */
                                                                                       /* 0x000fe40000000f00 */
        /*0020*/                   HFMA2.MMA R0, -RZ, RZ, 0, 2.384185791015625e-07 ;   /* 0x00000004ff007435 */
        /*0200*/                   FFMA R8, R8, R9, RZ ;                               /* 0x0000000908087223 */
        /*0210*/                   FFMA R8, R8, R9, R8 ;                               /* 0x0000000908087223 */
        /*03f0*/                   EXIT ;                                              /* 0x000000000000794d */
\t\t..........

\t\tFunction : tensor
        /*00b0*/                   LDGSTS.E.BYPASS.128 [R7], [R2.64] ;                 /* 0x0000000002077fae */
        /*0110*/              @!P0 LDGSTS.E.BYPASS.128 [R9], [R4.64] ;                 /* 0x0000000004098fae */
        /*0140*/                   LDGDEPBAR ;                                         /* 0x00000000000079af */
        /*0230*/                   LDSM.16.M88.4 R4, [R0] ;                            /* 0x000000000004783b */
        /*0250*/                   HMMA.16816.F32.BF16 R4, R4, R2, RZ ;                /* 0x000000020404723c */
        /*0260*/               @P1 HMMA.16816.F32.BF16 R8, R4, R2, R8 ;                /* 0x000000020404723c */
        /*0270*/                   BRA 0x270;                                          /* 0xfffffff000007947 */
"""


def test_parse_sass_counts_mnemonics_per_kernel():
    by_kernel = kc.parse_sass(SASS)
    assert set(by_kernel) == {"fma_only", "tensor"}
    assert by_kernel["fma_only"] == {"MOV": 1, "HFMA2.MMA": 1, "FFMA": 2, "EXIT": 1}
    assert by_kernel["tensor"] == {"LDGSTS.E.BYPASS.128": 2, "LDGDEPBAR": 1, "LDSM.16.M88.4": 1,
                                   "HMMA.16816.F32.BF16": 2, "BRA": 1}
    assert [kc.count_base(by_kernel["tensor"], b) for b in kc.SASS_COLUMNS] == [2, 1, 2]
    assert [kc.count_base(by_kernel["fma_only"], b) for b in kc.SASS_COLUMNS] == [0, 0, 0]  # HFMA2.MMA: no HMMA


@pytest.mark.parametrize("dtype,ok", [("bfloat16", True), ("half", False), ("float", False)])
def test_sass_requirements_name_what_is_missing(dtype, ok):
    """A bf16 HMMA satisfies the bfloat16 variant only: the f16 one wants HMMA.16816.F32 exactly, TF32
    HMMA.1688.F32.TF32; a kernel outside the GEMM pattern is not held to it."""
    by_kernel = kc.parse_sass(SASS)
    v = kc.tensor_core_variant(dtype)
    problems = kc.sass_problems("conv_tc_forward", by_kernel["tensor"], v)
    assert (problems == []) == ok, problems
    if not ok:
        (message,) = problems
        assert message.startswith(f"SASS lacks {dict(half='HMMA.16816.F32', float='HMMA.1688.F32.TF32')[dtype]}")
        assert "it has HMMA.16816.F32.BF16 x2, LDGSTS.E.BYPASS.128 x2, LDSM.16.M88.4 x1" in message
    (message,) = kc.sass_problems("conv_tc_backward_filter", by_kernel["fma_only"], kc.tensor_core_variant("half"))
    assert message.startswith("SASS lacks HMMA.16816.F32, LDSM") and "it has no HMMA/LDSM/LDGSTS" in message
    assert kc.sass_problems("conv_tc_bias_reduce", by_kernel["fma_only"], v) == []


def test_table_with_sass_columns():
    report = kc.CompileReport("fam", "sm_80", "half", "nvrtc", (), "", True,
                              variant=kc.tensor_core_variant("half"))
    k = kc.KernelReport("fam", "tensor", "sm_80", "half", 40, 0, 0, 0, 0, variant=report.variant,
                        sass=kc.parse_sass(SASS)["tensor"])
    report.kernels.append(k)
    lines = kc.format_table([report]).splitlines()
    assert lines[0].split() == ["family", "kernel", "arch", "dtype", "registers", "smem", "stack", "spills", "st/ld",
                                "variant", "HMMA", "LDSM", "LDGSTS", "status"]
    assert lines[2].split() == ["fam", "tensor", "sm_80", "half", "40", "0", "0", "0/0", "-", "2", "1", "2", "ok"]


def test_write_cubins_names_and_refuses_duplicates(tmp_path):
    a = kc.CompileReport("fam", "sm_80", "float", "nvrtc", (), "", True, cubin=b"\x7fELF-a")
    b = kc.CompileReport("fam", "sm_90", "float", "nvrtc", (), "", True, cubin=b"\x7fELF-b")
    failed = kc.CompileReport("fam", "sm_86", "float", "nvrtc", (), "", False)
    paths = kc.write_cubins([a, b, failed], tmp_path / "new")
    assert [p.name for p in paths] == ["fam-float-sm_80.cubin", "fam-float-sm_90.cubin"]
    assert paths[1].read_bytes() == b"\x7fELF-b"
    assert sorted(q.name for q in (tmp_path / "new").iterdir()) == ["fam-float-sm_80.cubin", "fam-float-sm_90.cubin"]
    with pytest.raises(ValueError, match="fam-float-sm_80.cubin compiled more than once"):
        kc.write_cubins([a, a], tmp_path)


def test_find_tool(monkeypatch, tmp_path):
    tool = tmp_path / "cuda" / "bin" / "cuobjdump"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    assert kc.find_tool("cuobjdump") == str(tool)
    monkeypatch.setattr(kc, "_wheel_bin_dirs", lambda: [])
    monkeypatch.setattr(kc, "CUDA_DEFAULT_ROOT", str(tmp_path / "cuda"))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.delenv("CUDA_PATH", raising=False)
    assert kc.find_tool("cuobjdump") == str(tool)  # the default root
    assert kc.find_tool("nvdisasm") is None
    reason = kc.sass_tools_missing()
    assert reason == ("nvdisasm not found (cuobjdump -sass runs nvdisasm): pip install nvidia-cuda-nvdisasm "
                      "(in the test extra), or put a CUDA toolkit's bin on PATH")
    with pytest.raises(kc.SassToolsNotFound, match="nvdisasm not found"):
        kc.sass_text(b"\x7fELF")
