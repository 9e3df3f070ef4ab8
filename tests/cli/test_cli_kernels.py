"""``gpucnn kernels``: the compile checks' table and exit status, on throwaway kernel families."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import kernels_cuda
from cli.main import cli
from gpucnn import kernel_check, nvrtc

GOOD = '#include "common.cuh"\nextern "C" __global__ void good_copy(const T* x, T* y) { y[threadIdx.x] = x[threadIdx.x]; }\n'
BAD = r'''
extern "C" __global__ void bad_local(const float* x, const int* idx, float* y, int n) {
    float a[64];                                   // indexed with run-time values: local memory
    for (int i = 0; i < 64; i++) a[i] = x[i * n + threadIdx.x];
    for (int i = 0; i < 4; i++) a[idx[i]] += 1.0f;
    y[threadIdx.x] = a[idx[4]] + a[idx[5]];
}
'''


@pytest.fixture
def fake_families(monkeypatch, tmp_path):
    """kernels_cuda holding good.cu and bad.cu (in tmp_path)."""
    (tmp_path / "good.cu").write_text(GOOD)
    (tmp_path / "bad.cu").write_text(BAD)
    monkeypatch.setattr(kernels_cuda, "families", lambda: ["bad", "good"])
    monkeypatch.setattr(kernel_check, "kernel_path", lambda family: tmp_path / f"{family}.cu")
    return tmp_path


needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="libnvrtc not found: pip install nvidia-cuda-nvrtc-cu12")


@needs_nvrtc
def test_kernels_passing_family(fake_families):
    result = CliRunner().invoke(cli, ["kernels", "--family", "good", "--arch", "sm_80", "--arch", "sm_90",
                                      "--dtype", "float", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("NVRTC ")
    assert lines[1].split()[:5] == ["family", "kernel", "arch", "dtype", "registers"]
    rows = [line.split() for line in lines if line.startswith("good ")]
    assert [r[:4] for r in rows] == [["good", "good_copy", "sm_80", "float"], ["good", "good_copy", "sm_90", "float"]]
    assert all(r[-1] == "ok" and int(r[4]) > 0 for r in rows)
    assert "all 2 kernel builds pass" in result.output


@needs_nvrtc
def test_kernels_failing_family_exits_1_with_figures(fake_families):
    result = CliRunner().invoke(cli, ["kernels", "--arch", "sm_80", "--dtype", "float", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("bad ") and "bad_local" in line)
    assert "FAIL: local memory:" in row
    assert "bad.cu kernel bad_local (sm_80, T=float)" in result.output
    assert "bytes stack frame" in result.output
    assert any(line.startswith("good ") and line.rstrip().endswith("ok") for line in result.output.splitlines())


def test_kernels_rejects_unknown_family_and_arch(fake_families):
    result = CliRunner().invoke(cli, ["kernels", "--family", "nope"])
    assert result.exit_code == 2 and "no kernel family nope" in result.output
    result = CliRunner().invoke(cli, ["kernels", "--arch", "80"])
    assert result.exit_code == 2 and "expected sm_XX" in result.output


def test_kernels_without_nvrtc(fake_families, monkeypatch, tmp_path):
    monkeypatch.setenv("GPUCNN_NVRTC", str(tmp_path / "missing" / "libnvrtc.so.12"))
    result = CliRunner().invoke(cli, ["kernels", "--arch", "sm_80"])
    assert result.exit_code == 1
    assert "Error: cannot load libnvrtc" in result.output and "Traceback" not in result.output
