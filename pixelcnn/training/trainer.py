"""The training engine: steps, evaluation in bits/dim, metric events, stop and resume.

One call, :func:`train`, runs a whole training job into a run folder:

    RUN/config.json     model and training config, data spec
    RUN/metrics.jsonl   one event a line (see :mod:`pixelcnn.store.metrics`)
    RUN/checkpoint.pt   weights, optimizer, step: enough to resume exactly

The batch order is a pure function of (seed, epoch), so a resumed run sees
exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from .averaging import WeightAverage
from ..store.checkpoint import CHECKPOINT_NAME, atomic_write, check_trainable, load_checkpoint, save_checkpoint
from ..errors import CheckpointError, ConfigError, ModelError
from ..store.files import read_json
from ..store.metrics import METRICS_NAME, append_event, read_events, rewrite_events
from ..options import check_fields, option
from ..models import PixelCNNConfig, bits_per_dim, build_model, load_twin_weights
from . import distributed
from ..runtime import autocast, micro_batch_size
from ..sampling import sample
from ..figures import image_grid, save_png

Callback = Callable[[dict[str, Any]], None]
CONFIG_NAME = "config.json"
STOP_NAME = "stop-requested"
LIVE_DIR = "live"
MIN_SAVE_SECONDS = 10.0
LIVE_DRAWS = 6  # live-sample strips a time-budgeted run draws at least, validations or not

ACCELERATOR_LOSS_EVERY = 25
MAX_STEPS = 1_000_000
MAX_EPOCHS = 1_000
MAX_BATCH = 4_096
LR_SCHEDULES = ("constant", "cosine")


TIME_WARMUP = 0.03  # of a time budget: Adam's first steps at full rate are the noisiest of a short run


def learning_rate(base: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate for the step after ``step`` steps: constant, or cosine-decayed to 0 over the run."""
    return learning_rate_at(base, schedule, min(step, total_steps) / total_steps)


def learning_rate_at(base: float, schedule: str, progress: float, warmup: float = 0.0) -> float:
    """The learning rate at ``progress`` (0 to 1) through a run's budget: constant, or a linear warm-up over
    the first ``warmup`` of it, then cosine decay to 0 at the end."""
    progress = min(max(progress, 0.0), 1.0)
    if schedule != "cosine":
        return base
    if progress < warmup:
        return base * (progress + 1e-3) / warmup
    return base * 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))


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
    ema_decay: float = option(0.0, "also keep an exponential moving average of the weights (Polyak averaging) "
                                   "with this decay, e.g. 0.999: validated and tested beside the raw weights and "
                                   "saved in the checkpoint beside them (evaluate --weights average); 0 for none",
                              low=0, high=0.99999)
    live_samples: int = option(16, "samples drawn (seed 0) at every validation, kept in the run folder's live/ "
                                   "and shown as the run trains; 0 for none", low=0, high=64)
    init_from: str | None = option(None, "start from the weights of this checkpoint (same kind and size); a "
                                         "conditional model may start from its unconditional twin, its label "
                                         "tables at zero, so it begins drawing what the twin drew")

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
                 eval_every=200, val_limit=1000),
}


