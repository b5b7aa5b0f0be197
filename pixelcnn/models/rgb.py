"""Kind ``rgb``: the exercise's layers with the paper's channel-autoregressive masks,
p(x) = prod_i prod_c p(x_i^c | x_i^<c, x_<i).

Every feature map belongs to a colour (thirds of the width); at the centre tap
a red feature sees no colour of the current pixel, green sees red, blue sees
red and green (type A), and type B adds the feature's own colour; the 1x1
layers are masked the same way. Sampling draws a pixel's red, then green, then
blue, so the cached sampler steps each pixel once per channel, and each step
computes only that colour's feature maps (a third of the network's work).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..errors import ConfigError
from .config import PixelCNNConfig
from .kind import ModelKind
from .pixelcnn import CachedPixelCNN, PixelCNN, masked_stack_field, masked_stack_rows


class RGBKind(ModelKind):
    name = "rgb"
    summary = "the same layers with channel-autoregressive masks: a pixel's colours drawn in turn"

    def test_config(self) -> PixelCNNConfig:
        return PixelCNNConfig(kind="rgb", hidden=18, n_blocks=2, image_size=10)

    def check(self, config: PixelCNNConfig) -> None:
        if config.hidden % 2:
            raise ConfigError(f"hidden must be even (the bottleneck is hidden // 2), got {config.hidden}")
        if config.hidden // 2 < config.channels:
            raise ConfigError(f"an rgb model needs hidden >= {2 * config.channels} (a feature map per colour "
                              f"at least), got {config.hidden}")
        if config.norm != "none":  # its statistics would mix a pixel's colours, which the masks keep apart
            raise ConfigError(f"norm {config.norm!r} is for kind pixelcnn only: over an rgb model's channels it "
                              f"would let a colour see the later colours of its pixel; use norm none")

    def build(self, config: PixelCNNConfig) -> nn.Module:
        return PixelCNN(config, colours=True)

    def cache(self, model: nn.Module, n: int, labels: torch.Tensor | None = None) -> CachedPixelCNN:
        return CachedPixelCNN(model, n, labels)

    def deepen(self, model: nn.Module, state: dict[str, torch.Tensor], source_blocks: int) -> bool:
        return model.load_shallower(state, source_blocks)

    def channel_steps(self, config: PixelCNNConfig) -> list[list[int]]:
        return [[c] for c in range(config.channels)]

    def analytic_field(self, config: PixelCNNConfig, row: int, col: int, n_blocks: int,
                       channel: int) -> np.ndarray:
        field = masked_stack_field(config, row, col, n_blocks)
        if channel > 0:
            field[row, col] = True  # the earlier colours of its own pixel
        return field

    def architecture(self, model: nn.Module) -> list[dict[str, Any]]:
        return masked_stack_rows(model, colour=True)

    def describe(self, config: PixelCNNConfig) -> str:
        return ("**rgb** keeps the residual blocks of the exercise's model but masks the channels as the paper "
                "does: every feature map belongs to a colour, and at the current pixel red sees no colour, green "
                "sees red, blue sees red and green, so the channels of a pixel are drawn in turn: "
                "p(x) = prod_i prod_c p(x_i^c | x_i^<c, x_<i).")


KIND = RGBKind()
