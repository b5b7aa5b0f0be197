"""Sampling from a PixelCNN: a naive reference sampler and a fast cached one.

The naive sampler runs the whole network once per pixel (784 forward passes
for a 28x28 image). The cached sampler, after Ramachandran et al. 2017 ("Fast
Generation for Convolutional Autoregressive Models"), keeps each masked
layer's inputs in a buffer and computes, for each new pixel, only that
pixel's column through the network: every hidden activation at position p
depends only on pixels strictly before p, so once pixel p - 1 is drawn the
activations at p are final and can be computed from the buffers alone.

Both consume their random numbers in the same order (one uniform per image
and channel per pixel, drawn from their own ``torch.Generator``), so they
draw identical images when their conditionals agree.

An ``rgb`` model draws a pixel's channels in turn (R, then G given R, then B),
so both samplers evaluate each of its pixels once per channel. A ``gated``
model's cache (:class:`CachedGatedPixelCNN`) computes the vertical stack a row
at a time, since it only reads rows above.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, ModelError
from .gated import GatedPixelCNN, gate
from .model import MaskedConv2d, PixelCNN
from .runtime import INTERACTIVE_THREADS, intra_op_threads

ProgressFn = Callable[[float], None]
METHODS = ("cached", "naive")
MAX_SAMPLES = 1024


def _flat_weight(weight: torch.Tensor) -> torch.Tensor:
    """A kernel (out, in, rows, k) as a matrix for a (rows, k, in) patch flattened row-major: (rows * k * in, out)."""
    return weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0])


def _matrix(conv: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution (masked or not) as the (patch, out) weight and the bias of one output position."""
    weight = conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight
    return _flat_weight(weight), conv.bias