def preset_train_config(preset: str | None) -> TrainConfig:
    """The training settings a preset starts from (the defaults for a preset without its own)."""
    return TrainConfig(**PRESET_TRAINING.get(preset or "", {}))


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: np.ndarray | torch.Tensor, batch_size: int | None = None,
             device: torch.device | str | None = None, labels: np.ndarray | torch.Tensor | None = None) -> float:
    """Mean bits/dim of ``model`` over images (N, 28, 28, 3) uint8 (or (N, 3, 28, 28) tensors).

    A conditional model is scored given ``labels`` (N,), or shown "no label" without them.

    ``batch_size`` defaults to 256 on an accelerator and, on the CPU, to
    :func:`~pixelcnn.runtime.micro_batch_size` (64 for ``paper``), whose
    activations the tuned allocator reuses: 2.4x faster than 256 there.
    """
    if device is None:
        device = next(model.parameters()).device
    if torch.device(device).type == "cpu":
        cfg = model.config
        batch_size = batch_size or micro_batch_size(256, cfg.hidden, cfg.image_size)
    batch_size = batch_size or 256
    x_all = to_tensor(images) if isinstance(images, np.ndarray) else images
    y_all = None if labels is None else torch.as_tensor(np.array(labels, dtype=np.int64))  # a copy: may be read-only
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(x_all), batch_size):
        x = x_all[start:start + batch_size].to(device).long()
        y = None if y_all is None else y_all[start:start + batch_size].to(device)
        total += bits_per_dim(model(x) if y is None else model(x, y), x).item() * len(x)
        count += len(x)
    model.train(was_training)
    value = total / max(count, 1)
    if not math.isfinite(value):
        raise ModelError(f"the model scores {value} bits/dim: its outputs overflow (weights too large?); "
                         f"retrain it or use another checkpoint")
    return value


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 numpy -> (N, C, H, W) uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def batch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the training set used in ``epoch``: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, micro: int,
               device: torch.device, grad_clip: float | None = None,
               average: Callable[[float], float] = lambda loss: loss, amp: bool = False,
               labels: torch.Tensor | None = None) -> float:
    """One optimizer step on ``batch`` (B, C, H, W) uint8, accumulating gradients over slices of ``micro``;
    a conditional model gets ``labels`` (B,).

    ``model`` may be wrapped in DistributedDataParallel: gradients are then
    synchronised once, on the last slice, and ``average`` turns this rank's loss
    into the mean over ranks. Returns that mean bits/dim. A non-finite loss
    skips the update (on every rank alike), so the weights stay as they were.
    """
    loss_value = average(float(backward_pass(model, optimizer, batch, micro, device, amp, labels)) / len(batch))
    if math.isfinite(loss_value):
        update(model, optimizer, grad_clip)
    return loss_value


def queued_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, micro: int,
                device: torch.device, grad_clip: float | None = None, amp: bool = False,
                labels: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`train_step` without reading the loss back: the step is queued on the device and its bits/dim
    returned as the images' bits/dim summed, a 0-d tensor on it, so an accelerator never waits for the host.
    The update is made whatever the loss; the caller reads the losses back before it uses the weights (see
    ``TrainingRun.read_losses``).
    """
    loss = backward_pass(model, optimizer, batch, micro, device, amp, labels)
    update(model, optimizer, grad_clip)
    return loss


def backward_pass(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, micro: int,
                  device: torch.device, amp: bool = False, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The gradients of ``batch``'s mean bits/dim, accumulated over slices of ``micro``; the images' bits/dim
    summed, a 0-d tensor on ``device`` (nothing is read back; the host divides, in float64)."""
    optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=device)
    parts = batch.split(micro)
    label_parts = labels.split(micro) if labels is not None else [None] * len(parts)
    for i, (part, part_labels) in enumerate(zip(parts, label_parts)):
        x = part.to(device, non_blocking=True).long()
        y = None if part_labels is None else part_labels.to(device)
        last = i == len(parts) - 1
        with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync(), \
                autocast(device, amp):
            loss = bits_per_dim((model(x) if y is None else model(x, y)).float(), x)
            (loss * (len(part) / len(batch))).backward()
        loss_sum += loss.detach() * len(part)
    return loss_sum


def update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
    """Clip the gradients' norm to ``grad_clip`` (if set) and take the optimizer's step."""
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused kernel where PyTorch has one (CPU and CUDA)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))


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


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run: its config, metrics or checkpoint."""
    return any((folder / name).exists() for name in (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME))


def stored_model_config(run_dir: Path) -> PixelCNNConfig | None:
    """The model config in a run folder's ``config.json``, or None if it has no valid one."""
    stored = read_run_config(run_dir).get("model")
    try:
        return PixelCNNConfig.from_dict(stored) if isinstance(stored, dict) else None
    except (ConfigError, TypeError):
        return None


