"""Kind ``pixelcnn``: the exercise's model, Table 1 of "Pixel Recurrent Neural Networks" (2016).

A 7x7 masked convolution of type A, ``n_blocks`` residual blocks of Figure 5
(ReLU, 1x1, ReLU, 3x3 type B, ReLU, 1x1, plus skip), then ReLU, 1x1, ReLU,
1x1 to ``channels * levels`` logits. Channels are conditionally independent
given the previous pixels, p(x) = prod_i prod_c p(x_i^c | x_<i), so a type A
mask hides the whole current pixel and a type B mask shows it; 1x1
convolutions need no mask. The module takes a ``colours`` switch that the
``rgb`` kind (:mod:`pixelcnn.models.rgb`) uses for its channel masks.

With ``config.classes`` > 0 every convolution's output adds a learned bias per
label (:class:`~.layers.LabelBias`): the class-conditional PixelCNN of
CS294-158's homework, p(x | y) with the same masks.
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
from .layers import (ChannelNorm, LabelBias, MaskedConv2d, add_bias, colour_groups, conv_matrix, count_parameters,
                     kernel_mask, label_biases, label_rows, load_twin_weights, patch_indices, pointwise, row_bias,
                     scale_values, spread)


class ResidualBlock(nn.Module):
    """Figure 5: ReLU, 1x1 (2h -> h), ReLU, kxk type B (h -> h), ReLU, 1x1 (h -> 2h), plus skip.

    With ``colours`` every layer is masked channel-autoregressively (type B). With ``norm`` the block's
    input is first layer-normalised over each pixel's channels (:class:`~.layers.ChannelNorm`). With
    ``dropout`` > 0, that share of the last 1x1's inputs is zeroed in training mode (each feature of each
    pixel on its own, so no pixel sees more than its mask allows); in eval mode the block is unchanged.

    Shape: (B, 2h, H, W) -> (B, 2h, H, W).
    """

    def __init__(self, hidden: int, kernel_size: int = 3, colours: int | None = None, norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        half = hidden // 2
        self.norm = ChannelNorm(hidden) if norm else None
        self.reduce = pointwise(hidden, half, colours)
        groups = None if colours is None else (colour_groups(half, colours), colour_groups(half, colours))
        self.masked = MaskedConv2d(half, half, kernel_size, "B", groups)
        self.expand = pointwise(half, hidden, colours)
        self.dropout = nn.Dropout(dropout) if dropout else None

    def pass_through(self) -> None:
        """Zero the last 1x1 (weights and bias), so that the block returns its input unchanged; that
        layer's own gradients are not zero, so training grows the block from there."""
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor, biases: tuple = (None, None, None)) -> torch.Tensor:
        """``biases``: the label biases (B, width) of the three convolutions, or Nones."""
        h = add_bias(self.reduce(F.relu(x if self.norm is None else self.norm(x))), biases[0])
        h = add_bias(self.masked(F.relu(h)), biases[1])
        h = F.relu(h)
        return x + add_bias(self.expand(h if self.dropout is None else self.dropout(h)), biases[2])


