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


class TrainingProgress:
    """The training command's progress line, from the run's events: the step (of the total, or the clock
    of a time budget), the latest train and validation bits/dim, and the time left."""

    def __init__(self, bar: ProgressBar):
        self.bar = bar
        self.train: float | None = None
        self.val: float | None = None
        self.total, self.first, self.t0, self.budget = 0, 0, time.monotonic(), None

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            self.total, self.first = event["total_steps"], event["step"]
            self.t0, self.budget = time.monotonic(), event.get("budget_seconds")
        elif kind in ("train", "val"):
            setattr(self, kind, event["bits_per_dim"])
            step = event["step"]
            rate = (time.monotonic() - self.t0) / max(step - self.first, 1)
            text = f"step {step}" + ("" if self.budget else f"/{self.total}") + f"  train {self.train or 0:.4f}"
            if self.val is not None:
                text += f"  val {self.val:.4f}"
            if self.budget:
                left, fraction = self.budget - event["elapsed"], event["elapsed"] / self.budget
            else:
                left, fraction = rate * (self.total - step), step / self.total
            self.bar.update(min(fraction, 1.0), text + f"  bits/dim  ETA {format_seconds(max(left, 0))}")
        elif kind == "test":
            self.bar.update(1.0, "evaluated on the test set")
