"""Do samples look like digits? A small MNIST classifier reads a colored image's strokes and says.

Bits/dim does not tell a room whether samples look like digits (Theis et al.,
"A note on the evaluation of generative models", 2016). The **digit score** of
a set of images is the share that this classifier, trained on the grey MNIST
training images, reads as one digit with probability at least 0.9; the
histogram of the digits it reads shows mode collapse as a lopsided count.

A colored image becomes a grey one through its **stroke map**: the L1 distance
of each pixel's colour from the image's background colour (its most common
colour), scaled so that the farthest colour is 1. Real colored digits map back
to their grey originals up to the 4 levels of colour.

The classifier's weights are shipped in ``checkpoints/digits/classifier.pt``
(``python -m pixelcnn classifier`` reproduces them) and read with the same
safe loader as every checkpoint; the file also records the score's reference
points, measured when it was trained: real colored test images and noise.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..store.files import atomic_write, is_number
from ..store.checkpoint import read_checkpoint_file
from ..errors import CheckpointError, ConfigError, ModelError
from ..paths import SHIPPED_DIR

FORMAT = "pixelcnn-digit-classifier"
VERSION = 1
CLASSIFIER_PATH = SHIPPED_DIR / "digits" / "classifier.pt"
CONFIDENCE = 0.9


class DigitClassifier(nn.Module):
    """A LeNet-style network: (B, 1, 28, 28) grey values in [0, 1] -> (B, 10) logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def stroke_maps(images: np.ndarray, levels: int = 4) -> np.ndarray:
    """Colored images (N, H, W, 3) in 0..levels-1 as stroke maps (N, H, W) in [0, 1]: each pixel's L1
    distance from the image's background colour (its most common colour), over the largest distance."""
    images = np.asarray(images).astype(np.int64)
    n, h, w, c = images.shape
    codes = (images * levels ** np.arange(c)).sum(axis=-1).reshape(n, -1)  # one integer per colour
    counts = np.zeros((n, levels ** c), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), h * w), codes.ravel()), 1)
    background_code = counts.argmax(axis=1)
    background = (background_code[:, None] // levels ** np.arange(c)) % levels  # (N, C)
    distance = np.abs(images - background[:, None, None, :]).sum(axis=-1).astype(np.float64)
    top = distance.reshape(n, -1).max(axis=1)
    return (distance / np.maximum(top, 1)[:, None, None]).astype(np.float32)


def _as_batch(grey: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[:, None]


@torch.inference_mode()
def read_digits(model: DigitClassifier, images: np.ndarray) -> np.ndarray:
    """The classifier's probabilities (N, 10) for colored images (N, 28, 28, 3) in 0..3."""
    model.eval()
    probs = torch.cat([F.softmax(model(_as_batch(stroke_maps(images[i:i + 512]))), dim=1)
                       for i in range(0, len(images), 512)])  # in slices: a large batch stays bounded
    if not torch.isfinite(probs).all():
        raise ModelError("the digit classifier's outputs are not finite (its weights overflow); run "
                         "`python -m pixelcnn classifier` to train it again")
    return probs.numpy()


def digit_score(model: DigitClassifier, images: np.ndarray, asked: np.ndarray | None = None) -> dict[str, Any]:
    """``score``: the share of images read as one digit with probability >= 0.9; ``histogram``: how many
    of those were read as each digit 0..9; ``n``: how many images. With ``asked`` (N,), the digit each image
    was drawn for, also ``asked_for``: the share read as that digit with probability >= 0.9."""
    probs = read_digits(model, images)
    confident = probs.max(axis=1) >= CONFIDENCE
    histogram = np.bincount(probs.argmax(axis=1)[confident], minlength=10)
    result = {"score": float(confident.mean()), "histogram": histogram.tolist(), "n": int(len(images))}
    if asked is not None:
        asked = np.asarray(asked).astype(np.int64)
        result["asked_for"] = float((confident & (probs.argmax(axis=1) == asked)).mean())
    return result


def noise_images(n: int, seed: int = 0) -> np.ndarray:
    """Uniformly random colored images: the score's floor."""
    return np.random.default_rng(seed).integers(0, 4, (n, 28, 28, 3)).astype(np.uint8)


def train_classifier(grey_train: np.ndarray, labels: np.ndarray, epochs: int = 2, seed: int = 0,
                     batch_size: int = 128, progress=None) -> DigitClassifier:
    """Train on grey MNIST (N, 28, 28) uint8 with labels (N,): Adam 1e-3, ``epochs`` passes."""
    torch.manual_seed(seed)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = _as_batch(grey_train.astype(np.float32) / 255.0)
    y_all = torch.from_numpy(labels.astype(np.int64))
    steps = epochs * math.ceil(len(x_all) / batch_size)
    done = 0
    for epoch in range(epochs):
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(x_all)))
        for start in range(0, len(x_all), batch_size):
            index = order[start:start + batch_size]
            loss = F.cross_entropy(model(x_all[index]), y_all[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if progress:
                progress(done / steps, f"epoch {epoch + 1}/{epochs}, loss {loss.item():.3f}")
    return model.eval()


@torch.inference_mode()
def accuracy(model: DigitClassifier, grey: np.ndarray, labels: np.ndarray) -> float:
    logits = torch.cat([model(_as_batch(grey[i:i + 512].astype(np.float32) / 255.0))
                        for i in range(0, len(grey), 512)])
    return float((logits.argmax(dim=1).numpy() == labels).mean())


def save_classifier(path: Path, model: DigitClassifier, record: dict[str, Any]) -> None:
    """Weights and the record of how they were made and what they score, atomically."""
    payload = {"format": FORMAT, "version": VERSION, "state_dict": model.state_dict(), "record": record}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))


