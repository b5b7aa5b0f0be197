"""The shipped models: each scores what it recorded, and the README shows what `results` prints."""

import json
import math
import re
from pathlib import Path

import pytest

import pixelcnn as px
from pixelcnn.store.checkpoint import load_checkpoint
from pixelcnn.store.data import load_colored_mnist, load_labels
from pixelcnn.store.metrics import curves, read_events
from pixelcnn.explain.results import (CHECK_IMAGES, TEMPERATURES, conditional_table, read_results, recorded_asked_for,
                                      recorded_temperature_scores, results_table, validation_by_minutes_table,
                                      validation_table)
from pixelcnn.serve.runs import SHIPPED_DIR, list_runs
from pixelcnn.store.rundir import read_run_config
from pixelcnn.training.evaluate import evaluate

from conftest import ROOT

NAMES = ["paper", "lecture", "rgb", "gated", "live", "conditional"]
CONDITIONAL = ["conditional"]
FROM_SCRATCH = ["lecture", "gated"]  # trained from random weights, their whole record in their folder
# docs/results.md's epoch table: the four models trained from scratch on one GPU; `paper` and `rgb` by their GPU
# runs' records in checkpoints/trials, since both shipped models were since trained on the CPU
VALIDATION_TABLE = ["paper-gpu", "lecture", "rgb-gpu", "gated"]
IMAGES = ["curves.svg", "samples.png", "field-random.png", "field-trained.png"]
TRIALS_DIR = SHIPPED_DIR / "trials"  # the records of runs not shipped, or shipped before
FOLDERS = r"((?:checkpoints/[\w/-]+ ?)+)"  # the run folders a docs command names, shipped or under trials/


def test_each_model_is_shipped_with_its_record_and_images():
    for name in NAMES:
        folder = SHIPPED_DIR / name
        for file in ["checkpoint.pt", "metrics.jsonl", "config.json", "results.json", *IMAGES]:
            assert (folder / file).is_file(), f"{folder / file} is missing"
        results = read_results(folder)
        assert results["epochs"] >= 10 or name not in FROM_SCRATCH, name
        assert results["test_images"] == 10_000, name
        assert len(recorded_temperature_scores(folder)) == len(TEMPERATURES), name  # the best-temperature column
        assert load_checkpoint(folder).summary["status"] == "finished", name


def test_the_live_model_is_five_minutes_of_the_live_preset_on_the_cpu():
    """Issue 16's acceptance run, shipped: `train --preset live --minutes 5` as the README shows it."""
    from pixelcnn.models import PRESETS, PixelCNNConfig
    from pixelcnn.training.config import TrainConfig, preset_train_config

    folder = SHIPPED_DIR / "live"
    stored = json.loads((folder / "config.json").read_text())
    assert PixelCNNConfig.from_dict(stored["model"]) == PRESETS["live"]
    # read as the trainer reads it: a setting added since (label_dropout) takes its default; the shipped run
    # tested on all 10,000 test images, before the preset's lecture-sized test (test_limit) came, which the
    # weights do not depend on
    expected = preset_train_config("live").with_budget(minutes=5.0, test_limit=None)
    assert TrainConfig.from_dict(stored["train"]) == expected
    results = read_results(folder)
    assert results["devices"] == ["cpu"] and results["train_seconds"] <= 5 * 60 + 30
    assert results["test_bits_per_dim"] <= 0.20


def test_dashboard_opens_on_paper():
    assert list_runs()[0].name == "paper"


@pytest.fixture(scope="module")
def test_images(mnist_dir):
    return load_colored_mnist(mnist_dir, download=False)["test"][:CHECK_IMAGES]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoint_scores_what_it_recorded(name, test_images, mnist_dir):
    recorded = read_results(SHIPPED_DIR / name)[f"test{CHECK_IMAGES}_bits_per_dim"]
    model = load_checkpoint(SHIPPED_DIR / name).model
    labels = load_labels(mnist_dir, required=True)["test"][:CHECK_IMAGES] if model.config.classes else None
    measured = evaluate(model, test_images, labels=labels)
    assert measured == pytest.approx(recorded, abs=0.005)


