"""Polyak averaging of the weights (``--ema-decay``): what the average is, that a run validates, tests,
saves and resumes it exactly, and that the averaged weights keep every kind's autoregressive property."""

import threading

import pytest
import torch

from pixelcnn.training.averaging import WeightAverage, average_decay
from pixelcnn.store.checkpoint import load_checkpoint
from pixelcnn.errors import CheckpointError
from pixelcnn.store.metrics import read_events
from pixelcnn.models import KINDS, PixelCNNConfig, bits_per_dim
from pixelcnn.models import random_model
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.evaluate import evaluate
from pixelcnn.training.trainer import train

from autoregressive import assert_autoregressive, images_of

TINY = PixelCNNConfig(hidden=16, n_blocks=2)


def quick(**kw) -> TrainConfig:
    defaults = dict(steps=8, batch_size=32, eval_every=4, checkpoint_seconds=1e9, device="cpu", ema_decay=0.9,
                    live_samples=0)
    return TrainConfig(**{**defaults, **kw})


def test_the_average_moves_each_weight_a_share_of_the_way_to_the_current_one():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)
    average.update(model, step=100)  # decay 0.5: halfway
    assert torch.equal(average.model.weight, torch.full((1, 2), 2.0))
    average.update(model, step=0)  # the first steps decay by (1 + step) / (10 + step) = 0.1 at most
    assert torch.allclose(average.model.weight, torch.full((1, 2), 2.0 * 0.1 + 3.0 * 0.9))
    assert average_decay(0.999, 0) == pytest.approx(0.1) and average_decay(0.999, 10**6) == 0.999
    assert not average.model.weight.requires_grad and not average.model.training


def test_a_run_validates_tests_and_saves_the_average_beside_the_raw_weights(tmp_path, small_data):
    summary = train(tmp_path / "run", TINY, quick(), small_data)
    vals = [e for e in read_events(tmp_path / "run" / "metrics.jsonl") if e["event"] == "val"]
    assert vals and all("average_bits_per_dim" in e for e in vals)
    assert summary["best_average_val_bits_per_dim"] == min(e["average_bits_per_dim"] for e in vals)
    raw, average = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "run", weights="average")
    assert (raw.weights, average.weights) == ("raw", "average")
    assert evaluate(average.model, small_data["test"]) == pytest.approx(summary["test_average_bits_per_dim"], abs=1e-5)
    assert evaluate(raw.model, small_data["test"]) == pytest.approx(summary["test_bits_per_dim"], abs=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(raw.model.parameters(), average.model.parameters()))


def test_a_checkpoint_without_an_average_refuses_to_load_one(tmp_path, small_data):
    train(tmp_path / "run", TINY, quick(ema_decay=0.0, steps=2), small_data)
    with pytest.raises(CheckpointError, match="no averaged weights.*--ema-decay"):
        load_checkpoint(tmp_path / "run", weights="average")


def test_a_resumed_run_ends_with_the_average_an_uninterrupted_one_has(tmp_path, small_data):
    train(tmp_path / "full", TINY, quick(), small_data)
    stop = threading.Event()
    half = train(tmp_path / "split", TINY, quick(), small_data, stop=stop,
                 callback=lambda e: stop.set() if e["event"] == "train" and e["step"] == 3 else None)
    assert half["status"] == "stopped" and half["step"] == 3
    train(tmp_path / "split", TINY, quick(), small_data, resume=True)
    a = load_checkpoint(tmp_path / "full", weights="average").model.state_dict()
    b = load_checkpoint(tmp_path / "split", weights="average").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_averaged_weights_keep_the_autoregressive_property(name, mode):
    """After real Adam steps (which move every stored tap, masked or not), the average's logits at a pixel
    have exactly zero gradient with respect to every later pixel and to the channels of its own pixel
    that the kind draws later, in training and in evaluation mode."""
    config = KINDS[name].test_config()
    model = random_model(config, seed=1).double().train()
    average = WeightAverage(model, decay=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = images_of(config, 4)
    for step in range(3):
        optimizer.zero_grad()
        bits_per_dim(model(x), x).backward()
        optimizer.step()
        average.update(model, step + 20)
    net = average.model.train(mode == "train")
    assert_autoregressive(net, x.double().requires_grad_(True), paths=True, what=(name, mode))


def test_evaluate_scores_the_weights_asked_for_and_refuses_an_average_a_checkpoint_lacks(tmp_path, small_data,
                                                                                         mnist_dir, capsys):
    import json

    from pixelcnn.__main__ import main
    from pixelcnn.store.data import load_data

    train(tmp_path / "run", TINY, quick(), small_data)
    test = load_data(str(mnist_dir))["test"][:50]
    for weights in ("raw", "average"):
        assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--weights", weights, "--limit", "50",
                     "--json", "--data-dir", str(mnist_dir)]) == 0
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        expected = evaluate(load_checkpoint(tmp_path / "run", weights=weights).model, test)
        assert printed["weights"] == weights and printed["bits_per_dim"] == pytest.approx(expected, abs=1e-6)
    assert main(["evaluate", "--checkpoint", "checkpoints/lecture", "--weights", "average", "--limit", "5",
                 "--data-dir", str(mnist_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no averaged weights" in err
