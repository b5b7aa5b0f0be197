"""The training engine: steps, evaluation in bits/dim, metric events, stop and resume.

One call, :func:`train`, runs a whole training job into a run folder:

    RUN/config.json     model and training config, data spec
    RUN/metrics.jsonl   one event a line (see :mod:`pixelcnn.metrics`)
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

from .checkpoint import CHECKPOINT_NAME, atomic_write, load_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, ModelError
from .metrics import METRICS_NAME, append_event, read_events, rewrite_events
from .models import PixelCNNConfig, bits_per_dim, build_model
from . import distributed
from .runtime import micro_batch_size

Callback = Callable[[dict[str, Any]], None]
CONFIG_NAME = "config.json"
STOP_NAME = "stop-requested"

MAX_STEPS = 1_000_000
MAX_EPOCHS = 1_000
MAX_BATCH = 4_096
LR_SCHEDULES = ("constant", "cosine")


def learning_rate(base: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate for the step after ``step`` steps: constant, or cosine-decayed to 0 over the run."""
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return base


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The budget is ``steps`` if given, else ``epochs`` (1 if neither).

    ``amp`` runs forward and backward in bfloat16 autocast on CUDA (ignored
    elsewhere); ``compile`` wraps the model in ``torch.compile``.
    """

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    eval_every: int | None = None
    train_limit: int | None = None
    val_limit: int | None = None
    grad_clip: float | None = None
    lr_schedule: str = "constant"
    amp: bool = False
    compile: bool = False
    checkpoint_seconds: float = 120.0
    device: str = "auto"

    def __post_init__(self) -> None:
        def check_int(name: str, low: int, high: int, optional: bool = True) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name.replace('_', '-')} must be an integer in [{low}, {high}], got {value!r}")

        check_int("epochs", 1, MAX_EPOCHS)
        check_int("steps", 1, MAX_STEPS)
        check_int("batch_size", 1, MAX_BATCH, optional=False)
        check_int("seed", 0, 2**31 - 1, optional=False)
        check_int("eval_every", 1, MAX_STEPS)
        check_int("train_limit", 1, 10_000_000)
        check_int("val_limit", 1, 10_000_000)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise ConfigError(f"lr must be a number in (0, 1], got {self.lr!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ConfigError(f"grad-clip must be a positive number, got {self.grad_clip!r}")
        if not (math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds > 0):
            raise ConfigError(f"checkpoint interval must be positive, got {self.checkpoint_seconds!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@torch.inference_mode()
def evaluate(model: torch.nn.Module, images: np.ndarray | torch.Tensor, batch_size: int | None = None,
             device: torch.device | str | None = None) -> float:
    """Mean bits/dim of ``model`` over images (N, 28, 28, 3) uint8 (or (N, 3, 28, 28) tensors).

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
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(x_all), batch_size):
        x = x_all[start:start + batch_size].to(device).long()
        total += bits_per_dim(model(x), x).item() * len(x)
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
               average: Callable[[float], float] = lambda loss: loss, amp: bool = False) -> float:
    """One optimizer step on ``batch`` (B, C, H, W) uint8, accumulating gradients over slices of ``micro``.

    ``model`` may be wrapped in DistributedDataParallel: gradients are then
    synchronised once, on the last slice, and ``average`` turns this rank's loss
    into the mean over ranks. Returns that mean bits/dim. A non-finite loss
    skips the update (on every rank alike), so the weights stay as they were.
    """
    optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=device)
    parts = batch.split(micro)
    for i, part in enumerate(parts):
        x = part.to(device, non_blocking=True).long()
        last = i == len(parts) - 1
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" \
            else contextlib.nullcontext()
        with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync(), autocast:
            loss = bits_per_dim(model(x).float(), x)
            (loss * (len(part) / len(batch))).backward()
        loss_sum += loss.detach() * len(part)
    loss_value = average(float(loss_sum) / len(batch))
    if math.isfinite(loss_value):
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return loss_value


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused kernel where PyTorch has one (CPU and CUDA)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))


class _Run:
    """Where a training job's events go: ``metrics.jsonl`` (rank 0 only) and the callback."""

    def __init__(self, run_dir: Path, callback: Callback | None, writes: bool = True):
        self.dir = run_dir
        self.metrics = run_dir / METRICS_NAME
        self.callback = callback
        self.writes = writes

    def emit(self, event: dict[str, Any]) -> None:
        if not self.writes:
            return
        if event["event"] in ("start", "end"):
            event["time"] = time.time()
        append_event(self.metrics, event)
        if self.callback:
            self.callback(event)


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run that saved weights, or to resume one that has neither weights nor config.

    A folder whose run died before its first checkpoint holds nothing worth keeping: it can be
    started over, or resumed, which restarts it from its stored ``config.json``.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file; choose a folder for the run")
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

    ``data`` holds ``train``, ``val`` and ``test`` arrays (N, 28, 28, 3) uint8.
    Every event goes to ``metrics.jsonl`` and to ``callback``. Setting ``stop``
    ends the run after the current step with a checkpoint. On resume the model
    config is the checkpoint's; ``config`` may extend the budget.
    The summary's ``status`` is ``finished``, ``stopped`` or ``failed`` (with ``message``).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    world, device = distributed.setup(config.device)
    try:
        return _train(run_dir, model_config, config, data, world, device, resume=resume, callback=callback,
                      stop=stop, data_spec=data_spec)
    finally:
        distributed.teardown(world)


