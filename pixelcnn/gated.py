"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks replace the masked convolutions, and together they see every
earlier pixel, so the PixelCNN's blind spot (the pixels up and to the right
that a stack of masked 3x3 kernels never reaches) is gone:

- the vertical stack ``v`` sees only rows strictly above: a (k // 2 + 1) x k
  kernel over rows at and above the centre, fed with the image shifted down by
  one row in the first layer;
- the horizontal stack ``h`` sees the current row up to the current pixel: a
  1 x (k // 2 + 1) kernel, fed with the image shifted right by one column in
  the first layer (type A), and it adds the vertical stack's pre-activation at
  the same position through a 1x1 convolution.

Each layer gates its pre-activations, tanh(a) * sigmoid(b), and the horizontal
stack has a 1x1 convolution and a residual connection (after the first layer).
Output: ReLU, 1x1, ReLU, 1x1 to ``channels * levels`` logits, channels
independent given the previous pixels, as in the exercise's model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError
from .model import PixelCNNConfig, count_parameters, scale_values


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the channels times sigmoid of the second: (B, 2p, ...) -> (B, p, ...)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer. ``first`` makes both stacks strict (type A): they read the image, shifted.

    Shape: v, h (B, in, H, W) -> v', h' (B, p, H, W).
    """

    def __init__(self, in_channels: int, p: int, kernel_size: int, first: bool):
        super().__init__()
        self.q = kernel_size // 2
        self.first = first
        self.vertical = nn.Conv2d(in_channels, 2 * p, (self.q + 1, kernel_size))
        self.horizontal = nn.Conv2d(in_channels, 2 * p, (1, self.q + 1))
        self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_out = nn.Conv2d(p, p, 1)

    def vertical_pre(self, v: torch.Tensor) -> torch.Tensor:
        """Row r reads rows r - q .. r of ``v``, or r - q - 1 .. r - 1 in the first layer."""
        shift = int(self.first)
        height = v.shape[2]
        return self.vertical(F.pad(v, (self.q, self.q, self.q + shift, 0)))[:, :, :height]

    def horizontal_pre(self, h: torch.Tensor) -> torch.Tensor:
        """Column c reads columns c - q .. c of ``h``, or c - q - 1 .. c - 1 in the first layer."""
        shift = int(self.first)
        width = h.shape[3]
        return self.horizontal(F.pad(h, (self.q + shift, 0, 0, 0)))[:, :, :, :width]

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical_pre(v)
        h_new = self.h_out(gate(self.horizontal_pre(h) + self.v_to_h(v_pre)))
        return gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN with the same interface as :class:`~pixelcnn.model.PixelCNN`.

    ``forward(x)``: x (B, C, H, W) with values 0..levels-1 (long or float) ->
    logits (B, levels, C, H, W). ``config.hidden`` is p, the feature maps per
    stack; there are ``1 + config.n_blocks`` gated layers.
    """

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        if config.kind != "gated":
            raise ConfigError(f"GatedPixelCNN builds kind gated, not {config.kind!r}; use build_model")
        self.config = config
        p = config.hidden
        self.layers = nn.ModuleList(
            [GatedLayer(config.channels, p, config.first_kernel, first=True)]
            + [GatedLayer(p, p, config.block_kernel, first=False) for _ in range(config.n_blocks)]
        )
        self.output_hidden = nn.Conv2d(p, p, 1)
        self.output_logits = nn.Conv2d(p, config.levels * config.channels, 1)

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map values 0..levels-1 to [-1, 1] in the parameters' dtype."""
        return scale_values(x, self.config.levels, self.output_logits.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        v = h = self.scale_input(x)
        for layer in self.layers:
            v, h = layer(v, h)
        logits = self.output_logits(F.relu(self.output_hidden(F.relu(h))))
        return logits.reshape(b, self.config.levels, c, height, width)

    def architecture(self) -> list[dict[str, Any]]:
        """See :func:`pixelcnn.model.architecture_table`."""
        cfg, p = self.config, self.config.hidden
        q1, q2 = cfg.first_kernel // 2, cfg.block_kernel // 2
        return [
            {"layer": "gated layer 1: vertical, horizontal", "kernel": f"{q1 + 1}x{cfg.first_kernel}, 1x{q1 + 1}",
             "mask": "A (shifted)", "in": cfg.channels, "out": p, "parameters": count_parameters(self.layers[0])},
            {"layer": f"gated layers x{cfg.n_blocks}: vertical, horizontal, 1x1",
             "kernel": f"{q2 + 1}x{cfg.block_kernel}, 1x{q2 + 1}, 1x1", "mask": "B", "in": p, "out": p,
             "parameters": count_parameters(self.layers[1:])},
            {"layer": "output 1", "kernel": "1x1", "mask": "-", "in": p, "out": p,
             "parameters": count_parameters(self.output_hidden)},
            {"layer": "output 2 (logits)", "kernel": "1x1", "mask": "-", "in": p,
             "out": cfg.levels * cfg.channels, "parameters": count_parameters(self.output_logits)},
        ]
