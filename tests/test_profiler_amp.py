"""gpucnn.profiler with amp: the profiled steps run under autocast (16-bit conv outputs), and
step_peak_memory measures a step in a fresh process, for `gpucnn profile --amp`."""
import numpy as np
import pytest
from click.testing import CliRunner

import gpucnn
from cli.main import cli
from gpucnn.profiler import model_step, profile_model, step_peak_memory


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_profiled_steps_run_under_autocast(amp):
    model = gpucnn.models.build_model("keras-mnist")
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))  # (the profiled copy keeps it)
    prof = profile_model(model, 4, steps=2, warmup=1, amp=amp)
    low = {"fp16": gpucnn.float16, "bf16": gpucnn.bfloat16}[amp]
    assert prof.steps == 2 and seen and all(d == low for d in seen)
    assert all(p.dtype == np.float32 for p in model.parameters())  # the model itself is untouched


def test_the_step_runs_in_the_low_dtype():
    model = gpucnn.models.build_model("keras-mnist")
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model_step(model, 2, amp="bf16")()
    assert seen[-1] == gpucnn.bfloat16
    model_step(model, 2)()
    assert seen[-1] == np.float32


def test_peak_memory_in_a_fresh_process_and_the_cli_line():
    m = step_peak_memory("keras-mnist", 2, amp="bf16", steps=1)
    assert 0 < m["setup_rss_mib"] <= m["peak_rss_mib"] < 4096
    result = CliRunner().invoke(cli, ["profile", "--amp", "fp16", "--steps", "1", "--warmup", "0",
                                      "--batch-size", "2", "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "device cpu, amp fp16" in result.output and "peak RSS (MiB, a fresh process each, 1 steps): amp fp16" \
        in result.output and ", float32 " in result.output
