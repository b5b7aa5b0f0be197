"""The engine from a notebook: one obvious place for what a notebook user would otherwise import from
half a dozen modules. Every call returns numpy arrays, PIL images or plotly figures, which display inline
in Jupyter. ``import pixelcnn as px`` gives all of them (``px.load_model("paper")``, ``px.sample(...)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch.nn as nn

from .errors import ConfigError
from .paths import SHIPPED_DIR
from .store.checkpoint import CHECKPOINT_NAME, load_checkpoint


def shipped_models() -> list[str]:
    """The names of the models shipped in ``checkpoints/`` (each a folder with a ``checkpoint.pt``)."""
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / CHECKPOINT_NAME).is_file()) if SHIPPED_DIR.is_dir() else []


def load_model(name: str | Path) -> nn.Module:
    """A trained model in eval mode, on the CPU.

    Args:
        name: a shipped model's name (``"paper"``, see :func:`shipped_models`), a run folder, or a
            ``checkpoint.pt``.
    """
    path = Path(name)
    if not path.exists() and (SHIPPED_DIR / str(name) / CHECKPOINT_NAME).is_file():
        path = SHIPPED_DIR / str(name)
    if not path.exists():
        raise ConfigError(f"no model {name!r}: name a shipped one ({', '.join(shipped_models())}), a run folder "
                          f"or a checkpoint file")
    return load_checkpoint(path).model.eval()


def random_model(preset: str = "paper", seed: int = 0) -> nn.Module:
    """A model of a preset (``tiny``, ``live``, ``lecture``, ``paper``, ``rgb``, ``gated``) at its seeded
    random initialisation, in eval mode."""
    from .models import get_preset
    from .models import random_model as build

    return build(get_preset(preset), seed)


def load_data(data_dir: str | Path | None = None, labels: bool = False) -> dict[str, np.ndarray]:
    """Colored MNIST: ``train`` (55,000), ``val`` (5,000) and ``test`` (10,000), uint8 (N, 28, 28, 3) in
    0..3, from ``$PIXELCNN_DATA_DIR`` (else ``data/``), downloaded if missing. With ``labels``, also
    ``train_labels``, ``val_labels`` and ``test_labels`` (N,)."""
    from .store.data import load_colored_mnist, load_labels

    data = load_colored_mnist(data_dir)
    if labels:
        data.update({f"{split}_labels": y for split, y in load_labels(data_dir, required=True).items()})
    return data


def sample(model: nn.Module, n: int = 100, seed: int = 0, temperature: float = 1.0, digit: int | None = None,
           guidance: float = 0.0) -> np.ndarray:
    """``n`` samples, uint8 (n, H, W, C), from the cached sampler (each pixel from the pixels before it).

    Args:
        digit: for a class-conditional model, the digit to draw (None: any).
        guidance: classifier-free guidance weight w for ``digit`` (0: plain conditional sampling).
    """
    from .sampling import sample as draw

    return draw(model, n, seed=seed, temperature=temperature, labels=digit, guidance=guidance)


def show(images: np.ndarray, ncols: int = 10, scale: int = 3):
    """Images (N, H, W, 3) or one (H, W, 3), values 0..3, as one PIL image (a grid ``ncols`` wide)."""
    from PIL import Image

    from .figures import image_grid, upscale

    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    return Image.fromarray(upscale(image_grid(images, ncols=min(ncols, len(images))), scale))


def bits_per_dim(model: nn.Module, images: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of ``images`` (N, H, W, C) in bits per dimension (a uniform model
    scores 2.0); a conditional model given ``labels`` (N,)."""
    from .training.evaluate import evaluate

    return evaluate(model, images, labels=labels)


def bits_per_value(model: nn.Module, image: np.ndarray) -> np.ndarray:
    """-log2 p(value | what comes before it) of every value of one image: float32 (H, W, C)."""
    from .explain.pixels import bits_per_value as bits

    return bits(model, image)


def receptive_field(model: nn.Module, row: int = 14, col: int = 14, channel: int = 0, images: int = 4,
                    seed: int = 0) -> np.ndarray:
    """|d log p(x[row, col, channel]) / d x|, max over input channels, averaged over ``images`` random
    inputs: float (H, W). Exactly zero at (row, col) and after it, and in the blind spot."""
    from .explain.receptive import gradient_field

    cfg = model.config
    inputs = np.random.default_rng(seed).integers(0, cfg.levels, (images, cfg.image_size, cfg.image_size,
                                                                  cfg.channels))
    return gradient_field(model, inputs, row, col, channel)


def field_picture(field: np.ndarray, row: int = 14, col: int = 14, log: bool = True):
    """A receptive field (H, W) as a PIL image, the target pixel outlined in red (log brightness)."""
    from PIL import Image

    from .figures import field_image

    return Image.fromarray(field_image(field, row, col, log=log))


def curves_figure(run: str | Path, smoothing: float = 0.6):
    """Train and validation bits/dim of a run folder (or a shipped model's name) as a plotly figure."""
    from .figures import loss_figure
    from .store.metrics import METRICS_NAME, curves, read_events

    folder = Path(run) if Path(run).exists() else SHIPPED_DIR / str(run)
    events = read_events(folder / METRICS_NAME)
    if not events:
        raise ConfigError(f"{folder} has no {METRICS_NAME}: name a run folder or a shipped model")
    return loss_figure({folder.name: curves(events)}, smoothing=smoothing)


def train_model(out: str | Path, preset: str = "tiny", *, steps: int | None = None, minutes: float | None = None,
                progress: bool = True, **settings) -> dict:
    """Train a model of ``preset`` into the run folder ``out`` on colored MNIST and return its summary.

    Args:
        steps, minutes: the budget (``minutes`` ends it by the clock; the cosine schedule follows); neither
            keeps the preset's own (one epoch for a preset without one).
        progress: print a progress bar.
        settings: any other training setting of :class:`~pixelcnn.training.trainer.TrainConfig` (``batch_size``,
            ``lr``, ``lr_schedule``, ``eval_every``, ``val_limit``, ...).
    """
    from .cli.progress import ProgressBar
    from .models import get_preset
    from .training.config import preset_train_config
    from .training.trainer import train as run

    budget = {name: value for name, value in (("steps", steps), ("minutes", minutes)) if value is not None}
    config = preset_train_config(preset).with_budget(**budget, **settings)
    bar = ProgressBar() if progress else None

    def on_event(event: dict) -> None:
        if bar is not None and event["event"] == "train":
            done = event["step"] / steps if steps else event["elapsed"] / (60 * minutes) if minutes else 0.0
            bar.update(min(done, 1.0), f"step {event['step']}  train {event['bits_per_dim']:.4f} bits/dim")

    summary = run(out, get_preset(preset), config, load_data(), callback=on_event)
    if bar is not None:
        bar.close()
    return summary


def set_interactive_threads() -> None:
    """The process settings the dashboard and the interactive commands use: one intra-op thread, denormal
    floats flushed to zero (see :func:`pixelcnn.runtime.prepare_cpu`)."""
    from .runtime import prepare_cpu

    prepare_cpu(interactive=True)


__all__ = ["shipped_models", "load_model", "random_model", "load_data", "sample", "show", "bits_per_dim",
           "bits_per_value", "receptive_field", "field_picture", "curves_figure", "train_model",
           "set_interactive_threads"]
