"""The autoregressive property by gradients: the one check the registry-driven tests of labels, layer norm
and weight averaging share (imported by those test files; pytest puts this folder on the path)."""

import torch

from pixelcnn.models import kind_of


def own_channels_seen(kind, config, channel: int) -> torch.Tensor:
    """The channels of its own pixel that a conditional may see: those the kind draws at earlier steps."""
    seen = torch.zeros(config.channels, dtype=torch.bool)
    for group in kind.channel_steps(config):
        if channel in group:
            break
        seen[group] = True
    return seen


def images_of(config, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random images (n, C, H, W) of ``config``'s shape and levels, the same for the same seed."""
    return torch.randint(0, config.levels, (n, config.channels, config.image_size, config.image_size),
                         generator=torch.Generator().manual_seed(seed))


def assert_autoregressive(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                          paths: bool = False, what: tuple = ()) -> None:
    """For four pixels and every channel, the gradient of each image's logits with respect to the input
    ``x`` (a floating (B, C, H, W) tensor that requires grad): exactly zero for the other images, for every
    later pixel and for the channels of its own pixel that the kind draws later, nonzero for those it draws
    earlier; with ``paths``, also nonzero somewhere before the pixel in the first image (the layers did not
    cut the paths). ``what`` goes into each failure's message."""
    config = model.config
    kind, size = kind_of(config), config.image_size
    logits = model(x) if labels is None else model(x, labels)
    order = torch.arange(size * size).view(size, size)
    for r, c in [(0, 0), (size // 2, size // 2), (size - 1, size - 1), (2, size - 2)]:
        for ch in range(config.channels):
            seen = own_channels_seen(kind, config, ch)
            for image in range(len(x)):
                (grad,) = torch.autograd.grad(logits[image, :, ch, r, c].sum(), x, retain_graph=True)
                assert grad[[i for i in range(len(x)) if i != image]].eq(0).all()  # images stay apart
                field = grad[image].abs().amax(dim=0)
                assert field[order > r * size + c].eq(0).all(), (*what, r, c, ch)
                if paths and image == 0 and (r, c) != (0, 0):
                    assert field[order < r * size + c].gt(0).any(), (*what, r, c, ch)
                assert torch.equal(grad[image, :, r, c] != 0, seen), (*what, r, c, ch)
