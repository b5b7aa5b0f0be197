"""How to train: the settings, their limits and presets, and the config files a run starts from."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models import PixelCNNConfig
from ..options import check_fields, option
from ..store.files import atomic_write, read_json
from ..store.rundir import read_run_config


ACCELERATOR_LOSS_EVERY = 25


MAX_STEPS = 1_000_000


MAX_EPOCHS = 1_000


MAX_BATCH = 4_096


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The budget is ``steps`` if given, else ``epochs`` (1 if neither and no ``minutes``);
    ``minutes`` caps either, or alone ends the run by the clock.

    ``amp`` runs forward and backward in bfloat16 autocast where that is fast
    (CUDA, and CPUs with native bfloat16: AVX-512 BF16 or AMX; ignored
    elsewhere); evaluation always runs in float32. ``compile`` wraps the model
    in ``torch.compile``.
    """

    epochs: int | None = option(None, "budget in epochs (1 if neither this nor --steps)", low=1, high=MAX_EPOCHS)
    steps: int | None = option(None, "budget in optimizer steps", low=1, high=MAX_STEPS)
    minutes: float | None = option(None, "budget in minutes of wall clock: training stops when they are up, "
                                         "then validates, tests and saves; the cosine schedule follows the time",
                                   above=0, high=100_000)
    batch_size: int = option(128, "images per optimizer step, over all processes under torchrun", low=1,
                             high=MAX_BATCH)
    lr: float = option(1e-3, "Adam learning rate", above=0, high=1)
    seed: int = option(0, "seed for initialisation and batch order", low=0, high=2**31 - 1)
    eval_every: int | None = option(None, "also validate every N steps", low=1, high=MAX_STEPS)
    train_limit: int | None = option(None, "train on the first N training images only", low=1, high=10_000_000)
    val_limit: int | None = option(None, "validate on the first N validation images only", low=1, high=10_000_000)
    test_limit: int | None = option(None, "test on the first N test images only (the run's result then says "
                                          "so; `evaluate --split test` scores all 10,000 afterwards)", low=1,
                                    high=10_000_000)
    grad_clip: float | None = option(None, "clip the gradient norm to this value", above=0)
    lr_schedule: str = option("constant", "constant, or cosine decay to 0 over the budget", choices=LR_SCHEDULES)
    amp: bool = option(False, "bfloat16 autocast for forward and backward where the device has fast "
                              "bfloat16 (CUDA, CPUs with AVX-512 BF16 or AMX); ignored elsewhere")
    compile: bool = option(False, "wrap the model in torch.compile")
    loss_every: int | None = option(None, "read the training loss back from the device every N steps, writing "
                                          "their metrics lines then (default: every step on the CPU, every "
                                          f"{ACCELERATOR_LOSS_EVERY} on an accelerator, which then never waits "
                                          "for a step to finish)", low=1, high=10_000)
    checkpoint_seconds: float = option(120.0, "save a resumable checkpoint at least this often, in minutes",
                                       above=0, flag="--checkpoint-minutes", scale=60.0)
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda or mps")
    label_dropout: float = option(0.1, "share of training images a conditional model is shown without their "
                                       "label, so that it also learns to draw with none (and guidance has "
                                       "an unconditional half)", low=0, high=1)
    recolor: bool = option(False, "recolor each training batch: permute each image's colour channels and flip "
                                  "some (v -> 3 - v), maps under which colored MNIST's distribution is "
                                  "unchanged (see pixelcnn.training.recolor), so the model sees more distinct "
                                  "images of the same distribution")
    ema_decay: float = option(0.0, "also keep an exponential moving average of the weights (Polyak averaging) "
                                   "with this decay, e.g. 0.999: validated and tested beside the raw weights and "
                                   "saved in the checkpoint beside them (evaluate --weights average); 0 for none",
                              low=0, high=0.99999)
    live_samples: int = option(16, "samples drawn (seed 0) at every validation, kept in the run folder's live/ "
                                   "and shown as the run trains; 0 for none", low=0, high=64)
    init_from: str | None = option(None, "start from the weights of this checkpoint (same kind and size); a "
                                         "conditional model may start from its unconditional twin, its label "
                                         "tables at zero, so it begins drawing what the twin drew; a pixelcnn or "
                                         "rgb model from an unconditional one with fewer blocks, its extra "
                                         "blocks starting as identities")

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def step_budget(self, steps_per_epoch: int) -> int | None:
        """The optimizer steps this budget allows, or None when only ``minutes`` bound it (the clock ends
        the run)."""
        if self.steps or self.epochs or not self.minutes:
            return self.steps or (self.epochs or 1) * steps_per_epoch
        return None

    def with_budget(self, **overrides: Any) -> "TrainConfig":
        """This config with ``overrides`` applied; a budget among them (epochs, steps or minutes) replaces
        this config's budget instead of combining with it."""
        if any(name in overrides for name in BUDGETS):
            return replace(self, **{**dict.fromkeys(BUDGETS), **overrides})
        return replace(self, **overrides)


