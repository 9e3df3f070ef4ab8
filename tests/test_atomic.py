"""gpucnn.atomic: a file is replaced whole or left as it was, never half written, and no temporary is
left behind."""
import contextlib
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
    with atomic.atomic_open(target, "w", permissions=0o640) as f:
        f.write("shared")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic.atomic_open(target, "a"):
            pass
    with pytest.raises(FileNotFoundError):
        atomic.write_text(tmp_path / "no-such-folder" / "x.txt", "x")
    assert leftovers(tmp_path) == []


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def open_mode(path):
    """The permission bits open(path, "w") gives a file (the reference)."""
    with open(path, "w"):
        pass
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.unlink(path)
    return mode


@pytest.mark.skipif(os.name != "posix", reason="umask and permission bits are POSIX")
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_umask_mode_like_open(tmp_path, mask, expected):
    with umask(mask):
        assert open_mode(tmp_path / "reference") == expected
        for writer in (lambda p: atomic.write_text(p, "x"), lambda p: atomic.write_json(p, [1], durable=True)):
            target = tmp_path / f"new-{len(list(tmp_path.iterdir()))}"
            writer(target)
            assert stat.S_IMODE(target.stat().st_mode) == expected
        with atomic.atomic_path(tmp_path / "lib.so") as tmp:
            tmp.write_bytes(b"built")
        assert stat.S_IMODE((tmp_path / "lib.so").stat().st_mode) == expected


@pytest.mark.skipif(os.name != "posix", reason="umask and permission bits are POSIX")
def test_a_replaced_file_keeps_its_mode_like_open(tmp_path):
    target = tmp_path / "model.npz"
    with umask(0o022):
        target.write_bytes(b"old")
        os.chmod(target, 0o600)  # made private by its owner: replacing it must not widen it
        atomic.write_text(target, "new")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        os.chmod(target, 0o664)
        with atomic.atomic_open(target, "wb") as f:
            f.write(b"newer")
        assert stat.S_IMODE(target.stat().st_mode) == 0o664 and target.read_bytes() == b"newer"
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


@pytest.mark.skipif(os.name != "posix", reason="umask is POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027])
def test_current_umask_reads_it_without_changing_it(mask):
    with umask(mask):
        assert atomic.current_umask() == mask
        assert os.umask(mask) == mask  # unchanged