def test_the_conditional_model_is_shipped_with_its_readings_and_guidance_figures():
    for name in CONDITIONAL:
        folder = SHIPPED_DIR / name
        assert load_checkpoint(folder).config.classes == 10
        for name in ("w0", "w1", "w3", "best"):  # the best: where report read the most asked-for digits
            assert (folder / f"samples-per-digit-{name}.png").is_file()
        results = read_results(folder)
        assert len(recorded_asked_for(folder)) == 12  # guidance 0, 1, 3 at T = 1, 0.9, 0.8, 0.7
        assert results["devices"] == ["cpu"] and results["train_seconds"] >= 60 * 60
        # log p(x) >= log p(x | y) + log p(y) for the true y: the mixture costs at most log2(10) bits an image more
        bound = results["test_bits_per_dim"] + math.log2(10) / (28 * 28 * 3)
        assert results["test_marginal_bits_per_dim"] <= bound + 1e-9


def test_readme_conditional_table_is_what_the_results_command_prints():
    readme = (ROOT / "docs" / "conditional.md").read_text()
    command = re.search(r"python -m pixelcnn results --conditional ((?:checkpoints/\w+ ?)+)", readme)
    assert command, "the README must show the command that prints its conditional table"
    folders = [ROOT / f for f in command.group(1).split()]
    assert [f.name for f in folders] == CONDITIONAL
    assert conditional_table(folders) in readme


def test_readme_table_is_what_the_results_command_prints():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"python -m pixelcnn results ((?:checkpoints/\w+ ?)+)", readme)
    assert command, "the README must show the command that prints its results table"
    folders = [ROOT / f for f in command.group(1).split()]
    assert [f.name for f in folders] == NAMES
    assert results_table(folders) in readme


def test_readme_validation_table_is_what_the_results_command_prints():
    readme = (ROOT / "docs" / "results.md").read_text()
    command = re.search(r"python -m pixelcnn results --val-every (\d+) " + FOLDERS, readme)
    assert command, "the README must show the command that prints its validation table"
    folders = [ROOT / f for f in command.group(2).split()]
    assert [f.name for f in folders] == VALIDATION_TABLE
    assert validation_table(folders, int(command.group(1))) in readme


def test_equal_cost_tables_are_what_the_results_command_prints():
    """docs/results.md reads `gated` against `paper` at equal minutes of training: the GPU pair (`gated` shipped,
    `paper`'s GPU run in checkpoints/trials) and the CPU pair whose records are in checkpoints/trials."""
    doc = (ROOT / "docs" / "results.md").read_text()
    commands = re.findall(r"python -m pixelcnn results --val-every-minutes (\d+) " + FOLDERS, doc)
    assert len(commands) >= 2, "docs/results.md must show the commands that print its equal-cost tables"
    for every, folders in commands:
        paths = [ROOT / f for f in folders.split()]
        assert all((f / "metrics.jsonl").is_file() for f in paths), folders
        assert validation_by_minutes_table(paths, int(every)) in doc, folders


@pytest.mark.parametrize("name", ["paper", "rgb"])
def test_a_model_retrained_on_the_cpu_beats_its_gpu_run_kept_in_trials(name):
    """`paper` was trained from random weights on the CPU and then continued there, `rgb` continued there from
    its 19 GPU epochs; each scores lower than the GPU run shipped before it, whose record stays in
    checkpoints/trials/<name>-gpu (the conditional model started from `paper`'s GPU weights)."""
    shipped, gpu = read_results(SHIPPED_DIR / name), read_results(TRIALS_DIR / f"{name}-gpu")
    start = read_run_config(SHIPPED_DIR / name)["train"]["init_from"]
    assert start == f"checkpoints/{name}/checkpoint.pt" and shipped["devices"] == ["cpu"]
    assert gpu["devices"] == ["cuda"] and gpu["epochs"] >= 10
    assert shipped["test_bits_per_dim"] < gpu["test_bits_per_dim"]


