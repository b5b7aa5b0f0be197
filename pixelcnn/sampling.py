"""Sampling from a PixelCNN: a naive reference sampler and a fast cached one.

The naive sampler runs the whole network once per pixel (784 forward passes
for a 28x28 image). The cached sampler, after Ramachandran et al. 2017 ("Fast
Generation for Convolutional Autoregressive Models"), keeps each masked
layer's inputs in a buffer and computes, for each new pixel, only that
pixel's column through the network: every hidden activation at position p
depends only on pixels strictly before p, so once pixel p - 1 is drawn the
activations at p are final and can be computed from the buffers alone.

Both consume the same random numbers (one uniform per image and channel per
pixel), so they draw identical images when their conditionals agree. Each
image has a generator of its own, seeded from (seed, its index): a sample is a
function of the model, the seed, its index and the temperature alone, so the
first of 100 samples is the one sample drawn alone with the same seed, in the
CLI and in every view.

A class-conditional model draws each image for its label; with a guidance
weight w every conditional's logits become ``cond + w * (cond - uncond)``
(classifier-free guidance, Ho and Salimans 2022, applied per pixel), the
unconditional logits coming from the same model shown "no label": both halves
run as one batch of 2n, through the same cache.

The loop here knows no kind: each kind provides its cache
(:meth:`~pixelcnn.models.kind.ModelKind.cache`) and the channels it draws
together (an ``rgb`` model draws a pixel's channels in turn, R, then G given
R, then B, so both samplers evaluate each of its pixels once per channel).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import torch

from .errors import ConfigError, ModelError
from .models import kind_of
from .runtime import INTERACTIVE_THREADS, intra_op_threads

ProgressFn = Callable[[float], None]
StepFn = Callable[[int, int, list, torch.Tensor], None]
METHODS = ("cached", "naive")
MAX_SAMPLES = 1024
MAX_GUIDANCE = 20.0


def draw_levels(logits: torch.Tensor, temperature: float, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw from softmax(logits / T) along dim 1: logits (n, levels, C), uniform (n, C)."""
    probs = torch.softmax(logits.double() / temperature, dim=1)
    cdf = probs.cumsum(dim=1)
    values = (cdf < uniform.unsqueeze(1)).sum(dim=1)
    return values.clamp_(max=logits.shape[1] - 1)


def sample_seed(seed: int, index: int) -> int:
    """The generator seed of image ``index`` of a draw seeded ``seed``: 63 bits of a hash of the pair."""
    digest = hashlib.sha256(f"pixelcnn-sample:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class ImageUniforms:
    """The sampler's uniforms: for each of ``n`` images, from its own generator, one per channel of each
    pixel, drawn a row at a time as the walk enters the row (rows come in order, each once)."""

    def __init__(self, seed: int, n: int, width: int, channels: int):
        self.generators = [torch.Generator().manual_seed(sample_seed(seed, index)) for index in range(n)]
        self.width, self.channels = width, channels
        self.row, self.values = None, None

    def at(self, r: int, c: int) -> torch.Tensor:
        """The uniforms (n, channels) of pixel (r, c), float64."""
        if self.row != r:
            self.row = r
            self.values = torch.stack([torch.rand(self.width, self.channels, generator=g, dtype=torch.float64)
                                       for g in self.generators])
        return self.values[:, c]


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"n must be an integer in [1, {MAX_SAMPLES}], got {n!r}")


def prepare_labels(model: torch.nn.Module, labels, n: int) -> torch.Tensor | None:
    """``labels`` for ``n`` images of ``model``: None, one label for all, or (n,) labels in 0..classes
    (``classes``: no label) -> a LongTensor (n,) or None; a ConfigError names what is wrong."""
    classes = model.config.classes
    if labels is None:
        return None
    if not classes:
        raise ConfigError("this model is unconditional: it draws no chosen digit (train one with --classes 10)")
    values = np.asarray(labels)
    if values.ndim == 0:
        values = np.full(n, values)
    if values.shape != (n,) or values.dtype.kind not in "ui" or values.min() < 0 or values.max() > classes:
        raise ConfigError(f"labels must be {n} integers in [0, {classes}] ({classes}: no label), or one of them")
    return torch.from_numpy(values.astype(np.int64))


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
           progress: ProgressFn | None = None, on_step: StepFn | None = None,
           labels=None, guidance: float = 0.0) -> np.ndarray:
    """Draw ``n`` images from ``model``: uint8 (n, H, W, C) with values 0..levels-1.

    Image i depends on ``seed``, i, ``temperature``, ``method`` and its own label and prefix alone, not on
    ``n`` or the other images. ``temperature`` divides the logits. ``prefix = (image, known)`` completes
    images: ``image`` is (H, W, C) or (n, H, W, C), ``known`` a boolean (H, W) or (n, H, W) mask of pixels
    to keep; the others are sampled. ``progress`` gets the fraction done; ``on_step(r, c, channels,
    logits)`` hears every step, with the logits (n, levels, len(channels)) its channels were drawn from.
    A conditional model takes ``labels`` (one for all, or (n,), see :func:`prepare_labels`; None: no
    label) and a ``guidance`` weight w (0: plain conditional sampling).
    """
    _check_count(n)
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a number > 0, got {temperature!r}")
    cfg = model.config
    known = _prepare_prefix(prefix, n, cfg.image_size, cfg.channels)
    uniforms = ImageUniforms(seed, n, cfg.image_size, cfg.channels)

    def draw(r: int, c: int, group: list[int], logits: torch.Tensor) -> torch.Tensor:
        channels = channel_slice(group)
        values = draw_levels(logits, temperature, uniforms.at(r, c)[:, channels])
        if on_step is not None:
            on_step(r, c, group, logits)
        if known is not None:
            keep = known[1][:, r, c].unsqueeze(1)
            values = torch.where(keep, known[0][:, channels, r, c], values)
        return values

    return raster_walk(model, n, draw, method=method, labels=labels, guidance=guidance, progress=progress)


