"""A run folder's names: what makes a folder a run, its config, and the file that asks its trainer to stop.

    RUN/config.json     model and training config, data spec
    RUN/metrics.jsonl   one event a line (see :mod:`pixelcnn.store.metrics`)
    RUN/checkpoint.pt   weights, optimizer, step: enough to resume exactly
    RUN/live/           the sample strips drawn as it trains
    RUN/job.json        the training process (pid, start time, command), written by whoever starts it
    RUN/stop-requested  present while a stop is asked for and not yet honoured
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .checkpoint import CHECKPOINT_NAME
from .files import atomic_write, being_written, read_json_object
from .metrics import METRICS_NAME


CONFIG_NAME = "config.json"


STOP_NAME = "stop-requested"


JOB_NAME = "job.json"


LIVE_DIR = "live"


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run: its config, metrics, checkpoint or training job, or one of them being
    written (under torchrun another rank checks the folder while rank 0 writes its job file)."""
    names = (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, JOB_NAME)
    return any((folder / name).exists() or being_written(folder / name) for name in names)


def stop_requested(run_dir: Path) -> bool:
    """Whether someone asked this run to stop through its folder (see :func:`request_stop`)."""
    return (Path(run_dir) / STOP_NAME).exists()


def request_stop(run_dir: Path) -> None:
    """Ask the run training in ``run_dir`` to save and stop at its next step.

    A file, not only a signal: a process that has not yet installed its signal
    handler (Python is still importing torch) still sees it at its first step.
    """
    (Path(run_dir) / STOP_NAME).touch()


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``config.json``, or {} if it is missing or unreadable."""
    return read_json_object(Path(run_dir) / CONFIG_NAME)


def claim_job(run_dir: Path) -> None:
    """Record this process as the run's training job, unless the job file already names it (the dashboard
    writes it for the runs it starts): a run started from the command line is then seen as running by the
    dashboard, and can be stopped from it, like one the dashboard started."""
    path = Path(run_dir) / JOB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    if read_json_object(path).get("pid") == os.getpid():
        return
    job = {"pid": os.getpid(), "started": time.time(), "command": [sys.executable, *sys.argv]}
    atomic_write(path, lambda f: f.write(json.dumps(job).encode()))
