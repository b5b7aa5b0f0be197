"""The exercise notebook: its source parses into the cells it should, parameters are set as papermill
would, and the whole notebook runs end to end (a short training run) with every deliverable in its
outputs, including the check that its small model computes the package model's logits."""

import json

import pytest

from pixelcnn.errors import ConfigError
from pixelcnn.notebooks.writer import build_notebook, parse_cells, set_parameters, write_notebook


def test_the_source_parses_into_markdown_and_code_with_one_parameters_cell():
    cells = parse_cells('# ---\n# header\n# ---\n\n# %% [markdown]\n# # Title\n#\n# text\n\n'
                        '# %% tags=["parameters"]\nMODE = "shipped"  # which\nSTEPS = 3\n\n# %%\nprint(1)\n')
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[0]["lines"] == ["# Title", "", "text"] and cells[1]["metadata"] == {"tags": ["parameters"]}
    set_parameters(cells, {"MODE": "train", "STEPS": 20})
    assert cells[1]["lines"] == ["MODE = 'train'  # which", "STEPS = 20"]
    with pytest.raises(ConfigError, match="no parameter NOPE"):
        set_parameters(cells, {"NOPE": 1})
    notebook = build_notebook({"MODE": "train"})
    assert notebook["nbformat"] == 4 and sum("parameters" in c["metadata"].get("tags", []) for c in
                                             notebook["cells"]) == 1
    text = "".join("".join(c["source"]) for c in notebook["cells"])
    assert "MODE = 'train'" in text and "class SmallPixelCNN" in text and "(14, 14, 0)" in text


@pytest.mark.slow
def test_the_notebook_runs_end_to_end_on_a_short_training_run(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("PIXELCNN_DATA_DIR", str(mnist_dir))
    out = tmp_path / "exercise.ipynb"
    write_notebook(out, {"MODE": "train", "PRESET": "tiny", "STEPS": 20, "TEST_LIMIT": 200}, run=True,
                   workdir=tmp_path)
    notebook = json.loads(out.read_text())
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "largest difference between the two models' logits" in text
    assert "test bits/dim:" in text and "100 samples in" in text
    assert "351 input pixels influence the conditional at (14, 14, 0)" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(images) >= 4 and len(plots) == 1  # data, samples, two fields; the curves
    assert list(tmp_path.glob("runs/notebook-*/checkpoint.pt"))


@pytest.mark.parametrize("failure", ["dead kernel", "timeout"])
def test_a_dead_kernel_or_a_cell_past_its_time_is_one_line_and_leaves_no_half_trained_run(tmp_path, monkeypatch,
                                                                                          failure):
    """Review finding 9: `notebook --execute` ended in a 28-line traceback when the kernel died, and a cell past
    the fixed 900 s timeout left a half-trained runs/notebook-* folder behind."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from pixelcnn.errors import ConfigError
    from pixelcnn.notebooks.writer import cell_timeout, write_notebook

    kept = tmp_path / "runs" / "notebook-earlier"
    kept.mkdir(parents=True)

    def dies(self, **kwargs):
        (tmp_path / "runs" / "notebook-now").mkdir()
        (tmp_path / "runs" / "notebook-now" / "checkpoint.pt").write_bytes(b"half")
        raise DeadKernelError("Kernel died") if failure == "dead kernel" else CellTimeoutError("Cell timed out")

    monkeypatch.setattr(NotebookClient, "execute", dies)
    out = tmp_path / "exercise.ipynb"
    with pytest.raises(ConfigError) as refused:
        write_notebook(out, {"MODE": "train", "PRESET": "tiny", "STEPS": 300}, run=True, workdir=tmp_path)
    assert "\n" not in str(refused.value) and "removed" in str(refused.value)
    assert not (tmp_path / "runs" / "notebook-now").exists() and kept.exists() and not out.exists()
    assert cell_timeout({"MODE": "train", "PRESET": "paper", "STEPS": 3000}) > cell_timeout({"MODE": "shipped"})
