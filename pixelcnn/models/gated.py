"""Kind ``gated``: Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN Decoders").

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

With ``config.classes`` > 0 the label enters both halves of every gate, in
both stacks, as the paper's ``V y`` (a learned bias per label,
:class:`~.layers.LabelBias`), and the two output layers get one as well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .config import PixelCNNConfig
from .kind import ModelKind
from .layers import (LabelBias, add_bias, conv_matrix, count_parameters, gate, label_biases, label_rows, row_bias,
                     scale_values, spread)


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

    def forward(self, v: torch.Tensor, h: torch.Tensor, biases: tuple = (None, None)) -> tuple[torch.Tensor, torch.Tensor]:
        """``biases``: the label biases (B, 2p) of the vertical and horizontal pre-activations, or Nones."""
        v_pre = add_bias(self.vertical_pre(v), biases[0])
        h_new = self.h_out(gate(add_bias(self.horizontal_pre(h), biases[1]) + self.v_to_h(v_pre)))
        return gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN with the interface of every kind (see :class:`~.kind.ModelKind`).

    ``forward(x, labels=None)``: x (B, C, H, W) with values 0..levels-1 (long or
    float), labels (B,) in 0..classes for a conditional model (None: no label) ->
    logits (B, levels, C, H, W). ``config.hidden`` is p, the feature maps per
    stack; there are ``1 + config.n_blocks`` gated layers.
    """

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = config
        p = config.hidden
        self.layers = nn.ModuleList(
            [GatedLayer(config.channels, p, config.first_kernel, first=True)]
            + [GatedLayer(p, p, config.block_kernel, first=False) for _ in range(config.n_blocks)]
        )
        self.output_hidden = nn.Conv2d(p, p, 1)
        self.output_logits = nn.Conv2d(p, config.levels * config.channels, 1)
        self.label_widths = [2 * p, 2 * p] * len(self.layers) + [p, config.levels * config.channels]
        self.label_bias = LabelBias(config.classes, self.label_widths) if config.classes else None

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map values 0..levels-1 to [-1, 1] in the parameters' dtype."""
        return scale_values(x, self.config.levels, self.output_logits.weight.dtype)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        b, c, height, width = x.shape
        biases = label_biases(self.label_bias, labels, b, len(self.label_widths))
        v = h = self.scale_input(x)
        for i, layer in enumerate(self.layers):
            v, h = layer(v, h, biases[2 * i:2 * i + 2])
        h = add_bias(self.output_hidden(F.relu(h)), biases[-2])
        logits = add_bias(self.output_logits(F.relu(h)), biases[-1])
        return logits.reshape(b, self.config.levels, c, height, width)


