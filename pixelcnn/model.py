"""The PixelCNN of "Pixel Recurrent Neural Networks" (van den Oord et al., 2016), Table 1, and its config.

Three kinds of model share one config (``kind``) and one interface, built by
:func:`build_model`:

- ``pixelcnn``: the exercise's model, channels independent given the previous pixels;
- ``rgb``: the same layers with the paper's channel-autoregressive masks,
  p(x) = prod_i prod_c p(x_i^c | x_i^<c, x_<i);
- ``gated``: Gated PixelCNN without the blind spot (:mod:`pixelcnn.gated`).

Layout of ``pixelcnn`` and ``rgb``: a 7x7 masked convolution of type A, ``n_blocks`` residual blocks of
Figure 5 (ReLU, 1x1, ReLU, 3x3 type B, ReLU, 1x1, plus skip), then ReLU, 1x1,
ReLU, 1x1 to ``channels * levels`` logits.

Channels are conditionally independent given the previous pixels,
p(x) = prod_i prod_c p(x_i^c | x_<i), so a type A mask hides the whole current
pixel and a type B mask shows it; 1x1 convolutions need no mask.

A masked kernel only ever uses the rows at and above its centre, so
:class:`MaskedConv2d` stores just those rows (4x7 instead of 7x7, 2x3 instead
of 3x3) and pads the input at the top: the taps a mask zeroes below the centre
are never computed.

In ``rgb`` every feature map belongs to a colour group (R, G or B, in thirds);
at the centre tap a group-g output sees input groups < g (type A) or <= g
(type B), and the 1x1 convolutions are masked type B the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError


KINDS = ("pixelcnn", "rgb", "gated")


@dataclass(frozen=True)
class PixelCNNConfig:
    """Shape of a model. ``hidden`` is the residual stream width (2h in the paper); for
    ``gated`` it is the feature maps per stack, and ``n_blocks`` counts the gated layers after the first.
    """

    kind: str = "pixelcnn"
    channels: int = 3
    levels: int = 4
    image_size: int = 28
    hidden: int = 128
    n_blocks: int = 12
    first_kernel: int = 7
    block_kernel: int = 3

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
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
        if self.hidden % 2 and self.kind != "gated":
            raise ConfigError(f"hidden must be even (the bottleneck is hidden // 2), got {self.hidden}")
        for name in ("first_kernel", "block_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{name} must be odd, got {getattr(self, name)}")
        if self.kind == "rgb" and self.hidden // 2 < self.channels:
            raise ConfigError(f"an rgb model needs hidden >= {2 * self.channels} (a feature map per colour "
                              f"at least), got {self.hidden}")

    def to_dict(self) -> dict[str, int | str]:
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
    "rgb": PixelCNNConfig(kind="rgb", hidden=144, n_blocks=12),
    "gated": PixelCNNConfig(kind="gated", hidden=42, n_blocks=12),
}


def get_preset(name: str) -> PixelCNNConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def scale_values(x: torch.Tensor, levels: int, dtype: torch.dtype) -> torch.Tensor:
    """Map values 0..levels-1 to [-1, 1] in ``dtype``: every kind's input scaling."""
    return x.to(dtype) * (2.0 / (levels - 1)) - 1.0


