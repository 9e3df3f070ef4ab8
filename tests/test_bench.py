"""Smoke tests of the benchmark harness (gpucnn.bench, `gpucnn bench`) on tiny shapes: it runs, checks
results against PyTorch when PyTorch is installed, and writes its files. Nothing here is timed."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from cli.main import cli
from gpucnn import bench

TINY = dict(rounds=2, warmup=1, memory=False, settle_s=0.0)


def test_quick_run_without_torch_has_every_row():
    results = bench.run(bench.Settings.quick(torch=False, **TINY))
    works = [r["work"] for r in results["rows"]]
    assert sum(r["group"] == "train" for r in results["rows"]) == 2  # keras-mnist b4, the block
    assert any(w.startswith("conv1") for w in works) and any(w.startswith("maxpool2") for w in works)
    assert any(w.startswith("batchnorm") for w in works) and any(w.startswith("add, skip") for w in works)
    assert "inference keras-mnist" in works
    for row in results["rows"]:
        assert row["gpucnn"]["images_per_s"] > 0 and row["gpucnn"]["samples"] == 2
        assert "torch" not in row and "ratio_torch" not in row
    assert results["torch_variants"] == []
    env = results["environment"]
    assert env["gpucnn"] == gpucnn.__version__ and env["numpy"] == np.__version__ and "blas" in env
    table = bench.format_table(results)
    assert "ratio = PyTorch time / gpucnn time (> 1: gpucnn is faster)" in table
    assert "train keras-mnist" in table
    # bandwidth figures: the copy row and the memory-bound layers, nothing else
    by_work = {r["work"]: r for r in results["rows"]}
    assert by_work["copy 1 MiB (reference)"]["bytes"] == 2 << 20
    with_bytes = {w.split()[0].rstrip("0123456789") for w, r in by_work.items() if "bytes" in r}
    assert with_bytes == {"copy", "relu", "maxpool", "batchnorm"}
    assert all(r["gpucnn"]["gb_per_s"] > 0 for r in results["rows"] if "bytes" in r)
    assert "GB/s" in table and "100 %" in table  # the copy row is its own reference


def test_traffic_bytes_counts_each_tensor_once():
    from gpucnn import nn
    x, y = (2, 3, 8, 8), (2, 3, 4, 4)
    nx, ny = 2 * 3 * 64 * 4, 2 * 3 * 16 * 4
    assert bench._traffic_bytes(nn.MaxPool2d(2), x, y, 4, train=False) == nx + ny
    assert bench._traffic_bytes(nn.MaxPool2d(2), x, y, 4, train=True) == nx + ny + (ny + nx + nx)  # gy, x, gx
    assert bench._traffic_bytes(nn.AvgPool2d(2), x, y, 4, train=True) == nx + ny + (ny + nx)      # gy, gx
    assert bench._traffic_bytes(nn.ReLU(), x, x, 4, train=True) == 5 * nx                        # x, y; gy, y, gx
    assert bench._traffic_bytes(nn.BatchNorm2d(3), x, x, 4, train=True) == 5 * nx                # x, y; gy, x, gx
    assert bench._traffic_bytes(nn.Conv2d(3, 3, 3), x, x, 4, train=True) is None


def test_time_interleaved_alternates_and_takes_medians():
    calls = []
    variants = [bench._Variant(name, (lambda name=name: calls.append(name)), lambda fn, n: (fn(), 0.5)[1] * n)
                for name in ("a", "b")]
    out = bench.time_interleaved(variants, rounds=3, warmup=1, min_sample_s=0.0)
    assert out["a"]["median_s"] == 0.5 and out["b"]["samples"] == 3
    # warm-up a b, calibration a b, then rounds (each sample: an untimed run, then the timed one):
    # a b | b a | a b
    assert calls == ["a", "b", "a", "b"] + ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]


def test_relative_error_and_mismatch_is_refused():
    a = np.ones(100, np.float32)
    assert bench.relative_error(a, a) == 0.0
    b = a.copy()
    b[0] = 2.0
    assert bench.relative_error(b, a) == pytest.approx(0.1)
    with pytest.raises(bench.BenchmarkError, match="disagree on the output"):
        bench._check("a row", [("the output", b, a)])


def test_memory_probe_runs_in_a_fresh_process():
    settings = bench.Settings.quick(torch=False)
    m = bench.measure_memory(settings, "gpucnn", "keras-mnist", 4)
    assert 0 < m["setup_rss_mib"] <= m["peak_rss_mib"] < 4096


def test_write_results(tmp_path):
    results = bench.run(bench.Settings.quick(torch=False, groups=("inference",), **TINY))
    json_path, md_path = bench.write_results(results, tmp_path)
    assert json_path.name.endswith(f"-cpu-{json_path.name.split('-cpu-')[1]}")
    data = json.loads(json_path.read_text())
    assert data["format"] == "gpucnn-bench" and data["device"] == "cpu" and len(data["rows"]) == 2
    assert "inference keras-mnist" in md_path.read_text()
    again, _ = bench.write_results(results, tmp_path)  # never overwrites
    assert again != json_path and again.exists()


def test_cli_bench_quick(tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["bench", "--quick", "--no-torch", "--no-memory", "--only", "train",
                                      "--rounds", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "train keras-mnist" in result.output and "ratio" in result.output
    assert len(json.loads(out.read_text())["rows"]) == 2


def test_torch_comparison_agrees():
    torch = pytest.importorskip("torch")
    results = bench.run(bench.Settings.quick(groups=("train", "inference"), **TINY))
    assert results["torch_variants"] == ["torch", "torch_cl"]
    for row in results["rows"]:
        assert row["ratio_torch"] > 0 and row["ratio_torch_cl"] > 0
        assert all(err <= bench.TOLERANCE for err in row["check"].values())
    assert results["environment"]["torch"] == torch.__version__


def test_torch_layers_agree():
    pytest.importorskip("torch")
    results = bench.run(bench.Settings.quick(groups=("layers",), **{**TINY, "rounds": 1, "warmup": 0}))
    assert len(results["rows"]) == 27  # the copy, 9 keras-mnist layers + 4 block layers, fwd and fwd+bwd
    assert all(row["check"] for row in results["rows"][1:])  # (the copy row has nothing to compare)
    assert results["rows"][0]["ratio_torch"] > 0


# -- the NumPy path's thread splitting (the speed work that the benchmarks measure) ---------------------
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("algorithm", [None, "rows", "im2col"])
def test_numpy_path_split_over_threads_matches_one_piece(monkeypatch, algorithm, input_grad):
    """Force every large-op split (tiny thresholds and chunks) and compare a small net's outputs and
    gradients, float64, with the same net run in one piece (convs under either algorithm, or the
    automatic choice; with and without the input's gradient, as for a first layer)."""
    import gpucnn.functions._conv_numpy as conv
    from gpucnn import functional as F
    from gpucnn import nn, workspace

    if not workspace._blas_controllers():
        pytest.skip("splitting needs threadpoolctl")
    monkeypatch.setattr(workspace, "MIN_PIECE", 1)
    monkeypatch.setattr(conv, "SPLIT_ELEMENTS", 1)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 512)
    monkeypatch.setattr(conv, "CHUNK_BYTES_BACKWARD", 2048)
    monkeypatch.setattr(conv, "CHUNK_BYTES_ONE_CHANNEL", 2048)
    monkeypatch.setattr(conv, "ROWS_CHUNK_BYTES", 256)
    monkeypatch.setattr(conv, "ALGORITHM", algorithm)
    gpucnn.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                        nn.Conv2d(6, 5, 3, stride=2), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5, 3)).double()
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((6, 1, 12, 12))
    ya = rng.integers(0, 3, 6)

    def run(threads):
        monkeypatch.setattr(workspace, "THREADS", threads)
        for p in net.parameters():
            p.grad = None
        x = gpucnn.tensor(xa, requires_grad=input_grad)
        out = net(x)
        F.cross_entropy(out, gpucnn.tensor(ya)).backward()
        return [out.numpy()] + ([x.grad.numpy()] if input_grad else []) + [p.grad.numpy() for p in net.parameters()]

    one, split = run(1), run(2)
    for a, b in zip(one, split):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["rows", "im2col"])
