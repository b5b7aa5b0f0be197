"""What the product can feed and serve: a model shaped for colored MNIST, within this machine's memory.

The config admits other shapes (tests build small images; the library trains
any), but every command and page that feeds a model colored MNIST, draws its
samples as RGB images or keeps 100 samples' activations in memory checks the
model here first, so a legal but foreign or oversized checkpoint gets one line
instead of a crash, a silent score on the wrong data, or an exhausted server.
"""

from __future__ import annotations

import os

from ..store.data import IMAGE_SHAPE, LEVELS
from ..errors import ModelError
from ..models import PixelCNNConfig

SERVED_SAMPLES = 100


def serving_memory_budget() -> int:
    """Bytes a served model may take to draw 100 samples: ``$PIXELCNN_MEMORY_BUDGET_MB``, else 4 GiB."""
    try:
        return int(float(os.environ.get("PIXELCNN_MEMORY_BUDGET_MB", "4096")) * 2**20)
    except ValueError:
        return 4 << 30


def sampling_memory_bytes(config: PixelCNNConfig, n: int = SERVED_SAMPLES) -> int:
    """An upper estimate of the memory that drawing ``n`` samples takes: the weights, and the cached
    sampler's padded per-layer buffers (one per layer, ``hidden`` wide at most, float32)."""
    pad = max(config.first_kernel, config.block_kernel)
    side = config.image_size + pad
    buffers = n * side * side * config.hidden * 4 * (config.n_blocks + 2)
    weights = 4 * config.hidden * config.hidden * max(config.first_kernel, config.block_kernel) ** 2 \
        * (config.n_blocks + 2)
    return buffers + weights


def check_servable(config: PixelCNNConfig) -> None:
    """Raise a one-line :class:`ModelError` unless the product can feed and serve a model of ``config``."""
    height, width, channels = IMAGE_SHAPE
    shape = (config.image_size, config.image_size, config.channels, config.levels)
    if shape != (height, width, channels, LEVELS):
        raise ModelError(f"this model is for {config.image_size}x{config.image_size} images with "
                         f"{config.channels} channel(s) of {config.levels} levels; colored MNIST is "
                         f"{height}x{width}x{channels} with {LEVELS} levels, so it cannot be used here")
    if config.classes > SERVED_SAMPLES:
        raise ModelError(f"this model knows {config.classes:,} labels: one row per label would draw more than the "
                         f"{SERVED_SAMPLES} samples this tool serves at a time; it serves models of at most "
                         f"{SERVED_SAMPLES} labels")
    need, budget = sampling_memory_bytes(config), serving_memory_budget()
    if need > budget:
        raise ModelError(f"this model needs about {need / 2**30:.1f} GiB to draw {SERVED_SAMPLES} samples, over "
                         f"the {budget / 2**30:.1f} GiB this tool serves (PIXELCNN_MEMORY_BUDGET_MB); "
                         f"use a smaller model")
