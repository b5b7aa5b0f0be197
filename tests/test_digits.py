"""The digit score: stroke maps, the shipped classifier, its reference points, the score command."""

import json

import numpy as np
import pytest
import torch

from pixelcnn.__main__ import main
from pixelcnn.store.checkpoint import save_checkpoint
from pixelcnn.explain.digits import (CLASSIFIER_PATH, digit_score, load_classifier, noise_images, read_digits,
                             stroke_maps)
from pixelcnn.errors import CheckpointError
from pixelcnn.models import PixelCNNConfig, build_model


def cli(capsys, *argv):
    try:
        code = main(list(argv))
    finally:
        torch.set_flush_denormal(False)
    return code, capsys.readouterr()


def test_stroke_maps_measure_the_distance_from_the_background():
    image = np.zeros((1, 28, 28, 3), dtype=np.uint8)
    image[...] = (3, 0, 1)  # background
    image[0, 5:20, 10:13] = (0, 2, 1)  # a stroke 5 away (L1)
    image[0, 4, 4] = (2, 0, 1)  # a faint pixel 1 away
    grey = stroke_maps(image)[0]
    assert grey.dtype == np.float32 and grey.shape == (28, 28)
    assert grey[0, 0] == 0 and grey[10, 11] == 1 and grey[4, 4] == pytest.approx(1 / 5)


def test_the_shipped_classifier_loads_with_its_reference_points():
    model, record = load_classifier()
    assert record["test_accuracy"] > 0.98
    reference = record["reference"]
    assert reference["real colored test images"] > 0.9 and reference["random noise"] < 0.05
    probs = read_digits(model, noise_images(8))
    assert probs.shape == (8, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_noise_scores_near_zero():
    result = digit_score(load_classifier()[0], noise_images(200, seed=3))
    assert result["score"] < 0.05 and result["n"] == 200 and len(result["histogram"]) == 10


@pytest.mark.slow
def test_real_colored_digits_score_high_and_are_read_right(mnist_dir):
    from pixelcnn.store.data import MNIST_FILES, load_colored_mnist, read_idx

    test = load_colored_mnist(mnist_dir, download=False)["test"][:1000]
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", MNIST_FILES["test_labels"])[:1000]
    model, _ = load_classifier()
    assert (read_digits(model, test).argmax(axis=1) == labels).mean() > 0.97
    result = digit_score(model, test)
    assert result["score"] > 0.9 and min(result["histogram"]) > 50  # every digit is read, none dominates


def test_a_foreign_or_damaged_file_is_refused(tmp_path):
    save_checkpoint(tmp_path / "pixelcnn.pt", build_model(PixelCNNConfig(hidden=8, n_blocks=1)))
    with pytest.raises(CheckpointError, match="not a pixelcnn checkpoint"):
        load_classifier(tmp_path / "pixelcnn.pt")
    with pytest.raises(CheckpointError, match="classifier"):
        load_classifier(tmp_path / "missing.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(CLASSIFIER_PATH.read_bytes()[:10_000])
    with pytest.raises(CheckpointError):
        load_classifier(damaged)


def test_the_score_command(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", noise_images(20))
    code, out = cli(capsys, "score", "--images", str(tmp_path / "noise.npy"), "--json")
    assert code == 0, out.err
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["n"] == 20 and result["score"] < 0.2 and "random noise" in result["reference"]
    code, out = cli(capsys, "score", "--preset", "tiny", "--n", "4", "--seed", "1")
    assert code == 0 and out.out.strip().splitlines()[-1].startswith("digit score: ")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 28, 28), dtype=np.uint8))
    code, out = cli(capsys, "score", "--images", str(tmp_path / "wrong.npy"))
    assert code == 2 and out.err.count("\n") == 1
