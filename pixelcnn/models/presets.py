"""The named model sizes of the CLI and the dashboard (configs of registered kinds)."""

from __future__ import annotations

from ..errors import ConfigError
from .config import PixelCNNConfig
from . import registry  # noqa: F401  (the kinds are registered before the first config is built)

PRESETS: dict[str, PixelCNNConfig] = {
    "tiny": PixelCNNConfig(hidden=32, n_blocks=4),
    "live": PixelCNNConfig(hidden=96, n_blocks=12),
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
