"""Recoloring maps colored MNIST onto itself: a recolored digit is the same digit painted in the mapped
colours, for every grey level, so the augmentation cannot change the distribution the model learns."""

import numpy as np
import torch

from pixelcnn.store.data import LEVELS, MIN_COLOUR_DISTANCE, colorize, paint_digits
from pixelcnn.training.evaluate import to_tensor
from pixelcnn.training.recolor import PERMUTATIONS, recolor, recolor_batch, recolor_maps
from pixelcnn.training.step import BatchOrder
from pixelcnn.training import distributed


def every_colour_pair() -> tuple[np.ndarray, np.ndarray]:
    """Every (background, stroke) pair colorize can draw, as (P, 3) arrays."""
    colours = np.array(np.meshgrid(*[range(LEVELS)] * 3, indexing="ij")).reshape(3, -1).T
    bg, fg = np.repeat(colours, len(colours), axis=0), np.tile(colours, (len(colours), 1))
    keep = np.abs(fg - bg).sum(axis=1) >= MIN_COLOUR_DISTANCE
    return bg[keep], fg[keep]


def test_each_of_the_48_maps_recolors_a_digit_into_the_digit_painted_in_the_mapped_colours():
    bg, fg = every_colour_pair()
    grey = np.tile(np.arange(256, dtype=np.uint8).reshape(16, 16), (len(bg), 1, 1))  # every grey level
    images = to_tensor(paint_digits(grey, bg, fg))
    for order in range(len(PERMUTATIONS)):
        for bits in range(8):
            flip = np.array([(bits >> c) & 1 for c in range(3)], dtype=bool)
            perm = PERMUTATIONS[order].numpy()

            def mapped(colour: np.ndarray) -> np.ndarray:
                moved = colour[:, perm]
                return np.where(flip, LEVELS - 1 - moved, moved)

            assert (np.abs(mapped(fg) - mapped(bg)).sum(axis=1) >= MIN_COLOUR_DISTANCE).all()
            expected = to_tensor(paint_digits(grey, mapped(bg), mapped(fg)))
            got = recolor(images, torch.full((len(bg),), order), torch.from_numpy(np.tile(flip, (len(bg), 1))))
            assert torch.equal(got, expected), (order, bits)


def test_a_recolored_batch_keeps_its_values_and_shapes_and_changes_colours():
    images = to_tensor(colorize(np.random.default_rng(0).integers(0, 256, (64, 28, 28)).astype(np.uint8), 3))
    out = recolor_batch(images, seed=0, step=5)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert int(out.min()) >= 0 and int(out.max()) <= LEVELS - 1
    assert not torch.equal(out, images)
    order, flip = recolor_maps(0, 5, 64)
    assert len(set(order.tolist())) > 1 and flip.any() and not flip.all()


def test_the_maps_are_a_pure_function_of_seed_and_step():
    a, b = recolor_maps(1, 7, 32), recolor_maps(1, 7, 32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = recolor_maps(1, 8, 32)
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]))


def test_the_batch_order_recolors_only_when_asked_and_a_resumed_order_recolors_the_same():
    images = to_tensor(colorize(np.random.default_rng(1).integers(0, 256, (40, 28, 28)).astype(np.uint8), 4))
    world = distributed.Distributed()
    plain = BatchOrder(images, 0, 5, 8, world)
    recolored = BatchOrder(images, 0, 5, 8, world, recolor=True)
    again = BatchOrder(images, 0, 5, 8, world, recolor=True)
    assert torch.equal(recolored.batch(7)[0], recolor_batch(plain.batch(7)[0], 0, 7))
    assert torch.equal(again.batch(7)[0], recolored.batch(7)[0])