def stop_requested(run_dir: Path) -> bool:
    """Whether someone asked this run to stop through its folder (see :func:`request_stop`)."""
    return (Path(run_dir) / STOP_NAME).exists()


def request_stop(run_dir: Path) -> None:
    """Ask the run training in ``run_dir`` to save and stop at its next step.

    A file, not only a signal: a process that has not yet installed its signal
    handler (Python is still importing torch) still sees it at its first step.
    """
    (Path(run_dir) / STOP_NAME).touch()


def train(run_dir: str | Path, model_config: PixelCNNConfig, config: TrainConfig,
          data: dict[str, np.ndarray], *, resume: bool = False, callback: Callback | None = None,
          stop: threading.Event | None = None, data_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a PixelCNN into ``run_dir`` and return its summary.

    ``data`` holds ``train``, ``val`` and ``test`` arrays (N, 28, 28, 3) uint8, and for a conditional model
    their labels as ``train_labels``, ``val_labels`` and ``test_labels`` (N,).
    Every event goes to ``metrics.jsonl`` and to ``callback``. Setting ``stop``
    ends the run after the current step with a checkpoint. On resume the model
    config is the checkpoint's; ``config`` may extend the budget.
    The summary's ``status`` is ``finished``, ``stopped`` or ``failed`` (with ``message``).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    world, device = distributed.setup(config.device)
    try:
        distributed.barrier(world)  # every rank has checked the folder before rank 0 writes to it
        job = TrainingRun(run_dir, config, data, world, device, callback=callback, stop=stop, data_spec=data_spec)
        job.restore(model_config, resume)
        return job.run()
    finally:
        distributed.teardown(world)


def warm_start(model: torch.nn.Module, model_config: PixelCNNConfig, path: Path) -> None:
    """Load the weights of the checkpoint at ``path`` into a fresh ``model`` of ``model_config``.

    The source must be the same architecture; it may lack the label tables (an unconditional twin of a
    conditional model), which then stay at zero, so the model starts out computing what the source computes
    and training adds what the label says. A ConfigError (one line) for anything else.
    """
    source = load_checkpoint(path)
    if replace(source.config, classes=model_config.classes) != model_config or \
            source.config.classes not in (0, model_config.classes):
        raise ConfigError(f"{path} holds a {source.config.kind} model of width {source.config.hidden}, "
                          f"{source.config.n_blocks} blocks and {source.config.classes} classes; --init-from needs "
                          f"the model being trained: {model_config.kind}, width {model_config.hidden}, "
                          f"{model_config.n_blocks} blocks, kernels {model_config.first_kernel}/"
                          f"{model_config.block_kernel}, 0 or {model_config.classes} classes")
    if not load_twin_weights(model, source.model.state_dict()):
        raise ConfigError(f"{path}: its weights do not fit the model being trained; check --init-from")


class NonFiniteLoss(Exception):
    """A training step's loss was NaN or infinite: the run ends, its last checkpoint kept."""

    def __init__(self, loss: float, step: int):
        super().__init__(f"loss {loss} at step {step}")
        self.loss, self.step = loss, step


class TrainingRun:
    """One training job in a run folder: :meth:`restore`, then :meth:`run`, which steps, validates,
    saves and finishes. Under torchrun every rank holds one; rank 0 alone writes the folder.

    Its state is what a checkpoint holds (the model, the optimizer, the step, the
    wall clock so far and the best validation score), so a stopped or killed run
    resumes exactly: the batch order is a pure function of (seed, epoch).
    """

    def __init__(self, run_dir: Path, config: TrainConfig, data: dict[str, np.ndarray],
                 world: distributed.Distributed, device: torch.device, *, callback: Callback | None = None,
                 stop: threading.Event | None = None, data_spec: dict[str, Any] | None = None):
        self.dir, self.config, self.world, self.device = run_dir, config, world, device
        self.callback, self.stop, self.data_spec = callback, stop, data_spec or {}
        if world.is_main:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"cannot create the run folder {run_dir} ({err.strerror})") from None
        self.local_batch = distributed.local_batch_size(config.batch_size, world)
        self.train_x = to_tensor(data["train"][: config.train_limit])
        if device.type == "cuda":  # the training set lives on the device, and each batch is drawn there
            self.train_x = self.train_x.to(device)
        self.val_x = to_tensor(data["val"][: config.val_limit])
        self.test_x = to_tensor(data["test"])
        self.labels = {split: torch.from_numpy(np.asarray(data[f"{split}_labels"][: limit]).astype(np.int64))
                       for split, limit in (("train", config.train_limit), ("val", config.val_limit), ("test", None))
                       if f"{split}_labels" in data}
        if len(self.train_x) == 0:
            raise ConfigError("the training set is empty; check --train-limit and the data")
        self.steps_per_epoch = math.ceil(len(self.train_x) / config.batch_size)
        self.budget_seconds = config.minutes * 60 if config.minutes else None
        budget = config.step_budget(self.steps_per_epoch)
        self.clock_only = budget is None  # then the clock ends the run, and the schedule follows the clock
        self.total_steps = MAX_STEPS if budget is None else budget
        self.step, self.elapsed_before, self.best_val = 0, 0.0, math.inf
        self.best_average_val = math.inf
        self.average: WeightAverage | None = None  # the weights' moving average, with --ema-decay
        self.last_live = 0.0  # the clock at the last live samples
        self.resumed = False
        # Steps queued on the device whose losses are not read back yet (their events wait with them).
        self.loss_every = 1 if world.active else \
            config.loss_every or (1 if device.type == "cpu" else ACCELERATOR_LOSS_EVERY)
        self.pending: list[dict[str, Any]] = []
        self.window_start = (0.0, 0.0)  # the clock of the run and of the process when the first pending step began
        self._t0 = time.perf_counter()

    # --- state -------------------------------------------------------------------------------------

    def restore(self, model_config: PixelCNNConfig, resume: bool) -> None:
        """A fresh model of ``model_config``, or, with ``resume``, the folder's checkpoint (a folder whose
        run died before its first checkpoint restarts from its stored config instead)."""
        checkpoint_path = self.dir / CHECKPOINT_NAME
        if resume and not checkpoint_path.exists():
            model_config, resume = stored_model_config(self.dir), False
        check_trainable(model_config)
        torch.manual_seed(self.config.seed)
        model, optimizer_state, average_state = build_model(model_config), None, None
        if not resume and self.config.init_from:
            warm_start(model, model_config, Path(self.config.init_from))
        if resume:
            ckpt = load_checkpoint(checkpoint_path)
            model, model_config = ckpt.model, ckpt.config
            self.step = int(ckpt.train.get("step", 0))
            self.elapsed_before = float(ckpt.train.get("elapsed", 0.0))
            if self.out_of_time():
                raise ConfigError(f"{self.dir} has trained its {self.config.minutes:g} minutes; to train on, "
                                  f"resume with a larger --minutes")
            if self.step >= self.total_steps:
                raise ConfigError(f"{self.dir} has already trained {self.step} of {self.total_steps} steps; to "
                                  f"train on, resume with a larger budget (--steps or --epochs)")
            self.best_val = float(ckpt.summary.get("best_val_bits_per_dim") or math.inf)
            self.best_average_val = float(ckpt.summary.get("best_average_val_bits_per_dim") or math.inf)
            average_state = ckpt.average
            optimizer_state = ckpt.optimizer
            if optimizer_state is None:
                raise CheckpointError(f"{checkpoint_path} holds no optimizer state, so it cannot be resumed")
        if self.world.is_main:  # events past the checkpoint never happened, as far as the record goes
            kept = [e for e in read_events(self.dir / METRICS_NAME) if e.get("step", 0) <= self.step
                    and e.get("event") not in ("end", "test")] if resume else []
            rewrite_events(self.dir / METRICS_NAME, kept)
        self.resumed, self.model_config = resume, model_config
        self.check_labels(model_config.classes)
        self.model = model.to(self.device).train()
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        if self.config.ema_decay:  # a resume that adds averaging starts the average at the weights it has
            self.average = WeightAverage(self.model, self.config.ema_decay)
            if average_state is not None:
                self.average.load_state_dict(average_state)
        self.trainable = DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None) \
            if self.world.active else self.model
        if self.config.compile:
            self.trainable = torch.compile(self.trainable)
        self.optimizer = make_optimizer(self.model, self.config.lr, self.device)
        if optimizer_state is not None:
            try:
                self.optimizer.load_state_dict(optimizer_state)
            except (ValueError, KeyError, RuntimeError):
                raise CheckpointError(f"{checkpoint_path}: optimizer state does not fit the model") from None
        # Slicing pays on CPU caches only; an accelerator takes the whole batch at once.
        self.micro = micro_batch_size(self.local_batch, model_config.hidden, model_config.image_size) \
            if self.device.type == "cpu" else self.local_batch

    def check_labels(self, classes: int) -> None:
        """A conditional model needs a label for every image, each below ``classes``."""
        if not classes:
            self.labels = {}
            return
        if set(self.labels) != {"train", "val", "test"}:
            raise ConfigError(f"a conditional model (classes {classes}) trains on labelled images, and this data "
                              f"has no labels (the course pickle has none): use the MNIST IDX files (--data-dir)")
        for split, labels in self.labels.items():
            images = {"train": self.train_x, "val": self.val_x, "test": self.test_x}[split]
            if len(labels) != len(images) or (len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes):
                raise ConfigError(f"the {split} labels must be {len(images)} integers in [0, {classes - 1}]; "
                                  f"check the label files")

    def split_labels(self, split: str) -> torch.Tensor | None:
        """The true labels of a split for a conditional model, None for an unconditional one."""
        return self.labels.get(split)

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._t0

    def out_of_time(self) -> bool:
        return self.budget_seconds is not None and self.elapsed() >= self.budget_seconds

    def save_interval(self) -> float:
        """Seconds between checkpoints: ``checkpoint_seconds``, or a twentieth of a time budget if that is
        shorter (10 s at least), so a kill in a five-minute lecture run costs seconds, not the run so far."""
        if self.budget_seconds is None:
            return self.config.checkpoint_seconds
        return min(self.config.checkpoint_seconds, max(MIN_SAVE_SECONDS, self.budget_seconds / 20))

    def current_lr(self) -> float:
        """The schedule at this moment: through the steps, or, with a time budget, through the time (so a
        budget's schedule fits the steps the measured speed reaches, and a resumed run continues it)."""
        if self.clock_only:
            return learning_rate_at(self.config.lr, self.config.lr_schedule, self.elapsed() / self.budget_seconds,
                                    TIME_WARMUP)
        return learning_rate(self.config.lr, self.config.lr_schedule, self.step, self.total_steps)

    def summary(self, status: str, **extra: Any) -> dict[str, Any]:
        finite = lambda value: value if math.isfinite(value) else None  # noqa: E731
        averaged = {"best_average_val_bits_per_dim": finite(self.best_average_val)} if self.average else {}
        return {"status": status, "step": self.step, "total_steps": self.total_steps,
                "epochs": self.step / self.steps_per_epoch,
                "best_val_bits_per_dim": finite(self.best_val), **averaged,
                "elapsed": self.elapsed(), "train_images": len(self.train_x), **extra}

    # --- what the folder receives ------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """One event to ``metrics.jsonl`` and the callback (rank 0 only)."""
        if not self.world.is_main:
            return
        if event["event"] in ("start", "end"):
            event["time"] = time.time()
        append_event(self.dir / METRICS_NAME, event)
        if self.callback:
            self.callback(event)

    def write_config(self) -> None:
        if self.world.is_main:
            atomic_write(self.dir / CONFIG_NAME, lambda f: f.write(json.dumps({
                "model": self.model_config.to_dict(), "train": self.config.to_dict(), "data": self.data_spec,
                "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                "processes": self.world.world_size,
            }, indent=2).encode()))

    def save(self, status: str, **extra: Any) -> None:
        self.read_losses()
        if not self.world.is_main:
            return
        save_checkpoint(self.dir / CHECKPOINT_NAME, self.model, summary=self.summary(status, **extra),
                        data=self.data_spec, optimizer=self.optimizer.state_dict(),
                        average=self.average.state_dict() if self.average else None,
                        train={**self.config.to_dict(), "step": self.step, "elapsed": self.elapsed()})
        self.emit({"event": "checkpoint", "step": self.step, "elapsed": self.elapsed()})

    # --- the steps of a run ------------------------------------------------------------------------

    def stopping(self) -> bool:
        """Whether any rank was asked to stop (a signal, or the folder's stop file)."""
        asked = (self.stop is not None and self.stop.is_set()) or stop_requested(self.dir)
        return distributed.any_rank(asked, self.world)

    def train_step(self, batches: "_BatchOrder", average: Callable[[float], float]) -> None:
        """One optimizer step on the next batch, and its event. With ``loss_every`` above 1 the step is only
        queued, and its loss read back with the others every ``loss_every`` steps (:meth:`read_losses`).
        A non-finite loss raises :class:`NonFiniteLoss` once it is read."""
        batch, labels = batches.batch(self.step)
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if not self.pending:
            self.window_start = (self.elapsed(), time.perf_counter())
        event = {"event": "train", "step": self.step + 1, "epoch": (self.step + 1) / self.steps_per_epoch,
                 "lr": lr, "images": len(batch) * self.world.world_size}
        if self.loss_every == 1:
            loss = train_step(self.trainable, self.optimizer, batch, self.micro, self.device, self.config.grad_clip,
                              average, self.config.amp, labels)
            if not math.isfinite(loss):
                raise NonFiniteLoss(loss, self.step + 1)
            event["bits_per_dim"] = loss
        else:
            event["loss_sum"] = queued_step(self.trainable, self.optimizer, batch, self.micro, self.device,
                                            self.config.grad_clip, self.config.amp, labels)
            event["batch"] = len(batch)
        if self.average:
            self.average.update(self.model, self.step)
        self.step += 1
        event["elapsed"] = self.elapsed()
        self.pending.append(event)
        if len(self.pending) >= self.loss_every:
            self.read_losses()

    def read_losses(self) -> None:
        """Read the queued steps' losses back in one transfer and write their events, each with the window's
        images/s. Called every ``loss_every`` steps and before anything uses the weights (validation, a
        checkpoint, samples, the end), so what is saved never follows an unseen non-finite loss."""
        if not self.pending:
            return
        queued = [event for event in self.pending if "loss_sum" in event]
        if queued:
            sums = torch.stack([event.pop("loss_sum") for event in queued]).tolist()
            for event, total in zip(queued, sums):
                event["bits_per_dim"] = total / event.pop("batch")
        seconds = max(time.perf_counter() - self.window_start[1], 1e-9)
        images_per_s = sum(event.pop("images") for event in self.pending) / seconds
        pending, self.pending = self.pending, []
        for event in pending:
            if not math.isfinite(event["bits_per_dim"]):
                raise NonFiniteLoss(event["bits_per_dim"], event["step"])
            self.emit({**event, "images_per_s": images_per_s})

    def validate(self) -> None:
        self.read_losses()
        if not self.world.is_main:
            return  # the other ranks wait for rank 0 at their next collective
        value = evaluate(self.model, self.val_x, device=self.device, labels=self.split_labels("val"))
        self.best_val = min(self.best_val, value)
        averaged = {}
        if self.average:
            averaged["average_bits_per_dim"] = evaluate(self.average.model, self.val_x, device=self.device,
                                                        labels=self.split_labels("val"))
            self.best_average_val = min(self.best_average_val, averaged["average_bits_per_dim"])
        self.emit({"event": "val", "step": self.step, "epoch": self.step / self.steps_per_epoch,
                   "bits_per_dim": value, "elapsed": self.elapsed(), "n_images": len(self.val_x), **averaged})
        if self.config.live_samples:
            self.draw_live_samples()
        self.model.train()

    def draw_live_samples(self) -> None:
        """What the model draws now: ``live_samples`` images (seed 0, cached sampler) as a PNG strip in
        ``live/``, so the room watches blobs turn into strokes; the event records the seconds it took."""
        self.read_losses()
        start = time.perf_counter()
        self.last_live = self.elapsed()
        n, classes = self.config.live_samples, self.model_config.classes
        images = sample(self.model, n, seed=0, labels=np.arange(n) % classes if classes else None)
        name = f"{LIVE_DIR}/step-{self.step:07d}.png"
        (self.dir / LIVE_DIR).mkdir(exist_ok=True)
        save_png(image_grid(images, ncols=min(8, len(images))), self.dir / name)
        self.emit({"event": "samples", "step": self.step, "file": name, "n_images": len(images),
                   "seconds": time.perf_counter() - start, "elapsed": self.elapsed()})

    def live_samples_due(self) -> bool:
        """Whether a time-budgeted run should draw its live samples now, between validations: at least
        ``LIVE_DRAWS`` times over its budget, so a slow machine's five-minute run shows several strips."""
        return bool(self.world.is_main and self.config.live_samples and self.budget_seconds
                    and self.elapsed() - self.last_live >= self.budget_seconds / LIVE_DRAWS)

    def validates_now(self) -> bool:
        every = self.config.eval_every
        return self.step % self.steps_per_epoch == 0 or bool(every and self.step % every == 0)

    def test(self) -> dict[str, Any]:
        if not self.world.is_main:
            return {}
        value = evaluate(self.model, self.test_x, device=self.device, labels=self.split_labels("test"))
        extra = {}
        if self.model_config.classes:  # the same images shown no label: the model's unconditional reading
            extra["no_label_bits_per_dim"] = evaluate(self.model, self.test_x, device=self.device)
        if self.average:
            extra["average_bits_per_dim"] = evaluate(self.average.model, self.test_x, device=self.device,
                                                     labels=self.split_labels("test"))
        self.emit({"event": "test", "step": self.step, "bits_per_dim": value, "elapsed": self.elapsed(),
                   "n_images": len(self.test_x), **extra})
        return {"test_bits_per_dim": value, **{f"test_{k}": v for k, v in extra.items()}}

    def finish(self, status: str, **extra: Any) -> dict[str, Any]:
        checksums = distributed.replica_checksums(self.model, self.world)
        if len(set(checksums)) > 1:
            status, extra = "failed", {**extra, "message": f"the {self.world.world_size} processes ended with "
                                                          f"different weights ({checksums}); do not use this run"}
        if self.world.active:
            extra["replica_checksums"] = checksums
        self.emit({"event": "end", "status": status, "step": self.step, "elapsed": self.elapsed(), **extra})
        return self.summary(status, **extra)

    def run(self) -> dict[str, Any]:
        """Train to the budget, then validate, test and save; a stop or a non-finite loss ends it early."""
        try:
            self.write_config()
            self.emit({"event": "start", "step": self.step, "total_steps": self.total_steps,
                       "budget_seconds": self.budget_seconds,
                       "steps_per_epoch": self.steps_per_epoch, "resumed": self.resumed, "device": str(self.device),
                       "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                       else "cpu", "model": self.model_config.to_dict(), "train": self.config.to_dict(),
                       "elapsed": self.elapsed(), "processes": self.world.world_size})
            if not self.resumed:
                self.save("running")  # from the first moment on, a killed run can be resumed
            last_save = time.monotonic()
            batches = _BatchOrder(self.train_x, self.config.seed, self.steps_per_epoch, self.local_batch, self.world,
                                  self.split_labels("train"), self.model_config.classes, self.config.label_dropout)
            average = (lambda loss: distributed.mean_and_any(loss, False, self.world)[0]) if self.world.active \
                else (lambda loss: loss)
            while self.step < self.total_steps and not self.out_of_time():
                if self.stopping():
                    self.save("stopped")
                    if self.world.is_main:
                        (self.dir / STOP_NAME).unlink(missing_ok=True)  # honoured: a resume must not see it
                    return self.finish("stopped")
                self.train_step(batches, average)
                if self.validates_now():
                    self.validate()
                    self.save("running")
                    last_save = time.monotonic()
                elif time.monotonic() - last_save > self.save_interval():
                    self.save("running")
                    last_save = time.monotonic()
                if self.live_samples_due():
                    self.draw_live_samples()
                    self.model.train()
            if not self.validates_now():
                self.validate()
            extra = self.test()
            self.save("finished", **extra)
            return self.finish("finished", **extra)
        except NonFiniteLoss as err:
            return self.finish("failed", message=f"loss became {err.loss} at step {err.step}; the run stopped and "
                               f"its last checkpoint is kept. Lower the learning rate or set --grad-clip")
        except OSError as err:
            return self._failed(f"could not write to {self.dir} ({err.strerror or err}); the run stopped, "
                                f"earlier files are intact")
        except (CheckpointError, ModelError) as err:
            return self._failed(f"{err}; the run stopped")

    def _failed(self, message: str) -> dict[str, Any]:
        """The end of a run that could not write its folder: the callback hears it, the summary says it."""
        if self.callback:
            self.callback({"event": "end", "status": "failed", "message": message})
        return self.summary("failed", message=message)