class PixelCNN(nn.Module):
    """PixelCNN over images of ``channels`` channels with ``levels`` values each.

    ``forward(x, labels=None)`` takes x of shape (B, C, H, W) holding values in
    0..levels-1, as a LongTensor or as a floating tensor (so that gradients with
    respect to the input can be taken), and returns logits of shape
    (B, levels, C, H, W), ready for ``F.cross_entropy(logits, x)``. A
    conditional model (``config.classes`` > 0) takes ``labels`` (B,) in
    0..classes, ``classes`` or None meaning "no label". With ``colours`` (the
    ``rgb`` kind) every layer is masked between colour groups.
    """

    def __init__(self, config: PixelCNNConfig | None = None, colours: bool = False):
        super().__init__()
        self.config = config = config or PixelCNNConfig()
        groups = config.channels if colours else None
        self.colours = groups  # colour groups of every layer's feature maps (rgb), or None
        input_groups = None if groups is None else (colour_groups(config.channels, groups),
                                                    colour_groups(config.hidden, groups))
        self.input_conv = MaskedConv2d(config.channels, config.hidden, config.first_kernel, "A", input_groups)
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, config.block_kernel, groups, config.norm == "layer", config.dropout)
            for _ in range(config.n_blocks)
        )
        self.output_hidden = pointwise(config.hidden, config.hidden, groups)
        self.output_logits = pointwise(config.hidden, config.levels * config.channels, groups, interleaved_out=True)
        h, half = config.hidden, config.hidden // 2
        self.label_widths = [h] + [half, half, h] * config.n_blocks + [h, config.levels * config.channels]
        self.label_bias = LabelBias(config.classes, self.label_widths) if config.classes else None

    def load_shallower(self, state: dict[str, torch.Tensor], source_blocks: int) -> bool:
        """Load ``state``, the weights of this model with only its first ``source_blocks`` blocks, and start
        the blocks after them as identities (:meth:`ResidualBlock.pass_through`): this deeper model then
        computes exactly what the shallower one does, and training grows the new blocks from there. The
        state may lack the label tables, as :func:`~.layers.load_twin_weights` says. False, and nothing
        changed, if it does not fit."""
        new = tuple(f"blocks.{i}." for i in range(source_blocks, len(self.blocks)))
        if not load_twin_weights(self, state, fresh=new):
            return False
        for block in self.blocks[source_blocks:]:
            block.pass_through()
        return True

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map values 0..levels-1 to [-1, 1] in the parameters' dtype."""
        return scale_values(x, self.config.levels, self.output_logits.weight.dtype)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        b, c, height, width = x.shape
        biases = label_biases(self.label_bias, labels, b, len(self.label_widths))
        h = self.scale_input(x)
        if h.device.type == "cpu":
            h = h.contiguous(memory_format=torch.channels_last)
        h = add_bias(self.input_conv(h), biases[0])
        for i, block in enumerate(self.blocks):
            h = block(h, biases[1 + 3 * i:4 + 3 * i])
        h = add_bias(self.output_hidden(F.relu(h)), biases[-2])
        logits = add_bias(self.output_logits(F.relu(h)), biases[-1])
        return logits.reshape(b, self.config.levels, c, height, width)


