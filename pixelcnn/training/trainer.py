"""The training loop: one call, :func:`train`, runs a whole training job into a run folder (see
:mod:`pixelcnn.store.rundir`): it steps, validates, draws live samples, saves, tests and finishes, and a stop
or a kill at any moment leaves a run that resumes exactly.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..errors import CheckpointError, ConfigError, ModelError
from ..figures import image_grid, save_png
from ..models import PixelCNNConfig, build_model
from ..runtime import micro_batch_size
from ..sampling import sample
from ..store.checkpoint import CHECKPOINT_NAME, check_trainable, load_checkpoint, save_checkpoint
from ..store.files import atomic_write
from ..store.metrics import METRICS_NAME, append_event, read_events, rewrite_events
from ..store.rundir import CONFIG_NAME, LIVE_DIR, STOP_NAME, claim_job, stop_requested
from . import distributed
from .averaging import WeightAverage
from .config import ACCELERATOR_LOSS_EVERY, MAX_STEPS, TrainConfig
from .evaluate import evaluate, to_tensor
from .state import check_run_dir, stored_model_config, warm_start
from .step import TIME_WARMUP, BatchOrder, learning_rate, learning_rate_at, make_optimizer, queued_step, train_step

Callback = Callable[[dict[str, Any]], None]
MIN_SAVE_SECONDS = 10.0
LIVE_DRAWS = 6  # live-sample strips a time-budgeted run draws at least, validations or not


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
        self.test_x = to_tensor(data["test"][: config.test_limit])
        self.labels = {split: torch.from_numpy(np.asarray(data[f"{split}_labels"][: limit]).astype(np.int64))
                       for split, limit in (("train", config.train_limit), ("val", config.val_limit),
                                                      ("test", config.test_limit))
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
        self.window_start = 0.0  # the process clock when the first pending step began
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

    def train_step(self, batches: "BatchOrder", average: Callable[[float], float]) -> None:
        """One optimizer step on the next batch, and its event. With ``loss_every`` above 1 the step is only
        queued, and its loss read back with the others every ``loss_every`` steps (:meth:`read_losses`).
        A non-finite loss raises :class:`NonFiniteLoss` once it is read."""
        batch, labels = batches.batch(self.step)
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if not self.pending:
            self.window_start = time.perf_counter()
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
        seconds = max(time.perf_counter() - self.window_start, 1e-9)
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
        self.phase("validating", len(self.val_x))
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
        self.phase("drawing", n)
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

    def phase(self, name: str, n_images: int, **extra: Any) -> None:
        """Tell the readers what the run is doing now besides training (validating, drawing, testing) and on
        how many images, so the dashboard can say so instead of a progress bar that stands still."""
        self.emit({"event": "phase", "phase": name, "step": self.step, "n_images": n_images,
                   "elapsed": self.elapsed(), **extra})

    def validates_now(self) -> bool:
        every = self.config.eval_every
        return self.step % self.steps_per_epoch == 0 or bool(every and self.step % every == 0)

    def test(self) -> dict[str, Any]:
        if not self.world.is_main:
            return {}
        passes = 1 + bool(self.model_config.classes) + bool(self.average)
        self.phase("testing", len(self.test_x), passes=passes)
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
            if self.world.is_main:
                claim_job(self.dir)
            self.emit({"event": "start", "step": self.step, "total_steps": self.total_steps,
                       "budget_seconds": self.budget_seconds,
                       "steps_per_epoch": self.steps_per_epoch, "resumed": self.resumed, "device": str(self.device),
                       "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                       else "cpu", "model": self.model_config.to_dict(), "train": self.config.to_dict(),
                       "elapsed": self.elapsed(), "processes": self.world.world_size})
            if not self.resumed:
                self.save("running")  # from the first moment on, a killed run can be resumed
            last_save = time.monotonic()
            batches = BatchOrder(self.train_x, self.config.seed, self.steps_per_epoch, self.local_batch, self.world,
                                  self.split_labels("train"), self.model_config.classes, self.config.label_dropout,
                                  self.config.recolor)
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


