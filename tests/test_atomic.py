"""gpucnn.atomic: a file is replaced whole or left as it was, never half written, and no temporary is
left behind."""
import json
import math
import os
import stat

import pytest

from gpucnn import atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_open_replaces_the_file_and_keeps_it_on_an_error(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with atomic.atomic_open(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old"  # (not visible before the block ends)
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic.atomic_open(target) as f:
            f.write(b"half")
            raise RuntimeError("disk gone")
    assert target.read_bytes() == b"new" and leftovers(tmp_path) == []


def test_text_mode_permissions_and_bad_modes(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic.atomic_open(target, "w") as f:
        f.write("µ ok\n")
    assert target.read_text(encoding="utf-8") == "µ ok\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # mkstemp's: private unless asked
    with atomic.atomic_open(target, "w", permissions=0o644) as f:
        f.write("shared")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic.atomic_open(target, "a"):
            pass
    with pytest.raises(FileNotFoundError):
        atomic.write_text(tmp_path / "no-such-folder" / "x.txt", "x")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("durable", [False, True])
def test_durable_syncs_the_file_then_the_folder(tmp_path, monkeypatch, durable):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "ckpt.json"
    atomic.write_json(target, {"a": 1}, durable=durable)
    monkeypatch.undo()
    if not durable:
        assert synced == []
    elif os.path.exists("/proc/self/fd"):
        assert len(synced) == 2 and os.path.basename(synced[0]).startswith(".ckpt.json.")
        assert synced[1] == str(tmp_path)


def test_write_json_allows_nan_and_writes_nothing_it_cannot_encode(tmp_path):
    target = tmp_path / "m.json"
    atomic.write_json(target, {"loss": math.nan, "best": math.inf})
    text = target.read_text()
    assert text.endswith("\n") and math.isnan(json.loads(text)["loss"])
    with pytest.raises(TypeError):
        atomic.write_json(target, {"bad": object()})
    assert math.isinf(json.loads(target.read_text())["best"]) and leftovers(tmp_path) == []


def test_atomic_path_for_writers_that_want_a_name(tmp_path):
    target = tmp_path / "lib.so"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and not tmp.exists()
        tmp.write_bytes(b"built")
    assert target.read_bytes() == b"built"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"broken")
            raise RuntimeError("compiler failed")
    assert target.read_bytes() == b"built" and leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError):  # the writer made nothing: nothing to put in place
        with atomic.atomic_path(target):
            pass
    assert target.read_bytes() == b"built"