class CachedGatedPixelCNN:
    """The cached sampler (:class:`~.kind.PixelCache`) of a :class:`GatedPixelCNN`.

    The vertical stack at row r reads only rows above it, so the first
    ``step`` of a row computes that row of every layer's vertical stack with a
    convolution; each pixel then needs only its horizontal stack.
    """

    def __init__(self, model: GatedPixelCNN, n: int, labels: torch.Tensor | None = None):
        cfg = model.config
        self.model, self.n = model, n
        self.q1, self.q2 = cfg.first_kernel // 2, cfg.block_kernel // 2
        q1, q2, size, p = self.q1, self.q2, cfg.image_size, cfg.hidden
        dtype, device = model.output_logits.weight.dtype, model.output_logits.weight.device
        zeros = lambda *shape: torch.zeros(n, *shape, dtype=dtype, device=device)  # noqa: E731
        # Channels-last, zero-padded like the full forward: the image above and on both sides,
        # each vertical stack above and on both sides, each horizontal stack's current row on the left.
        self.image = zeros(size + q1 + 1, size + 2 * q1 + 1, cfg.channels)
        self.vertical = [zeros(size + q2, size + 2 * q2, p) for _ in model.layers]
        self.horizontal = [zeros(size + q2, p) for _ in model.layers]
        self.v_to_h = [zeros(size, 2 * p) for _ in model.layers]
        biases = label_biases(model.label_bias, labels, n, len(model.label_widths))
        # Per layer, the vertical pre-activation's label bias (None or (n, 2p)), added as the row begins.
        self.vertical_label = biases[0:-2:2]
        self.layers = []
        for layer, horizontal_label in zip(model.layers, biases[1:-2:2]):
            w_h, b_h = conv_matrix(layer.horizontal)
            self.layers.append((w_h, row_bias(b_h, horizontal_label), *conv_matrix(layer.v_to_h),
                                *conv_matrix(layer.h_out)))
        w1, b1 = conv_matrix(model.output_hidden)
        w2, b2 = conv_matrix(model.output_logits)
        self.out1, self.out2 = (w1, row_bias(b1, biases[-2])), (w2, row_bias(b2, biases[-1]))
        self.size, self.row = size, -1

    def write(self, r: int, c: int, values: torch.Tensor) -> None:
        """Record the drawn values (n, channels) of pixel (r, c)."""
        self.image[:, r + self.q1 + 1, c + self.q1 + 1] = self.model.scale_input(values)

    def _begin_row(self, r: int) -> None:
        q1, q2, size = self.q1, self.q2, self.size
        below = self.image[:, r:r + q1 + 1, 1:].permute(0, 3, 1, 2)  # rows r - q1 - 1 .. r - 1
        for index, layer in enumerate(self.model.layers):
            v_pre = F.conv2d(below, layer.vertical.weight, layer.vertical.bias)[:, :, 0].transpose(1, 2)
            if self.vertical_label[index] is not None:
                v_pre = v_pre + self.vertical_label[index][:, None, :]
            _, _, w, b, _, _ = self.layers[index]
            self.v_to_h[index] = torch.addmm(b, v_pre.reshape(-1, v_pre.shape[-1]), w).view(self.n, size, -1)
            self.vertical[index][:, r + q2, q2:q2 + size] = gate(v_pre.transpose(1, 2)).transpose(1, 2)
            below = self.vertical[index][:, r:r + q2 + 1].permute(0, 3, 1, 2)  # rows r - q2 .. r
        self.row = r

    def step(self, r: int, c: int, channels: list[int] | None = None) -> torch.Tensor:
        if r != self.row:
            self._begin_row(r)
        q1, q2, n = self.q1, self.q2, self.n
        h = None
        for index, (w_h, b_h, _, _, w_out, b_out) in enumerate(self.layers):
            if index == 0:
                patch = self.image[:, r + q1 + 1, c:c + q1 + 1].reshape(n, -1)  # columns c - q1 - 1 .. c - 1
            else:
                patch = self.horizontal[index - 1][:, c:c + q2 + 1].reshape(n, -1)  # columns c - q2 .. c
            pre = torch.addmm(b_h, patch, w_h) + self.v_to_h[index][:, c]
            new = torch.addmm(b_out, gate(pre), w_out)
            h = new if index == 0 else h + new
            self.horizontal[index][:, c + q2] = h
        h = torch.addmm(self.out1[1], F.relu(h), self.out1[0])
        logits = torch.addmm(self.out2[1], F.relu(h), self.out2[0])
        cfg = self.model.config
        logits = logits.view(n, cfg.levels, cfg.channels)
        return logits if channels is None else logits[:, :, channels]


def gated_taps(kernel_size: int, first: bool) -> tuple[np.ndarray, np.ndarray]:
    """The taps of a gated layer's vertical and horizontal kernels in :func:`~.layers.spread`'s layout."""
    q, shift = kernel_size // 2, int(first)
    vertical = np.zeros((q + 1 + shift, kernel_size), dtype=bool)
    vertical[:q + 1] = True  # rows r - q - shift .. r - shift
    horizontal = np.zeros((1, 2 * (q + shift) + 1), dtype=bool)
    horizontal[0, :q + 1] = True  # columns c - q - shift .. c - shift
    return vertical, horizontal