class _BatchOrder:
    """The batches of each epoch: a permutation that is a pure function of (seed, epoch), this rank's share.

    With ``labels``, each batch comes with its labels, and which images an epoch shows without their label
    (``dropout`` of them, as the "no label" index ``classes``) is a pure function of (seed, epoch) too.
    """

    def __init__(self, images: torch.Tensor, seed: int, steps_per_epoch: int, local_batch: int,
                 world: distributed.Distributed, labels: torch.Tensor | None = None, classes: int = 0,
                 dropout: float = 0.0):
        self.images, self.seed, self.steps_per_epoch = images, seed, steps_per_epoch
        self.local_batch, self.world = local_batch, world
        self.labels, self.classes, self.dropout = labels, classes, dropout
        self.epoch, self.order, self.epoch_labels = -1, None, None

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self.epoch:  # the order and the labels move to the images' device once an epoch
            order = distributed.local_order(batch_order(self.seed, epoch, len(self.images)), self.world)
            self.order = torch.from_numpy(order).to(self.images.device)
            self.epoch = epoch
            if self.labels is not None:
                hidden = np.random.default_rng([self.seed, epoch, 1]).random(len(self.labels)) < self.dropout
                self.epoch_labels = self.labels.masked_fill(torch.from_numpy(hidden), self.classes) \
                    .to(self.images.device)
        chosen = self.order[index * self.local_batch:(index + 1) * self.local_batch]
        return self.images[chosen], None if self.labels is None else self.epoch_labels[chosen]


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file holding an object, or {} if it is missing, unreadable, not a small regular file, nested
    too deeply, or holds anything else (see :mod:`pixelcnn.store.files`)."""
    try:
        value = read_json(path)
    except ConfigError:
        return {}
    return value if isinstance(value, dict) else {}


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``config.json``, or {} if it is missing or unreadable."""
    return read_json_object(Path(run_dir) / CONFIG_NAME)


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