def load_classifier(path: str | Path = CLASSIFIER_PATH) -> tuple[DigitClassifier, dict[str, Any]]:
    """The classifier and its record (accuracy, reference scores), read with the safe loader."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no digit classifier; run `python -m pixelcnn classifier` to train it")
    payload = read_checkpoint_file(path, kind=FORMAT)
    model = DigitClassifier()
    state = payload.get("state_dict")
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected) or any(
            not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape for k, v in expected.items()):
        raise CheckpointError(f"{path}: the weights do not fit the digit classifier; the file is damaged")
    if not all(torch.isfinite(t).all() for t in state.values()):
        raise CheckpointError(f"{path}: the digit classifier's weights are not finite; the file is damaged "
                              f"(run `python -m pixelcnn classifier` to train it again)")
    model.load_state_dict(state)
    record = payload.get("record") if isinstance(payload.get("record"), dict) else {}
    return model.eval(), {**record, "reference": reference_points(record)}


def reference_points(record: Any) -> dict[str, float]:
    """A record's reference scores, only those that are a short name and a finite number: the record is
    shown to every visitor."""
    reference = record.get("reference") if isinstance(record, dict) else None
    if not isinstance(reference, dict):
        return {}
    return {name[:60]: float(value) for name, value in reference.items() if isinstance(name, str) and is_number(value)}


def build_classifier(out: Path, data_dir=None, epochs: int = 2, progress=None) -> dict[str, Any]:
    """Train the classifier on the grey MNIST training images, measure it (test accuracy, the score of
    real colored test images and of noise) and save it to ``out``; returns the record."""
    from ..store.data import MNIST_FILES, find_idx, load_colored_mnist, read_idx, resolve_data_dir

    folder = resolve_data_dir(data_dir)
    grey, labels = {}, {}
    for split, (images_key, labels_key) in {"train": ("train_images", "train_labels"),
                                            "test": ("test_images", "test_labels")}.items():
        paths = [find_idx(folder, MNIST_FILES[key]) for key in (images_key, labels_key)]
        if None in paths:
            raise ConfigError(f"the MNIST files are not in {folder}; run `python -m pixelcnn data` first")
        grey[split] = read_idx(paths[0], MNIST_FILES[images_key])
        labels[split] = read_idx(paths[1], MNIST_FILES[labels_key])
    start = time.perf_counter()
    model = train_classifier(grey["train"], labels["train"], epochs=epochs, progress=progress)
    colored_test = load_colored_mnist(folder, download=False)["test"]
    real, noise = digit_score(model, colored_test), digit_score(model, noise_images(1000))
    record = {"epochs": epochs, "train_seconds": round(time.perf_counter() - start, 1),
              "test_accuracy": accuracy(model, grey["test"], labels["test"]),
              "colored_test_accuracy": float((read_digits(model, colored_test).argmax(1) == labels["test"]).mean()),
              "reference": {"real colored test images": real["score"], "random noise": noise["score"]}}
    save_classifier(Path(out), model, record)
    return record
