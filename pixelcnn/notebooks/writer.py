"""The exercise as a Jupyter notebook: its readable source (``notebooks/exercise.py``, Jupytext's percent
format, so that its diffs stay reviewable) written out as ``.ipynb``, and optionally executed.

Writing needs nothing beyond the standard library; executing needs ``nbclient`` and ``ipykernel`` (the
tests install them; users ``pip install nbclient ipykernel``, or ``jupyterlab``, which brings both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..store.files import atomic_write
from ..errors import ConfigError
from ..paths import PROJECT_ROOT

SOURCE = Path(__file__).resolve().parent / "exercise.py"
CELL = re.compile(r"^# %%(?P<rest>.*)$")
PARAMETER = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*) = (?P<value>[^#]*?)(?P<comment>\s+#.*)?$")


def parse_cells(text: str) -> list[dict[str, Any]]:
    """Cells of a percent-format script: ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell
    (its lines' leading ``# `` removed), ``tags=["parameters"]`` marks the parameters cell. The header
    before the first cell (Jupytext's metadata) is dropped."""
    cells: list[dict[str, Any]] = []
    for line in text.splitlines():
        marker = CELL.match(line)
        if marker:
            rest = marker.group("rest")
            tags = ["parameters"] if '"parameters"' in rest else []
            cells.append({"cell_type": "markdown" if "[markdown]" in rest else "code", "lines": [],
                          "metadata": {"tags": tags} if tags else {}})
        elif cells:
            cell = cells[-1]
            cell["lines"].append(re.sub(r"^# ?", "", line) if cell["cell_type"] == "markdown" else line)
    for cell in cells:
        while cell["lines"] and not cell["lines"][-1].strip():
            cell["lines"].pop()
    return cells


def set_parameters(cells: list[dict[str, Any]], parameters: dict[str, Any]) -> None:
    """Replace the values of the parameters cell's ``NAME = value`` lines (as papermill would); a name the
    cell does not define is refused."""
    cell = next((c for c in cells if "parameters" in c["metadata"].get("tags", [])), None)
    if cell is None:
        raise ConfigError("the notebook has no parameters cell")
    unknown = set(parameters)
    for i, line in enumerate(cell["lines"]):
        match = PARAMETER.match(line)
        if match and match.group("name") in parameters:
            name = match.group("name")
            cell["lines"][i] = f"{name} = {parameters[name]!r}{match.group('comment') or ''}"
            unknown.discard(name)
    if unknown:
        raise ConfigError(f"the notebook has no parameter {', '.join(sorted(unknown))}")


def build_notebook(parameters: dict[str, Any] | None = None, source: Path = SOURCE) -> dict[str, Any]:
    """The notebook (nbformat 4, as a dict) of ``source`` with ``parameters`` set."""
    cells = parse_cells(source.read_text())
    if parameters:
        set_parameters(cells, parameters)
    out = []
    for index, cell in enumerate(cells):
        text = "\n".join(cell["lines"])
        entry: dict[str, Any] = {"id": f"cell-{index}", "cell_type": cell["cell_type"], "metadata": cell["metadata"],
                                 "source": text.splitlines(keepends=True)}
        if cell["cell_type"] == "code":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    return {"nbformat": 4, "nbformat_minor": 5, "cells": out,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


def execute(notebook: dict[str, Any], workdir: Path, timeout: int = 900) -> dict[str, Any]:
    """Run every cell in a fresh Python kernel started in ``workdir``; a cell's error, a cell past ``timeout``
    seconds or a kernel that died becomes a one-line ConfigError, and a run folder the notebook started
    (``runs/notebook-*``) is removed with it: nothing half-trained is left behind."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError:
        raise ConfigError("executing the notebook needs nbclient and ipykernel: pip install nbclient ipykernel "
                          "(or jupyterlab)") from None
    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    before = os.environ.get("PYTHONPATH")
    runs_before = set(Path(workdir).glob(NOTEBOOK_RUNS))
    # The kernel imports this package wherever it runs: the project folder goes first on its path.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + ([before] if before else []))
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        for folder in set(Path(workdir).glob(NOTEBOOK_RUNS)) - runs_before:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(err, CellTimeoutError):
            raise ConfigError(f"a cell of the notebook ran past {timeout} s and was stopped; its run folder was "
                              f"removed (ask it to train fewer --steps)") from None
        if isinstance(err, DeadKernelError):
            raise ConfigError("the notebook's kernel died (out of memory?); its run folder was removed") from None
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in str(err).splitlines() if line.strip()]
        raise ConfigError(f"a cell of the notebook failed: {lines[-1] if lines else err}") from None
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
    return json.loads(nbformat.writes(nb))


NOTEBOOK_RUNS = "runs/notebook-*"  # where the notebook's training cell writes its run
SECONDS_PER_STEP = {"tiny": 1.0, "live": 3.0, "lecture": 3.0, "paper": 10.0}  # generous, on two CPU cores


def cell_timeout(parameters: dict[str, Any] | None) -> int:
    """Seconds a cell may run: 15 minutes, and with training, room for the steps asked for at a generous
    rate for the preset (so a long --steps is not cut off half-trained, and a hung cell still ends)."""
    parameters = parameters or {}
    if parameters.get("MODE") != "train":
        return 900
    rate = SECONDS_PER_STEP.get(str(parameters.get("PRESET")), 10.0)
    return 900 + int(rate * int(parameters.get("STEPS") or 0))


def write_notebook(out: Path, parameters: dict[str, Any] | None = None, run: bool = False,
                   workdir: Path = PROJECT_ROOT, timeout: int | None = None) -> dict[str, Any]:
    """Write the exercise notebook to ``out`` (atomically), executed in ``workdir`` when ``run``, each cell
    within ``timeout`` seconds (default: :func:`cell_timeout` of the parameters)."""
    notebook = build_notebook(parameters)
    if run:
        notebook = execute(notebook, workdir, timeout or cell_timeout(parameters))
    atomic_write(Path(out), lambda f: f.write(json.dumps(notebook, indent=1).encode()))
    return notebook
