"""SASS inspection (gpucnn.kernel_check.inspect_sass, ``gpucnn kernels --sass --cubin-dir``), proven on test
kernels both ways: ``sources/tc_probe.cu``'s tc_probe_f16 (cp.async, ldmatrix, mma.sync m16n8k16 f16) must
show LDGSTS, LDSM and HMMA.16816.F32 on every tensor-core arch and with both compilers, tc_probe_bf16 and
tc_probe_tf32 the HMMA of their types (the mnemonics kernel_check.TC_HMMA expects), tc_probe_fma none of
them; a requirement of HMMA then fails on the FMA kernel, naming it. Then the families themselves:
the SIMT conv kernels ("highest" precision float32) must use no tensor core, and the tensor-core family
conv_tc must show the HMMA of each of its types (skipped, saying so, until kernels_cuda/conv_tc.cu exists).

cuobjdump and nvdisasm come from the nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm wheels (the test extra)
or a CUDA toolkit; without them these tests skip with the reason.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import kernels_cuda
from cli.main import cli
from gpucnn import kernel_check as kc
from gpucnn import nvrtc
from gpucnn.kernels import BASE_OPTIONS

PROBE = Path(__file__).parent / "sources" / "tc_probe.cu"
TC_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")  # the tensor-core archs the issue names
# A requirement of a 16-bit tensor-core GEMM, held to the f16 and the FMA probes (not the bf16/TF32 ones).
F16_MMA = kc.Variant("float", sass=(kc.TC_HMMA["half"], kc.LDSM, kc.LDGSTS), sass_kernels="tc_probe_(f16|fma)")


@pytest.fixture
def need_sass_tools():
    reason = kc.sass_tools_missing()
    if reason:
        pytest.skip(reason)


def _need(compiler: str) -> None:
    if compiler == "nvrtc" and not nvrtc.available():
        pytest.skip("libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12")
    if compiler == "nvcc" and kc.find_nvcc() is None:
        pytest.skip("nvcc not installed")


def re_fullmatch(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def _probe(arch: str, compiler: str, variant: kc.Variant = F16_MMA) -> kc.CompileReport:
    report = kc.check_source(PROBE.read_text(), str(PROBE), arch, options=BASE_OPTIONS, compiler=compiler,
                             variant=variant)
    assert report.compiled, report.log
    kc.inspect_sass([report])
    return report


@pytest.mark.parametrize("compiler,arch", [("nvrtc", a) for a in TC_ARCHS] + [("nvcc", "sm_80"), ("nvcc", "sm_90")])
def test_probe_kernels_sass_both_ways(need_sass_tools, compiler, arch):
    _need(compiler)
    report = _probe(arch, compiler)
    by_name = {k.kernel: k for k in report.kernels}
    f16, fma = by_name["tc_probe_f16"].sass, by_name["tc_probe_fma"].sass
    assert f16["HMMA.16816.F32"] == 1 and kc.count_base(f16, "HMMA") == 1  # one m16n8k16 f16 mma.sync
    assert kc.count_base(f16, "LDSM") == 2 and kc.count_base(f16, "LDGSTS") == 2  # x4 + x2; two 16-B copies
    for kernel, dtype in (("tc_probe_bf16", "bfloat16"), ("tc_probe_tf32", "float")):
        hmma = {op: n for op, n in by_name[kernel].sass.items() if op.startswith("HMMA")}
        assert len(hmma) == 1 and re_fullmatch(kc.TC_HMMA[dtype], *hmma), hmma
        assert by_name[kernel].ok  # not held to the f16 requirement
    assert [kc.count_base(fma, b) for b in kc.SASS_COLUMNS] == [0, 0, 0]
    assert kc.count_base(fma, "FFMA") > 0
    # The same requirement on both kernels: the f16 one meets it, the FMA one fails, named with what it lacks.
    assert by_name["tc_probe_f16"].ok
    assert by_name["tc_probe_fma"].problems == [
        "SASS lacks HMMA.16816.F32, LDSM, LDGSTS (required of T=float; it has no HMMA/LDSM/LDGSTS)"]
    (failure,) = report.failures()
    assert failure.startswith(f"tc_probe.cu kernel tc_probe_fma ({arch}, T=float): ")


def test_requirement_that_matches_no_kernel_fails(need_sass_tools):
    _need("nvrtc")
    report = _probe("sm_80", "nvrtc", kc.Variant("float", sass=(kc.TC_HMMA["half"],), sass_kernels="^conv_tc_"))
    assert all(k.ok for k in report.kernels)
    assert report.problems == ["no kernel name matches '^conv_tc_', the kernels whose SASS must have "
                               "HMMA.16816.F32 (T=float)"]


@pytest.fixture
def probe_family(monkeypatch, tmp_path):
    """kernels_cuda holding only the probe, as a family whose variant requires f16 HMMA of its kernels
    matching ``requirement`` (set by the test through the returned dict)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "tc_probe.cu").write_text(PROBE.read_text())
    spec = {"sass_kernels": "tc_probe_f16"}
    monkeypatch.setattr(kernels_cuda, "families", lambda: ["tc_probe"])
    monkeypatch.setattr(kc, "kernel_path", lambda family: src / f"{family}.cu")
    monkeypatch.setitem(kc.FAMILY_VARIANTS, "tc_probe", lambda all_tiles: [
        kc.tensor_core_variant("half", sass=F16_MMA.sass, **spec)])
    return spec