class CachedPixelCNN:
    """Evaluates a :class:`PixelCNN` one pixel at a time, in raster order, reusing earlier work.

    ``step(r, c)`` returns the logits (n, levels, channels) of pixel (r, c); it
    must be called in raster order, and the pixels before (r, c) must have
    been written with ``write(r, c, values)`` first. It may be called again
    for the same pixel after writing some of its channels (an ``rgb`` model's
    later channels read the earlier ones).
    """

    def __init__(self, model: PixelCNN, n: int):
        cfg = model.config
        self.model = model
        p = cfg.first_kernel // 2
        q = cfg.block_kernel // 2
        self.p, self.q = p, q
        dtype, device = model.output_logits.weight.dtype, model.output_logits.weight.device
        size = cfg.image_size
        # Channels-last buffers, zero-padded like the full forward: top, left and right.
        self.image = torch.zeros(n, size + p, size + 2 * p, cfg.channels, dtype=dtype, device=device)
        self.hidden = [torch.zeros(n, size + q, size + 2 * q, cfg.hidden // 2, dtype=dtype, device=device)
                       for _ in model.blocks]
        self.input_w, self.input_b = _matrix(model.input_conv)
        self.blocks = [(*_matrix(b.reduce), *_matrix(b.masked), *_matrix(b.expand)) for b in model.blocks]
        self.out1 = _matrix(model.output_hidden)
        self.out2 = _matrix(model.output_logits)
        self.n = n

    def write(self, r: int, c: int, values: torch.Tensor) -> None:
        """Record the drawn values (n, channels) of pixel (r, c)."""
        self.image[:, r + self.p, c + self.p] = self.model.scale_input(values)

    def step(self, r: int, c: int) -> torch.Tensor:
        p, q, n = self.p, self.q, self.n
        k1, k2 = 2 * p + 1, 2 * q + 1
        patch = self.image[:, r:r + p + 1, c:c + k1].reshape(n, -1)
        h = torch.addmm(self.input_b, patch, self.input_w)
        for buffer, (w_in, b_in, w_mid, b_mid, w_out, b_out) in zip(self.hidden, self.blocks):
            buffer[:, r + q, c + q] = F.relu(torch.addmm(b_in, F.relu(h), w_in))
            patch = buffer[:, r:r + q + 1, c:c + k2].reshape(n, -1)
            mid = torch.addmm(b_mid, patch, w_mid)
            h = h + torch.addmm(b_out, F.relu(mid), w_out)
        h = torch.addmm(self.out1[1], F.relu(h), self.out1[0])
        logits = torch.addmm(self.out2[1], F.relu(h), self.out2[0])
        cfg = self.model.config
        return logits.view(n, cfg.levels, cfg.channels)


class CachedGatedPixelCNN:
    """:class:`CachedPixelCNN`'s contract for a :class:`~pixelcnn.gated.GatedPixelCNN`.

    The vertical stack at row r reads only rows above it, so the first
    ``step`` of a row computes that row of every layer's vertical stack with a
    convolution; each pixel then needs only its horizontal stack.
    """

    def __init__(self, model: GatedPixelCNN, n: int):
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
        self.layers = [(*_matrix(layer.horizontal), *_matrix(layer.v_to_h), *_matrix(layer.h_out))
                       for layer in model.layers]
        self.out1 = _matrix(model.output_hidden)
        self.out2 = _matrix(model.output_logits)
        self.size, self.row = size, -1

    def write(self, r: int, c: int, values: torch.Tensor) -> None:
        """Record the drawn values (n, channels) of pixel (r, c)."""
        self.image[:, r + self.q1 + 1, c + self.q1 + 1] = self.model.scale_input(values)

    def _begin_row(self, r: int) -> None:
        q1, q2, size = self.q1, self.q2, self.size
        below = self.image[:, r:r + q1 + 1, 1:].permute(0, 3, 1, 2)  # rows r - q1 - 1 .. r - 1
        for index, layer in enumerate(self.model.layers):
            v_pre = F.conv2d(below, layer.vertical.weight, layer.vertical.bias)[:, :, 0].transpose(1, 2)
            _, _, w, b, _, _ = self.layers[index]
            self.v_to_h[index] = torch.addmm(b, v_pre.reshape(-1, v_pre.shape[-1]), w).view(self.n, size, -1)
            self.vertical[index][:, r + q2, q2:q2 + size] = gate(v_pre.transpose(1, 2)).transpose(1, 2)
            below = self.vertical[index][:, r:r + q2 + 1].permute(0, 3, 1, 2)  # rows r - q2 .. r
        self.row = r

    def step(self, r: int, c: int) -> torch.Tensor:
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
        return logits.view(n, cfg.levels, cfg.channels)


def make_cache(model: torch.nn.Module, n: int) -> CachedPixelCNN | CachedGatedPixelCNN:
    """The per-pixel cache for ``model``'s kind, for ``n`` images at once."""
    return CachedGatedPixelCNN(model, n) if isinstance(model, GatedPixelCNN) else CachedPixelCNN(model, n)


def channel_steps(model: torch.nn.Module) -> list[list[int]]:
    """The channels drawn together at each step of a pixel: one at a time for ``rgb``, else all at once."""
    channels = model.config.channels
    return [[c] for c in range(channels)] if model.config.kind == "rgb" else [list(range(channels))]


def _draw(logits: torch.Tensor, temperature: float, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw from softmax(logits / T) along dim 1: logits (n, levels, C), uniform (n, C)."""
    probs = torch.softmax(logits.double() / temperature, dim=1)
    cdf = probs.cumsum(dim=1)
    values = (cdf < uniform.unsqueeze(1)).sum(dim=1)
    return values.clamp_(max=logits.shape[1] - 1)


def _prepare_prefix(prefix, n: int, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    if prefix is None:
        return None
    image, known = prefix
    image = np.asarray(image)
    known = np.asarray(known, dtype=bool)
    if image.ndim == 3:
        image = np.broadcast_to(image, (n,) + image.shape)
    if known.ndim == 2:
        known = np.broadcast_to(known, (n,) + known.shape)
    if image.shape != (n, size, size, channels) or known.shape != (n, size, size):
        raise ConfigError(f"prefix must be an image ({size}, {size}, {channels}) and a mask ({size}, {size})")
    values = torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2))).long()
    return values, torch.from_numpy(np.ascontiguousarray(known))


@torch.inference_mode()
def sample(model: torch.nn.Module, n: int, seed: int = 0, temperature: float = 1.0, method: str = "cached",
           prefix: tuple[np.ndarray, np.ndarray] | None = None,
           progress: ProgressFn | None = None) -> np.ndarray:
    """Draw ``n`` images from ``model``: uint8 (n, H, W, C) with values 0..levels-1.

    Deterministic for a given ``seed`` and ``method``. ``temperature`` divides
    the logits. ``prefix = (image, known)`` completes images: ``image`` is
    (H, W, C) or (n, H, W, C), ``known`` a boolean (H, W) or (n, H, W) mask of
    pixels to keep; the others are sampled. ``progress`` gets the fraction done.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"n must be an integer in [1, {MAX_SAMPLES}], got {n!r}")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a number > 0, got {temperature!r}")
    cfg = model.config
    size, channels = cfg.image_size, cfg.channels
    device = model.output_logits.weight.device
    was_training = model.training
    model.eval()
    known = _prepare_prefix(prefix, n, size, channels)
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.zeros(n, channels, size, size, dtype=torch.long)
    cache = make_cache(model, n) if method == "cached" else None
    steps = channel_steps(model)
    total = size * size
    # The cached loop is thousands of tiny operations: one thread is as fast on an idle CPU and does not
    # stall on a busy one (see pixelcnn.runtime.prepare_cpu). The naive loop's full passes keep them all.
    threads = INTERACTIVE_THREADS if cache is not None and device.type == "cpu" else torch.get_num_threads()
    with intra_op_threads(threads):
        for r in range(size):
            for c in range(size):
                uniform = torch.rand(n, channels, generator=generator, dtype=torch.float64)
                for group in steps:
                    if cache is not None:
                        logits = cache.step(r, c)
                    else:
                        logits = model(x.to(device))[:, :, :, r, c]
                    if not torch.isfinite(logits).all():
                        model.train(was_training)
                        raise ModelError(f"the model's logits at pixel ({r}, {c}) are not finite (its weights "
                                         f"overflow); retrain it or pick another checkpoint")
                    values = _draw(logits[:, :, group].cpu(), temperature, uniform[:, group])
                    if known is not None:
                        keep = known[1][:, r, c].unsqueeze(1)
                        values = torch.where(keep, known[0][:, group, r, c], values)
                    x[:, group, r, c] = values
                    if cache is not None:
                        cache.write(r, c, x[:, :, r, c].to(device))
            if progress:
                progress((r + 1) * size / total)
    model.train(was_training)
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


@torch.inference_mode()
def teacher_forced_logits(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The cached path's logits for every pixel of given images (n, C, H, W): (n, levels, C, H, W).

    Feeds the true pixels instead of drawn ones; equal to ``model(image)`` up to rounding.
    """
    n, _, size, _ = image.shape
    cache = make_cache(model, n)
    out = torch.empty(n, model.config.levels, model.config.channels, size, size,
                      dtype=model.output_logits.weight.dtype)
    for r in range(size):
        for c in range(size):
            cache.write(r, c, image[:, :, r, c])  # the masks hide what the conditional may not see
            out[:, :, :, r, c] = cache.step(r, c)
    return out
