"""A dependency-free terminal progress bar for the CLI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar:
    """Redraws one line on a terminal; on anything else prints at most one line every ``quiet_every`` seconds."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, quiet_every: float = 30.0):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.quiet_every = quiet_every
        self._last = 0.0
        self._drawn = False

    def update(self, fraction: float, text: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if self.tty:
            if now - self._last < 0.1 and fraction < 1.0:
                return
            filled = int(round(self.width * fraction))
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}% {text}\033[K")
            self._drawn = True
        elif now - self._last >= self.quiet_every or fraction >= 1.0:
            self.stream.write(f"{fraction * 100:5.1f}% {text}\n")
        else:
            return
        self._last = now
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
