"""The teaching views' engine: where the bits go in an image, what the model predicts at a pixel, how
a sample is drawn, step by step. Pure functions of a model and arrays; every kind works through the
contract of :mod:`pixelcnn.models`.

All conditionals come from one teacher-forced forward pass: the masks already
hide from each conditional what it may not see, so the logits at (r, c, ch)
are p(x[r, c, ch] | everything before it in the kind's own order), including,
for ``rgb``, the earlier colours of the same pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ..models import kind_of
from ..sampling import prepare_labels, sample


def _check_image(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    cfg = model.config
    image = np.asarray(image)
    shape = (cfg.image_size, cfg.image_size, cfg.channels)
    if image.shape != shape or image.dtype.kind not in "ui" or image.min() < 0 or image.max() >= cfg.levels:
        raise ConfigError(f"the image must be integers 0..{cfg.levels - 1} of shape {shape}, got "
                          f"{image.dtype} {image.shape}")
    return image


@torch.inference_mode()
def log_probabilities(model: torch.nn.Module, image: np.ndarray, label: int | None = None) -> np.ndarray:
    """log p of every value of every conditional of one image (H, W, C) in 0..levels-1:
    float64 (H, W, C, levels), natural log, from one teacher-forced forward pass; a conditional model's
    given ``label`` (None: no label)."""
    image = _check_image(model, image)
    labels = prepare_labels(model, label, 1)
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None])).long().to(param.device)
    logits = model(x, None if labels is None else labels.to(param.device))[0].double().cpu()  # (levels, C, H, W)
    model.train(was_training)
    if not torch.isfinite(logits).all():
        raise ConfigError("the model's logits are not finite (its weights overflow); use another checkpoint")
    return torch.log_softmax(logits, dim=0).permute(2, 3, 1, 0).numpy()


def bits_per_value(model: torch.nn.Module, image: np.ndarray, label: int | None = None) -> np.ndarray:
    """-log2 p(x[r, c, ch] | what comes before it) for every value of one image (a conditional model's
    given ``label``): float32 (H, W, C).

    Its mean is the image's bits/dim, what ``evaluate`` reports for that image alone.
    """
    image = _check_image(model, image)
    return bits_from(log_probabilities(model, image, label), image)


def bits_from(log_probs: np.ndarray, image: np.ndarray) -> np.ndarray:
    """-log2 of each true value's probability, from :func:`log_probabilities` of ``image``: float32 (H, W, C)."""
    true = np.take_along_axis(log_probs, np.asarray(image)[..., None].astype(np.int64), axis=-1)[..., 0]
    return (-true / math.log(2.0)).astype(np.float32)


def probabilities(log_probs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) from log-probabilities (..., levels): how sampling at ``temperature`` would draw."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a number > 0, got {temperature!r}")
    scaled = log_probs / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=-1, keepdims=True)


def predict(model: torch.nn.Module, image: np.ndarray, row: int, col: int,
            temperature: float = 1.0) -> dict:
    """What the model predicts at pixel (row, col) of ``image``: its true ``values`` (C,), the
    ``probabilities`` (C lists of levels floats: each channel's distribution given the image before it,
    in the model's own conditioning order, at ``temperature``) and the ``bits`` of each true value
    (-log2 of its probability at temperature 1, as in :func:`bits_per_value`)."""
    image = _check_image(model, image)
    size = model.config.image_size
    for name, value in (("row", row), ("col", col)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
            raise ConfigError(f"{name} must be an integer in [0, {size - 1}], got {value!r}")
    logp = log_probabilities(model, image)[row, col]  # (C, levels)
    values = image[row, col].astype(int)
    bits = -logp[np.arange(len(values)), values] / math.log(2.0)
    return {"row": int(row), "col": int(col), "values": values.tolist(),
            "probabilities": probabilities(logp, temperature).tolist(), "bits": bits.tolist()}


@dataclass
class Generation:
    """One sample drawn step by step: ``steps`` rows of (row, col, channels drawn), the distribution
    each step drew from (steps, C, levels; entries of channels not drawn at a step are 0), the
    image after each step is ``image`` with later steps not yet drawn, and ``field_offsets`` the
    analytic field of the centre pixel as (dr, dc) offsets, to outline a step's field anywhere."""

    image: np.ndarray  # (H, W, C) uint8: the finished sample
    steps: list[tuple[int, int, list[int]]]
    distributions: np.ndarray  # (steps, C, levels) float32
    field_offsets: list[tuple[int, int]]


def record_generation(model: torch.nn.Module, seed: int = 0, temperature: float = 1.0) -> Generation:
    """Draw one sample with the kind's cached sampler and record every step: which pixel (and
    channels) was drawn, from which distribution. It is ``sample(model, 1, seed, temperature)``,
    listened to step by step, so it draws exactly that image."""
    cfg = model.config
    steps, distributions = [], []

    def record(r: int, c: int, group: list, logits: torch.Tensor) -> None:
        dist = np.zeros((cfg.channels, cfg.levels), dtype=np.float32)
        dist[group] = torch.softmax(logits.double() / temperature, dim=1)[0].T.numpy()
        steps.append((r, c, list(group)))
        distributions.append(dist)

    image = sample(model, 1, seed=seed, temperature=temperature, on_step=record)[0]
    return Generation(image=image, steps=steps, distributions=np.stack(distributions),
                      field_offsets=field_offsets(cfg))


def field_offsets(cfg) -> list[tuple[int, int]]:
    """The analytic receptive field of the centre pixel as (dr, dc) offsets, to outline any step's field."""
    centre = cfg.image_size // 2
    field = kind_of(cfg).analytic_field(cfg, centre, centre, cfg.n_blocks, 0)
    return [(int(r - centre), int(c - centre)) for r, c in zip(*np.nonzero(field))]


def erase_mask(shape: str, size: int = 28) -> np.ndarray:
    """A named region to erase, as a bool (size, size) mask (True = erased): ``bottom half``,
    ``right half``, ``middle band`` (rows 10..17), ``centre square`` (10..17 x 10..17), ``top rows``
    (rows 0..13)."""
    mask = np.zeros((size, size), dtype=bool)
    lo, hi = size * 10 // 28, size * 18 // 28
    regions = {"bottom half": (slice(size // 2, None), slice(None)),
               "right half": (slice(None), slice(size // 2, None)),
               "middle band": (slice(lo, hi), slice(None)),
               "centre square": (slice(lo, hi), slice(lo, hi)),
               "top rows": (slice(0, size // 2), slice(None))}
    if shape not in regions:
        raise ConfigError(f"shape must be one of {', '.join(regions)}, got {shape!r}")
    mask[regions[shape]] = True
    return mask


ERASE_SHAPES = ("bottom half", "right half", "middle band", "centre square", "top rows")


def complete(model: torch.nn.Module, image: np.ndarray, erased: np.ndarray, count: int, seed: int = 0,
             temperature: float = 1.0, progress=None) -> np.ndarray:
    """``count`` completions of ``image`` (H, W, C) where ``erased`` (H, W) is True: uint8 (count, H, W, C).

    Every pixel outside ``erased`` is kept exactly; each erased pixel is drawn
    from the pixels before it in raster order, so known pixels below or to the
    right of an erased one cannot shape it.
    """
    image = _check_image(model, image)
    erased = np.asarray(erased, dtype=bool)
    if erased.shape != image.shape[:2]:
        raise ConfigError(f"the erased mask must have shape {image.shape[:2]}, got {erased.shape}")
    return sample(model, count, seed=seed, temperature=temperature, prefix=(image, ~erased), progress=progress)