def test_the_shipped_paper_continues_a_cpu_run_from_scratch_kept_with_its_curves():
    """The exercise's curves from random weights are the run `paper` continued: its record stays in
    checkpoints/trials/paper-scratch, at least 10 epochs from random weights, and the shipped model scores
    lower on test and reads as digits at least as often at T = 1."""
    scratch_dir = TRIALS_DIR / "paper-scratch"
    scratch, shipped = read_results(scratch_dir), read_results(SHIPPED_DIR / "paper")
    assert read_run_config(scratch_dir)["train"]["init_from"] is None and scratch["devices"] == ["cpu"]
    assert scratch["epochs"] >= 10 and (scratch_dir / "curves.svg").is_file()
    assert shipped["test_bits_per_dim"] < scratch["test_bits_per_dim"]
    assert shipped["digit_score"] >= scratch["digit_score"]
    # the notebook draws the run from scratch's curves by this name: from random weights, not where `paper` began
    assert max(notebook_validation_curve("trials/paper-scratch")) > 0.2


def notebook_validation_curve(name: str) -> list[float]:
    """The validation bits/dim the notebook's ``px.curves_figure(name)`` draws; fails if it draws none."""
    validation = [t for t in px.curves_figure(name).data if t.name.endswith("validation")]
    assert validation, name
    return list(validation[0].y)


def assert_results_docs_give(*figures: str) -> None:
    """README and docs/results.md each give every one of ``figures`` (scores as the tests format them)."""
    for doc in ("README.md", "docs/results.md"):
        text = (ROOT / doc).read_text()
        assert all(figure in text for figure in figures), (doc, figures)


def last_epoch_training_bits(folder: Path) -> float:
    """The mean training bits/dim of a run's last epoch of steps, as docs/results.md reads it."""
    steps = read_run_config(folder)["steps_per_epoch"]
    losses = [bits for _, bits in curves(read_events(folder / "metrics.jsonl"))["train"][-steps:]]
    assert len(losses) == steps, folder
    return sum(losses) / steps


def test_the_third_paper_cycle_was_not_shipped_and_its_record_shows_the_overfitting_the_docs_name():
    """checkpoints/trials/paper-continued3 went on from the `paper` shipped then (its record now in
    checkpoints/trials/paper-scratch-continued) and scored no lower, so it was not shipped; docs/results.md reads
    its curve as overfitting: from the run from scratch to its continuation to this one, the last epoch's
    training bits/dim fell while the test score did not, so the gap between them grew."""
    third_dir = TRIALS_DIR / "paper-continued3"
    assert read_run_config(third_dir)["train"]["init_from"] == "checkpoints/paper/checkpoint.pt"
    chain = [TRIALS_DIR / "paper-scratch", TRIALS_DIR / "paper-scratch-continued", third_dir]
    tests = [read_results(folder)["test_bits_per_dim"] for folder in chain]
    assert tests[2] >= tests[1]
    trained = [last_epoch_training_bits(folder) for folder in chain]
    gaps = [test - train for test, train in zip(tests, trained)]
    assert trained[0] > trained[1] > trained[2] and gaps[0] < gaps[1] < gaps[2]


def test_the_dropout_cycle_went_on_from_the_same_weights_and_beat_the_one_without():
    """What narrowed the gap: the dropout cycle (shipped before the recolored one, its record in
    checkpoints/trials/paper-dropout) went on from the same weights as the third cycle, with dropout in its
    residual blocks, and scored lower on test than both the weights it started from and the cycle without
    dropout (its digit readings, within their error of the others', are docs/results.md's)."""
    dropout_dir, start_dir = TRIALS_DIR / "paper-dropout", TRIALS_DIR / "paper-scratch-continued"
    stored = read_run_config(dropout_dir)
    assert stored["model"]["dropout"] > 0 and stored["train"]["init_from"] == "checkpoints/paper/checkpoint.pt"
    assert "dropout" not in read_run_config(start_dir)["model"]
    dropout, start = read_results(dropout_dir), read_results(start_dir)
    third = read_results(TRIALS_DIR / "paper-continued3")
    assert dropout["test_bits_per_dim"] < min(start["test_bits_per_dim"], third["test_bits_per_dim"])
    # the notebook draws the curves of the runs before the shipped one by these names
    for name, record in (("paper-scratch-continued", start), ("paper-dropout", dropout)):
        assert min(notebook_validation_curve(f"trials/{name}")) == pytest.approx(record["best_val_bits_per_dim"])


