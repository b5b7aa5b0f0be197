"""How often a conditional model draws the digit asked for, by guidance and temperature: what ``report``
records, what the conditional table and the Samples page read back, and what they refuse."""

import numpy as np
import pytest
from PIL import Image

from pixelcnn.explain.digits import digit_score, load_classifier
from pixelcnn.explain.results import (GUIDANCE_SHOWN, TEMPERATURES, asked_for_samples, asked_for_text,
                                      best_asked_for, conditional_record, conditional_table, recorded_asked_for,
                                      write_results)
from pixelcnn.figures import image_grid
from pixelcnn.models import PixelCNNConfig, random_model
from pixelcnn.store.data import synthetic_colored_mnist


def test_report_reads_every_guidance_at_every_temperature_and_the_table_shows_the_best(tmp_path):
    model = random_model(PixelCNNConfig(hidden=8, n_blocks=1, classes=10), seed=0)
    images = synthetic_colored_mnist(8, 0, 8, seed=0)["test"]
    classifier = load_classifier()[0]
    record = conditional_record(model, images, np.arange(8), classifier)
    guided = record["guidance"]
    assert sorted(guided) == sorted(f"{w:g}" for w in GUIDANCE_SHOWN)
    for reading in guided.values():
        assert list(reading["asked_for_by_temperature"]) == [f"{t:g}" for t in TEMPERATURES]
        assert reading["asked_for"] == reading["asked_for_by_temperature"]["1"]
    cool, labels = asked_for_samples(model, 3.0, temperature=0.7)
    assert guided["3"]["asked_for_by_temperature"]["0.7"] == digit_score(classifier, cool, labels)["asked_for"]

    results = {"test_bits_per_dim": 0.2, "test_no_label_bits_per_dim": 0.21, "test_marginal_bits_per_dim": 0.205,
               "generative_accuracy": 0.1, "guidance": {
                   w: {**reading, "asked_for_by_temperature": {**reading["asked_for_by_temperature"], "0.8": 0.5}}
                   for w, reading in guided.items()}}
    results["guidance"]["1"]["asked_for_by_temperature"]["0.8"] = 0.75
    write_results(tmp_path, results)
    shares = recorded_asked_for(tmp_path)
    assert len(shares) == len(GUIDANCE_SHOWN) * len(TEMPERATURES) and best_asked_for(shares) == ("1", "0.8")
    header, _, row = conditional_table([tmp_path]).splitlines()
    assert header.endswith("| best asked-for (w, T) |") and row.endswith("| 0.75 (1, 0.8) |")
    assert asked_for_text(shares).endswith("highest 0.75 at guidance 1, T = 0.8.")


def test_a_record_from_before_temperatures_shows_a_dash_and_no_line(tmp_path):
    reading = {"asked_for": 0.5, "digit_score": 0.6}
    write_results(tmp_path, {"test_bits_per_dim": 0.2, "test_no_label_bits_per_dim": 0.21,
                             "test_marginal_bits_per_dim": 0.205, "generative_accuracy": 0.9,
                             "guidance": {f"{w:g}": reading for w in GUIDANCE_SHOWN}})
    assert recorded_asked_for(tmp_path) == {} and asked_for_text({}) == ""
    assert conditional_table([tmp_path]).splitlines()[-1].endswith("| 0.50 (0.60) | - |")


def test_ties_go_to_the_weaker_guidance_then_the_hotter_temperature():
    assert best_asked_for({("0", "1"): 0.4, ("1", "0.8"): 0.6, ("3", "0.9"): 0.6, ("1", "0.9"): 0.6}) == ("1", "0.9")


@pytest.mark.parametrize("stored", [
    {"1": {"asked_for_by_temperature": {"0.8": 1.5}}},
    {"1": {"asked_for_by_temperature": {"0.8": float("nan")}}},
    {"1": {"asked_for_by_temperature": {"0.5": 0.4}}},
    {"2": {"asked_for_by_temperature": {"0.8": 0.4}}},
    {"1": {"asked_for_by_temperature": [0.4]}},
    {"1": 0.4},
    [0.4],
])
def test_a_malformed_asked_for_record_is_not_shown(tmp_path, stored):
    write_results(tmp_path, {"guidance": stored})
    assert recorded_asked_for(tmp_path) == {}


def test_report_draws_a_conditional_model_s_digits_where_it_read_the_most(tmp_path):
    from pixelcnn.cli.report import BEST_PER_DIGIT, save_best_per_digit

    model = random_model(PixelCNNConfig(hidden=8, n_blocks=1, classes=10), seed=0)
    shares = {f"{t:g}": 0.1 for t in TEMPERATURES}
    write_results(tmp_path, {"guidance": {f"{w:g}": {"asked_for_by_temperature": {**shares, "0.9": 0.2 + w / 10}}
                                          for w in GUIDANCE_SHOWN}})
    assert save_best_per_digit(model, tmp_path, seed=0) == f"{BEST_PER_DIGIT} (guidance 3, T = 0.9)"
    images, _ = asked_for_samples(model, 3.0, temperature=0.9)
    drawn = np.asarray(Image.open(tmp_path / BEST_PER_DIGIT).convert("RGB"))
    assert np.array_equal(drawn, image_grid(images, ncols=10))
