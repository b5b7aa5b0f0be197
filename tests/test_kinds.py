"""Every promise of a model kind, for every kind in the registry, on the small config it declares.

A new kind added to ``pixelcnn.models.registry.KINDS`` is tested here without a new line of test code.
"""

import numpy as np
import pytest
import torch

from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.models import KINDS, count_parameters, kind_of
from pixelcnn.models.layers import patch_indices
from pixelcnn.explain.receptive import analytic_field, gradient_field
from pixelcnn.models import random_model
from pixelcnn.sampling import channel_slice, sample, teacher_forced_logits

from autoregressive import own_channels_seen

ALL_KINDS = pytest.mark.parametrize("name", sorted(KINDS))


def small(name: str):
    config = KINDS[name].test_config()
    assert config.kind == name and config.image_size <= 12
    return config


def targets(size: int) -> list[tuple[int, int]]:
    return [(0, 0), (0, size - 1), (size // 2, size // 2), (size - 1, 0), (size - 1, size - 1), (2, size - 2)]


@ALL_KINDS
def test_autoregressive_property(name):
    """d logits(r, c, ch) / d input is exactly zero at every later pixel and at (r, c) itself, except for
    the channels of (r, c) that the kind draws before ch; and nonzero somewhere before (r, c)."""
    config = small(name)
    kind = kind_of(config)
    model = random_model(config, seed=0).double()
    size, channels = config.image_size, config.channels
    # Several images: in one image a path can hide behind ReLUs that happen to be inactive.
    x = torch.randint(0, config.levels, (4, channels, size, size)).double().requires_grad_(True)
    logits = model(x)
    order = torch.arange(size * size).view(size, size)
    for r, c in targets(size):
        for ch in range(channels):
            (grad,) = torch.autograd.grad(logits[:, :, ch, r, c].sum(), x, retain_graph=True)
            field = grad.abs().amax(dim=(0, 1))
            assert field[order > r * size + c].eq(0).all(), (name, r, c, ch)
            own = grad[:, :, r, c].abs().amax(dim=0) > 0
            assert torch.equal(own, own_channels_seen(kind, config, ch)), (name, r, c, ch, own)
            if (r, c) != (0, 0):
                assert field[order < r * size + c].gt(0).any(), (name, r, c, ch)


@ALL_KINDS
def test_cached_logits_equal_the_full_forward(name):
    config = small(name)
    model = random_model(config, seed=3).double()
    image = torch.randint(0, config.levels, (2, config.channels, config.image_size, config.image_size))
    with torch.no_grad():
        full = model(image)
    cached = teacher_forced_logits(model, image)
    assert (cached - full).abs().max().item() < 1e-10


@ALL_KINDS
@pytest.mark.parametrize("asked", ["every step", "the last step only"])
def test_cached_steps_of_some_channels_equal_the_full_forward(name, asked):
    """``step(r, c, channels)``, as the sampler calls it for each of the kind's channel steps in turn, or
    for a later step alone (a kind that computes only the asked colour must catch up on the earlier ones)."""
    config = small(name)
    kind = kind_of(config)
    model = random_model(config, seed=5).double()
    image = torch.randint(0, config.levels, (3, config.channels, config.image_size, config.image_size))
    with torch.no_grad():
        full = model(image)
        cache = kind.cache(model, 3)
        steps = kind.channel_steps(config)
        for r in range(config.image_size):
            for c in range(config.image_size):
                cache.write(r, c, image[:, :, r, c])
                for group in steps if asked == "every step" else steps[-1:]:
                    logits = cache.step(r, c, group)
                    assert logits.shape == (3, config.levels, len(group))
                    assert (logits - full[:, :, group, r, c]).abs().max().item() < 1e-10, (name, r, c, group)


@ALL_KINDS
def test_channel_steps_are_consecutive_and_cover_every_channel_once(name):
    """The loop indexes a step's channels with ``channel_slice``, which holds only for consecutive groups."""
    config = small(name)
    steps = kind_of(config).channel_steps(config)
    assert [ch for group in steps for ch in group] == list(range(config.channels))
    for group in steps:
        assert list(range(config.channels))[channel_slice(group)] == group


@pytest.mark.parametrize("size,kernel,channels", [(10, 3, 4), (6, 7, 3), (5, 5, 2)])
def test_patch_indices_gather_what_slicing_the_buffer_gives(size, kernel, channels):
    pad = kernel // 2
    buffer = torch.randn(2, size + pad, size + 2 * pad, channels)
    indices = patch_indices(size, kernel, channels)
    for r in range(size):
        for c in range(size):
            sliced = buffer[:, r:r + pad + 1, c:c + kernel].reshape(2, -1)
            assert torch.equal(buffer.view(2, -1).index_select(1, indices[r][c]), sliced), (r, c)


@ALL_KINDS
def test_cached_sampler_draws_what_the_naive_one_draws(name):
    model = random_model(small(name), seed=1).double()
    cached = sample(model, 5, seed=7, method="cached")
    naive = sample(model, 5, seed=7, method="naive")
    assert np.array_equal(cached, naive) and len(np.unique(cached)) > 1


@ALL_KINDS
def test_gradient_field_equals_the_analytic_field(name):
    config = small(name)
    model = random_model(config, seed=0).double()
    images = np.random.default_rng(0).integers(0, config.levels, (3, config.image_size, config.image_size,
                                                                  config.channels))
    for r, c in targets(config.image_size):
        for ch in range(config.channels):
            measured = gradient_field(model, images, r, c, ch)
            assert np.array_equal(measured > 0, analytic_field(config, r, c, channel=ch)), (name, r, c, ch)


@ALL_KINDS
def test_fields_grow_with_depth_up_to_the_full_field(name):
    config = small(name)
    r = c = config.image_size // 2
    sizes = [analytic_field(config, r, c, n_blocks=depth).sum() for depth in range(config.n_blocks + 1)]
    assert sizes == sorted(sizes) and sizes[-1] == analytic_field(config, r, c).sum()


@ALL_KINDS
def test_checkpoint_round_trip(name, tmp_path):
    config = small(name)
    model = random_model(config, seed=5)
    save_checkpoint(tmp_path / "c.pt", model, summary={"note": name})
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded.config == config and loaded.summary == {"note": name}
    x = torch.randint(0, config.levels, (2, config.channels, config.image_size, config.image_size))
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))


@ALL_KINDS
def test_architecture_rows_count_every_parameter(name):
    config = small(name)
    kind = kind_of(config)
    model = kind.build(config)
    rows = kind.architecture(model)
    assert sum(row["parameters"] for row in rows) == count_parameters(model)
    assert {"layer", "kernel", "mask", "in", "out", "parameters"} <= set(rows[0])
    assert kind.describe(config) and kind.summary
