"""The Train page's instant estimate: this machine's training speed measured once, in the background, then
scaled to any settings by their cost.

A small probe (the ``live`` model, a few steps, in a niced child process in a
session of its own, as a training job runs) measures training images/s once
per server, with and without bfloat16 autocast. A model's training work per
image is about six multiply-adds per parameter per pixel, so another width or
depth trains at about ``probe speed x probe parameters / its parameters``: the
page answers at once from that, never waiting on a measurement, and says when
the probe ran and how busy the machine was then. Small models gain less than
this promises (per-step overheads), big ones about what it says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..paths import PROJECT_ROOT

PROBE_TIMEOUT_S = 90


@dataclass(frozen=True)
class Probe:
    """One measurement: training images/s of a ``parameters``-parameter model in float32 and in bfloat16
    autocast, when it was taken and the machine's 1-minute load average then."""

    float32: float
    bfloat16: float
    parameters: int
    measured_at: float
    load: float
    cores: int

    def images_per_s(self, parameters: int, amp: bool) -> float:
        """The estimated training images/s of a model of ``parameters`` parameters."""
        return (self.bfloat16 if amp else self.float32) * self.parameters / max(parameters, 1)

    def when(self, now: float | None = None) -> str:
        """``measured 3 minutes ago with the machine at load 0.4 on 2 cores``."""
        ago = max(0.0, (time.time() if now is None else now) - self.measured_at)
        age = "just now" if ago < 60 else f"{ago / 60:.0f} minute{'s' if ago >= 90 else ''} ago" if ago < 5400 \
            else f"{ago / 3600:.1f} hours ago"
        return f"measured {age} with the machine at load {self.load:.1f} on {self.cores} cores"


def run_probe(timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Measure in a child process at a training job's priority (``python -m pixelcnn.training.speed``)."""
    from .jobs import background_training_environment, lower_priority

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    done = subprocess.run([sys.executable, "-m", "pixelcnn.training.speed"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=background_training_environment(), timeout=timeout,
                          start_new_session=True, preexec_fn=lower_priority if hasattr(os, "nice") else None)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"the probe exited with {done.returncode}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return Probe(float(measured["float32"]), float(measured["bfloat16"]), int(measured["parameters"]),
                 time.time(), load, os.cpu_count() or 1)


class SpeedProbe:
    """The server's one probe: :meth:`start` runs it in a thread (again only once the last one is done),
    :meth:`result` returns the latest measurement without waiting."""

    def __init__(self, measure: Callable[[], Probe] = run_probe):
        self._measure = measure
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._result: Probe | None = None
        self._error = ""

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)
            self._thread.start()

    def start_once(self) -> None:
        """Start the first measurement, if none has been started yet."""
        with self._lock:
            if self._thread is not None:
                return
        self.start()

    def _run(self) -> None:
        try:
            result, error = self._measure(), ""
        except (OSError, RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as err:
            result, error = None, str(err) or type(err).__name__
        with self._lock:
            if result is not None:
                self._result = result
            self._error = error

    def measuring(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def result(self) -> Probe | None:
        with self._lock:
            return self._result

    def error(self) -> str:
        with self._lock:
            return self._error


SPEED_PROBE = SpeedProbe()
