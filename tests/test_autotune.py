"""gpucnn.autotune: when it tunes, what it keeps (in memory and on disk), how it survives bad cache files
and failing candidates; and the conv kernels tuned end to end on the emulator (host-timed there: the
machinery, not the GPU's choice, is under test)."""
import json
import types

import numpy as np
import pytest

import gpucnn
from gpucnn import autotune
from gpucnn.errors import ArgumentError, KernelError
from gpucnn.functions import _conv_tiles
from gpucnn.functions import conv as conv_mod

EMU = gpucnn.get_device("emu")
CANDIDATES = ("a", "b", "c")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private cache file, tuning on (also on emu), nothing remembered from other tests."""
    path = tmp_path / "tune" / "autotune.json"
    monkeypatch.setenv("GPUCNN_AUTOTUNE_CACHE", str(path))
    monkeypatch.setenv("GPUCNN_AUTOTUNE", "1")
    autotune.forget()
    yield path
    autotune.forget()


def fake_timer(times, calls):
    """A timer that runs the candidate and reports the time ``times`` gives it."""
    def timer(device, fn):
        calls.append(fn())
        return times[calls[-1]]
    return timer


def test_picks_the_fastest_and_remembers_it_across_processes(cache):
    calls = []
    timer = fake_timer({"a": 3.0, "b": 1.0, "c": 2.0}, calls)
    assert autotune.pick(EMU, "k1", CANDIDATES, lambda c: c, timer) == "b"
    assert calls == ["a", "b", "c"]
    assert autotune.pick(EMU, "k1", CANDIDATES, lambda c: c, timer) == "b" and len(calls) == 3  # in memory
    stored = json.loads(cache.read_text())
    assert stored == {"emu | k1": "b"}
    autotune.forget()  # as a new process would start: from the file
    assert autotune.pick(EMU, "k1", CANDIDATES, lambda c: c, timer) == "b" and len(calls) == 3
    # another key is tuned on its own and stored beside the first
    assert autotune.pick(EMU, "k2", CANDIDATES, lambda c: c, fake_timer({"a": 1, "b": 2, "c": 3}, calls)) == "a"
    assert json.loads(cache.read_text()) == {"emu | k1": "b", "emu | k2": "a"}


def test_keeps_what_other_processes_stored_meanwhile(cache):
    calls = []
    autotune.pick(EMU, "mine", CANDIDATES, lambda c: c, fake_timer({"a": 1, "b": 2, "c": 3}, calls))
    data = json.loads(cache.read_text())
    data["emu | theirs"] = "c"  # written by another process after this one loaded the file
    cache.write_text(json.dumps(data))
    autotune.pick(EMU, "mine too", CANDIDATES, lambda c: c, fake_timer({"a": 3, "b": 1, "c": 2}, calls))
    assert json.loads(cache.read_text()) == {"emu | mine": "a", "emu | theirs": "c", "emu | mine too": "b"}


def test_off_means_the_first_candidate_untimed(monkeypatch):
    monkeypatch.setenv("GPUCNN_AUTOTUNE", "0")
    assert autotune.pick(EMU, "k", CANDIDATES, lambda c: pytest.fail("timed with tuning off")) == "a"


def test_when_tuning_runs(monkeypatch):
    cuda = types.SimpleNamespace(name="cuda", uses_kernels=True)
    cpu = gpucnn.get_device("cpu")
    expect = {"auto": (True, False, False), "1": (True, True, False), "on": (True, True, False),
              "0": (False, False, False), "off": (False, False, False)}
    for value, want in expect.items():
        monkeypatch.setenv("GPUCNN_AUTOTUNE", value)
        assert (autotune.enabled(cuda), autotune.enabled(EMU), autotune.enabled(cpu)) == want, value
    monkeypatch.setenv("GPUCNN_AUTOTUNE", "sometimes")
    with pytest.raises(ArgumentError, match="GPUCNN_AUTOTUNE must be auto, 1 \\(on\\) or 0 \\(off\\), got 'sometimes'"):
        autotune.enabled(EMU)


def test_failing_candidates_are_skipped():
    def run(c):
        if c != "c":
            raise RuntimeError(f"too many resources requested for launch ({c})")
        return c
    assert autotune.pick(EMU, "k", CANDIDATES, run, lambda d, fn: (fn(), 1.0)[1]) == "c"
    with pytest.raises(KernelError, match=r"(?s)autotune k2: every candidate failed:\na: RuntimeError: nope.*c: Runt"):
        autotune.pick(EMU, "k2", CANDIDATES, lambda c: (_ for _ in ()).throw(RuntimeError("nope")),
                      lambda d, fn: (fn(), 1.0)[1])


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"emu | k": 3}'])
def test_an_unreadable_cache_is_reported_and_rewritten(cache, content):
    cache.parent.mkdir(parents=True)
    cache.write_text(content)
    calls = []
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable cache"):
        assert autotune.pick(EMU, "k", CANDIDATES, lambda c: c, fake_timer({"a": 2, "b": 1, "c": 3}, calls)) == "b"
    assert json.loads(cache.read_text()) == {"emu | k": "b"}


def test_a_stored_name_that_is_no_candidate_is_tuned_again(cache):
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"emu | k": "retired-tile"}))
    calls = []
    assert autotune.pick(EMU, "k", CANDIDATES, lambda c: c, fake_timer({"a": 2, "b": 3, "c": 1}, calls)) == "c"
    assert calls == ["a", "b", "c"]


def test_an_unwritable_cache_costs_a_warning_not_the_choice(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GPUCNN_AUTOTUNE_CACHE", str(blocker / "autotune.json"))  # its parent is a file
    autotune.forget()
    with pytest.warns(RuntimeWarning, match="cannot write .*kept for this process only"):
        assert autotune.pick(EMU, "k", CANDIDATES, lambda c: c, fake_timer({"a": 2, "b": 1, "c": 3}, [])) == "b"
    assert autotune.pick(EMU, "k", CANDIDATES, lambda c: pytest.fail("re-timed"), None) == "b"


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("GPUCNN_AUTOTUNE_CACHE")
    monkeypatch.setenv("GPUCNN_CACHE_DIR", str(tmp_path))
    assert autotune.cache_path() == tmp_path / "autotune.json"
    monkeypatch.delenv("GPUCNN_CACHE_DIR")
    assert autotune.cache_path().parts[-3:] == (".cache", "gpucnn", "autotune.json")


def test_conv_layers_tuned_on_the_emulator(cache, monkeypatch):
    """Every pass of a conv times every candidate tile once, keeps one per pass and shape, and computes
    what the NumPy path computes; a second layer of the same shape reuses the choices."""
    launched = []
    real_kernel = conv_mod.Conv2d._kernel

    def spy(self, name, dtype, tile):
        launched.append((name, str(tile)))
        return real_kernel(self, name, dtype, tile)

    monkeypatch.setattr(conv_mod.Conv2d, "_kernel", spy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 5, 9, 7)).astype(np.float32)

    def run(device, n=2):
        tx = gpucnn.tensor(x[:n], device=device, requires_grad=True)
        tw = gpucnn.tensor(w, device=device, requires_grad=True)
        y = gpucnn.functional.conv2d(tx, tw, None, padding=1, padding_mode="reflect")
        y.backward(gpucnn.tensor(gy[:n], device=device))
        return y.numpy(), tx.grad.numpy(), tw.grad.numpy()

    ref = run("cpu")
    got = run("emu")
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
    stored = json.loads(cache.read_text())
    passes = sorted(k.split(" | ")[2].split()[0] for k in stored)
    assert passes == ["backward_data", "backward_filter", "forward"]
    assert set(stored.values()) <= {str(t) for t in _conv_tiles.CANDIDATES}
    for kernel in ("conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter"):
        tried = {t for name, t in launched if name == kernel}
        assert tried == {str(t) for t in _conv_tiles.CANDIDATES}, kernel
    launched.clear()
    again = run("emu")
    assert len(launched) == 3  # one launch per pass: the stored choices
    for g, r in zip(again, got):
        np.testing.assert_array_equal(g, r)
    launched.clear()
    run("emu", n=1)  # a smaller (last partial) batch: the same layer, so no tuning again
    assert len(launched) == 3
