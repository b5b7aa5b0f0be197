"""What a training run will do on this machine, before it starts: its measured speed and what a budget
buys at that speed (the Train page's "what to expect")."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..models import PixelCNNConfig, build_model
from ..runtime import intra_op_threads, micro_batch_size
from ..store.data import N_TRAIN
from .config import TrainConfig
from .step import make_optimizer, train_step


def training_threads() -> int:
    """The intra-op threads a training job gets: every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def random_images(config: PixelCNNConfig, n: int) -> torch.Tensor:
    """``n`` random images (n, C, H, W) uint8 of ``config``'s shape: what speed measurements train on."""
    size = config.image_size
    return torch.randint(0, config.levels, (n, config.channels, size, size), dtype=torch.uint8)


def timed_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, micro: int,
                device: torch.device, steps: int, *, amp: bool = False,
                average: Callable[[float], float] = lambda loss: loss,
                sync: Callable[[], None] = lambda: None) -> float:
    """Seconds for ``steps`` optimizer steps on ``images`` (as :func:`~pixelcnn.training.trainer.train_step` takes them),
    after one untimed warm-up step; ``sync`` runs before each reading of the clock (a CUDA synchronise, a
    barrier between processes)."""
    train_step(model, optimizer, images, micro, device, average=average, amp=amp)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, images, micro, device, average=average, amp=amp)
    sync()
    return time.perf_counter() - start


def measure_training_speed(model_config: PixelCNNConfig, config: TrainConfig, steps: int = 4,
                           device: str = "cpu") -> float:
    """Training images/s of ``model_config`` under ``config`` (batch, micro-batches and bf16 autocast as the
    trainer runs them) on ``device``, on the CPU with a training job's threads: one warm-up step, then
    ``steps`` timed ones on random images. About 1.5 s for ``live`` here, several for ``paper``."""
    torch.manual_seed(0)
    where = torch.device(device)
    model = build_model(model_config).to(where)
    optimizer = make_optimizer(model, config.lr, where)
    images = random_images(model_config, config.batch_size)
    micro = micro_batch_size(config.batch_size, model_config.hidden, model_config.image_size)
    sync = torch.cuda.synchronize if where.type == "cuda" else lambda: None
    with intra_op_threads(training_threads()):
        seconds = timed_steps(model, optimizer, images, micro, where, steps, amp=config.amp, sync=sync)
    return config.batch_size * steps / seconds


@dataclass(frozen=True)
class Expectation:
    """What ``config``'s budget comes to at ``images_per_s``: steps, epochs and seconds of training
    (validation and the final test come on top)."""

    images_per_s: float
    steps: int
    epochs: float
    seconds: float

    def text(self) -> str:
        return (f"about {self.images_per_s:,.0f} training images/s on this machine, so about {self.steps:,} "
                f"steps ({self.epochs:.2g} epoch{'' if f'{self.epochs:.2g}' == '1' else 's'}) in {format_minutes(self.seconds)} of training, "
                f"plus validation and the final test")


def expect(config: TrainConfig, images_per_s: float, train_images: int = N_TRAIN) -> Expectation:
    """The steps, epochs and seconds ``config``'s budget comes to at ``images_per_s``."""
    steps_per_epoch = math.ceil(train_images / config.batch_size)
    budget = config.step_budget(steps_per_epoch)
    needed = math.inf if budget is None else budget * config.batch_size / images_per_s
    clock = config.minutes * 60 if config.minutes else math.inf
    if needed <= clock:
        steps, seconds = budget, needed
    else:  # the clock ends the run first
        steps, seconds = int(clock * images_per_s / config.batch_size), clock
    return Expectation(images_per_s, steps, steps / steps_per_epoch, seconds)


def format_minutes(seconds: float) -> str:
    """``45 s``, ``5.0 minutes``, ``2.3 hours``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def probe(steps: int = 3) -> dict[str, float]:
    """The measurement behind the dashboard's estimate (:mod:`pixelcnn.serve.estimate`): training images/s
    of the ``live`` model at its batch size, in float32 and in bfloat16 autocast (the same number where
    bfloat16 is not fast here, since the trainer then runs float32), and its parameter count."""
    from ..models import PRESETS
    from ..runtime import bf16_is_fast
    from ..store.checkpoint import check_trainable  # the count the Train page scales by
    from .config import preset_train_config

    model, config = PRESETS["live"], preset_train_config("live")
    float32 = measure_training_speed(model, replace(config, amp=False), steps=steps)
    bfloat16 = measure_training_speed(model, config, steps=steps) if bf16_is_fast(torch.device("cpu")) \
        else float32
    return {"float32": float32, "bfloat16": bfloat16, "parameters": check_trainable(model)}


if __name__ == "__main__":
    import json

    print(json.dumps(probe()))
