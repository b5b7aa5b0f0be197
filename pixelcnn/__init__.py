"""PixelCNN on colored MNIST: an engine (this package) and a Streamlit dashboard.

From a notebook or a script, ``import pixelcnn as px`` and use the calls of :mod:`pixelcnn.api`
(``px.load_model("paper")``, ``px.sample(model)``, ``px.show(images)``, ``px.receptive_field(model)``, ...).
They load on first use, so importing a room of the package (``pixelcnn.store.data``, say) stays cheap. (Training
is ``px.train_model``: ``pixelcnn.training.trainer`` is the training engine's module.)
"""

from __future__ import annotations

from typing import Any

_API = ("shipped_models", "load_model", "random_model", "load_data", "sample", "show", "bits_per_dim",
        "bits_per_value", "receptive_field", "field_picture", "curves_figure", "train_model", "set_interactive_threads")

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'pixelcnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
