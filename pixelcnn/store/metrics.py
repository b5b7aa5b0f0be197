"""The run folder's ``metrics.jsonl``: one JSON event a line, appended as training goes."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Iterable

from .files import atomic_write, depth, read_tail

METRICS_NAME = "metrics.jsonl"


def append_event(path: Path, event: dict[str, Any]) -> None:
    """Append one event as a JSON line and flush it, so a reader sees whole lines."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event, allow_nan=False) + "\n")


MAX_METRICS_BYTES = 64 << 20  # about 200,000 events; a longer file is read from its last 64 MB
LINE_DEPTH = 4
# Every field a reader of the events uses, with its type and range: an event with any of them out of place is
# skipped where it is read, so no page or command meets a NaN step count or a batch size of "x".
MAX_COUNT = 10**12
INTEGER_FIELDS = ("step", "total_steps", "steps_per_epoch", "n_images", "processes", "passes")
NUMBER_FIELDS = ("elapsed", "bits_per_dim", "images_per_s", "epoch", "lr", "no_label_bits_per_dim",
                 "average_bits_per_dim", "budget_seconds", "seconds", "test_bits_per_dim",
                 "test_no_label_bits_per_dim", "test_average_bits_per_dim")
TEXT_FIELDS = ("file", "status", "message", "device", "device_name", "phase")
MAX_BATCH_SIZE = 1 << 20


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _number(value: Any) -> bool:
    """A finite, non-negative number (or null, for an absent reading)."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and value >= 0)


def well_typed(event: Any) -> bool:
    """An event the readers can use as it is: an object with a text ``event``; counts (step, total_steps...)
    that are whole numbers in [0, 10^12]; readings (bits/dim, seconds, rates) that are finite and not negative;
    text where text goes; a ``train`` settings object whose batch size, if any, is a positive count, and a
    ``model`` object."""
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return False
    if not _count(event.get("step", 0)):
        return False
    if any(name in event and not _count(event[name]) for name in INTEGER_FIELDS[1:]):
        return False
    if any(name in event and not _number(event[name]) for name in NUMBER_FIELDS):
        return False
    if any(name in event and not isinstance(event[name], str) for name in TEXT_FIELDS):
        return False
    if "model" in event and not isinstance(event["model"], dict):
        return False
    if "train" in event:
        train = event["train"]
        batch = train.get("batch_size") if isinstance(train, dict) else None
        if not isinstance(train, dict) or (batch is not None and not (_count(batch) and 1 <= batch <= MAX_BATCH_SIZE)):
            return False
    return True


def _parse(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Whole, well-typed JSON events from lines; a garbled, mistyped or deeply nested line is skipped and a
    torn last line (no newline) ends the list."""
    events = []
    for line in lines:
        if not line.endswith("\n"):
            break
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if well_typed(event) and depth(event) <= LINE_DEPTH:
            events.append(event)
    return events


def read_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All whole events in a metrics file; a torn or garbled line (say, the last one of a killed run) is skipped.
    Only a regular file is read (a FIFO would block), and of a file over ``MAX_METRICS_BYTES`` its end only."""
    try:
        info = os.stat(path)
    except OSError:
        return []
    if not stat.S_ISREG(info.st_mode):
        return []
    if info.st_size > MAX_METRICS_BYTES:
        return read_last_events(path, MAX_METRICS_BYTES)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return _parse(f)
    except OSError:
        return []


def read_last_events(path: str | os.PathLike, max_bytes: int = 65_536) -> list[dict[str, Any]]:
    """The whole events among the last ``max_bytes`` of a metrics file: enough to tell how a run ended."""
    return _parse(read_tail(path, max_bytes).decode("utf-8", errors="replace").splitlines(keepends=True))


def rewrite_events(path: Path, events: Iterable[dict[str, Any]]) -> None:
    """Replace the metrics file atomically (used when a resumed run drops events past its checkpoint)."""
    text = "".join(json.dumps(e) + "\n" for e in events)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def curves(events: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(step, bits/dim) series per event kind: ``train``, ``val`` and ``test``."""
    out: dict[str, list[tuple[float, float]]] = {"train": [], "val": [], "test": []}
    for e in events:
        kind = e.get("event")
        value = e.get("bits_per_dim")
        if kind in out and isinstance(value, (int, float)) and math.isfinite(value):
            out[kind].append((e.get("step", 0), value))
    return out


def progress_of(events: list[dict[str, Any]], window: int = 20) -> dict[str, Any]:
    """Where a run stands: step, total, fraction, images/s (over the wall clock of the last ``window``
    steps, validations and checkpoints included, so it is the rate the run keeps, not one step's), ETA in
    seconds, the latest train and validation bits/dim, and the test bits/dim once known."""
    start = next((e for e in reversed(events) if e.get("event") == "start"), {})
    total = int(start.get("total_steps") or 0)
    train = [e for e in events if e.get("event") == "train"]
    step = int(train[-1]["step"]) if train else int(start.get("step") or 0)
    batch = (start.get("train") or {}).get("batch_size") or 128
    rate = _kept_rate(train[-window - 1:], batch)
    eta = (total - step) * batch / rate if rate and total else None
    budget = start.get("budget_seconds")
    if isinstance(budget, (int, float)) and budget > 0:  # a time budget: the clock says how far it is
        elapsed = float(train[-1].get("elapsed", 0.0)) if train else 0.0
        fraction = min(elapsed / budget, 1.0)
        return {"step": step, "total": total, "fraction": fraction, "images_per_s": rate,
                "eta_seconds": max(budget - elapsed, 0.0), "budget_seconds": budget,
                **_latest(events)}
    return {"step": step, "total": total, "fraction": step / total if total else 0.0, "images_per_s": rate,
            "eta_seconds": eta, "budget_seconds": None, **_latest(events)}


def _kept_rate(train: list[dict[str, Any]], batch: int) -> float | None:
    """Images/s from the first to the last of these train events by their clock; with one event, its own
    rate."""
    timed = [e for e in train if isinstance(e.get("elapsed"), (int, float)) and isinstance(e.get("step"), int)]
    if len(timed) >= 2 and timed[-1]["elapsed"] > timed[0]["elapsed"] and timed[-1]["step"] > timed[0]["step"]:
        return (timed[-1]["step"] - timed[0]["step"]) * batch / (timed[-1]["elapsed"] - timed[0]["elapsed"])
    last = train[-1].get("images_per_s") if train else None
    return float(last) if isinstance(last, (int, float)) else None


def _latest(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest train, validation and test bits/dim, and how many images the test was on."""
    latest = {kind: next((e for e in reversed(events) if e.get("event") == kind), None)
              for kind in ("train", "val", "test")}
    return {**{kind: None if e is None else e.get("bits_per_dim") for kind, e in latest.items()},
            "test_images": None if latest["test"] is None else latest["test"].get("n_images")}
