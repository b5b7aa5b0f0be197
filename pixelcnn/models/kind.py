"""The contract every model kind fulfils, so that sampling, receptive fields, checkpoints, the
dashboard and the tests work with any kind without knowing which one it is.

A kind is one file in this package that defines a :class:`ModelKind` and one
line in :mod:`pixelcnn.models.registry` that lists it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn

from ..errors import ConfigError
from .config import PixelCNNConfig


class PixelCache(Protocol):
    """A cached sampler's state for ``n`` images: one pixel at a time, in raster order.

    ``step(r, c)`` returns the logits (n, levels, channels) of pixel (r, c); every
    pixel before it must have been written with ``write(r, c, values)`` first,
    values (n, channels) in 0..levels-1. ``step`` may be called again for a pixel
    after some of its channels were written (a kind that draws channels in turn);
    ``step(r, c, channels)`` returns those channels' logits only, (n, levels, len(channels)),
    which such a kind may compute for less.
    """

    def write(self, r: int, c: int, values: torch.Tensor) -> None: ...

    def step(self, r: int, c: int, channels: list[int] | None = None) -> torch.Tensor: ...


class ModelKind(ABC):
    """Everything about one kind of model. Subclasses set ``name`` and ``summary``.

    Modules built by :meth:`build` take x (B, C, H, W) with values
    0..levels-1 (long, or floating so that input gradients can be taken) and
    return logits (B, levels, C, H, W); they keep their config as ``.config``.
    With ``config.classes`` > 0 they are class-conditional: ``model(x, labels)``
    takes labels (B,) in 0..classes (``classes``, or None, meaning "no label"),
    and so does :meth:`cache`; an unconditional model refuses labels.
    """

    name: str
    summary: str  # one sentence for the Overview page and the CLI's help

    @abstractmethod
    def test_config(self) -> PixelCNNConfig:
        """A small config of this kind (image 10x10 or so): the registry-driven tests build it."""

    def check(self, config: PixelCNNConfig) -> None:
        """Raise a ConfigError if ``config`` breaks a rule of this kind (beyond the shared limits)."""

    @abstractmethod
    def build(self, config: PixelCNNConfig) -> nn.Module:
        """A freshly initialised module of this kind."""

    @abstractmethod
    def cache(self, model: nn.Module, n: int, labels: torch.Tensor | None = None) -> PixelCache:
        """The cached sampler of ``model`` for ``n`` images at once, each with its label (n,) if given."""

    def deepen(self, model: nn.Module, state: dict[str, torch.Tensor], source_blocks: int) -> bool:
        """Load ``state``, the weights of a model like ``model`` with only ``source_blocks`` of its blocks,
        with the blocks after them starting as identities, so that ``model`` computes what the shallower
        one does (``--init-from`` a shallower checkpoint). False, and nothing loaded, if the state does
        not fit. A kind without residual blocks to start as identities raises a ConfigError (one line)."""
        raise ConfigError(f"--init-from a checkpoint with fewer blocks is for kinds pixelcnn and rgb only (a "
                          f"{self.name} model has no residual blocks to start as identities); give it a "
                          f"checkpoint of the same depth")

    def channel_steps(self, config: PixelCNNConfig) -> list[list[int]]:
        """The channels drawn together at each step of a pixel, each step's consecutive and in order: by
        default all at once."""
        return [list(range(config.channels))]

    @abstractmethod
    def analytic_field(self, config: PixelCNNConfig, row: int, col: int, n_blocks: int,
                       channel: int) -> np.ndarray:
        """Which input pixels can influence the conditional at (row, col, channel) through the first
        layer and ``n_blocks`` blocks after it, from kernel sizes and masks alone: a bool (H, W) array."""

    @abstractmethod
    def architecture(self, model: nn.Module) -> list[dict[str, Any]]:
        """One row per layer or group of layers: layer, kernel, mask, in, out, parameters (live taps)."""

    @abstractmethod
    def describe(self, config: PixelCNNConfig) -> str:
        """A few sentences (Markdown) on this kind's layers at ``config``, for the Overview page."""