@pytest.mark.parametrize("compiler", kc.COMPILERS)
def test_cli_writes_named_cubins_with_their_sass(need_sass_tools, probe_family, tmp_path, compiler):
    _need(compiler)
    out = tmp_path / "cubins"
    result = CliRunner().invoke(cli, ["kernels", "--family", "tc_probe", "--arch", "sm_75", "--arch", "sm_80",
                                      "--arch", "sm_90", "--compiler", compiler, "--sass", "--cubin-dir", str(out),
                                      "--jobs", "1"])
    assert result.exit_code == 0, result.output
    # sm_75: not built (the variant needs sm_80: cp.async), and said so.
    assert "tc_probe: nothing to build for sm_75 (its variants: half (sm_80+))" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["tc_probe-half-sm_80.cubin", "tc_probe-half-sm_90.cubin"]
    lines = result.output.splitlines()
    assert lines[1].split()[9:14] == ["variant", "HMMA", "LDSM", "LDGSTS", "status"]  # ("spills st/ld": 2 words)
    rows = {(r[1], r[2]): r for r in (line.split() for line in lines) if r and r[0] == "tc_probe"}
    assert rows[("tc_probe_f16", "sm_90")][9:] == ["1", "2", "2", "ok"]
    assert rows[("tc_probe_tf32", "sm_90")][9:] == ["1", "0", "0", "ok"]
    assert rows[("tc_probe_fma", "sm_80")][9:] == ["0", "0", "0", "ok"]  # not one the variant holds to HMMA
    # What was written is what was inspected: cuobjdump -sass of the file shows the HMMA.
    assert kc.sass_opcodes((out / "tc_probe-half-sm_80.cubin").read_bytes(), "tc_probe_f16")["HMMA.16816.F32"] == 1
    assert "all 8 kernel builds pass (no warnings, no spills, no local memory, SASS as required)" in result.output


