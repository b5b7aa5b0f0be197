"""One optimizer step and what chooses it: the learning-rate schedule, the batch order, the optimizer.

The batch order is a pure function of (seed, epoch), so a resumed run sees
exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import numpy as np
import torch

from ..models import bits_per_dim
from ..runtime import autocast
from . import distributed
from .recolor import recolor_batch


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


class BatchOrder:
    """The batches of each epoch: a permutation that is a pure function of (seed, epoch), this rank's share.

    With ``labels``, each batch comes with its labels, and which images an epoch shows without their label
    (``dropout`` of them, as the "no label" index ``classes``) is a pure function of (seed, epoch) too.
    With ``recolor``, each batch is recolored by :func:`~pixelcnn.training.recolor.recolor_batch`, a pure
    function of (seed, step).
    """

    def __init__(self, images: torch.Tensor, seed: int, steps_per_epoch: int, local_batch: int,
                 world: distributed.Distributed, labels: torch.Tensor | None = None, classes: int = 0,
                 dropout: float = 0.0, recolor: bool = False):
        self.images, self.seed, self.steps_per_epoch = images, seed, steps_per_epoch
        self.local_batch, self.world = local_batch, world
        self.labels, self.classes, self.dropout, self.recolor = labels, classes, dropout, recolor
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
        images = recolor_batch(self.images[chosen], self.seed, step) if self.recolor else self.images[chosen]
        return images, None if self.labels is None else self.epoch_labels[chosen]
