"""Where a run starts from: the folder checked before it is written, its stored model, another run's weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..errors import ConfigError
from ..models import PixelCNNConfig, kind_of, load_twin_weights
from ..store.checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..store.rundir import is_run_folder, read_run_config


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run that saved weights, or to resume one that has neither weights nor config.

    A folder whose run died before its first checkpoint holds nothing worth keeping: it can be
    started over, or resumed, which restarts it from its stored ``config.json``.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file; choose a folder for the run")
    if run_dir.is_dir() and not is_run_folder(run_dir) and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} holds other files and no run; choose a new or empty folder for the run")
    has_checkpoint = (run_dir / CHECKPOINT_NAME).exists()
    if resume and not has_checkpoint and not stored_model_config(run_dir):
        raise ConfigError(f"{run_dir} has no checkpoint to resume; start it without --resume")
    if not resume and has_checkpoint:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose a new folder")


def stored_model_config(run_dir: Path) -> PixelCNNConfig | None:
    """The model config in a run folder's ``config.json``, or None if it has no valid one."""
    stored = read_run_config(run_dir).get("model")
    try:
        return PixelCNNConfig.from_dict(stored) if isinstance(stored, dict) else None
    except (ConfigError, TypeError):
        return None


def warm_start(model: torch.nn.Module, model_config: PixelCNNConfig, path: Path) -> None:
    """Load the weights of the checkpoint at ``path`` into a fresh ``model`` of ``model_config``.

    The source must be the same architecture; it may lack the label tables (an unconditional twin of a
    conditional model), which then stay at zero, so the model starts out computing what the source computes
    and training adds what the label says. An unconditional source may also have fewer blocks: the model's
    extra blocks then start as identities (:meth:`~pixelcnn.models.ModelKind.deepen`), so a deeper model
    starts from a trained shallower one. A ConfigError (one line) for anything else.
    """
    source = load_checkpoint(path)
    deeper = source.config.n_blocks < model_config.n_blocks and not source.config.classes
    same = replace(source.config, classes=model_config.classes, dropout=model_config.dropout,
                   n_blocks=model_config.n_blocks if deeper else source.config.n_blocks)
    if same != model_config or source.config.classes not in (0, model_config.classes):
        raise ConfigError(f"{path} holds a {source.config.kind} model of width {source.config.hidden}, "
                          f"{source.config.n_blocks} blocks and {source.config.classes} classes; --init-from needs "
                          f"the model being trained: {model_config.kind}, width {model_config.hidden}, "
                          f"{model_config.n_blocks} blocks (or fewer, unconditional), kernels "
                          f"{model_config.first_kernel}/{model_config.block_kernel}, 0 or {model_config.classes} "
                          f"classes")
    state = source.model.state_dict()
    fits = kind_of(model_config).deepen(model, state, source.config.n_blocks) if deeper else \
        load_twin_weights(model, state)
    if not fits:
        raise ConfigError(f"{path}: its weights do not fit the model being trained; check --init-from")
