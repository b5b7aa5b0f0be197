"""Model kinds behind one contract: shared pieces (:mod:`.config`, :mod:`.layers`), one room per kind
(:mod:`.pixelcnn`, :mod:`.rgb`, :mod:`.gated`), the contract (:mod:`.kind`) and the :mod:`.registry`."""

from .config import PixelCNNConfig
from .gated import GatedPixelCNN
from .kind import ModelKind, PixelCache
from .layers import MaskedConv2d, bits_per_dim, count_parameters, kernel_mask, load_twin_weights
from .pixelcnn import PixelCNN
from .presets import PRESETS, get_preset
from .registry import KINDS, architecture_table, build_model, kind_of, random_model

__all__ = ["PRESETS", "PixelCNNConfig", "get_preset", "GatedPixelCNN", "ModelKind", "PixelCache", "MaskedConv2d",
           "bits_per_dim", "count_parameters", "kernel_mask", "PixelCNN", "KINDS", "architecture_table",
           "build_model", "kind_of", "load_twin_weights", "random_model"]
