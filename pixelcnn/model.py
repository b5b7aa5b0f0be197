"""The PixelCNN of "Pixel Recurrent Neural Networks" (van den Oord et al., 2016), Table 1.

Layout: a 7x7 masked convolution of type A, ``n_blocks`` residual blocks of
Figure 5 (ReLU, 1x1, ReLU, 3x3 type B, ReLU, 1x1, plus skip), then ReLU, 1x1,
ReLU, 1x1 to ``channels * levels`` logits.

Channels are conditionally independent given the previous pixels,
p(x) = prod_i prod_c p(x_i^c | x_<i), so a type A mask hides the whole current
pixel and a type B mask shows it; 1x1 convolutions need no mask.

A masked kernel only ever uses the rows at and above its centre, so
:class:`MaskedConv2d` stores just those rows (4x7 instead of 7x7, 2x3 instead
of 3x3) and pads the input at the top: the taps a mask zeroes below the centre
are never computed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError


@dataclass(frozen=True)
class PixelCNNConfig:
    """Shape of a PixelCNN. ``hidden`` is the residual stream width (2h in the paper)."""

    channels: int = 3
    levels: int = 4
    image_size: int = 28
    hidden: int = 128
    n_blocks: int = 12
    first_kernel: int = 7
    block_kernel: int = 3

    def __post_init__(self) -> None:
        limits = {
            "channels": (1, 4),
            "levels": (2, 256),
            "image_size": (2, 256),
            "hidden": (2, 1024),
            "n_blocks": (0, 64),
            "first_kernel": (3, 15),
            "block_kernel": (1, 15),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if self.hidden % 2:
            raise ConfigError(f"hidden must be even (the bottleneck is hidden // 2), got {self.hidden}")
        for name in ("first_kernel", "block_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{name} must be odd, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "PixelCNNConfig":
        """Build a config from a dict, refusing unknown or missing keys."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)


PRESETS: dict[str, PixelCNNConfig] = {
    "tiny": PixelCNNConfig(hidden=32, n_blocks=4),
    "lecture": PixelCNNConfig(hidden=48, n_blocks=12),
    "paper": PixelCNNConfig(hidden=128, n_blocks=12),
}


def get_preset(name: str) -> PixelCNNConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def kernel_mask(kernel_size: int, mask_type: str) -> torch.Tensor:
    """The live taps of a masked kernel's stored rows: a (k // 2 + 1, k) 0/1 tensor.

    Rows above the centre are all live; in the centre row the taps left of the
    centre are live, and the centre itself only for type B.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    k = kernel_size
    mask = torch.ones(k // 2 + 1, k)
    centre = k // 2
    mask[-1, centre + (mask_type == "B"):] = 0
    return mask


class MaskedConv2d(nn.Module):
    """A causal ``k x k`` convolution that keeps spatial size.

    Only the ``k // 2 + 1`` kernel rows at and above the centre are stored
    (``weight`` has shape (out, in, k // 2 + 1, k)); the input is padded by
    ``k // 2`` on the top, left and right. Type A hides the centre tap, type B
    shows it.

    Shape: (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.mask_type = mask_type
        rows = kernel_size // 2 + 1
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, rows, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.register_buffer("mask", kernel_mask(kernel_size, mask_type), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * int(kernel_mask(self.kernel_size, self.mask_type).sum())
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.kernel_size // 2
        return F.conv2d(F.pad(x, (p, p, p, 0)), self.masked_weight(), self.bias)

    def extra_repr(self) -> str:
        k = self.kernel_size
        return f"{self.in_channels}, {self.out_channels}, kernel_size={k}x{k}, mask={self.mask_type}"


class ResidualBlock(nn.Module):
    """Figure 5: ReLU, 1x1 (2h -> h), ReLU, kxk type B (h -> h), ReLU, 1x1 (h -> 2h), plus skip.

    Shape: (B, 2h, H, W) -> (B, 2h, H, W).
    """

    def __init__(self, hidden: int, kernel_size: int = 3):
        super().__init__()
        half = hidden // 2
        self.reduce = nn.Conv2d(hidden, half, 1)
        self.masked = MaskedConv2d(half, half, kernel_size, "B")
        self.expand = nn.Conv2d(half, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce(F.relu(x))
        h = self.masked(F.relu(h))
        return x + self.expand(F.relu(h))


class PixelCNN(nn.Module):
    """PixelCNN over images of ``channels`` channels with ``levels`` values each.

    ``forward(x)`` takes x of shape (B, C, H, W) holding values in 0..levels-1,
    as a LongTensor or as a floating tensor (so that gradients with respect to
    the input can be taken), and returns logits of shape (B, levels, C, H, W),
    ready for ``F.cross_entropy(logits, x)``.
    """

    def __init__(self, config: PixelCNNConfig | None = None):
        super().__init__()
        self.config = config = config or PixelCNNConfig()
        self.input_conv = MaskedConv2d(config.channels, config.hidden, config.first_kernel, "A")
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, config.block_kernel) for _ in range(config.n_blocks)
        )
        self.output_hidden = nn.Conv2d(config.hidden, config.hidden, 1)
        self.output_logits = nn.Conv2d(config.hidden, config.levels * config.channels, 1)

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map values 0..levels-1 to [-1, 1] in the parameters' dtype."""
        dtype = self.output_logits.weight.dtype
        return x.to(dtype) * (2.0 / (self.config.levels - 1)) - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = self.scale_input(x)
        if h.device.type == "cpu":
            h = h.contiguous(memory_format=torch.channels_last)
        h = self.input_conv(h)
        for block in self.blocks:
            h = block(h)
        h = self.output_hidden(F.relu(h))
        logits = self.output_logits(F.relu(h))
        return logits.reshape(b, self.config.levels, c, height, width)


def architecture_table(config: PixelCNNConfig) -> list[dict[str, Any]]:
    """One row per layer: name, kernel, mask, input and output channels, parameters (live taps only)."""
    h, half, k1, k2 = config.hidden, config.hidden // 2, config.first_kernel, config.block_kernel
    live_a = int(kernel_mask(k1, "A").sum())
    live_b = int(kernel_mask(k2, "B").sum())
    rows = [{"layer": "input", "kernel": f"{k1}x{k1}", "mask": "A", "in": config.channels, "out": h,
             "parameters": live_a * config.channels * h + h}]
    block_params = (h * half + half) + (live_b * half * half + half) + (half * h + h)
    rows.append({"layer": f"residual blocks x{config.n_blocks}: 1x1, {k2}x{k2}, 1x1",
                 "kernel": f"1x1, {k2}x{k2}, 1x1", "mask": "-, B, -", "in": h, "out": h,
                 "parameters": config.n_blocks * block_params})
    rows.append({"layer": "output 1", "kernel": "1x1", "mask": "B", "in": h, "out": h, "parameters": h * h + h})
    out = config.levels * config.channels
    rows.append({"layer": "output 2 (logits)", "kernel": "1x1", "mask": "B", "in": h, "out": out,
                 "parameters": h * out + out})
    return rows


def bits_per_dim(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood in bits per dimension (a uniform model scores log2(levels))."""
    return F.cross_entropy(logits, x.long()) / math.log(2.0)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, counting only the taps a mask leaves live."""
    total = 0
    for module in model.modules():
        if isinstance(module, MaskedConv2d):
            total += int(module.mask.sum()) * module.in_channels * module.out_channels
            total += module.bias.numel()
        elif isinstance(module, nn.Conv2d):
            total += sum(p.numel() for p in module.parameters())
    return total