class CachedPixelCNN:
    """Evaluates a :class:`PixelCNN` one pixel at a time, in raster order, reusing earlier work
    (Ramachandran et al. 2017): each masked layer keeps its inputs in a padded channels-last buffer,
    and a new pixel needs only its own column through the network. See :class:`~.kind.PixelCache`.
    """

    def __init__(self, model: PixelCNN, n: int, labels: torch.Tensor | None = None):
        cfg = model.config
        self.model = model
        p = cfg.first_kernel // 2
        q = cfg.block_kernel // 2
        self.p, self.q = p, q
        weight = model.output_logits.weight
        size = cfg.image_size
        # Channels-last buffers, zero-padded like the full forward: top, left and right.
        self.image = torch.zeros(n, size + p, size + 2 * p, cfg.channels, dtype=weight.dtype, device=weight.device)
        self.hidden = [torch.zeros(n, size + q, size + 2 * q, cfg.hidden // 2, dtype=weight.dtype,
                                   device=weight.device) for _ in model.blocks]
        # The same buffers flattened, and where each pixel's patch lies in them (see patch_indices).
        self.image_flat = self.image.view(n, -1)
        self.hidden_flat = [buffer.view(n, -1) for buffer in self.hidden]
        self.image_patches = patch_indices(size, cfg.first_kernel, cfg.channels, str(weight.device))
        self.hidden_patches = patch_indices(size, cfg.block_kernel, cfg.hidden // 2, str(weight.device))
        # Each layer as (weight, bias) of one position; a label's bias joins the layer's own, per image.
        extra = iter(label_biases(model.label_bias, labels, n, len(model.label_widths)))

        def layer(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
            weight, bias = conv_matrix(conv)
            return weight, row_bias(bias, next(extra))

        self.input_w, self.input_b = layer(model.input_conv)
        self.blocks = [(*layer(b.reduce), *layer(b.masked), *layer(b.expand)) for b in model.blocks]
        self.norms = [b.norm for b in model.blocks]  # each block's ChannelNorm, or None
        self.out1 = layer(model.output_hidden)
        self.out2 = layer(model.output_logits)
        self.n = n
        # Each value's input scaling, looked up per pixel instead of computed (the same numbers, one operation).
        self.scaled = model.scale_input(torch.arange(cfg.levels, device=weight.device))
        self.colours = getattr(model, "colours", None)
        if self.colours:
            self._prepare_colour_steps(cfg, n, weight)

    def _prepare_colour_steps(self, cfg: PixelCNNConfig, n: int, like: torch.Tensor) -> None:
        """Per colour g, every layer's weight and bias restricted to group g's outputs, and the current
        pixel's activations, filled one colour at a time (see :meth:`_colour_step`)."""
        colours, hidden, half = self.colours, cfg.hidden, cfg.hidden // 2

        def part(layer: tuple[torch.Tensor, torch.Tensor], columns: slice) -> tuple[torch.Tensor, torch.Tensor]:
            weight, bias = layer
            return weight[:, columns].contiguous(), bias[..., columns].contiguous()

        def block_of(width: int, g: int) -> slice:
            index = torch.nonzero(colour_groups(width, colours) == g).flatten()
            return slice(int(index[0]), int(index[-1]) + 1)

        self.colour_slices = [(block_of(hidden, g), block_of(half, g)) for g in range(colours)]
        self.colour_layers = []
        for g, (hs, qs) in enumerate(self.colour_slices):
            blocks = [(*part(b[0:2], qs), *part(b[2:4], qs), *part(b[4:6], hs)) for b in self.blocks]
            self.colour_layers.append((part((self.input_w, self.input_b), hs), blocks, part(self.out1, hs),
                                       part(self.out2, slice(g, None, colours))))
        zeros = lambda width: torch.zeros(n, width, dtype=like.dtype, device=like.device)  # noqa: E731
        self.h_now = [zeros(hidden) for _ in range(len(self.blocks) + 1)]
        self.mid_now = [zeros(half) for _ in self.blocks]
        self.out1_now = zeros(hidden)
        self.stepped = None  # (r, c, g) of the last colour step

    def write(self, r: int, c: int, values: torch.Tensor) -> None:
        self.image[:, r + self.p, c + self.p] = self.scaled[values]

    def step(self, r: int, c: int, channels: list[int] | None = None) -> torch.Tensor:
        if self.colours and channels is not None and len(channels) == 1:
            g = channels[0]
            first = g if self.stepped == (r, c, g - 1) else 0  # a colour needs this pixel's earlier colours
            for colour in range(first, g + 1):
                logits = self._colour_step(r, c, colour)
            self.stepped = (r, c, g)
            return logits
        logits = self._full_step(r, c)
        return logits if channels is None or len(channels) == logits.shape[2] else logits[:, :, channels]

    def _colour_step(self, r: int, c: int, g: int) -> torch.Tensor:
        """Colour g's logits (n, levels, 1) of pixel (r, c), computing only colour g's feature maps there.

        The masks let a colour-g feature at the current pixel read only colours <= g there (and every
        colour at earlier pixels), so colour g's features are computed from those of colours < g, which
        this pixel's earlier colour steps left in ``h_now``, ``mid_now``, ``out1_now`` and the buffers; the
        entries of later colours there are stale, and their weights are zero. A third of a full step."""
        q, n = self.q, self.n
        hs, qs = self.colour_slices[g]
        (w_first, b_first), blocks, (w_h, b_h), (w_logits, b_logits) = self.colour_layers[g]
        self.h_now[0][:, hs] = torch.addmm(b_first, self.image_flat.index_select(1, self.image_patches[r][c]), w_first)
        patch = self.hidden_patches[r][c]
        for i, (buffer, flat, (w_in, b_in, w_mid, b_mid, w_out, b_out)) in enumerate(zip(self.hidden, self.hidden_flat,
                                                                                        blocks)):
            h = self.h_now[i]
            buffer[:, r + q, c + q, qs] = F.relu(torch.addmm(b_in, F.relu(h), w_in))
            self.mid_now[i][:, qs] = torch.addmm(b_mid, flat.index_select(1, patch), w_mid)
            self.h_now[i + 1][:, hs] = h[:, hs] + torch.addmm(b_out, F.relu(self.mid_now[i]), w_out)
        self.out1_now[:, hs] = torch.addmm(b_h, F.relu(self.h_now[-1]), w_h)
        logits = torch.addmm(b_logits, F.relu(self.out1_now), w_logits)
        return logits.view(n, self.model.config.levels, 1)

    def _full_step(self, r: int, c: int) -> torch.Tensor:
        q = self.q
        # Thousands of tiny operations an image, so as few as the arithmetic allows: each rectified in place where
        # its input is not needed again, the residual added in place (a + b == b + a, bit for bit).
        h = torch.addmm(self.input_b, self.image_flat.index_select(1, self.image_patches[r][c]), self.input_w)
        patch = self.hidden_patches[r][c]
        for buffer, flat, norm, (w_in, b_in, w_mid, b_mid, w_out, b_out) in zip(self.hidden, self.hidden_flat,
                                                                               self.norms, self.blocks):
            buffer[:, r + q, c + q] = torch.addmm(b_in, h.relu() if norm is None else norm.rows(h).relu_(),
                                                  w_in).relu_()
            mid = torch.addmm(b_mid, flat.index_select(1, patch), w_mid)
            h = torch.addmm(b_out, mid.relu_(), w_out).add_(h)
        h = torch.addmm(self.out1[1], h.relu_(), self.out1[0])
        logits = torch.addmm(self.out2[1], h.relu_(), self.out2[0])
        cfg = self.model.config
        return logits.view(self.n, cfg.levels, cfg.channels)


def masked_stack_field(config: PixelCNNConfig, row: int, col: int, n_blocks: int) -> np.ndarray:
    """The pixels before (row, col) that a type A first layer and ``n_blocks`` type B blocks reach."""
    reach = np.zeros((config.image_size, config.image_size), dtype=bool)
    reach[row, col] = True
    block_taps = kernel_mask(config.block_kernel, "B").numpy().astype(bool)
    for _ in range(n_blocks):
        reach = reach | spread(reach, block_taps)
    return spread(reach, kernel_mask(config.first_kernel, "A").numpy().astype(bool))


def masked_stack_rows(model: PixelCNN, colour: bool) -> list[dict[str, Any]]:
    """The architecture rows of :class:`PixelCNN`; ``colour`` marks the channel-masked layers."""
    cfg = model.config
    h, k1, k2 = cfg.hidden, cfg.first_kernel, cfg.block_kernel
    tag = " (colour)" if colour else ""
    one = "B (colour)" if colour else "-"
    norm = "layer norm, " if cfg.norm == "layer" else ""
    drop = f"dropout {cfg.dropout:g}, " if cfg.dropout else ""
    return [
        {"layer": "input", "kernel": f"{k1}x{k1}", "mask": f"A{tag}", "in": cfg.channels, "out": h,
         "parameters": count_parameters(model.input_conv)},
        {"layer": f"residual blocks x{cfg.n_blocks}: {norm}1x1, {k2}x{k2}, {drop}1x1",
         "kernel": f"1x1, {k2}x{k2}, 1x1",
         "mask": f"{one}, B{tag}, {one}", "in": h, "out": h, "parameters": count_parameters(model.blocks)},
        {"layer": "output 1", "kernel": "1x1", "mask": f"B{tag}", "in": h, "out": h,
         "parameters": count_parameters(model.output_hidden)},
        {"layer": "output 2 (logits)", "kernel": "1x1", "mask": f"B{tag}", "in": h,
         "out": cfg.levels * cfg.channels, "parameters": count_parameters(model.output_logits)},
    ] + label_rows(model)


class PixelCNNKind(ModelKind):
    name = "pixelcnn"
    summary = "the exercise's PixelCNN: masked convolutions, channels independent given earlier pixels"

    def test_config(self) -> PixelCNNConfig:
        return PixelCNNConfig(hidden=16, n_blocks=2, image_size=10)

    def check(self, config: PixelCNNConfig) -> None:
        if config.hidden % 2:
            raise ConfigError(f"hidden must be even (the bottleneck is hidden // 2), got {config.hidden}")

    def build(self, config: PixelCNNConfig) -> nn.Module:
        return PixelCNN(config)

    def cache(self, model: nn.Module, n: int, labels: torch.Tensor | None = None) -> CachedPixelCNN:
        return CachedPixelCNN(model, n, labels)

    def deepen(self, model: nn.Module, state: dict[str, torch.Tensor], source_blocks: int) -> bool:
        return model.load_shallower(state, source_blocks)

    def analytic_field(self, config: PixelCNNConfig, row: int, col: int, n_blocks: int,
                       channel: int) -> np.ndarray:
        return masked_stack_field(config, row, col, n_blocks)

    def architecture(self, model: nn.Module) -> list[dict[str, Any]]:
        return masked_stack_rows(model, colour=False)

    def describe(self, config: PixelCNNConfig) -> str:
        return (f"Each residual block is Figure 5 of the paper: ReLU, 1x1 ({config.hidden} to "
                f"{config.hidden // 2}), ReLU, {config.block_kernel}x{config.block_kernel} type B, ReLU, 1x1 "
                f"back to {config.hidden}, plus the skip connection.")


KIND = PixelCNNKind()
