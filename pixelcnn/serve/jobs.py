"""Training jobs the dashboard starts, resumes, stops and imports: each a niced ``python -m pixelcnn train``
subprocess in its own session, so the dashboard stays responsive on the same cores.

A job writes only its run folder; anyone can read the folder to follow it, so a
run survives page switches, reloads, closed tabs and dashboard restarts.
``job.json`` records its process id, which is how a later server finds out
whether it still runs. A Stop is a request in the run folder
(:func:`~pixelcnn.store.rundir.request_stop`) and a SIGTERM; the trainer honours
either at its next step, in one place (``TrainingRun.stopping``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..errors import CheckpointError, ConfigError, ModelError
from ..models import PixelCNNConfig
from ..paths import PROJECT_ROOT
from ..store.checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..store.files import atomic_write
from ..store.rundir import CONFIG_NAME, STOP_NAME, request_stop
from ..training.config import TrainConfig, train_command, write_config_file
from ..training.state import check_run_dir
from .limits import check_servable
from .runs import JOB_NAME, LOG_NAME, RunInfo, active_run, check_run_name, job_is_alive, list_runs, read_job, runs_dir
from .uploads import UPLOAD_LIMIT_MB


def background_training_environment() -> dict[str, str]:
    """The environment of a training job started by the dashboard (see :mod:`pixelcnn.serve.runs`)."""
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_WAIT_POLICY="PASSIVE")


BACKGROUND_NICE = 10


def lower_priority() -> None:
    """Run in a child before exec: the priority of a training job started by the dashboard.

    ``nice`` alone is not enough on Linux: with autogroups (the default), the
    scheduler first shares the CPU equally between sessions, and a job started
    in its own session is a group of its own, so a niced job there still took a
    whole core from the dashboard (measured: 10 of 12 CPU seconds). Its group's
    nice value (``/proc/self/autogroup``) is lowered too; that needs no privilege.

    The group is lowered only when the child leads a session of its own. A child
    still in the dashboard's session shares the dashboard's group, and lowering
    that group would lower the dashboard itself, and the terminal that started
    it, for as long as they run (the Train page's speed probe once did).
    """
    os.nice(BACKGROUND_NICE)
    if os.getsid(0) != os.getpid():
        return
    with contextlib.suppress(OSError):
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(BACKGROUND_NICE))


def autogroup_nice() -> int | None:
    """The nice value of this process's scheduling group (``/proc/self/autogroup``), or None where Linux keeps
    no such groups."""
    try:
        text = Path("/proc/self/autogroup").read_text()
    except OSError:
        return None
    found = re.search(r"nice (-?\d+)", text)
    return int(found.group(1)) if found else None


MAX_UPLOAD_BYTES = UPLOAD_LIMIT_MB * 2**20  # the server's own limit (.streamlit/config.toml)


_start_lock = threading.Lock()


def job_command(run_dir: Path) -> list[str]:
    """The command line of a new job: it trains from the run folder's ``config.json``, so every setting
    reaches the trainer as the dashboard validated it."""
    return train_command(run_dir, "--config", str(Path(run_dir) / CONFIG_NAME))


def _prepare_child() -> None:
    """In the job before it runs Python: a lower priority, and SIGTERM ignored until the trainer installs
    its handler (an ignored signal stays ignored across exec), so a Stop in its first second is not a kill;
    the stop file (:func:`~pixelcnn.store.rundir.request_stop`) carries that request to the trainer's first step."""
    lower_priority()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _launch(run_dir: Path, command: list[str], data_dir: str | None) -> None:
    """Start ``command`` as a niced background job in its own session, logging to the run folder."""
    env = background_training_environment()
    if data_dir:
        env["PIXELCNN_DATA_DIR"] = data_dir
    with open(run_dir / LOG_NAME, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=PROJECT_ROOT, env=env, start_new_session=True,
                                   preexec_fn=_prepare_child if hasattr(os, "nice") else None)
    reaper = threading.Thread(target=process.wait, daemon=True)  # no zombie once it exits
    reaper.start()
    job = {"pid": process.pid, "started": time.time(), "command": command}
    atomic_write(run_dir / JOB_NAME, lambda f: f.write(json.dumps(job).encode()))


def _refuse_if_busy() -> None:
    running = active_run()
    if running is not None:
        raise ConfigError(f"run {running.name} is training; stop it first (one run at a time)")


def start_run(name: str, model: PixelCNNConfig, config: TrainConfig, data_dir: str | None = None) -> RunInfo:
    """Start a new training job in the background; refuses while another dashboard run is training.

    The configs are already validated (constructing them checks every limit).
    """
    check_run_name(name)
    with _start_lock:
        _refuse_if_busy()
        run_dir = runs_dir() / name
        if run_dir.exists():
            raise ConfigError(f"a run named {name} exists already; choose another name")
        run_dir.mkdir(parents=True)
        write_config_file(run_dir / CONFIG_NAME, model, config)
        _launch(run_dir, job_command(run_dir), data_dir)
    return RunInfo(name, run_dir, "run", "running", {"model": model.to_dict(), "train": config.to_dict()})


def resume_run(name: str, data_dir: str | None = None) -> None:
    """Continue a stopped or interrupted dashboard run from its checkpoint, in the background."""
    check_run_name(name)
    with _start_lock:
        _refuse_if_busy()
        run_dir = runs_dir() / name
        check_run_dir(run_dir, resume=True)  # a run that died before its first checkpoint restarts
        (run_dir / STOP_NAME).unlink(missing_ok=True)  # a request its last process did not live to honour
        _launch(run_dir, train_command(run_dir, "--resume"), data_dir)


def stop_run(run_dir: Path) -> bool:
    """Ask a running job to stop; it saves a checkpoint and exits within one step. False if it was not running."""
    job = read_job(run_dir)
    pid = job.get("pid")
    if not isinstance(pid, int) or not job_is_alive(pid, run_dir):
        return False
    request_stop(run_dir)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _imported_as(runs: list[RunInfo], base: Path, digest: str) -> str | None:
    """The run an upload of these bytes (their SHA-256) already became, if any."""
    for run in runs:
        imported = run.config.get("imported") if run.path.parent == base else None
        if isinstance(imported, dict) and imported.get("sha256") == digest:
            return run.name
    return None


def _free_name(stem: str, taken: set[str], base: Path) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ...: the first that no run (a shipped model's name included: the
    pickers list both) and nothing in ``base`` has."""
    candidates = itertools.chain([stem], (f"{stem}-{i}" for i in itertools.count(2)))
    return next(name for name in candidates if name not in taken and not os.path.lexists(base / name))


def import_checkpoint(data: bytes, filename: str) -> RunInfo:
    """Add an uploaded checkpoint to the runs folder, after checking it like any other.

    The bytes go to a temporary file that :func:`~pixelcnn.store.checkpoint.load_checkpoint`
    reads with ``weights_only=True`` (nothing in the file runs); only a file that
    loads becomes ``runs/<name>/checkpoint.pt``. Raises a one-line error otherwise.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError(f"{filename}: {len(data) / 2**20:.0f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
    digest = hashlib.sha256(data).hexdigest()
    base, runs = runs_dir(), list_runs()
    same = _imported_as(runs, base, digest)
    if same:
        raise ConfigError(f"{filename} is already here as {same}: pick it in the sidebar")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip(".-")[:40] or "checkpoint"
    name = check_run_name(_free_name(stem, {run.name for run in runs}, base))
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".{name}.upload"
    try:
        staging.write_bytes(data)
        try:
            ckpt = load_checkpoint(staging)
        except CheckpointError as err:
            raise CheckpointError(str(err).replace(str(staging), filename)) from None
        try:
            check_servable(ckpt.config)
        except ModelError as err:
            raise ModelError(f"{filename}: {err}") from None
        run_dir = base / name
        run_dir.mkdir()
        os.replace(staging, run_dir / CHECKPOINT_NAME)
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = {"model": ckpt.config.to_dict(), "train": {k: v for k, v in ckpt.train.items() if k in known},
                  "summary": ckpt.summary, "imported": {"file": filename, "time": time.time(), "sha256": digest}}
        atomic_write(run_dir / CONFIG_NAME, lambda f: f.write(json.dumps(config, indent=2).encode()))
    finally:
        staging.unlink(missing_ok=True)
    return RunInfo(name, run_dir, "run", "imported", config)