def _train(run_dir: Path, model_config: PixelCNNConfig, config: TrainConfig, data: dict[str, np.ndarray],
           world: distributed.Distributed, device: torch.device, *, resume: bool, callback: Callback | None,
           stop: threading.Event | None, data_spec: dict[str, Any] | None) -> dict[str, Any]:
    """:func:`train` once the process group (if any) is up; rank 0 alone writes the run folder."""
    local_batch = distributed.local_batch_size(config.batch_size, world)
    distributed.barrier(world)  # every rank has checked the folder before rank 0 writes to it
    if world.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create the run folder {run_dir} ({err.strerror})") from None
    torch.manual_seed(config.seed)

    train_x = to_tensor(data["train"][: config.train_limit])
    if device.type == "cuda":
        train_x = train_x.pin_memory()
    val_x = to_tensor(data["val"][: config.val_limit])
    test_x = to_tensor(data["test"])
    n = len(train_x)
    if n == 0:
        raise ConfigError("the training set is empty; check --train-limit and the data")
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = config.steps or (config.epochs or 1) * steps_per_epoch

    if resume and not (run_dir / CHECKPOINT_NAME).exists():
        model_config, resume = stored_model_config(run_dir), False  # died before its first checkpoint: restart
    start_step, elapsed_before, best_val = 0, 0.0, math.inf
    model = build_model(model_config)
    optimizer_state = None
    if resume:
        ckpt = load_checkpoint(run_dir / CHECKPOINT_NAME)
        model, model_config = ckpt.model, ckpt.config
        start_step = int(ckpt.train.get("step", 0))
        if start_step >= total_steps:
            raise ConfigError(f"{run_dir} has already trained {start_step} of {total_steps} steps; to train on, "
                              f"resume with a larger budget (--steps or --epochs)")
        elapsed_before = float(ckpt.train.get("elapsed", 0.0))
        best_val = float(ckpt.summary.get("best_val_bits_per_dim") or math.inf)
        optimizer_state = ckpt.optimizer
        if optimizer_state is None:
            raise CheckpointError(f"{run_dir / CHECKPOINT_NAME} holds no optimizer state, so it cannot be resumed")
    if world.is_main:
        kept = [e for e in read_events(run_dir / METRICS_NAME) if e.get("step", 0) <= start_step
                and e.get("event") not in ("end", "test")] if resume else []
        rewrite_events(run_dir / METRICS_NAME, kept)
    model.to(device).train()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    trainable = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world.active else model
    if config.compile:
        trainable = torch.compile(trainable)
    optimizer = make_optimizer(model, config.lr, device)
    if optimizer_state is not None:
        try:
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError):
            raise CheckpointError(f"{run_dir / CHECKPOINT_NAME}: optimizer state does not fit the model") from None

    # Slicing pays on CPU caches only; an accelerator takes the whole batch at once.
    micro = micro_batch_size(local_batch, model_config.hidden, model_config.image_size) \
        if device.type == "cpu" else local_batch

    if world.is_main:
        atomic_write(run_dir / CONFIG_NAME, lambda f: f.write(json.dumps({
            "model": model_config.to_dict(), "train": config.to_dict(), "data": data_spec or {},
            "total_steps": total_steps, "steps_per_epoch": steps_per_epoch, "processes": world.world_size,
        }, indent=2).encode()))

    run = _Run(run_dir, callback, writes=world.is_main)
    t0 = time.perf_counter()
    last_save = time.monotonic()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t0

    def summary(step: int, status: str, **extra: Any) -> dict[str, Any]:
        return {"status": status, "step": step, "total_steps": total_steps, "epochs": step / steps_per_epoch,
                "best_val_bits_per_dim": best_val if math.isfinite(best_val) else None,
                "elapsed": elapsed(), "train_images": n, **extra}

    def save(step: int, status: str, **extra: Any) -> None:
        if not world.is_main:
            return
        save_checkpoint(run_dir / CHECKPOINT_NAME, model, summary=summary(step, status, **extra),
                        data=data_spec, optimizer=optimizer.state_dict(),
                        train={**config.to_dict(), "step": step, "elapsed": elapsed()})
        run.emit({"event": "checkpoint", "step": step, "elapsed": elapsed()})

    def validate(step: int) -> None:
        nonlocal best_val
        if not world.is_main:
            return  # the other ranks wait for rank 0 at their next collective
        value = evaluate(model, val_x, device=device)
        best_val = min(best_val, value)
        run.emit({"event": "val", "step": step, "epoch": step / steps_per_epoch,
                  "bits_per_dim": value, "elapsed": elapsed(), "n_images": len(val_x)})
        model.train()

    def finish(step: int, status: str, **extra: Any) -> dict[str, Any]:
        checksums = distributed.replica_checksums(model, world)
        if len(set(checksums)) > 1:
            status, extra = "failed", {**extra, "message": f"the {world.world_size} processes ended with "
                                                          f"different weights ({checksums}); do not use this run"}
        if world.active:
            extra["replica_checksums"] = checksums
        run.emit({"event": "end", "status": status, "step": step, "elapsed": elapsed(), **extra})
        return summary(step, status, **extra)

    step = start_step
    try:
        run.emit({"event": "start", "step": start_step, "total_steps": total_steps,
                  "steps_per_epoch": steps_per_epoch, "resumed": resume, "device": str(device),
                  "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                  "model": model_config.to_dict(), "train": config.to_dict(), "elapsed": elapsed(),
                  "processes": world.world_size})
        if not resume:
            save(step, "running")  # from the first moment on, a killed run can be resumed
        order, order_epoch = None, -1
        average = (lambda loss: distributed.mean_and_any(loss, False, world)[0]) if world.active else (lambda x: x)
        while step < total_steps:
            if distributed.any_rank((stop is not None and stop.is_set()) or stop_requested(run_dir), world):
                save(step, "stopped")
                if world.is_main:
                    (run_dir / STOP_NAME).unlink(missing_ok=True)  # honoured: a resume must not see it again
                return finish(step, "stopped")
            epoch, index = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = distributed.local_order(batch_order(config.seed, epoch, n), world), epoch
            batch = train_x[order[index * local_batch:(index + 1) * local_batch]]
            step_start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config.lr, config.lr_schedule, step, total_steps)
            loss_value = train_step(trainable, optimizer, batch, micro, device, config.grad_clip, average, config.amp)
            if not math.isfinite(loss_value):
                message = (f"loss became {loss_value} at step {step + 1}; the run stopped and its last "
                           f"checkpoint is kept. Lower the learning rate or set --grad-clip")
                return finish(step, "failed", message=message)
            step += 1
            seconds = time.perf_counter() - step_start
            run.emit({"event": "train", "step": step, "epoch": step / steps_per_epoch,
                      "bits_per_dim": loss_value, "elapsed": elapsed(),
                      "images_per_s": len(batch) * world.world_size / max(seconds, 1e-9)})
            at_epoch_end = step % steps_per_epoch == 0
            if at_epoch_end or (config.eval_every and step % config.eval_every == 0):
                validate(step)
                save(step, "running")
                last_save = time.monotonic()
            elif time.monotonic() - last_save > config.checkpoint_seconds:
                save(step, "running")
                last_save = time.monotonic()
        if step % steps_per_epoch and not (config.eval_every and step % config.eval_every == 0):
            validate(step)
        extra = {}
        if world.is_main:
            extra["test_bits_per_dim"] = evaluate(model, test_x, device=device)
            run.emit({"event": "test", "step": step, "bits_per_dim": extra["test_bits_per_dim"],
                      "elapsed": elapsed(), "n_images": len(test_x)})
            save(step, "finished", **extra)
        return finish(step, "finished", **extra)
    except OSError as err:
        message = f"could not write to {run_dir} ({err.strerror or err}); the run stopped, earlier files are intact"
        if callback:
            callback({"event": "end", "status": "failed", "message": message})
        return summary(step, "failed", message=message)
    except (CheckpointError, ModelError) as err:
        message = f"{err}; the run stopped"
        if callback:
            callback({"event": "end", "status": "failed", "message": message})
        return summary(step, "failed", message=message)


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file holding an object, or {} if it is missing, unreadable or holds anything else."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``config.json``, or {} if it is missing or unreadable."""
    return read_json_object(Path(run_dir) / CONFIG_NAME)


def resume_config(run_dir: str | Path, overrides: dict[str, Any]) -> TrainConfig:
    """The stored training config of a run, with ``overrides`` applied; a new budget replaces the old one."""
    stored = read_run_config(run_dir).get("train")
    base = TrainConfig.from_dict(stored) if isinstance(stored, dict) else TrainConfig()
    if "epochs" in overrides or "steps" in overrides:
        base = replace(base, epochs=None, steps=None)
    return replace(base, **overrides)


