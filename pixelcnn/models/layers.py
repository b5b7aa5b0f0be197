"""The pieces every kind is built from: input scaling, masks, masked convolutions, gates, and the
geometry and matrices that the cached samplers and analytic fields derive from them. Imports no model.

A masked kernel only ever uses the rows at and above its centre, so
:class:`MaskedConv2d` stores just those rows (4x7 instead of 7x7, 2x3 instead
of 3x3) and pads the input at the top: the taps a mask zeroes below the centre
are never computed. With colour groups (the ``rgb`` kind) every feature map
belongs to a colour (R, G or B, in thirds); at the centre tap a group-g output
sees input groups < g (type A) or <= g (type B).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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


class ChannelNorm(nn.Module):
    """Layer normalization over the channels of each pixel, with a learned scale and shift per channel.

    Its statistics are one position's features only, never taken across positions or images, so a
    normalised feature at a pixel depends on exactly what the feature itself depended on: every mask's
    guarantee holds, in training as in evaluation (a batch or spatial normalization would leak later pixels
    into earlier ones while training). One position's rows are what the cached samplers step: :meth:`rows`.

    Shape: (B, C, H, W) -> (B, C, H, W); :meth:`rows`: (n, C) -> (n, C).
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def rows(self, h: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(h, (h.shape[-1],), self.weight, self.bias, self.eps)


class LabelBias(nn.Module):
    """A learned bias per label for every layer of a class-conditional model (CS294-158's homework; the
    ``V y`` of the Gated PixelCNN paper, with y one-hot).

    ``table`` has one row per label and a last row, index ``classes``, for "no label": training with label
    dropout shows images with that row, so one model draws with a label and without. It starts at zero, so
    a fresh conditional model computes what its unconditional twin does. A bias depends on the label only,
    never on pixels, so it keeps every mask's guarantee.

    ``forward(labels, n)``: labels (n,) long in 0..classes, or None for "no label" -> one (n, width) tensor
    per entry of ``widths``.
    """

    def __init__(self, classes: int, widths: list[int]):
        super().__init__()
        self.classes, self.widths = classes, list(widths)
        self.table = nn.Parameter(torch.zeros(classes + 1, sum(self.widths)))

    def forward(self, labels: torch.Tensor | None, n: int) -> list[torch.Tensor]:
        return list(self.table[self.check(labels, n)].split(self.widths, dim=1))

    def check(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """``labels`` as n long indices on the table's device, "no label" for None; a ValueError if any
        is outside 0..classes."""
        if labels is None:
            return torch.full((n,), self.classes, dtype=torch.long, device=self.table.device)
        labels = torch.as_tensor(labels, device=self.table.device).long().reshape(-1)
        if labels.shape != (n,) or (labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) <= self.classes):
            raise ValueError(f"labels must be {n} integers in [0, {self.classes}] ({self.classes}: no label)")
        return labels


def load_twin_weights(model: nn.Module, state: dict[str, torch.Tensor], fresh: tuple[str, ...] = ()) -> bool:
    """Load ``state``, the weights of the same architecture, into ``model``; the state may lack ``model``'s
    label tables (an unconditional twin's) and the parameters whose names start with one of ``fresh``,
    which then keep their values (zero tables when fresh). False, and nothing loaded, if the weights do
    not fit otherwise."""
    tables = {f"{name}.table" for name, module in model.named_modules() if isinstance(module, LabelBias)}
    own = model.state_dict()
    missing = {key for key in set(own) - set(state) - tables if not key.startswith(fresh)}
    if set(state) - set(own) or missing or any(own[key].shape != value.shape for key, value in state.items()):
        return False
    model.load_state_dict(state, strict=False)
    return True


def label_biases(label_bias: LabelBias | None, labels: torch.Tensor | None, n: int,
                 count: int) -> list[torch.Tensor | None]:
    """The ``count`` per-layer biases (n, width) of a model's :class:`LabelBias`, or ``count`` Nones for an
    unconditional model (which refuses labels: it was never shown one)."""
    if label_bias is None:
        if labels is not None:
            raise ValueError("this model is unconditional (classes = 0): it takes no labels")
        return [None] * count
    return label_bias(labels, n)


def add_bias(h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``h`` (B, C, H, W) plus a per-image bias (B, C) at every position; ``h`` itself for None."""
    return h if bias is None else h + bias.to(h.dtype)[:, :, None, None]


def row_bias(bias: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """A layer's bias (C,) plus a per-image label bias (n, C), as the cached samplers' ``addmm`` takes it."""
    return bias if extra is None else bias + extra


def pointwise(in_channels: int, out_channels: int, colours: int | None = None,
              interleaved_out: bool = False) -> nn.Module:
    """A 1x1 convolution; with ``colours``, masked type B between colour groups."""
    if colours is None:
        return nn.Conv2d(in_channels, out_channels, 1)
    groups = colour_groups(in_channels, colours), colour_groups(out_channels, colours, interleaved_out)
    return MaskedConv2d(in_channels, out_channels, 1, "B", groups)


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
        elif isinstance(module, LabelBias):
            total += module.table.numel()
        elif isinstance(module, ChannelNorm):
            total += module.weight.numel() + module.bias.numel()
    return total


def label_rows(model: nn.Module) -> list[dict[str, Any]]:
    """The architecture row of a conditional model's label biases (none for an unconditional one)."""
    if model.label_bias is None:
        return []
    cfg = model.config
    return [{"layer": f"label biases: {cfg.classes} labels + no label, into every layer", "kernel": "-",
             "mask": "-", "in": cfg.classes + 1, "out": sum(model.label_bias.widths),
             "parameters": count_parameters(model.label_bias)}]


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the channels times sigmoid of the second: (B, 2p, ...) -> (B, p, ...)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def conv_matrix(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution (masked or not) as the weight matrix and bias of one output position.

    The kernel (out, in, rows, k) becomes (rows * k * in, out), the layout of a
    (rows, k, in) patch of a channels-last buffer flattened row-major: one
    output pixel is then ``patch @ weight + bias``, which is how the cached
    samplers compute one pixel's column through a network.
    """
    weight = conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight
    return weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0]), conv.bias


@functools.lru_cache(maxsize=16)
def patch_indices(size: int, kernel: int, channels: int, device: str = "cpu") -> tuple[tuple[torch.Tensor, ...], ...]:
    """Where each pixel's masked patch lies in a cached sampler's buffer, flattened: ``[r][c]`` holds the
    indices (LongTensor) into ``buffer.view(n, -1)`` of the (kernel // 2 + 1, kernel, channels) patch whose
    top-left corner is padded position (r, c), in the row-major order :func:`conv_matrix` expects.

    The buffer is (n, size + kernel // 2, size + 2 * (kernel // 2), channels), padded top, left and right.
    ``index_select`` with these gathers a patch in one operation, where slicing and flattening take two;
    the values and their order are the same, so are the products.
    """
    pad = kernel // 2
    width = size + 2 * pad
    rows = torch.arange(pad + 1).view(-1, 1, 1)
    columns = torch.arange(kernel).view(1, -1, 1)
    corner = ((rows * width + columns) * channels + torch.arange(channels).view(1, 1, -1)).reshape(-1).to(device)
    return tuple(tuple(corner + (r * width + c) * channels for c in range(size)) for r in range(size))


def spread(reach: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Input positions that feed any output in ``reach`` (a bool (H, W) map) through a causal kernel.

    ``taps`` is a (rows, k) bool array whose last row is the output's own row
    and whose middle column is its own column: output (r, c) reads input
    (r - (rows - 1) + i, c - k // 2 + j) for each live tap (i, j).
    """
    rows, k = taps.shape
    height, width = reach.shape
    out = np.zeros_like(reach)
    for i, j in zip(*np.nonzero(taps)):
        dr, dc = i - (rows - 1), j - k // 2  # input offset relative to the output, dr <= 0
        src = reach[max(0, -dr):height - max(0, dr), max(0, -dc):width - max(0, dc)]
        out[max(0, dr):height - max(0, -dr), max(0, dc):width - max(0, -dc)] |= src
    return out
