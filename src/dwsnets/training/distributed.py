"""Data-parallel training with torch.distributed, launched by ``torchrun``."""

from __future__ import annotations

import os

import torch.distributed as dist

from ..utils import rank_and_world

__all__ = ["init_distributed"]


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1): gloo on the
    CPU, NCCL on CUDA. Returns ``(rank, world size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank_and_world()
