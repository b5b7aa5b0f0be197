"""What the Train page says a run is doing, read from the run's own files; a run started from the command line
is seen as running (and can be stopped) like one the dashboard started; the instant estimate."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixelcnn.serve.estimate import Probe, SpeedProbe
from pixelcnn.serve.jobs import stop_run
from pixelcnn.serve.phase import run_phase
from pixelcnn.serve.runs import read_job, run_status
from pixelcnn.store.metrics import progress_of, read_events
from pixelcnn.store.rundir import request_stop

ROOT = Path(__file__).resolve().parent.parent
START = {"event": "start", "step": 0, "total_steps": 100, "time": 1000.0, "elapsed": 0.0}


def phase_of(tmp_path, events, job=None, status="running"):
    return run_phase(tmp_path, status, events, {"started": 999.0} if job is None else job)


def test_each_phase_is_read_from_the_runs_events(tmp_path):
    assert phase_of(tmp_path, []).name == "starting"
    earlier = [{**START, "time": 10.0}, {"event": "train", "step": 5, "elapsed": 3.0, "bits_per_dim": 1.0}]
    assert phase_of(tmp_path, earlier).name == "starting"  # a resumed run still loading: not its last attempt
    train = {"event": "train", "step": 10, "elapsed": 5.0, "bits_per_dim": 1.0}
    assert phase_of(tmp_path, [START, train]).name == "training"
    validating = {"event": "phase", "phase": "validating", "step": 10, "n_images": 1000, "elapsed": 5.0}
    phase = phase_of(tmp_path, [START, train, validating, {"event": "checkpoint", "step": 10}])
    assert (phase.name, phase.text) == ("validating", "validating on 1,000 images")
    val = {"event": "val", "step": 10, "bits_per_dim": 1.0, "elapsed": 7.0, "n_images": 1000}  # 500 images/s
    testing = {"event": "phase", "phase": "testing", "step": 20, "n_images": 2000, "passes": 2, "elapsed": 9.0}
    phase = phase_of(tmp_path, [START, train, validating, val, train, testing])
    assert phase.name == "testing" and phase.text == "testing on 2,000 images, about 8 s in all"
    drawing = {"event": "phase", "phase": "drawing", "step": 20, "n_images": 16, "elapsed": 9.0}
    assert phase_of(tmp_path, [START, train, drawing]).text == "drawing 16 live samples"
    request_stop(tmp_path)
    assert phase_of(tmp_path, [START, train]).name == "stopping"
    assert phase_of(tmp_path, [START, train], status="finished").name == "finished"
    assert not phase_of(tmp_path, [START], status="stopped").active


def test_a_run_reports_which_test_it_ran():
    events = [START, {"event": "test", "step": 5, "bits_per_dim": 0.5, "n_images": 2000}]
    assert progress_of(events)["test_images"] == 2000 and progress_of([START])["test_images"] is None


@pytest.mark.slow
def test_a_run_started_from_the_command_line_is_running_and_can_be_stopped(tmp_path, mnist_dir):
    """``train --out runs/x`` typed in a terminal (a relative folder): the dashboard sees it running, its phase
    moves on from starting, and Stop stops it with its checkpoint kept."""
    env = dict(os.environ, PIXELCNN_DATA_DIR=str(mnist_dir), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pixelcnn", "train", "--out", "runs/cli", "--preset", "tiny", "--steps", "5000",
               "--batch-size", "16", "--train-limit", "512", "--val-limit", "32", "--eval-every", "50"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    run = tmp_path / "runs" / "cli"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any(e["event"] == "train"
                                                      for e in read_events(run / "metrics.jsonl")):
            time.sleep(0.5)
        status, _ = run_status(run)
        events = read_events(run / "metrics.jsonl")
        assert status == "running" and read_job(run)["pid"] == process.pid
        assert run_phase(run, status, events, read_job(run)).name in ("training", "validating", "drawing")
        assert stop_run(run)
        assert run_phase(run, "running", events, read_job(run)).name == "stopping"
        assert process.wait(timeout=120) == 1  # stopped, not finished: the CLI says so by its exit status
    finally:
        process.kill()
    assert run_status(run)[0] == "stopped"


def test_the_estimate_never_waits_and_scales_by_parameters():
    started = []

    def measure():
        started.append(time.monotonic())
        time.sleep(0.5)
        return Probe(float32=100.0, bfloat16=200.0, parameters=1000, measured_at=time.time(), load=1.5, cores=2)

    probe = SpeedProbe(measure)
    begun = time.monotonic()
    probe.start_once()
    assert probe.result() is None and probe.measuring() and time.monotonic() - begun < 0.2
    probe.start_once()  # a second page view does not measure again
    deadline = time.monotonic() + 10
    while probe.measuring() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = probe.result()
    assert len(started) == 1 and result.images_per_s(2000, amp=False) == 50.0
    assert result.images_per_s(500, amp=True) == 400.0
    assert "just now" in result.when() and "load 1.5 on 2 cores" in result.when()
    assert "5 minutes ago" in result.when(now=result.measured_at + 300)


def test_a_failed_probe_says_why_and_keeps_the_last_measurement():
    outcomes = [Probe(100.0, 100.0, 10, time.time(), 0.0, 2), RuntimeError("no cores left")]

    def measure():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    probe = SpeedProbe(measure)
    for _ in range(2):
        probe.start()
        while probe.measuring():
            time.sleep(0.02)
    assert probe.error() == "no cores left" and probe.result().float32 == 100.0
