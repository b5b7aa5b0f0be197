"""Class-conditional models, for every kind in the registry: the label enters every layer as a learned
bias, the masks' guarantee holds with any label, both samplers agree with labels and guidance, and the
generative reading (Bayes' rule, the mixture likelihood) is what its algebra says."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelcnn.store.data import synthetic_colored_mnist
from pixelcnn.errors import ConfigError
from pixelcnn.models import KINDS, PixelCNNConfig
from pixelcnn.explain.posterior import (generative_reading, label_log_likelihoods, label_posterior,
                                marginal_log_likelihood)
from pixelcnn.models import random_model
from pixelcnn.sampling import sample, teacher_forced_logits
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.evaluate import evaluate
from pixelcnn.training.trainer import train

from autoregressive import assert_autoregressive, images_of

ALL_KINDS = pytest.mark.parametrize("name", sorted(KINDS))
CLASSES = 4


def conditional(name: str, seed: int = 0) -> torch.nn.Module:
    """A small conditional model whose label biases are random (a fresh one starts them at zero)."""
    model = random_model(replace(KINDS[name].test_config(), classes=CLASSES), seed=seed).double()
    with torch.no_grad():
        model.label_bias.table.copy_(torch.randn(model.label_bias.table.shape, generator=torch.Generator()
                                                 .manual_seed(seed), dtype=torch.float64))
    return model


@ALL_KINDS
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_autoregressive_property_holds_with_any_label(name, mode):
    """Gradients: every later pixel and the current one (but for the channels the kind draws earlier) have
    exactly zero influence on a conditional, whatever the label, in training and in evaluation mode."""
    model = conditional(name).train(mode == "train")
    x = images_of(model.config, CLASSES + 1).double().requires_grad_(True)
    assert_autoregressive(model, x, torch.arange(CLASSES + 1), what=(name,))  # every label and "no label"


@ALL_KINDS
def test_a_label_changes_the_logits_and_a_fresh_model_is_its_unconditional_twin(name):
    config = replace(KINDS[name].test_config(), classes=CLASSES)
    x = images_of(config, 2)
    fresh = random_model(config, seed=4)
    twin = random_model(replace(config, classes=0), seed=4)
    with torch.no_grad():
        assert torch.equal(fresh(x, torch.tensor([1, CLASSES])), twin(x))  # the label biases start at zero
        model = conditional(name)
        a, b = model(x.double(), torch.tensor([0, 1])), model(x.double(), torch.tensor([2, 1]))
    assert (a[0] - b[0]).abs().max() > 1e-3 and torch.equal(a[1], b[1])


@ALL_KINDS
def test_cached_logits_equal_the_full_forward_with_labels(name):
    model = conditional(name, seed=3)
    image = images_of(model.config, 3)
    labels = torch.tensor([0, 3, CLASSES])
    with torch.no_grad():
        full = model(image, labels)
    assert (teacher_forced_logits(model, image, labels) - full).abs().max().item() < 1e-10


@ALL_KINDS
@pytest.mark.parametrize("guidance", [0.0, 2.5])
def test_cached_sampler_draws_what_the_naive_one_draws_with_labels(name, guidance):
    model = conditional(name, seed=1)
    labels = [0, 1, 3, CLASSES]
    cached = sample(model, 4, seed=7, labels=labels, guidance=guidance)
    naive = sample(model, 4, seed=7, labels=labels, guidance=guidance, method="naive")
    assert np.array_equal(cached, naive) and len(np.unique(cached)) > 1


@ALL_KINDS
def test_guidance_zero_is_conditional_sampling_and_guidance_changes_samples(name):
    model = conditional(name, seed=2)
    plain = sample(model, 6, seed=3, labels=2)
    assert np.array_equal(plain, sample(model, 6, seed=3, labels=[2] * 6, guidance=0.0))
    assert not np.array_equal(plain, sample(model, 6, seed=3, labels=2, guidance=3.0))
    # "no label" has nothing to be guided away from: cond and uncond are the same conditional
    none = sample(model, 6, seed=3, labels=CLASSES)
    assert np.array_equal(none, sample(model, 6, seed=3, labels=CLASSES, guidance=3.0))
    assert np.array_equal(none, sample(model, 6, seed=3))


def test_labels_are_checked():
    model = conditional("pixelcnn")
    for bad in ([0, 1], CLASSES + 1, -1, [0.5] * 3):
        with pytest.raises(ConfigError, match="labels must be"):
            sample(model, 3, labels=bad)
    with pytest.raises(ConfigError, match="guidance"):
        sample(model, 3, labels=0, guidance=-1.0)
    with pytest.raises(ConfigError, match="unconditional"):
        sample(random_model(KINDS["pixelcnn"].test_config()), 2, labels=1)
    with pytest.raises(ValueError, match="unconditional"):
        random_model(KINDS["pixelcnn"].test_config())(images_of(model.config, 1), torch.tensor([0]))


@ALL_KINDS
def test_the_generative_reading_is_bayes_rule(name):
    """log p(x) = logsumexp_y (log p(x|y) + log p(y)), p(y | x) sums to one, and the table's entries are
    the bits/dim evaluate gives under each label."""
    model = conditional(name, seed=5)
    config = model.config
    images = images_of(config, 5, seed=1).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    table = label_log_likelihoods(model, images, batch_size=2)
    dims = config.channels * config.image_size ** 2
    for y in range(CLASSES):
        assert np.isclose(-table[:, y].mean() / dims / np.log(2), evaluate(model, images, labels=[y] * 5), atol=1e-9)
    posterior = label_posterior(table)
    assert np.allclose(posterior.sum(axis=1), 1.0) and (posterior > 0).all()
    marginal = marginal_log_likelihood(table)
    assert np.allclose(marginal, np.log(np.exp(table).mean(axis=1)))
    assert (marginal <= table.max(axis=1)).all() and (marginal >= table.max(axis=1) - np.log(CLASSES)).all()
    labels = np.array([0, 1, 2, 3, 0])
    reading = generative_reading(model, images, labels)
    assert reading["accuracy"] == float((posterior.argmax(axis=1) == labels).mean())
    assert np.isclose(reading["given_label_bits_per_dim"], evaluate(model, images, labels=labels), atol=1e-9)


def test_a_conditional_run_trains_with_labels_and_refuses_data_without(tmp_path):
    data = synthetic_colored_mnist(64, 16, 16)
    labels = {f"{split}_labels": np.arange(len(images)) % 10 for split, images in data.items()}
    config = PixelCNNConfig(hidden=8, n_blocks=1, classes=10)
    summary = train(tmp_path / "run", config, TrainConfig(steps=3, batch_size=16, live_samples=4),
                    {**data, **labels})
    assert summary["status"] == "finished"
    assert summary["test_no_label_bits_per_dim"] != summary["test_bits_per_dim"]
    with pytest.raises(ConfigError, match="has no labels"):
        train(tmp_path / "other", config, TrainConfig(steps=1, batch_size=16), data)
    with pytest.raises(ConfigError, match="labels must be"):
        train(tmp_path / "third", replace(config, classes=5), TrainConfig(steps=1, batch_size=16),
              {**data, **labels})


def test_label_dropout_hides_the_share_asked_for_the_same_way_on_resume():
    from pixelcnn.training.distributed import Distributed
    from pixelcnn.training.step import BatchOrder

    images = torch.zeros(1000, 3, 2, 2, dtype=torch.uint8)
    labels = torch.arange(1000) % 10
    order = BatchOrder(images, 0, 1, 1000, Distributed(), labels, 10, 0.25)
    _, shown = order.batch(0)
    assert 0.2 < float((shown == 10).float().mean()) < 0.3
    again = BatchOrder(images, 0, 1, 1000, Distributed(), labels, 10, 0.25)
    assert torch.equal(again.batch(0)[1], shown) and not torch.equal(again.batch(1)[1], shown)


def test_a_conditional_run_starts_from_its_unconditional_twin_and_refuses_another_model(tmp_path):
    """``init_from``: the twin's weights, the label tables at zero, so the new model's first logits are the
    twin's under every label; a checkpoint of another architecture is refused with one line."""
    from pixelcnn.store.checkpoint import load_checkpoint

    data = synthetic_colored_mnist(64, 16, 16)
    labels = {f"{split}_labels": np.arange(len(images)) % 10 for split, images in data.items()}
    twin = PixelCNNConfig(hidden=8, n_blocks=1)
    train(tmp_path / "twin", twin, TrainConfig(steps=2, batch_size=16, live_samples=0), data)
    source = load_checkpoint(tmp_path / "twin" / "checkpoint.pt").model.eval()
    start = TrainConfig(steps=1, batch_size=16, lr=1e-12, live_samples=0,
                        init_from=str(tmp_path / "twin" / "checkpoint.pt"))
    train(tmp_path / "labelled", replace(twin, classes=10), start, {**data, **labels})
    started = load_checkpoint(tmp_path / "labelled" / "checkpoint.pt").model.eval()
    images = images_of(twin, 3)
    with torch.no_grad():
        assert (started(images, torch.tensor([0, 4, 10])) - source(images)).abs().max().item() < 1e-6
    with pytest.raises(ConfigError, match="--init-from needs the model being trained"):
        train(tmp_path / "wider", replace(twin, hidden=10, classes=10), start, {**data, **labels})


def test_posterior_on_a_few_images_names_the_digits_it_did_not_see(tmp_path, capsys, mnist_dir, recwarn):
    """Browser walk: ``posterior --limit 20`` printed NumPy warnings and "8:nan" where no 8 was among them."""
    from pixelcnn.__main__ import main
    from pixelcnn.store.checkpoint import save_checkpoint

    config = PixelCNNConfig(hidden=8, n_blocks=1, classes=10)
    save_checkpoint(tmp_path / "c.pt", random_model(config, seed=0))
    assert main(["posterior", "--checkpoint", str(tmp_path / "c.pt"), "--data-dir", str(mnist_dir),
                 "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "-(0)" in out and "no test image of that digit" in out
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