def test_the_larger_dropout_cycle_was_not_shipped_because_it_scored_no_lower():
    """checkpoints/trials/paper-dropout2 went on from the dropout cycle (then shipped, its record now in
    checkpoints/trials/paper-dropout) with twice its dropout and scored no lower on test, so it was not
    shipped; README and docs/results.md give both scores."""
    trial_dir, base_dir = TRIALS_DIR / "paper-dropout2", TRIALS_DIR / "paper-dropout"
    trial, base = read_run_config(trial_dir), read_run_config(base_dir)
    assert trial["train"]["init_from"] == "checkpoints/paper/checkpoint.pt"
    assert trial["model"]["dropout"] > base["model"]["dropout"] > 0
    scores = [read_results(folder)["test_bits_per_dim"] for folder in (trial_dir, base_dir)]
    assert scores[0] >= scores[1]
    assert_results_docs_give(*(f"{score:.5f}" for score in scores))


def test_the_recolored_cycle_went_on_from_the_dropout_cycle_and_beat_both_cycles_before():
    """The recolored cycle (shipped before the current `paper`, its record in checkpoints/trials/paper-recolor) went
    on from the dropout cycle with the same dropout and recolored batches (--recolor), and scored lower on test than
    it and than the larger dropout tried from the same weights; README and docs/results.md give its score beside
    the one it beat."""
    recolor_dir, base_dir = TRIALS_DIR / "paper-recolor", TRIALS_DIR / "paper-dropout"
    stored, base = read_run_config(recolor_dir), read_run_config(base_dir)
    assert stored["train"]["recolor"] is True and "recolor" not in base["train"]
    assert stored["train"]["init_from"] == "checkpoints/paper/checkpoint.pt"
    assert stored["model"]["dropout"] == base["model"]["dropout"] > 0
    recolored = read_results(recolor_dir)["test_bits_per_dim"]
    before = [read_results(TRIALS_DIR / name)["test_bits_per_dim"] for name in ("paper-dropout", "paper-dropout2")]
    assert recolored < min(before)
    assert_results_docs_give(f"{recolored:.5f}", f"{before[0]:.5f}")


def assert_a_recolored_cycle_of(run_dir: Path, base_dir: Path) -> tuple[dict, dict]:
    """``run_dir`` went on from the `paper` shipped then, on recolored batches, with ``base_dir``'s model and another
    batch order; returns both stored configs."""
    stored, base = read_run_config(run_dir), read_run_config(base_dir)
    assert stored["train"]["recolor"] is True and stored["train"]["init_from"] == "checkpoints/paper/checkpoint.pt"
    assert stored["model"] == base["model"] and stored["train"]["seed"] != base["train"]["seed"]
    return stored, base


def test_the_second_recolored_cycle_went_under_the_courses_score():
    """The second recolored cycle (shipped before the current `paper`, its record in checkpoints/trials/paper-recolor2)
    went on from the recolored cycle with the same settings and another batch order, and scored lower on test than
    it, under the course's 0.123; README and docs/results.md give both scores, and the notebook draws the recolored
    cycle's curves by its name."""
    second_dir, base_dir = TRIALS_DIR / "paper-recolor2", TRIALS_DIR / "paper-recolor"
    assert_a_recolored_cycle_of(second_dir, base_dir)
    second, before = (read_results(folder)["test_bits_per_dim"] for folder in (second_dir, base_dir))
    assert second < before and second < 0.123
    assert_results_docs_give(f"{second:.5f}", f"{before:.5f}")
    best = read_results(base_dir)["best_val_bits_per_dim"]
    assert min(notebook_validation_curve("trials/paper-recolor")) == pytest.approx(best)


