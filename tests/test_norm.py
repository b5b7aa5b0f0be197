"""Layer normalization (``norm = "layer"``), for every kind in the registry: a kind that builds it keeps the
autoregressive property in training and in evaluation mode, its cached paths equal the full forward, and
the codec still round-trips; a kind that does not build it refuses the setting with one line."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.explain.codec import compress, decompress
from pixelcnn.errors import ConfigError
from pixelcnn.models import KINDS, PixelCNNConfig, architecture_table, count_parameters
from pixelcnn.models.layers import ChannelNorm
from pixelcnn.models import random_model
from pixelcnn.sampling import sample, teacher_forced_logits

from autoregressive import assert_autoregressive, images_of



def builds_layer_norm(name: str) -> bool:
    try:
        replace(KINDS[name].test_config(), norm="layer")
    except ConfigError as err:
        assert "for kind pixelcnn only" in str(err) and str(err).count("\n") == 0
        return False
    return True


NORMED_KINDS = pytest.mark.parametrize("name", [name for name in sorted(KINDS) if builds_layer_norm(name)])


def normed(name: str, classes: int = 0, seed: int = 0) -> torch.nn.Module:
    """A small model of kind ``name`` with layer norm, its scales and shifts (and label biases) random, so
    that a path through them cannot hide behind a norm that is still the identity."""
    config = replace(KINDS[name].test_config(), norm="layer", classes=classes)
    model = random_model(config, seed=seed).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ChannelNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator, dtype=torch.float64))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator, dtype=torch.float64))
        if classes:
            model.label_bias.table.normal_(generator=generator)
    assert any(isinstance(m, ChannelNorm) for m in model.modules())
    return model


def test_the_kinds_that_build_no_layer_norm_refuse_it_with_one_line_and_pixelcnn_builds_it():
    assert [name for name in sorted(KINDS) if builds_layer_norm(name)] == ["pixelcnn"]


@NORMED_KINDS
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("classes", [0, 3])
def test_layer_norm_keeps_the_autoregressive_property(name, mode, classes):
    """Gradients: a conditional's logits have exactly zero gradient with respect to every later pixel and
    the channels of its own pixel the kind draws later, in training and in evaluation mode; and some
    gradient from every earlier pixel's neighbourhood (the norm did not cut the paths)."""
    model = normed(name, classes).train(mode == "train")
    x = images_of(model.config, 4, seed=1).double().requires_grad_(True)
    assert_autoregressive(model, x, torch.tensor([0, 1, 2, 3]) if classes else None, paths=True, what=(name, mode))


@NORMED_KINDS
def test_with_layer_norm_the_cached_paths_equal_the_full_forward(name):
    model = normed(name, classes=3, seed=2)
    config = model.config
    image = images_of(config, 3, seed=3)
    labels = torch.tensor([0, 2, 3])
    with torch.no_grad():
        full = model(image, labels)
    assert (teacher_forced_logits(model, image, labels) - full).abs().max().item() < 1e-10
    cached = sample(model, 4, seed=5, labels=[0, 1, 2, 1], guidance=1.0, method="cached")
    naive = sample(model, 4, seed=5, labels=[0, 1, 2, 1], guidance=1.0, method="naive")
    assert np.array_equal(cached, naive) and len(np.unique(cached)) > 1


@NORMED_KINDS
def test_a_model_with_layer_norm_round_trips_through_the_codec_and_a_checkpoint(name, tmp_path):
    model = normed(name, seed=4).float()
    images = sample(model, 2, seed=1)
    decoded, _ = decompress(model, compress(model, images).data)
    assert np.array_equal(decoded, images)
    save_checkpoint(tmp_path / "c.pt", model)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded.config == model.config and loaded.config.to_dict()["norm"] == "layer"
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).long()
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    rows = architecture_table(model.config)
    assert "layer norm" in rows[1]["layer"] and sum(r["parameters"] for r in rows) == count_parameters(model)


def test_a_config_without_a_norm_reads_and_hashes_as_before_it_existed():
    """Every checkpoint written before the setting existed stores no ``norm``: it reads as none, and its
    dict (which the codec's model identity hashes) has no new key."""
    stored = {"kind": "pixelcnn", "channels": 3, "levels": 4, "image_size": 28, "hidden": 128, "n_blocks": 12,
              "first_kernel": 7, "block_kernel": 3, "classes": 0}
    config = PixelCNNConfig.from_dict(stored)
    assert config.norm == "none" and config.to_dict() == stored
    assert load_checkpoint("checkpoints/lecture").config.to_dict() == \
        {**stored, "hidden": 48}
