import numpy as np
import pytest
import torch

from pixelcnn.errors import ConfigError
from pixelcnn.models import PRESETS, PixelCNNConfig
from pixelcnn.models import random_model
from pixelcnn.sampling import sample, teacher_forced_logits

SMALL = PixelCNNConfig(hidden=16, n_blocks=2, image_size=10)
SMALL_KINDS = [SMALL, PixelCNNConfig(kind="rgb", hidden=18, n_blocks=2, image_size=10),
               PixelCNNConfig(kind="gated", hidden=8, n_blocks=2, image_size=10)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_cached_logits_equal_the_full_forward(preset, small_data):
    model = random_model(PRESETS[preset], seed=3)
    image = torch.from_numpy(small_data["test"][:2].transpose(0, 3, 1, 2).copy()).long()
    with torch.no_grad():
        full = model(image)
    cached = teacher_forced_logits(model, image)
    assert (cached - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("config", SMALL_KINDS, ids=lambda c: c.kind)
def test_cached_and_naive_draw_identical_images(config):
    model = random_model(config, seed=1).double()
    cached = sample(model, 6, seed=11, method="cached")
    naive = sample(model, 6, seed=11, method="naive")
    assert cached.shape == (6, 10, 10, 3) and cached.dtype == np.uint8
    assert np.array_equal(cached, naive)
    assert len(np.unique(cached)) > 1


def test_sampling_is_deterministic_per_seed():
    model = random_model(SMALL, seed=1)
    a, b, c = sample(model, 4, seed=5), sample(model, 4, seed=5), sample(model, 4, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("config", SMALL_KINDS, ids=lambda c: c.kind)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_a_sample_is_the_same_whatever_the_batch_it_is_drawn_in(config, temperature):
    """Lecture finding: the player's one sample and the first of the Samples page's 100, from the same seed,
    differed in 239 of 784 pixels. Image i is a function of (model, seed, i, temperature) alone."""
    model = random_model(config, seed=2)
    many = sample(model, 7, seed=13, temperature=temperature)
    assert np.array_equal(many[:1], sample(model, 1, seed=13, temperature=temperature))
    assert np.array_equal(many[:3], sample(model, 3, seed=13, temperature=temperature))
    assert np.array_equal(many[:3], sample(model, 3, seed=13, temperature=temperature, method="naive"))
    assert len({image.tobytes() for image in many}) == len(many)  # each index draws its own image


def test_a_conditional_sample_depends_on_its_own_label_not_its_neighbours():
    model = random_model(PixelCNNConfig(hidden=16, n_blocks=2, image_size=10, classes=10), seed=4)
    with torch.no_grad():
        model.label_bias.table.normal_(0, 2.0)
    mixed = sample(model, 4, seed=9, labels=np.array([3, 1, 4, 1]))
    assert np.array_equal(mixed[:1], sample(model, 1, seed=9, labels=3))
    assert np.array_equal(mixed[1:2], sample(model, 2, seed=9, labels=1)[1:])


@pytest.mark.parametrize("config", SMALL_KINDS, ids=lambda c: c.kind)
def test_completion_keeps_known_pixels(config):
    model = random_model(config, seed=2).double()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4, (10, 10, 3)).astype(np.uint8)
    known = np.zeros((10, 10), dtype=bool)
    known[:4] = True
    known[6, 3] = True
    for method in ("cached", "naive"):
        out = sample(model, 5, seed=0, method=method, prefix=(image, known))
        assert (out[:, known] == image[known]).all()
        assert not (out[:, ~known] == image[~known]).all()
    assert np.array_equal(sample(model, 5, seed=0, method="cached", prefix=(image, known)),
                          sample(model, 5, seed=0, method="naive", prefix=(image, known)))


def test_temperature_sharpens():
    model = random_model(SMALL, seed=4)
    cold = sample(model, 8, seed=0, temperature=0.05)
    warm = sample(model, 8, seed=0, temperature=3.0)
    spread = lambda x: np.mean([len(np.unique(img[..., 0])) for img in x])
    assert spread(cold) < spread(warm)


def test_progress_reaches_one():
    seen = []
    sample(random_model(SMALL), 2, progress=seen.append)
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(temperature=0), dict(temperature=float("nan")),
                                    dict(method="fast"), dict(n=10**6)])
def test_bad_arguments(kwargs):
    args = dict(n=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ConfigError):
        sample(random_model(SMALL), **args)
