"""Console output for training: a per-batch progress bar on a TTY, plain per-epoch lines elsewhere.

The bar is hand-made (one ``\\r``-rewritten line on stderr, at most ~10 redraws per second) so it costs
nothing measurable and never interleaves with the epoch lines, which go to stdout. When stderr is not
a terminal (CI logs, pytest, a pipe) no bar is drawn at all: only the epoch lines appear.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Optional


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """``bar.update(step, loss, accuracy, images)`` after each batch, ``bar.close()`` at the end."""

    def __init__(self, total: int, label: str, stream: Optional[IO[str]] = None, enabled: Optional[bool] = None,
                 width: int = 24, min_interval: float = 0.1) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else bool(enabled)
        self.width = width
        self.min_interval = min_interval
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False
        self._last_len = 0

    def update(self, step: int, loss: float, accuracy: float, images: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if step < self.total and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        frac = min(step / self.total, 1.0)
        filled = int(round(frac * self.width))
        bar = "=" * filled + (">" if filled < self.width else "") + " " * max(self.width - filled - 1, 0)
        elapsed = now - self._start
        rate = images / elapsed if elapsed > 0 else 0.0
        eta = (elapsed / step) * (self.total - step) if step else 0.0
        line = (f"{self.label} [{bar}] {step}/{self.total}  loss {loss:.4f}  acc {accuracy * 100:5.2f}%  "
                f"{rate:,.0f} img/s  eta {format_duration(eta)}")
        pad = " " * max(self._last_len - len(line), 0)
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._last_len = len(line)
        self._drawn = True

    def close(self) -> None:
        """Erase the bar (the epoch line that follows replaces it)."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._last_len + "\r")
            self.stream.flush()
            self._drawn = False


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