def test_the_shipped_paper_is_a_third_recolored_cycle_at_half_the_rate_that_draws_digits_as_often():
    """The shipped `paper` went on from the second recolored cycle with the same model and batches, half its rate
    and another batch order; it scores lower on test, and its T = 1 samples read as digits at least as often over
    1,500 (seeds 1 to 3), what README and docs/results.md give beside both test scores; the notebook draws the
    cycle before's curves by its name."""
    shipped_dir, base_dir = SHIPPED_DIR / "paper", TRIALS_DIR / "paper-recolor2"
    stored, base = assert_a_recolored_cycle_of(shipped_dir, base_dir)
    assert stored["train"]["lr"] == base["train"]["lr"] / 2
    shipped, before = (read_results(folder)["test_bits_per_dim"] for folder in (shipped_dir, base_dir))
    assert shipped < before < 0.123
    assert_results_docs_give(f"{shipped:.5f}", f"{before:.5f}", "594 of 1,500", "591 of 1,500")
    best = read_results(base_dir)["best_val_bits_per_dim"]
    assert min(notebook_validation_curve("trials/paper-recolor2")) == pytest.approx(best)


def test_the_shipped_rgb_went_on_four_times_with_dropout_and_recolored_batches_the_last_deepened():
    """`rgb`'s CPU chain: its first cycle (checkpoints/trials/rgb-continued), then one with dropout 0.1 in its
    blocks and recolored batches, the settings that took `paper` under the course's score
    (trials/rgb-recolor), then two more the same way, each with another batch order (trials/rgb-cycle3,
    trials/rgb-cycle4), then the shipped `rgb`: the same way once more in 16 blocks, started from the 12 of
    the one before. Each went on from the `rgb` shipped then and scores lower on test than the one before;
    README and docs/results.md give every score."""
    chain = [TRIALS_DIR / name for name in ("rgb-continued", "rgb-recolor", "rgb-cycle3", "rgb-cycle4")]
    chain.append(SHIPPED_DIR / "rgb")
    runs = [read_run_config(folder) for folder in chain]
    first, *recolored = runs
    assert {run["model"]["kind"] for run in runs} == {"rgb"}
    assert "dropout" not in first["model"] and "recolor" not in first["train"]
    assert {run["model"]["dropout"] for run in recolored} == {0.1}
    assert all(run["train"]["recolor"] is True for run in recolored)
    assert len({run["train"]["seed"] for run in recolored}) == len(recolored)
    assert {run["train"]["init_from"] for run in runs} == {"checkpoints/rgb/checkpoint.pt"}
    assert {run["model"]["n_blocks"] for run in runs[:-1]} == {12}
    assert runs[-1]["model"] == {**runs[-2]["model"], "n_blocks": 16}
    scores = [read_results(folder)["test_bits_per_dim"] for folder in chain]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(chain)
    assert_results_docs_give(*(f"{score:.4f}" for score in scores))


def test_the_second_16_block_rgb_run_scored_lower_but_drew_fewer_digits_so_it_was_not_shipped():
    """checkpoints/trials/rgb-deep16-again went on from the shipped 16-block `rgb` with the same model and a lower
    rate; it scored lower on test, but its samples read as digits less often (`report`'s 100 here; 1,500 more at
    three seeds in docs/results.md), and the room sees the samples, so it was not shipped; README and
    docs/results.md give both scores and both readings."""
    trial_dir, shipped_dir = TRIALS_DIR / "rgb-deep16-again", SHIPPED_DIR / "rgb"
    trial, shipped = read_run_config(trial_dir), read_run_config(shipped_dir)
    assert trial["train"]["init_from"] == "checkpoints/rgb/checkpoint.pt" and trial["model"] == shipped["model"]
    assert trial["train"]["lr"] < shipped["train"]["lr"] and trial["train"]["seed"] != shipped["train"]["seed"]
    trial_record, shipped_record = read_results(trial_dir), read_results(shipped_dir)
    bits = trial_record["test_bits_per_dim"], shipped_record["test_bits_per_dim"]
    digits = trial_record["digit_score"], shipped_record["digit_score"]
    assert bits[0] < bits[1] and digits[0] < digits[1]
    assert_results_docs_give(f"{bits[0]:.4f}", f"{bits[1]:.4f}",
                             f"{digits[0]:.2f} against {digits[1]:.2f} in `report`'s 100")