def test_conv_gradcheck_with_threads(monkeypatch, algorithm):
    import gpucnn.functions._conv_numpy as conv
    from gpucnn import functional as F
    from gpucnn import workspace

    if not workspace._blas_controllers():
        pytest.skip("splitting needs threadpoolctl")
    monkeypatch.setattr(workspace, "THREADS", 2)
    monkeypatch.setattr(workspace, "MIN_PIECE", 1)
    monkeypatch.setattr(conv, "SPLIT_ELEMENTS", 1)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 256)
    monkeypatch.setattr(conv, "CHUNK_BYTES_BACKWARD", 256)
    monkeypatch.setattr(conv, "CHUNK_BYTES_ONE_CHANNEL", 256)
    monkeypatch.setattr(conv, "ROWS_CHUNK_BYTES", 256)
    monkeypatch.setattr(conv, "ALGORITHM", algorithm)
    rng = np.random.default_rng(1)
    for cin, stride in ((1, 1), (3, 1), (3, 2), (3, (1, 2)), (3, (2, 1))):
        x = gpucnn.tensor(rng.standard_normal((3, cin, 6, 5)), requires_grad=True)
        w = gpucnn.tensor(rng.standard_normal((4, cin, 3, 3)), requires_grad=True)
        b = gpucnn.tensor(rng.standard_normal(4), requires_grad=True)
        assert gpucnn.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=1), (x, w, b))


