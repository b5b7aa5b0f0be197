"""The teaching views' engine: bits per value, predictions at a pixel, recorded generations, completion."""

import json
from pathlib import Path

import numpy as np
import pytest

from pixelcnn.__main__ import main
from pixelcnn.explain.pixels import (ERASE_SHAPES, bits_per_value, complete, erase_mask, predict, probabilities,
                               record_generation)
from pixelcnn.store.checkpoint import save_checkpoint
from pixelcnn.models import KINDS, PixelCNNConfig
from pixelcnn.models import random_model
from pixelcnn.sampling import sample
from pixelcnn.training.evaluate import evaluate

ALL_KINDS = pytest.mark.parametrize("name", sorted(KINDS))
ROOT = Path(__file__).resolve().parent.parent


def small_model(name: str, seed: int = 0):
    return random_model(KINDS[name].test_config(), seed=seed).double()


def an_image(model, seed: int = 0) -> np.ndarray:
    cfg = model.config
    return np.random.default_rng(seed).integers(0, cfg.levels, (cfg.image_size, cfg.image_size,
                                                                cfg.channels)).astype(np.uint8)


@ALL_KINDS
def test_bits_average_to_what_evaluate_reports(name):
    model = small_model(name)
    image = an_image(model)
    bits = bits_per_value(model, image)
    assert bits.shape == image.shape and bits.dtype == np.float32 and (bits >= 0).all()
    assert bits.mean() == pytest.approx(evaluate(model, image[None]), abs=1e-6)


@ALL_KINDS
def test_predict_agrees_with_bits_and_its_distributions_sum_to_one(name):
    model = small_model(name)
    image = an_image(model, seed=1)
    bits = bits_per_value(model, image)
    for row, col in ((0, 0), (4, 7), (9, 9)):
        result = predict(model, image, row, col)
        assert set(result) == {"row", "col", "values", "probabilities", "bits"}
        assert result["values"] == image[row, col].tolist()
        probs = np.array(result["probabilities"])
        assert probs.shape == (3, 4) and np.allclose(probs.sum(axis=1), 1.0)
        assert np.allclose(result["bits"], bits[row, col], atol=1e-5)
        assert np.allclose(-np.log2(probs[np.arange(3), result["values"]]), result["bits"], atol=1e-9)


def test_temperature_reshapes_the_distribution():
    logp = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    assert np.allclose(probabilities(logp, 1.0), [[0.1, 0.2, 0.3, 0.4]])
    cold, hot = probabilities(logp, 0.1)[0], probabilities(logp, 10.0)[0]
    assert cold[3] > 0.9 and np.ptp(hot) < 0.05


@ALL_KINDS
def test_a_recorded_generation_draws_what_the_sampler_draws(name):
    model = small_model(name, seed=2)
    generation = record_generation(model, seed=5, temperature=0.8)
    assert np.array_equal(generation.image, sample(model, 1, seed=5, temperature=0.8)[0])
    assert np.array_equal(generation.image, sample(model, 100, seed=5, temperature=0.8)[0])  # the Samples page's
    cfg = model.config
    per_pixel = len(KINDS[name].channel_steps(cfg))
    assert len(generation.steps) == cfg.image_size ** 2 * per_pixel == len(generation.distributions)
    for (row, col, channels), dist in zip(generation.steps[:40], generation.distributions[:40]):
        assert np.allclose(dist[channels].sum(axis=1), 1.0, atol=1e-6)
    assert (0, -1) in generation.field_offsets and (0, 0) not in generation.field_offsets


@pytest.mark.parametrize("shape", ERASE_SHAPES)
def test_completion_keeps_every_known_pixel(shape):
    model = small_model("pixelcnn")
    image = an_image(model, seed=3)
    erased = erase_mask(shape, model.config.image_size)
    assert erased.any() and not erased.all()
    completions = complete(model, image, erased, count=3, seed=1)
    assert completions.shape == (3,) + image.shape
    assert (completions[:, ~erased] == image[~erased]).all()
    assert not all(np.array_equal(c[erased], image[erased]) for c in completions)


def test_an_erased_pixel_ignores_the_known_pixels_after_it():
    """Raster order: known pixels below an erased band cannot shape it, so the band's completions are the
    same whatever the rows under it hold."""
    model = small_model("pixelcnn")
    image = an_image(model, seed=4)
    other = image.copy()
    other[8:] = (other[8:] + 1) % 4  # different known rows under the band
    band = np.zeros(image.shape[:2], dtype=bool)
    band[3:6] = True
    a = complete(model, image, band, count=2, seed=7)
    b = complete(model, other, band, count=2, seed=7)
    assert np.array_equal(a[:, 3:6], b[:, 3:6])


def test_bits_and_predict_commands(tmp_path, capsys):
    config = PixelCNNConfig(hidden=8, n_blocks=1)
    model = random_model(config, seed=0)
    save_checkpoint(tmp_path / "c.pt", model)
    image = np.random.default_rng(0).integers(0, 4, (28, 28, 3)).astype(np.uint8)
    np.save(tmp_path / "image.npy", image)
    try:
        assert main(["bits", "--checkpoint", str(tmp_path / "c.pt"), "--image", str(tmp_path / "image.npy"),
                     "--out", str(tmp_path / "heat.png"), "--npy", str(tmp_path / "bits.npy")]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        bits = np.load(tmp_path / "bits.npy")
        assert bits.shape == (28, 28, 3) and bits.dtype == np.float32
        assert out[-1] == f"bits/dim: {evaluate(model, image[None]):.4f}"
        assert (tmp_path / "heat.png").stat().st_size > 0
        assert main(["predict", "--checkpoint", str(tmp_path / "c.pt"), "--image", str(tmp_path / "image.npy"),
                     "--row", "5", "--col", "6", "--json"]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["row"] == 5 and result["col"] == 6 and np.allclose(result["bits"], bits[5, 6], atol=1e-5)
        np.save(tmp_path / "wrong.npy", np.zeros((28, 28), dtype=np.uint8))
        assert main(["bits", "--checkpoint", str(tmp_path / "c.pt"), "--image", str(tmp_path / "wrong.npy")]) == 2
    finally:
        import torch

        torch.set_flush_denormal(False)


@pytest.mark.slow
def test_bits_and_evaluate_agree_on_the_shipped_model(mnist_dir):
    import subprocess
    import sys

    def last_line(*args):
        done = subprocess.run([sys.executable, "-m", "pixelcnn", *args, "--data-dir", str(mnist_dir)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    bits = last_line("bits", "--checkpoint", "checkpoints/paper", "--split", "test", "--index", "0")
    evaluated = last_line("evaluate", "--checkpoint", "checkpoints/paper", "--split", "test", "--limit", "1")
    assert bits.startswith("bits/dim: ") and bits.split()[-1] == evaluated.split()[-1]
