"""``--init-from`` a shallower checkpoint: a pixelcnn or rgb model with more blocks starts from an
unconditional model with fewer, its extra blocks starting as identities, so it computes exactly what the
shallower model computes, the new blocks learn from the first step, and the masks still hold; anything
else is refused with one line."""

from dataclasses import replace

import pytest
import torch

from pixelcnn.errors import ConfigError
from pixelcnn.models import KINDS, bits_per_dim, random_model
from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.store.data import synthetic_colored_mnist
from pixelcnn.store.rundir import read_run_config
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.state import warm_start
from pixelcnn.training.trainer import train

from autoregressive import assert_autoregressive, images_of

DEEPENING = ["pixelcnn", "rgb"]


def deepened(name: str, tmp_path, extra: int = 2) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A random shallow model of kind ``name`` (saved and loaded as a checkpoint) and a fresh model with
    ``extra`` more blocks warm-started from it."""
    shallow = random_model(KINDS[name].test_config(), seed=4)
    save_checkpoint(tmp_path / "shallow.pt", shallow)
    config = replace(shallow.config, n_blocks=shallow.config.n_blocks + extra)
    model = random_model(config, seed=5)
    warm_start(model, config, tmp_path / "shallow.pt")
    return load_checkpoint(tmp_path / "shallow.pt").model.eval(), model


@pytest.mark.parametrize("name", DEEPENING)
def test_a_deeper_model_started_from_a_shallower_one_computes_exactly_what_it_computes(name, tmp_path):
    shallow, model = deepened(name, tmp_path)
    x = images_of(model.config, 4)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), shallow(x))
        assert torch.equal(model.train()(x), shallow(x))
    for block in model.blocks[shallow.config.n_blocks:]:
        assert not block.expand.weight.any() and not block.expand.bias.any() and block.masked.weight.any()


@pytest.mark.parametrize("name", DEEPENING)
def test_its_new_blocks_learn_from_the_first_step_and_keep_the_masks(name, tmp_path):
    shallow, model = deepened(name, tmp_path)
    new = model.blocks[shallow.config.n_blocks:]
    x = images_of(model.config, 8, seed=1)
    bits_per_dim(model.train()(x), x).backward()
    assert all(block.expand.weight.grad.abs().sum() > 0 for block in new)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter -= 0.1 * parameter.grad
        assert not torch.equal(model.eval()(x), shallow(x))
    assert all(block.expand.weight.any() for block in new)
    x = images_of(model.config, 2, seed=3).double().requires_grad_()  # images with no dead path in either kind
    assert_autoregressive(model, x, paths=True, what=(name, "deepened"))


def test_a_training_run_deepens_a_shallower_run_and_records_where_it_started(tmp_path):
    """Through the trainer: a 3-block rgb run from a 1-block run's checkpoint starts at its logits, and its
    config.json names that checkpoint."""
    data = synthetic_colored_mnist(64, 16, 16)
    shallow_config = replace(KINDS["rgb"].test_config(), image_size=28, n_blocks=1)
    train(tmp_path / "shallow", shallow_config, TrainConfig(steps=2, batch_size=16, live_samples=0), data)
    source = load_checkpoint(tmp_path / "shallow" / "checkpoint.pt").model.eval()
    start = TrainConfig(steps=1, batch_size=16, lr=1e-12, live_samples=0,
                        init_from=str(tmp_path / "shallow" / "checkpoint.pt"))
    train(tmp_path / "deep", replace(shallow_config, n_blocks=3), start, data)
    started = load_checkpoint(tmp_path / "deep" / "checkpoint.pt")
    x = images_of(shallow_config, 3)
    with torch.no_grad():
        assert started.config.n_blocks == 3
        assert (started.model.eval()(x) - source(x)).abs().max().item() < 1e-6
    assert read_run_config(tmp_path / "deep")["train"]["init_from"] == start.init_from


def test_deepening_refuses_a_conditional_source_a_deeper_source_and_a_gated_model(tmp_path):
    base = KINDS["pixelcnn"].test_config()
    save_checkpoint(tmp_path / "labelled.pt", random_model(replace(base, classes=10), seed=1))
    save_checkpoint(tmp_path / "deep.pt", random_model(replace(base, n_blocks=4), seed=1))
    gated = KINDS["gated"].test_config()
    save_checkpoint(tmp_path / "gated.pt", random_model(gated, seed=1))
    cases = [(replace(base, n_blocks=4, classes=10), "labelled.pt", "or fewer, unconditional"),
             (base, "deep.pt", "--init-from needs the model being trained"),
             (replace(gated, n_blocks=gated.n_blocks + 1), "gated.pt", "for kinds pixelcnn and rgb only")]
    for config, source, message in cases:
        model = random_model(config, seed=2)
        before = [p.detach().clone() for p in model.parameters()]
        with pytest.raises(ConfigError, match=message) as err:
            warm_start(model, config, tmp_path / source)
        assert "\n" not in str(err.value)
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