BUDGETS = ("epochs", "steps", "minutes")


# What a preset brings to training besides its model, under the settings a user gives.
# ``live``: the best validation bits/dim after five minutes on two CPU cores (the README's "Five minutes
# on two CPU cores" has the table of what was tried).
PRESET_TRAINING: dict[str, dict[str, Any]] = {
    "live": dict(minutes=5.0, batch_size=64, lr=1e-2, lr_schedule="cosine", grad_clip=1.0, amp=True,
                 eval_every=200, val_limit=1000, test_limit=2000),
}


def preset_train_config(preset: str | None) -> TrainConfig:
    """The training settings a preset starts from (the defaults for a preset without its own)."""
    return TrainConfig(**PRESET_TRAINING.get(preset or "", {}))


def read_config_file(path: str | Path) -> tuple[PixelCNNConfig, TrainConfig]:
    """The model and training settings of a ``config.json`` (as a run folder or the dashboard writes it),
    each checked; a one-line ConfigError for a file that is missing, unreadable or invalid."""
    stored = read_json(path)
    if not isinstance(stored, dict) or not isinstance(stored.get("model"), dict) or \
            not isinstance(stored.get("train"), dict):
        raise ConfigError(f"{path}: not a run config (a JSON object with 'model' and 'train' settings)")
    unknown = sorted(set(stored["train"]) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"{path}: unknown training setting {', '.join(map(repr, unknown))}; the settings are "
                          f"{', '.join(f.name for f in fields(TrainConfig))}")
    try:
        return PixelCNNConfig.from_dict(stored["model"]), TrainConfig.from_dict(stored["train"])
    except TypeError as err:
        raise ConfigError(f"{path}: invalid settings ({err})") from None


def write_config_file(path: Path, model: PixelCNNConfig, config: TrainConfig) -> None:
    """Write the settings a run starts from, atomically (what :func:`read_config_file` reads)."""
    atomic_write(Path(path), lambda f: f.write(json.dumps(
        {"model": model.to_dict(), "train": config.to_dict()}, indent=2).encode()))


def resume_config(run_dir: str | Path, overrides: dict[str, Any]) -> TrainConfig:
    """The stored training config of a run, with ``overrides`` applied; a new budget replaces the old one."""
    stored = read_run_config(run_dir).get("train")
    base = TrainConfig.from_dict(stored) if isinstance(stored, dict) else TrainConfig()
    return base.with_budget(**overrides)


def train_command(run_dir: str | Path, *options: str) -> list[str]:
    """The command line of a training job into ``run_dir`` with this Python: ``python -m pixelcnn train
    --out RUN_DIR OPTIONS...`` (the one place it is spelled, for the dashboard's jobs and the recipes)."""
    return [sys.executable, "-m", "pixelcnn", "train", "--out", str(run_dir), *options]
