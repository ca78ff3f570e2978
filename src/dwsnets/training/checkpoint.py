"""Checkpoints that resume a run exactly: model, optimiser, schedule and every RNG."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils import atomic_torch_save

__all__ = ["CheckpointError", "load_training_state", "read_checkpoint", "save_training_state"]


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (truncated, corrupt, or not a checkpoint)."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict a checkpoint file holds, or a :class:`CheckpointError` that names the file
    when it cannot be read (saves are atomic, but a copy cut short or a full disk can still
    damage a run directory from outside)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch's zip reader, pickle and EOF errors all mean the same here
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is damaged: it cannot be read ({reason[:160]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is damaged: it holds no model state")
    return state


def save_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    **extra: Any,
) -> None:
    """Write everything a resumed run needs, atomically (never a half-written file)."""
    atomic_torch_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            **extra,
        },
        path,
    )


def load_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns the whole saved dict. A file
    that cannot be read, or that holds a model only, raises :class:`CheckpointError`."""
    state = read_checkpoint(path)
    missing = [k for k in ("optimizer", "scheduler", "generator", "epoch") if k not in state]
    if missing:
        raise CheckpointError(f"{path} holds a model only (no {', '.join(missing)}): training cannot resume from it")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    if torch.cuda.is_available() and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state
