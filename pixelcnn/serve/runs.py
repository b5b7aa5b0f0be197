"""Run folders and background training jobs, for the dashboard.

A job is a ``python -m pixelcnn train`` subprocess in its own session, niced
so that the dashboard stays responsive on the same cores. It writes only its
run folder; anyone can read the folder to follow it, so a run survives page
switches, reloads, closed tabs and dashboard restarts. ``job.json`` records
its process id, which is how a later server finds out whether it still runs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..store.checkpoint import CHECKPOINT_NAME
from ..paths import PROJECT_ROOT, SHIPPED_DIR
from ..errors import ConfigError, PixelCNNError
from ..figures import upscale
from ..store.files import is_number, read_json, read_tail, read_json_object
from ..store.metrics import METRICS_NAME, read_last_events
from ..models import PixelCNNConfig
from ..explain.results import RESULTS_NAME
from .limits import check_servable
from ..store.rundir import CONFIG_NAME, JOB_NAME, LIVE_DIR
from ..training.config import TrainConfig

LOG_NAME = "train.log"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def runs_dir() -> Path:
    """Where dashboard runs live: ``$PIXELCNN_RUNS_DIR``, else ``runs/`` in the project."""
    env = os.environ.get("PIXELCNN_RUNS_DIR")
    return Path(env).expanduser() if env else PROJECT_ROOT / "runs"


def check_run_name(name: str) -> str:
    """A run name is a plain folder name: letters, digits, '.', '_' and '-', at most 64, no leading dot."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ConfigError("run names use letters, digits, '.', '_' and '-' only (at most 64, "
                          "not starting with '.' or '-')")
    return name


def new_run_name(preset: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{preset}"


@dataclass
class RunInfo:
    """What the dashboard shows about one run folder or shipped model."""

    name: str
    path: Path
    kind: str  # "shipped" or "run"
    status: str  # running, finished, stopped, failed, interrupted, imported, damaged, new
    config: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    stamp: tuple = ()  # the folder's files as last read (see folder_stamp): what memos of this run key on

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()


def job_is_alive(pid: int, run_dir: Path) -> bool:
    """Whether process ``pid`` is alive and is the training job of ``run_dir``."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError, ValueError, TypeError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return True  # no /proc (macOS): trust the pid
    if str(run_dir).encode() in cmdline:
        return True
    target = os.path.realpath(run_dir)  # a command line's --out may be relative to where it was typed
    return any(os.path.realpath(cwd / os.fsdecode(arg)) == target for arg in cmdline if arg and b"\n" not in arg)


def read_job(run_dir: Path) -> dict[str, Any]:
    return read_json_object(run_dir / JOB_NAME)


def run_status(run_dir: Path, events: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """(status, message) of a run folder, from its job file and the end of its metrics (``events``, if the
    caller holds them); ``damaged`` and what is wrong with which file, if one of its files is damaged."""
    config, damage = _checked_config(run_dir)
    if damage:
        return "damaged", damage
    events = read_last_events(run_dir / METRICS_NAME) if events is None else events
    return _status(run_dir, events, read_job(run_dir), config, (run_dir / CHECKPOINT_NAME).is_file(),
                   lambda: _log_tail(run_dir))


def _status(run_dir: Path, events: list[dict[str, Any]], job: dict[str, Any], config: dict[str, Any],
            has_checkpoint: bool, log_tail: Callable[[], str]) -> tuple[str, str]:
    """(status, message) from what a run folder holds.

    A job whose process is alive is running unless it already wrote its end
    event (it is about to exit); an end event older than the job's start
    belongs to an earlier attempt that the job is now resuming.
    """
    end = None
    for event in reversed(events):
        if event.get("event") == "end":
            end = event
            break
        if event.get("event") == "start":
            break
    alive = isinstance(job.get("pid"), int) and job_is_alive(job["pid"], run_dir)
    if alive and (end is None or _seconds(end.get("time")) < _seconds(job.get("started"))):
        return "running", ""
    if end is not None:
        return str(end.get("status", "finished")), str(end.get("message", ""))
    if config.get("imported"):
        return "imported", ""
    if has_checkpoint:
        last = log_tail()
        why = f" ({last})" if last.startswith("error") else ""
        return "interrupted", (f"the run stopped without finishing{why}; its last checkpoint is kept and it can "
                               f"be resumed")
    if job:
        return "failed", log_tail() or "the run ended before its first checkpoint"
    return "new", ""


def _seconds(value: Any) -> float:
    """A recorded clock time, 0 if it is not a number."""
    return float(value) if is_number(value) else 0.0


def _log_tail(run_dir: Path, max_bytes: int = 16_384) -> str:
    """The last line the job wrote to its log (its one-line error, if it failed), from the log's end only."""
    text = read_tail(run_dir / LOG_NAME, max_bytes).decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.endswith("%") and "\r" not in line]
    return lines[-1] if lines else ""


