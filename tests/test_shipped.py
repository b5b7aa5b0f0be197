"""The shipped models: each scores what it recorded, and the README shows what `results` prints."""

import re

import pytest

from pixelcnn.checkpoint import load_checkpoint
from pixelcnn.data import load_colored_mnist
from pixelcnn.results import CHECK_IMAGES, read_results, results_table, validation_table
from pixelcnn.runs import SHIPPED_DIR, list_runs
from pixelcnn.train import evaluate

from conftest import ROOT

NAMES = ["paper", "lecture", "rgb", "gated"]
IMAGES = ["curves.svg", "samples.png", "field-random.png", "field-trained.png"]


def test_each_model_is_shipped_with_its_record_and_images():
    for name in NAMES:
        folder = SHIPPED_DIR / name
        for file in ["checkpoint.pt", "metrics.jsonl", "config.json", "results.json", *IMAGES]:
            assert (folder / file).is_file(), f"{folder / file} is missing"
        results = read_results(folder)
        assert results["epochs"] >= 10 and results["test_images"] == 10_000, name
        assert load_checkpoint(folder).summary["status"] == "finished", name


def test_dashboard_opens_on_paper():
    assert list_runs()[0].name == "paper"


@pytest.fixture(scope="module")
def test_images(mnist_dir):
    return load_colored_mnist(mnist_dir, download=False)["test"][:CHECK_IMAGES]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoint_scores_what_it_recorded(name, test_images):
    recorded = read_results(SHIPPED_DIR / name)[f"test{CHECK_IMAGES}_bits_per_dim"]
    measured = evaluate(load_checkpoint(SHIPPED_DIR / name).model, test_images)
    assert measured == pytest.approx(recorded, abs=0.005)


def test_readme_table_is_what_the_results_command_prints():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"python -m pixelcnn results ((?:checkpoints/\w+ ?)+)", readme)
    assert command, "the README must show the command that prints its results table"
    folders = [ROOT / f for f in command.group(1).split()]
    assert [f.name for f in folders] == NAMES
    assert results_table(folders) in readme


def test_readme_validation_table_is_what_the_results_command_prints():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"python -m pixelcnn results --val-every (\d+) ((?:checkpoints/\w+ ?)+)", readme)
    assert command, "the README must show the command that prints its validation table"
    folders = [ROOT / f for f in command.group(2).split()]
    assert validation_table(folders, int(command.group(1))) in readme
