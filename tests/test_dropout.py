"""Dropout in the residual blocks (``dropout`` > 0), for every kind in the registry: a kind that builds it
keeps the autoregressive property while dropout is active, computes in evaluation mode exactly what the same
weights compute without it (so sampling, scoring and the codec are untouched), starts from a checkpoint
trained without it, and is set from the command line; a kind that does not build it refuses with one line."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelcnn.__main__ import build_parser
from pixelcnn.cli.train import train_configs
from pixelcnn.errors import ConfigError
from pixelcnn.models import KINDS, PixelCNNConfig, architecture_table, random_model
from pixelcnn.sampling import sample
from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.training.state import warm_start

from autoregressive import assert_autoregressive, images_of


def builds_dropout(name: str) -> bool:
    try:
        replace(KINDS[name].test_config(), dropout=0.3)
    except ConfigError as err:
        assert "dropout 0.3 is for kinds pixelcnn and rgb only" in str(err) and str(err).count("\n") == 0
        return False
    return True


DROPOUT_KINDS = pytest.mark.parametrize("name", [name for name in sorted(KINDS) if builds_dropout(name)])


def with_dropout(name: str, classes: int = 0, seed: int = 0, dropout: float = 0.3) -> torch.nn.Module:
    config = replace(KINDS[name].test_config(), dropout=dropout, classes=classes)
    model = random_model(config, seed=seed).double()
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    return model


def test_the_residual_kinds_build_dropout_and_gated_refuses_it_with_one_line():
    assert [name for name in sorted(KINDS) if builds_dropout(name)] == ["pixelcnn", "rgb"]
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0, 0.9\]"):
        PixelCNNConfig(dropout=1.0)


@DROPOUT_KINDS
@pytest.mark.parametrize("classes", [0, 3])
def test_while_dropout_is_active_the_autoregressive_property_holds(name, classes):
    """Training mode: two passes differ (dropout acts), and each conditional's logits still have exactly zero
    gradient with respect to every later pixel and to the channels of its own pixel drawn later."""
    model = with_dropout(name, classes, seed=2).train()  # a seed whose small rgb model has no dead path
    x = images_of(model.config, 4, seed=1).double().requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3]) if classes else None
    torch.manual_seed(2)
    with torch.no_grad():
        assert not torch.equal(model(x, labels), model(x, labels))
    assert_autoregressive(model, x, labels, paths=True, what=(name, classes))


@DROPOUT_KINDS
def test_in_eval_mode_dropout_changes_nothing_and_the_cached_sampler_equals_the_naive_one(name):
    model = with_dropout(name, classes=3, seed=4)
    plain = random_model(replace(model.config, dropout=0.0)).double()
    plain.load_state_dict(model.state_dict())
    image = images_of(model.config, 3, seed=3)
    labels = torch.tensor([0, 2, 3])
    with torch.no_grad():
        assert torch.equal(model(image, labels), plain(image, labels))
    model.train()
    cached = sample(model, 4, seed=5, labels=[0, 1, 2, 1], method="cached")
    naive = sample(model, 4, seed=5, labels=[0, 1, 2, 1], method="naive")
    assert np.array_equal(cached, naive) and len(np.unique(cached)) > 1
    assert np.array_equal(cached, sample(plain, 4, seed=5, labels=[0, 1, 2, 1], method="cached"))


def test_a_model_with_dropout_starts_from_weights_trained_without_it_and_saves_its_setting(tmp_path):
    source = random_model(KINDS["pixelcnn"].test_config(), seed=6)
    save_checkpoint(tmp_path / "plain.pt", source)
    config = replace(source.config, dropout=0.2)
    model = random_model(config, seed=7)
    warm_start(model, config, tmp_path / "plain.pt")
    x = torch.randint(0, config.levels, (2, config.channels, config.image_size, config.image_size))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), source(x))
    save_checkpoint(tmp_path / "dropout.pt", model)
    loaded = load_checkpoint(tmp_path / "dropout.pt")
    assert loaded.config.dropout == 0.2 and loaded.config.to_dict()["dropout"] == 0.2
    assert "dropout 0.2" in architecture_table(config)[1]["layer"]


def test_the_setting_comes_from_the_command_line_and_a_config_without_it_reads_as_before():
    model_config, _ = train_configs(build_parser().parse_args(["train", "--out", "runs/x", "--dropout", "0.1"]))
    assert model_config.dropout == 0.1 and model_config.hidden == 128
    stored = load_checkpoint("checkpoints/lecture").config
    assert stored.dropout == 0.0 and "dropout" not in stored.to_dict()