RECORD_FILES = (CONFIG_NAME, JOB_NAME, METRICS_NAME, LOG_NAME, CHECKPOINT_NAME, RESULTS_NAME)
_MEMO_FOLDERS = 20_000


def folder_stamp(folder: Path) -> tuple:
    """Kind, size, inode and modification time of each file the dashboard reads in a run folder: it changes
    whenever one of them is written, replaced or removed (every write appends or replaces atomically)."""
    stamp = []
    for name in RECORD_FILES:
        try:
            info = os.lstat(folder / name)
            stamp.append((info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def folder_damage(folder: Path) -> str:
    """What is wrong with a run folder's files, one line naming the file, or "" if nothing is: a record that
    is not a small regular file holding a JSON object, settings of the wrong type or out of range, or a
    metrics file, log or checkpoint that is not a regular file."""
    return _checked_config(folder)[1]


def _checked_config(folder: Path) -> tuple[dict[str, Any], str]:
    """The folder's ``config.json`` (or {}) and :func:`folder_damage`'s line, each record read once."""
    records: dict[str, Any] = {}
    for name in (CONFIG_NAME, JOB_NAME, RESULTS_NAME):
        path = folder / name
        if not os.path.lexists(path):
            continue
        try:
            records[name] = read_json(path)
        except ConfigError as err:
            return {}, f"{name}: {str(err).removeprefix(f'{path}: ')}"
        if not isinstance(records[name], dict):
            return {}, f"{name}: holds a JSON {type(records[name]).__name__}, not an object"
    config = records.get(CONFIG_NAME, {})
    for key, cls in (("model", PixelCNNConfig), ("train", TrainConfig)):
        if key not in config:
            continue
        if not isinstance(config[key], dict):
            return {}, f"{CONFIG_NAME}: its {key} settings are a JSON {type(config[key]).__name__}, not an object"
        try:
            cls.from_dict(config[key])
        except (PixelCNNError, TypeError, ValueError) as err:
            return {}, f"{CONFIG_NAME}: invalid {key} settings ({err})"
    for name in (METRICS_NAME, LOG_NAME, CHECKPOINT_NAME):
        path = folder / name
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            return {}, f"{name}: not a regular file"
    return config, ""


@dataclass(frozen=True)
class _FolderRecord:
    """What :func:`list_runs` reads of one folder, kept until the folder's stamp changes."""

    config: dict[str, Any]
    last_events: list[dict[str, Any]]
    job: dict[str, Any]
    log_tail: str
    damage: str


_folder_memo: dict[Path, tuple[tuple, _FolderRecord]] = {}
_folder_memo_lock = threading.Lock()


def _folder_record(folder: Path) -> tuple[tuple, _FolderRecord]:
    """The folder's stamp and record, re-read only when the stamp changed: 2,000 run folders cost each
    rerun a dozen thousand ``lstat`` calls, not the parsing of 2,000 configs and metrics files."""
    stamp = folder_stamp(folder)
    with _folder_memo_lock:
        cached = _folder_memo.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached
    config, damage = _checked_config(folder)
    record = _FolderRecord(config, read_last_events(folder / METRICS_NAME), read_job(folder), _log_tail(folder),
                           damage)
    with _folder_memo_lock:
        if len(_folder_memo) >= _MEMO_FOLDERS:
            _folder_memo.clear()
        _folder_memo[folder] = (stamp, record)
    return stamp, record


def list_runs() -> list[RunInfo]:
    """Shipped models (``checkpoints/*``) first, then dashboard runs, newest first; a folder whose files are
    damaged is listed with status ``damaged`` and a message saying which file and what is wrong."""
    found: list[RunInfo] = []
    for kind, base in (("shipped", SHIPPED_DIR), ("run", runs_dir())):
        if not base.is_dir():
            continue
        folders = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime if kind == "run" else 0, reverse=kind == "run")
        for folder in folders:
            stamp, record = _folder_record(folder)
            has_checkpoint = stamp[RECORD_FILES.index(CHECKPOINT_NAME)] is not None
            if kind == "shipped" and not has_checkpoint:
                continue
            if record.damage:
                status, message = "damaged", record.damage
            else:
                status, message = _status(folder, record.last_events, record.job, record.config, has_checkpoint,
                                          lambda: record.log_tail)
            if kind == "shipped" and status == "interrupted":
                status = "partly trained"
            found.append(RunInfo(folder.name, folder, kind, status, record.config, message, stamp))
    if found and found[0].kind == "shipped":
        found.sort(key=lambda r: (r.kind != "shipped", r.name != "paper"))
    return found


def active_run() -> RunInfo | None:
    """The dashboard run that is training now, if any."""
    for info in list_runs():
        if info.kind == "run" and info.status == "running":
            return info
    return None


LIVE_IMAGE_BYTES = 1024 * 1024
LIVE_IMAGE_PIXELS = 1024 * 1024


def read_live_image(run_dir: Path, file: Any, factor: int = 4) -> np.ndarray | None:
    """A live-sample strip the trainer wrote, as RGB uint8 enlarged ``factor`` times (nearest neighbour, so
    it stays crisp on a projector), or None for anything else: a path outside the run's ``live/`` folder,
    not a regular file, over a size bound, or not a small PNG (a run folder is shown to every visitor)."""
    from PIL import Image

    live = (Path(run_dir) / LIVE_DIR).resolve()
    if not isinstance(file, str):
        return None
    path = (Path(run_dir) / file).resolve()
    try:
        if path.parent != live or not stat.S_ISREG(path.stat().st_mode) or path.stat().st_size > LIVE_IMAGE_BYTES:
            return None
        with Image.open(path, formats=["PNG"]) as image:
            width, height = image.size
            if width * height > LIVE_IMAGE_PIXELS:
                return None
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return upscale(pixels, factor)


def run_settings(info: RunInfo) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A run's stored model and training settings (each an object, else {}) and its steps per epoch (a
    positive integer, else 1): a damaged or foreign ``config.json`` reads as unknown settings, not a crash."""
    model, train = info.config.get("model"), info.config.get("train")
    steps = info.config.get("steps_per_epoch")
    return (model if isinstance(model, dict) else {}, train if isinstance(train, dict) else {},
            steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 1)


def parameter_count(model: dict[str, Any]) -> int | None:
    """The parameters of the model that stored settings describe, or None when the settings are invalid
    or the model is over what this tool serves (counting builds the model, so it is bounded first).
    Counted once per distinct settings: a thousand runs of one preset cost one count."""
    try:
        return _parameter_count(json.dumps(model, sort_keys=True))
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=256)
def _parameter_count(model_json: str) -> int | None:
    from ..models import architecture_table

    try:
        config = PixelCNNConfig.from_dict(json.loads(model_json))
        check_servable(config)
        return sum(row["parameters"] for row in architecture_table(config))
    except (PixelCNNError, TypeError, ValueError):
        return None


def recorded_summary(info: RunInfo) -> dict[str, float]:
    """The numbers an imported checkpoint's summary holds (``epochs``, ``test_bits_per_dim``,
    ``best_val_bits_per_dim``), each only if it is a finite number: an upload has no metrics file."""
    summary = info.config.get("summary")
    summary = summary if isinstance(summary, dict) else {}
    return {name: float(summary[name]) for name in ("epochs", "test_bits_per_dim", "best_val_bits_per_dim")
            if is_number(summary.get(name))}
