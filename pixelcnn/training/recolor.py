"""Recoloring: a data augmentation that leaves colored MNIST's distribution exactly as it is.

:func:`pixelcnn.store.data.colorize` draws each image's background and stroke colours channel by
channel, independently and uniformly over 0..3, and only rejects pairs by their L1 distance. Both
are unchanged by permuting the three channels and by turning a channel's value ``v`` into ``3 - v``
(the distance ``|stroke - background|`` stays what it was), and so is the painting: ``rint(3 - x)`` is
``3 - rint(x)`` except at a tie, and no pixel can tie (``x = (1 - a) bg + a fg`` with ``a = g / 255``
is an integer plus one half only if 255 times an odd number is even). So each of the 48 maps
(6 permutations x 8 flips) sends a colored digit to another colored digit exactly as likely, and a
model trained on recolored batches learns the same distribution from more distinct images.

The maps drawn for a step are a pure function of (seed, step), so a resumed run recolors as an
uninterrupted one would have.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ..store.data import LEVELS


PERMUTATIONS = torch.tensor(list(itertools.permutations(range(3))))  # (6, 3)


def recolor_maps(seed: int, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``n`` images: which of the six channel orders each gets, (n,) int64, and which channels are
    flipped, (n, 3) bool; a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step, 2])
    order = torch.from_numpy(rng.integers(0, len(PERMUTATIONS), n))
    flip = torch.from_numpy(rng.random((n, 3)) < 0.5)
    return order, flip


def recolor(images: torch.Tensor, order: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) values 0..3 (any integer dtype), each image's channels put in the order
    ``PERMUTATIONS[order]`` and then, where ``flip`` (N, 3) is set, ``v`` turned into ``3 - v``."""
    channels = PERMUTATIONS.to(images.device)[order.to(images.device)]  # (N, 3)
    moved = torch.gather(images, 1, channels[:, :, None, None].expand_as(images))
    return torch.where(flip.to(images.device)[:, :, None, None], LEVELS - 1 - moved, moved)


def recolor_batch(images: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """A training batch (N, 3, H, W) recolored by the maps drawn for (seed, step)."""
    order, flip = recolor_maps(seed, step, len(images))
    return recolor(images, order, flip)
