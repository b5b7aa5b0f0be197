"""Data-parallel training under ``torchrun``: process group, per-rank share of each batch, collectives.

With ``WORLD_SIZE`` unset or 1 everything here is a no-op, so the single-process
path runs the same code. ``--batch-size`` stays the global batch: each of N
processes takes ``batch_size / N`` images of every batch, and DistributedDataParallel
averages their gradients, so N processes take exactly the steps one process would
(up to floating-point summation order).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..errors import ConfigError
from ..runtime import pick_device


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def setup(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world <= 1:
        return Distributed(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, local), device


def teardown(info: Distributed) -> None:
    """Leave the process group together: wait for every rank, free DDP's buffers, then destroy the group.

    Destroying it while a peer still talks to it, or while a collected-late
    DistributedDataParallel still holds gloo's threads, can abort the process at exit.
    """
    if info.active and dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()


def local_batch_size(batch_size: int, info: Distributed) -> int:
    if batch_size % info.world_size:
        raise ConfigError(f"batch size {batch_size} does not split evenly over {info.world_size} processes")
    return batch_size // info.world_size


def local_order(order: np.ndarray, info: Distributed) -> np.ndarray:
    """This rank's share of an epoch's permutation, through a DistributedSampler (no shuffle of its own).

    Rank r gets positions r, r + N, r + 2N, ... of ``order`` (padded to a
    multiple of N), so its k-th batch of ``B / N`` images and the other ranks'
    k-th batches together are exactly positions [k B, (k + 1) B) of ``order``:
    the k-th batch a single process would take.
    """
    sampler = DistributedSampler(range(len(order)), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=False, drop_last=False)
    return order[np.fromiter(iter(sampler), dtype=np.int64)]


def mean_and_any(loss: float, flag: bool, info: Distributed) -> tuple[float, bool]:
    """The loss averaged over ranks, and whether any rank raised ``flag`` (one all-reduce)."""
    if not info.active:
        return loss, flag
    values = torch.tensor([loss, float(flag)], dtype=torch.float64)
    dist.all_reduce(values)
    return values[0].item() / info.world_size, values[1].item() > 0


def any_rank(flag: bool, info: Distributed) -> bool:
    return mean_and_any(0.0, flag, info)[1]


def replica_checksums(model: torch.nn.Module, info: Distributed) -> list[float]:
    """Each rank's sum of all its parameters (float64): equal on every rank when replicas are in sync."""
    local = torch.tensor([sum(p.detach().double().sum().item() for p in model.parameters())], dtype=torch.float64)
    if not info.active:
        return [local.item()]
    gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(info.world_size)]
    dist.all_gather(gathered, local)
    return [t.item() for t in gathered]


def barrier(info: Distributed) -> None:
    if info.active:
        dist.barrier()
