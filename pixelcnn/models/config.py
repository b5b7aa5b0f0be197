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
from ..options import check_fields, option

_KIND_CHECKS: dict[str, Callable[["PixelCNNConfig"], None]] = {}
NORMS = ("none", "layer")


def register_kind(name: str, check: Callable[["PixelCNNConfig"], None]) -> None:
    """Admit configs of kind ``name``, checked by ``check`` (which raises ConfigError); the registry's call."""
    _KIND_CHECKS[name] = check


@dataclass(frozen=True)
class PixelCNNConfig:
    """Shape of a model. ``hidden`` is the residual stream width (2h in the paper); for ``gated`` it is
    the feature maps per stack, and ``n_blocks`` counts the gated layers after the first.

    ``classes`` > 0 makes the model class-conditional: every layer adds a learned bias per label (one more
    row, index ``classes``, for "no label"), see :class:`~.layers.LabelBias`.

    The constructor checks the limits every kind shares, then the kind's own rules.
    """

    kind: str = option("pixelcnn", "the kind of model (see pixelcnn.models.registry)")
    channels: int = option(3, "channels per pixel", low=1, high=4)
    levels: int = option(4, "values per channel", low=2, high=256)
    image_size: int = option(28, "image height and width", low=2, high=256)
    hidden: int = option(128, "width: the residual stream, or the feature maps per stack for gated", low=2,
                         high=1024)
    n_blocks: int = option(12, "residual blocks (gated: gated layers after the first)", low=0, high=64)
    first_kernel: int = option(7, "kernel size of the first, type A layer (odd)", low=3, high=15)
    block_kernel: int = option(3, "kernel size of the blocks' masked convolutions (odd)", low=1, high=15)
    classes: int = option(0, "labels the model is conditioned on (10: the digit); 0 for an unconditional model",
                          low=0, high=1000)
    norm: str = option("none", "layer: normalise each residual block's input over the channels of each pixel "
                               "(kind pixelcnn), as the course's handout suggests", choices=NORMS)
    dropout: float = option(0.0, "share of each residual block's bottleneck features zeroed while training, "
                                 "before its last 1x1 (PixelCNN++'s regulariser; kinds pixelcnn and rgb); "
                                 "0 for none", low=0.0, high=0.9)

    def __post_init__(self) -> None:
        if self.kind not in _KIND_CHECKS:
            raise ConfigError(f"kind must be one of {', '.join(_KIND_CHECKS)}, got {self.kind!r}")
        check_fields(self)
        for name in ("first_kernel", "block_kernel"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"{name} must be odd, got {getattr(self, name)}")
        _KIND_CHECKS[self.kind](self)

    def to_dict(self) -> dict[str, int | float | str]:
        """The fields as a dict; ``norm`` and ``dropout`` only when set, so every config from before they
        existed (every shipped checkpoint's) reads and hashes as it did (the codec's model identity includes
        them)."""
        data = asdict(self)
        if data["norm"] == "none":
            del data["norm"]
        if data["dropout"] == 0:
            del data["dropout"]
        return data

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
