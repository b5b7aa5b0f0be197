"""Receptive fields of one conditional: measured by gradients, and derived from the masks alone."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .model import PixelCNN, PixelCNNConfig, kernel_mask
from .runtime import prepare_cpu


def random_model(config: PixelCNNConfig, seed: int = 0) -> PixelCNN:
    """A PixelCNN at its seeded random initialisation, in eval mode; the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PixelCNN(config).eval()


def _check_target(config: PixelCNNConfig, row: int, col: int, channel: int = 0) -> None:
    size = config.image_size
    for name, value, high in (("row", row, size), ("col", col, size), ("channel", channel, config.channels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < high:
            raise ConfigError(f"{name} must be an integer in [0, {high - 1}], got {value!r}")


def gradient_field(model: PixelCNN, image: np.ndarray, row: int, col: int, channel: int) -> np.ndarray:
    """|d log p(x[row, col, channel]) / d input|, max over input channels: a float (H, W) array.

    ``image`` is one image (H, W, C) or several (k, H, W, C) with values
    0..levels-1; with several, the maps are averaged, since in one image a
    path can hide behind ReLUs that happen to be inactive.
    """
    config = model.config
    _check_target(config, row, col, channel)
    prepare_cpu()
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
    """Input positions that feed any output in ``reach`` through a masked kernel's live taps.

    ``mask`` is a (k // 2 + 1, k) array of the stored rows; output (r, c) reads
    input (r - k // 2 + i, c - k // 2 + j) for each live tap (i, j).
    """
    rows, k = mask.shape
    half = k // 2
    height, width = reach.shape
    out = np.zeros_like(reach)
    for i, j in zip(*np.nonzero(mask)):
        dr, dc = i - half, j - half  # input offset relative to the output, dr <= 0
        # out[r + dr, c + dc] |= reach[r, c]
        src = reach[max(0, -dr):height - max(0, dr), max(0, -dc):width - max(0, dc)]
        out[max(0, dr):height - max(0, -dr), max(0, dc):width - max(0, -dc)] |= src
    return out


def analytic_field(config: PixelCNNConfig, row: int, col: int, n_blocks: int | None = None) -> np.ndarray:
    """Which input pixels can influence the output at (row, col) at all: a bool (H, W) array.

    Derived from kernel sizes and masks alone (the same for every channel,
    since channels are independent given the previous pixels). ``n_blocks``
    limits the depth to the first residual blocks, to watch the field grow.
    """
    _check_target(config, row, col)
    blocks = config.n_blocks if n_blocks is None else n_blocks
    if not 0 <= blocks <= config.n_blocks:
        raise ConfigError(f"n_blocks must be in [0, {config.n_blocks}], got {n_blocks}")
    size = config.image_size
    reach = np.zeros((size, size), dtype=bool)
    reach[row, col] = True
    block_mask = kernel_mask(config.block_kernel, "B").numpy().astype(bool)
    for _ in range(blocks):
        reach = reach | _spread(reach, block_mask)
    return _spread(reach, kernel_mask(config.first_kernel, "A").numpy().astype(bool))
