"""Receptive fields of one conditional: measured by gradients, and derived from the masks alone."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, ModelError
from ..models import PixelCNNConfig, kind_of


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
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(param.device, param.dtype)
    x.requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)[:, :, channel, row, col]  # (k, levels)
        observed = x[:, channel, row, col].detach().long()
        log_p = F.log_softmax(logits, dim=1).gather(1, observed[:, None]).sum()
        (grad,) = torch.autograd.grad(log_p, x)
    model.train(was_training)
    if not (torch.isfinite(log_p) and torch.isfinite(grad).all()):
        raise ModelError(f"the model's log-probability at ({row}, {col}, {channel}) or its gradient is not finite "
                         f"(log p = {log_p.item():.3g}): its outputs overflow (weights too large?); retrain it or "
                         f"use another checkpoint")
    return grad.abs().amax(dim=1).mean(dim=0).double().cpu().numpy()


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
    return kind_of(config).analytic_field(config, row, col, blocks, channel)
