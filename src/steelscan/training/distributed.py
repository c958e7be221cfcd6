"""Data-parallel training across processes started by `torchrun` (one process per rank).

Without torchrun's environment (WORLD_SIZE unset or 1) everything here is a no-op and
rank 0 is the only rank. Backends: NCCL on CUDA, gloo on CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def start(device_type: str) -> Ranks:
    """Join the process group torchrun describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                  int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return ranks


def stop(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.destroy_process_group()


def sum_over_ranks(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Element-wise sum of `t` over all ranks (float64 on CPU for exact counts)."""
    if not ranks.active:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(model: torch.nn.Module, ranks: Ranks) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics), which each rank's last
    forward pass updated from its own batch: afterwards all ranks hold identical models."""
    if ranks.active:
        for b in model.buffers():
            dist.broadcast(b.data, 0)


def barrier(ranks: Ranks) -> None:
    if ranks.active:
        dist.barrier()
