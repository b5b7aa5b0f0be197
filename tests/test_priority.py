"""The priority of the dashboard's background work: a training job (and the speed probe) runs in a scheduling
group of its own, lowered, and never lowers the group of the dashboard that started it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pixelcnn.serve.jobs import BACKGROUND_NICE, autogroup_nice

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(autogroup_nice() is None, reason="this kernel keeps no autogroups")

# A stand-in for the dashboard, in a fresh session of its own (so its group starts at nice 0, whatever the
# test runner's is): it starts one child as the dashboard starts background work, and prints its own group's
# nice value before and after, and the child's group and process nice values.
DASHBOARD = """
import json, os, subprocess, sys
from pixelcnn.serve.jobs import autogroup_nice, lower_priority
before = autogroup_nice()
child = subprocess.run([sys.executable, "-c",
                        "import json, os; from pixelcnn.serve.jobs import autogroup_nice; "
                        "print(json.dumps([autogroup_nice(), os.nice(0)]))"],
                       capture_output=True, text=True, check=True, preexec_fn=lower_priority,
                       start_new_session=sys.argv[1] == "own-session")
group, nice = json.loads(child.stdout)
print(json.dumps({"before": before, "after": autogroup_nice(), "child_group": group, "child_nice": nice,
                  "own_nice": os.nice(0)}))
"""


def start_child_from_a_dashboard(session: str) -> dict:
    done = subprocess.run([sys.executable, "-c", DASHBOARD, session], capture_output=True, text=True, cwd=ROOT,
                          start_new_session=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_job_in_its_own_session_runs_in_a_lowered_group_and_leaves_the_dashboards_alone():
    seen = start_child_from_a_dashboard("own-session")
    assert seen["child_group"] == BACKGROUND_NICE
    assert seen["child_nice"] == min(19, seen["own_nice"] + BACKGROUND_NICE)
    assert seen["before"] == seen["after"] == 0


def test_a_child_in_the_dashboards_session_lowers_itself_but_never_the_dashboards_group():
    """The group is shared by the whole session: lowering it from such a child would lower the dashboard (the
    Train page's speed probe once did, and the dashboard then lost its CPU to any busy program)."""
    seen = start_child_from_a_dashboard("same-session")
    assert seen["before"] == seen["after"] == seen["child_group"] == 0
    assert seen["child_nice"] == min(19, seen["own_nice"] + BACKGROUND_NICE)


@pytest.mark.slow
def test_the_train_pages_speed_probe_leaves_the_dashboards_group_alone():
    probe = """
import json
from pixelcnn.serve.estimate import run_probe
from pixelcnn.serve.jobs import autogroup_nice
before = autogroup_nice()
speed = run_probe().float32
print(json.dumps({"before": before, "after": autogroup_nice(), "speed": speed}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          start_new_session=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["speed"] > 0
    assert seen["before"] == seen["after"] == 0
