"""torchrun / DDP setup and the reductions the training loop needs.

One process per device; torchrun sets RANK, LOCAL_RANK and WORLD_SIZE. NCCL on CUDA, gloo on CPU.
Without torchrun everything here degrades to a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    size: int
    rank: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Only the main process writes history and prints."""
        return self.rank == 0


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the torchrun group if launched by torchrun; each rank takes the GPU of its local rank."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        if device.type == "cuda":  # --device cuda:N: N is "the current device" for everything after
            torch.cuda.set_device(device)
        return World(1, 0, 0), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(size, rank, local_rank), device


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DDP when there are several ranks. The global-attention projections get no gradient (no
    token is global), hence find_unused_parameters, as FlagPerf sets it."""
    if world.size == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def all_reduce_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """Sum a tensor over ranks (in place where there are several)."""
    if world.size > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
