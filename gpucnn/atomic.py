"""Files written whole or not at all.

Every writer here fills a temporary file beside the target and renames it over the target
(``os.replace``: atomic on POSIX and Windows within one folder). A reader never sees half a file, and an
error, a full disk or a killed process leaves the previous file as it was (and no temporary: it is
removed on any exception; only a hard kill can leave one, named ``.<name>.*.part``).

``durable=True`` also flushes the file to disk before the rename and the folder after it, so the new
file survives a power cut: for what a user cannot recreate (checkpoints, saved models, metrics).

Permissions are those ``open(path, "w")`` would give: a new file gets ``0o666 & ~umask`` (0644 under the
usual umask 022, 0600 under 077), and a file being replaced keeps its permission bits (so a model a user
made private stays private); ``permissions=`` sets them explicitly.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", *, durable: bool = False,
                permissions: Optional[int] = None) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically: the file object writes a temporary beside ``path``,
    which replaces ``path`` when the block ends without an exception and is removed when it raises.
    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8). The file's permissions are what ``open()`` gives (see the
    module docstring) unless ``permissions`` (e.g. ``0o644``) is given; ``durable``: see the module
    docstring. OSErrors (a missing folder, a full disk) propagate."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    perms = _open_mode(path) if permissions is None else permissions  # (not mkstemp's 0600: all private)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux's
    /proc/self/status): setting it to read it back would briefly change it for every thread."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # (elsewhere: the only way; 077 so that nothing is created wider meanwhile)
    os.umask(mask)
    return mask


def _open_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file's own, else
    ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A fresh path beside ``path`` (no file there yet) for a writer that wants a file name, such as a
    compiler's ``-o``; renamed over ``path`` when the block ends without an exception, removed (if the
    writer made it) when it raises. The writer's own permissions (umask) are kept."""
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: PathLike, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", durable=durable) as f:
        f.write(text)


def write_json(path: PathLike, data: Any, *, durable: bool = False, indent: int = 2) -> None:
    """Write ``data`` as JSON (NaN and infinities allowed, as Python's json writes them) plus a newline
    to ``path`` atomically. A value JSON cannot hold raises TypeError before anything is written."""
    write_text(path, json.dumps(data, indent=indent, allow_nan=True) + "\n", durable=durable)


def fsync_dir(directory: PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened
    (Windows) or synced."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