def kernel_mask(kernel_size: int, mask_type: str) -> torch.Tensor:
    """The live taps of a masked kernel's stored rows: a (k // 2 + 1, k) 0/1 tensor.

    Rows above the centre are all live; in the centre row the taps left of the
    centre are live, and the centre itself only for type B.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    k = kernel_size
    mask = torch.ones(k // 2 + 1, k, device="cpu")  # masks stay on the CPU even under a meta build
    centre = k // 2
    mask[-1, centre + (mask_type == "B"):] = 0
    return mask


def colour_groups(n: int, colours: int, interleaved: bool = False) -> torch.Tensor:
    """The colour each of ``n`` feature maps belongs to: in contiguous blocks, or
    interleaved (``i % colours``, how the logits are laid out as (levels, channels)).
    """
    index = torch.arange(n, device="cpu")
    return index % colours if interleaved else index * colours // n


def channel_mask(kernel_size: int, mask_type: str, groups_in: torch.Tensor,
                 groups_out: torch.Tensor) -> torch.Tensor:
    """A channel-autoregressive mask (out, in, k // 2 + 1, k): :func:`kernel_mask` off the centre; at the
    centre a group-g output sees input groups < g (type A) or <= g (type B)."""
    spatial = kernel_mask(kernel_size, "B")
    mask = spatial.expand(len(groups_out), len(groups_in), *spatial.shape).clone()
    sees = groups_in[None, :] < groups_out[:, None] if mask_type == "A" else groups_in[None, :] <= groups_out[:, None]
    mask[:, :, -1, kernel_size // 2] = sees.to(mask.dtype)
    return mask


class MaskedConv2d(nn.Module):
    """A causal ``k x k`` convolution that keeps spatial size.

    Only the ``k // 2 + 1`` kernel rows at and above the centre are stored
    (``weight`` has shape (out, in, k // 2 + 1, k)); the input is padded by
    ``k // 2`` on the top, left and right. Type A hides the centre tap, type B
    shows it. With ``groups = (groups_in, groups_out)`` (see :func:`colour_groups`)
    the centre tap is masked channel-autoregressively instead (:func:`channel_mask`);
    ``k = 1`` then gives the masked 1x1 convolution of the ``rgb`` model.

    Shape: (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str,
                 groups: tuple[torch.Tensor, torch.Tensor] | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.mask_type = mask_type
        rows = kernel_size // 2 + 1
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, rows, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        mask = kernel_mask(kernel_size, mask_type) if groups is None else channel_mask(kernel_size, mask_type, *groups)
        self.register_buffer("mask", mask, persistent=False)
        self.reset_parameters()

    def live_weights(self) -> int:
        """How many entries of ``weight`` the mask leaves live."""
        per_tap = 1 if self.mask.dim() == 4 else self.in_channels * self.out_channels
        return int(self.mask.sum()) * per_tap

    def reset_parameters(self) -> None:
        fan_in = max(1, self.live_weights() // self.out_channels)
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


def pointwise(in_channels: int, out_channels: int, colours: int | None = None,
              interleaved_out: bool = False) -> nn.Module:
    """A 1x1 convolution; with ``colours``, masked type B between colour groups."""
    if colours is None:
        return nn.Conv2d(in_channels, out_channels, 1)
    groups = colour_groups(in_channels, colours), colour_groups(out_channels, colours, interleaved_out)
    return MaskedConv2d(in_channels, out_channels, 1, "B", groups)


class ResidualBlock(nn.Module):
    """Figure 5: ReLU, 1x1 (2h -> h), ReLU, kxk type B (h -> h), ReLU, 1x1 (h -> 2h), plus skip.

    With ``colours`` every layer is masked channel-autoregressively (type B).

    Shape: (B, 2h, H, W) -> (B, 2h, H, W).
    """

    def __init__(self, hidden: int, kernel_size: int = 3, colours: int | None = None):
        super().__init__()
        half = hidden // 2
        self.reduce = pointwise(hidden, half, colours)
        groups = None if colours is None else (colour_groups(half, colours), colour_groups(half, colours))
        self.masked = MaskedConv2d(half, half, kernel_size, "B", groups)
        self.expand = pointwise(half, hidden, colours)

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
        if config.kind not in ("pixelcnn", "rgb"):
            raise ConfigError(f"PixelCNN builds kinds pixelcnn and rgb, not {config.kind!r}; use build_model")
        colours = config.channels if config.kind == "rgb" else None
        input_groups = None if colours is None else (colour_groups(config.channels, colours),
                                                     colour_groups(config.hidden, colours))
        self.input_conv = MaskedConv2d(config.channels, config.hidden, config.first_kernel, "A", input_groups)
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, config.block_kernel, colours) for _ in range(config.n_blocks)
        )
        self.output_hidden = pointwise(config.hidden, config.hidden, colours)
        self.output_logits = pointwise(config.hidden, config.levels * config.channels, colours, interleaved_out=True)

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map values 0..levels-1 to [-1, 1] in the parameters' dtype."""
        return scale_values(x, self.config.levels, self.output_logits.weight.dtype)

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

    def architecture(self) -> list[dict[str, Any]]:
        """See :func:`architecture_table`."""
        cfg = self.config
        h, k1, k2 = cfg.hidden, cfg.first_kernel, cfg.block_kernel
        rgb = cfg.kind == "rgb"
        one = "B (colour)" if rgb else "-"
        return [
            {"layer": "input", "kernel": f"{k1}x{k1}", "mask": "A (colour)" if rgb else "A",
             "in": cfg.channels, "out": h, "parameters": count_parameters(self.input_conv)},
            {"layer": f"residual blocks x{cfg.n_blocks}: 1x1, {k2}x{k2}, 1x1", "kernel": f"1x1, {k2}x{k2}, 1x1",
             "mask": f"{one}, B{' (colour)' if rgb else ''}, {one}", "in": h, "out": h,
             "parameters": count_parameters(self.blocks)},
            {"layer": "output 1", "kernel": "1x1", "mask": "B (colour)" if rgb else "B", "in": h, "out": h,
             "parameters": count_parameters(self.output_hidden)},
            {"layer": "output 2 (logits)", "kernel": "1x1", "mask": "B (colour)" if rgb else "B", "in": h, "out": cfg.levels * cfg.channels,
             "parameters": count_parameters(self.output_logits)},
        ]


def build_model(config: PixelCNNConfig) -> nn.Module:
    """The model of ``config.kind``: a :class:`PixelCNN` or a :class:`~pixelcnn.gated.GatedPixelCNN`."""
    if config.kind == "gated":
        from .gated import GatedPixelCNN  # gated.py imports this module's config and helpers

        return GatedPixelCNN(config)
    return PixelCNN(config)


def architecture_table(config: PixelCNNConfig) -> list[dict[str, Any]]:
    """One row per layer or group of layers: name, kernel, mask, input and output channels, parameters.

    Parameters count only the taps a mask leaves live, measured on the built model.
    """
    return build_model(config).architecture()


def bits_per_dim(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood in bits per dimension (a uniform model scores log2(levels))."""
    return F.cross_entropy(logits, x.long()) / math.log(2.0)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, counting only the taps a mask leaves live."""
    total = 0
    for module in model.modules():
        if isinstance(module, MaskedConv2d):
            total += module.live_weights() + module.bias.numel()
        elif isinstance(module, nn.Conv2d):
            total += sum(p.numel() for p in module.parameters())
    return total