def test_workspace_pool_reuses_and_never_hands_out_twice():
    from gpucnn import workspace

    workspace.clear()  # (an earlier test may have left an idle buffer of this size in the pool)
    a = workspace.take((3, 5), np.float32)
    base = a.base
    workspace.give(a)
    workspace.give(a)  # a second give of the same buffer is ignored
    b = workspace.take(15, np.float32)
    c = workspace.take(15, np.float32)
    assert b.base is base and c.base is not base
    workspace.give(b, c)
    workspace.give(np.empty(15, np.float32)[::2])  # not a whole buffer: ignored
    workspace.clear()
    assert workspace.idle_bytes() == 0


def test_precision_is_set_for_the_run_and_recorded():
    results = bench.run(bench.Settings.quick(torch=False, precision="high", groups=("layers",), **TINY))
    assert results["settings"]["precision"] == "high"
    assert gpucnn.get_float32_matmul_precision() == "high"  # (the conftest fixture restores it)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_16_bit_run_times_the_convolutions_in_that_dtype_against_torch(dtype):
    pytest.importorskip("torch")
    results = bench.run(bench.Settings.quick(dtype=dtype, **TINY))
    rows = results["rows"]
    assert [r["work"].split()[0] for r in rows] == ["copy"] + ["conv1"] * 2 + ["conv2"] * 2 + ["conv3x3"] * 2
    limit = bench.tolerance(gpucnn.dtypes.as_dtype(dtype))
    assert limit == 4 * {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
    for r in rows[1:]:
        assert r["check"] and all(0 <= e <= limit for e in r["check"].values())  # checked, in 16 bits
    assert results["settings"]["dtype"] == dtype and results["memory"] == []
    table = bench.format_table(results)
    assert f"device cpu, {dtype}" in table and f"the convolution rows only, both frameworks in {dtype}" in table


def test_the_16_bit_check_fails_where_float32_would_pass(monkeypatch):
    """The tolerance follows the dtype: a float16 result off by 2 % is refused."""
    torch = pytest.importorskip("torch")
    ref = torch.ones(100, dtype=torch.float16)
    with pytest.raises(bench.BenchmarkError, match="relative error 2.00e-02 > 3.9e-03"):
        bench._check("x", [("the output", np.full(100, 1.02), ref)], gpucnn.float16)
    assert bench._check("x", [("the output", np.full(100, 1.002), ref)], gpucnn.float16) < 3.9e-3


def test_an_unknown_dtype_is_refused():
    with pytest.raises(bench.BenchmarkError, match="dtype must be one of float32, float16, bfloat16, got 'int8'"):
        bench.run(bench.Settings.quick(dtype="int8", torch=False, **TINY))


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_runs_the_steps_under_autocast_on_both_sides_with_float32_memory_beside(amp):
    pytest.importorskip("torch")
    results = bench.run(bench.Settings.quick(amp=amp, rounds=2, warmup=1, settle_s=0.0, memory_steps=1))
    groups = {r["group"] for r in results["rows"]}
    assert groups == {"train", "inference"}  # no layer rows under --amp
    low = {"fp16": gpucnn.float16, "bf16": gpucnn.bfloat16}[amp]
    for r in results["rows"]:
        assert r["check"] and all(e <= bench.tolerance(low) for e in r["check"].values())
    for m in results["memory"]:
        assert m["gpucnn"]["peak_rss_mib"] > 0 and m["gpucnn_float32"]["peak_rss_mib"] > 0
    table = bench.format_table(results)
    assert f"amp {amp}" in table and "the same step in float32: gpucnn" in table


def test_amp_with_a_16_bit_dtype_is_refused():
    with pytest.raises(bench.BenchmarkError, match="--amp runs float32 models under autocast; it does not combine "
                                                   "with --dtype float16"):
        bench.run(bench.Settings.quick(amp="fp16", dtype="float16", torch=False, **TINY))