def test_cli_fails_a_kernel_without_the_required_hmma(need_sass_tools, probe_family):
    _need("nvrtc")
    probe_family["sass_kernels"] = "tc_probe_(f16|fma)"  # now the FMA kernel too must show them
    result = CliRunner().invoke(cli, ["kernels", "--arch", "sm_80", "--sass", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    assert ("tc_probe.cu kernel tc_probe_fma (sm_80, T=__half): " in result.output
            and "SASS lacks HMMA.16816.F32, LDSM, LDGSTS (required of T=__half; it has no HMMA/LDSM/LDGSTS)"
            in result.output)
    row = next(line for line in result.output.splitlines() if line.startswith("tc_probe ") and "tc_probe_f16" in line)
    assert row.rstrip().endswith("ok")


def test_cli_sass_without_the_tools(probe_family, monkeypatch):
    _need("nvrtc")
    monkeypatch.setattr(kc, "find_tool", lambda name: None if name == "cuobjdump" else "/bin/true")
    result = CliRunner().invoke(cli, ["kernels", "--arch", "sm_80", "--sass", "--jobs", "1"])
    assert result.exit_code == 1
    assert "Error: cuobjdump not found" in result.output and "pip install nvidia-cuda-cuobjdump" in result.output


def test_cli_skips_a_declared_family_without_its_source(probe_family, monkeypatch):
    monkeypatch.setitem(kc.FAMILY_VARIANTS, "not_yet", lambda all_tiles: [kc.Variant("float")])
    result = CliRunner().invoke(cli, ["kernels", "--family", "not_yet"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "not_yet: skipped: kernels_cuda/not_yet.cu does not exist (yet)"


# -- the families ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_simt_conv_uses_no_tensor_core(need_sass_tools, arch):
    """conv.cu is the exact-FP32 ("highest") and float64 path: its SASS must hold no HMMA (no TF32 rounding)."""
    _need("nvrtc")
    reports = kc.check_cases(kc.cases_for(["conv"], (arch,)), jobs=kc.default_jobs())
    kc.inspect_sass(reports)
    for r in reports:
        assert r.kernels and r.ok, "\n".join(r.failures())
        assert {k.kernel: kc.count_base(k.sass, "HMMA") for k in r.kernels} == {k.kernel: 0 for k in r.kernels}


TC_FAMILY = "conv_tc"


@pytest.fixture
def tc_family():
    if not kernels_cuda.kernel_path(TC_FAMILY).is_file():
        pytest.skip(f"kernels_cuda/{TC_FAMILY}.cu does not exist yet (the tensor-core kernels are being written)")
    return TC_FAMILY


@pytest.mark.parametrize("compiler", kc.COMPILERS)
def test_tensor_core_conv_sass_has_hmma(need_sass_tools, tc_family, compiler):
    """Every variant of conv_tc (TF32, FP16, BF16) on sm_80 and sm_90: compiles clean (no warning, spill or
    local memory) and each of its GEMM kernels (forward, backward-data, backward-filter and its pointwise
    form) shows the HMMA of its type and LDGSTS (cp.async: TF32 and 16-bit alike), and LDSM (16-bit)."""
    _need(compiler)
    reports = kc.check_cases(kc.cases_for([tc_family], ("sm_80", "sm_90"), compiler=compiler), jobs=kc.default_jobs())
    kc.inspect_sass(reports)
    print(kc.format_table(reports, max_status=300))
    assert {r.variant.dtype for r in reports} >= {"float", "half", "bfloat16"}
    for r in reports:
        assert r.ok, "\n".join(r.failures())
        gemms = {k.kernel: k.sass for k in r.kernels if re.search(kc.TC_GEMM_KERNELS, k.kernel)}
        assert set(gemms) == {"conv_tc_forward", "conv_tc_backward_data", "conv_tc_backward_filter",
                              "conv_tc_backward_filter_pointwise"}, r.cubin_name
        for kernel, sass in gemms.items():
            hmma = {op for op in sass if op.startswith("HMMA")}
            assert hmma and all(re_fullmatch(kc.TC_HMMA[r.variant.dtype], op) for op in hmma), (r.cubin_name, kernel)
            assert kc.count_base(sass, "LDGSTS") > 0, (r.cubin_name, kernel)
            assert (kc.count_base(sass, "LDSM") > 0) == (r.variant.dtype != "float"), (r.cubin_name, kernel)