ChooseFn = Callable[[int, int, list, torch.Tensor], torch.Tensor]


def channel_slice(group: list[int]) -> slice:
    """A step's channels (consecutive, as every kind draws them) as a slice: in the per-pixel loop, indexing
    with it takes a third of the time that indexing with the list does, and gives the same values."""
    return slice(group[0], group[-1] + 1)


@torch.inference_mode()
def raster_walk(model: torch.nn.Module, n: int, choose: ChooseFn, method: str = "cached", labels=None,
                guidance: float = 0.0, progress: ProgressFn | None = None) -> np.ndarray:
    """The kind-free loop every pixel-by-pixel computation shares: sampling, and the codec's encoder and
    decoder, so that they compute every conditional through the same operations in the same order.

    At each step (pixel (r, c), the channels ``group`` the kind draws together) the model's logits
    (n, levels, len(group)) go to ``choose(r, c, group, logits)``, which returns the values (n, len(group))
    to write there: drawn, known, or decoded. Returns the images, uint8 (n, H, W, C). The cached walk runs on
    one thread (see :mod:`pixelcnn.runtime`), so its arithmetic does not depend on the machine's core count.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    _check_count(n)
    if not (isinstance(guidance, (int, float)) and np.isfinite(guidance) and 0 <= guidance <= MAX_GUIDANCE):
        raise ConfigError(f"guidance must be a number in [0, {MAX_GUIDANCE:g}], got {guidance!r}")
    cfg = model.config
    kind = kind_of(cfg)
    size, channels = cfg.image_size, cfg.channels
    device = next(model.parameters()).device
    label_batch = prepare_labels(model, labels, n)
    guided = label_batch is not None and guidance > 0
    if guided:  # the conditional half, then the same images shown no label
        label_batch = torch.cat([label_batch, torch.full((n,), cfg.classes, dtype=torch.long)])
    if label_batch is not None:
        label_batch = label_batch.to(device)
    was_training = model.training
    model.eval()
    x = torch.zeros(n, channels, size, size, dtype=torch.long)
    cache = kind.cache(model, 2 * n if guided else n, label_batch) if method == "cached" else None
    steps = [(group, channel_slice(group)) for group in kind.channel_steps(cfg)]
    # The cached loop is thousands of tiny operations: one thread is as fast on an idle CPU and does not
    # stall on a busy one (see pixelcnn.runtime.prepare_cpu). The naive loop's full passes keep them all.
    threads = INTERACTIVE_THREADS if cache is not None and device.type == "cpu" else torch.get_num_threads()
    try:
        with intra_op_threads(threads):
            for r in range(size):
                for c in range(size):
                    for group, channels in steps:
                        if cache is not None:
                            logits = cache.step(r, c, group)
                        else:
                            inputs = x.repeat(2, 1, 1, 1) if guided else x
                            logits = model(inputs.to(device), label_batch)[:, :, group, r, c]
                        if guided:
                            cond, uncond = logits[:n], logits[n:]
                            logits = cond + guidance * (cond - uncond)
                        if not torch.isfinite(logits).all():
                            raise ModelError(f"the model's logits at pixel ({r}, {c}) are not finite (its weights "
                                             f"overflow); retrain it or pick another checkpoint")
                        x[:, channels, r, c] = choose(r, c, group, logits.cpu())
                        if cache is not None:
                            written = x[:, :, r, c]
                            cache.write(r, c, (written.repeat(2, 1) if guided else written).to(device))
                if progress:
                    progress((r + 1) / size)
    finally:
        model.train(was_training)
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


@torch.inference_mode()
def teacher_forced_logits(model: torch.nn.Module, image: torch.Tensor, labels=None) -> torch.Tensor:
    """The cached path's logits for every pixel of given images (n, C, H, W): (n, levels, C, H, W).

    Feeds the true pixels instead of drawn ones; equal to ``model(image, labels)`` up to rounding.
    """
    n, _, size, _ = image.shape
    cache = kind_of(model.config).cache(model, n, prepare_labels(model, labels, n))
    out = torch.empty(n, model.config.levels, model.config.channels, size, size,
                      dtype=next(model.parameters()).dtype)
    for r in range(size):
        for c in range(size):
            cache.write(r, c, image[:, :, r, c])  # the masks hide what the conditional may not see
            out[:, :, :, r, c] = cache.step(r, c)
    return out
