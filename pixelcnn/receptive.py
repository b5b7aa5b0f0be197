"""Receptive fields of one conditional: measured by gradients, and derived from the masks alone."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError
from .model import PixelCNNConfig, build_model, kernel_mask


def random_model(config: PixelCNNConfig, seed: int = 0) -> nn.Module:
    """A model at its seeded random initialisation, in eval mode; the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config).eval()


def _check_target(config: PixelCNNConfig, row: int, col: int, channel: int = 0) -> None:
    size = config.image_size
    for name, value, high in (("row", row, size), ("col", col, size), ("channel", channel, config.channels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < high:
            raise ConfigError(f"{name} must be an integer in [0, {high - 1}], got {value!r}")


def gradient_field(model: nn.Module, image: np.ndarray, row: int, col: int, channel: int) -> np.ndarray:
    """|d log p(x[row, col, channel]) / d input|, max over input channels: a float (H, W) array.

    ``image`` is one image (H, W, C) or several (k, H, W, C) with values
    0..levels-1; with several, the maps are averaged, since in one image a
    path can hide behind ReLUs that happen to be inactive.
    """
    config = model.config
    _check_target(config, row, col, channel)
    images = np.asarray(image)
    if images.ndim == 3:
        images = images[None]
    size = config.image_size
    if images.shape[1:] != (size, size, config.channels):
        raise ConfigError(f"image must have shape ({size}, {size}, {config.channels}), got {images.shape[1:]}")
    was_training = model.training
    model.eval()
    param = model.output_logits.weight
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(param.device, param.dtype)
    x.requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)[:, :, channel, row, col]  # (k, levels)
        observed = x[:, channel, row, col].detach().long()
        log_p = F.log_softmax(logits, dim=1).gather(1, observed[:, None]).sum()
        (grad,) = torch.autograd.grad(log_p, x)
    model.train(was_training)
    return grad.abs().amax(dim=1).mean(dim=0).double().cpu().numpy()


def _spread(reach: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Input positions that feed any output in ``reach`` through a causal kernel's live taps.

    ``mask`` is a (rows, k) array whose last row is the output's own row and
    whose middle column is its own column: output (r, c) reads input
    (r - (rows - 1) + i, c - k // 2 + j) for each live tap (i, j).
    """
    rows, k = mask.shape
    height, width = reach.shape
    out = np.zeros_like(reach)
    for i, j in zip(*np.nonzero(mask)):
        dr, dc = i - (rows - 1), j - k // 2  # input offset relative to the output, dr <= 0
        # out[r + dr, c + dc] |= reach[r, c]
        src = reach[max(0, -dr):height - max(0, dr), max(0, -dc):width - max(0, dc)]
        out[max(0, dr):height - max(0, -dr), max(0, dc):width - max(0, -dc)] |= src
    return out


def _gated_masks(kernel_size: int, first: bool) -> tuple[np.ndarray, np.ndarray]:
    """The taps of a gated layer's vertical and horizontal kernels in :func:`_spread`'s layout."""
    q, shift = kernel_size // 2, int(first)
    vertical = np.zeros((q + 1 + shift, kernel_size), dtype=bool)
    vertical[:q + 1] = True  # rows r - q - shift .. r - shift
    horizontal = np.zeros((1, 2 * (q + shift) + 1), dtype=bool)
    horizontal[0, :q + 1] = True  # columns c - q - shift .. c - shift
    return vertical, horizontal


def _gated_field(config: PixelCNNConfig, reach: np.ndarray, layers: int) -> np.ndarray:
    """Walk a gated model backwards from the horizontal stack at ``reach`` through ``layers`` gated layers
    after the first, then the first: the input pixels it reads.

    A layer's vertical output and the vertical pre-activation that its horizontal
    stack adds at the same position both read the vertical window below them.
    """
    horizontal_reach, vertical_reach = reach, np.zeros_like(reach)
    vertical, horizontal = _gated_masks(config.block_kernel, first=False)
    for _ in range(layers):
        horizontal_reach, vertical_reach = (_spread(horizontal_reach, horizontal),
                                            _spread(horizontal_reach | vertical_reach, vertical))
    vertical, horizontal = _gated_masks(config.first_kernel, first=True)
    return _spread(horizontal_reach | vertical_reach, vertical) | _spread(horizontal_reach, horizontal)


def analytic_field(config: PixelCNNConfig, row: int, col: int, n_blocks: int | None = None,
                   channel: int = 0) -> np.ndarray:
    """Which input pixels can influence the conditional at (row, col, channel) at all: a bool (H, W) array.

    Derived from kernel sizes and masks alone. ``n_blocks`` limits the depth to
    the first residual blocks (gated layers after the first, for ``gated``), to
    watch the field grow. Only an ``rgb`` model's channel > 0 sees its own
    pixel (its earlier channels); the other kinds see strictly earlier pixels.
    """
    _check_target(config, row, col, channel)
    blocks = config.n_blocks if n_blocks is None else n_blocks
    if not 0 <= blocks <= config.n_blocks:
        raise ConfigError(f"n_blocks must be in [0, {config.n_blocks}], got {n_blocks}")
    size = config.image_size
    reach = np.zeros((size, size), dtype=bool)
    reach[row, col] = True
    if config.kind == "gated":
        return _gated_field(config, reach, blocks)
    block_mask = kernel_mask(config.block_kernel, "B").numpy().astype(bool)
    for _ in range(blocks):
        reach = reach | _spread(reach, block_mask)
    field = _spread(reach, kernel_mask(config.first_kernel, "A").numpy().astype(bool))
    if config.kind == "rgb" and channel > 0:
        field[row, col] = True
    return field
