"""What a run is doing now, from its own files: starting, training, validating, drawing, testing N images
(with an estimate), stopping, or how it ended, as one line for the Train page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.files import is_number
from ..store.rundir import stop_requested

ENDED = {"finished": "finished", "stopped": "stopped: its last checkpoint is kept and it can be resumed",
         "interrupted": "interrupted", "failed": "failed", "damaged": "damaged", "imported": "imported",
         "new": "not started"}


@dataclass(frozen=True)
class Phase:
    """``name``: starting, training, validating, drawing, testing, stopping, or the run's ended status."""

    name: str
    text: str

    @property
    def active(self) -> bool:
        return self.name in ("starting", "training", "validating", "drawing", "testing", "stopping")


def _this_attempt(events: list[dict[str, Any]], job: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The events since the start of the attempt the job runs (None before it has started): the last start
    event, if it is not older than the job."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].get("event") == "start":
            started, when = job.get("started"), events[i].get("time")
            if is_number(started) and is_number(when) and when < started - 1:
                return None  # an earlier attempt's start: this one is still importing and loading
            return events[i:]
    return None


def _evaluation_rate(events: list[dict[str, Any]]) -> float | None:
    """Images/s of the latest evaluation that has finished: a validating phase and the validation after it."""
    for i in range(len(events) - 1, 0, -1):
        done, began = events[i], events[i - 1]
        if done.get("event") == "val" and began.get("event") == "phase" and began.get("phase") == "validating":
            seconds = (done.get("elapsed") or 0) - (began.get("elapsed") or 0)
            if seconds > 0 and is_number(began.get("n_images")):
                return began["n_images"] / seconds
    return None


def run_phase(run_dir: Path, status: str, events: list[dict[str, Any]], job: dict[str, Any]) -> Phase:
    """The phase of the run in ``run_dir``, whose status is ``status`` (see :func:`~pixelcnn.serve.runs.run_status`),
    from its events (all of them, or at least since its latest start) and its job record."""
    if status != "running":
        return Phase(status, ENDED.get(status, status))
    if stop_requested(run_dir):
        return Phase("stopping", "stopping: it saves a checkpoint after the current step, then exits")
    attempt = _this_attempt(events, job)
    if attempt is None:
        return Phase("starting", "starting: loading the data and building the model")
    last = next((e for e in reversed(attempt) if e.get("event") not in ("checkpoint",)), attempt[-1])
    n = last.get("n_images") if is_number(last.get("n_images")) else 0
    if last.get("event") == "phase" and last.get("phase") == "testing":
        rate = _evaluation_rate(attempt) or _evaluation_rate(events)
        passes = last.get("passes") if is_number(last.get("passes")) else 1
        about = f", about {n * passes / rate:.0f} s in all" if rate else ""
        return Phase("testing", f"testing on {n:,} images{about}")
    if last.get("event") == "phase" and last.get("phase") == "validating":
        return Phase("validating", f"validating on {n:,} images")
    if last.get("event") == "phase" and last.get("phase") == "drawing":
        return Phase("drawing", f"drawing {n} live samples")
    return Phase("training", "training")
