"""Which model kinds exist: each kind's name mapped to its :class:`~.kind.ModelKind`.

A new kind is one file in this package (a module, its cached sampler, its
analytic receptive field, its architecture rows, behind the contract of
:class:`~.kind.ModelKind`) and one line in ``KINDS`` below; the CLI, the
dashboard and the registry-driven tests find it here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from . import gated, pixelcnn, rgb
from .config import PixelCNNConfig, register_kind
from .kind import ModelKind

KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    pixelcnn.KIND,
    rgb.KIND,
    gated.KIND,
)}


for _kind in KINDS.values():
    register_kind(_kind.name, _kind.check)


def kind_of(config: PixelCNNConfig) -> ModelKind:
    """The kind of ``config`` (a config can only be built with a registered kind)."""
    return KINDS[config.kind]


def build_model(config: PixelCNNConfig) -> nn.Module:
    """A freshly initialised model of ``config.kind``."""
    return kind_of(config).build(config)


def architecture_table(config: PixelCNNConfig) -> list[dict[str, Any]]:
    """One row per layer or group of layers: name, kernel, mask, input and output channels, parameters.

    Parameters count only the taps a mask leaves live, measured on the built model.
    """
    return kind_of(config).architecture(build_model(config))


def random_model(config: PixelCNNConfig, seed: int = 0) -> nn.Module:
    """A model at its seeded random initialisation, in eval mode; the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config).eval()
