import pytest

from pixelcnn.models import PixelCNNConfig
from pixelcnn.training.speed import expect, format_minutes, measure_training_speed
from pixelcnn.training.config import TrainConfig


def test_a_time_budget_comes_to_the_steps_its_speed_reaches():
    expected = expect(TrainConfig(minutes=5, batch_size=50), images_per_s=100.0, train_images=5_000)
    assert (expected.steps, expected.seconds) == (600, 300)
    assert expected.epochs == pytest.approx(6.0)
    assert "600 steps" in expected.text() and "5.0 minutes" in expected.text()


def test_a_step_budget_takes_the_time_its_speed_needs_and_a_clock_caps_it():
    assert expect(TrainConfig(steps=30, batch_size=10), 100.0).seconds == pytest.approx(3.0)
    assert expect(TrainConfig(epochs=2, batch_size=100), 1000.0, 1_000).steps == 20
    capped = expect(TrainConfig(steps=10_000, minutes=1, batch_size=10), 100.0)
    assert (capped.seconds, capped.steps) == (60, 600)


def test_the_measured_speed_is_a_positive_rate():
    assert measure_training_speed(PixelCNNConfig(hidden=8, n_blocks=1), TrainConfig(batch_size=4), steps=1) > 0


def test_minutes_read_as_people_say_them():
    assert [format_minutes(s) for s in (45, 300, 9000)] == ["45 s", "5.0 minutes", "2.5 hours"]


def test_one_epoch_is_singular():
    assert "(1 epoch)" in expect(TrainConfig(epochs=1, batch_size=100), 1000.0, 1_000).text()
    assert "(2 epochs)" in expect(TrainConfig(epochs=2, batch_size=100), 1000.0, 1_000).text()


def test_the_rate_shown_is_the_one_the_run_keeps_pauses_included():
    """Lecture finding: 62 images/s shown (the last step) while the run averaged 28 (validations between)."""
    from pixelcnn.store.metrics import progress_of

    start = {"event": "start", "step": 0, "total_steps": 100, "train": {"batch_size": 10}}
    steps = [{"event": "train", "step": s, "elapsed": s * 0.2 + (5.0 if s > 5 else 0.0), "images_per_s": 50.0,
              "bits_per_dim": 1.0}
             for s in range(1, 11)]  # 50 images/s per step, and a 5 s validation after step 5
    rate = progress_of([start] + steps)["images_per_s"]
    assert rate == pytest.approx(90 / 6.8)
