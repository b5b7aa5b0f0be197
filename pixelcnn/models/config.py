"""A model's shape (:class:`PixelCNNConfig`) and the named presets. Imports no model.

Which kinds exist, and the rules a kind adds to the shared limits, are the
registry's (:mod:`pixelcnn.models.registry`): it registers each kind's check
here when ``pixelcnn.models`` is imported, so a config is checked in full on
construction while this room imports no kind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

from ..errors import ConfigError

LIMITS = {
    "channels": (1, 4),
    "levels": (2, 256),
    "image_size": (2, 256),
    "hidden": (2, 1024),
    "n_blocks": (0, 64),
    "first_kernel": (3, 15),
    "block_kernel": (1, 15),
}


_KIND_CHECKS: dict[str, Callable[["PixelCNNConfig"], None]] = {}


def register_kind(name: str, check: Callable[["PixelCNNConfig"], None]) -> None:
    """Admit configs of kind ``name``, checked by ``check`` (which raises ConfigError); the registry's call."""
    _KIND_CHECKS[name] = check


@dataclass(frozen=True)
class PixelCNNConfig:
    """Shape of a model. ``hidden`` is the residual stream width (2h in the paper); for ``gated`` it is
    the feature maps per stack, and ``n_blocks`` counts the gated layers after the first.

    The constructor checks the limits every kind shares, then the kind's own rules.
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
        if self.kind not in _KIND_CHECKS:
            raise ConfigError(f"kind must be one of {', '.join(_KIND_CHECKS)}, got {self.kind!r}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        for name in ("first_kernel", "block_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{name} must be odd, got {getattr(self, name)}")
        _KIND_CHECKS[self.kind](self)

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
