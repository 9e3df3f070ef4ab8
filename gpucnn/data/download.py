"""The dataset cache folder and checksum-verified downloads (urllib only)."""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from gpucnn.atomic import atomic_open
from gpucnn.errors import DataError

CACHE_ENV = "GPUCNN_CACHE_DIR"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where datasets are cached: ``$GPUCNN_CACHE_DIR/datasets``, default ``~/.cache/gpucnn/datasets``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "gpucnn"
    return root / "datasets"


def file_md5(path: str | os.PathLike) -> str:
    """The hex MD5 of a file (the checksum the datasets publish; not used for security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url: str, dest: str | os.PathLike, md5: str | None, *, progress: bool = True, timeout: float = 30.0
) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verify its MD5, then rename into place.

    A file whose checksum does not match is deleted and :class:`DataError` raised; so is a failed
    connection (with a hint to place the file by hand). ``progress`` shows a click progress bar on
    stderr.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the dataset folder {dest.parent} ({exc.strerror or exc})") from None
    offline_hint = f"place the files in {dest.parent} or pass a path"
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DataError(f"could not download {url} (HTTP {exc.code} {exc.reason}); {offline_hint}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {url} ({reason}) (offline?); {offline_hint}") from None

    digest = hashlib.md5(usedforsecurity=False)
    try:
        # Written atomically: an interrupted or rejected download leaves no file at dest.
        with response, atomic_open(dest, "wb", permissions=0o644) as out:  # (a dataset cache is not secret)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, f"Downloading {dest.name}") if progress else None
            got = 0
            try:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    got += len(block)
                    digest.update(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.render_finish()
            if total is not None and got != total:
                raise DataError(
                    f"could not download {url}: the connection closed after {got:,} of {total:,} bytes "
                    f"(offline?); {offline_hint}"
                )
            actual = digest.hexdigest()
            if md5 is not None and actual != md5.lower():
                raise DataError(
                    f"checksum mismatch for {url}: expected MD5 {md5}, got {actual}; the downloaded file "
                    f"was deleted (a corrupt download or a changed mirror; try again or {offline_hint})"
                )
    except (OSError, socket.timeout, urllib.error.URLError, http.client.HTTPException) as exc:
        raise DataError(f"could not download {url} ({exc}) (offline?); {offline_hint}") from None
    return dest


class _Bar:
    """click's progress bar, entered by hand so a download loop can update it."""

    def __init__(self, total: int | None, label: str) -> None:
        import click

        self._cm = click.progressbar(length=total, label=label, file=sys.stderr)
        self._bar = self._cm.__enter__()

    def update(self, n: int) -> None:
        self._bar.update(n)

    def render_finish(self) -> None:
        self._cm.__exit__(None, None, None)


def _progress_bar(total: int | None, label: str) -> _Bar | None:
    try:
        return _Bar(total, label)
    except Exception:  # a progress bar must never break a download
        return None