def gated_field(config: PixelCNNConfig, reach: np.ndarray, layers: int) -> np.ndarray:
    """Walk a gated model backwards from the horizontal stack at ``reach`` through ``layers`` gated layers
    after the first, then the first: the input pixels it reads.

    A layer's vertical output and the vertical pre-activation that its horizontal
    stack adds at the same position both read the vertical window below them.
    """
    horizontal_reach, vertical_reach = reach, np.zeros_like(reach)
    vertical, horizontal = gated_taps(config.block_kernel, first=False)
    for _ in range(layers):
        horizontal_reach, vertical_reach = (spread(horizontal_reach, horizontal),
                                            spread(horizontal_reach | vertical_reach, vertical))
    vertical, horizontal = gated_taps(config.first_kernel, first=True)
    return spread(horizontal_reach | vertical_reach, vertical) | spread(horizontal_reach, horizontal)


class GatedKind(ModelKind):
    name = "gated"
    summary = "Gated PixelCNN: vertical and horizontal stacks with tanh x sigmoid gates, no blind spot"

    def test_config(self) -> PixelCNNConfig:
        return PixelCNNConfig(kind="gated", hidden=8, n_blocks=2, image_size=10)

    def check(self, config: PixelCNNConfig) -> None:
        if config.norm != "none":
            raise ConfigError(f"norm {config.norm!r} is for kind pixelcnn only (the gated stacks have none); "
                              f"use norm none")
        if config.dropout:
            raise ConfigError(f"dropout {config.dropout:g} is for kinds pixelcnn and rgb only (the gated stacks "
                              f"have no residual blocks); use dropout 0")

    def build(self, config: PixelCNNConfig) -> nn.Module:
        return GatedPixelCNN(config)

    def cache(self, model: nn.Module, n: int, labels: torch.Tensor | None = None) -> CachedGatedPixelCNN:
        return CachedGatedPixelCNN(model, n, labels)

    def analytic_field(self, config: PixelCNNConfig, row: int, col: int, n_blocks: int,
                       channel: int) -> np.ndarray:
        reach = np.zeros((config.image_size, config.image_size), dtype=bool)
        reach[row, col] = True
        return gated_field(config, reach, n_blocks)

    def architecture(self, model: nn.Module) -> list[dict[str, Any]]:
        cfg, p = model.config, model.config.hidden
        q1, q2 = cfg.first_kernel // 2, cfg.block_kernel // 2
        return [
            {"layer": "gated layer 1: vertical, horizontal", "kernel": f"{q1 + 1}x{cfg.first_kernel}, 1x{q1 + 1}",
             "mask": "A (shifted)", "in": cfg.channels, "out": p, "parameters": count_parameters(model.layers[0])},
            {"layer": f"gated layers x{cfg.n_blocks}: vertical, horizontal, 1x1",
             "kernel": f"{q2 + 1}x{cfg.block_kernel}, 1x{q2 + 1}, 1x1", "mask": "B", "in": p, "out": p,
             "parameters": count_parameters(model.layers[1:])},
            {"layer": "output 1", "kernel": "1x1", "mask": "-", "in": p, "out": p,
             "parameters": count_parameters(model.output_hidden)},
            {"layer": "output 2 (logits)", "kernel": "1x1", "mask": "-", "in": p,
             "out": cfg.levels * cfg.channels, "parameters": count_parameters(model.output_logits)},
        ] + label_rows(model)

    def describe(self, config: PixelCNNConfig) -> str:
        return (f"Gated PixelCNN (van den Oord et al. 2016): a vertical stack that sees the rows above and a "
                f"horizontal stack that sees the current row to the left, {config.hidden} feature maps each, "
                "gated by tanh x sigmoid, with a 1x1 link from vertical to horizontal and residual connections; "
                "together they see every earlier pixel, so there is no blind spot.")


KIND = GatedKind()
