"""A straightforward PixelCNN, the baseline for the benchmark and the tests.

Dense k x k kernels multiplied by their mask in every forward, NCHW layout:
what a first implementation looks like. :func:`reference_from` copies the
weights of a :class:`~pixelcnn.model.PixelCNN` into it, so the two can be
checked against each other.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import PixelCNN, PixelCNNConfig


class DenseMaskedConv2d(nn.Conv2d):
    """A full k x k convolution whose weight is multiplied by a k x k mask in every forward."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = torch.ones(kernel_size, kernel_size)
        centre = kernel_size // 2
        mask[centre, centre + (mask_type == "B"):] = 0
        mask[centre + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ReferenceBlock(nn.Module):
    def __init__(self, hidden: int, kernel_size: int):
        super().__init__()
        self.reduce = nn.Conv2d(hidden, hidden // 2, 1)
        self.masked = DenseMaskedConv2d(hidden // 2, hidden // 2, kernel_size, "B")
        self.expand = nn.Conv2d(hidden // 2, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(F.relu(self.masked(F.relu(self.reduce(F.relu(x))))))


class ReferencePixelCNN(nn.Module):
    """Same contract as :class:`~pixelcnn.model.PixelCNN`: (B, C, H, W) -> (B, levels, C, H, W)."""

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        if config.kind != "pixelcnn":
            raise ConfigError(f"the dense reference is the exercise's model only (kind pixelcnn), not {config.kind!r}")
        self.config = config
        self.input_conv = DenseMaskedConv2d(config.channels, config.hidden, config.first_kernel, "A")
        self.blocks = nn.ModuleList(ReferenceBlock(config.hidden, config.block_kernel) for _ in range(config.n_blocks))
        self.output_hidden = nn.Conv2d(config.hidden, config.hidden, 1)
        self.output_logits = nn.Conv2d(config.hidden, config.levels * config.channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = x.float() * (2.0 / (self.config.levels - 1)) - 1.0
        h = self.input_conv(h)
        for block in self.blocks:
            h = block(h)
        logits = self.output_logits(F.relu(self.output_hidden(F.relu(h))))
        return logits.view(b, self.config.levels, c, height, width)


def reference_from(model: PixelCNN) -> ReferencePixelCNN:
    """A reference model holding exactly the weights of ``model``."""
    ref = ReferencePixelCNN(model.config).to(model.output_logits.weight.dtype)
    state = {}
    for name, tensor in model.state_dict().items():
        module_name = name.rsplit(".", 1)[0]
        target = ref.get_submodule(module_name)
        if name.endswith(".weight") and isinstance(target, DenseMaskedConv2d):
            full = torch.zeros_like(target.weight)
            full[:, :, : tensor.shape[2]] = tensor
            tensor = full * target.mask
        state[name] = tensor
    state.update({k: v for k, v in ref.state_dict().items() if k.endswith(".mask")})
    ref.load_state_dict(state)
    return ref
